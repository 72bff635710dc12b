"""A backfill queued all at once on deploy/postgres/dagster.yaml, dequeued by a real `dagster-daemon`:
the queue's `dagster/partition` limit runs the days one after the other, oldest first, so the shared
dimension applies each day once and in order. Two days of the sample data (each run is a process with
its own SparkSession, ~40 s; two show the order and the one-at-a-time as well as ten would), one
source's chain (backfill_location.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from lake_assets.assets.partitions import PARTITION_TAG
from lake_assets.resources.lake_storage import LakeStorage

from .backfill_location import JOB_NAME
from .conftest import REPO
from .dagster_home import env_with, postgres_dagster_home

pytestmark = pytest.mark.services  # a Dagster daemon and instance on PostgreSQL

BIN = Path(sys.executable).parent
LOCATION = str(Path(__file__).with_name("backfill_location.py"))
DAYS = ["2024-01-01", "2024-01-02"]
DIM = AssetKey(["curated", "dim_customer"])
DEADLINE_SECONDS = 900  # a timeout for a loaded machine; ~40 s a run when idle, 2 min at load 10 on 2 cores


def _wait_for_runs(instance: DagsterInstance, count: int, daemon: subprocess.Popen, log: Path) -> list:
    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        records = instance.get_run_records(RunsFilter(job_name=JOB_NAME))
        if len(records) == count and all(r.dagster_run.status in finished for r in records):
            return records
        assert daemon.poll() is None, log.read_text()[-3000:]
        time.sleep(1)
    raise AssertionError(f"runs not finished after {DEADLINE_SECONDS} s: "
                         f"{[(r.dagster_run.tags.get(PARTITION_TAG), r.dagster_run.status) for r in records]}\n"
                         + log.read_text()[-3000:])


@pytest.mark.slow
def test_backfill_queued_at_once_applies_every_day_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake_url = str(tmp_path / "lake")
    with postgres_dagster_home(tmp_path) as (home, url):
        env = env_with(home, url, LAKE_URL=lake_url, WAREHOUSE_URL=f"sqlite:///{tmp_path / 'warehouse.db'}",
                       SPARK_MASTER="local[1]")
        log = tmp_path / "daemon.log"
        with open(log, "w") as log_file:
            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-f", LOCATION], cwd=REPO, env=env,
                                      stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            queued = subprocess.run(
                [str(BIN / "dagster"), "job", "backfill", "-f", LOCATION, "-j", JOB_NAME,
                 "--partitions", ",".join(DAYS), "--noprompt"],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
            )
            assert queued.returncode == 0, queued.stdout[-2000:] + queued.stderr[-2000:]
            monkeypatch.setenv("DAGSTER_HOME", str(home))
            monkeypatch.setenv("DAGSTER_PG_URL", url)
            instance = DagsterInstance.get()
            try:
                records = _wait_for_runs(instance, len(DAYS), daemon, log)
                by_start = sorted(records, key=lambda r: r.start_time)
                assert [r.dagster_run.status for r in by_start] == [DagsterRunStatus.SUCCESS] * len(DAYS), log
                # Queued at once (every run existed before the first one started) ...
                first_start = by_start[0].start_time
                assert all(r.create_timestamp.timestamp() < first_start for r in records)
                # ... started one after the other, oldest day first, each day once.
                assert [r.dagster_run.tags[PARTITION_TAG] for r in by_start] == DAYS
                for earlier, later in zip(by_start, by_start[1:], strict=False):
                    assert earlier.end_time <= later.start_time, "two daily runs overlapped"
                # Each run applied its own day to the dimension, and only that day.
                applied = []
                for record in by_start:
                    (event,) = [e for e in instance.all_logs(record.dagster_run.run_id,
                                                             of_type=DagsterEventType.ASSET_MATERIALIZATION)
                                if e.asset_materialization.asset_key == DIM]
                    applied.append(str(event.asset_materialization.metadata["applied_days"].value))
                assert applied == DAYS
            finally:
                instance.dispose()
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)

    # The lake agrees: the dimension's state holds each day's masked commit exactly once.
    lake = LakeStorage(url=lake_url)
    masked = {day: c.batch_id for day, c in lake.commits(["masked", "customer"]).items()}
    assert sorted(masked) == DAYS
    assert lake.partition_state(DIM.path)["applied"]["changes"] == masked
