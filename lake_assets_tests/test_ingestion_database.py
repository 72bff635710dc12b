"""DatabaseSource against real PostgreSQL and MariaDB: a classic orders / order_lines / customers /
products shop schema, full and incremental loads (insert, update, rerun, boundary rows), chunked
streaming, quarantine, errors that name the source without the password, and kill-and-rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, materialize
from sqlalchemy import create_engine, text

from lake_assets.assets.raw import build_raw_assets
from lake_assets.config import DatabaseSourceConfig, PipelineConfig
from lake_assets.ingestion import (
    DatabaseSource,
    DataIngestionPipeline,
    SourceTemporarilyUnavailable,
    SourceUnavailable,
    raw_key,
)
from lake_assets.io_managers import ParquetLakeIOManager
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.spark import build_spark_resource

from .conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, TEST_MASKING_KEY, require_listening

pytestmark = pytest.mark.services  # PostgreSQL and MariaDB sources

SALE_COLUMNS = {"line_id": "sale_line_id", "ordered_at": "sold_at", "qty": "quantity"}
T0 = "2024-03-01 10:00:00"


@dataclass
class ShopDb:
    dialect: str
    url: str
    schema: str

    def run(self, *statements: str) -> None:
        engine = create_engine(self.url)
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement.replace("{s}", self.schema)))
        engine.dispose()

    def sale_query(self, extra_where: str = "") -> str:
        return (
            "SELECT l.line_id, o.order_id, o.ordered_at, o.customer_id, l.product_id, l.qty, l.unit_price, "
            "GREATEST(l.updated_at, o.updated_at) AS changed_at "
            f"FROM {self.schema}.order_lines l JOIN {self.schema}.orders o ON o.order_id = l.order_id {extra_where}"
        )


def _create_shop(db: ShopDb) -> None:
    db.run(
        "CREATE TABLE {s}.customers (customer_id INT PRIMARY KEY, email VARCHAR(80), full_name VARCHAR(80),"
        " updated_at TIMESTAMP NOT NULL)",
        "CREATE TABLE {s}.products (product_id INT PRIMARY KEY, sku VARCHAR(20), name VARCHAR(80),"
        " price NUMERIC(10,2), updated_at TIMESTAMP NOT NULL)",
        "CREATE TABLE {s}.orders (order_id INT PRIMARY KEY, customer_id INT, ordered_at TIMESTAMP,"
        " updated_at TIMESTAMP NOT NULL)",
        "CREATE TABLE {s}.order_lines (line_id INT PRIMARY KEY, order_id INT, product_id INT, qty INT,"
        " unit_price NUMERIC(10,2), updated_at TIMESTAMP NOT NULL)",
    )
    db.run(
        *[f"INSERT INTO {{s}}.customers VALUES ({i}, 'c{i}@shop.test', 'Customer {i}', '{T0}')" for i in range(1, 8)],
        *[f"INSERT INTO {{s}}.products VALUES ({i}, 'SKU{i}', 'Product {i}', {i}.50, '{T0}')" for i in range(1, 4)],
        *[f"INSERT INTO {{s}}.orders VALUES ({o}, {o}, '2024-03-01 0{o}:15:00', '{T0}')" for o in range(1, 6)],
        # 10 lines, all with the same update timestamp: the whole first load sits on the boundary.
        *[
            f"INSERT INTO {{s}}.order_lines VALUES ({o * 10 + n}, {o}, {n}, {n + 1}, {n}.25, '{T0}')"
            for o in range(1, 6)
            for n in (1, 2)
        ],
    )


@pytest.fixture(params=["postgresql", "mariadb"])
def shop_db(request: pytest.FixtureRequest) -> Iterator[ShopDb]:
    """A fresh shop schema (PostgreSQL) / database (MariaDB), seeded, dropped afterwards."""
    dialect = request.param
    port = 5432 if dialect == "postgresql" else 3306
    require_listening(dialect, port)
    name = f"shop_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL if dialect == "postgresql" else MARIADB_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}" if dialect == "postgresql" else f"CREATE DATABASE {name}"))
    db = ShopDb(dialect, PG_ADMIN_URL if dialect == "postgresql" else MARIADB_ADMIN_URL + name, name)
    _create_shop(db)
    yield db
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {name} CASCADE" if dialect == "postgresql" else f"DROP DATABASE {name}"))
    admin.dispose()


def db_source(url: str, tables: list[dict[str, Any]], chunk_rows: int = 4) -> DatabaseSourceConfig:
    return DatabaseSourceConfig.model_validate(
        {
            "name": "shop_db",
            "kind": "database",
            "url": url,
            "chunk_rows": chunk_rows,
            "connect_timeout_seconds": 3,
            "tables": tables,
        }
    )


def sales_table(db: ShopDb, **extra: Any) -> dict[str, Any]:
    return {
        "name": "sales",
        "entity": "sale",
        "query": db.sale_query(),
        "columns": SALE_COLUMNS,
        "incremental": {"cursor": "changed_at"},
        **extra,
    }


def ingest(lake: LakeStorage, config: DatabaseSourceConfig, day: str, table: int = 0) -> Any:
    return DataIngestionPipeline(DatabaseSource(config, config.tables[table]), lake).run(day)


def raw(lake: LakeStorage, name: str, day: str) -> list[dict[str, Any]]:
    return lake.read_arrow(["raw", "shop_db", name], day).to_pylist()


def test_sale_query_full_then_incremental_with_boundary_rows(shop_db: ShopDb, tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config = db_source(shop_db.url, [sales_table(shop_db)])
    first = ingest(lake, config, "2024-03-01")
    rows = raw(lake, "sales", "2024-03-01")
    assert sorted(int(r["line_id"]) for r in rows) == [11, 12, 21, 22, 31, 32, 41, 42, 51, 52]
    line = next(r for r in rows if r["line_id"] == "32")
    # Values as text the processed layer parses: ISO timestamps, decimals with their scale.
    assert (line["ordered_at"], line["unit_price"], line["qty"]) == ("2024-03-01 03:15:00", "2.25", "3")
    assert first.cursor["value"] == "2024-03-01T10:00:00" and len(first.cursor["boundary_keys"]) == 10
    assert line["_source_query"].startswith("SELECT l.line_id")

    # A late row on exactly the old mark, an update (new timestamp) and a new line.
    shop_db.run(
        "INSERT INTO {s}.order_lines VALUES (13, 1, 3, 1, 3.50, '2024-03-01 10:00:00')",
        "UPDATE {s}.order_lines SET qty = 9, updated_at = '2024-03-02 09:00:00' WHERE line_id = 22",
        "INSERT INTO {s}.order_lines VALUES (53, 5, 3, 2, 3.50, '2024-03-02 11:30:00')",
    )
    second = ingest(lake, config, "2024-03-02")
    rows = raw(lake, "sales", "2024-03-02")
    assert sorted(int(r["line_id"]) for r in rows) == [13, 22, 53]
    assert next(r for r in rows if r["line_id"] == "22")["qty"] == "9"
    assert second.boundary_duplicates_skipped == 9  # the 10 old boundary rows minus line 22 (moved on)
    assert second.cursor["value"] == "2024-03-02T11:30:00" and second.cursor["boundary_keys"] == ["53"]

    # Rerun of day 2 (e.g. after a downstream failure): same rows, replaced, never appended.
    ingest(lake, config, "2024-03-02")
    assert sorted(int(r["line_id"]) for r in raw(lake, "sales", "2024-03-02")) == [13, 22, 53]
    # No change: an empty partition that carries the mark forward.
    third = ingest(lake, config, "2024-03-03")
    assert third.rows == 0 and third.cursor == second.cursor
    assert raw(lake, "sales", "2024-03-03") == []


def test_table_full_load_streams_in_chunks(shop_db: ShopDb, tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    table = f"{shop_db.schema}.customers"
    config = db_source(shop_db.url, [{"name": "customers", "entity": "customer", "table": table}], chunk_rows=3)
    result = ingest(lake, config, "2024-03-01")
    assert result.rows == 7 and result.cursor is None
    files = lake.committed_files(["raw", "shop_db", "customers"], "2024-03-01")
    assert [pq.ParquetFile(f).metadata.num_row_groups for f in files] == [3]  # 3 + 3 + 1 rows: 3 chunks
    shop_db.run("UPDATE {s}.customers SET email = 'new@shop.test' WHERE customer_id = 2")
    ingest(lake, config, "2024-03-02")  # full load: every row again, with the change
    rows = {r["customer_id"]: r for r in raw(lake, "customers", "2024-03-02")}
    assert len(rows) == 7 and rows["2"]["email"] == "new@shop.test"


def test_mark_stops_at_the_oldest_quarantined_row_so_it_is_read_again(shop_db: ShopDb, tmp_path: Path) -> None:
    # Order 6 has no order time (line 61 is rejected), line 62 has no quantity; line 63 is fine and newer.
    shop_db.run(
        "INSERT INTO {s}.orders VALUES (6, 1, NULL, '2024-03-01 12:00:00')",
        "INSERT INTO {s}.order_lines VALUES (61, 6, 1, 1, 1.00, '2024-03-01 12:00:00')",
        "INSERT INTO {s}.order_lines VALUES (62, 5, 1, NULL, 1.00, '2024-03-01 12:00:00')",
        "INSERT INTO {s}.order_lines VALUES (63, 5, 2, 1, 1.00, '2024-03-01 13:00:00')",
    )
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config = db_source(shop_db.url, [sales_table(shop_db)])
    result = ingest(lake, config, "2024-03-01")
    assert result.rows == 11 and result.quarantined == 2
    rejects = lake.read_arrow(["quarantine", "raw", "shop_db", "sales"], "2024-03-01").to_pylist()
    assert sorted(r["_reject_reason"] for r in rejects) == ["missing ordered_at (sold_at)", "missing qty (quantity)"]
    # The mark does not pass the oldest quarantined row (12:00), although line 63 (13:00) was published.
    assert result.cursor["value"] == "2024-03-01T12:00:00" and result.cursor["boundary_keys"] == []

    # The order time is repaired in place (no new update timestamp): the next day reads it again.
    shop_db.run("UPDATE {s}.orders SET ordered_at = '2024-03-01 11:00:00' WHERE order_id = 6")
    second = ingest(lake, config, "2024-03-02")
    assert sorted(int(r["line_id"]) for r in raw(lake, "sales", "2024-03-02")) == [61, 63]
    assert second.quarantined == 1  # line 62 is still bad: the mark stays on it, line 61 is now delivered
    assert second.cursor["value"] == "2024-03-01T12:00:00" and second.cursor["boundary_keys"] == ["61"]


def test_schema_drift_is_reported_and_fail_policy_stops_the_commit(shop_db: ShopDb, tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    table = {"name": "products", "entity": "product", "table": f"{shop_db.schema}.products"}
    ingest(lake, db_source(shop_db.url, [table]), "2024-03-01")
    shop_db.run("ALTER TABLE {s}.products ADD COLUMN colour VARCHAR(10)")
    evolved = ingest(lake, db_source(shop_db.url, [table]), "2024-03-02")
    assert evolved.new_columns == ["colour"] and evolved.missing_columns == []
    shop_db.run("ALTER TABLE {s}.products DROP COLUMN sku")
    with pytest.raises(SourceUnavailable, match=r"shop_db\.products: columns changed .*missing: sku"):
        ingest(lake, db_source(shop_db.url, [{**table, "schema_drift": "fail"}]), "2024-03-03")
    assert lake.commit_info(["raw", "shop_db", "products"], "2024-03-03") is None


@pytest.mark.parametrize("shop_db", ["postgresql"], indirect=True)
def test_rerun_of_an_older_day_keeps_to_its_own_window(shop_db: ShopDb, tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config = db_source(shop_db.url, [sales_table(shop_db)])
    ingest(lake, config, "2024-03-01")  # the 10 seeded lines, all on one timestamp
    shop_db.run(
        "INSERT INTO {s}.order_lines VALUES (13, 1, 3, 1, 3.50, '2024-03-01 10:00:00')",  # late, on the mark
        "UPDATE {s}.order_lines SET qty = 9, updated_at = '2024-03-02 09:00:00' WHERE line_id = 22",
        "INSERT INTO {s}.order_lines VALUES (53, 5, 3, 2, 3.50, '2024-03-02 11:30:00')",
    )
    day2 = ingest(lake, config, "2024-03-02")
    shop_db.run("INSERT INTO {s}.order_lines VALUES (54, 5, 1, 2, 1.50, '2024-03-03 08:00:00')")

    rerun = ingest(lake, config, "2024-03-01")
    # Day 1 keeps what day 1 read: the lines on its mark, minus line 22, which changed and belongs to day 2.
    assert sorted(int(r["line_id"]) for r in raw(lake, "sales", "2024-03-01")) == [11, 12, 21, 31, 32, 41, 42, 51, 52]
    assert rerun.cursor == day2.previous_cursor  # exactly where day 2 started

    day3 = ingest(lake, config, "2024-03-03")
    assert day3.previous_cursor == day2.cursor
    assert [int(r["line_id"]) for r in raw(lake, "sales", "2024-03-03")] == [54]
    seen: dict[str, list[str]] = {}
    for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
        for row in raw(lake, "sales", day):
            seen.setdefault(row["line_id"], []).append(row["changed_at"])
    assert {line: versions for line, versions in seen.items() if len(versions) != len(set(versions))} == {}


def _pipeline_config(source: DatabaseSourceConfig, lake_dir: Path) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "start_date": "2024-01-01",
            "lake": {"url": str(lake_dir)},
            "warehouse": {"url": "sqlite://"},
            "sources": [source.model_dump(by_alias=True)],
            "masking": {"key": TEST_MASKING_KEY, "columns": {"email": "hmac_sha256"}},
            "retries": {"max": 1, "delay_seconds": 0},
        }
    )


def _materialize_raw(config: PipelineConfig, day: str) -> Any:
    """The raw tables alone, stored by the lake IO manager (whose Spark session starts only when a step
    reads a DataFrame: never here); the step stores their left-out quarantine with the same write."""
    lake = LakeStorage(url=config.lake.url)
    raw_keys = [AssetKey(raw_key(s.name, t.name)) for s in config.sources for t in s.tables]
    io_manager = ParquetLakeIOManager(lake=lake, pyspark=build_spark_resource(config.spark))
    resources = {"lake": lake, "io_manager": io_manager}
    return materialize(build_raw_assets(config), selection=raw_keys, resources=resources, partition_key=day,
                       raise_on_error=False)


def _failure(result: Any) -> Any:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.step_failure_data.user_failure_data, failure.step_failure_data.error


def test_dagster_asset_metadata_and_failures_name_source_without_password(tmp_path: Path) -> None:
    require_listening("PostgreSQL", 5432)
    table = {"name": "orders", "entity": "sale", "query": "SELECT 1 AS line_id"}
    # Unknown database, with a password in the URL: deterministic, and the password is not shown.
    missing_db = db_source("postgresql+psycopg2://postgres:Hunter2Secret@127.0.0.1:5432/no_such_db_x", [table])
    result = _materialize_raw(_pipeline_config(missing_db, tmp_path / "lake"), "2024-03-01")
    assert not result.success
    failure, error = _failure(result)
    description = failure.description if failure else error.message
    assert "shop_db.orders" in description and "no_such_db_x" in description and "does not exist" in description
    assert "Hunter2Secret" not in str(result.all_events) and "***" in description
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == []  # deterministic: the retry policy (max 1) is not used
    # Nothing listens on port 1: transient, so the asset's retry policy retries it.
    unreachable = db_source("postgresql+psycopg2://u:pw@127.0.0.1:1/db", [table])
    with pytest.raises(SourceTemporarilyUnavailable, match=r"shop_db\.orders .*127\.0\.0\.1:1"):
        ingest(LakeStorage(url=str(tmp_path / "l2")), unreachable, "2024-03-01")
    result = _materialize_raw(_pipeline_config(unreachable, tmp_path / "l3"), "2024-03-01")
    assert not result.success
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1


def test_dagster_asset_reports_cursor_and_quarantine(shop_db: ShopDb, tmp_path: Path) -> None:
    config = _pipeline_config(db_source(shop_db.url, [sales_table(shop_db)]), tmp_path / "lake")
    result = _materialize_raw(config, "2024-03-01")
    assert result.success
    metadata = result.asset_materializations_for_node("raw__shop_db__sales")[0].metadata
    assert metadata["dagster/row_count"].value == 10 and metadata["quarantined_rows"].value == 0
    assert metadata["cursor"].value == "changed_at = 2024-03-01T10:00:00"
    keys = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    assert keys == {AssetKey(["raw", "shop_db", "sales"])}
    assert metadata["path"].value.endswith("raw/shop_db/sales/ingest_date=2024-03-01")


def test_mariadb_bad_password_is_deterministic_and_hidden(tmp_path: Path) -> None:
    require_listening("MariaDB", 3306)
    user = f"lake_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right-pass'"))
    try:
        config = db_source(
            f"mysql+pymysql://{user}:Wr0ngPassw0rd@127.0.0.1:3306/mysql",
            [{"name": "t", "entity": "customer", "table": "user"}],
        )
        with pytest.raises(
            SourceUnavailable, match=rf"shop_db\.t \(mysql\+pymysql://{user}:\*\*\*@.*Access denied"
        ) as err:
            ingest(LakeStorage(url=str(tmp_path / "lake")), config, "2024-03-01")
        assert "Wr0ngPassw0rd" not in str(err.value) and not err.value.retryable
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


KILL_SCRIPT = """
import json, os, sys
from lake_assets.config import DatabaseSourceConfig
from lake_assets.ingestion import DatabaseSource, DataIngestionPipeline
from lake_assets.resources.lake_storage import LakeStorage
config = DatabaseSourceConfig.model_validate(json.loads(os.environ["KILL_SOURCE"]))
lake = LakeStorage(url=os.environ["KILL_LAKE"])
DataIngestionPipeline(DatabaseSource(config, config.tables[0]), lake).run("2024-03-01")
"""


def test_kill_mid_write_then_rerun_leaves_no_duplicates(tmp_path: Path) -> None:
    require_listening("PostgreSQL", 5432)
    schema = f"shop_{uuid.uuid4().hex[:10]}"
    db = ShopDb("postgresql", PG_ADMIN_URL, schema)
    db.run(
        "CREATE SCHEMA {s}",
        "CREATE TABLE {s}.lines AS SELECT g AS line_id, g % 7 + 1 AS qty, 1.5 AS unit_price,"
        " TIMESTAMP '2024-03-01 10:00:00' + g * INTERVAL '1 second' AS sold FROM generate_series(1, 3000) g",
    )
    try:
        # Every 100th row sleeps 50 ms on the server: the load takes ~1.5 s, long enough to be killed.
        slow = f"SELECT * FROM {schema}.lines WHERE line_id % 100 <> 0 OR (SELECT true FROM pg_sleep(0.05))"
        source = db_source(
            PG_ADMIN_URL,
            [
                {
                    "name": "lines",
                    "entity": "sale",
                    "query": slow,
                    "columns": {**SALE_COLUMNS, "sold": "sold_at"},
                    "incremental": {"cursor": "sold"},
                }
            ],
            chunk_rows=200,
        )
        lake_dir = tmp_path / "lake"
        spool = lake_dir / ".spool"
        env = {**os.environ, "KILL_SOURCE": source.model_dump_json(), "KILL_LAKE": str(lake_dir)}
        process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT], env=env)
        deadline = time.monotonic() + 60
        while not list(spool.glob("*/part-*.parquet")):
            assert process.poll() is None, "the load finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = list(spool.glob("*/part-*.parquet"))
        assert len(killed) == 1  # the half-written delivery is on disk, spooled outside the lake...
        assert not [p for p in (lake_dir / "raw").rglob("*") if p.is_file()]  # ...nothing of it in the raw layer
        lake = LakeStorage(url=str(lake_dir))
        assert lake.commit_info(["raw", "shop_db", "lines"], "2024-03-01") is None  # nothing visible
        assert lake.committed_partitions(["raw", "shop_db", "lines"]) == []  # and no cursor advanced

        result = ingest(lake, source, "2024-03-01")
        ids = [r["line_id"] for r in raw_rows_of(lake)]
        assert result.rows == len(ids) == len(set(ids)) == 3000
        committed = lake.committed_files(["raw", "shop_db", "lines"], "2024-03-01")
        assert {Path(f).parent.name for f in committed} == {f"batch-{result.batch_id}"}  # the killed one never is
    finally:
        db.run("DROP SCHEMA {s} CASCADE")


def raw_rows_of(lake: LakeStorage) -> list[dict[str, Any]]:
    return lake.read_arrow(["raw", "shop_db", "lines"], "2024-03-01").select(["line_id"]).to_pylist()


def test_two_columns_mapped_to_one_entity_column_fail_clearly(shop_db: ShopDb, tmp_path: Path) -> None:
    table = {
        "name": "products",
        "entity": "product",
        "table": f"{shop_db.schema}.products",
        "columns": {"sku": "product_id"},
    }
    with pytest.raises(SourceUnavailable, match=r"shop_db\.products: .*\(product_id, sku -> product_id\)"):
        ingest(LakeStorage(url=str(tmp_path / "lake")), db_source(shop_db.url, [table]), "2024-03-01")
