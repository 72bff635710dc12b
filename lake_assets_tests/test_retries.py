"""Retry policy from config: transient failures are retried after the configured delay (growing
exponentially, with jitter), a run that fails twice then succeeds ends green; deterministic failures
(a missing source file) are not retried."""

import shutil
import time
from pathlib import Path

import pytest
from dagster import AssetKey, Backoff, DagsterEventType, Jitter, asset, instance_for_test, materialize

from lake_assets.assets import build_all_assets
from lake_assets.assets.retry import retry_policy
from lake_assets.config import load_config
from lake_assets.definitions import build_resources

from .conftest import SAMPLE_DIR

pytestmark = pytest.mark.services  # Dagster runs that wait out retry back-off

RETRIED_LAYERS = {"raw", "warehouse"}  # sources and the warehouse load: where a retry can help


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


def test_fails_twice_then_succeeds(retry_env: None) -> None:
    config = load_config()
    attempts: list[float] = []

    # A source that is flaky for two attempts, under the same config-built policy as the raw assets.
    @asset(retry_policy=retry_policy(config.retries))
    def flaky_source() -> int:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError(f"source unreachable (attempt {len(attempts)})")
        return 42

    with instance_for_test() as instance:
        result = materialize([flaky_source], instance=instance)
        assert result.success
        assert result.output_for_node("flaky_source") == 42
        retries = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
        assert len(retries) == 2
    assert len(attempts) == 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    # Exponential backoff with ± delay jitter: the first wait is 0.3 ± 0.3 s, the second 0.9 ± 0.3 s.
    assert gaps[1] >= 0.6, gaps


def test_three_transient_failures_exhaust_the_policy(retry_env: None) -> None:
    config = load_config()
    attempts: list[int] = []

    @asset(retry_policy=retry_policy(config.retries))
    def down_source() -> int:
        attempts.append(1)
        raise ConnectionError("still unreachable")

    with instance_for_test() as instance:
        result = materialize([down_source], instance=instance, raise_on_error=False)
    assert not result.success
    assert len(attempts) == 3  # 1 + max retries


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
