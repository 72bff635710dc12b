"""Faults while the warehouse fact load is inside its transaction (real PostgreSQL).

The window is made deterministic without mocks: a trigger in the test's schema makes the fact load's
bulk insert wait for an advisory lock the test holds. By then the load has already deleted the day's
rows and the re-delivered keys of other days (same transaction), so the fault lands mid-load.

* the connection dropped (`pg_terminate_backend`, what a server restart or a network cut looks like
  to the client): readers keep the previous state, the step is retried by its policy (a connection
  error is not a data error), and the retry loads exactly the lake's day;
* the process killed (SIGKILL of `dagster asset materialize`): the server rolls the open transaction
  back, readers keep the previous state, and a rerun completes the day.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, instance_for_test
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from lake_assets.config import PipelineConfig
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseConnectionLost, WarehouseResource, is_data_error

from . import warehouse_rows as rows
from .conftest import REPO, Warehouse
from .test_warehouse_assets import DAYS, _config, _curated_day, _events, _run

pytestmark = pytest.mark.services  # PostgreSQL, a Dagster subprocess

DAY1_LINES = [("L1", 1, 1, 2), ("L2", 2, 2, 3)]
# Day 2 re-delivers L1 (the load deletes it from day 1 inside its transaction) and brings L3, L4.
DAY2_LINES = [("L1", 1, 1, 5), ("L3", 3, 1, 1), ("L4", 2, 2, 4)]


def _facts(config: PipelineConfig) -> list[tuple[str, str, int]]:
    engine = create_engine(config.warehouse.url)
    try:
        with engine.connect() as conn:
            return sorted(
                (str(d), s, q) for d, s, q in conn.exec_driver_sql(
                    f'SELECT ingest_date, sale_line_id, quantity FROM "{config.warehouse.schema_name}".fact_sales'
                )
            )
    finally:
        engine.dispose()


def _day_one_loaded(server: Warehouse, config: PipelineConfig) -> list[tuple[str, str, int]]:
    """Day 1 in the warehouse, loaded straight through the resource (a Dagster run of it would only add
    time), and day 2 in the curated lake; returns the facts readers see before day 2's load."""
    warehouse = WarehouseResource(url=server.url, schema_name=server.schema)
    warehouse.ensure_schema()
    for table, key in (("dim_customer", "customer_key"), ("dim_product", "product_key"),
                       ("dim_location", "location_key"), ("dim_date", "date_key")):
        warehouse.upsert_rows(table, getattr(rows, table)(), [key])
    warehouse.replace_rows("fact_sales", rows.fact_sales(1, DAY1_LINES), ("ingest_date", DAYS[0]),
                           key=["sale_line_id"])
    _curated_day(LakeStorage(url=config.lake.url), 2, "Denver", DAY2_LINES)
    before = _facts(config)
    assert before == _expected(DAY1_LINES, DAYS[0])
    return before


def _chain(error: object) -> str:
    """The messages of a serialized error and of every error that caused it."""
    messages = []
    while error is not None:
        messages.append(error.message)  # type: ignore[attr-defined]
        error = error.cause or error.context  # type: ignore[attr-defined]
    return "\n".join(messages)


def _expected(lines: list[tuple[str, int, int, int]], day: str) -> list[tuple[str, str, int]]:
    return [(day, line_id, quantity) for line_id, _, _, quantity in lines]


@contextmanager
def _fact_inserts_wait_for_the_test(config: PipelineConfig) -> Iterator[tuple[Connection, int]]:
    """While inside: every INSERT/COPY into fact_sales waits (in its transaction) for an advisory lock
    this test holds until it unlocks it. Yields the test's connection and the lock's key."""
    key = random.randint(1, 2**31 - 1)  # a key of its own: other tests may use advisory locks too
    schema = f'"{config.warehouse.schema_name}"'
    engine = create_engine(config.warehouse.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE FUNCTION {schema}.wait_for_test() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({key}); RETURN NULL; END $$"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER wait_for_test BEFORE INSERT ON {schema}.fact_sales "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.wait_for_test()"
        )
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        try:
            yield conn, key
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")
            conn.exec_driver_sql(f"DROP TRIGGER wait_for_test ON {schema}.fact_sales")
    engine.dispose()


def _waiting_load(conn: Connection, key: int, other_than: int | None = None, timeout: float = 120) -> int:
    """The backend pid of the load waiting for the test's lock (in its transaction, after its deletes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [
            pid for (pid,) in conn.exec_driver_sql(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                f"AND classid = 0 AND objid = {key}"
            )
            if pid != other_than
        ]
        if pids:
            return pids[0]
        time.sleep(0.2)
    raise AssertionError("no fact load reached the blocked insert")


def _gone(conn: Connection, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not conn.exec_driver_sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}").first():
            return
        time.sleep(0.1)
    raise AssertionError(f"backend {pid} still alive")


def test_connection_dropped_mid_fact_load_rolls_back_and_the_retry_loads_the_lakes_day(
    postgres_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(monkeypatch, tmp_path, postgres_warehouse.url, postgres_warehouse.schema)  # retries.max 1
    before = _day_one_loaded(postgres_warehouse, config)
    with instance_for_test() as instance:
        seen: dict[str, object] = {}
        with _fact_inserts_wait_for_the_test(config) as (conn, key):

            def drop_the_connection() -> None:
                try:
                    first = _waiting_load(conn, key)
                    seen["during"] = _facts(config)  # a reader while the load is mid-transaction
                    conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
                    _gone(conn, first)
                    seen["after_drop"] = _facts(config)
                    seen["retry_pid"] = _waiting_load(conn, key, other_than=first)  # the policy's retry
                finally:
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")  # let the retry through

            killer = threading.Thread(target=drop_the_connection)
            killer.start()
            result = _run(config, DAYS[1], instance)
            killer.join(timeout=180)

        assert seen["during"] == before and seen["after_drop"] == before  # previous state, nothing half-done
        assert result.success
        retried = _events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY)
        assert set(retried) == {"warehouse__fact_sales"} and len(retried["warehouse__fact_sales"]) == 1
        # The drop surfaced as a lost connection (retryable), not as a data error that forbids retries.
        message = _chain(retried["warehouse__fact_sales"][0].event_specific_data.error)
        assert "WarehouseConnectionLost" in message, message
        assert "the connection was lost while loading fact_sales (server closed the connection" in message, message
        assert "rejected" not in message, message
    # The lake's day 2 once, day 1 without the re-delivered L1.
    assert _facts(config) == sorted(_expected(DAY1_LINES[1:], DAYS[0]) + _expected(DAY2_LINES, DAYS[1]))


@pytest.mark.slow  # a `dagster asset materialize` process
def test_cli_killed_mid_fact_load_leaves_the_previous_state_and_a_rerun_completes(
    postgres_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(monkeypatch, tmp_path, postgres_warehouse.url, postgres_warehouse.schema)
    before = _day_one_loaded(postgres_warehouse, config)

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "PYTHONPATH": str(REPO)}
    os.makedirs(env["DAGSTER_HOME"])
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "lake_assets",
               "--select", "warehouse/fact_sales", "--partition", DAYS[1]]
    with _fact_inserts_wait_for_the_test(config) as (conn, key):
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            backend = _waiting_load(conn, key)
            os.killpg(process.pid, signal.SIGKILL)  # the CLI and anything it started, no chance to clean up
            assert process.wait(timeout=30) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        assert _facts(config) == before
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")  # the orphaned backend finds its client gone
        _gone(conn, backend)
    assert _facts(config) == before  # rolled back by the server, not committed half-way

    with instance_for_test() as instance:
        result = _run(config, DAYS[1], instance)
        assert result.success
        assert AssetKey(["warehouse", "fact_sales"]) in {e.asset_key for e in result.get_asset_materialization_events()}
    assert _facts(config) == sorted(_expected(DAY1_LINES[1:], DAYS[0]) + _expected(DAY2_LINES, DAYS[1]))


def test_mariadb_connection_killed_mid_fact_load_is_connection_lost_and_the_reload_completes(
    mariadb_warehouse: Warehouse,
) -> None:
    """MariaDB: `KILL` of the loading connection while a row trigger waits for the test's lock (after
    the load deleted the day and the re-delivered key): `WarehouseConnectionLost` (retryable), the
    previous rows stay, the same load again completes."""
    warehouse = WarehouseResource(url=mariadb_warehouse.url, schema_name=mariadb_warehouse.schema)
    rows.load_star(warehouse)
    warehouse.replace_rows("fact_sales", rows.fact_sales(1, DAY1_LINES), ("ingest_date", DAYS[0]),
                           key=["sale_line_id"])
    target = warehouse.qualified("fact_sales")

    def facts() -> list[tuple[str, str, int]]:
        return sorted((str(d), s, q) for d, s, q in warehouse.fetch_all(
            f"SELECT ingest_date, sale_line_id, quantity FROM {target}"))

    before = facts()
    name = f"lake_fault_{mariadb_warehouse.schema}"
    engine = create_engine(mariadb_warehouse.url, isolation_level="AUTOCOMMIT")
    day2 = rows.fact_sales(2, DAY2_LINES)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE TRIGGER {mariadb_warehouse.schema}.wait_for_test BEFORE INSERT ON {target} "
                             f"FOR EACH ROW SET @waited = GET_LOCK('{name}', 60)")
        conn.exec_driver_sql(f"SELECT GET_LOCK('{name}', 10)")
        errors: list[BaseException] = []

        def load() -> None:
            try:
                warehouse.replace_rows("fact_sales", day2, ("ingest_date", DAYS[1]), key=["sale_line_id"])
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            def waiting() -> list[int]:
                return [i for (i,) in conn.exec_driver_sql(
                    "SELECT id FROM information_schema.processlist WHERE state = 'User lock' "
                    f"AND INSTR(info, '{mariadb_warehouse.schema}') > 0 AND id <> CONNECTION_ID()")]
            deadline = time.monotonic() + 60
            while not (found := waiting()):
                assert time.monotonic() < deadline and loader.is_alive(), errors
                time.sleep(0.1)
            conn.exec_driver_sql(f"KILL {found[0]}")
            loader.join(timeout=60)
        finally:
            conn.exec_driver_sql(f"SELECT RELEASE_LOCK('{name}')")
            conn.exec_driver_sql(f"DROP TRIGGER {mariadb_warehouse.schema}.wait_for_test")
    engine.dispose()

    (error,) = errors
    assert isinstance(error, WarehouseConnectionLost), repr(error)
    assert "connection was lost while loading fact_sales" in str(error)
    assert not is_data_error(error)
    assert facts() == before  # rolled back: day 1 still holds L1, day 2 empty
    warehouse.replace_rows("fact_sales", day2, ("ingest_date", DAYS[1]), key=["sale_line_id"])
    assert facts() == sorted(_expected(DAY1_LINES[1:], DAYS[0]) + _expected(DAY2_LINES, DAYS[1]))
