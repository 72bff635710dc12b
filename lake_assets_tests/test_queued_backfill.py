"""A 10-day backfill launched at once on deploy/postgres/dagster.yaml, dequeued by a real
`dagster-daemon`: with the daily assets' single-run backfill policy the range is ONE run (the run a
UI backfill of the range launches: a run tagged with the range's first and last day, queued with
`dagster job launch`), whose steps handle the days oldest first. Expected: one run, every day's
raw/processed/masked partition committed exactly once by it and materialized once per day, and the
shared dimension applying the ten days in order (a customer changed on day 5 has that version, after
the first). Tiny days (outage_drops.py), one source's chain and its SCD2 dimension (backfill_location.py);
the warehouse per day is asserted by the in-process range test (test_backfill_after_outage.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from lake_assets.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from lake_assets.io_managers.lake_store import RUN_ID_STATE
from lake_assets.resources.lake_storage import LakeStorage

from .backfill_location import JOB_NAME
from .conftest import REPO
from .dagster_home import env_with, postgres_dagster_home
from .outage_drops import CHANGED_CUSTOMER, FIRST_SEGMENT, SEGMENT_CHANGES, change_times, write_drops

pytestmark = pytest.mark.services  # a Dagster daemon and instance on PostgreSQL

BIN = Path(sys.executable).parent
LOCATION = str(Path(__file__).with_name("backfill_location.py"))
FIRST_DAY = date(2024, 1, 1)
DAYS = 10
DIM = AssetKey(["curated", "dim_customer"])
CHAIN = [["raw", "shop_files", "customers"], ["processed", "customer"], ["masked", "customer"]]
DEADLINE_SECONDS = 900  # a timeout for a loaded machine, not a wait: the loop polls the run's status


def _wait_for_run(instance: DagsterInstance, daemon: subprocess.Popen, log: Path):  # noqa: ANN202 - RunRecord
    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + DEADLINE_SECONDS
    records: list = []
    while time.monotonic() < deadline:
        records = instance.get_run_records(RunsFilter(job_name=JOB_NAME))
        if records and all(r.dagster_run.status in finished for r in records):
            return records
        assert daemon.poll() is None, log.read_text()[-3000:]
        time.sleep(1)
    raise AssertionError(f"run not finished after {DEADLINE_SECONDS} s: "
                         f"{[r.dagster_run.status for r in records]}\n" + log.read_text()[-3000:])


@pytest.mark.slow
def test_ten_day_backfill_launched_at_once_is_one_run_applying_days_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake_url = str(tmp_path / "lake")
    days = write_drops(tmp_path / "drops", FIRST_DAY, DAYS)
    with postgres_dagster_home(tmp_path) as (home, url):
        env = env_with(home, url, LAKE_URL=lake_url, WAREHOUSE_URL=f"sqlite:///{tmp_path / 'warehouse.db'}",
                       SAMPLE_DROP_PATH=str(tmp_path / "drops"), SPARK_MASTER="local[1]")
        log = tmp_path / "daemon.log"
        with open(log, "w") as log_file:
            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-f", LOCATION], cwd=REPO, env=env,
                                      stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            queued = subprocess.run(
                [str(BIN / "dagster"), "job", "launch", "-f", LOCATION, "-j", JOB_NAME,
                 "--tags", json.dumps({RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]})],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
            )
            assert queued.returncode == 0, queued.stdout[-2000:] + queued.stderr[-2000:]
            monkeypatch.setenv("DAGSTER_HOME", str(home))
            monkeypatch.setenv("DAGSTER_PG_URL", url)
            instance = DagsterInstance.get()
            try:
                (record,) = _wait_for_run(instance, daemon, log)
                run = record.dagster_run
                assert run.status == DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
                materialized: dict[AssetKey, list[str | None]] = {}
                for event in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
                    materialization = event.asset_materialization
                    assert materialization is not None
                    materialized.setdefault(materialization.asset_key, []).append(materialization.partition)
                # One materialization per day of each daily asset, one of the dimension, applying every day.
                for key in CHAIN:
                    assert sorted(p or "" for p in materialized[AssetKey(key)]) == days, key
                assert materialized[DIM] == [None]
                (dim_event,) = [e for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
                                if e.asset_materialization and e.asset_materialization.asset_key == DIM]
                assert dim_event.asset_materialization is not None
                assert str(dim_event.asset_materialization.metadata["applied_days"].value) == ", ".join(days)
            finally:
                instance.dispose()
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)

    # The lake agrees: each day committed once, by that run; the dimension holds each masked commit once.
    lake = LakeStorage(url=lake_url)
    for key in CHAIN:
        commits = lake.commits(key)
        assert sorted(commits) == days, key
        assert {c.state.get(RUN_ID_STATE) for c in commits.values()} == {run.run_id}, key
    masked = {day: c.batch_id for day, c in lake.commits(["masked", "customer"]).items()}
    assert lake.partition_state(DIM.path)["applied"]["changes"] == masked
    # History in day order: the first version, then the day-5 change effective at its time.
    versions = sorted((r["valid_from"], r["segment"]) for r in lake.read_arrow(DIM.path, None).to_pylist()
                      if r["customer_id"] == CHANGED_CUSTOMER)
    changes_in_range = [n for n in sorted(SEGMENT_CHANGES) if n <= DAYS]
    assert [s for _, s in versions] == [FIRST_SEGMENT, *(SEGMENT_CHANGES[n] for n in changes_in_range)]
    assert [v.replace(tzinfo=None) for v, _ in versions[1:]] == change_times(FIRST_DAY)[:len(changes_in_range)]
