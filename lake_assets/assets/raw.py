"""raw/<source>/<table>: one asset per configured source table (file pattern, database table or
query, API endpoint), daily partitioned.

Grain: one row per delivered record, every value as text, plus `_ingested_at`, `_source`, `_batch_id`
and the origin (`_source_file` / `_source_query` / `_source_url`). The ingestion pipeline streams the
rows into the lake and commits the partition itself (with its cursor / file fingerprints), so the asset
returns no value; downstream assets read the committed files. Rows that fail validation go to
`quarantine/raw/<source>/<table>/ingest_date=D` with the reason; they do not stop the good rows.

The ingestion streams the raw table into the lake itself: an IO manager receives an output as one
value once the asset returns it, so the whole extraction would be held in memory; the pipeline writes
it chunk by chunk into a staged batch and commits that (the `raw` output has no value). The raw
quarantine is an asset of its own (`quarantine/raw/<source>/<table>`, group `quarantine`), the second
output of the step, stored by the lake IO manager: the pipeline hands the rejected rows over after the
last chunk and before the raw commit (`DataIngestionPipeline.stages`), the step yields them, and the
ingestion resumes once they are committed, so they are kept even when every row was rejected and the
step then fails. A selection that leaves the quarantine out stores it with the IO manager's own write
(`assets/side_tables.py`). The quarantine cannot be materialized without its raw table: it is a
by-product of the ingestion, which commits the raw partition whatever is selected.
"""


from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    Output,
    multi_asset,
)
from sqlalchemy.engine import make_url

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.retry import retry_policy
from lake_assets.assets.side_tables import store_side_table
from lake_assets.config import (
    ApiSourceConfig,
    DatabaseSourceConfig,
    DerivedTableConfig,
    FeedSourceConfig,
    PipelineConfig,
    SourceKindConfig,
    TableConfig,
)
from lake_assets.ingestion import (
    QUARANTINE_LAYER,
    DataIngestionPipeline,
    FileSource,
    IngestionError,
    finish_ingestion,
    make_source,
    quarantine_key,
    raw_key,
)
from lake_assets.io_managers.lake_write import LakeWrite
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
    key = raw_asset_key(source, table)
    rejects_key = quarantine_key(source.name, table.name)

    @multi_asset(
        name="__".join(key),
        outs={
            "raw": AssetOut(
                is_required=False,  # the step is subsettable: a selection may leave the quarantine out
                key=key,
                group_name="raw",
                kinds={"python", "parquet"},
                description=f"{_describe(source, table)}, as delivered ("
                + (f"feeds entity `{table.entity}`). " if table.entity else "an input of derived tables). ")
                + "Grain: one row per delivered record.",
                metadata={"entity": table.entity or "-", "source_kind": source.kind},
            ),
            "quarantine": AssetOut(
                is_required=False,
                key=rejects_key,
                group_name=QUARANTINE_LAYER,
                kinds={"python", "parquet"},
                description=f"Delivered rows of raw/{source.name}/{table.name} that failed validation, as text, "
                "with `_reject_reason`. Grain: one row per rejected delivered row. Committed before the raw "
                "partition, also when every row was rejected and the step then fails.",
            ),
        },
        partitions_def=daily_partitions(config),
        retry_policy=retry_policy(config.retries),
        can_subset=True,
    )
    def _raw(context: AssetExecutionContext, lake: LakeStorage) -> Iterator[Output | MaterializeResult]:
        if AssetKey(key) not in context.selected_asset_keys:
            raise Failure(
                description=f"{'/'.join(rejects_key)} is written by the ingestion of {'/'.join(key)}: "
                "select that asset with it",
                allow_retries=False,
            )
        day = context.partition_key
        try:
            ingest = make_source(source, table)
            stages = DataIngestionPipeline(ingest, lake).stages(day)
            rejects = next(stages)
            # Stored before this code resumes: the ingestion commits raw only after its quarantine.
            yield from store_side_table(context, lake, "quarantine", rejects_key,
                                        LakeWrite(rejects.table, state=rejects.state))
            result = finish_ingestion(stages)
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
        yield MaterializeResult(asset_key=key, metadata=metadata)

    return _raw


def build_raw_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_raw_asset(config, source, table) for source in config.sources for table in source.tables]
