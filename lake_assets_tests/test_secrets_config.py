"""Secrets at config load and in the resources Dagster shows: a URL password taken from the
environment reaches Dagster as an `EnvVar` (its name, never its value), a literal one is split off the
URL into a UI-masked field, and config errors never repeat a password, the masking key or the SMTP
password, even for a URL that cannot be parsed."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import EnvVar

from lake_assets.config import BUNDLED_CONFIG, ConfigError, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.warehouse import WarehouseResource
from lake_assets.secrets import hide_url_passwords

PASSWORD = "s3cr3t-pw-7f1c"


def _bundled_with(tmp_path: Path, old: str, new: str) -> Path:
    text = BUNDLED_CONFIG.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in bundled config"
    path = tmp_path / "pipeline.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_whole_url_from_the_environment_becomes_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql+psycopg2://etl:{PASSWORD}@db.internal:5432/dw")
    monkeypatch.setenv("LAKE_CATALOG_URI", f"postgresql+psycopg2://lake:{PASSWORD}x@db.internal/catalog")
    resources = build_resources(load_config())
    warehouse, lake = resources["warehouse"], resources["lake"]
    assert isinstance(warehouse.url, EnvVar) and warehouse.url.env_var_name == "WAREHOUSE_URL"
    assert warehouse.password is None
    assert isinstance(lake.catalog_uri, EnvVar) and lake.catalog_uri.env_var_name == "LAKE_CATALOG_URI"
    # Dagster resolves the variable when the resource is built for a run.
    resolved = warehouse.process_config_and_initialize()
    assert resolved.sqlalchemy_url.password == PASSWORD
    assert resolved.safe_url == "postgresql+psycopg2://etl:***@db.internal:5432/dw"


def test_password_part_from_the_environment_and_literal_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DW_PASSWORD", PASSWORD)
    path = _bundled_with(tmp_path, '"${WAREHOUSE_URL:-sqlite:///./.lake/warehouse.db}"',
                         '"postgresql+psycopg2://etl:${DW_PASSWORD}@db.internal/dw"')
    warehouse = build_resources(load_config(path))["warehouse"]
    assert warehouse.url == "postgresql+psycopg2://etl@db.internal/dw"
    assert isinstance(warehouse.password, EnvVar) and warehouse.password.env_var_name == "DW_PASSWORD"

    # A password written in the YAML connects too, split off the URL into a field the UI masks
    # (docs/reliability.md says why ${VAR} is the way to go).
    path = _bundled_with(tmp_path, '"${WAREHOUSE_URL:-sqlite:///./.lake/warehouse.db}"',
                         f'"postgresql+psycopg2://etl:{PASSWORD}@db.internal/dw"')
    warehouse = build_resources(load_config(path))["warehouse"]
    assert (warehouse.url, warehouse.password) == ("postgresql+psycopg2://etl@db.internal/dw", PASSWORD)
    assert WarehouseResource.model_fields["password"].json_schema_extra == {"dagster__is_secret": True}
    assert warehouse.sqlalchemy_url.password == PASSWORD


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg2://etl:{PASSWORD}@db.internal:port5432/dw",  # a port that is no number
        f"postgres ql://etl:{PASSWORD}@db.internal/dw",  # no parseable scheme
    ],
)
def test_malformed_warehouse_url_error_hides_the_password(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", url)
    with pytest.raises(ConfigError) as error:
        load_config()
    message = str(error.value)
    assert "key 'warehouse.url'" in message and "is not a SQLAlchemy URL" in message
    assert PASSWORD not in message and "etl:***@db.internal" in message


def test_errors_hide_masking_key_and_smtp_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    masking_key = "mask-key-9e2b-4c71-long-enough"
    smtp_password = "smtp-pw-55aa-c0ffee"
    monkeypatch.setenv("LAKE_MASKING_KEY", masking_key)
    monkeypatch.setenv("LAKE_SMTP_PASSWORD", smtp_password)
    # A wrong type in the SMTP section and in masking: pydantic echoes the inputs it rejects.
    path = _bundled_with(tmp_path, 'port: "${LAKE_SMTP_PORT:-25}"', 'port: [1, "${LAKE_SMTP_PASSWORD}"]')
    path.write_text(path.read_text(encoding="utf-8").replace('key_id: "${LAKE_MASKING_KEY_ID:-k1}"',
                                                              'key_id: "${LAKE_MASKING_KEY} !"'), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "notify.smtp.port" in message and "masking.key_id" in message
    assert smtp_password not in message and masking_key not in message


def test_hide_url_passwords_in_free_text() -> None:
    text = f"cannot reach mysql+pymysql://root:{PASSWORD}@h:3306/x nor sqlite:///a/b.db nor http://u@h/"
    assert hide_url_passwords(text) == "cannot reach mysql+pymysql://root:***@h:3306/x nor sqlite:///a/b.db nor http://u@h/"


@pytest.mark.parametrize("status", [None, 404], ids=["refused", "http_404"])
def test_failed_webhook_names_its_host_only(status: int | None) -> None:
    """A webhook URL's path is its credential: a failed delivery logs scheme, host and status only."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from lake_assets.automation.channels import post_webhook
    from lake_assets.automation.run_report import RunReport
    from lake_assets.config import NotifyConfig

    class NotFound(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if status is None:
            with socket.socket() as probe:  # a port nobody listens on
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        else:
            port = server.server_address[1]
        secret = "T0001/B0002/hook-tok-3e7a9c"
        notify = NotifyConfig(webhook_url=f"http://127.0.0.1:{port}/services/{secret}?token=qp-tok-77d1")
        report = RunReport(run_id="r" * 36, job_name="daily_lake_job", status="FAILURE", partition=None, ui_url="")
        problem = post_webhook(report, notify)
    finally:
        server.shutdown()
        server.server_close()
    assert problem is not None and problem.startswith(f"webhook http://127.0.0.1:{port}/… failed")
    assert (f"(HTTP {status})" in problem) if status else "ConnectionError" in problem
    assert "hook-tok-3e7a9c" not in problem and "qp-tok-77d1" not in problem
