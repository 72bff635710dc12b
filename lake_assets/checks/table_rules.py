"""Column rules of one lake table, validated with pandera over a whole partition (no Dagster here).

Grain: one `TableRules` per lake table (`processed/sale`, `curated/fact_sales`); one `Outcome` per
validation of one partition (or of an unpartitioned table). Every row is validated, in slices of
`batch_rows` rows read one record batch at a time from the lake's files (uniqueness on the key columns
alone, spilled to hash buckets and compared one bucket at a time; a column whose rules the files'
Parquet statistics prove for every row is not read at all: `proven_rules.py`); only a bounded sample of failing
rows is kept, with the table's PII columns shown as `***`, so an outcome can be stored as check
metadata without copying data (or personal data) out of the lake. Memory is bounded by `batch_rows`
and the bucket size, not by the partition.

pandera runs on pandas frames backed by Arrow (`pd.ArrowDtype`), so the lake's types are checked
exactly (`decimal128(12, 2)` is not `double`) and nothing is converted row by row.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pdr
import pyarrow as pa
import pyarrow.dataset as ds

from lake_assets.checks.buckets import BUCKET_ROWS, Spill, bucket_count
from lake_assets.checks.proven_rules import proven_columns
from lake_assets.parquet_stream import stream_batches

SAMPLE_ROWS = 5
# Rows `validate` holds in pandas at a time: its memory is bounded by this, not by the partition.
BATCH_ROWS = 100_000
MASK = "***"
_ROW = "__row_number__"  # a key row's place in the validated rows, carried through the buckets
Number = int | float | Decimal


@dataclass(frozen=True)
class ColumnRule:
    """What one column must satisfy. `min`/`max` are inclusive; `regex` must match the whole value;
    None values are judged by `not_null` alone."""

    not_null: bool = False
    unique: bool = False
    accepted_values: tuple[Any, ...] | None = None
    min: Number | None = None
    max: Number | None = None
    regex: str | None = None
    dtype: pa.DataType | None = None
    # An absent column fails the rules only when it must be there (tables written before an optional
    # column was configured lack it).
    required: bool = True


@dataclass(frozen=True)
class TableRules:
    columns: Mapping[str, ColumnRule]
    # Columns whose combination identifies a row (one row per key per partition).
    unique_together: tuple[str, ...] = ()
    # Shown as *** in the failing-row sample.
    pii_columns: frozenset[str] = frozenset()


@dataclass
class Outcome:
    rows: int
    # "column: rule" -> failing values (rows) found; empty when the table passed.
    failures: dict[str, int] = field(default_factory=dict)
    # Up to SAMPLE_ROWS failing rows, every value as text, PII columns as ***.
    sample: list[dict[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        return "; ".join(f"{rule}: {count}" for rule, count in sorted(self.failures.items())) or "none"


def _checks(rule: ColumnRule) -> list[tuple[str, pdr.Check]]:
    """(rule name, pandera check) pairs, in the order pandera numbers them (`check_number`)."""
    checks = []
    if rule.accepted_values is not None:
        checks.append(("accepted_values", pdr.Check.isin(list(rule.accepted_values))))
    if rule.min is not None:
        checks.append(("min", pdr.Check.ge(rule.min)))
    if rule.max is not None:
        checks.append(("max", pdr.Check.le(rule.max)))
    if rule.regex is not None:
        checks.append(("regex", pdr.Check.str_matches(f"^(?:{rule.regex})$")))
    return checks


def build_schema(rules: TableRules, uniqueness: bool = True) -> pdr.DataFrameSchema:
    """The pandera schema of `rules`; without `uniqueness`, the per-row rules alone."""
    return pdr.DataFrameSchema(
        {
            name: pdr.Column(
                pd.ArrowDtype(rule.dtype) if rule.dtype is not None else None,
                checks=[check for _, check in _checks(rule)],
                nullable=not rule.not_null,
                unique=rule.unique and uniqueness,
                required=rule.required,
            )
            for name, rule in rules.columns.items()
        },
        unique=(list(rules.unique_together) or None) if uniqueness else None,
        strict=False,
    )


def _uniqueness_schema(rules: TableRules, present: set[str]) -> pdr.DataFrameSchema | None:
    """The uniqueness rules alone, over the key columns `table` has (an absent one fails as missing)."""
    unique = [name for name, rule in rules.columns.items() if rule.unique and name in present]
    together = list(rules.unique_together) if set(rules.unique_together) <= present else []
    if not (unique or together):
        return None
    return pdr.DataFrameSchema({name: pdr.Column(None, nullable=True, unique=True) for name in unique},
                               unique=together or None, strict=False)


def _rule_name(case: Mapping[str, Any], rules: TableRules, schema: pa.Schema) -> str:
    """`column: rule` of one pandera failure case, in the words of the rules."""
    check = str(case["check"])
    column = case["column"] if isinstance(case["column"], str) else None
    if check == "column_in_dataframe":
        return f"{case['failure_case']}: missing"
    if check in ("field_uniqueness", "multiple_fields_uniqueness"):
        return f"{column or '+'.join(rules.unique_together)}: unique"
    if column is None:
        return check
    if check == "not_nullable":
        return f"{column}: not_null"
    if check.startswith("dtype("):
        return f"{column}: type {schema.field(column).type}, expected {rules.columns[column].dtype}"
    number = case.get("check_number")
    names = [name for name, _ in _checks(rules.columns[column])] if column in rules.columns else []
    if isinstance(number, int | float) and not pd.isna(number) and int(number) < len(names):
        return f"{column}: {names[int(number)]}"
    return f"{column}: {check}"


def _failure_cases(frame: pd.DataFrame, schema: pdr.DataFrameSchema) -> pd.DataFrame | None:
    try:
        schema.validate(frame, lazy=True)
        return None
    except pdr.errors.SchemaErrors as errors:
        return errors.failure_cases


def _uniqueness_cases(dataset: ds.Dataset, row_filter: ds.Expression | None, schema: pdr.DataFrameSchema,
                      together: list[str], rows: int, bucket_rows: int) -> Iterator[pd.DataFrame]:
    """pandera's failure cases of the uniqueness rules of `schema`, indexed by row number in `dataset`
    (under `row_filter`). The key columns are read once and spilled to hash buckets per rule, so a
    repeated key meets its twin in one bucket and only one bucket is held at a time; a bucket goes to
    pandas only when Arrow finds a key repeated in it (null equal to null, as pandas' `duplicated`).
    Yielded bucket by bucket, so a day of repeated keys is never held whole either."""
    checks = [([name], pdr.DataFrameSchema({name: pdr.Column(None, nullable=True, unique=True)}, strict=False))
              for name in schema.columns]
    if together:
        checks.append((together, pdr.DataFrameSchema(unique=together, strict=False)))
    groups = [group for group, _ in checks]
    keys = list(dict.fromkeys(name for group in groups for name in group))
    buckets = bucket_count(rows, bucket_rows)
    with tempfile.TemporaryDirectory(prefix="lake-unique-") as directory:
        spills = [Spill(directory, f"key{i}", pa.schema([dataset.schema.field(n) for n in group]
                                                         + [pa.field(_ROW, pa.int64())]), group, buckets)
                  for i, group in enumerate(groups)]
        try:
            start = 0
            for batch in stream_batches(dataset, keys, row_filter):
                numbers = pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64))
                numbered = pa.table(batch).append_column(_ROW, numbers)
                start += batch.num_rows
                for spill in spills:
                    spill.add(numbered)
            for (group, rule), spill in zip(checks, spills, strict=True):
                for bucket in range(buckets):
                    part = spill.read(bucket)
                    if part.select(group).group_by(group).aggregate([]).num_rows == part.num_rows:
                        continue
                    frame = part.select(group).to_pandas(types_mapper=pd.ArrowDtype)
                    frame.index = part.column(_ROW).to_numpy()
                    found = _failure_cases(frame, rule)
                    if found is not None:
                        yield found
        finally:
            for spill in spills:
                spill.close()


def validate(data: pa.Table | ds.Dataset, rules: TableRules, sample_rows: int = SAMPLE_ROWS,
             batch_rows: int = BATCH_ROWS, row_filter: ds.Expression | None = None,
             bucket_rows: int = BUCKET_ROWS) -> Outcome:
    """Validate every row of `data` (the rows `row_filter` selects, when given) against `rules`,
    holding at most `batch_rows` rows in pandas and reading a lake Dataset one record batch at a time.

    The per-row rules (type, not-null, accepted values, range, regex) run on one slice at a time and
    their failures are added up; a table-level failure (a missing column, a wrong type) is the same in
    every slice and counted once. Uniqueness compares every row with every other: it reads the key
    columns alone into hash buckets of about `bucket_rows` rows (`_uniqueness_cases`), so its memory
    is bounded by the bucket, not by the partition.
    """
    dataset = ds.dataset(data) if isinstance(data, pa.Table) else data
    schema = dataset.schema
    failures: dict[str, int] = {}
    # The first `sample_rows` failing rows' numbers, in the order found (a dict keeps it, without repeats).
    indexes: dict[int, None] = {}

    def add(cases: pd.DataFrame | None, offset: int) -> None:
        if cases is None:
            return
        batch: dict[str, int] = {}
        for row in cases.to_dict("records"):
            key = _rule_name(row, rules, schema)
            batch[key] = batch.get(key, 0) + 1
            if row["index"] is not None and not pd.isna(row["index"]):
                if len(indexes) < sample_rows:
                    indexes.setdefault(int(row["index"]) + offset)
            elif key in failures:  # table-level: already counted on an earlier slice
                batch[key] -= 1
        for key, count in batch.items():
            failures[key] = failures.get(key, 0) + count

    row_schema = build_schema(rules, uniqueness=False)
    # Only the ruled columns are decoded, and of those only the ones whose rules the files' statistics
    # leave open: lineage columns (`_row_hash`, `_source_file`, ...) are most of a lake row's bytes and
    # no per-row rule reads them.
    proven = proven_columns(dataset, rules.columns.items())
    read = [name for name in schema.names if name in rules.columns and name not in proven]
    open_schema = build_schema(TableRules(columns={n: r for n, r in rules.columns.items() if n not in proven}),
                               uniqueness=False)
    rows = 0
    for batch in stream_batches(dataset, read, row_filter, batch_rows):
        if batch.num_rows:
            if read:
                add(_failure_cases(pa.Table.from_batches([batch]).to_pandas(types_mapper=pd.ArrowDtype), open_schema),
                    rows)
            rows += batch.num_rows
    if not rows:  # an empty partition still has its table-level failures (a missing column, a wrong type)
        add(_failure_cases(schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype), row_schema), 0)
    unique_schema = _uniqueness_schema(rules, set(schema.names))
    if unique_schema is not None:
        together = list(rules.unique_together) if set(rules.unique_together) <= set(schema.names) else []
        for cases in _uniqueness_cases(dataset, row_filter, unique_schema, together, rows, bucket_rows):
            add(cases, 0)
    if not failures:
        return Outcome(rows=rows)
    shown = list(indexes)
    taken = dataset.take(pa.array(shown, pa.int64()), filter=row_filter) if shown else schema.empty_table()
    sample = [
        {c: MASK if c in rules.pii_columns and row[c] is not None else str(row[c]) for c in schema.names}
        for row in taken.to_pylist()
    ]
    return Outcome(rows=rows, failures={k: v for k, v in failures.items() if v}, sample=sample)
