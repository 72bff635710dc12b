"""Dagster's freshness checks per layer and column-schema change checks on raw, as the project wires
them from `quality.freshness` / `quality.schema_change`: a layer never updated or updated too long ago
fails (WARN), a fresh one passes; a raw delivery whose columns change shape between two
materializations fails `column_schema_change`, an unchanged one passes. No Spark: single assets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    define_asset_job,
    materialize,
)
from pydantic import ValidationError

from lake_assets.assets.freshness import (
    FRESHNESS_SENSOR_NAME,
    build_freshness_checks,
    build_schema_change_checks,
)
from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.raw import build_raw_assets
from lake_assets.config import FileSourceConfig, PipelineConfig, QualityConfig, load_config
from lake_assets.definitions import build_definitions
from lake_assets.io_managers import ParquetLakeIOManager
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.spark import build_spark_resource

DAY, NEXT_DAY = "2024-03-01", "2024-03-02"


@pytest.fixture
def config() -> PipelineConfig:
    return load_config()


def _with_quality(config: PipelineConfig, quality: dict) -> PipelineConfig:
    return config.model_copy(update={"quality": QualityConfig.model_validate(quality)})


def _evaluate(checks: list, specs: list[AssetSpec], instance: DagsterInstance) -> dict[str, object]:
    """asset key path -> the evaluation of its check, in one run of the checks alone."""
    job = define_asset_job("checks_alone", AssetSelection.checks(*checks))
    defs = Definitions(assets=specs, asset_checks=checks, jobs=[job])
    result = defs.resolve_job_def("checks_alone").execute_in_process(instance=instance, raise_on_error=False)
    return {"/".join(e.asset_key.path): e for e in result.get_asset_check_evaluations()}


def test_freshness_per_layer_fails_when_never_or_long_ago_updated(config: PipelineConfig) -> None:
    assets = build_raw_assets(config)
    specs = [AssetSpec(key, partitions_def=daily_partitions(config)) for a in assets for key in a.keys
             if key.path[0] == "raw"]  # the raw step's quarantine output is of the quarantine layer
    keys = ["/".join(s.key.path) for s in specs]
    hours = {"deadline_cron": None, "max_age_hours": {"raw": 24}}
    (day_check,) = build_freshness_checks(_with_quality(config, {"freshness": hours}), assets)
    with DagsterInstance.ephemeral() as instance:
        never = _evaluate([day_check], specs, instance)
        assert sorted(never) == sorted(keys)
        assert all(not e.passed and e.severity == AssetCheckSeverity.WARN for e in never.values())

        for spec in specs[1:]:
            instance.report_runless_asset_event(AssetMaterialization(spec.key, partition=DAY))
        fresh = _evaluate([day_check], specs, instance)
        assert {k: e.passed for k, e in fresh.items()} == {k: k != keys[0] for k in keys}

        # A limit of one second: the same updates are now too old, at error severity from config.
        time.sleep(1.5)
        second = {"freshness": {"deadline_cron": None, "max_age_hours": {"raw": 1 / 3600}, "severity": "error"}}
        (stale_check,) = build_freshness_checks(_with_quality(config, second), assets)
        stale = _evaluate([stale_check], specs, instance)
        assert all(not e.passed and e.severity == AssetCheckSeverity.ERROR for e in stale.values())


def test_definitions_have_a_freshness_check_per_layer_and_its_sensor(config: PipelineConfig) -> None:
    defs = build_definitions(config)
    graph = defs.resolve_asset_graph()
    checked = {k.asset_key for k in graph.asset_check_keys if k.name == "freshness_check"}
    layers = {"raw", "processed", "masked", "curated", "warehouse"}
    assert checked == {k for k in graph.get_all_asset_keys() if k.path[0] in layers}
    assert {k.path[0] for k in checked} == layers
    schema = {k.asset_key.path[0] for k in graph.asset_check_keys if k.name == "column_schema_change"}
    assert schema == {"raw"}
    sensor = defs.resolve_sensor_def(FRESHNESS_SENSOR_NAME)
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_freshness_config_rejects_unknown_layers_and_bad_cron() -> None:
    with pytest.raises(ValidationError, match="unknown layer"):
        QualityConfig.model_validate({"freshness": {"max_age_hours": {"lake": 3}}})
    with pytest.raises(ValidationError, match="cron"):
        QualityConfig.model_validate({"freshness": {"deadline_cron": "daily"}})
    kept = QualityConfig.model_validate({"freshness": {"max_age_hours": {"raw": 30}}}).freshness.max_age_hours
    assert kept == {"raw": 30, "processed": 24, "masked": 24, "curated": 24, "warehouse": 24}


def test_a_raw_delivery_that_changes_shape_fails_the_schema_change_check(
    config: PipelineConfig, tmp_path: Path
) -> None:
    drop, lake = tmp_path / "drop", LakeStorage(url=str(tmp_path / "lake"))
    (drop / "incoming").mkdir(parents=True)
    source = FileSourceConfig.model_validate({"name": "drop", "kind": "file", "path": str(drop), "tables": [
        {"name": "sales", "pattern": "incoming/sales_{date}.csv"}]})
    config = config.model_copy(update={"sources": [source]})
    (raw,) = build_raw_assets(config)
    (check,) = build_schema_change_checks(config, [raw])

    def deliver(day: str, text: str, instance: DagsterInstance) -> object:
        (drop / "incoming" / f"sales_{day}.csv").write_text(text)
        # The raw table alone: the lake IO manager stores it (its Spark session never starts), and the step
        # stores the left-out quarantine with the same write.
        io_manager = ParquetLakeIOManager(lake=lake, pyspark=build_spark_resource(config.spark))
        result = materialize([raw, check], selection=AssetSelection.assets(AssetKey(["raw", "drop", "sales"])),
                             partition_key=day, resources={"lake": lake, "io_manager": io_manager}, instance=instance)
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    with DagsterInstance.ephemeral() as instance:
        first = deliver(DAY, "line_id,qty,price\nL1,2,1.50\n", instance)
        same = deliver(NEXT_DAY, "line_id,qty,price\nL2,1,2.00\n", instance)
        changed = deliver("2024-03-03", "line_id,qty,coupon\nL3,1,X\n", instance)
    assert first.passed and same.passed
    assert (changed.passed, changed.severity) == (False, AssetCheckSeverity.WARN)
    assert "Added columns: coupon" in changed.description and "Removed columns: price" in changed.description
