"""Execution history in PostgreSQL: the repository's dagster.yaml (dagster-postgres) on a real
server, a real lake_assets run recorded there and read back by a second instance."""

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from sqlalchemy import create_engine, text

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources

from .dagster_home import postgres_dagster_home

pytestmark = pytest.mark.services  # a Dagster instance on PostgreSQL

STORES = AssetKey(["raw", "shop_files", "stores"])


def test_runs_events_and_schedules_live_in_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    with postgres_dagster_home(tmp_path) as (home, url):
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        instance = DagsterInstance.get()
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            assert instance.run_monitoring_enabled
            config = load_config()
            result = materialize(build_all_assets(config), selection=[STORES], partition_key="2024-01-01",
                                 resources=build_resources(config), instance=instance)
            assert result.success
        finally:
            instance.dispose()

        # Read back through SQL, not through Dagster: the history is really in this database.
        engine = create_engine(url)
        with engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM runs WHERE run_id = :r"), {"r": result.run_id}).scalar()
            materialized = conn.execute(
                text("SELECT count(*) FROM event_logs WHERE run_id = :r"
                     " AND dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = :k"),
                {"r": result.run_id, "k": STORES.to_string()},
            ).scalar()
            tables = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        engine.dispose()
        assert status == "SUCCESS"
        assert materialized == 1
        assert {"runs", "event_logs", "instigators", "job_ticks"} <= tables

        # A fresh instance (a restarted webserver) sees the run and the asset's partition status.
        again = DagsterInstance.get()
        try:
            assert again.get_run_by_id(result.run_id).status.value == "SUCCESS"
            latest = again.get_latest_materialization_event(STORES)
            assert latest is not None and latest.run_id == result.run_id
        finally:
            again.dispose()
