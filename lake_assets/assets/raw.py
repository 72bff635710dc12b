"""raw/<source>/<table>: one asset per configured source table (file pattern, database table or
query, API endpoint), daily partitioned.

Grain: one row per delivered record, every value as text, plus `_ingested_at`, `_source`, `_batch_id`
and the origin (`_source_file` / `_source_query` / `_source_url`). Rows that fail validation go to
`quarantine/raw/<source>/<table>/ingest_date=D` with the reason; they do not stop the good rows.

Both outputs of the step are stored by the lake IO manager. The ingestion streams the delivery chunk
by chunk into a spool outside the lake (an IO manager receives an output as one value, and the whole
extraction must never be held in memory), then the step yields, in this order: the quarantine
(`quarantine/raw/<source>/<table>`, group `quarantine`, an asset of its own), committed before the step
resumes; then, unless every row was rejected (the step then fails, and the old raw partition and its
cursor stay), the raw output as a `LakeWrite` of the spooled files with the commit state (cursor, file
fingerprints, columns), which the IO manager adopts into the partition in one commit. A selection that
leaves the quarantine out stores it with the IO manager's own write (`assets/side_tables.py`). The
quarantine cannot be materialized without its raw table: it is a by-product of the ingestion.
A run over a range of days delivers them one after the other, oldest first, each committed before the
next starts, so each day's cursor starts where the day before left it (`assets/day_range.py`).
"""


from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    Failure,
    Output,
    multi_asset,
)
from sqlalchemy.engine import make_url

from lake_assets.assets.day_range import each_day
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions
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
    make_source,
    quarantine_key,
    raw_key,
)
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
        backfill_policy=DAILY_BACKFILL_POLICY,
        retry_policy=retry_policy(config.retries),
        can_subset=True,
    )
    def _raw(context: AssetExecutionContext, lake: LakeStorage) -> Iterator[Output]:
        if AssetKey(key) not in context.selected_asset_keys:
            raise Failure(
                description=f"{'/'.join(rejects_key)} is written by the ingestion of {'/'.join(key)}: "
                "select that asset with it",
                allow_retries=False,
            )
        yield from each_day(context, lake, lambda day: _ingest_day(context, lake, day))

    def _ingest_day(context: AssetExecutionContext, lake: LakeStorage, day: str) -> Iterator[Output]:
        """One day's delivery: its cursor starts where the previous day's commit left it."""
        try:
            ingest = make_source(source, table)
            with DataIngestionPipeline(ingest, lake).deliver(day) as delivery:
                # Stored before this code resumes: the raw partition is committed only after its quarantine.
                yield from store_side_table(context, lake, "quarantine", rejects_key, delivery.quarantine, day)
                delivery.raise_if_unusable()
                result = delivery.result
                if result.quarantined:
                    context.log.warning(f"{result.quarantined} rows quarantined for {source.name}.{table.name}")
                if result.new_columns or result.missing_columns:
                    drift = f"new {result.new_columns}, missing {result.missing_columns}"
                    context.log.warning(f"schema drift in {source.name}.{table.name}: {drift}")
                metadata = result.delivery_metadata()
                if isinstance(ingest, FileSource):
                    # Zero-byte and header-only files: delivered, ingested, yet without a single record.
                    metadata["empty_files"] = ", ".join(ingest.empty_files) or "-"
                # The IO manager adds the commit's row count, column schema, path, batch and snapshot ids.
                yield Output(delivery.raw, output_name="raw", metadata=metadata)
        except IngestionError as exc:
            # Deterministic failures (credentials, 401, missing table, drift under `fail`) must not
            # burn retries; transient ones (refused connection, 5xx after retries) may be retried.
            raise Failure(description=str(exc), allow_retries=exc.retryable) from None

    return _raw


def build_raw_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_raw_asset(config, source, table) for source in config.sources for table in source.tables]
