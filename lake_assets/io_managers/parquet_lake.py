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

A run over a range of days (a single-run backfill): an input over several days loads as `DayInputs`
(each day read as a one-day run reads it, when the step asks for it); the step stores each day itself
through `store_output` (the write and metadata of `handle_output`), oldest first, and outputs
`StoredDays`, which the IO manager only records (see `partition_range.py`, `assets/day_range.py`).

Every lake write goes through `store` / `store_partitions` (`lake_store.py`, the IO manager's own
write without Dagster): the raw table too, whose ingestion spools its files outside the lake and
hands them over as a `LakeWrite`; an asset calls `store` directly only for a side table a selection
left out (see `assets/side_tables.py`), and `DataIngestionPipeline.run` for callers without Dagster.
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
from dagster_pyspark import LazyPySparkResource

from lake_assets.io_managers.lake_store import store, store_partitions
from lake_assets.io_managers.lake_write import LakeWrite
from lake_assets.io_managers.partition_range import DayInputs, StoredDays
from lake_assets.io_managers.spark_lake import read_spark
from lake_assets.resources.lake_storage import LakeStorage, StagedBatch, table_name
from spark.observations import observed_figures


def table_schema_metadata(schema: pa.Schema) -> TableSchema:
    return TableSchema(columns=[TableColumn(name=f.name, type=str(f.type)) for f in schema])


def observed_metadata(write: Any) -> dict[str, Any]:
    """The figures a `LakeWrite`'s observation measured while its rows were written ({} without one)."""
    figures = observed_figures(write.observation) if isinstance(write, LakeWrite) and write.observation else None
    if figures is None:
        return {}
    return {name: float(value) if isinstance(value, Decimal) else (0 if value is None else value)
            for name, value in figures.items()}


def store_output(lake: LakeStorage, key_path: Sequence[str], partition: str | None, obj: Any,
                 run_id: str) -> dict[str, Any]:
    """Store one output the way the IO manager does (one partition, or a `LakeWrite` of several date
    partitions, one atomic commit) and return the metadata it reports for it. Also called by a step
    over a range of days for each day (`assets/day_range.py`)."""
    where = {"iceberg_table": ".".join(table_name(key_path))}
    if isinstance(obj, LakeWrite) and obj.partition_column is not None:
        written = store_partitions(lake, key_path, obj, run_id)
        commits = list(written.values())
        metadata: dict[str, Any] = {
            "partitions_written": len(written),
            "rows_written": sum(c.rows for c in commits),
            "path": lake.uri(lake.dataset_dir(key_path)),
            **where,
        }
        if commits:
            metadata |= {
                "dagster/column_schema": table_schema_metadata(lake.read_schema(key_path, min(written))),
                "snapshot_id": str(commits[0].snapshot_id),  # one commit for every partition
                "batch_id": commits[0].batch_id,
                "first_partition_written": min(written),
                "last_partition_written": max(written),
            }
        else:
            metadata["dagster/column_schema"] = MetadataValue.text("none")
        return metadata | observed_metadata(obj)
    frame = obj.frame if isinstance(obj, LakeWrite) else obj
    spooled = frame.data_schema() if isinstance(frame, StagedBatch) else None  # before the commit moves them
    commit = store(lake, key_path, partition, obj, run_id)
    if isinstance(frame, pa.Table):
        schema = frame.schema
    else:
        schema = spooled or lake.read_schema(key_path, partition)
    metadata = {
        "dagster/row_count": commit.rows,
        "dagster/column_schema": table_schema_metadata(schema),
        "path": lake.uri(lake.dataset_dir(key_path, partition)),
        **where,
        "snapshot_id": str(commit.snapshot_id),
        "batch_id": commit.batch_id,
    }
    return metadata | observed_metadata(obj)


class ParquetLakeIOManager(ConfigurableIOManager):
    """Stores each asset (partition) as committed Parquet files in the lake."""

    lake: ResourceDependency[LakeStorage]
    pyspark: ResourceDependency[LazyPySparkResource]

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        key_path = context.asset_key.path
        if isinstance(obj, StoredDays):
            # Committed day by day by the step; each day's materialization carries that day's metadata.
            context.add_output_metadata({
                "days_in_run": len(obj.rows_by_day),
                "first_day": min(obj.rows_by_day),
                "last_day": max(obj.rows_by_day),
                "rows_by_day": MetadataValue.json(dict(obj.rows_by_day)),
            })
            return
        partition: str | None = None
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) != 1:
                raise TypeError(f"{context.asset_key.to_user_string()}: a step over {len(keys)} days stores each "
                                "day as it goes (assets/day_range.py) and hands over `StoredDays`")
            partition = keys[0]
        context.add_output_metadata(store_output(self.lake, key_path, partition, obj, context.run_id))

    def load_input(self, context: InputContext) -> Any:
        key_path = context.asset_key.path
        if context.has_asset_partitions:
            keys = sorted(context.asset_partition_keys)
            if len(keys) != 1:
                return DayInputs(tuple(keys), lambda day: self._load(context, key_path, day))
            return self._load(context, key_path, keys[0])
        return self._load(context, key_path, None)

    def _load(self, context: InputContext, key_path: Sequence[str], partition: str | None) -> Any:
        if context.dagster_type.typing_type is pa.Table:
            return self.lake.read_arrow(key_path, partition)
        if context.dagster_type.typing_type is ds.Dataset:
            return self.lake.read_dataset(key_path, partition)
        return read_spark(self.pyspark.spark_session, self.lake, key_path, partition)
