"""The lake checks that read curated/fact_sales and masked/sale one record batch at a time, run by Dagster
on a local lake: they see exactly the rows the run day delivered (not the other days' rows sharing its
sale-date partitions), point their failing-row sample at the planted row across several files, and
still fail on planted data. No Spark, no warehouse."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from dagster import AssetSelection, AssetSpec, Definitions, define_asset_job

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.quality import build_quality_checks
from lake_assets.config import load_config
from lake_assets.resources.lake_storage import LakeStorage

from . import warehouse_rows as rows
from .check_runs import run_checks_alone

DAY, NEXT = "2024-01-01", "2024-01-02"


def _facts(lines: list[tuple[str, int, str, str]]) -> pa.Table:
    """lines: (sale_line_id, sale day of January, delivered on, unit price); quantity 1, discount 1.00."""
    base = rows.fact_sales(1, [(line_id, 1, 1, 1) for line_id, *_ in lines])
    base = base.set_column(base.schema.get_field_index("unit_price"), "unit_price",
                           pa.array([Decimal(price) for *_, price in lines], rows.D2))
    base = base.set_column(base.schema.get_field_index("sold_at"), "sold_at",
                           pa.array([datetime(2024, 1, d, 12) for _, d, _, _ in lines]))
    base = base.set_column(base.schema.get_field_index("date_key"), "date_key",
                           pa.array([20240100 + d for _, d, _, _ in lines], pa.int32()))
    base = base.set_column(base.schema.get_field_index("ingest_date"), "ingest_date",
                           pa.array([date.fromisoformat(day) for _, _, day, _ in lines], pa.date32()))
    return base.append_column("discount_rate", pa.array([Decimal("0")] * len(lines), pa.decimal128(9, 6)))


def _masked(ids: list[str]) -> pa.Table:
    n = len(ids)
    return pa.table({
        "sale_line_id": ids,
        "sold_at": pa.array([datetime(2024, 1, 1, 9, tzinfo=timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
        "quantity": pa.array([1] * n, pa.int32()),
        "unit_price": pa.array([Decimal("10.00")] * n, rows.D2),
        "discount": pa.array([Decimal("1.00")] * n, rows.D2),
    })


def test_fact_schema_check_reads_only_the_run_days_rows_and_samples_the_planted_one(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config = load_config()
    # Run day 1 delivers L1, L2; run day 2 rewrites sale date Jan 1 (adding L3, late) and writes Jan 2,
    # whose second line has a negative price: the bad row is the third of day 2's rows, in another file.
    rows.write_lake_facts(lake, _facts([("L1", 1, DAY, "10.00"), ("L2", 1, DAY, "10.00")]), DAY)
    rows.write_lake_facts(lake, _facts([("L1", 1, DAY, "10.00"), ("L2", 1, DAY, "10.00"), ("L3", 1, NEXT, "10.00"),
                                        ("M1", 2, NEXT, "10.00"), ("M2", 2, NEXT, "-3.00")]), NEXT)

    first = run_checks_alone(config, lake, "curated/fact_sales", day=DAY)["schema"]
    assert first.passed and first.metadata["rows_checked"].value == 2

    second = run_checks_alone(config, lake, "curated/fact_sales", day=NEXT)["schema"]
    assert not second.passed
    assert second.metadata["rows_checked"].value == 3
    assert second.metadata["failures"].value == "unit_price: min: 1"
    (sampled,) = second.metadata["failing_rows_sample"].value
    assert (sampled["sale_line_id"], sampled["unit_price"]) == ("M2", "-3.00")


def _reconcile(lake: LakeStorage, day: str):  # noqa: ANN202 - AssetCheckEvaluation
    config = load_config()
    (check,) = [c for c in build_quality_checks(config)
                if any(k.name == "reconciles_with_masked" for k in c.check_keys)]
    (asset,) = {k.asset_key for k in check.check_keys}
    defs = Definitions(assets=[AssetSpec(asset, partitions_def=daily_partitions(config))], asset_checks=[check],
                       jobs=[define_asset_job("reconcile", AssetSelection.checks(check))], resources={"lake": lake})
    result = defs.resolve_job_def("reconcile").execute_in_process(tags={"dagster/partition": day},
                                                                  raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_fact_reconciliation_from_the_lake_fails_on_a_lost_line_not_on_a_later_delivery(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    lake.write_arrow(["masked", "sale"], DAY, _masked(["L1", "L2", "L3", "L4"]))
    # L3 was delivered again by run day 2 (its row now carries that day); L4 reached no fact partition.
    rows.write_lake_facts(lake, _facts([("L1", 1, DAY, "10.00"), ("L2", 1, DAY, "10.00")]), DAY)
    rows.write_lake_facts(lake, _facts([("L1", 1, DAY, "10.00"), ("L2", 1, DAY, "10.00"),
                                        ("L3", 1, NEXT, "10.00")]), NEXT)

    evaluation = _reconcile(lake, DAY)
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert not evaluation.passed
    assert (metadata["fact_lines"], metadata["masked_lines"], metadata["moved_to_later_days"]) == (2, 4, 1)
    assert (metadata["missing_lines"], metadata["missing_sample"]) == (1, "L4")
    assert metadata["unexpected_lines"] == 0 and metadata["days_differing"] == "none"
    # Each fact line nets 10.00 - 1.00; the masked lines recomputed independently net the same.
    assert metadata["fact_net_amount"] == metadata["masked_net_amount"] == "18.00"

    lake.write_arrow(["masked", "sale"], DAY, _masked(["L1", "L2", "L3"]))
    assert _reconcile(lake, DAY).passed
