"""Kimball star schema builders (the curated layer): pure PySpark, built-in functions only.

* `scd2_merge` (spark/scd2.py): dimension with full history; grain one row per member version.
* `scd1_merge`: dimension that overwrites; grain one row per member.
* `build_dim_date`: generated calendar; grain one row per day.
* `build_fact_sales`: grain one row per sale line, dimension keys resolved as of the sale time.
  Money: `net_amount = quantity * unit_price * (1 - discount_rate) - discount`, computed exactly
  (decimal, no intermediate rounding) and rounded once to cents, half up; a missing rate or amount is 0.

Every dimension carries an unknown member with key -1; facts whose member cannot be resolved point
to it. Surrogate keys of existing rows never change: new rows get `max(existing key) + n`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark.scd2 import (  # noqa: F401  (re-exported: the star schema's public API)
    BASE_KEY,
    BEGINNING_OF_TIME,
    DELETE_FLAG,
    END_OF_TIME,
    SCD2_META,
    UNKNOWN_KEY,
    add_inferred_members,
    empty_scd2_dimension,
    scd2_merge,
    unknown_member,
    with_base_key,
)
from spark.standardize import row_hash


def scd1_merge(
    current: DataFrame | None,
    changes: DataFrame,
    *,
    key_col: str,
    natural_key: str,
    attributes: dict[str, str],
) -> DataFrame:
    """SCD Type 1: one row per member, latest attributes win, surrogate keys stable.

    Within a batch the row delivered last (`_ingested_at`, then a content hash) wins, so reruns
    pick the same row. An inferred member is completed in place (`is_inferred` becomes false).
    """
    spark = changes.sparkSession
    if current is None:
        current = unknown_member(spark, key_col, natural_key, attributes, scd2=False)
    attr_cols = list(attributes)
    delivered = F.col("_ingested_at") if "_ingested_at" in changes.columns else F.lit(None).cast("timestamp")
    pick = Window.partitionBy(natural_key).orderBy(delivered.desc_nulls_last(), row_hash(attr_cols).desc())
    latest = (
        changes.filter(F.col(natural_key).isNotNull())
        .withColumn("_r", F.row_number().over(pick))
        .filter("_r = 1")
        .select(natural_key, *attr_cols, F.lit(False).alias("is_inferred"))
    )
    kept = current.join(latest.select(natural_key), natural_key, "left_anti")
    existing_keys = current.select(natural_key, key_col)
    updated = with_base_key(latest.join(existing_keys, natural_key, "left"), current, key_col)
    new_key = F.col(BASE_KEY) + F.row_number().over(Window.partitionBy(F.col(key_col).isNull()).orderBy(natural_key))
    updated = updated.withColumn(key_col, F.coalesce(F.col(key_col), new_key).cast("bigint"))
    columns = [key_col, natural_key, *attr_cols, "is_inferred"]
    return kept.select(*columns).unionByName(updated.select(*columns))


def build_dim_date(spark: SparkSession, start: date, end: date, fiscal_year_start_month: int = 1) -> DataFrame:
    """One row per calendar day from `start` to `end` inclusive; `date_key` is YYYYMMDD.

    The fiscal year starts on the first day of `fiscal_year_start_month` and is named after the
    calendar year it ends in (start month 10: 2023-10-01 is fiscal 2024, fiscal month 1).
    """
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
            F.month(fiscal_month).alias("fiscal_month"),
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


def re_resolve_keys(facts: DataFrame, dim: DataFrame, natural_key: str, key_col: str, at: str = "sold_at") -> DataFrame:
    """`facts` (rows already resolved) with `key_col` resolved again as of `facts[at]`, after the
    dimension's history changed (a late record spliced in): the row's key gives its member (through
    `dim`), the member's version valid at `at` its new key (-1 when none is: deleted then). A key with
    no member (-1, or a key `dim` lacks) is left as it is. Same rows, same columns."""
    members = F.broadcast(dim.filter(F.col(key_col) != UNKNOWN_KEY).select(
        F.col(key_col).alias("_rr_old"), F.col(natural_key).alias("_rr_member")))
    named = facts.join(members, facts[key_col] == members["_rr_old"], "left")
    versions = F.broadcast(dim.filter(F.col(key_col) != UNKNOWN_KEY).select(
        F.col(natural_key).alias("_rr_nk"), F.col(key_col).alias("_rr_new"),
        F.col("valid_from").alias("_rr_from"), F.col("valid_to").alias("_rr_to")))
    joined = named.join(
        versions,
        (named["_rr_member"] == versions["_rr_nk"]) & (named[at] >= versions["_rr_from"])
        & (named[at] < versions["_rr_to"]),
        "left",
    )
    resolved = F.when(F.col("_rr_member").isNull(), F.col(key_col)).otherwise(
        F.coalesce(F.col("_rr_new"), F.lit(UNKNOWN_KEY))).cast("bigint")
    return joined.withColumn(key_col, resolved).select(*facts.columns)


def net_amount(quantity: Column, unit_price: Column, discount_rate: Column, discount: Column) -> Column:
    """`quantity * unit_price * (1 - discount_rate) - discount`, rounded once to cents (half up).

    Every intermediate is an exact decimal (int x decimal(12,2) x decimal(10,6) fits decimal(38,10)
    without loss), so a source that computes its line totals at full precision is reproduced to the
    cent; turning the rate into an amount first and rounding it would drift by a cent on ties.
    """
    rate = F.coalesce(discount_rate.cast("decimal(9,6)"), F.lit(0).cast("decimal(9,6)"))
    exact = (
        quantity.cast("decimal(10,0)") * unit_price.cast("decimal(12,2)") * (F.lit(1).cast("decimal(1,0)") - rate)
        - F.coalesce(discount.cast("decimal(12,2)"), F.lit(0).cast("decimal(12,2)"))
    ).cast("decimal(38,10)")
    return F.round(exact, 2).cast("decimal(14,2)")


def build_fact_sales(
    sales: DataFrame,
    dim_customer: DataFrame,
    dim_product: DataFrame,
    dim_location: DataFrame,
    extra_columns: Mapping[str, str] | None = None,
) -> DataFrame:
    """One row per sale line. Customer and product keys are the versions valid at `sold_at`.

    `extra_columns` (name -> Spark type: the configured measures and degenerate dimensions) are carried
    from the sale line to the fact row; a column the input lacks (a day delivered before it was
    configured) is NULL.
    """
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

    def column(name: str, spark_type: str) -> Column:
        return (F.col(f"`{name}`") if name in facts.columns else F.lit(None)).cast(spark_type)

    rate = column("discount_rate", "decimal(9,6)")
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
        F.coalesce(rate, F.lit(0).cast("decimal(9,6)")).alias("discount_rate"),
        gross.alias("gross_amount"),
        net_amount(F.col("quantity"), F.col("unit_price"), rate, F.col("discount")).alias("net_amount"),
        F.col("card_number").alias("payment_token"),
        *[column(name, spark_type).alias(name) for name, spark_type in (extra_columns or {}).items()],
        "_source",
        "_batch_id",
    )
