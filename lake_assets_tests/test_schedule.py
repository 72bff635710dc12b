"""The daily schedule: built from config (cron, timezone), evaluated with build_schedule_context;
bad cron / timezone fail at load naming the key; the job covers the whole graph in order."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetCheckKey, AssetKey, RunRequest, build_schedule_context

from lake_assets.automation.jobs import DAILY_JOB_NAME, DAILY_SCHEDULE_NAME, MAX_RUNTIME_TAG
from lake_assets.config import ConfigError, load_config
from lake_assets.definitions import build_definitions


def _schedule_request(defs, when: datetime) -> RunRequest:
    schedule = defs.get_schedule_def(DAILY_SCHEDULE_NAME)
    data = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    )
    assert data.skip_message is None, data.skip_message
    (request,) = data.run_requests
    return request


def test_default_schedule_runs_yesterday_at_two() -> None:
    defs = build_definitions(load_config())
    schedule = defs.get_schedule_def(DAILY_SCHEDULE_NAME)
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == DAILY_JOB_NAME
    request = _schedule_request(defs, datetime(2024, 1, 3, 2, 0, tzinfo=ZoneInfo("UTC")))
    assert request.partition_key == "2024-01-02"
    assert request.run_key == "2024-01-02"  # a tick evaluated twice launches once


def test_cron_and_timezone_come_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_SCHEDULE_CRON", "30 5 * * 1-5")
    monkeypatch.setenv("LAKE_SCHEDULE_TIMEZONE", "America/New_York")
    defs = build_definitions(load_config())
    schedule = defs.get_schedule_def(DAILY_SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 5 * * 1-5", "America/New_York")
    # 05:30 New York on Jan 3rd is 10:30 UTC; the partitions follow the schedule's zone: Jan 2nd is
    # the latest complete New York day.
    request = _schedule_request(defs, datetime(2024, 1, 3, 5, 30, tzinfo=ZoneInfo("America/New_York")))
    assert request.partition_key == "2024-01-02"


def test_first_day_not_complete_yet_skips() -> None:
    defs = build_definitions(load_config())
    schedule = defs.get_schedule_def(DAILY_SCHEDULE_NAME)
    data = schedule.evaluate_tick(
        build_schedule_context(
            scheduled_execution_time=datetime(2024, 1, 1, 2, 0, tzinfo=ZoneInfo("UTC")),
            repository_def=defs.get_repository_def(),
        )
    )
    assert not data.run_requests and "no complete day" in (data.skip_message or "")


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("LAKE_SCHEDULE_CRON", "0 25 * * *", "schedule.cron"),
        ("LAKE_SCHEDULE_CRON", "every day", "schedule.cron"),
        ("LAKE_SCHEDULE_TIMEZONE", "Mars/Olympus_Mons", "schedule.timezone"),
        ("LAKE_MAX_RUNTIME_SECONDS", "0", "schedule.max_runtime_seconds"),
    ],
)
def test_bad_schedule_fails_at_load_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert f"key '{key}'" in str(raised.value)
    assert value in str(raised.value)


def test_daily_job_covers_every_asset_with_checks_and_max_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_MAX_RUNTIME_SECONDS", "1234")
    defs = build_definitions(load_config())
    job = defs.resolve_job_def(DAILY_JOB_NAME)
    all_keys = {a.key for a in defs.resolve_all_asset_specs() if a.group_name != "monitoring"}
    assert set(job.asset_layer.executable_asset_keys) == all_keys
    assert job.tags[MAX_RUNTIME_TAG] == "1234"
    assert job.partitions_def is not None and job.partitions_def.get_first_partition_key() == "2024-01-01"
    # Asset checks run inside the job (the seed's "quality checks" stage).
    checks_in_job = set(job.asset_layer.asset_graph.asset_check_keys)
    assert checks_in_job == set(defs.resolve_asset_graph().asset_check_keys)
    assert AssetCheckKey(AssetKey(["curated", "fact_sales"]), "sale_line_unique") in checks_in_job
    # Every lake table past raw has its blocking `schema` check (docs/quality.md), in the job too.
    entities = {t.entity for s in load_config().sources for t in s.tables}
    lake_tables = {AssetKey([layer, e]) for layer in ("processed", "masked") for e in entities}
    lake_tables |= {AssetKey(["curated", t]) for t in ("dim_customer", "dim_product", "dim_location", "dim_date",
                                                        "fact_sales")}
    assert lake_tables <= all_keys and {AssetCheckKey(k, "schema") for k in lake_tables} <= checks_in_job
    # Seed order: every processed asset runs after a raw one, masked after processed, and so on.
    graph = job.asset_layer.asset_graph
    layers = ["raw", "processed", "masked", "curated", "warehouse"]

    def stage(key: AssetKey) -> int:
        # quarantine/<layer>/... is written by that layer's step, vault/... by the masked step.
        layer = {"quarantine": key.path[1], "vault": "masked"}.get(key.path[0], key.path[0])
        return layers.index(layer)

    for key in all_keys:
        for parent in graph.get(key).parent_keys:
            assert stage(parent) <= stage(key), (parent, key)
    assert AssetKey(["raw", "shop_files", "sales"]) in all_keys
