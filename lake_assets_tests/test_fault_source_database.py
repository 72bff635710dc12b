"""Fault: the source database drops the extracting connection mid-read (PostgreSQL
`pg_terminate_backend`, MariaDB `KILL`; a server restart looks the same to the client).

The window is deterministic: the source query calls a lock the test holds when it reaches row 30 of
40, so chunks of the earlier rows have already been streamed to the lake's staged batch. Expected:
a retryable `SourceTemporarilyUnavailable`, nothing committed, the incremental mark where the previous
day left it, nothing left for a finalizer to trip over and no error logged about the dead connection, and
the rerun delivers each new row once (no duplicates, no gaps)."""

from __future__ import annotations

import gc
import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from lake_assets.ingestion import SourceTemporarilyUnavailable
from lake_assets.ingestion.postgres_copy import BLOCK_BYTES
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, require_listening
from .test_ingestion_database import SALE_COLUMNS, db_source, ingest, raw

pytestmark = pytest.mark.services  # PostgreSQL and MariaDB sources

DAY1, DAY2 = "2024-03-01", "2024-03-02"
STOP_AT = 30  # the row whose read waits for the test's lock
# The 19 rows of day 2 before the blocked one hold more than one block of the COPY reader, so some reach
# the lake's staged batch before the drop whichever read path (COPY or cursor) the extraction takes.
NOTE = "x" * (BLOCK_BYTES // 16)


def _poll(find: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class _Postgres:
    url = PG_ADMIN_URL

    def __init__(self, conn: Connection, schema: str) -> None:
        self.conn, self.schema, self.key = conn, schema, random.randint(1, 2**31 - 1)
        self.reader = 0

    def create(self) -> None:
        s = self.schema
        self.conn.exec_driver_sql(f"CREATE SCHEMA {s}")
        self.conn.exec_driver_sql(
            f"CREATE TABLE {s}.lines (line_id INT, qty INT, unit_price NUMERIC(10,2), sold TIMESTAMP, note TEXT)"
        )
        self.conn.exec_driver_sql(
            f"CREATE FUNCTION {s}.wait_at(id INT) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
            f"IF id = {STOP_AT} THEN PERFORM pg_advisory_xact_lock_shared({self.key}); END IF; RETURN true; END $$"
        )

    def query(self) -> str:
        return f"SELECT * FROM {self.schema}.lines WHERE {self.schema}.wait_at(line_id)"

    def lock(self) -> None:
        self.conn.exec_driver_sql(f"SELECT pg_advisory_lock({self.key})")

    def unlock(self) -> None:
        self.conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")

    def wait_for_reader(self) -> None:
        def waiting() -> list[int]:
            return [pid for (pid,) in self.conn.exec_driver_sql(
                f"SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = {self.key}")]
        (self.reader,) = _poll(waiting, "the extraction to reach the blocked row")  # type: ignore[misc]

    def drop_reader(self) -> None:
        self.conn.exec_driver_sql(f"SELECT pg_terminate_backend({self.reader})")

    def drop(self) -> None:
        self.conn.exec_driver_sql(f"DROP SCHEMA {self.schema} CASCADE")


class _MariaDB:
    url = MARIADB_ADMIN_URL

    def __init__(self, conn: Connection, schema: str) -> None:
        self.conn, self.schema, self.name = conn, schema, f"lake_fault_{schema}"
        self.reader = 0

    def create(self) -> None:
        self.conn.exec_driver_sql(f"CREATE DATABASE {self.schema}")
        self.conn.exec_driver_sql(
            f"CREATE TABLE {self.schema}.lines "
            "(line_id INT, qty INT, unit_price DECIMAL(10,2), sold DATETIME, note MEDIUMTEXT)"
        )

    def query(self) -> str:
        # GET_LOCK is evaluated for row STOP_AT only (short-circuit OR); it waits while the test holds it.
        return (f"SELECT * FROM {self.schema}.lines "
                f"WHERE line_id <> {STOP_AT} OR GET_LOCK('{self.name}', 60) IS NOT NULL")

    def lock(self) -> None:
        self.conn.exec_driver_sql(f"SELECT GET_LOCK('{self.name}', 10)")

    def unlock(self) -> None:
        self.conn.exec_driver_sql(f"SELECT RELEASE_LOCK('{self.name}')")

    def wait_for_reader(self) -> None:
        def waiting() -> list[int]:
            return [pid for (pid,) in self.conn.exec_driver_sql(
                "SELECT id FROM information_schema.processlist WHERE state = 'User lock' "
                f"AND INSTR(info, '{self.name}') > 0 AND id <> CONNECTION_ID()")]
        (self.reader,) = _poll(waiting, "the extraction to reach the blocked row")  # type: ignore[misc]

    def drop_reader(self) -> None:
        self.conn.exec_driver_sql(f"KILL {self.reader}")

    def drop(self) -> None:
        self.conn.exec_driver_sql(f"DROP DATABASE {self.schema}")


@pytest.fixture(params=["postgresql", "mariadb"])
def source_db(request: pytest.FixtureRequest) -> Iterator[_Postgres | _MariaDB]:
    postgres = request.param == "postgresql"
    require_listening(request.param, 5432 if postgres else 3306)
    engine = create_engine(PG_ADMIN_URL if postgres else MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        db = (_Postgres if postgres else _MariaDB)(conn, f"shop_{uuid.uuid4().hex[:10]}")
        db.create()
        try:
            yield db
        finally:
            db.drop()
    engine.dispose()


class _ErrorMessages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _insert(db: _Postgres | _MariaDB, ids: range) -> None:
    # NOTE makes the rows before the blocked one more than a network buffer and a COPY block, so they reach
    # the client however the server batches its sends.
    values = ", ".join(
        f"({i}, {i % 5 + 1}, 1.50, TIMESTAMP '2024-03-01 10:00:00' + INTERVAL '{i}' MINUTE, '{NOTE}')"
        for i in ids
    )
    db.conn.exec_driver_sql(f"INSERT INTO {db.schema}.lines VALUES {values}")


def test_connection_dropped_mid_extraction_is_retryable_and_the_rerun_delivers_each_row_once(
    source_db: _Postgres | _MariaDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = source_db
    lake = LakeStorage(url=str(tmp_path / "lake"))
    table = {"name": "lines", "entity": "sale", "query": db.query(), "columns": {**SALE_COLUMNS, "sold": "sold_at"},
             "incremental": {"cursor": "sold"}}
    config = db_source(db.url, [table], chunk_rows=4)
    _insert(db, range(1, 11))
    first = ingest(lake, config, DAY1)
    assert first.rows == 10
    _insert(db, range(11, 41))  # day 2's 30 new rows; row 30 waits for the test's lock

    spool = tmp_path / "lake" / ".spool"  # where the ingestion streams a delivery before the lake commits it
    streamed: list[Path] = []

    def drop_mid_read() -> None:
        db.wait_for_reader()
        try:
            # The server waits at the blocked row; the client may still be writing the rows before it.
            streamed.extend(_poll(lambda: list(spool.glob("*/part-*.parquet")),  # type: ignore[arg-type]
                                  "rows before the blocked row to reach the spool"))
        finally:
            db.drop_reader()  # also when nothing was staged (asserted below), or the extraction waits for ever

    # What the failure leaves behind for finalizers (the driver's cursor and result reading a closed socket
    # in __del__) and for the logs (a rollback attempted on the dead connection).
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.object!r}: {u.exc_value!r}"))
    logged_errors = _ErrorMessages()  # messages only: a kept record's traceback would keep the objects alive
    sqlalchemy_log = logging.getLogger("sqlalchemy")
    sqlalchemy_log.addHandler(logged_errors)
    monkeypatch.setattr(sqlalchemy_log, "propagate", False)
    db.lock()
    killer = threading.Thread(target=drop_mid_read)
    killer.start()
    try:
        with pytest.raises(SourceTemporarilyUnavailable) as caught:
            ingest(lake, config, DAY2)
    finally:
        killer.join(timeout=90)
        db.unlock()
        sqlalchemy_log.removeHandler(logged_errors)
    assert caught.value.retryable and "shop_db.lines" in str(caught.value)
    del caught  # its traceback holds the extraction's connection, cursor and result
    gc.collect()
    assert (logged_errors.messages, unraisable) == ([], [])
    key = ["raw", "shop_db", "lines"]
    assert streamed  # rows before the blocked one had reached the spool: a drop mid-read
    assert lake.commit_info(key, DAY2) is None  # ...and they are not visible
    assert not any(spool.iterdir())  # ...nor left behind
    assert lake.committed_partitions(key) == [DAY1]  # the mark is day 1's

    second = ingest(lake, config, DAY2)
    ids = [int(r["line_id"]) for r in raw(lake, "lines", DAY2)]
    assert sorted(ids) == list(range(11, 41)) and second.rows == 30  # each new row once, none missing
    assert sorted(int(r["line_id"]) for r in raw(lake, "lines", DAY1)) == list(range(1, 11))
