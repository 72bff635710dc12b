"""raw/<source>/<table>: one asset per configured source table, daily partitioned.

Grain: one row per delivered record, as delivered (all CSV/JSON values as strings) plus
`_ingested_at`, `_source`, `_batch_id`, `_source_file`. Rows that cannot be parsed go to
`quarantine/raw/<source>/<table>/ingest_date=D` with the reason; they do not stop the good rows.
"""


import pyarrow as pa
from dagster import AssetExecutionContext, AssetsDefinition, Failure, RetryPolicy, asset

from lake_assets.assets.partitions import daily_partitions
from lake_assets.config import FileSourceConfig, FileTableConfig, PipelineConfig
from lake_assets.ingestion import DataIngestionPipeline, FileSource, SourceUnavailable
from lake_assets.resources.lake_storage import LakeStorage


def raw_asset_key(source: FileSourceConfig, table: FileTableConfig) -> list[str]:
    return ["raw", source.name, table.name]


def _build_raw_asset(config: PipelineConfig, source: FileSourceConfig, table: FileTableConfig) -> AssetsDefinition:
    @asset(
        key=raw_asset_key(source, table),
        group_name="ingest",
        partitions_def=daily_partitions(config),
        kinds={"python", "parquet"},
        description=f"{table.format.upper()} files `{table.pattern}` from `{source.path}`, as delivered "
        f"(feeds entity `{table.entity}`). Grain: one row per delivered record.",
        metadata={"entity": table.entity, "source_kind": source.kind},
        retry_policy=RetryPolicy(max_retries=config.retries.max, delay=config.retries.delay_seconds),
    )
    def _raw(context: AssetExecutionContext, lake: LakeStorage) -> pa.Table:
        day = context.partition_key
        try:
            result = DataIngestionPipeline(FileSource(source, table)).run(day)
        except SourceUnavailable as exc:
            # A missing or unreadable file does not fix itself within a retry delay.
            raise Failure(description=str(exc), allow_retries=False) from exc
        # Written (possibly empty) on every run so a rerun clears the previous run's rejects.
        lake.write_arrow(["quarantine", *raw_asset_key(source, table)], day, result.rejects)
        context.add_output_metadata(
            {"quarantined_rows": result.rejects.num_rows, "source_files": ", ".join(result.origins)}
        )
        if result.rejects.num_rows:
            context.log.warning(f"{result.rejects.num_rows} unparsable rows quarantined for {source.name}.{table.name}")
        return result.rows

    return _raw


def build_raw_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_raw_asset(config, source, table) for source in config.sources for table in source.tables]
