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

Every lake write goes through `store` / `store_partitions` (`lake_store.py`, the IO manager's own
write without Dagster): the raw table too, whose ingestion spools its files outside the lake and
hands them over as a `LakeWrite`; an asset calls `store` directly only for a side table a selection
left out (see `assets/side_tables.py`), and `DataIngestionPipeline.run` for callers without Dagster.
"""


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


class ParquetLakeIOManager(ConfigurableIOManager):
    """Stores each asset (partition) as committed Parquet files in the lake."""

    lake: ResourceDependency[LakeStorage]
    pyspark: ResourceDependency[LazyPySparkResource]

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
        frame = obj.frame if isinstance(obj, LakeWrite) else obj
        spooled = frame.data_schema() if isinstance(frame, StagedBatch) else None  # before the commit moves them
        commit = store(self.lake, key_path, partition, obj, context.run_id)
        if isinstance(frame, pa.Table):
            schema = frame.schema
        else:
            schema = spooled or self.lake.read_schema(key_path, partition)
        metadata = {
            "dagster/row_count": commit.rows,
            "dagster/column_schema": table_schema_metadata(schema),
            "path": self.lake.uri(self.lake.dataset_dir(key_path, partition)),
            **where,
            "snapshot_id": str(commit.snapshot_id),
            "batch_id": commit.batch_id,
        }
        context.add_output_metadata(metadata | observed_metadata(obj))

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
