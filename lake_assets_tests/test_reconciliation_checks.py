"""Reconciliation and row-count checks: fact vs masked sales per day, warehouse vs curated per day,
row count against a minimum and the previous day. Each fails on data planted to break it and passes
on good data; the Dagster checks run alone on a local lake and a SQLite warehouse (no Spark)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, AssetSelection, AssetSpec, Definitions, define_asset_job

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.quality import build_quality_checks
from lake_assets.checks.reconcile import fact_against_masked, row_count_problems
from lake_assets.config import PipelineConfig, QualityConfig, load_config
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseResource

from . import warehouse_rows as rows

DAY, NEXT = "2024-01-01", "2024-01-02"
MONEY, RATE = pa.decimal128(12, 2), pa.decimal128(9, 6)
# (line, quantity, unit_price, discount_rate, discount) and the net worked out by hand.
LINES = [("L1", 3, "172.66", "0.15", "51.80", "388.48"),   # 517.98 * 0.85 = 440.283 -> 440.28 - 51.80
         ("L2", -1, "2.55", None, None, "-2.55"),           # a return
         ("L3", 2, "0.05", "0.5", "0.00", "0.05")]


def _masked(lines: list[tuple]) -> pa.Table:
    return pa.table({
        "sale_line_id": [x[0] for x in lines],
        "sold_at": pa.array([datetime(2024, 1, 1, 9, tzinfo=timezone.utc)] * len(lines), pa.timestamp("us", tz="UTC")),
        "quantity": pa.array([x[1] for x in lines], pa.int32()),
        "unit_price": pa.array([Decimal(x[2]) for x in lines], MONEY),
        "discount_rate": pa.array([Decimal(x[3]) if x[3] else None for x in lines], RATE),
        "discount": pa.array([Decimal(x[4]) if x[4] else None for x in lines], MONEY),
    })


def _fact(lines: list[tuple], nets: list[str] | None = None, delivered: list[str] | None = None) -> pa.Table:
    return pa.table({
        "sale_line_id": [x[0] for x in lines],
        "date_key": pa.array([20240101] * len(lines), pa.int32()),
        "net_amount": pa.array([Decimal(n) for n in (nets or [x[5] for x in lines])], pa.decimal128(14, 2)),
        "ingest_date": pa.array([date.fromisoformat(d) for d in (delivered or [DAY] * len(lines))], pa.date32()),
    })


def test_fact_reconciles_with_masked_lines_recomputed_independently() -> None:
    result = fact_against_masked(_fact(LINES), _masked(LINES), date.fromisoformat(DAY))
    assert result.passed, result.metadata()
    assert result.fact_net == result.masked_net == Decimal("385.98")


def test_a_cent_off_a_lost_line_and_a_stray_line_each_fail() -> None:
    day = date.fromisoformat(DAY)
    off = fact_against_masked(_fact(LINES, ["388.49", "-2.55", "0.05"]), _masked(LINES), day)
    assert off.day_differences == {20240101: (Decimal("385.99"), Decimal("385.98"))}
    lost = fact_against_masked(_fact(LINES[:2]), _masked(LINES), day)
    assert (lost.passed, lost.missing_ids, lost.day_differences) == (False, ["L3"], {})
    stray = fact_against_masked(_fact(LINES), _masked(LINES[:2]), day)
    assert (stray.passed, stray.unexpected_ids) == (False, ["L3"])


def test_a_line_delivered_again_later_is_not_missing_but_one_delivered_earlier_is() -> None:
    day = date.fromisoformat(DAY)
    moved = fact_against_masked(_fact(LINES, delivered=[DAY, DAY, NEXT]), _masked(LINES), day)
    assert (moved.passed, moved.moved_to_later_days, moved.fact_lines) == (True, 1, 2)
    # A row of the previous day is not this day's delivery: L3 is then missing.
    earlier = fact_against_masked(_fact(LINES, delivered=[DAY, DAY, "2023-12-31"]), _masked(LINES), day)
    assert (earlier.passed, earlier.missing_ids, earlier.moved_to_later_days) == (False, ["L3"], 0)


def _many_lines(count: int) -> list[tuple]:
    """`count` lines with varied quantities, prices, rates and discounts; nets worked out with Decimal here."""
    lines = []
    for i in range(count):
        quantity, price = (i % 7) - 1 or 4, Decimal(f"{1 + i % 50}.{i % 100:02d}")
        rate = Decimal(i % 4) / 8 if i % 3 else None
        discount = Decimal(f"0.{i % 10}0") if i % 5 else None
        exact = quantity * price * (1 - (rate or 0)) - (discount or 0)
        lines.append((f"S{i:05d}", quantity, str(price), str(rate) if rate is not None else None,
                      str(discount) if discount is not None else None,
                      str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))))
    return lines


@pytest.mark.parametrize("bucket_rows", [7, 1000])
def test_each_broken_promise_fails_whether_the_ids_share_a_bucket_or_not(bucket_rows: int) -> None:
    """200 lines over three sale dates, compared in 29 hash buckets or in one: the oracles come from
    the planted lines, not from the check."""
    day, lines = date.fromisoformat(DAY), _many_lines(200)
    keys = [(20231231, 20240101, 20240102)[i % 3] for i in range(200)]

    def fact(rows: list[tuple], delivered: dict[str, str] | None = None, nets: dict[str, str] | None = None
             ) -> pa.Table:
        table = _fact(rows, [(nets or {}).get(r[0], r[5]) for r in rows],
                      [(delivered or {}).get(r[0], DAY) for r in rows])
        return table.set_column(1, "date_key", pa.array([keys[int(r[0][1:])] for r in rows], pa.int32()))

    good = fact_against_masked(fact(lines), _masked(lines), day, bucket_rows)
    assert good.passed, good.metadata()
    assert good.fact_net == sum((Decimal(x[5]) for x in lines), Decimal("0"))
    assert (good.fact_lines, good.masked_lines) == (200, 200)

    # S00017 (date_key 20240102) one cent more; S00042 lost; S00099 delivered again the next day.
    planted = fact([x for x in lines if x[0] != "S00042"], delivered={"S00099": NEXT},
                   nets={"S00017": str(Decimal(lines[17][5]) + Decimal("0.01"))})
    bad = fact_against_masked(planted, _masked(lines), day, bucket_rows)
    assert (bad.missing_lines, bad.missing_ids, bad.moved_to_later_days) == (1, ["S00042"], 1)
    assert bad.fact_lines == 198 and bad.unexpected_lines == 0
    expected_masked = sum((Decimal(x[5]) for x in lines if keys[int(x[0][1:])] == 20240102
                           and x[0] not in ("S00042", "S00099")), Decimal("0"))
    assert bad.day_differences == {20240102: (expected_masked + Decimal("0.01"), expected_masked)}

    # Two lines the masked day never had: both counted, the first in id order shown.
    stray = fact_against_masked(fact(lines), _masked(lines[2:]), day, bucket_rows)
    assert (stray.unexpected_lines, stray.unexpected_ids, stray.passed) == (2, ["S00000", "S00001"], False)


def test_row_count_minimum_and_tolerance() -> None:
    assert row_count_problems(5, None, 1, None) == []
    assert row_count_problems(0, None, 1, None) == ["0 rows, fewer than 1"]
    assert row_count_problems(149, ("2024-01-01", 100), 1, 0.5) == []
    assert row_count_problems(151, ("2024-01-01", 100), 1, 0.5) == [
        "151 rows vs 100 on 2024-01-01: 51% change, over the 50% tolerance"]
    assert row_count_problems(40, ("2024-01-01", 100), 1, None) == []  # no tolerance: not compared


def _run_checks(config: PipelineConfig, resources: dict, day: str, wanted: set[tuple[str, str]]) -> dict:
    """The checks named (asset, check) run alone for `day`, as the UI's Execute on a check does."""
    checks = [c for c in build_quality_checks(config)
              if {(k.asset_key.to_user_string(), k.name) for k in c.check_keys} & wanted]
    assets = {k.asset_key for c in checks for k in c.check_keys}
    defs = Definitions(assets=[AssetSpec(a, partitions_def=daily_partitions(config)) for a in assets],
                       asset_checks=checks, jobs=[define_asset_job("checks", AssetSelection.checks(*checks))],
                       resources=resources)
    result = defs.resolve_job_def("checks").execute_in_process(tags={"dagster/partition": day}, raise_on_error=False)
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_checks_run_alone_on_a_lake_and_a_sqlite_warehouse(tmp_path: Path) -> None:
    config = load_config()
    config = config.model_copy(update={"quality": QualityConfig.model_validate(
        {"row_count": {"tables": ["curated/fact_sales"], "tolerance": 0.5}})})
    lake = LakeStorage(url=str(tmp_path / "lake"))
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    fact = rows.fact_sales(1, [("L1", 1, 1, 2), ("L2", 2, 2, 3)])
    masked = _masked([("L1", 2, "10.00", None, "1.00"), ("L2", 3, "10.00", None, "1.00")])
    rows.write_lake_facts(lake, fact, DAY)
    lake.write_arrow(["masked", "sale"], DAY, masked)
    warehouse.ensure_schema()
    warehouse.replace_rows("fact_sales", fact, ("ingest_date", DAY))
    wanted = {("curated/fact_sales", "reconciles_with_masked"), ("warehouse/fact_sales", "reconciles_with_curated"),
              ("curated/fact_sales", "row_count")}
    resources = {"lake": lake, "warehouse": warehouse}

    good = _run_checks(config, resources, DAY, wanted)
    assert {k: e.passed for k, e in good.items()} == dict.fromkeys(wanted, True)
    assert good[("warehouse/fact_sales", "reconciles_with_curated")].metadata["warehouse_net_amount"].value == "48.00"

    # A warehouse row lost after the load; the next day three times the lines of the first.
    with warehouse.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM fact_sales WHERE sale_line_id = 'L2'")
    rows.write_lake_facts(lake, rows.fact_sales(2, [(f"M{i}", 1, 1, 1) for i in range(6)]), NEXT)
    bad = _run_checks(config, resources, DAY, wanted - {("curated/fact_sales", "row_count")})
    warehouse_check = bad[("warehouse/fact_sales", "reconciles_with_curated")]
    assert not warehouse_check.passed
    metadata = {k: v.value for k, v in warehouse_check.metadata.items()}
    assert (metadata["warehouse_lines"], metadata["curated_lines"]) == (1, 2)
    assert bad[("curated/fact_sales", "reconciles_with_masked")].passed
    count = _run_checks(config, resources, NEXT, {("curated/fact_sales", "row_count")})
    (evaluation,) = count.values()
    assert not evaluation.passed
    assert evaluation.metadata["problems"].value == "6 rows vs 2 on 2024-01-01: 200% change, over the 50% tolerance"
    assert evaluation.asset_key == AssetKey(["curated", "fact_sales"])
