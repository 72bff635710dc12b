"""Which runs start the SparkSession in the background at run start: those whose selection has a step
that uses Spark, decided from the real asset graph's keys."""

from __future__ import annotations

from dagster import AssetKey

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.resources.spark import selection_uses_spark


def _keys() -> list[AssetKey]:
    return [key for assets in build_all_assets(load_config()) for key in assets.keys]


def test_raw_or_warehouse_only_runs_start_no_session() -> None:
    keys = _keys()
    raw = [k for k in keys if k.path[0] == "raw"]
    warehouse = [k for k in keys if k.path[0] == "warehouse"]
    assert raw and warehouse
    assert not selection_uses_spark(raw)
    assert not selection_uses_spark(warehouse)
    assert not selection_uses_spark(raw + warehouse)


def test_runs_with_a_spark_step_start_it() -> None:
    keys = _keys()
    for layer in ("processed", "masked", "curated"):
        selected = [k for k in keys if k.path[0] in ("raw", layer)]
        assert any(k.path[0] == layer for k in selected)
        assert selection_uses_spark(selected), layer
    assert selection_uses_spark(None)  # the whole graph (no selection recorded on the run)
