"""The whole graph through the real CLI (`dagster asset materialize -m lake_assets --select '*'`),
as a user runs it, on the three storage/warehouse combinations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake_assets.config import load_config
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import REPO, S3Server, Warehouse
from .helpers import DAY, assert_graph_correct

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def materialize_cli(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_overrides, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    Path(env["DAGSTER_HOME"]).mkdir(exist_ok=True)
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "lake_assets", "--select", "*", "--partition", DAY],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _assert_success(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "RUN_SUCCESS" in result.stderr + result.stdout


def _backend_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for one storage/warehouse combination (the fixtures start or skip the services)."""
    if backend == "local+sqlite":
        return {"LAKE_URL": str(tmp_path / "lake"), "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}"}
    if backend == "s3+postgres":
        s3: S3Server = request.getfixturevalue("s3")
        warehouse: Warehouse = request.getfixturevalue("postgres_warehouse")
        catalog: str = request.getfixturevalue("postgres_catalog")
        return {"LAKE_URL": f"s3://{s3.make_bucket()}/lake", "LAKE_CATALOG_URI": catalog,
                "WAREHOUSE_URL": warehouse.url, "WAREHOUSE_SCHEMA": warehouse.schema}
    warehouse = request.getfixturevalue("mariadb_warehouse")
    return {"LAKE_URL": str(tmp_path / "lake"), "WAREHOUSE_URL": warehouse.url, "WAREHOUSE_SCHEMA": warehouse.schema}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local+sqlite", "s3+postgres", "local+mariadb"])
def test_cli_materializes_whole_graph(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    env = _backend_env(backend, tmp_path, request)
    _assert_success(materialize_cli(env, tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config()
    assert_graph_correct(config, LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri))
