"""A daemon-launched run and a `dagster asset materialize` run of the same day at once, on one
DAGSTER_HOME made from the repository's dagster.yaml as shipped (SQLite storage, the run queue
dequeued by a real `dagster-daemon`).

The CLI run never goes through the queue, so both runs execute (docs/orchestration.md,
"Concurrency"): the per-day steps (sources -> masked) each replace the day's partitions atomically,
and every step writing what all days share (dimensions, the fact, their warehouse loads) takes turns
on the `lake_star_schema` pool, whichever way its run was started. The window is made deterministic
without sleeps: the test holds the pool's slot, launches the queued run, waits until the daemon started
it and it stands blocked at the pool with the day masked, then starts the CLI run and waits for the
same; then it frees the slot. Expected: no two pooled steps overlap, both runs succeed (no file read
while another run replaced it), the dimension applies the day once, and the lake and the warehouse
hold the day exactly once: fact lines and net total equal to the oracle computed from the sales file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import AssetKey, AssetsDefinition, DagsterEventType, DagsterInstance, DagsterRunStatus

from lake_assets.assets import build_all_assets
from lake_assets.assets.fact_partitions import delivered_on, facts_since
from lake_assets.assets.partitions import PARTITION_TAG
from lake_assets.assets.pools import STAR_SCHEMA_POOL
from lake_assets.config import load_config
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import REPO, SAMPLE_DIR
from .helpers import expected_net_total, query_rows, source_sales
from .warehouse_day_location import JOB_NAME, SELECTION

pytestmark = pytest.mark.services  # a Dagster daemon, two Spark runs

BIN = Path(sys.executable).parent
LOCATION = str(Path(__file__).with_name("warehouse_day_location.py"))
DAY = "2024-01-01"
DIM = AssetKey(["curated", "dim_customer"])
HOLDER = ("test-holds-the-slot", "holder")  # (run id, step key) of the slot the test takes first
MASKED_STEPS = {"masked__customer", "masked__product", "masked__location", "masked__sale"}
DEADLINE_SECONDS = 900  # a timeout for a loaded machine, not a wait: every wait below polls an event


def _logs(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return list(instance.all_logs(run_id, of_type=kind))


def _at_the_pool_with_the_day_masked(instance: DagsterInstance, run_id: str) -> bool:
    blocked = any(f"pool {STAR_SCHEMA_POOL}" in (e.message or "")
                  for e in _logs(instance, run_id, DagsterEventType.ENGINE_EVENT))
    done = {e.step_key for e in _logs(instance, run_id, DagsterEventType.STEP_SUCCESS)}
    return blocked and MASKED_STEPS <= done


def _wait(condition: Callable[[], bool], what: str, alive: Callable[[], str | None]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        trouble = alive()
        assert trouble is None, f"while waiting for {what}: {trouble}"
        assert time.monotonic() < deadline, f"{what}: not after {DEADLINE_SECONDS} s"
        time.sleep(0.5)


def _pooled_steps() -> set[str]:
    """Step keys (op names) of the assets in the shared-table pool, from the definitions."""
    return {a.op.name for a in build_all_assets(load_config())
            if isinstance(a, AssetsDefinition) and a.op.pool == STAR_SCHEMA_POOL}


def _pooled_windows(instance: DagsterInstance, run_id: str, pooled: set[str]) -> list[tuple[float, float, str]]:
    """(start, end, step) of the run's pooled steps, from its event log."""
    starts = {e.step_key: e.timestamp for e in _logs(instance, run_id, DagsterEventType.STEP_START)}
    ends = {e.step_key: e.timestamp for e in _logs(instance, run_id, DagsterEventType.STEP_SUCCESS)}
    return [(starts[k], ends[k], f"{run_id[:8]}:{k}") for k in pooled & set(starts)]


@pytest.mark.slow
def test_cli_run_and_daemon_run_of_one_day_take_turns_and_load_the_day_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    lake_url, warehouse_url = str(tmp_path / "lake"), f"sqlite:///{tmp_path / 'warehouse.db'}"
    for name, value in {"DAGSTER_HOME": str(home), "LAKE_URL": lake_url, "WAREHOUSE_URL": warehouse_url,
                        "SPARK_MASTER": "local[1]"}.items():
        monkeypatch.setenv(name, value)
    instance = DagsterInstance.get()
    storage = instance.event_log_storage
    logs = {name: tmp_path / f"{name}.log" for name in ("daemon", "cli")}
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str, command: list[str]) -> None:
        with open(logs[name], "w") as log:
            processes[name] = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True)

    def alive() -> str | None:
        for name, process in processes.items():
            if process.poll() not in (None, 0) or (name == "daemon" and process.poll() is not None):
                return f"{name} exited with {process.returncode}: {logs[name].read_text()[-3000:]}"
        return None

    try:
        # The pool's row as a run's first claim creates it (concurrency.pools.default_limit: 1); the test
        # takes the one slot, so both runs reach the shared steps while it is held.
        storage.initialize_concurrency_limit_to_default(STAR_SCHEMA_POOL)
        assert storage.get_concurrency_info(STAR_SCHEMA_POOL).slot_count == 1
        assert storage.claim_concurrency_slot(STAR_SCHEMA_POOL, *HOLDER).is_claimed

        start("daemon", [str(BIN / "dagster-daemon"), "run", "-f", LOCATION])
        launched = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-f", LOCATION, "-j", JOB_NAME,
             "--tags", json.dumps({PARTITION_TAG: DAY})],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )
        assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]
        (queued,) = instance.get_runs()
        _wait(lambda: _at_the_pool_with_the_day_masked(instance, queued.run_id),
              "the daemon-launched run at the pool", alive)
        assert instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.STARTED

        start("cli", [str(BIN / "dagster"), "asset", "materialize", "-m", "lake_assets",
                      "--select", SELECTION, "--partition", DAY])

        def cli_run_id() -> str | None:
            others = [r.run_id for r in instance.get_runs() if r.run_id != queued.run_id]
            return others[0] if others else None

        _wait(lambda: (run := cli_run_id()) is not None and _at_the_pool_with_the_day_masked(instance, run),
              "the CLI run at the pool", alive)
        cli = cli_run_id()
        assert cli is not None
        released = time.time()
        storage.free_concurrency_slot_for_step(*HOLDER)

        assert processes["cli"].wait(timeout=DEADLINE_SECONDS) == 0, logs["cli"].read_text()[-3000:]
        finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
        _wait(lambda: instance.get_run_by_id(queued.run_id).status in finished, "the daemon-launched run", alive)
        run_ids = [queued.run_id, cli]
        failures = [e.message for r in run_ids for e in _logs(instance, r, DagsterEventType.STEP_FAILURE)]
        assert [instance.get_run_by_id(r).status for r in run_ids] == [DagsterRunStatus.SUCCESS] * 2, failures

        # The shared steps of the two runs took turns: none ran while the slot was held, none overlapped.
        windows = sorted(w for r in run_ids for w in _pooled_windows(instance, r, _pooled_steps()))
        assert {w[2].split(":")[1] for w in windows} >= {"curated__dim_customer", "curated__fact_sales",
                                                          "warehouse__fact_sales"}
        assert windows[0][0] >= released
        for (_, end, step), (start_next, _, next_step) in zip(windows, windows[1:], strict=False):
            assert end <= start_next, f"{step} and {next_step} ran at once"
        # The dimension applied the day once: in the run that got the slot first.
        applied = sorted(str(e.asset_materialization.metadata["applied_days"].value)
                         for r in run_ids for e in _logs(instance, r, DagsterEventType.ASSET_MATERIALIZATION)
                         if e.asset_materialization.asset_key == DIM)
        assert applied == [DAY, "none (up to date)"]
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        instance.dispose()

    # The lake and the warehouse hold the day once: the oracle is the sales file itself.
    lake = LakeStorage(url=lake_url)
    sales = source_sales(SAMPLE_DIR, DAY)
    masked = lake.commit_info(["masked", "customer"], DAY)
    assert lake.partition_state(DIM.path)["applied"]["changes"] == {DAY: masked.batch_id}
    lake_lines = delivered_on(facts_since(lake, DAY), DAY).column("sale_line_id").to_pylist()
    assert sorted(lake_lines) == sorted(sales)
    rows = query_rows(warehouse_url, "SELECT sale_line_id, net_amount FROM fact_sales")
    assert sorted(r["sale_line_id"] for r in rows) == sorted(sales)
    total = sum((round(float(r["net_amount"]) * 100) for r in rows), 0)
    assert total == int(expected_net_total(SAMPLE_DIR, DAY) * 100)
