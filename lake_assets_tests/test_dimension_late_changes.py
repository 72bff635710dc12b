"""The customer dimension over two masked days, the second holding a late record: under
`late_changes: ignore` the record is not spliced into history, and the dimension says so (metadata,
WARN check with a sample); under `apply` it becomes a version at its effective time, counted as
spliced, with the sale dates whose facts must be resolved again in the dimension's commit state."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetCheckSeverity, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage


def _customers(rows: list[tuple[str, str, datetime]], ingested: datetime) -> pa.Table:
    return pa.table({
        "customer_id": [r[0] for r in rows],
        "city": [r[1] for r in rows],
        "updated_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
        "_ingested_at": pa.array([ingested] * len(rows), pa.timestamp("us")),
    })


def with_late_changes(config: PipelineConfig, policy: str) -> PipelineConfig:
    """`config` with `star_schema.dimensions.<customer|product>.late_changes: policy`."""
    star = config.star_schema
    dimensions = {e: star.dimension(e).model_copy(update={"late_changes": policy}) for e in ("customer", "product")}
    return config.model_copy(update={"star_schema": star.model_copy(update={"dimensions": dimensions})})


DAY1 = [("C1", "Boston", datetime(2024, 1, 1, 9)), ("C2", "Austin", datetime(2024, 1, 1, 9))]
DAY2 = [
    ("C1", "Chicago", datetime(2023, 12, 31, 9)),  # late: dated before C1's version, other city
    ("C2", "Austin", datetime(2024, 1, 1, 9)),     # a re-delivery: not late
    ("C3", "Reno", datetime(2024, 1, 2, 9)),       # a new member
]


def _two_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str) -> tuple[PipelineConfig, LakeStorage]:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = with_late_changes(load_config(), policy)
    lake = LakeStorage(url=config.lake.url)
    lake.write_arrow(["masked", "customer"], "2024-01-01", _customers(DAY1, datetime(2024, 1, 1, 23)))
    lake.write_arrow(["masked", "customer"], "2024-01-02", _customers(DAY2, datetime(2024, 1, 2, 23)))
    return config, lake


def test_a_late_customer_record_is_counted_and_warned_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    config, lake = _two_days(tmp_path, monkeypatch, "ignore")
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


def test_a_late_customer_record_is_spliced_into_history_under_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    config, lake = _two_days(tmp_path, monkeypatch, "apply")
    result = materialize(build_all_assets(config), resources=build_resources(config),
                         selection=["curated/dim_customer"], raise_on_error=False)
    assert result.success

    (late,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_late_changes_ignored"]
    assert late.passed and late.metadata["late_changes_ignored"].value == 0
    (materialization,) = result.asset_materializations_for_node("curated__dim_customer")
    assert materialization.metadata["late_changes_spliced"].value == 1

    dim = {(r["customer_id"], r["city"]): {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v
                                            for k, v in r.items()}
           for r in lake.read_arrow(["curated", "dim_customer"]).to_pylist()}
    boston, chicago = dim[("C1", "Boston")], dim[("C1", "Chicago")]
    # Chicago, dated before Boston's change, is C1's state from 1900 until Boston's change.
    assert (chicago["valid_from"], chicago["valid_to"], chicago["is_current"]) == (
        datetime(1900, 1, 1), datetime(2024, 1, 1, 9), False)
    assert (boston["valid_from"], boston["is_current"]) == (datetime(2024, 1, 1, 9), True)
    # A new key above the keys of day 1 (the highest when it was spliced); Boston keeps its key.
    assert chicago["customer_key"] > max(boston["customer_key"], dim[("C2", "Austin")]["customer_key"])
    # The sales of C1 before Boston's change now resolve to Chicago: their dates wait for the fact.
    pending = lake.partition_state(["curated", "dim_customer"])["splices"]["pending"]
    assert [(e["first"], e["last"]) for e in pending] == [("1900-01-01", "2024-01-01")]


def test_the_key_checks_read_the_dimension_spark_wrote_and_fail_on_a_doctored_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    """The key checks over the table as written (Spark's timestamp and key types): they pass on the
    dimension the run wrote, then fail, with counts taken from the rows, once its closed versions are
    reopened as current and its unknown member is stored twice in a copy of it."""
    from lake_assets.assets.curated import _key_check_results

    config, lake = _two_days(tmp_path, monkeypatch, "apply")
    assert materialize(build_all_assets(config), resources=build_resources(config),
                       selection=["curated/dim_customer"]).success
    key = ["curated", "dim_customer"]
    written = lake.read_arrow(key)
    unique, members = _key_check_results(lake, key, "customer_key", "customer_id", scd2=True)
    assert unique.passed and members.passed
    assert unique.metadata["rows"].value == unique.metadata["distinct_keys"].value == written.num_rows

    rows = written.to_pylist()
    closed = [r for r in rows if not r["is_current"] and r["customer_key"] != -1]
    assert closed  # C1's spliced Chicago version
    for r in closed:
        r["is_current"], r["valid_to"] = True, r["valid_to"].replace(year=9999, month=12, day=31, hour=0)
    (unknown,) = [r for r in rows if r["customer_key"] == -1]
    rows.append(dict(unknown))  # the unknown member twice: a repeated key, a second current row, an overlap
    lake.write_arrow(key, None, pa.Table.from_pylist(rows, schema=written.schema))
    unique, members = _key_check_results(lake, key, "customer_key", "customer_id", scd2=True)
    assert not unique.passed and unique.metadata["rows"].value == unique.metadata["distinct_keys"].value + 1
    assert not members.passed
    assert members.metadata["members_with_several_current_rows"].value == len({r["customer_id"] for r in closed}) + 1
    # Each reopened version now runs past the start of its member's next version, as one twin does the other.
    assert members.metadata["overlaps"].value == len(closed) + 1
