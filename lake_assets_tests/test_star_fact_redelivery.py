"""A sale line re-delivered on a later day (a table loaded in full every day) is one fact row, in the
partition of its sale date, with the latest delivery's values; a line whose sale date changed leaves
its old date; rebuilding the earlier day does not bring an old version back. Inputs are written
straight into the lake; only curated/fact_sales runs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetKey, materialize
from pyspark.sql import SparkSession

from lake_assets.assets import build_all_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.io_managers.spark_lake import write_spark
from lake_assets.resources.lake_storage import LakeStorage
from spark.scd2 import empty_scd2_dimension, unknown_member
from spark.star_schema import build_dim_date

SALE_SCHEMA = ("sale_line_id string, order_id string, sold_at timestamp, customer_id string, product_id string, "
               "location_id string, quantity int, unit_price decimal(12,2), discount decimal(12,2), "
               "card_number string, _source string, _batch_id string")


def _sale(line: str, quantity: int, sold_on: int, delivered_on: int) -> tuple:
    price, discount = Decimal("10.00"), Decimal("0.00")
    return (line, "O1", datetime(2024, 1, sold_on, 9), None, None, None, quantity, price, discount, None, "pos",
            f"b{delivered_on}")


def test_redelivered_line_replaces_its_row_in_its_sale_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> None:
    deliveries = {
        "2024-01-01": [_sale("a", 1, 1, 1), _sale("b", 2, 1, 1), _sale("d", 4, 1, 1)],
        # Full re-delivery: b's quantity corrected, d's sale date corrected to the 2nd, c new.
        "2024-01-02": [_sale("a", 1, 1, 2), _sale("b", 5, 1, 2), _sale("c", 3, 2, 2), _sale("d", 4, 2, 2)],
    }
    lake, config = _setup(tmp_path, monkeypatch, spark, deliveries)

    def run(day: str) -> None:
        checks = _run_fact(config, day)
        assert checks["sale_line_unique"].passed, checks["sale_line_unique"].metadata

    def lines() -> dict[str, list[tuple[str, int, str]]]:
        """{sale-date partition: [(line, quantity, day that delivered it)]}."""
        return {day: sorted((r["sale_line_id"], r["quantity"], r["ingest_date"].isoformat())
                            for r in lake.read_arrow(["curated", "fact_sales"], day).to_pylist())
                for day in lake.committed_partitions(["curated", "fact_sales"])}

    run("2024-01-01")
    assert lines() == {"2024-01-01": [("a", 1, "2024-01-01"), ("b", 2, "2024-01-01"), ("d", 4, "2024-01-01")]}
    run("2024-01-02")
    expected = {"2024-01-01": [("a", 1, "2024-01-02"), ("b", 5, "2024-01-02")],
                "2024-01-02": [("c", 3, "2024-01-02"), ("d", 4, "2024-01-02")]}
    assert lines() == expected
    run("2024-01-01")  # a rebuild of the earlier day
    assert lines() == expected


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession,
           deliveries: dict[str, list[tuple]]) -> tuple[LakeStorage, PipelineConfig]:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    lake = LakeStorage(url=config.lake.url)
    for day, rows in deliveries.items():
        write_spark(spark.createDataFrame(rows, SALE_SCHEMA), lake, ["masked", "sale"], day)
    for name, key, natural in (("dim_customer", "customer_key", "customer_id"),
                               ("dim_product", "product_key", "product_id")):
        write_spark(empty_scd2_dimension(spark, key, natural, {"x": "string"}), lake, ["curated", name], None)
    write_spark(unknown_member(spark, "location_key", "location_id", {"x": "string"}, scd2=False), lake,
                ["curated", "dim_location"], None)
    write_spark(build_dim_date(spark, date(2024, 1, 1), date(2024, 1, 31)), lake, ["curated", "dim_date"], None)
    return lake, config


def _run_fact(config: PipelineConfig, day: str) -> dict:
    result = materialize(build_all_assets(config), selection=[AssetKey(["curated", "fact_sales"])],
                         partition_key=day, resources=build_resources(config), raise_on_error=False)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_line_moved_from_an_old_sale_date_ends_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> None:
    # Four days of new lines; day 4 delivers day 1's line "a1" again, sold on the 3rd now.
    deliveries = {f"2024-01-0{n}": [_sale(f"{chr(96 + n)}{k}", k, n, n) for k in (1, 2)] for n in range(1, 4)}
    deliveries["2024-01-04"] = [_sale("d1", 1, 4, 4), _sale("a1", 7, 3, 4)]
    lake, config = _setup(tmp_path, monkeypatch, spark, deliveries)
    for day in deliveries:
        assert _run_fact(config, day)["sale_line_unique"].passed
    rows = [r for p in lake.committed_partitions(["curated", "fact_sales"])
            for r in lake.read_arrow(["curated", "fact_sales"], p).to_pylist()]
    # The oracle from the input: every delivered line once, as its latest delivery has it.
    latest = {}
    for day in sorted(deliveries):
        for row in deliveries[day]:
            latest[row[0]] = (row[2].day, row[6])  # (sale day, quantity)
    assert sorted(r["sale_line_id"] for r in rows) == sorted(latest)
    assert {r["sale_line_id"]: (r["sold_at"].day, r["quantity"]) for r in rows} == latest


def test_a_line_delivered_twice_in_one_day_fails_the_uniqueness_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> None:
    # The same line twice in one delivery, with two sale dates: two fact rows in two partitions.
    deliveries = {"2024-01-01": [_sale("a", 1, 1, 1)],
                  "2024-01-02": [_sale("b", 1, 2, 2), _sale("x", 1, 1, 2), _sale("x", 2, 2, 2)]}
    lake, config = _setup(tmp_path, monkeypatch, spark, deliveries)
    assert _run_fact(config, "2024-01-01")["sale_line_unique"].passed
    check = _run_fact(config, "2024-01-02")["sale_line_unique"]
    assert not check.passed
    assert check.metadata["duplicated_sample"].value == "x"
