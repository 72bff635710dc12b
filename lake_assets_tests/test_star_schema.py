"""dim_date (ISO weeks, fiscal periods), SCD1 with inferred members, snapshot delete detection."""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import SparkSession

from lake_assets.assets.curated import _scd2_changes
from spark.scd2 import add_inferred_members, empty_scd2_dimension, scd2_merge
from spark.star_schema import build_dim_date, scd1_merge


def test_dim_date_calendar_and_fiscal_periods(spark: SparkSession) -> None:
    days = build_dim_date(spark, date(2023, 9, 30), date(2024, 12, 30), fiscal_year_start_month=10)
    rows = {r.date_key: r for r in days.collect()}
    assert len(rows) == 458 and min(rows) == 20230930 and max(rows) == 20241230
    sep30, oct1, dec30 = rows[20230930], rows[20231001], rows[20241230]
    assert (sep30.fiscal_year, sep30.fiscal_quarter, sep30.fiscal_month) == (2023, 4, 12)
    assert (oct1.fiscal_year, oct1.fiscal_quarter, oct1.fiscal_month) == (2024, 1, 1)
    assert (sep30.day_name, sep30.is_weekend, sep30.day_of_week) == ("Saturday", True, 6)
    # 2024-12-30 is a Monday in ISO week 1 of 2025.
    assert (dec30.iso_week, dec30.iso_year, dec30.year, dec30.is_weekend) == (1, 2025, 2024, False)
    assert (dec30.month_name, dec30.quarter, dec30.day_of_month) == ("December", 4, 30)


def test_scd1_completes_inferred_location_in_place(spark: SparkSession) -> None:
    attrs = {"region": "string"}
    day1 = spark.createDataFrame([("S1", "MA")], "location_id string, region string")
    dim = scd1_merge(None, day1, key_col="location_key", natural_key="location_id", attributes=attrs)
    sold_at = spark.createDataFrame([("S2",), ("S1",)], "location_id string")
    dim = add_inferred_members(dim, sold_at, key_col="location_key", natural_key="location_id", attributes=attrs,
                               scd2=False).localCheckpoint()
    day2 = spark.createDataFrame(
        [("S2", "OR", datetime(2024, 1, 2, 1)), ("S2", "CO", datetime(2024, 1, 2, 2))],
        "location_id string, region string, _ingested_at timestamp",
    )
    dim = scd1_merge(dim, day2, key_col="location_key", natural_key="location_id", attributes=attrs)
    assert sorted(tuple(r) for r in dim.collect()) == [
        (-1, "UNKNOWN", "Unknown", False),
        (1, "S1", "MA", False),
        (2, "S2", "CO", False),  # the inferred key, completed with the row delivered last
    ]


def test_snapshot_delivery_deletes_absent_members(spark: SparkSession) -> None:
    attrs = {"city": "string"}
    kwargs = dict(key_col="customer_key", natural_key="customer_id", attributes=attrs, effective_col="updated_at",
                  delete_policy="close")
    first = spark.createDataFrame([("C1", "Boston", datetime(2024, 1, 1)), ("C2", "Austin", datetime(2024, 1, 1))],
                                  "customer_id string, city string, updated_at timestamp")
    state = scd2_merge(empty_scd2_dimension(spark, "customer_key", "customer_id", attrs), first, **kwargs)
    state = state.localCheckpoint()
    snapshot = spark.createDataFrame([("C1", "Boston", datetime(2024, 1, 1))],
                                     "customer_id string, city string, updated_at timestamp")
    changes = _scd2_changes(state, snapshot, "customer_id", attrs, "updated_at", "snapshot", "2024-01-02")
    after = scd2_merge(state, changes, **kwargs)
    got = sorted((r.customer_key, r.customer_id, r.valid_to, r.is_current) for r in after.collect())
    assert got == [
        (-1, "UNKNOWN", datetime(9999, 12, 31), True),
        (1, "C1", datetime(9999, 12, 31), True),
        (2, "C2", datetime(2024, 1, 3), False),  # deleted at the end of the snapshot's day
    ]
    # Delta deliveries (detection "none") never delete.
    unchanged = scd2_merge(state, _scd2_changes(state, snapshot, "customer_id", attrs, "updated_at", "none",
                                                "2024-01-02"), **kwargs)
    assert sorted(tuple(r) for r in unchanged.collect()) == sorted(tuple(r) for r in state.collect())
