"""Two `dagster asset materialize` processes (in-process runs: no run queue) on one DAGSTER_HOME made
from the repository's dagster.yaml as shipped, both needing the shared-table pool at once: each waits
for the slot, and their pooled steps never overlap. Nothing is configured by hand: the pool is
created at its limit from `concurrency.pools.default_limit` on first use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, AssetSelection, DagsterEventType, DagsterInstance, materialize

from lake_assets.assets import build_all_assets
from lake_assets.assets.pools import STAR_SCHEMA_POOL
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import REPO

DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAY = "2024-01-01"
DIM = AssetKey(["curated", "dim_customer"])
DIM_DATE = AssetKey(["curated", "dim_date"])
POOLED_STEPS = {"curated__dim_customer", "curated__dim_date"}
HOLDER = ("test-holds-the-slot", "holder")  # (run id, step key) of the slot the test takes first
TIMEOUT_SECONDS = 240


def _blocked(instance: DagsterInstance, run_id: str) -> bool:
    return any(f"pool {STAR_SCHEMA_POOL}" in (e.message or "")
               for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT))


def _pooled_windows(instance: DagsterInstance, run_id: str) -> list[tuple[float, float]]:
    """(STEP_START, STEP_SUCCESS) times of a run's pooled steps, from its event log."""
    # The run also holds the selected assets' standalone checks (steps of their own, outside the pool).
    starts = {e.step_key: e.timestamp for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)}
    ends = {e.step_key: e.timestamp for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)}
    assert POOLED_STEPS <= set(starts) and POOLED_STEPS <= set(ends), (starts, ends)
    return [(starts[k], ends[k]) for k in POOLED_STEPS]


@pytest.mark.slow
def test_cli_runs_take_turns_on_the_shared_table_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    config = load_config()
    lake = LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri)
    instance = DagsterInstance.get()
    try:
        # The day's masked customers, and a first pooled step (dim_date): the pool appears at limit 1.
        prep = (AssetSelection.assets(["masked", "customer"]).upstream().required_multi_asset_neighbors()
                | AssetSelection.assets(DIM_DATE))
        prepared = materialize(build_all_assets(config), selection=prep, partition_key=DAY,
                               resources=build_resources(config), instance=instance)
        assert prepared.success
        assert instance.event_log_storage.get_concurrency_info(STAR_SCHEMA_POOL).slot_count == 1

        # Hold the slot so that both runs reach their first pooled step while it is taken.
        assert instance.event_log_storage.claim_concurrency_slot(STAR_SCHEMA_POOL, *HOLDER).is_claimed
        env = {**os.environ, "SPARK_MASTER": "local[1]"}
        command = [DAGSTER, "asset", "materialize", "-m", "lake_assets",
                   "--select", "curated/dim_customer,curated/dim_date"]
        logs = [tmp_path / f"run{i}.log" for i in range(2)]
        procs = [subprocess.Popen(command, cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
                 for log in logs]
        try:
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while True:
                run_ids = [r.run_id for r in instance.get_runs() if r.run_id != prepared.run_id]
                if len(run_ids) == 2 and all(_blocked(instance, r) for r in run_ids):
                    break
                assert all(p.poll() is None for p in procs), [log.read_text()[-2000:] for log in logs]
                assert time.monotonic() < deadline, "the runs never reached the pool"
                time.sleep(0.5)
            released = time.time()
            instance.event_log_storage.free_concurrency_slot_for_step(*HOLDER)
            for proc, log in zip(procs, logs, strict=True):
                assert proc.wait(timeout=TIMEOUT_SECONDS) == 0, log.read_text()[-3000:]
        finally:
            for proc in procs:
                proc.kill()

        windows = sorted(w for run_id in run_ids for w in _pooled_windows(instance, run_id))
        assert windows[0][0] >= released  # nothing pooled ran while the slot was held
        for (_, end), (next_start, _) in zip(windows, windows[1:], strict=False):
            assert end <= next_start, f"two pooled steps ran at once: {windows}"

        # The day went into the dimension once: by the run that got the slot first.
        applied = sorted(
            str(e.asset_materialization.metadata["applied_days"].value)
            for run_id in run_ids
            for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            if e.asset_materialization.asset_key == DIM
        )
        assert applied == [DAY, "none (up to date)"]
        masked = lake.commit_info(["masked", "customer"], DAY)
        assert lake.partition_state(DIM.path)["applied"]["changes"] == {DAY: masked.batch_id}
    finally:
        instance.dispose()
