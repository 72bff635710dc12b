"""An incremental day of the customer dimension: the merge runs on the delivered members only, and
every other member's versions come out exactly as they were (values, keys, validity)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

END_OF_TIME = datetime(9999, 12, 31, tzinfo=timezone.utc)  # the dimension's timestamps read zoned (UTC)


def _customers(rows: list[tuple[str, str, str, datetime]], ingested: datetime) -> pa.Table:
    return pa.table({
        "customer_id": [r[0] for r in rows],
        "city": [r[1] for r in rows],
        "email": [r[2] for r in rows],
        "updated_at": pa.array([r[3] for r in rows], pa.timestamp("us")),
        "_ingested_at": pa.array([ingested] * len(rows), pa.timestamp("us")),
    })


def _by_member(rows: list[dict]) -> dict[str, list[dict]]:
    members: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["customer_id"], r["version"])):
        members.setdefault(row["customer_id"], []).append(row)
    return members


def test_an_incremental_day_changes_only_its_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    lake = LakeStorage(url=config.lake.url)
    assets, resources = build_all_assets(config), build_resources(config)
    day1 = [
        ("C1", "Boston", "c1@x.org", datetime(2024, 1, 1, 8)),
        ("C1", "Denver", "c1@x.org", datetime(2024, 1, 1, 12)),  # closed history before day 2
        ("C2", "Austin", "c2@x.org", datetime(2024, 1, 1, 9)),
        ("C3", "Reno", "c3@x.org", datetime(2024, 1, 1, 9)),
        ("C3", "Omaha", "c3@x.org", datetime(2024, 1, 1, 15)),
        ("C4", "Tulsa", "c4@x.org", datetime(2024, 1, 1, 9)),
    ]
    lake.write_arrow(["masked", "customer"], "2024-01-01", _customers(day1, datetime(2024, 1, 1, 23)))
    assert materialize(assets, resources=resources, selection=["curated/dim_customer"]).success
    before = _by_member(lake.read_arrow(["curated", "dim_customer"]).to_pylist())
    assert [len(before[m]) for m in ("C1", "C2", "C3", "C4")] == [2, 1, 2, 1]

    # Day 2 changes C3 alone (city is Type 2, email Type 1); its sales reference a known member (C2)
    # and one never delivered (C9).
    changed_at = datetime(2024, 1, 2, 10)
    changed_utc = changed_at.replace(tzinfo=timezone.utc)  # as the dimension reads it
    # Day 2 numbers new keys above the highest one, read from the files' statistics without a Spark job.
    keys_before = [r["customer_key"] for rows in before.values() for r in rows]
    assert lake.column_bounds(["curated", "dim_customer"], [None], "customer_key") == (-1, max(keys_before))
    day2 = [("C3", "Salem", "new@x.org", changed_at)]
    lake.write_arrow(["masked", "customer"], "2024-01-02", _customers(day2, datetime(2024, 1, 2, 23)))
    lake.write_arrow(["masked", "sale"], "2024-01-02", pa.table({"sale_line_id": ["L1", "L2"],
                                                                   "customer_id": ["C2", "C9"]}))
    assert materialize(assets, resources=resources, selection=["curated/dim_customer"]).success
    after = _by_member(lake.read_arrow(["curated", "dim_customer"]).to_pylist())

    for member in ("UNKNOWN", "C1", "C2", "C4"):
        assert after[member] == before[member], member
    old_versions, (new,) = after["C3"][:-1], after["C3"][-1:]
    # Every earlier version kept its key, history and validity; the current one closed at the change.
    assert [(r["customer_key"], r["city"], r["valid_from"], r["version"]) for r in old_versions] == [
        (r["customer_key"], r["city"], r["valid_from"], r["version"]) for r in before["C3"]]
    assert [r["valid_to"] for r in old_versions] == [before["C3"][0]["valid_to"], changed_utc]
    assert [r["is_current"] for r in old_versions] == [False, False]
    # Type 1: every version of the member shows the latest email.
    assert {r["email"] for r in after["C3"]} == {"new@x.org"}
    assert (new["city"], new["version"], new["valid_from"], new["valid_to"], new["is_current"]) == (
        "Salem", 3, changed_utc, END_OF_TIME, True)
    # New keys come after every key of the dimension, not only after those of the merged member.
    (inferred,) = after["C9"]
    assert inferred["is_inferred"]
    assert sorted([new["customer_key"], inferred["customer_key"]]) == [max(keys_before) + 1, max(keys_before) + 2]
    assert set(after) == {"UNKNOWN", "C1", "C2", "C3", "C4", "C9"}
