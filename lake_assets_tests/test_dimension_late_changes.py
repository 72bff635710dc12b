"""The customer dimension over two masked days, the second holding a late record: the record is not
spliced into history, and the dimension says so (metadata, WARN check with a sample)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetCheckSeverity, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage


def _customers(rows: list[tuple[str, str, datetime]], ingested: datetime) -> pa.Table:
    return pa.table({
        "customer_id": [r[0] for r in rows],
        "city": [r[1] for r in rows],
        "updated_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
        "_ingested_at": pa.array([ingested] * len(rows), pa.timestamp("us")),
    })


def test_a_late_customer_record_is_counted_and_warned_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    lake = LakeStorage(url=config.lake.url)
    day1 = [("C1", "Boston", datetime(2024, 1, 1, 9)), ("C2", "Austin", datetime(2024, 1, 1, 9))]
    day2 = [
        ("C1", "Chicago", datetime(2023, 12, 31, 9)),  # late: dated before C1's version, other city
        ("C2", "Austin", datetime(2024, 1, 1, 9)),     # a re-delivery: not late
        ("C3", "Reno", datetime(2024, 1, 2, 9)),       # a new member
    ]
    lake.write_arrow(["masked", "customer"], "2024-01-01", _customers(day1, datetime(2024, 1, 1, 23)))
    lake.write_arrow(["masked", "customer"], "2024-01-02", _customers(day2, datetime(2024, 1, 2, 23)))

    result = materialize(build_all_assets(config), resources=build_resources(config),
                         selection=["curated/dim_customer"], raise_on_error=False)
    assert result.success

    (late,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_late_changes_ignored"]
    assert not late.passed and late.severity == AssetCheckSeverity.WARN
    assert late.metadata["late_changes_ignored"].value == 1
    assert "C1: dated 2023-12-31 09:00:00" in late.metadata["sample"].value
    (materialization,) = result.asset_materializations_for_node("curated__dim_customer")
    assert materialization.metadata["late_changes_ignored"].value == 1

    dim = lake.read_arrow(["curated", "dim_customer"]).to_pylist()
    assert sorted((r["customer_id"], r["city"]) for r in dim if r["customer_key"] != -1) == [
        ("C1", "Boston"), ("C2", "Austin"), ("C3", "Reno")]
