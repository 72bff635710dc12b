"""processed/<entity>: every raw table mapped to the entity, standardized, daily partitioned.

Grain: one row per entity record version (customer/product: one row per key and `updated_at`;
location/sale: one row per key); exact re-deliveries removed, the latest ingest wins.
Rows that cannot be standardized (missing key, unparsable date/number) go to
`quarantine/processed/<entity>/ingest_date=D` with the reason, and are counted in metadata.
"""


from functools import reduce

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, asset
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.raw import raw_asset_key
from lake_assets.config import PipelineConfig
from lake_assets.entities import ENTITIES, EntitySchema
from lake_assets.io_managers.spark_lake import write_spark
from lake_assets.resources.lake_storage import LakeStorage
from spark.standardize import (
    add_audit_columns,
    cast_to_schema,
    deduplicate_latest,
    rename_columns,
    snake_case_columns,
    split_rejects,
)


def _build_processed_asset(config: PipelineConfig, entity: EntitySchema) -> AssetsDefinition | None:
    feeds = config.tables_for_entity(entity.name)
    if not feeds:
        return None
    ins = {f"raw_{i}": AssetIn(key=raw_asset_key(source, table)) for i, (source, table) in enumerate(feeds)}
    renames = [table.columns for _, table in feeds]

    @asset(
        key=["processed", entity.name],
        group_name="standardize",
        ins=ins,
        partitions_def=daily_partitions(config),
        kinds={"spark", "parquet"},
        description=f"Standardized `{entity.name}` records. Grain: one row per "
        + (f"({', '.join(entity.dedup_key)})." if entity.keep_versions else f"{', '.join(entity.key)}."),
    )
    def _processed(context: AssetExecutionContext, lake: LakeStorage, **raw_frames: DataFrame) -> DataFrame:
        frames = [
            rename_columns(snake_case_columns(frame), renames[i])
            for i, frame in enumerate(raw_frames[name] for name in ins)
        ]
        unioned = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
        typed = cast_to_schema(
            unioned,
            entity.columns,
            lowercase=entity.lowercase,
            uppercase=entity.uppercase,
            digits_only=entity.digits_only,
        ).persist()
        good, rejected = split_rejects(typed, entity.required)
        rejected_rows = write_spark(rejected, lake, ["quarantine", "processed", entity.name], context.partition_key).rows
        order = [c for c in (entity.cursor, "_ingested_at") if c]
        deduplicated = deduplicate_latest(good, entity.dedup_key, order)
        result = add_audit_columns(deduplicated, list(entity.columns), context.run.run_id)
        input_rows = typed.count()
        context.add_output_metadata(
            {"input_rows": input_rows, "quarantined_rows": rejected_rows, "sources": len(feeds)}
        )
        if rejected_rows:
            context.log.warning(f"{rejected_rows} of {input_rows} {entity.name} rows quarantined")
        return result

    return _processed


def build_processed_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    built = [_build_processed_asset(config, entity) for entity in ENTITIES.values()]
    return [a for a in built if a is not None]
