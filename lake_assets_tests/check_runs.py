"""Small committed days for the quality-check tests: a processed/sale partition written with Arrow, and a
Dagster run of a table's standalone checks alone on that day (as the UI's "Execute" on a check)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    Definitions,
    define_asset_job,
)

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.quality import build_quality_checks
from lake_assets.config import PipelineConfig
from lake_assets.resources.lake_storage import LakeStorage

DAY = "2024-01-01"
MONEY = pa.decimal128(12, 2)


def sales_partition(n: int = 3, **changes: list) -> pa.Table:
    """A good processed/sale partition of `n` lines; `changes` replaces whole columns."""
    columns = {
        "sale_line_id": pa.array([f"L{i}" for i in range(n)]),
        "order_id": pa.array(["O1"] * n),
        "sold_at": pa.array([datetime(2024, 1, 1, 12, tzinfo=timezone.utc)] * n, pa.timestamp("us", tz="UTC")),
        "customer_id": pa.array([f"C{i}" for i in range(n)]),
        "product_id": pa.array(["P1"] * n),
        "location_id": pa.array(["S1"] * n),
        "quantity": pa.array([2] * n, pa.int32()),
        "unit_price": pa.array([Decimal("9.99")] * n, MONEY),
        "discount": pa.array([Decimal("0.00")] * n, MONEY),
        "discount_rate": pa.array([Decimal("0.1")] * n, pa.decimal128(9, 6)),
        "card_number": pa.array([f"411111111111111{i}" for i in range(n)]),
    }
    for name, values in changes.items():
        columns[name] = pa.array(values, columns[name].type)
    return pa.table(columns)


def run_checks_alone(
    config: PipelineConfig, lake: LakeStorage, table: str, instance: DagsterInstance | None = None, day: str = DAY
) -> dict[str, object]:
    """Every check of `table` run by Dagster on the committed `day`, without materializing the table."""
    key = AssetKey(table.split("/"))
    checks = [c for c in build_quality_checks(config)
              if {(k.asset_key, k.name) for k in c.check_keys} & {(key, "schema"), (key, "declared_columns")}]
    # A run of the checks alone with the day's partition tag, as the UI's "Execute" on a check launches.
    job = define_asset_job("checks_alone", AssetSelection.checks(*checks))
    defs = Definitions(assets=[AssetSpec(key, partitions_def=daily_partitions(config))], asset_checks=checks,
                       jobs=[job], resources={"lake": lake})
    result = defs.resolve_job_def("checks_alone").execute_in_process(
        tags={"dagster/partition": day}, raise_on_error=False, instance=instance)
    assert result.get_asset_materialization_events() == []
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # A failed ERROR check fails its step (that is what blocks downstream assets); a WARN one does not.
    failed_steps = {e.step_key for e in result.all_events if e.is_step_failure}
    blocking_failed = {f"{'__'.join(key.path)}_{n}" for n, e in evaluations.items()
                       if not e.passed and e.severity == AssetCheckSeverity.ERROR}
    assert failed_steps == blocking_failed
    evaluations["run_id"] = result.run_id
    return evaluations
