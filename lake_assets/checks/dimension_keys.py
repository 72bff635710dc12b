"""The key figures of a table as written (a dimension's surrogate key and versions, the fact's sale
lines), on Arrow record batches (no Dagster, no Spark).

Grain: one `KeyFigures` per table, exact:
* `rows`, `distinct_keys` (NULL aside) and `null_keys` of the surrogate key;
* with a member column (SCD Type 2), over each member's versions ordered by `valid_from` (NULLs
  first; the rows of a NULL member form one member, as a window partition has them):
  `several_current`: members (NULL aside) with more than one row whose `is_current` is true;
  `overlaps`: versions whose validity is empty (`valid_from >= valid_to`) or that run past the start
  of the member's next version (a gap, a member closed then re-appearing, is no overlap);
  `open_not_current`: a member's last version, open until `open_until`, whose `is_current` is false.
  A comparison with a NULL counts as false, as a SQL sum of it does.

The batches are spilled to hash buckets twice, by surrogate key and by member
(`lake_assets/checks/buckets.py`): equal keys, and the versions of one member, always share a bucket,
so the driver holds one bucket (about `BUCKET_ROWS` rows), never the table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lake_assets.checks.buckets import Spill, bucket_count
from lake_assets.parquet_stream import stream_batches

VERSION_COLUMNS = ("valid_from", "valid_to", "is_current")


@dataclass
class KeyFigures:
    rows: int = 0
    distinct_keys: int = 0
    null_keys: int = 0
    several_current: int = 0
    overlaps: int = 0
    open_not_current: int = 0


def key_figures(batches: Iterable[pa.RecordBatch], schema: pa.Schema, rows: int, key_col: str,
                member_col: str | None = None, open_until: datetime | None = None) -> KeyFigures:
    """The figures of the rows of `batches` (of `schema`: the key column, and with `member_col` the
    member and `VERSION_COLUMNS` too); `rows` (the table's row count) sets the bucket count."""
    figures = KeyFigures()
    buckets = bucket_count(rows)
    with tempfile.TemporaryDirectory(prefix="lake_keys_") as spill_dir:
        keys = Spill(spill_dir, "keys", pa.schema([schema.field(key_col)]), [key_col], buckets)
        members = None
        if member_col is not None:
            fields = [schema.field(c) for c in (member_col, *VERSION_COLUMNS)]
            members = Spill(spill_dir, "members", pa.schema(fields), [member_col], buckets)
        try:
            for batch in batches:
                keys.add(batch)
                if members is not None:
                    members.add(batch)
            for bucket in range(buckets):
                key = keys.read(bucket).column(key_col)
                figures.rows += len(key)
                figures.null_keys += key.null_count
                figures.distinct_keys += pc.count_distinct(key, mode="only_valid").as_py()
                if members is not None and member_col is not None:
                    _add_version_figures(figures, members.read(bucket), member_col, open_until)
        finally:
            keys.close()
            if members is not None:
                members.close()
    return figures


def dataset_key_figures(dataset: ds.Dataset, key_col: str, member_col: str | None = None,
                        open_until: datetime | None = None) -> KeyFigures:
    """`key_figures` of a lake table's rows, only the columns they need read, in batches."""
    columns = [key_col, *((member_col, *VERSION_COLUMNS) if member_col is not None else ())]
    return key_figures(stream_batches(dataset, columns), dataset.schema, dataset.count_rows(), key_col,
                       member_col=member_col, open_until=open_until)


def _true_count(flags: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.fill_null(flags, False).cast(pa.int64())).as_py() or 0)


def _add_version_figures(figures: KeyFigures, versions: pa.Table, member_col: str,
                         open_until: datetime | None) -> None:
    """Adds the version figures of `versions` (every version of each of its members) to `figures`."""
    if not versions.num_rows:
        return
    current = versions.column("is_current").cast(pa.int64())
    per_member = pa.table({"m": versions.column(member_col), "c": current}).group_by("m").aggregate([("c", "sum")])
    figures.several_current += _true_count(pc.and_kleene(pc.is_valid(per_member["m"]),
                                                         pc.greater(per_member["c_sum"], 1)))

    # NULLs first (a member's NULL start first, the NULL member's rows together), spelled as sort keys.
    keys = pa.table({"m_known": pc.is_valid(versions[member_col]), "m": versions[member_col],
                     "f_known": pc.is_valid(versions["valid_from"]), "f": versions["valid_from"]})
    ordered = versions.take(pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in keys.column_names]))
    member, valid_from, valid_to = (ordered.column(c).combine_chunks() for c in (member_col, "valid_from", "valid_to"))
    this, after = member.slice(0, len(member) - 1), member.slice(1)
    same = pc.or_(pc.fill_null(pc.equal(this, after), False), pc.and_(pc.is_null(this), pc.is_null(after)))
    # The next version's start, for a row followed by another of its member; NULL for a member's last row.
    following = pc.if_else(same, valid_from.slice(1), pa.scalar(None, valid_from.type))
    next_from = pa.concat_arrays([following, pa.nulls(1, valid_from.type)])
    empty = pc.greater_equal(valid_from, valid_to)
    runs_past = pc.and_kleene(pc.is_valid(next_from), pc.less(next_from, valid_to))
    figures.overlaps += _true_count(pc.or_kleene(empty, runs_past))
    if open_until is not None:
        is_current = ordered.column("is_current").combine_chunks()
        open_version = pc.equal(valid_to, pa.scalar(open_until, valid_to.type))
        figures.open_not_current += _true_count(
            pc.and_kleene(pc.and_kleene(pc.is_null(next_from), pc.invert(is_current)), open_version))
