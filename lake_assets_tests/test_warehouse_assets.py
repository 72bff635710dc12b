"""The warehouse assets in Dagster, fed from a local lake laid out the way Spark writes it (an empty
part file first): facts load only after their dimensions, a data error fails at once without a
retry, an unreachable warehouse is retried."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, instance_for_test, materialize
from sqlalchemy import create_engine

from lake_assets.assets import build_all_assets
from lake_assets.assets.warehouse import WAREHOUSE_TABLES
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

from . import warehouse_rows as rows
from .conftest import Warehouse

pytestmark = pytest.mark.services  # PostgreSQL and MariaDB warehouses

DAYS = ("2024-01-01", "2024-01-02")
WAREHOUSE_KEYS = [AssetKey(["warehouse", t]) for t in (*WAREHOUSE_TABLES, "bi_views")]


def _commit_like_spark(lake: LakeStorage, name: str, partition: str | None, table: pa.Table) -> None:
    """One committed batch of two part files, the first empty (Spark writes one per empty task)."""
    with lake.staged_batch(["curated", name], partition) as batch:
        os.makedirs(batch.local_dir, exist_ok=True)
        table = batch.with_partition_column(table)
        pq.write_table(table.slice(0, 0), f"{batch.local_dir}/part-00000.parquet")
        pq.write_table(table, f"{batch.local_dir}/part-00001.parquet")
        batch.commit(rows=table.num_rows)


def _curated_day(lake: LakeStorage, day: int, city_of_c1: str, lines: list[tuple[str, int, int, int]]) -> None:
    _commit_like_spark(lake, "dim_customer", None, rows.dim_customer(city_of_c1))
    _commit_like_spark(lake, "dim_product", None, rows.dim_product())
    _commit_like_spark(lake, "dim_location", None, rows.dim_location())
    _commit_like_spark(lake, "dim_date", None, rows.dim_date())
    rows.write_lake_facts(lake, rows.fact_sales(day, lines), DAYS[day - 1], empty_file_first=True)


def _config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, schema: str) -> PipelineConfig:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("WAREHOUSE_SCHEMA", schema)
    monkeypatch.setenv("LAKE_RETRY_MAX", "1")
    monkeypatch.setenv("LAKE_RETRY_DELAY_SECONDS", "0")
    return load_config()


def _run(config: PipelineConfig, day: str, instance: DagsterInstance):
    return materialize(
        build_all_assets(config),
        selection=WAREHOUSE_KEYS,
        partition_key=day,
        resources=build_resources(config),
        instance=instance,
        raise_on_error=False,
    )


def _events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in instance.all_logs(run_id, of_type=kind):
        found.setdefault(record.step_key or "", []).append(record.dagster_event)
    return found


def _state(config: PipelineConfig) -> dict[str, list[tuple]]:
    engine = create_engine(config.warehouse.url)
    schema = config.warehouse.schema_name
    try:
        with engine.connect() as conn:
            return {
                table: sorted(tuple(map(str, r)) for r in conn.exec_driver_sql(f'SELECT * FROM "{schema}"."{table}"'))
                for table in ("dim_customer", "fact_sales")
            }
    finally:
        engine.dispose()


def _fact_keys_resolve(config: PipelineConfig) -> bool:
    engine = create_engine(config.warehouse.url)
    q = f'"{config.warehouse.schema_name}"'
    try:
        with engine.connect() as conn:
            orphans = conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {q}.fact_sales f LEFT JOIN {q}.dim_customer c "
                "ON c.customer_key = f.customer_key WHERE c.customer_key IS NULL"
            ).scalar()
    finally:
        engine.dispose()
    return orphans == 0


def test_failed_dimension_blocks_the_fact_day_and_keeps_the_warehouse_consistent(
    postgres_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(monkeypatch, tmp_path, postgres_warehouse.url, postgres_warehouse.schema)
    lake = LakeStorage(url=config.lake.url)
    with instance_for_test() as instance:
        _curated_day(lake, 1, "Denver", [("L1", 1, 1, 2), ("L2", 2, 2, 3)])
        assert _run(config, DAYS[0], instance).success
        before = _state(config)
        assert [r[0] for r in before["fact_sales"]] == ["L1", "L2"]

        # A rule a DBA added to the warehouse, which day 2's customer data breaks.
        engine = create_engine(config.warehouse.url)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f'ALTER TABLE "{config.warehouse.schema_name}".dim_customer '
                "ADD CONSTRAINT city_not_miami CHECK (city <> 'Miami')"
            )
        engine.dispose()
        # Day 2 moves C1 to Miami and sells to C1 (key 3) and the new inferred C9 (key 4).
        _curated_day(lake, 2, "Miami", [("L3", 3, 1, 1), ("L4", 4, 2, 5)])
        result = _run(config, DAYS[1], instance)

        assert not result.success
        failed = _events(instance, result.run_id, DagsterEventType.STEP_FAILURE)
        assert set(failed) == {"warehouse__dim_customer"}
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert AssetKey(["warehouse", "fact_sales"]) not in materialized
        assert AssetKey(["warehouse", "bi_views"]) not in materialized
        # A constraint violation is a data error: failed at once, not retried.
        assert _events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY) == {}
        (failure,) = failed["warehouse__dim_customer"]
        assert "dim_customer" in failure.event_specific_data.error.message
    assert _state(config) == before
    assert _fact_keys_resolve(config)


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_duplicate_fact_line_fails_the_step_at_once(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    fixture = "postgres_warehouse" if backend == "postgresql" else "mariadb_warehouse"
    server: Warehouse = request.getfixturevalue(fixture)
    config = _config(monkeypatch, tmp_path, server.url, server.schema)
    lines = [("L1", 1, 1, 2), ("L2", 2, 2, 3), ("L1", 2, 1, 1)]
    _curated_day(LakeStorage(url=config.lake.url), 1, "Denver", lines)
    with instance_for_test() as instance:
        result = _run(config, DAYS[0], instance)
        assert not result.success
        failed = _events(instance, result.run_id, DagsterEventType.STEP_FAILURE)
        assert set(failed) == {"warehouse__fact_sales"}
        assert _events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY) == {}
        message = failed["warehouse__fact_sales"][0].event_specific_data.error.message
    assert "fact_sales" in message and "column sale_line_id" in message, message
    assert "row 3 of the load (sale_line_id = 'L1')" in message, message


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg2://postgres@127.0.0.1:1/postgres", "mysql+pymysql://root@127.0.0.1:1/"]
)
def test_unreachable_warehouse_is_retried(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(monkeypatch, tmp_path, url, "analytics")
    _curated_day(LakeStorage(url=config.lake.url), 1, "Denver", [("L1", 1, 1, 2)])
    with instance_for_test() as instance:
        result = _run(config, DAYS[0], instance)
        assert not result.success
        retried = _events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY)
    dimension_steps = {f"warehouse__{t}" for t in WAREHOUSE_TABLES if t != "fact_sales"}
    assert set(retried) == dimension_steps
    assert all(len(events) == config.retries.max for events in retried.values())


