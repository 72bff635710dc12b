"""raw/<source>/<table>: one asset per configured source table (file pattern, database table or
query, API endpoint), daily partitioned.

Grain: one row per delivered record, every value as text, plus `_ingested_at`, `_source`, `_batch_id`
and the origin (`_source_file` / `_source_query` / `_source_url`). The ingestion pipeline streams the
rows into the lake and commits the partition itself (with its cursor / file fingerprints), so the asset
returns no value; downstream assets read the committed files. Rows that fail validation go to
`quarantine/raw/<source>/<table>/ingest_date=D` with the reason; they do not stop the good rows.

Why the ingestion writes these two tables itself, unlike the later layers, whose side tables are
outputs stored by the lake IO manager (`processed.py`, `masked.py`):
* the raw table: an IO manager receives an output as one value once the asset returns it, so the
  whole extraction would be held in memory; the pipeline streams it chunk by chunk into a staged batch
  and commits that.
* the raw quarantine: not for memory (the pipeline keeps only the rejected rows, never the whole
  extraction), but because it is committed in the middle of that staged batch: after the last chunk,
  before the raw commit, stamped with the raw batch id (`raw_batch_id`), and also when every row was
  rejected and the step then fails without committing raw. As an output, the asset would have to yield
  it between staging and commit, i.e. `DataIngestionPipeline.run` split in two across the Dagster
  boundary for every caller, those that run it without Dagster included (benchmarks, ingestion tests).
  So it is no asset; it is listed in the lake's tables (docs/storage.md) and kept by retention.
"""


from dagster import AssetExecutionContext, AssetsDefinition, Failure, MaterializeResult, asset
from sqlalchemy.engine import make_url

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.retry import retry_policy
from lake_assets.config import (
    ApiSourceConfig,
    DatabaseSourceConfig,
    DerivedTableConfig,
    FeedSourceConfig,
    PipelineConfig,
    SourceKindConfig,
    TableConfig,
)
from lake_assets.ingestion import DataIngestionPipeline, FileSource, IngestionError, make_source, raw_key
from lake_assets.io_managers.parquet_lake import table_schema_metadata
from lake_assets.resources.lake_storage import LakeStorage


def raw_asset_key(source: FeedSourceConfig, table: TableConfig | DerivedTableConfig) -> list[str]:
    return raw_key(source.name, table.name)


def _describe(source: SourceKindConfig, table: TableConfig) -> str:
    if isinstance(source, DatabaseSourceConfig):
        where = make_url(source.url).render_as_string(hide_password=True)
        what = f"table `{table.table}`" if table.table else "a SQL query"  # type: ignore[union-attr]
        mode = f"incremental on `{table.incremental.cursor}`" if table.incremental else "full load"  # type: ignore[union-attr]
        return f"Rows of {what} in `{where}` ({mode})"
    if isinstance(source, ApiSourceConfig):
        return f"Records of `{source.base_url.rstrip('/')}/{table.path.lstrip('/')}`"  # type: ignore[union-attr]
    return f"{table.format.upper()} files `{table.pattern}` from `{source.path}`"  # type: ignore[union-attr]


def _build_raw_asset(config: PipelineConfig, source: SourceKindConfig, table: TableConfig) -> AssetsDefinition:
    @asset(
        key=raw_asset_key(source, table),
        group_name="raw",
        partitions_def=daily_partitions(config),
        kinds={"python", "parquet"},
        description=f"{_describe(source, table)}, as delivered ("
        + (f"feeds entity `{table.entity}`). " if table.entity else "an input of derived tables). ")
        + "Grain: one row per delivered record.",
        metadata={"entity": table.entity or "-", "source_kind": source.kind},
        retry_policy=retry_policy(config.retries),
    )
    def _raw(context: AssetExecutionContext, lake: LakeStorage) -> MaterializeResult:
        day = context.partition_key
        try:
            ingest = make_source(source, table)
            result = DataIngestionPipeline(ingest, lake).run(day)
        except IngestionError as exc:
            # Deterministic failures (credentials, 401, missing table, drift under `fail`) must not
            # burn retries; transient ones (refused connection, 5xx after retries) may be retried.
            raise Failure(description=str(exc), allow_retries=exc.retryable) from None
        if result.quarantined:
            context.log.warning(f"{result.quarantined} rows quarantined for {source.name}.{table.name}")
        if result.new_columns or result.missing_columns:
            drift = f"new {result.new_columns}, missing {result.missing_columns}"
            context.log.warning(f"schema drift in {source.name}.{table.name}: {drift}")
        metadata = result.metadata()
        if isinstance(ingest, FileSource):
            # Zero-byte and header-only files: delivered, ingested, yet without a single record.
            metadata["empty_files"] = ", ".join(ingest.empty_files) or "-"
        metadata["dagster/column_schema"] = table_schema_metadata(result.schema)
        # The pipeline committed the rows to the lake itself; the IO manager only loads them downstream.
        return MaterializeResult(metadata=metadata)

    return _raw


def build_raw_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_raw_asset(config, source, table) for source in config.sources for table in source.tables]
