"""lake-restore: a table (or one day of it) goes back to an earlier committed state, snapshot and commit
records together; time-travel reads for audits. Then the documented recovery from a bad load: restore
the raw day, rerun its downstream assets, and the warehouse equals what it was before the bad load."""

from __future__ import annotations

import csv
import os
import shutil
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetSelection, materialize

from lake_assets.config import load_config
from lake_assets.lake_maintenance import restore
from lake_assets.lake_maintenance.restore import restore_partition, restore_table
from lake_assets.lake_maintenance.time_travel import RestoreError, read_as_of
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR
from .helpers import DAY, assert_graph_correct, materialize_day, warehouse_snapshot

KEY = ["raw", "src", "t"]


def _moment() -> datetime:
    """A point in time strictly between two commits (catalog timestamps are milliseconds)."""
    time.sleep(0.005)
    moment = datetime.now(timezone.utc)
    time.sleep(0.005)
    return moment


def _x(lake: LakeStorage, day: str) -> list[int]:
    return lake.read_arrow(KEY, day).column("x").to_pylist()


def test_restore_table_partition_and_time_travel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    good = lake.write_arrow(KEY, "2024-01-01", pa.table({"x": [1, 2, 3]}), state={"cursor": "c1"})
    lake.write_arrow(KEY, "2024-01-02", pa.table({"x": [4]}), state={"cursor": "c2"})
    before_bad = _moment()
    lake.write_arrow(KEY, "2024-01-01", pa.table({"x": [100]}), state={"cursor": "bad"})
    lake.write_arrow(KEY, "2024-01-02", pa.table({"x": [5, 6]}), state={"cursor": "c3"})

    # Audits: the day as it was, by time or by snapshot; nothing changes.
    assert read_as_of(lake, KEY, "2024-01-01", as_of=before_bad).column("x").to_pylist() == [1, 2, 3]
    assert read_as_of(lake, KEY, "2024-01-01", snapshot_id=good.snapshot_id).column("x").to_pylist() == [1, 2, 3]
    assert _x(lake, "2024-01-01") == [100]

    # One day back: the other day keeps its newer data and record.
    dry = restore_partition(lake, KEY, "2024-01-01", as_of=before_bad, dry_run=True)
    assert not dry.applied and _x(lake, "2024-01-01") == [100]
    restore_partition(lake, KEY, "2024-01-01", as_of=before_bad)
    assert _x(lake, "2024-01-01") == [1, 2, 3] and _x(lake, "2024-01-02") == [5, 6]
    assert lake.commit_info(KEY, "2024-01-01").batch_id == good.batch_id
    assert lake.partition_state(KEY, "2024-01-01") == {"cursor": "c1"}
    assert lake.partition_state(KEY, "2024-01-02") == {"cursor": "c3"}
    lake.write_arrow(KEY, "2024-01-01", pa.table({"x": [7]}))  # writers carry on after a restore
    assert _x(lake, "2024-01-01") == [7]

    # The whole table back to before the bad load, through the command.
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    assert restore.main(["--table", "raw/src/t", "--as-of", before_bad.isoformat()]) == 0
    assert "2024-01-02: batch" in capsys.readouterr().out
    assert _x(lake, "2024-01-01") == [1, 2, 3] and _x(lake, "2024-01-02") == [4]
    assert {d: lake.partition_state(KEY, d) for d in lake.committed_partitions(KEY)} == {
        "2024-01-01": {"cursor": "c1"}, "2024-01-02": {"cursor": "c2"}}

    assert restore.main(["--table", "raw.src__t", "--show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == len(lake.load_table(KEY).metadata.snapshots)
    assert sum("current" in line for line in shown) == 1 and any("(not restorable)" in line for line in shown)
    # A snapshot that was only the delete step of a write was never a committed state.
    intermediate = next(s.snapshot_id for s in lake.load_table(KEY).metadata.snapshots
                        if s.summary.operation.value == "delete")
    with pytest.raises(RestoreError, match="never a committed state"):
        restore_table(lake, KEY, snapshot_id=intermediate)
    assert restore.main(["--table", "raw/src/t", "--snapshot", "12345"]) == 2
    assert "does not exist" in capsys.readouterr().err


def _halve_sales(drop: Path) -> None:
    """The bad delivery: the day's sales file with only its first half of rows."""
    for path in sorted((drop / DAY).glob("sales_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows[: 1 + (len(rows) - 1) // 2])


def test_bad_load_restore_raw_day_and_rerun_downstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       spark) -> None:
    from lake_assets.assets import build_all_assets
    from lake_assets.definitions import build_resources

    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / DAY, drop / DAY)
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    config = load_config()
    lake = LakeStorage(url=config.lake.url)
    materialize_day(config, DAY)
    good = assert_graph_correct(config, lake)
    sales, quarantine = ["raw", "shop_files", "sales"], ["quarantine", "raw", "shop_files", "sales"]
    good_commits = {tuple(k): lake.commit_info(k, DAY) for k in (sales, quarantine)}
    before_bad = _moment()

    _halve_sales(drop)
    assets = build_all_assets(config)
    raw_sales = AssetSelection.assets(AssetKey(sales))

    def run(selection: AssetSelection) -> None:
        result = materialize(assets, selection=selection, partition_key=DAY, resources=build_resources(config))
        assert result.success

    run(raw_sales.downstream())  # the bad load reaches the warehouse
    bad = warehouse_snapshot(config)
    assert 0 < len(bad["fact_sales"]) < len(good["fact_sales"])

    # docs/storage.md#restore: restore the raw day(s) the bad load wrote, then rerun what is downstream.
    for key in ("raw/shop_files/sales", "quarantine/raw/shop_files/sales"):
        assert restore.main(["--table", key, "--partition", DAY, "--as-of", before_bad.isoformat()]) == 0
    for key, commit in good_commits.items():
        restored = lake.commit_info(list(key), DAY)
        assert (restored.batch_id, restored.rows, restored.state) == (commit.batch_id, commit.rows, commit.state)
    run(raw_sales.downstream(include_self=False))

    after = assert_graph_correct(config, lake)
    assert after == good


def test_one_sale_date_of_the_fact_table_goes_back(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    facts = ["curated", "fact_sales"]

    def write(lines: dict[int, list[str]], run_day: str) -> None:
        with lake.staged_partitions(facts, "sale_date") as batch:
            os.makedirs(batch.local_dir, exist_ok=True)
            for day, names in lines.items():
                table = pa.table({"line": names, "sale_date": pa.array([date(2024, 1, day)] * len(names), pa.date32())})
                pq.write_table(table, f"{batch.local_dir}/part-{day}.parquet")
            batch.commit(state={"run_day": run_day})

    write({1: ["a", "b"], 2: ["c"]}, "2024-01-05")
    before_bad = _moment()
    write({1: ["a"], 2: ["c", "d"]}, "2024-01-06")
    restore_partition(lake, facts, "2024-01-01", as_of=before_bad)
    lines = {d: sorted(lake.read_arrow(facts, d).column("line").to_pylist()) for d in lake.committed_partitions(facts)}
    assert lines == {"2024-01-01": ["a", "b"], "2024-01-02": ["c", "d"]}
    assert {d: i.state["run_day"] for d, i in lake.commits(facts).items()} == {
        "2024-01-01": "2024-01-05", "2024-01-02": "2024-01-06"}
