"""One whole-graph run with known, distinctive secrets (PostgreSQL warehouse and Iceberg catalog
passwords, masking key, SMTP password), then a search for them in everything the run leaves behind:
every event log entry with its metadata, the run and its run config, the job and execution-plan
snapshots Dagster stores (they hold the resource config the UI shows), the captured stdout/stderr,
the lake's files, and the errors of an unreachable warehouse and catalog. None may hold a secret.

PostgreSQL here trusts local connections, so a password in the URL is accepted and ignored: the run
works while the password is a real part of the configured URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize, serialize_value
from sqlalchemy.engine import make_url

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseResource, WarehouseUnavailable

from .conftest import Warehouse
from .helpers import DAY

SECRETS = {
    "warehouse password": "s3cr3t-pw-7f1c",
    "catalog password": "c4t-pw-2b9e",
    "masking key": "mask-key-d41d8cd98f00b204",
    "SMTP password": "smtp-pw-e9800998ecf8",
}


def _with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _leaks(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, secret in SECRETS.items() if secret in text]


def test_no_secret_in_events_snapshots_output_or_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    postgres_warehouse: Warehouse, postgres_catalog: str, spark,
) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKE_CATALOG_URI", _with_password(postgres_catalog, SECRETS["catalog password"]))
    monkeypatch.setenv("WAREHOUSE_URL", _with_password(postgres_warehouse.url, SECRETS["warehouse password"]))
    monkeypatch.setenv("WAREHOUSE_SCHEMA", postgres_warehouse.schema)
    monkeypatch.setenv("LAKE_MASKING_KEY", SECRETS["masking key"])
    monkeypatch.setenv("LAKE_SMTP_USER", "lake")
    monkeypatch.setenv("LAKE_SMTP_PASSWORD", SECRETS["SMTP password"])
    config = load_config()
    assert config.masking.key == SECRETS["masking key"]
    assert make_url(config.warehouse.url).password == SECRETS["warehouse password"]

    instance = DagsterInstance.ephemeral()
    result = materialize(build_all_assets(config), resources=build_resources(config), partition_key=DAY,
                         instance=instance, raise_on_error=False)
    failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    assert len(result.get_asset_materialization_events()) > 10  # the whole graph ran

    leaks: list[str] = []
    entries = instance.all_logs(result.run_id)
    assert entries
    for entry in entries:
        leaks += _leaks(f"event {entry.dagster_event_type or 'log'}", serialize_value(entry))
    run = instance.get_run_by_id(result.run_id)
    leaks += _leaks("the run and its run config", serialize_value(run))
    job_snapshot = serialize_value(instance.get_job_snapshot(run.job_snapshot_id))
    leaks += _leaks("the job snapshot", job_snapshot)
    leaks += _leaks("the execution plan", serialize_value(instance.get_execution_plan_snapshot(
        run.execution_plan_snapshot_id)))
    captured = capfd.readouterr()
    leaks += _leaks("stdout", captured.out) + _leaks("stderr", captured.err)
    for path in (tmp_path / "lake").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"{name} in {path}" for name, secret in SECRETS.items() if secret.encode() in data]
    assert not leaks, leaks
    # The stored resource config (what the UI's resource page shows) names the variables instead.
    assert "WAREHOUSE_URL" in job_snapshot and "LAKE_CATALOG_URI" in job_snapshot

    # Errors: an unreachable warehouse and catalog, each with the password in its URL.
    closed = _with_password("postgresql+psycopg2://etl@127.0.0.1:1/dw", SECRETS["warehouse password"])
    with pytest.raises(WarehouseUnavailable) as unreachable:
        WarehouseResource(url=closed).connect_checked()
    assert "etl:***@127.0.0.1:1" in str(unreachable.value)
    closed_catalog = _with_password("postgresql+psycopg2://etl@127.0.0.1:1/catalog", SECRETS["catalog password"])
    with pytest.raises(Exception) as catalog_error:  # noqa: PT011 - pyiceberg/SQLAlchemy's own error type
        LakeStorage(url=str(tmp_path / "lake2"), catalog_uri=closed_catalog).catalog  # noqa: B018
    assert not _leaks("errors", str(unreachable.value) + str(catalog_error.value) + repr(catalog_error.value))
