"""Run notifications against real local servers: an aiosmtpd SMTP server and an HTTP webhook
receiver on 127.0.0.1. The runs are real lake_assets runs (raw ingestion of the sample drop)."""

import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
    instance_for_test,
    materialize,
)

from lake_assets.assets import build_all_assets
from lake_assets.automation.notifications import COMPLETION_SENSOR_NAME, FAILURE_SENSOR_NAME, LOGGER
from lake_assets.config import load_config
from lake_assets.definitions import build_definitions, build_resources
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR

pytestmark = pytest.mark.services  # an SMTP server and Dagster runs

RAW_KEYS = [AssetKey(["raw", "shop_files", t]) for t in ("customers", "products", "stores", "sales")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    from aiosmtpd.controller import Controller

    received: list[Message] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            message = message_from_bytes(envelope.content)
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            received.append(message)
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    LOGGER.addHandler(handler)
    yield records
    LOGGER.removeHandler(handler)


@pytest.fixture
def lake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A drop with only 2024-01-01 (2024-01-02 is missing: its ingestion fails)."""
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / "2024-01-01", drop / "2024-01-01")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'wh.db'}")
    monkeypatch.setenv("LAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAKE_SMTP_FROM", "lake@example.test")
    monkeypatch.setenv("DAGSTER_UI_URL", "http://dagster.example.test:3000")
    return tmp_path


def _config_with_recipients(tmp_path: Path, recipients: list[str]) -> Path:
    """The bundled config with `notify.email` filled in (recipients are config, not environment)."""
    import yaml

    from lake_assets.config import BUNDLED_CONFIG

    raw = yaml.safe_load(BUNDLED_CONFIG.read_text())
    raw["notify"]["email"] = recipients
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run_raw(instance: DagsterInstance, day: str) -> str:
    config = load_config()
    result = materialize(
        build_all_assets(config), selection=RAW_KEYS, partition_key=day, resources=build_resources(config),
        instance=instance, raise_on_error=False,
    )
    return result.run_id


def _status_context(instance: DagsterInstance, run_id: str, event_type: DagsterEventType, sensor_name: str):
    (entry,) = instance.all_logs(run_id, of_type=event_type)
    return build_run_status_sensor_context(
        sensor_name=sensor_name, dagster_event=entry.dagster_event, dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
    )


def test_failure_email_has_run_id_step_error_and_link(
    lake_env: Path, smtp_server, webhook_server, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    port, mails = smtp_server
    hook_url, hooks = webhook_server
    monkeypatch.setenv("LAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("LAKE_NOTIFY_WEBHOOK_URL", hook_url)
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(lake_env, ["ops@example.test", "data@example.test"])))
    defs = build_definitions(load_config())
    with instance_for_test() as instance:
        run_id = _run_raw(instance, "2024-01-02")
        assert instance.get_run_by_id(run_id).status.value == "FAILURE"
        sensor = defs.get_sensor_def(FAILURE_SENSOR_NAME)
        sensor(_status_context(instance, run_id, DagsterEventType.RUN_FAILURE, FAILURE_SENSOR_NAME).for_run_failure())

    (mail,) = mails
    assert mail["X-Envelope-To"] == "ops@example.test, data@example.test"
    assert mail["From"] == "lake@example.test"
    assert "FAILED" in mail["Subject"] and "2024-01-02" in mail["Subject"]
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert f"Run:       {run_id}" in body
    assert "Failed step: raw__shop_files__" in body
    assert "no file matches" in body and "2024-01-02" in body
    assert f"Link:      http://dagster.example.test:3000/runs/{run_id}" in body
    (hook,) = hooks
    assert hook["run_id"] == run_id and hook["status"] == "FAILURE"
    assert hook["failed_steps"] and "no file matches" in hook["failed_steps"][0]["error"]


def test_completion_summary_rows_per_layer_and_checks(
    lake_env: Path, smtp_server, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    port, mails = smtp_server
    monkeypatch.setenv("LAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(lake_env, ["ops@example.test"])))
    monkeypatch.setenv("LAKE_STORAGE_PRICE_PER_GB_MONTH", "0.023")
    config = load_config()
    defs = build_definitions(config)
    with instance_for_test() as instance:
        run_id = _run_raw(instance, "2024-01-01")
        assert instance.get_run_by_id(run_id).status.value == "SUCCESS"
        context = _status_context(instance, run_id, DagsterEventType.RUN_SUCCESS, COMPLETION_SENSOR_NAME)
        defs.get_sensor_def(COMPLETION_SENSOR_NAME)(context)

        # The same figures are recorded as an observation of the metrics asset (plotted in the UI).
        from lake_assets.automation.metrics import METRICS_KEY

        (record,) = instance.fetch_observations(METRICS_KEY, limit=5).records
        metrics = {k: getattr(v, "value", v) for k, v in record.asset_observation.metadata.items()}

        # Off in config: a clean run sends nothing.
        monkeypatch.setenv("LAKE_NOTIFY_ON_COMPLETION", "false")
        quiet = build_definitions(load_config())
        quiet.get_sensor_def(COMPLETION_SENSOR_NAME)(
            _status_context(instance, run_id, DagsterEventType.RUN_SUCCESS, COMPLETION_SENSOR_NAME)
        )

    (mail,) = mails
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "succeeded" in mail["Subject"] and "2024-01-01" in mail["Subject"]
    lake = LakeStorage(url=config.lake.url)
    raw_rows = sum(lake.commit_info(list(k.path), "2024-01-01").rows for k in RAW_KEYS)
    quarantined = sum(lake.commit_info(["quarantine", *k.path], "2024-01-01").rows for k in RAW_KEYS)
    assert raw_rows > 0 and quarantined > 0
    assert f"  raw: {raw_rows}\n" in body
    assert f"  quarantined: {quarantined}\n" in body
    assert "Partition: 2024-01-01" in body
    assert "Duration:  " in body and "Duration:  -" not in body
    assert "Checks passed: " in body and "  raw:" in body.split("Seconds per stage:")[1]
    assert metrics["rows_raw"] == raw_rows and metrics["quarantined_rows"] == quarantined
    assert metrics["partition"] == "2024-01-01" and metrics["status"] == "SUCCESS"
    assert 0 < metrics["seconds_raw"] <= metrics["duration_seconds"]
    # The lake's size after the run: the bytes of the tables' data files on disk, per namespace, and their
    # monthly cost at the configured 0.023 per GiB.
    def on_disk(paths: list[list[str]]) -> int:
        return sum(os.path.getsize(f) for path in paths for f in lake.committed_files(path, "2024-01-01"))

    raw_bytes = on_disk([list(k.path) for k in RAW_KEYS])
    quarantine_bytes = on_disk([["quarantine", *k.path] for k in RAW_KEYS])
    assert raw_bytes > 0 and quarantine_bytes > 0
    assert (metrics["bytes_raw"], metrics["bytes_quarantine"]) == (raw_bytes, quarantine_bytes)
    assert metrics["bytes_total"] >= raw_bytes + quarantine_bytes
    assert metrics["storage_cost_per_month"] == round(metrics["bytes_total"] / 1024**3 * 0.023, 6)
    assert f"  raw: {raw_bytes}\n" in body.split("Lake bytes per layer:")[1]


def test_broken_smtp_does_not_hide_the_failure(
    lake_env: Path, webhook_server, log_records, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    hook_url, hooks = webhook_server
    monkeypatch.setenv("LAKE_SMTP_PORT", str(_free_port()))  # nothing listens there
    monkeypatch.setenv("LAKE_NOTIFY_WEBHOOK_URL", hook_url)
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(lake_env, ["ops@example.test"])))
    defs = build_definitions(load_config())
    with instance_for_test() as instance:
        run_id = _run_raw(instance, "2024-01-02")
        sensor = defs.get_sensor_def(FAILURE_SENSOR_NAME)
        sensor(_status_context(instance, run_id, DagsterEventType.RUN_FAILURE, FAILURE_SENSOR_NAME).for_run_failure())

    messages = [r.getMessage() for r in log_records]
    # The run failure itself is logged, and so is the delivery problem, naming the failed run.
    assert any(run_id in m and "failed" in m and "SMTP" not in m for m in messages), messages
    assert any("SMTP delivery to 127.0.0.1" in m and run_id[:8] in m for m in messages), messages
    # The other channel still delivered.
    assert [h["run_id"] for h in hooks] == [run_id]


def test_quality_alert_even_with_completion_notifications_off(
    tmp_path: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import AssetCheckResult, DailyPartitionsDefinition, asset, asset_check

    port, mails = smtp_server
    monkeypatch.setenv("LAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("LAKE_NOTIFY_ON_COMPLETION", "false")
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(tmp_path, ["ops@example.test"])))
    defs = build_definitions(load_config())

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
    def scored() -> int:
        return 1

    @asset_check(asset=scored)
    def never_negative() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    @asset_check(asset=scored)
    def no_orphans() -> AssetCheckResult:
        return AssetCheckResult(passed=False, metadata={"orphans": 3})

    with instance_for_test() as instance:
        result = materialize([scored, never_negative, no_orphans], partition_key="2024-01-05", instance=instance)
        assert result.success  # a failed (non-blocking) check does not fail the run ...
        defs.get_sensor_def(COMPLETION_SENSOR_NAME)(
            _status_context(instance, result.run_id, DagsterEventType.RUN_SUCCESS, COMPLETION_SENSOR_NAME)
        )

        # ... but it is reported, and the Airflow quality gate refuses the day.
        from lake_assets.automation.quality_outcomes import latest_check_outcomes

        outcomes = latest_check_outcomes(instance, "2024-01-05")
        assert {name: o.passed for name, o in outcomes.items()} == {"scored:never_negative": True,
                                                                    "scored:no_orphans": False}
        assert outcomes["scored:no_orphans"].metadata == {"orphans": 3}
        assert latest_check_outcomes(instance, "2024-01-06") == {}

    (mail,) = mails
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "quality alert" in mail["Subject"]
    assert "Checks passed: 1, failed: 1" in body
    assert "  FAILED scored:no_orphans" in body
    assert "Quality score: 50.00%" in body
    assert "Quality alert: ERROR check failed: scored:no_orphans" in body


def test_quality_alert_on_a_score_below_the_minimum_not_on_a_warn_check_above_it(
    tmp_path: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a WARN check fails (weights: ERROR passed 2, WARN failed 1: score 2/3): with completion mail
    off, a minimum of 0.9 alerts, a minimum of 0.5 (or none) stays quiet."""
    from dagster import AssetCheckResult, AssetCheckSeverity, DailyPartitionsDefinition, asset, asset_check

    port, mails = smtp_server
    monkeypatch.setenv("LAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("LAKE_NOTIFY_ON_COMPLETION", "false")
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(tmp_path, ["ops@example.test"])))

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
    def scored() -> int:
        return 1

    @asset_check(asset=scored)
    def keys_unique() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    @asset_check(asset=scored)
    def few_returns() -> AssetCheckResult:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN)

    with instance_for_test() as instance:
        result = materialize([scored, keys_unique, few_returns], partition_key="2024-01-05", instance=instance)
        assert result.success
        for minimum in ("0.5", "", "0.9"):
            monkeypatch.setenv("LAKE_QUALITY_SCORE_MIN", minimum)
            build_definitions(load_config()).get_sensor_def(COMPLETION_SENSOR_NAME)(
                _status_context(instance, result.run_id, DagsterEventType.RUN_SUCCESS, COMPLETION_SENSOR_NAME)
            )
            assert len(mails) == (1 if minimum == "0.9" else 0), minimum

    (mail,) = mails
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "quality alert" in mail["Subject"] and "2024-01-05" in mail["Subject"]
    assert "Quality score: 66.67%" in body
    assert "Quality alert: quality score 66.67% is below the minimum 90.00%" in body
    assert "ERROR check failed" not in body


def test_long_running_run_alerts_once(tmp_path: Path, smtp_server, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import asset, build_sensor_context

    from lake_assets.automation.jobs import MAX_RUNTIME_TAG
    from lake_assets.automation.notifications import LONG_RUN_SENSOR_NAME

    port, mails = smtp_server
    monkeypatch.setenv("LAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(tmp_path, ["ops@example.test"])))
    sensor = build_definitions(load_config()).get_sensor_def(LONG_RUN_SENSOR_NAME)
    release, started = threading.Event(), threading.Event()

    @asset
    def slow() -> int:
        started.set()
        assert release.wait(60)
        return 1

    with instance_for_test() as instance:
        outcome: list[bool] = []
        # The run starts under a limit it cannot reach, so the first tick must stay quiet however slow
        # the machine; the limit is then lowered to 1 s on the running run (the tag the sensor reads).
        worker = threading.Thread(target=lambda: outcome.append(
            materialize([slow], instance=instance, tags={MAX_RUNTIME_TAG: "3600"}).success))
        worker.start()
        try:
            assert started.wait(60)
            (record,) = instance.get_run_records()
            first = sensor.evaluate_tick(build_sensor_context(instance=instance))
            assert mails == []  # under its limit
            instance.add_run_tags(record.dagster_run.run_id, {MAX_RUNTIME_TAG: "1"})
            while time.time() - record.start_time <= 1.05:  # by the run's own start time, not a guess
                time.sleep(0.05)
            second = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=first.cursor))
            third = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=second.cursor))
        finally:
            release.set()
            worker.join(60)
        assert outcome == [True]
        (run,) = instance.get_runs()

    (mail,) = mails  # once, not on every tick
    assert "running longer than 1 s" in mail["Subject"] and run.run_id[:8] in mail["Subject"]
    assert run.run_id in mail.get_payload(decode=True).decode()
    assert json.loads(third.cursor) == [run.run_id]


def test_peak_memory_of_a_run_is_a_run_tag_in_the_report_and_metrics_and_alerts_over_the_limit(
    tmp_path: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that holds 768 MiB and frees it: the run's peak memory, recorded by the hooks after the step,
    still counts it (a high-water mark, not the size after the step); the daily job carries the hooks.
    With completion mail off, a limit of 1 MiB mails a memory alert, a limit of 10 TiB does not."""
    import resource

    from dagster import Definitions, asset, define_asset_job

    from lake_assets.automation.jobs import build_daily_job
    from lake_assets.automation.metrics import metrics_of
    from lake_assets.automation.notifications import notify_run
    from lake_assets.automation.peak_memory import PEAK_MEMORY_HOOKS, PEAK_MEMORY_TAG
    from lake_assets.automation.run_report import build_run_report

    planted = 768 * 2**20

    @asset
    def holds_memory() -> int:
        block = b"x" * planted  # written, so resident
        return len(block)

    port, mails = smtp_server
    monkeypatch.setenv("LAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LAKE_SMTP_PORT", str(port))
    monkeypatch.setenv("LAKE_NOTIFY_ON_COMPLETION", "false")
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with_recipients(tmp_path, ["ops@example.test"])))
    defs = Definitions(assets=[holds_memory], jobs=[define_asset_job("memory", hooks=PEAK_MEMORY_HOOKS)])
    with instance_for_test() as instance:
        result = defs.resolve_job_def("memory").execute_in_process(instance=instance)
        own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB
        report = build_run_report(instance, result.run_id, "http://dagster")
        tag = instance.get_run_by_id(result.run_id).tags[PEAK_MEMORY_TAG]
        for limit in ("10000000", "1"):
            monkeypatch.setenv("LAKE_PEAK_MEMORY_MAX_MB", limit)
            notify_run(instance, result.run_id, load_config(), force=False)
            assert len(mails) == (1 if limit == "1" else 0), limit
    (mail,) = mails
    assert "memory alert" in mail["Subject"]
    assert f"Memory alert: peak memory {int(tag) / 2**20:.0f} MiB is over the limit 1 MiB" in (
        mail.get_payload(decode=True).decode())
    assert own_peak >= planted
    assert report.peak_memory_bytes == int(tag) >= planted
    assert metrics_of(report)["peak_memory_bytes"] == int(tag)
    assert f"Peak memory: {int(tag) / 2**20:.0f} MiB" in report.as_text()
    assert build_daily_job(load_config()).hooks == PEAK_MEMORY_HOOKS
