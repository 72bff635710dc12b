"""Column rules that a lake table's Parquet statistics prove for every row (pure pyarrow, no Dagster).

Grain: one answer per (Dataset, TableRules): the ruled columns whose per-row rules need no value read.
Every Parquet row group records, per column, how many values are NULL and the smallest and largest
value. When, in every row group of every file, a column has no NULL (for `not_null`), and its
smallest value is at least `min` and its largest at most `max` (or it holds NULLs only, which those
rules never judge), no row can fail those rules: `validate` then leaves the column out of its pass
over the rows. A rule the statistics cannot decide (`regex`, `accepted_values`, a file without
statistics, a file that lacks the column, values of another kind than the bound, a column whose type
is not the rule's, a floating-point column) keeps the column in that pass. Proving reads the files' footers only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

if TYPE_CHECKING:  # table_rules imports this module
    from lake_assets.checks.table_rules import ColumnRule


def _provable(rule: ColumnRule) -> bool:
    return rule.regex is None and rule.accepted_values is None


def _holds(rule: ColumnRule, column: pq.ColumnChunkMetaData, rows: int) -> bool:
    """Whether one row group's statistics of one column prove `rule` for all `rows` of it."""
    stats = column.statistics
    if stats is None or not stats.has_null_count:
        return False
    if rule.not_null and stats.null_count > 0:
        return False
    if rule.min is None and rule.max is None:
        return True
    if not stats.has_min_max:
        return stats.null_count == rows  # NULLs only: nothing for a range to judge
    try:
        return ((rule.min is None or stats.min >= rule.min)
                and (rule.max is None or stats.max <= rule.max))
    except TypeError:  # a bound of another kind than the values: left to the values
        return False


def proven_columns(dataset: ds.Dataset, rules: Iterable[tuple[str, ColumnRule]]) -> set[str]:
    """The names among `rules` (column name, rule) whose every per-row rule the statistics of every row
    group of `dataset`'s files prove (empty for a Dataset that is not of Parquet files)."""
    if not isinstance(dataset, ds.FileSystemDataset):
        return set()
    schema = dataset.schema
    # A column of another type than its rule's is judged row by row, as before: its type failure counts
    # rows. Floating-point columns too: a NaN fails a range rule, and Parquet's min/max leave NaN out.
    candidates = {name: rule for name, rule in rules if _provable(rule) and name in schema.names
                  and (rule.dtype is None or schema.field(name).type == rule.dtype)
                  and not pa.types.is_floating(schema.field(name).type)}
    for path in dataset.files:
        if not candidates:
            break
        with dataset.filesystem.open_input_file(path) as source:
            metadata = pq.ParquetFile(source).metadata
        # A nested column's leaves have dotted paths and match no rule's name: such a column is read.
        index = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
        for name in list(candidates):
            if name not in index:
                del candidates[name]
                continue
            for group in range(metadata.num_row_groups):
                row_group = metadata.row_group(group)
                if not _holds(candidates[name], row_group.column(index[name]), row_group.num_rows):
                    del candidates[name]
                    break
    return set(candidates)
