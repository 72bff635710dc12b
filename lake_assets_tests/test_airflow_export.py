"""The exported Airflow DAG imports in a real Airflow, installed in its own virtual environment
(never the project's): no import errors, the config's schedule, retries and the seed's task order.

The venv is cached at /tmp/lake_assets_airflow_venv-<version> (LAKE_AIRFLOW_VENV overrides the path,
LAKE_AIRFLOW_VERSION the version); the test creates it when absent (~1 min, then ~3 s per run).
"""

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lake_assets.airflow_export import DAG_ID, main

pytestmark = pytest.mark.services  # real Airflow in its own venv

AIRFLOW_VERSION = os.environ.get("LAKE_AIRFLOW_VERSION", "3.3.2")
VENV = Path(os.environ.get("LAKE_AIRFLOW_VENV", f"/tmp/lake_assets_airflow_venv-{AIRFLOW_VERSION}"))
TASK_ORDER = ["start", "ingest_data", "transform_and_standardize", "apply_data_masking", "build_star_schema",
              "data_quality_checks", "end"]

# Runs inside the Airflow venv: load the folder as Airflow does and describe the DAG as JSON.
INSPECT = r'''
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag  # 3.x
    bag = DagBag(dag_folder=sys.argv[1])
except ImportError:
    from airflow.models.dagbag import DagBag  # 2.x
    bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
out = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}
dag = bag.dags.get(sys.argv[2])
if dag is not None:
    import pendulum
    from airflow.timetables.base import DataInterval, TimeRestriction
    tt = dag.timetable
    first = tt.next_dagrun_info(last_automated_data_interval=None,
                                restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True))
    out.update(
        timetable=type(tt).__name__, schedule=tt.summary, timezone=str(dag.timezone), catchup=dag.catchup,
        start_date=dag.start_date.isoformat(), first_run_after=first.run_after.isoformat(),
        first_ds=first.data_interval.start.strftime("%Y-%m-%d"),
        tasks={t.task_id: {"retries": t.retries, "retry_delay": t.retry_delay.total_seconds(),
                            "downstream": sorted(t.downstream_task_ids), "email": list(t.email or []),
                            "email_on_failure": t.email_on_failure, "bash_command": getattr(t, "bash_command", None)}
               for t in dag.tasks},
    )
print("RESULT " + json.dumps(out))
'''


def _airflow_python() -> Path:
    python = VENV / "bin" / "python"
    if (VENV / ".complete").exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"apache-airflow=={AIRFLOW_VERSION}"],
                       check=True, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (subprocess.SubprocessError, OSError) as exc:
        from .conftest import service_missing

        service_missing(f"apache-airflow {AIRFLOW_VERSION} in {VENV}", str(exc))
    (VENV / ".complete").touch()
    return python


def _inspect(dags: Path, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow_home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run([str(_airflow_python()), "-c", INSPECT, str(dags), DAG_ID], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_help_is_real() -> None:
    done = subprocess.run([sys.executable, "-m", "lake_assets.airflow_export", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "--out" in done.stdout and "--config" in done.stdout and "Airflow DAG" in done.stdout


def test_dag_loads_in_real_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from lake_assets.config import BUNDLED_CONFIG

    raw = yaml.safe_load(BUNDLED_CONFIG.read_text())
    raw["notify"]["email"] = ["ops@example.test"]
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("LAKE_RETRY_MAX", "2")
    monkeypatch.setenv("LAKE_RETRY_DELAY_SECONDS", "300")
    monkeypatch.setenv("LAKE_SCHEDULE_CRON", "15 3 * * *")
    monkeypatch.setenv("LAKE_SCHEDULE_TIMEZONE", "Europe/Berlin")
    assert main(["--out", str(tmp_path / "dags"), "--config", str(config_file)]) == 0

    dag = _inspect(tmp_path / "dags", tmp_path)
    assert dag["import_errors"] == {}
    assert dag["dags"] == [DAG_ID]
    assert dag["schedule"] == "15 3 * * *"
    assert dag["timezone"] in ("Europe/Berlin", "Timezone('Europe/Berlin')")
    assert dag["catchup"] is False
    berlin = ZoneInfo("Europe/Berlin")
    assert datetime.fromisoformat(dag["start_date"]) == datetime(2024, 1, 1, tzinfo=berlin)
    # The first run fires at 03:15 Berlin on Jan 2nd and processes Jan 1st, like the Dagster schedule.
    assert datetime.fromisoformat(dag["first_run_after"]) == datetime(2024, 1, 2, 3, 15, tzinfo=berlin)
    assert dag["first_ds"] == "2024-01-01"

    tasks = dag["tasks"]
    assert set(tasks) == set(TASK_ORDER)
    for upstream, downstream in zip(TASK_ORDER, TASK_ORDER[1:], strict=False):
        assert tasks[upstream]["downstream"] == [downstream]
    assert tasks["end"]["downstream"] == []
    for task in tasks.values():
        assert task["retries"] == 2
        assert task["retry_delay"] == 300
        assert task["email"] == ["ops@example.test"] and task["email_on_failure"] is True
    assert tasks["ingest_data"]["bash_command"] == (
        "dagster asset materialize -m lake_assets --select 'group:raw' --partition {{ ds }}"
    )
    assert "--partition {{ ds }}" in tasks["build_star_schema"]["bash_command"]
    assert tasks["data_quality_checks"]["bash_command"].startswith("python -m lake_assets.automation.quality_gate")


def test_selections_resolve_against_the_real_graph() -> None:
    """Every `--select` in the DAG names existing assets, takes whole steps (an asset written by a step
    that writes several comes with its siblings, or the CLI refuses the selection), and together they
    cover the whole graph once."""
    import re

    from dagster import AssetSelection

    from lake_assets.airflow_export import STAGES
    from lake_assets.config import load_config
    from lake_assets.definitions import build_definitions

    graph = build_definitions(load_config()).resolve_asset_graph()
    covered: list = []
    for stage in STAGES:
        match = re.search(r"--select '([^']+)'", stage.command)
        if match is None:
            continue
        selection = AssetSelection.from_string(match.group(1))
        keys = selection.resolve(graph)
        assert keys, stage.task_id
        assert selection.required_multi_asset_neighbors().resolve(graph) == keys, stage.task_id
        covered.extend(keys)
    assert len(covered) == len(set(covered)) == len(graph.materializable_asset_keys)


def test_quality_gate_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The DAG's last stage: exit 0 when every check of the day passed, 1 on a failed check or none."""
    from dagster import AssetCheckResult, DagsterInstance, DailyPartitionsDefinition, asset, asset_check, materialize

    from lake_assets.automation.quality_gate import main as gate

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")  # SQLite storage in DAGSTER_HOME
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
    def scored() -> int:
        return 1

    @asset_check(asset=scored)
    def fine() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    @asset_check(asset=scored)
    def by_day(context) -> AssetCheckResult:
        return AssetCheckResult(passed=context.run.tags["dagster/partition"] != "2024-01-02")

    with DagsterInstance.get() as instance:
        for day in ("2024-01-01", "2024-01-02"):
            assert materialize([scored, fine, by_day], partition_key=day, instance=instance).success

    def run_gate(day: str) -> tuple[int, str]:
        code = gate(["--partition", day])
        return code, capsys.readouterr().out

    days = ("2024-01-01", "2024-01-02", "2024-01-03")
    (good, good_out), (bad, bad_out), (none, none_out) = (run_gate(day) for day in days)
    assert (good, bad, none) == (0, 1, 1)
    assert "2 checks passed, 0 failed" in good_out
    assert "FAILED scored:by_day" in bad_out and "1 checks passed, 1 failed" in bad_out
    assert "no asset check ran" in none_out
