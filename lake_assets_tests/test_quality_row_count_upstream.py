"""`row_count` against the layer upstream (`quality.row_count.upstream_tolerance`): a day that lost or
gained more than the tolerated share of rows between raw and processed, or processed and masked, fails;
within the tolerance it passes; unset, layers are not compared. No Spark: small Arrow tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from dagster import AssetSelection, AssetSpec, Definitions, define_asset_job

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.quality import build_quality_checks
from lake_assets.checks.reconcile import upstream_problems
from lake_assets.config import PipelineConfig, QualityConfig, load_config
from lake_assets.resources.lake_storage import LakeStorage

DAY = "2024-01-01"


def _rows(n: int) -> pa.Table:
    return pa.table({"sale_line_id": [f"L{i}" for i in range(n)]})


def _row_counts(config: PipelineConfig, lake: LakeStorage) -> dict[str, object]:
    """table -> its `row_count` evaluation for DAY, the checks run alone."""
    checks = [c for c in build_quality_checks(config) if any(k.name == "row_count" for k in c.check_keys)]
    keys = {k.asset_key for c in checks for k in c.check_keys}
    defs = Definitions(assets=[AssetSpec(k, partitions_def=daily_partitions(config)) for k in keys],
                       asset_checks=checks, jobs=[define_asset_job("counts", AssetSelection.checks(*checks))],
                       resources={"lake": lake})
    result = defs.resolve_job_def("counts").execute_in_process(tags={"dagster/partition": DAY}, raise_on_error=False)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_upstream_tolerance_arithmetic() -> None:
    assert upstream_problems(60, ("raw/a", 100), 0.4) == []
    assert upstream_problems(59, ("raw/a", 100), 0.4) == [
        "59 rows vs 100 in raw/a: 41% difference, over the 40% upstream tolerance"]
    assert upstream_problems(59, ("raw/a", 100), None) == []  # no tolerance: not compared
    assert upstream_problems(5, None, 0.1) == []  # nothing upstream that day


def test_row_count_against_the_layer_upstream(tmp_path: Path) -> None:
    config = load_config()
    raw_sales = [f"raw/{s.name}/{t.name}" for s in config.sources for t in s.tables if t.entity == "sale"]
    assert raw_sales, "the sample config delivers sales"
    lake = LakeStorage(url=str(tmp_path / "lake"))
    for raw in raw_sales:
        lake.write_arrow(raw.split("/"), DAY, _rows(10))
    upstream_total = 10 * len(raw_sales)
    lake.write_arrow(["processed", "sale"], DAY, _rows(upstream_total - 1))  # one duplicate dropped: fine
    lake.write_arrow(["masked", "sale"], DAY, _rows(2))  # most lines lost between processed and masked

    tables = {"tables": ["processed/sale", "masked/sale"]}
    unset = _row_counts(config.model_copy(update={"quality": QualityConfig.model_validate({"row_count": tables})}),
                        lake)
    assert {k: e.passed for k, e in unset.items()} == {"processed/sale": True, "masked/sale": True}

    compared = QualityConfig.model_validate({"row_count": {**tables, "upstream_tolerance": 0.2}})
    found = _row_counts(config.model_copy(update={"quality": compared}), lake)
    assert {k: e.passed for k, e in found.items()} == {"processed/sale": True, "masked/sale": False}
    assert found["masked/sale"].metadata["upstream_rows"].value == f"{upstream_total - 1} (processed/sale)"
    problems = found["masked/sale"].metadata["problems"].value
    assert problems.startswith(f"2 rows vs {upstream_total - 1} in processed/sale")
    assert found["processed/sale"].metadata["upstream_rows"].value == f"{upstream_total} ({' + '.join(raw_sales)})"
