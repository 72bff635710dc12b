"""curated/*: the Kimball star schema, built only from masked/* (never from unmasked layers).

* dim_customer, dim_product: SCD Type 2, one row per member version, unpartitioned. Each run applies
  the masked partitions committed since the last applied one (up to the run's partition), reading the
  previous dimension state plus those days only, never the raw history.
* dim_location: SCD Type 1, one row per location.
* dim_date: generated calendar, one row per day.
* fact_sales: one row per sale line, daily partitioned; keys resolved as of the sale time.
"""


from datetime import date, datetime, timezone

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Output,
    asset,
)
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake_assets.assets.partitions import daily_partitions, run_partition
from lake_assets.config import PipelineConfig
from lake_assets.entities import CUSTOMER, LOCATION, PRODUCT, EntitySchema
from lake_assets.io_managers.parquet_lake import table_schema_metadata
from lake_assets.io_managers.spark_lake import read_spark, read_spark_if_exists, write_spark
from lake_assets.resources.lake_storage import LakeStorage
from spark.star_schema import (
    UNKNOWN_KEY,
    build_dim_date,
    build_fact_sales,
    empty_scd2_dimension,
    scd1_merge,
    scd2_merge,
)

STAR = "star_schema"
DIMENSION_KEYS = {"dim_customer": "customer_key", "dim_product": "product_key", "dim_location": "location_key"}


def _attributes(entity: EntitySchema, exclude: tuple[str, ...]) -> dict[str, str]:
    return {c: t for c, t in entity.columns.items() if c not in (*entity.key, *exclude)}


def _pending_partitions(
    lake: LakeStorage, source_key: list[str], applied: dict[str, str], up_to: str | None
) -> list[tuple[str, str]]:
    """(partition, batch_id) of committed source partitions not yet applied, oldest first."""
    pending = []
    for partition in lake.committed_partitions(source_key):
        if up_to is not None and partition > up_to:
            continue
        manifest = lake.read_manifest(source_key, partition)
        if manifest is not None and applied.get(partition) != manifest.batch_id:
            pending.append((partition, manifest.batch_id))
    return pending


def _key_checks(name: str, key_col: str, natural_key: str, scd2: bool) -> list[AssetCheckSpec]:
    specs = [AssetCheckSpec("surrogate_key_unique", asset=["curated", name], blocking=True,
                            description=f"{key_col} is unique and not null")]
    if scd2:
        specs.append(AssetCheckSpec("one_current_row_per_member", asset=["curated", name], blocking=True,
                                    description=f"exactly one is_current row per {natural_key}, no overlaps"))
    return specs


def _key_check_results(df: DataFrame, key_col: str, natural_key: str, scd2: bool) -> list[AssetCheckResult]:
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(key_col).alias("distinct_keys"),
        F.sum(F.col(key_col).isNull().cast("int")).alias("null_keys"),
    ).collect()[0]
    results = [
        AssetCheckResult(
            check_name="surrogate_key_unique",
            passed=bool(stats["rows"] == stats["distinct_keys"] and not stats["null_keys"]),
            metadata={"rows": stats["rows"], "distinct_keys": stats["distinct_keys"], "null_keys": stats["null_keys"] or 0},
        )
    ]
    if scd2:
        per_member = df.groupBy(natural_key).agg(F.sum(F.col("is_current").cast("int")).alias("current"))
        bad_current = per_member.filter("current != 1").count()
        ordered = df.selectExpr(
            natural_key, "valid_from", "valid_to",
            f"lead(valid_from) over (partition by {natural_key} order by valid_from) as next_from",
        )
        overlaps = ordered.filter("next_from is not null and next_from != valid_to").count()
        results.append(
            AssetCheckResult(
                check_name="one_current_row_per_member",
                passed=bad_current == 0 and overlaps == 0,
                metadata={"members_without_exactly_one_current": bad_current, "gaps_or_overlaps": overlaps},
            )
        )
    return results


def _build_scd2_dimension(config: PipelineConfig, name: str, entity: EntitySchema, key_col: str) -> AssetsDefinition:
    attributes = _attributes(entity, exclude=(entity.cursor,) if entity.cursor else ())
    natural_key = entity.key[0]
    source_key = ["masked", entity.name]

    @asset(
        key=["curated", name],
        group_name=STAR,
        deps=[AssetKey(source_key)],
        kinds={"spark", "parquet"},
        check_specs=_key_checks(name, key_col, natural_key, scd2=True),
        description=f"SCD Type 2 dimension of {entity.name}. Grain: one row per {natural_key} version; "
        f"{key_col} stable across runs; unknown member {key_col} = {UNKNOWN_KEY}.",
    )
    def _dimension(context: AssetExecutionContext, pyspark: PySparkResource, lake: LakeStorage):
        spark = pyspark.spark_session
        own_key = ["curated", name]
        manifest = lake.read_manifest(own_key)
        applied: dict[str, str] = dict(manifest.extra.get("applied", {})) if manifest else {}
        state = read_spark_if_exists(spark, lake, own_key)
        if state is None:
            state = empty_scd2_dimension(spark, key_col, natural_key, attributes)
        pending = _pending_partitions(lake, source_key, applied, run_partition(context))
        for partition, batch_id in pending:
            changes = read_spark(spark, lake, source_key, partition)
            state = scd2_merge(
                state, changes, key_col=key_col, natural_key=natural_key,
                attributes=attributes, effective_col=entity.cursor or "_ingested_at",
            ).localCheckpoint()  # cut the lineage: each day's merge builds on the last
            applied[partition] = batch_id
        written = write_spark(state, lake, own_key, None, extra={"applied": applied})
        result = read_spark(spark, lake, own_key, None)
        yield Output(
            None,
            metadata={
                "dagster/row_count": written.rows,
                "dagster/column_schema": table_schema_metadata(lake.read_schema(own_key)),
                "applied_partitions": ", ".join(p for p, _ in pending) or "none (up to date)",
            },
        )
        yield from _key_check_results(result, key_col, natural_key, scd2=True)

    return _dimension


def _build_dim_location(config: PipelineConfig) -> AssetsDefinition:
    attributes = _attributes(LOCATION, exclude=())
    source_key = ["masked", LOCATION.name]

    @asset(
        key=["curated", "dim_location"],
        group_name=STAR,
        deps=[AssetKey(source_key)],
        kinds={"spark", "parquet"},
        check_specs=_key_checks("dim_location", "location_key", "location_id", scd2=False),
        description="SCD Type 1 dimension of store locations. Grain: one row per location_id; "
        f"unknown member location_key = {UNKNOWN_KEY}.",
    )
    def dim_location(context: AssetExecutionContext, pyspark: PySparkResource, lake: LakeStorage):
        spark = pyspark.spark_session
        own_key = ["curated", "dim_location"]
        manifest = lake.read_manifest(own_key)
        applied: dict[str, str] = dict(manifest.extra.get("applied", {})) if manifest else {}
        state = read_spark_if_exists(spark, lake, own_key)
        pending = _pending_partitions(lake, source_key, applied, run_partition(context))
        for partition, batch_id in pending:
            changes = read_spark(spark, lake, source_key, partition)
            state = scd1_merge(
                state, changes, key_col="location_key", natural_key="location_id", attributes=attributes
            ).localCheckpoint()
            applied[partition] = batch_id
        if state is None:
            state = scd1_merge(
                None, spark.createDataFrame([], "location_id string").select(
                    "location_id", *[F.lit(None).cast(t).alias(c) for c, t in attributes.items()]),
                key_col="location_key", natural_key="location_id", attributes=attributes,
            )
        written = write_spark(state, lake, own_key, None, extra={"applied": applied})
        yield Output(None, metadata={"dagster/row_count": written.rows,
                                     "dagster/column_schema": table_schema_metadata(lake.read_schema(own_key))})
        yield from _key_check_results(read_spark(spark, lake, own_key, None), "location_key", "location_id", scd2=False)

    return dim_location


def _build_dim_date(config: PipelineConfig) -> AssetsDefinition:
    @asset(
        key=["curated", "dim_date"],
        group_name=STAR,
        kinds={"spark", "parquet"},
        check_specs=[AssetCheckSpec("date_key_unique", asset=["curated", "dim_date"], blocking=True)],
        description="Generated calendar. Grain: one row per day, date_key = YYYYMMDD, from 1 January of the "
        "start year to 31 December of the year after the latest run.",
    )
    def dim_date(context: AssetExecutionContext, pyspark: PySparkResource):
        partition = run_partition(context)
        latest = date.fromisoformat(partition) if partition else datetime.now(timezone.utc).date()
        latest = max(latest, datetime.now(timezone.utc).date())
        start = date(config.start_date.year, 1, 1)
        end = date(latest.year + 1, 12, 31)
        calendar = build_dim_date(pyspark.spark_session, start, end)
        rows = (end - start).days + 1
        distinct = calendar.select("date_key").distinct().count()
        yield Output(calendar, metadata={"first_day": start.isoformat(), "last_day": end.isoformat()})
        yield AssetCheckResult(check_name="date_key_unique", passed=distinct == rows,
                               metadata={"rows": rows, "distinct_date_keys": distinct})

    return dim_date


def _build_fact_sales(config: PipelineConfig) -> AssetsDefinition:
    checks = [
        AssetCheckSpec("sale_line_unique", asset=["curated", "fact_sales"], blocking=True),
        AssetCheckSpec("foreign_keys_resolve", asset=["curated", "fact_sales"], blocking=True,
                       description="every customer/product/location/date key exists in its dimension"),
    ]

    @asset(
        key=["curated", "fact_sales"],
        group_name=STAR,
        partitions_def=daily_partitions(config),
        ins={
            "sales": AssetIn(key=["masked", "sale"]),
            "dim_customer": AssetIn(key=["curated", "dim_customer"]),
            "dim_product": AssetIn(key=["curated", "dim_product"]),
            "dim_location": AssetIn(key=["curated", "dim_location"]),
            "dim_date": AssetIn(key=["curated", "dim_date"]),
        },
        kinds={"spark", "parquet"},
        check_specs=checks,
        description="Sales fact. Grain: one row per sale line (sale_line_id). Customer and product keys are "
        "the dimension versions valid at sold_at; unresolvable members point to key -1. Partition "
        "ingest_date = the day the sale was ingested; rebuilding a day replaces that day only.",
    )
    def fact_sales(
        context: AssetExecutionContext,
        sales: DataFrame,
        dim_customer: DataFrame,
        dim_product: DataFrame,
        dim_location: DataFrame,
        dim_date: DataFrame,
    ):
        facts = build_fact_sales(sales, dim_customer, dim_product, dim_location).withColumn(
            "ingest_date", F.lit(context.partition_key).cast("date")
        ).persist()
        stats = facts.agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("sale_line_id").alias("distinct_lines"),
            F.sum((F.col("customer_key") == UNKNOWN_KEY).cast("int")).alias("unknown_customer"),
            F.sum((F.col("product_key") == UNKNOWN_KEY).cast("int")).alias("unknown_product"),
            F.sum((F.col("location_key") == UNKNOWN_KEY).cast("int")).alias("unknown_location"),
            F.sum("net_amount").alias("net_amount"),
        ).collect()[0]
        orphans = {
            "customer_key": facts.join(dim_customer, "customer_key", "left_anti").count(),
            "product_key": facts.join(dim_product, "product_key", "left_anti").count(),
            "location_key": facts.join(dim_location, "location_key", "left_anti").count(),
            "date_key": facts.join(dim_date, "date_key", "left_anti").count(),
        }
        yield Output(
            facts,
            metadata={
                "unknown_customer_rows": int(stats["unknown_customer"] or 0),
                "unknown_product_rows": int(stats["unknown_product"] or 0),
                "unknown_location_rows": int(stats["unknown_location"] or 0),
                "net_amount_total": float(stats["net_amount"] or 0),
            },
        )
        yield AssetCheckResult(
            check_name="sale_line_unique",
            passed=stats["rows"] == stats["distinct_lines"],
            metadata={"rows": stats["rows"], "distinct_sale_lines": stats["distinct_lines"]},
        )
        yield AssetCheckResult(
            check_name="foreign_keys_resolve",
            passed=not any(orphans.values()),
            severity=AssetCheckSeverity.ERROR,
            metadata={f"orphan_{k}": v for k, v in orphans.items()},
        )

    return fact_sales


def build_curated_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [
        _build_scd2_dimension(config, "dim_customer", CUSTOMER, "customer_key"),
        _build_scd2_dimension(config, "dim_product", PRODUCT, "product_key"),
        _build_dim_location(config),
        _build_dim_date(config),
        _build_fact_sales(config),
    ]
