"""A correction of a customer, delivered late, reaches the warehouse's facts (`late_changes: apply`).

C1 is Boston from day 1 and Denver from 2 Jan 20:00 (delivered on day 2). Day 3 delivers Chicago
dated 2 Jan 12:00: a correction of history, spliced in between. C1's sales were loaded on day 2
(sold 1 Jan 10:00, 2 Jan 10:00, 2 Jan 15:00, 2 Jan 22:00) and day 3 (3 Jan 10:00). After day 3 the
warehouse's facts sold on 2 Jan after 12:00 and before 20:00 point at the Chicago version, the others
where they were. C2 (Austin from 2 Jan 08:00, its first version, sold 2 Jan 10:30) gets a record dated
20 Dec 2023 on day 3: it becomes C2's state from 1900 to 2 Jan 08:00, a window spanning every earlier
sale date, yet no sale of C2 falls in it, so 1 Jan (no key changes there) keeps its day-2 files.
Masked inputs are written straight into the lake; the curated and warehouse assets
run for day 2, then day 3 (or, in the slow tier, days 3 and 4 as one run over the range: the
dimensions run once, the fact's first day does the rewrite), against a real PostgreSQL warehouse.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetKey, AssetSelection, Definitions, define_asset_job, materialize
from pyspark.sql import SparkSession

from lake_assets.assets import build_all_assets
from lake_assets.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.io_managers.spark_lake import write_spark
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import Warehouse
from .helpers import warehouse_rows
from .test_dimension_late_changes import _customers, with_late_changes

SALE_SCHEMA = ("sale_line_id string, order_id string, sold_at timestamp, customer_id string, product_id string, "
               "location_id string, quantity int, unit_price decimal(12,2), discount decimal(12,2), "
               "card_number string, _source string, _batch_id string")
# line -> (sold at, the city the customer had then, from the deliveries above)
SALES = {
    "L1": (datetime(2024, 1, 1, 10), "Boston"),
    "L2": (datetime(2024, 1, 2, 10), "Boston"),
    "L3": (datetime(2024, 1, 2, 15), "Chicago"),
    "L4": (datetime(2024, 1, 2, 22), "Denver"),
    "L5": (datetime(2024, 1, 3, 10), "Denver"),
    "L6": (datetime(2024, 1, 4, 10), "Denver"),
    "L7": (datetime(2024, 1, 2, 10, 30), "Austin"),
}
CUSTOMER_OF = {"L7": "C2"}  # every other line is C1's
SELECTION = [AssetKey([layer, table]) for layer in ("curated", "warehouse")
             for table in ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales")]


def _sales(spark: SparkSession, lines: list[str], day: int):  # noqa: ANN202 - a Spark DataFrame
    rows = [(line, "O1", SALES[line][0], CUSTOMER_OF.get(line, "C1"), "P1", "S1", 1, Decimal("10.00"),
             Decimal("0.00"), None, "pos", f"b{day}") for line in lines]
    return spark.createDataFrame(rows, SALE_SCHEMA)


def _run(config: PipelineConfig, day: str, last: str | None = None) -> None:
    """The selected assets for `day`, or for `day`..`last` as one run over the range."""
    if last is None:
        result = materialize(build_all_assets(config), selection=SELECTION, partition_key=day,
                             resources=build_resources(config), raise_on_error=False)
    else:
        job = define_asset_job("days", selection=AssetSelection.assets(*SELECTION))
        defs = Definitions(assets=build_all_assets(config), resources=build_resources(config), jobs=[job])
        result = defs.resolve_job_def("days").execute_in_process(
            tags={RANGE_START_TAG: day, RANGE_END_TAG: last}, raise_on_error=False)
    failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    failed = [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in result.get_asset_check_evaluations()
              if not e.passed]
    assert not failed, failed


def _cities(config: PipelineConfig) -> dict[str, str]:
    """{line: city of the warehouse customer row its fact points at}."""
    return {r["sale_line_id"]: r["city"] for r in warehouse_rows(
        config, "SELECT f.sale_line_id, d.city FROM {p}fact_sales f JOIN {p}dim_customer d "
        "ON d.customer_key = f.customer_key")}


@pytest.mark.parametrize("last", [None, pytest.param("2024-01-04", marks=pytest.mark.slow)],
                         ids=["one_day", "range"])
def test_facts_sold_in_a_spliced_version_point_at_it_in_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession, postgres_warehouse: Warehouse,
    last: str | None,
) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", postgres_warehouse.url)
    monkeypatch.setenv("WAREHOUSE_SCHEMA", postgres_warehouse.schema)
    config = with_late_changes(load_config(), "apply")
    lake = LakeStorage(url=config.lake.url)
    customer = ["masked", "customer"]
    lake.write_arrow(customer, "2024-01-01", _customers([("C1", "Boston", datetime(2024, 1, 1, 8))],
                                                        datetime(2024, 1, 1, 23)))
    lake.write_arrow(customer, "2024-01-02", _customers([("C1", "Denver", datetime(2024, 1, 2, 20)),
                                                         ("C2", "Austin", datetime(2024, 1, 2, 8))],
                                                        datetime(2024, 1, 2, 23)))
    lake.write_arrow(customer, "2024-01-03", _customers([("C1", "Chicago", datetime(2024, 1, 2, 12)),
                                                         ("C2", "Miami", datetime(2023, 12, 20, 9))],
                                                        datetime(2024, 1, 3, 23)))
    write_spark(_sales(spark, ["L1", "L2", "L3", "L4", "L7"], 2), lake, ["masked", "sale"], "2024-01-02")
    write_spark(_sales(spark, ["L5"], 3), lake, ["masked", "sale"], "2024-01-03")
    write_spark(_sales(spark, ["L6"], 4), lake, ["masked", "sale"], "2024-01-04")

    _run(config, "2024-01-02")
    # Chicago has not arrived: L3 is resolved to Boston, the version valid then as far as anyone knew.
    assert _cities(config) == {"L1": "Boston", "L2": "Boston", "L3": "Boston", "L4": "Denver", "L7": "Austin"}

    _run(config, "2024-01-03", last)
    loaded = {line: sale for line, sale in SALES.items() if last or line != "L6"}
    versions = warehouse_rows(config, "SELECT customer_id, customer_key, city, valid_from, valid_to "
                                      "FROM {p}dim_customer WHERE customer_id IN ('C1', 'C2')")
    assert sorted((v["customer_id"], v["valid_from"], v["valid_to"], v["city"]) for v in versions) == [
        ("C1", datetime(1900, 1, 1), datetime(2024, 1, 2, 12), "Boston"),
        ("C1", datetime(2024, 1, 2, 12), datetime(2024, 1, 2, 20), "Chicago"),
        ("C1", datetime(2024, 1, 2, 20), datetime(9999, 12, 31), "Denver"),
        ("C2", datetime(1900, 1, 1), datetime(2024, 1, 2, 8), "Miami"),
        ("C2", datetime(2024, 1, 2, 8), datetime(9999, 12, 31), "Austin"),
    ]
    facts = {r["sale_line_id"]: r["customer_key"] for r in warehouse_rows(
        config, "SELECT sale_line_id, customer_key FROM {p}fact_sales")}
    # Each fact points at the warehouse version whose validity holds its sale time...
    valid_at = {line: [v["customer_key"] for v in versions if v["customer_id"] == CUSTOMER_OF.get(line, "C1")
                       and v["valid_from"] <= at < v["valid_to"]] for line, (at, _) in loaded.items()}
    assert {line: [key] for line, key in facts.items()} == valid_at
    # ... and so reads the city the deliveries gave the customer at that time.
    assert _cities(config) == {line: city for line, (_, city) in loaded.items()}
    # Day 3's fact rewrote 2 Jan and acknowledged the splice.
    rewritten = lake.partition_state(["curated", "fact_sales"], "2024-01-02")
    assert (rewritten["run_day"], rewritten["re_resolved"]["dim_customer"]) == ("2024-01-03", 1)
    # 1 Jan lies in C2's window but no key changes there: its files are day 2's, untouched.
    assert lake.partition_state(["curated", "fact_sales"], "2024-01-01")["run_day"] == "2024-01-02"
