"""The whole graph through the real CLI (`dagster asset materialize -m lake_assets --select '*'`),
as a user runs it."""

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


# Through the CLI, the production-shaped combination only (S3 lake, PostgreSQL catalog and warehouse):
# the local lake + SQLite CLI run is the README Quickstart that .ci/run performs, and every combination
# runs in-process in test_end_to_end.py (MariaDB again in test_real_exports.py); one whole-graph run
# costs about a minute on 2 cores.
@pytest.mark.slow
def test_cli_materializes_whole_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Server, postgres_warehouse: Warehouse, postgres_catalog: str
) -> None:
    env = {"LAKE_URL": f"s3://{s3.make_bucket()}/lake", "LAKE_CATALOG_URI": postgres_catalog,
           "WAREHOUSE_URL": postgres_warehouse.url, "WAREHOUSE_SCHEMA": postgres_warehouse.schema}
    _assert_success(materialize_cli(env, tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config()
    assert_graph_correct(config, LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri))
