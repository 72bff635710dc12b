"""Loading the code location (`lake_assets.defs`) twice in one process, as `dagster asset materialize`
does: the second load returns the first's definitions while the config and the environment read the
same, and builds them again when either changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import Definitions

import lake_assets
from lake_assets.config.loading import BUNDLED_CONFIG


def _load() -> Definitions:
    return lake_assets.defs()


def _lake_url(definitions: Definitions) -> str:
    return definitions.resources["lake"].url  # type: ignore[index, union-attr]


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bundled config with a lake of its own, as `LAKE_CONFIG`."""
    config = yaml.safe_load(BUNDLED_CONFIG.read_text(encoding="utf-8"))
    config["lake"]["url"] = str(tmp_path / "lake-a")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("LAKE_CONFIG", str(path))
    return path


def test_the_same_config_loads_the_same_definitions(config_file: Path) -> None:
    first = _load()
    assert _lake_url(first) == str(config_file.parent / "lake-a")
    assert _load() is first


def test_a_changed_config_file_builds_new_definitions(config_file: Path) -> None:
    first = _load()
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["lake"]["url"] = str(config_file.parent / "lake-b")
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    second = _load()
    assert second is not first
    assert _lake_url(second) == str(config_file.parent / "lake-b")


def test_a_changed_environment_builds_new_definitions(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Spark resource's JVM options depend on a variable the config does not mention.
    first = _load()
    monkeypatch.setenv("LAKE_JVM_CLASS_ARCHIVE", "0")
    second = _load()
    assert second is not first
    java_options = second.resources["pyspark"].spark_config["spark.driver.extraJavaOptions"]  # type: ignore[index, union-attr]
    assert "SharedArchiveFile" not in java_options
