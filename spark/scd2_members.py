"""The part of an SCD Type 2 dimension a batch can change, split from the part it cannot: pure PySpark.

`scd2_merge`, `late_changes`, `splice_late_changes` (spark/scd2_splice.py) and `add_inferred_members`
only ever change or consult the versions of the members a batch delivers (an anchor version is
closed, Type-1 columns are overwritten on every version of the member, a late record is compared with
or spliced into the member's own history). Every other row is
passed through untouched. On an incremental day that is nearly the whole dimension, so it need not go
through the merge's windows and joins at all: the merge runs on the delivered members' versions
(`MemberSplit.touched`) with `keys_above` set to the highest key of the whole dimension, and the
result is `touched` merged plus `kept`, the same rows as merging the whole dimension.

Grain of both parts: one row per member version, as the dimension; every member's versions are all in
one part (the split is by natural key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.scd2 import CHANGED_AT, SCD2_META, max_key


@dataclass(frozen=True)
class MemberSplit:
    """`touched`: every version of the delivered members; `kept`: all other rows, in the dimension's
    columns; `keys_above`: the highest surrogate key of the whole dimension when split."""

    touched: DataFrame
    kept: DataFrame
    keys_above: int

    def combined(self, touched: DataFrame) -> DataFrame:
        """`touched` (the merged versions of the delivered members) plus the rows kept as they were, in
        `touched`'s column order."""
        return touched.unionByName(self.kept.select(*touched.columns))


def dimension_columns(key_col: str, natural_key: str, attributes: Sequence[str]) -> list[str]:
    """The columns of an SCD2 dimension, in the order `scd2_merge` writes them."""
    return [key_col, natural_key, *attributes, *SCD2_META]


def split_by_members(
    dimension: DataFrame,
    batches: Sequence[DataFrame],
    *,
    key_col: str,
    natural_key: str,
    attributes: Sequence[str],
    highest_key: int | None = None,
) -> MemberSplit:
    """Split `dimension` into every version of the members the `batches` deliver (their non-NULL
    values of `natural_key`) and the rest; with no batch nothing is touched.

    `highest_key`: `dimension`'s highest surrogate key when the caller knows it (from the files'
    statistics); else one job finds it. `touched` is materialized (a local checkpoint): the merge reads
    it several times. `kept` stays a plan over `dimension`, read once more by whoever writes the result;
    nothing of it is held in memory.
    """
    dimension = _in_dimension_columns(dimension, key_col, natural_key, attributes)
    keys_above = max(highest_key, 0) if highest_key is not None else max_key(dimension, key_col)
    if not batches:
        return MemberSplit(touched=dimension.filter(F.lit(False)), kept=dimension, keys_above=keys_above)
    keys = [b.select(natural_key).filter(F.col(natural_key).isNotNull()) for b in batches]
    members = reduce(DataFrame.unionByName, keys).distinct()
    touched = dimension.join(members, natural_key, "left_semi").localCheckpoint()
    kept = dimension.join(members, natural_key, "left_anti")
    return MemberSplit(touched=touched, kept=kept, keys_above=keys_above)


def whole_dimension(dimension: DataFrame, *, key_col: str, natural_key: str, attributes: Sequence[str]) -> MemberSplit:
    """Every row touched, none kept: for a batch that can change any member (a full snapshot, whose
    absent members are deleted), or a dimension with nothing to set aside yet (only its unknown member)."""
    dimension = _in_dimension_columns(dimension, key_col, natural_key, attributes).localCheckpoint()
    return MemberSplit(touched=dimension, kept=dimension.filter(F.lit(False)), keys_above=0)


def _in_dimension_columns(dimension: DataFrame, key_col: str, natural_key: str, attributes: Sequence[str]) -> DataFrame:
    if CHANGED_AT not in dimension.columns:  # a dimension written before the column existed
        dimension = dimension.withColumn(CHANGED_AT, F.lit(None).cast("timestamp"))
    return dimension.select(*dimension_columns(key_col, natural_key, attributes))
