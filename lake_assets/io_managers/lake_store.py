"""The lake IO manager's write, without Dagster: one output (a value or a `LakeWrite`) into one lake
partition (or a set of date partitions), one atomic commit each.

The IO manager (`parquet_lake.py`) stores every output through these functions; so do the callers
that commit what an asset would have yielded: a side table a selection left out
(`assets/side_tables.py`) and the ingestion run without Dagster (`DataIngestionPipeline.run`). The
commit names the Dagster run that stored it (`dagster_run_id`) when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame

from lake_assets.io_managers.lake_write import LakeWrite
from lake_assets.io_managers.spark_lake import write_spark, write_spark_partitions
from lake_assets.resources.lake_storage import CommitInfo, LakeStorage, StagedBatch

RUN_ID_STATE = "dagster_run_id"


def rows_stored(lake: LakeStorage, key_path: Sequence[str], partition: str | None, run_id: str) -> int:
    """Rows this IO manager committed for `key_path` (partition) in run `run_id`.

    For an asset reading back an output it yielded: Dagster hands a yielded output to the IO manager
    before the asset's code resumes. Raises `LookupError` when the partition's last commit was made by
    another run (or none), so a count left by an earlier run is never reported as this run's.
    """
    info = lake.commit_info(key_path, partition)
    if info is None or info.state.get(RUN_ID_STATE) != run_id:
        where = "/".join(key_path) + (f" partition {partition}" if partition else "")
        raise LookupError(f"{where}: no commit of run {run_id}; was the output yielded before reading it back?")
    return info.rows


def store(
    lake: LakeStorage, key_path: Sequence[str], partition: str | None, obj: Any, run_id: str | None
) -> CommitInfo:
    """Replace one partition (or the unpartitioned table) with `obj` (DataFrame, Arrow table or a
    `LakeWrite` without a partition column), atomically; the commit names the run (`dagster_run_id`,
    unless `run_id` is None: a caller without Dagster) besides the `LakeWrite`'s own state. A
    `LakeWrite` of spooled files is adopted: the files move into the partition by the same commit."""
    where = "/".join(key_path)
    state: dict[str, Any] = {}
    if isinstance(obj, LakeWrite):
        if obj.partition_column is not None:
            raise TypeError(f"{where}: a write of several partitions goes through store_partitions")
        state, obj = dict(obj.state), obj.frame
    if run_id is not None:
        state[RUN_ID_STATE] = run_id
    if isinstance(obj, pa.Table):
        return lake.write_arrow(key_path, partition, obj, state)
    if isinstance(obj, DataFrame):
        return write_spark(obj, lake, key_path, partition, state)
    if isinstance(obj, StagedBatch):
        if obj.key_path != list(key_path) or obj.partition != partition:
            raise ValueError(f"{where}: spooled files of {'/'.join(obj.key_path)} partition {obj.partition} "
                             f"cannot be stored as partition {partition}")
        return obj.commit(state=state)
    raise TypeError(f"{where}: cannot store a {type(obj).__name__} in the lake")


def store_partitions(
    lake: LakeStorage, key_path: Sequence[str], write: LakeWrite, run_id: str
) -> dict[str, CommitInfo]:
    """Replace, in one atomic commit, the partitions of `write.partition_column` that its rows fall in
    plus `write.replace`; {partition: commit}."""
    assert write.partition_column is not None and isinstance(write.frame, DataFrame)  # LakeWrite checks both
    state = {**write.state, RUN_ID_STATE: run_id}
    return write_spark_partitions(write.frame, lake, key_path, write.partition_column, write.replace, state)
