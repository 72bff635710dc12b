"""The pipeline config: interpolation, validation, and error messages that name file and key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake_assets.config import BUNDLED_CONFIG, ConfigError, load_config

from .conftest import TEST_MASKING_KEY


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _bundled_with(tmp_path: Path, old: str, new: str) -> Path:
    text = BUNDLED_CONFIG.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in bundled config"
    return _write(tmp_path, text.replace(old, new, 1))


def test_bundled_config_loads_with_defaults_and_env() -> None:
    config = load_config()
    assert config.lake.url == "./.lake"
    assert config.warehouse.url.startswith("sqlite:///")
    assert config.masking.key == TEST_MASKING_KEY
    assert [t.entity for t in config.sources[0].tables] == ["customer", "product", "location", "sale"]
    assert config.retries.max == 0  # from LAKE_RETRY_MAX in the test environment


def test_env_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("LAKE_CATALOG_URI", "postgresql+psycopg2://lake@db/catalog")
    config = load_config()
    assert (config.lake.url, config.lake.catalog.uri) == ("s3://bucket/prefix", "postgresql+psycopg2://lake@db/catalog")


def test_an_s3_lake_without_a_catalog_database_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_URL", "s3://bucket/prefix")
    monkeypatch.delenv("LAKE_CATALOG_URI", raising=False)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert "lake.catalog.uri is required for an s3:// lake" in str(error.value)
    # A local lake needs nothing: its catalog defaults to SQLite inside the lake.
    monkeypatch.setenv("LAKE_URL", "./.lake")
    assert load_config().lake.catalog.uri == ""


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _bundled_with(tmp_path, "lake:\n", "lake:\n  colour: blue\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "lake.colour" in str(error.value) and "unknown key" in str(error.value)


def test_missing_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKE_MASKING_KEY")
    with pytest.raises(ConfigError) as error:
        load_config()
    assert "masking.key" in str(error.value)
    assert "LAKE_MASKING_KEY" in str(error.value)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = _bundled_with(tmp_path, 'start_date: "2024-01-01"', 'start_date: "first of January"')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "start_date" in str(error.value)


def test_unknown_entity_and_bad_retry_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _bundled_with(tmp_path, "entity: product", "entity: produce")
    monkeypatch.setenv("LAKE_RETRY_MAX", "-1")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "sources.0.tables.1.entity" in message and "produce" in message
    assert "retries.max" in message


def test_short_masking_key_rejected_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_MASKING_KEY", "tooshort")
    with pytest.raises(ConfigError) as error:
        load_config()
    assert "masking.key" in str(error.value)
    assert "tooshort" not in str(error.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_the_dagster_cli_prints_a_config_error_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "pipeline.yaml"
    bad.write_text("lake:\n  colour: red\n", encoding="utf-8")
    env = {**os.environ, "LAKE_CONFIG": str(bad)}
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "asset", "materialize", "-m", "lake_assets", "--select", "*",
                           "--partition", "2024-01-01"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.returncode != 0
    assert f"lake_assets: {bad}: invalid pipeline config" in done.stderr
    assert "key 'lake.colour': unknown key" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_metric_function_the_config_accepts_has_a_spark_aggregate() -> None:
    from spark.aggregations import FUNCTIONS
    from spark.metric_grammar import METRIC_FUNCTIONS

    assert set(FUNCTIONS) == set(METRIC_FUNCTIONS)


def test_sql_dialect_of_each_warehouse_and_source_url() -> None:
    from lake_assets.dialects import sql_dialect

    urls = ("postgresql+psycopg2://u:p@h:5432/d", "postgresql://h/d", "mysql+pymysql://u@h:3306/",
            "mariadb+pymysql://u@h/", "sqlite:///./.lake/warehouse.db", "sqlite://")
    assert [sql_dialect(url) for url in urls] == ["postgresql", "postgresql", "mysql", "mysql", "sqlite", "sqlite"]
