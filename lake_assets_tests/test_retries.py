"""Retry policy from config, on lake_assets' own raw assets: a source that answers 5xx is retried
after the configured delay (growing exponentially, with jitter), a run whose source fails twice then
answers ends green with the rows in the lake; deterministic failures (a missing source file) are not
retried."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, Backoff, DagsterEventType, DagsterInstance, Jitter, instance_for_test, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

from .api_server import ApiState, sale_record, serve_api
from .conftest import SAMPLE_DIR

pytestmark = pytest.mark.services  # Dagster runs that wait out retry back-off

RETRIED_LAYERS = {"raw", "warehouse"}  # sources and the warehouse load: where a retry can help
API_KEY = AssetKey(["raw", "flaky_api", "lines"])


@pytest.fixture
def retry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_RETRY_MAX", "2")
    monkeypatch.setenv("LAKE_RETRY_DELAY_SECONDS", "0.3")


def test_policy_comes_from_config_on_sources_and_warehouse(retry_env: None) -> None:
    config = load_config()
    assert (config.retries.max, config.retries.delay_seconds) == (2, 0.3)
    by_layer: dict[str, set] = {}
    for assets_def in build_all_assets(config):
        policy = assets_def.op.retry_policy
        for key in assets_def.keys:
            by_layer.setdefault(key.path[0], set()).add(
                None if policy is None else (policy.max_retries, policy.delay, policy.backoff, policy.jitter)
            )
    for layer in RETRIED_LAYERS:
        # Backoff and jitter by default: runs that failed together do not retry in lockstep.
        assert by_layer[layer] == {(2, 0.3, Backoff.EXPONENTIAL, Jitter.PLUS_MINUS)}, layer


@pytest.fixture
def flaky_api(
    retry_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> Iterator[tuple[ApiState, PipelineConfig]]:
    """The sample config plus an API source on a local server whose faults the test queues; the source
    itself does not retry (`max_retries: 0`), so every 5xx fails the step and only the asset's retry
    policy can bring it back. (`spark`: the lake IO manager joins the session's SparkSession.)"""
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    state = ApiState(records=[sale_record(i, f"2024-01-01T10:00:{i:02d}") for i in range(4)])
    with serve_api(state) as url:
        data = load_config().model_dump(mode="json", by_alias=True)
        data["sources"].append({
            "name": "flaky_api", "kind": "api", "base_url": url, "max_retries": 0, "timeout_seconds": 5,
            "tables": [{"name": "lines", "entity": "sale", "path": "/v1/stripe", "records_path": "data",
                        "columns": {"line_id": "sale_line_id", "sold": "sold_at", "qty": "quantity",
                                    "price": "unit_price"},
                        "pagination": {"type": "starting_after", "page_size": 10}}],
        })
        yield state, PipelineConfig.model_validate(data)


def _run_api_asset(instance: DagsterInstance, config: PipelineConfig) -> Any:
    return materialize(build_all_assets(config), selection=[API_KEY], partition_key="2024-01-01",
                       resources=build_resources(config), instance=instance, raise_on_error=False)


def test_a_source_down_for_two_attempts_is_ingested_on_the_third(flaky_api) -> None:
    state, config = flaky_api
    state.faults = [("500", ""), ("500", "")]
    with instance_for_test() as instance:
        result = _run_api_asset(instance, config)
        assert result.success
        assert len(instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)) == 2
        starts = [e.timestamp for e in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_RESTARTED)]
    assert len(state.requests) == 3  # one request per attempt: the source's own retries are off
    assert LakeStorage(url=config.lake.url).commit_info(API_KEY.path, "2024-01-01").rows == len(state.records)
    # Exponential backoff with ± delay jitter: the first wait is 0.3 ± 0.3 s, the second 0.9 ± 0.3 s.
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.6, starts


def test_a_source_down_for_every_attempt_exhausts_the_policy(flaky_api) -> None:
    state, config = flaky_api
    state.faults = [("500", "")] * 4
    with instance_for_test() as instance:
        result = _run_api_asset(instance, config)
        assert not result.success
        assert len(instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)) == 2
        (failure,) = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_FAILURE)
    assert len(state.requests) == 3  # 1 + retries.max attempts, then no more
    error = failure.dagster_event.event_specific_data.error
    assert error.message.startswith("Exceeded max_retries of 2")
    assert "answered 500" in error.cause.message  # the source's own error is what was retried


def test_missing_file_is_not_retried(retry_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / "2024-01-01", drop / "2024-01-01")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    key = AssetKey(["raw", "shop_files", "stores"])
    with instance_for_test() as instance:
        result = materialize(build_all_assets(config), selection=[key], partition_key="2024-01-02",
                             resources=build_resources(config), instance=instance, raise_on_error=False)
        assert not result.success
        assert instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY) == []
        (failure,) = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_FAILURE)
        assert "no file matches" in failure.dagster_event.event_specific_data.error.message
