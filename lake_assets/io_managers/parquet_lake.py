"""The lake IO manager: asset key `<layer>/<a>/<b>` -> Iceberg table `<layer>.<a>__<b>` (daily assets:
partition `ingest_date=D`).

An output may be a Spark DataFrame, a pyarrow Table, or a `LakeWrite` (rows plus the asset's commit
state, or a write of several partitions of a date column at once; see `lake_write.py`). An input is
loaded as a pyarrow Table when the parameter is annotated `pa.Table`, as a lazy
`pyarrow.dataset.Dataset` (scanned in batches by its consumer, never whole in memory) when annotated
`ds.Dataset`, otherwise as a Spark DataFrame. Every
write is an atomic replace of the partition (or of the whole table for unpartitioned assets) and
reports `dagster/row_count`, `dagster/column_schema`, the Iceberg table, and the snapshot id the write
produced (the table version to time-travel to). The partition's commit record names the Dagster run
that stored it (`dagster_run_id`), so an asset that yields several outputs can read back how many rows
one of them stored (`rows_stored`) without a second Spark job. A write of several partitions reports
`partitions_written`, `rows_written` and the first and last partition written instead of
`dagster/row_count`: the asset's own partition (the run day) is not one of the lake's partitions, so the
asset states its own row count (through the `LakeWrite`'s observation: figures Spark measured while
writing are added to the output metadata).

Every lake write of an asset goes through `store` (the IO manager's own write); an asset calls it
directly only for a side table a selection left out (see `assets/side_tables.py`).
"""


from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    ResourceDependency,
    TableColumn,
    TableSchema,
)
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from lake_assets.io_managers.lake_write import LakeWrite, observed_figures
from lake_assets.io_managers.spark_lake import read_spark, write_spark, write_spark_partitions
from lake_assets.resources.lake_storage import CommitInfo, LakeStorage, table_name

RUN_ID_STATE = "dagster_run_id"


def table_schema_metadata(schema: pa.Schema) -> TableSchema:
    return TableSchema(columns=[TableColumn(name=f.name, type=str(f.type)) for f in schema])


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


def store(lake: LakeStorage, key_path: Sequence[str], partition: str | None, obj: Any, run_id: str) -> CommitInfo:
    """Replace one partition (or the unpartitioned table) with `obj` (DataFrame, Arrow table or a
    `LakeWrite` without a partition column), atomically; the commit names the run (`dagster_run_id`)
    besides the `LakeWrite`'s own state."""
    state: dict[str, Any] = {}
    if isinstance(obj, LakeWrite):
        if obj.partition_column is not None:
            raise TypeError(f"{'/'.join(key_path)}: a write of several partitions goes through store_partitions")
        state, obj = dict(obj.state), obj.frame
    state[RUN_ID_STATE] = run_id
    if isinstance(obj, pa.Table):
        return lake.write_arrow(key_path, partition, obj, state)
    if isinstance(obj, DataFrame):
        return write_spark(obj, lake, key_path, partition, state)
    raise TypeError(f"{'/'.join(key_path)}: cannot store a {type(obj).__name__} in the lake")


def store_partitions(
    lake: LakeStorage, key_path: Sequence[str], write: LakeWrite, run_id: str
) -> dict[str, CommitInfo]:
    """Replace, in one atomic commit, the partitions of `write.partition_column` that its rows fall in
    plus `write.replace`; {partition: commit}."""
    assert write.partition_column is not None and isinstance(write.frame, DataFrame)  # LakeWrite checks both
    state = {**write.state, RUN_ID_STATE: run_id}
    return write_spark_partitions(write.frame, lake, key_path, write.partition_column, write.replace, state)


def observed_metadata(write: Any) -> dict[str, Any]:
    """The figures a `LakeWrite`'s observation measured while its rows were written ({} without one)."""
    figures = observed_figures(write.observation) if isinstance(write, LakeWrite) and write.observation else None
    if figures is None:
        return {}
    return {name: float(value) if isinstance(value, Decimal) else (0 if value is None else value)
            for name, value in figures.items()}


class ParquetLakeIOManager(ConfigurableIOManager):
    """Stores each asset (partition) as committed Parquet files in the lake."""

    lake: ResourceDependency[LakeStorage]
    pyspark: ResourceDependency[PySparkResource]

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        key_path = context.asset_key.path
        where = {"iceberg_table": ".".join(table_name(key_path))}
        if isinstance(obj, LakeWrite) and obj.partition_column is not None:
            written = store_partitions(self.lake, key_path, obj, context.run_id)
            commits = list(written.values())
            metadata: dict[str, Any] = {
                "partitions_written": len(written),
                "rows_written": sum(c.rows for c in commits),
                "path": self.lake.uri(self.lake.dataset_dir(key_path)),
                **where,
            }
            if commits:
                metadata |= {
                    "dagster/column_schema": table_schema_metadata(self.lake.read_schema(key_path, min(written))),
                    "snapshot_id": str(commits[0].snapshot_id),  # one commit for every partition
                    "batch_id": commits[0].batch_id,
                    "first_partition_written": min(written),
                    "last_partition_written": max(written),
                }
            else:
                metadata["dagster/column_schema"] = MetadataValue.text("none")
            context.add_output_metadata(metadata | observed_metadata(obj))
            return
        partition = context.asset_partition_key if context.has_asset_partitions else None
        commit = store(self.lake, key_path, partition, obj, context.run_id)
        if isinstance(obj, LakeWrite):
            context.add_output_metadata(observed_metadata(obj))
        frame = obj.frame if isinstance(obj, LakeWrite) else obj
        schema = frame.schema if isinstance(frame, pa.Table) else self.lake.read_schema(key_path, partition)
        context.add_output_metadata(
            {
                "dagster/row_count": commit.rows,
                "dagster/column_schema": table_schema_metadata(schema),
                "path": self.lake.uri(self.lake.dataset_dir(key_path, partition)),
                **where,
                "snapshot_id": str(commit.snapshot_id),
                "batch_id": commit.batch_id,
            }
        )

    def load_input(self, context: InputContext) -> Any:
        key_path = context.asset_key.path
        partition: str | None = None
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) != 1:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: loading {len(keys)} partitions at once is not supported; "
                    "read one partition per run"
                )
            partition = keys[0]
        if context.dagster_type.typing_type is pa.Table:
            return self.lake.read_arrow(key_path, partition)
        if context.dagster_type.typing_type is ds.Dataset:
            return self.lake.read_dataset(key_path, partition)
        return read_spark(self.pyspark.spark_session, self.lake, key_path, partition)
