"""The whole graph for one day on a Spark standalone cluster (`spark.master: spark://...`), through the
`dagster asset materialize` CLI: its own driver process, a local lake and a SQLite warehouse.

Oracles: the warehouse totals from the input fixture (`assert_graph_correct`: fact rows, net total,
no orphan keys, no PII; each dimension's natural keys: the source's and those its sales refer to), and
Spark's event log of the run's application: every task ran on the worker's executor, and the executor
wrote at least the day's sale lines three times over (processed, masked and curated facts are Spark
writes on a local lake), so the lake's data files are not written through the driver.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance

from lake_assets.config import load_config
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import REPO, SAMPLE_DIR
from .helpers import DAY, SALES_FIELDS, assert_graph_correct, source_sales, warehouse_rows
from .spark_cluster import StandaloneCluster, standalone_cluster

RUN_TIMEOUT_SECONDS = 900
# Spark writes the day's sale lines into processed/sale, masked/sale and curated/fact_sales.
SPARK_WRITTEN_SALE_TABLES = 3


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    yield from standalone_cluster(tmp_path_factory.mktemp("spark_cluster"))


def _cluster_config(path: Path, master_url: str, event_log: Path) -> None:
    """The bundled config, pointed at the cluster, with the application's event log kept (plain JSON)."""
    config = yaml.safe_load((REPO / "lake_assets" / "sample_config.yaml").read_text(encoding="utf-8"))
    config["spark"]["master"] = master_url
    config["spark"]["conf"].update({
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_log.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.executor.memory": "512m",
    })
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _rows(path: Path) -> list[dict[str, str]]:
    """A source CSV's well-formed rows by header (malformed sales rows are quarantined, not loaded)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return [dict(zip(header, row, strict=True)) for row in reader if len(row) == len(header)]


def _source_natural_keys(day: str) -> dict[str, set[str]]:
    """{dimension: natural keys}: the day's master data plus the keys its sales refer to (a sale's
    unseen customer becomes a dimension member of its own)."""
    drop = SAMPLE_DIR / day
    sales = [r for path in sorted(drop.glob("sales_*.csv")) for r in _rows(path)]
    assert sales and all(len(r) == SALES_FIELDS for r in sales)
    with open(drop / "products.jsonl", encoding="utf-8") as handle:
        skus = {json.loads(line)["SKU"].strip() for line in handle if line.strip()}
    return {
        "customer": {r["Cust_No"].strip() for r in [*_rows(drop / "customers.csv"), *sales]},
        "product": skus | {r["SKU"].strip() for r in sales},
        "location": {r["Store_Code"].strip() for r in [*_rows(drop / "stores.csv"), *sales]},
    }


def _events(event_log: Path) -> list[dict]:
    files = [f for f in event_log.rglob("*") if f.is_file()]
    assert len(files) == 1, files  # one run process, one application
    return [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]


@pytest.mark.services
@pytest.mark.slow
def test_the_graph_on_a_standalone_cluster_loads_the_days_totals_with_executors_doing_the_lake_io(
    spark_cluster: StandaloneCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_log = tmp_path / "spark-events"
    event_log.mkdir()
    _cluster_config(tmp_path / "pipeline.yaml", spark_cluster.master_url, event_log)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LAKE_CONFIG", str(tmp_path / "pipeline.yaml"))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")

    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "lake_assets",
               "--select", "*", "--partition", DAY]
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_SECONDS)
    assert done.returncode == 0, log.read_text()[-4000:]

    instance = DagsterInstance.get()
    try:
        (run,) = instance.get_runs()
        checks = [e.asset_check_evaluation for e in instance.all_logs(
            run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
        assert checks and all(c.passed for c in checks), [c for c in checks if not c.passed]
    finally:
        instance.dispose()

    config = load_config()
    assert_graph_correct(config, LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri))
    for dim, keys in _source_natural_keys(DAY).items():
        # Negative surrogate keys are the unknown member, not a source row.
        loaded = warehouse_rows(config, f"SELECT {dim}_id AS id FROM {{p}}dim_{dim} WHERE {dim}_key >= 0")
        assert sorted(r["id"] for r in loaded) == sorted(keys), dim

    events = _events(event_log)
    (started,) = [e for e in events if e["Event"] == "SparkListenerApplicationStart"]
    completed = [app["id"] for app in spark_cluster.status()["completedapps"]]
    assert started["App ID"] in completed  # the run's application ran on this cluster
    executors = {e["Executor ID"] for e in events if e["Event"] == "SparkListenerExecutorAdded"}
    assert executors and "driver" not in executors
    tasks = [e for e in events if e["Event"] == "SparkListenerTaskEnd"]
    assert tasks and {t["Task Info"]["Executor ID"] for t in tasks} <= executors
    written = sum((t.get("Task Metrics") or {}).get("Output Metrics", {}).get("Records Written", 0) for t in tasks)
    read = sum((t.get("Task Metrics") or {}).get("Input Metrics", {}).get("Records Read", 0) for t in tasks)
    sales = len(source_sales(SAMPLE_DIR, DAY))
    assert written >= SPARK_WRITTEN_SALE_TABLES * sales, (written, sales)
    assert read >= SPARK_WRITTEN_SALE_TABLES * sales, (read, sales)  # and read them back on the executor
