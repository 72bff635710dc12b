"""Kimball star schema builders (the curated layer): pure PySpark, built-in functions only.

* `scd2_merge`: dimension with full history; grain one row per member version.
* `scd1_merge`: dimension that overwrites; grain one row per member.
* `build_dim_date`: generated calendar; grain one row per day.
* `build_fact_sales`: grain one row per sale line, dimension keys resolved as of the sale time.

Every dimension carries an unknown member with key -1; facts whose member cannot be resolved point
to it. Surrogate keys of existing rows never change: new rows get `max(existing key) + n`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark.standardize import row_hash

UNKNOWN_KEY = -1
BEGINNING_OF_TIME = datetime(1900, 1, 1)
END_OF_TIME = datetime(9999, 12, 31)
SCD2_META = ("version", "valid_from", "valid_to", "is_current", "row_hash")


def _unknown_member(
    spark: SparkSession, key_col: str, natural_key: str, attributes: dict[str, str], scd2: bool
) -> DataFrame:
    values: list[Column] = [F.lit(UNKNOWN_KEY).cast("bigint").alias(key_col), F.lit("UNKNOWN").alias(natural_key)]
    for name, spark_type in attributes.items():
        filler = F.lit("Unknown") if spark_type == "string" else F.lit(None)
        values.append(filler.cast(spark_type).alias(name))
    if scd2:
        values += [
            F.lit(0).alias("version"),
            F.lit(BEGINNING_OF_TIME).cast("timestamp").alias("valid_from"),
            F.lit(END_OF_TIME).cast("timestamp").alias("valid_to"),
            F.lit(True).alias("is_current"),
            F.lit("unknown").alias("row_hash"),
        ]
    return spark.range(1).select(*values)


def empty_scd2_dimension(
    spark: SparkSession, key_col: str, natural_key: str, attributes: dict[str, str]
) -> DataFrame:
    """A dimension holding only its unknown member."""
    return _unknown_member(spark, key_col, natural_key, attributes, scd2=True)


def scd2_merge(
    current: DataFrame,
    changes: DataFrame,
    *,
    key_col: str,
    natural_key: str,
    attributes: dict[str, str],
    effective_col: str,
    type1_columns: Sequence[str] = (),
) -> DataFrame:
    """Apply one batch of changes to an SCD Type 2 dimension.

    `changes` may hold several versions of one member (ordered by `effective_col`) and exact
    duplicates. A change becomes a new version only when its Type-2 attributes differ from the
    version before it; changes not later than the member's current `valid_from` are ignored (they are
    already reflected), which makes re-applying the same batch a no-op. Type-1 columns are overwritten
    on every version of the member with the latest value. The first version of a member is valid from
    1900-01-01 so facts older than the first change still resolve. At most one current row and no
    overlapping validity per member, by construction.
    """
    type2_columns = [c for c in attributes if c not in type1_columns]
    attr_cols = list(attributes)
    columns = [key_col, natural_key, *attr_cols, *SCD2_META]

    incoming = (
        changes.filter(F.col(natural_key).isNotNull())
        .select(natural_key, *attr_cols, F.col(effective_col).alias("_effective"))
        .withColumn("_effective", F.coalesce("_effective", F.lit(BEGINNING_OF_TIME).cast("timestamp")))
        .withColumn("row_hash", row_hash(type2_columns))
        .dropDuplicates([natural_key, "_effective", "row_hash"])
    )
    open_rows = current.filter(F.col("is_current") & (F.col(key_col) != UNKNOWN_KEY))
    anchors = open_rows.select(
        natural_key,
        F.col("valid_from").alias("_anchor_from"),
        F.col("row_hash").alias("_anchor_hash"),
        F.col("version").alias("_anchor_version"),
    )
    candidates = incoming.join(anchors, natural_key, "left").filter(
        F.col("_anchor_from").isNull() | (F.col("_effective") > F.col("_anchor_from"))
    )
    ordered = Window.partitionBy(natural_key).orderBy("_effective", "row_hash")
    previous_hash = F.coalesce(F.lag("row_hash").over(ordered), F.col("_anchor_hash"))
    new_versions = (
        candidates.withColumn("_previous_hash", previous_hash)
        .filter(F.col("_previous_hash").isNull() | (F.col("_previous_hash") != F.col("row_hash")))
        .drop("_previous_hash")
    )
    # Re-number after dropping no-change rows, and derive validity from the neighbour versions.
    ordered = Window.partitionBy(natural_key).orderBy("_effective")
    new_versions = (
        new_versions.withColumn("_seq", F.row_number().over(ordered))
        .withColumn("version", F.coalesce(F.col("_anchor_version"), F.lit(0)) + F.col("_seq"))
        .withColumn(
            "valid_from",
            F.when(F.col("_anchor_from").isNull() & (F.col("_seq") == 1), F.lit(BEGINNING_OF_TIME).cast("timestamp"))
            .otherwise(F.col("_effective")),
        )
        .withColumn(
            "valid_to", F.coalesce(F.lead("_effective").over(ordered), F.lit(END_OF_TIME).cast("timestamp"))
        )
        .withColumn("is_current", F.lead("_effective").over(ordered).isNull())
    )
    first_change = new_versions.filter("_seq = 1").select(natural_key, F.col("_effective").alias("_closed_at"))

    max_key = current.agg(F.max(key_col)).collect()[0][0]
    base_key = max(int(max_key) if max_key is not None else 0, 0)
    keyed_new = new_versions.withColumn(
        key_col,
        (F.lit(base_key) + F.row_number().over(Window.orderBy(natural_key, "_effective"))).cast("bigint"),
    ).select(*columns)

    closed = (
        current.join(first_change, natural_key, "left")
        .withColumn(
            "valid_to",
            F.when(F.col("is_current") & F.col("_closed_at").isNotNull(), F.col("_closed_at")).otherwise(
                F.col("valid_to")
            ),
        )
        .withColumn("is_current", F.col("is_current") & F.col("_closed_at").isNull())
        .select(*columns)
    )
    merged = closed.unionByName(keyed_new)
    if type1_columns:
        latest = Window.partitionBy(natural_key).orderBy(F.col("_effective").desc())
        latest_type1 = (
            incoming.withColumn("_r", F.row_number().over(latest))
            .filter("_r = 1")
            .select(natural_key, *[F.col(c).alias(f"_new_{c}") for c in type1_columns])
        )
        merged = merged.join(latest_type1, natural_key, "left").select(
            *[
                F.coalesce(F.col(f"_new_{c}"), F.col(c)).alias(c) if c in type1_columns else F.col(c)
                for c in columns
            ]
        )
    return merged


def scd1_merge(
    current: DataFrame | None,
    changes: DataFrame,
    *,
    key_col: str,
    natural_key: str,
    attributes: dict[str, str],
) -> DataFrame:
    """SCD Type 1: one row per member, latest attributes win, surrogate keys stable."""
    spark = changes.sparkSession
    if current is None:
        current = _unknown_member(spark, key_col, natural_key, attributes, scd2=False)
    attr_cols = list(attributes)
    latest = changes.filter(F.col(natural_key).isNotNull()).dropDuplicates([natural_key]).select(natural_key, *attr_cols)
    kept = current.join(latest.select(natural_key), natural_key, "left_anti")
    existing_keys = current.select(natural_key, key_col)
    updated = latest.join(existing_keys, natural_key, "left")
    max_key = current.agg(F.max(key_col)).collect()[0][0]
    base_key = max(int(max_key) if max_key is not None else 0, 0)
    new_key = F.lit(base_key) + F.row_number().over(Window.partitionBy(F.col(key_col).isNull()).orderBy(natural_key))
    updated = updated.withColumn(key_col, F.coalesce(F.col(key_col), new_key).cast("bigint"))
    columns = [key_col, natural_key, *attr_cols]
    return kept.select(*columns).unionByName(updated.select(*columns))


def build_dim_date(spark: SparkSession, start: date, end: date, fiscal_year_start_month: int = 1) -> DataFrame:
    """One row per calendar day from `start` to `end` inclusive; `date_key` is YYYYMMDD."""
    days = (end - start).days + 1
    full_date = F.date_add(F.lit(start), F.col("id").cast("int"))
    fiscal_shift = (13 - fiscal_year_start_month) % 12
    fiscal_month = F.add_months(F.col("full_date"), fiscal_shift)
    return (
        spark.range(days)
        .select(full_date.alias("full_date"))
        .select(
            F.date_format("full_date", "yyyyMMdd").cast("int").alias("date_key"),
            "full_date",
            F.dayofmonth("full_date").alias("day_of_month"),
            # ISO day of week: Monday = 1 ... Sunday = 7.
            (((F.dayofweek("full_date") + 5) % 7) + 1).alias("day_of_week"),
            F.date_format("full_date", "EEEE").alias("day_name"),
            F.weekofyear("full_date").alias("iso_week"),
            F.year(F.date_add("full_date", 4 - (((F.dayofweek("full_date") + 5) % 7) + 1))).alias("iso_year"),
            F.month("full_date").alias("month"),
            F.date_format("full_date", "MMMM").alias("month_name"),
            F.quarter("full_date").alias("quarter"),
            F.year("full_date").alias("year"),
            F.dayofweek("full_date").isin(1, 7).alias("is_weekend"),
            F.year(fiscal_month).alias("fiscal_year"),
            F.quarter(fiscal_month).alias("fiscal_quarter"),
        )
    )


def _as_of_key(facts: DataFrame, dim: DataFrame, natural_key: str, key_col: str, at: str) -> DataFrame:
    """Attach `key_col` of the dimension version valid at `facts[at]` (or the unknown member)."""
    versions = F.broadcast(
        dim.filter(F.col(key_col) != UNKNOWN_KEY).select(
            F.col(natural_key).alias("_nk"), F.col(key_col).alias(f"_{key_col}"), "valid_from", "valid_to"
        )
    )
    joined = facts.join(
        versions,
        (facts[natural_key] == versions["_nk"])
        & (facts[at] >= versions["valid_from"])
        & (facts[at] < versions["valid_to"]),
        "left",
    )
    return joined.withColumn(key_col, F.coalesce(F.col(f"_{key_col}"), F.lit(UNKNOWN_KEY)).cast("bigint")).drop(
        "_nk", f"_{key_col}", "valid_from", "valid_to"
    )


def build_fact_sales(
    sales: DataFrame, dim_customer: DataFrame, dim_product: DataFrame, dim_location: DataFrame
) -> DataFrame:
    """One row per sale line. Customer and product keys are the versions valid at `sold_at`."""
    facts = _as_of_key(sales, dim_customer, "customer_id", "customer_key", "sold_at")
    facts = _as_of_key(facts, dim_product, "product_id", "product_key", "sold_at")
    locations = F.broadcast(
        dim_location.filter(F.col("location_key") != UNKNOWN_KEY).select(
            F.col("location_id").alias("_lid"), F.col("location_key").alias("_lkey")
        )
    )
    facts = facts.join(locations, facts["location_id"] == locations["_lid"], "left").withColumn(
        "location_key", F.coalesce(F.col("_lkey"), F.lit(UNKNOWN_KEY)).cast("bigint")
    )
    gross = (F.col("quantity").cast("decimal(14,2)") * F.col("unit_price")).cast("decimal(14,2)")
    return facts.select(
        "sale_line_id",
        "order_id",
        F.date_format("sold_at", "yyyyMMdd").cast("int").alias("date_key"),
        "customer_key",
        "product_key",
        "location_key",
        "sold_at",
        "quantity",
        "unit_price",
        F.coalesce(F.col("discount"), F.lit(0).cast("decimal(12,2)")).alias("discount"),
        gross.alias("gross_amount"),
        (gross - F.coalesce(F.col("discount"), F.lit(0))).cast("decimal(14,2)").alias("net_amount"),
        F.col("card_number").alias("payment_token"),
        "_source",
        "_batch_id",
    )
