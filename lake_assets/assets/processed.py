"""processed/<entity>: every raw table mapped to the entity, standardized, daily partitioned.

Grain: one row per entity record version. For `keep_versions` entities (customer, product) that is
one row per (key, `updated_at`): several changes of one customer on one day all survive, because the
SCD2 dimension must see each of them; only re-deliveries of the same version are removed (the latest
ingest wins, then the latest source file, then a content hash, so reruns pick the same row). For
location and sale it is one row per key.
Rows that cannot be standardized (missing required key, `reject` null rule, unparsable
date/number) go to `quarantine/processed/<entity>/ingest_date=D` with the reason, and are counted in
metadata (total and per reason). Null rules, timestamp formats and aggregations come from the
`standardize` config section, never from code per source.
Audit columns: `_processed_at`, `_run_id`, `_source`, `_row_hash` (SHA-256 over the business columns).

processed/agg/<name>: optional aggregates of one entity (config `standardize.entities.<e>.aggregations`).
"""


from functools import reduce

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, asset
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.raw import raw_asset_key
from lake_assets.config import EntityStandardizeConfig, PipelineConfig
from lake_assets.entities import ENTITIES, EntitySchema
from lake_assets.io_managers.spark_lake import write_spark
from lake_assets.resources.lake_storage import LakeStorage
from spark.aggregations import aggregate, metric_column
from spark.standardize import (
    DEFAULT_NULL_TOKENS,
    DEFAULT_TIMESTAMP_FORMATS,
    REJECT_REASON,
    add_audit_columns,
    apply_null_defaults,
    cast_to_schema,
    deduplicate_latest,
    rename_columns,
    snake_case_columns,
    split_rejects,
)


def _null_rules(entity: EntitySchema, rules: EntityStandardizeConfig) -> tuple[dict[str, str], tuple[str, ...]]:
    """(defaults, required columns) for one entity; a `keep` rule on a key column is a config error."""
    kept_keys = sorted(c for c, r in rules.nulls.items() if r.rule == "keep" and c in entity.required)
    if kept_keys:
        raise ValueError(
            f"standardize.entities.{entity.name}.nulls: {kept_keys} are required by the entity; "
            "a NULL there can only be rejected or defaulted"
        )
    defaults = {c: r.value for c, r in rules.nulls.items() if r.rule == "default" and r.value is not None}
    rejected = tuple(c for c, r in rules.nulls.items() if r.rule == "reject" and c not in entity.required)
    return defaults, (*entity.required, *rejected)


def _build_processed_asset(config: PipelineConfig, entity: EntitySchema) -> AssetsDefinition | None:
    feeds = config.tables_for_entity(entity.name)
    if not feeds:
        return None
    ins = {f"raw_{i}": AssetIn(key=raw_asset_key(source, table)) for i, (source, table) in enumerate(feeds)}
    renames = [table.columns for _, table in feeds]
    rules = config.standardize.entities.get(entity.name, EntityStandardizeConfig())
    formats = tuple(rules.timestamp_formats or config.standardize.timestamp_formats or DEFAULT_TIMESTAMP_FORMATS)
    null_tokens = tuple(
        DEFAULT_NULL_TOKENS if config.standardize.null_tokens is None else config.standardize.null_tokens
    )
    defaults, required = _null_rules(entity, rules)

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
            timestamp_formats=formats,
            null_tokens=null_tokens,
        )
        typed = apply_null_defaults(typed, defaults).persist()
        good, rejected = split_rejects(typed, required)
        quarantine_key = ["quarantine", "processed", entity.name]
        rejected_rows = write_spark(rejected, lake, quarantine_key, context.partition_key).rows
        reasons = {}
        if rejected_rows:
            # One reason string can list several problems; count per whole reason (bounded by columns).
            reasons = {r[REJECT_REASON]: r["n"] for r in rejected.groupBy(REJECT_REASON).agg(F.count("*").alias("n"))
                       .orderBy(F.desc("n")).limit(20).collect()}
        order = [c for c in (entity.cursor, "_ingested_at") if c]
        tie_breakers = [c for c in ("_source_file",) if c in good.columns]
        deduplicated = deduplicate_latest(good, entity.dedup_key, order, tie_breakers)
        result = add_audit_columns(deduplicated, list(entity.columns), context.run.run_id)
        input_rows = typed.count()
        context.add_output_metadata(
            {
                "input_rows": input_rows,
                "quarantined_rows": rejected_rows,
                "quarantine_reasons": ", ".join(f"{r}: {n}" for r, n in reasons.items()) or "none",
                "null_defaults": ", ".join(sorted(defaults)) or "none",
                "sources": len(feeds),
            }
        )
        if rejected_rows:
            context.log.warning(f"{rejected_rows} of {input_rows} {entity.name} rows quarantined")
        return result

    return _processed


def _build_aggregation_asset(config: PipelineConfig, entity: EntitySchema, index: int) -> AssetsDefinition:
    spec = config.standardize.entities[entity.name].aggregations[index]
    for expression in spec.metrics.values():
        metric_column(expression)  # fail at definitions load, not mid-run

    @asset(
        key=["processed", "agg", spec.name],
        group_name="standardize",
        ins={"processed": AssetIn(key=["processed", entity.name])},
        partitions_def=daily_partitions(config),
        kinds={"spark", "parquet"},
        description=f"Aggregate of processed/{entity.name}. Grain: one row per ({', '.join(spec.group_by)}).",
    )
    def _aggregate(context: AssetExecutionContext, processed: DataFrame) -> DataFrame:
        return aggregate(processed, spec.group_by, spec.metrics)

    return _aggregate


def build_processed_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    built = [_build_processed_asset(config, entity) for entity in ENTITIES.values()]
    aggregates = [
        _build_aggregation_asset(config, ENTITIES[name], i)
        for name, rules in config.standardize.entities.items()
        if config.tables_for_entity(name)
        for i in range(len(rules.aggregations))
    ]
    return [a for a in built if a is not None] + aggregates
