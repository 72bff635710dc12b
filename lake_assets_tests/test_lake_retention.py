"""Lake retention with a frozen clock (`today`/`now` passed in): exactly the expired days go, the kept
days keep their rows, --dry-run changes nothing, orphan removal never deletes a referenced file and
does delete an old orphan batch; on a local lake and on moto S3 + a PostgreSQL catalog."""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_assets.automation.retention_job import RETENTION_OP, build_retention_job
from lake_assets.config import ConfigError, PipelineConfig, load_config
from lake_assets.lake_maintenance import retention
from lake_assets.lake_maintenance.orphans import list_files, referenced_paths
from lake_assets.lake_maintenance.retention import run_retention
from lake_assets.resources.lake_storage import LakeDataNotFound, LakeStorage

from .conftest import S3Server

RAW = ("raw", "src", "t")
VAULT = ("vault", "sale", "card_number")
DIM = ("curated", "dim_x")
TODAY = date(2024, 1, 3)
# Rows per day as written; 2024-01-03 is rewritten with 5 rows, so an older snapshot holds a replaced file.
RAW_DAYS = {"2024-01-01": 3, "2024-01-02": 2, "2024-01-03": 4}
VAULT_DAYS = {"2024-01-01": 1, "2024-01-03": 2}


def _config(**days: int) -> PipelineConfig:
    config = load_config()
    return config.model_copy(update={"retention_days": {**config.retention_days, **days}})


def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"x": list(range(start, start + n))})


def _fill(lake: LakeStorage) -> None:
    for day, n in RAW_DAYS.items():
        lake.write_arrow(RAW, day, _rows(n), state={"cursor": day})
    lake.write_arrow(RAW, "2024-01-03", _rows(5, 100))
    for day, n in VAULT_DAYS.items():
        lake.write_arrow(VAULT, day, _rows(n))
    lake.write_arrow(DIM, None, _rows(1))
    lake.write_arrow(DIM, None, _rows(2))


def _orphan(lake: LakeStorage, day: str, name: str) -> str:
    """A staged batch that never committed (a crashed write): files under the table, in no snapshot."""
    path = f"{lake.dataset_dir(RAW, day)}/batch-{name}/part-00000.parquet"
    if not lake.is_s3:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with lake.filesystem.open_output_stream(path) as out:
        pq.write_table(_rows(7), out)
    return path


def _age(path: str, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def _all_referenced_exist(lake: LakeStorage, key: tuple[str, ...]) -> None:
    table = lake.load_table(key)
    paths = referenced_paths(lake, table, [s.snapshot_id for s in table.metadata.snapshots])
    present = {f.path for f in list_files(lake, table.location())}
    assert paths <= present, f"referenced files missing: {sorted(paths - present)}"


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_expired_days_go_and_kept_days_stay(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "local":
        lake = LakeStorage(url=str(tmp_path / "lake"))
    else:
        s3: S3Server = request.getfixturevalue("s3")
        lake = LakeStorage(url=f"s3://{s3.make_bucket()}/lake", catalog_uri=request.getfixturevalue("postgres_catalog"))
    _fill(lake)
    crashed = _orphan(lake, "2024-01-01", "crashed")
    config = _config(raw=1, vault=2)  # raw keeps 2024-01-02 (1 day old) and newer; vault keeps 2024-01-01
    # A week and a day later: every snapshot but the current one is past snapshot_retention_days (7),
    # every unreferenced file past orphan_min_age_hours.
    now = datetime.now(timezone.utc) + timedelta(days=8)
    raw_table = lake.load_table(RAW)
    first_current = raw_table.current_snapshot().snapshot_id
    older_snapshots = {s.snapshot_id for s in raw_table.metadata.snapshots} - {first_current}
    replaced = {lake._fs_path(t.file.file_path) for t in raw_table.scan(
        snapshot_id=lake.commit_info(RAW, "2024-01-02").snapshot_id, row_filter="ingest_date = '2024-01-03'"
    ).plan_files()}
    before_files = {k: list_files(lake, lake.load_table(k).location()) for k in (RAW, VAULT, DIM)}
    before_meta = {k: lake.load_table(k).metadata_location for k in (RAW, VAULT, DIM)}

    planned = {p.table: p for p in run_retention(lake, config, TODAY, now, dry_run=True)}
    raw_plan = planned["raw.src__t"]
    assert raw_plan.partitions == {"2024-01-01": RAW_DAYS["2024-01-01"]}
    assert raw_plan.kept_partitions == 2
    assert {s.snapshot_id for s in raw_plan.snapshots} == older_snapshots
    orphan_paths = {f.path for f in raw_plan.orphans}
    assert crashed in orphan_paths and replaced <= orphan_paths
    assert planned["vault.sale__card_number"].partitions == {}
    assert planned["curated.dim_x"].retention_days is None and planned["curated.dim_x"].partitions == {}
    # The dry run changed nothing.
    for key in (RAW, VAULT, DIM):
        assert lake.load_table(key).metadata_location == before_meta[key]
        assert list_files(lake, lake.load_table(key).location()) == before_files[key]

    done = {p.table: p for p in run_retention(lake, config, TODAY, now)}
    assert {t: p.summary() for t, p in done.items()} == {t: p.summary() for t, p in planned.items()}
    assert all(p.applied for p in done.values())

    assert lake.committed_partitions(RAW) == ["2024-01-02", "2024-01-03"]
    assert lake.read_arrow(RAW, "2024-01-02").num_rows == RAW_DAYS["2024-01-02"]
    assert lake.read_arrow(RAW, "2024-01-03").column("x").to_pylist() == list(range(100, 105))
    assert lake.partition_state(RAW, "2024-01-02") == {"cursor": "2024-01-02"}
    with pytest.raises(LakeDataNotFound):
        lake.read_arrow(RAW, "2024-01-01")
    assert not any(k.startswith("lake.commit.2024-01-01") for k in lake.load_table(RAW).properties)
    assert lake.committed_partitions(VAULT) == sorted(VAULT_DAYS)
    assert {d: lake.read_arrow(VAULT, d).num_rows for d in VAULT_DAYS} == VAULT_DAYS
    assert lake.read_arrow(DIM).num_rows == 2
    raw_table = lake.load_table(RAW)
    remaining = {s.snapshot_id for s in raw_table.metadata.snapshots}
    assert remaining == {first_current, raw_table.current_snapshot().snapshot_id}  # + the retention delete
    present = {f.path for f in list_files(lake, raw_table.location())}
    assert crashed not in present and not (present & replaced)
    if kind == "local":
        assert not os.path.exists(os.path.dirname(crashed))  # the orphan batch directory is gone
    for key in (RAW, VAULT, DIM):
        _all_referenced_exist(lake, key)

    # The next run expires the snapshot the delete replaced, so the expired day's files go too.
    expired_day_files = {lake._fs_path(t.file.file_path) for t in raw_table.scan(
        snapshot_id=first_current, row_filter="ingest_date = '2024-01-01'").plan_files()}
    assert expired_day_files and expired_day_files <= present
    (again,) = [p for p in run_retention(lake, config, TODAY, now) if p.table == "raw.src__t"]
    assert [s.snapshot_id for s in again.snapshots] == [first_current] and not again.days
    assert not expired_day_files & {f.path for f in list_files(lake, raw_table.location())}
    assert lake.read_arrow(RAW, "2024-01-02").num_rows == RAW_DAYS["2024-01-02"]
    _all_referenced_exist(lake, RAW)


def test_young_orphans_and_snapshot_files_stay_and_the_job_reports(tmp_path: Path) -> None:
    """A write in flight (a young unreferenced file) and files of snapshots within the retention survive;
    an old orphan goes. Run through the `lake_retention` Dagster job with real time."""
    lake = LakeStorage(url=str(tmp_path / "lake"))
    _fill(lake)
    in_flight = _orphan(lake, "2024-01-03", "in-flight")
    old = _orphan(lake, "2024-01-02", "crashed")
    _age(old, 25)  # past the 24 h margin
    first = lake.load_table(RAW).metadata.snapshots[0].snapshot_id

    job = build_retention_job(_config(raw=1))
    result = job.execute_in_process(resources={"lake": lake},
                                    run_config={"ops": {RETENTION_OP: {"config": {"today": TODAY.isoformat()}}}})
    assert result.success
    report = result.output_for_node(RETENTION_OP)
    assert report["raw.src__t"]["expired_partitions"] == {"2024-01-01": RAW_DAYS["2024-01-01"]}
    assert report["raw.src__t"]["expired_snapshots"] == []  # all younger than 7 days
    assert report["raw.src__t"]["orphan_files"] == 1
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert metadata["partitions_deleted"].value == 1 and metadata["rows_deleted"].value == RAW_DAYS["2024-01-01"]

    assert os.path.exists(in_flight) and not os.path.exists(old)
    _all_referenced_exist(lake, RAW)
    # Time travel to the first snapshot still works: its files were not touched.
    first_rows = lake.load_table(RAW).scan(snapshot_id=first).to_arrow()
    assert first_rows.num_rows == RAW_DAYS["2024-01-01"]


def test_cli_dry_run_lists_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    lake = LakeStorage(url=str(tmp_path / "lake"))
    for day, n in RAW_DAYS.items():
        lake.write_arrow(RAW, day, _rows(n))
    metadata = lake.load_table(RAW).metadata_location
    # The bundled config keeps raw 90 days: on 2024-04-01 the cutoff is 2024-01-02.
    assert retention.main(["--dry-run", "--today", "2024-04-01"]) == 0
    out = capsys.readouterr().out
    assert "would remove partition ingest_date=2024-01-01 (3 rows)" in out
    assert "ingest_date=2024-01-02" not in out and "ingest_date=2024-01-03" not in out
    assert lake.load_table(RAW).metadata_location == metadata
    assert lake.committed_partitions(RAW) == sorted(RAW_DAYS)


def test_unknown_retention_layer_is_named(tmp_path: Path) -> None:
    from lake_assets.config import BUNDLED_CONFIG

    text = BUNDLED_CONFIG.read_text(encoding="utf-8")
    text = text.replace("retention_days: {raw: 90,", "retention_days: {cold: 3, raw: 90,")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "retention_days" in str(error.value) and "'cold'" in str(error.value)
    assert "quarantine" in str(error.value)  # the message lists the layers


def test_schedule_counts_from_the_day_it_runs_in_the_pipeline_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoneinfo import ZoneInfo

    from dagster import build_schedule_context

    from lake_assets.automation.retention_job import RETENTION_JOB_NAME, RETENTION_SCHEDULE_NAME
    from lake_assets.definitions import build_definitions

    monkeypatch.setenv("LAKE_SCHEDULE_TIMEZONE", "America/New_York")
    monkeypatch.setenv("LAKE_MAINTENANCE_CRON", "30 21 * * *")
    defs = build_definitions(load_config())
    schedule = defs.get_schedule_def(RETENTION_SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "30 21 * * *", "America/New_York", RETENTION_JOB_NAME)
    # 21:30 in New York on Jan 3rd is already Jan 4th in UTC: the day counted from is New York's.
    when = datetime(2024, 1, 3, 21, 30, tzinfo=ZoneInfo("America/New_York"))
    data = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=when,
                                                         repository_def=defs.get_repository_def()))
    (request,) = data.run_requests
    assert request.run_config == {"ops": {RETENTION_OP: {"config": {"today": "2024-01-03"}}}}


def test_facts_expire_by_sale_date_whenever_they_arrived(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    facts = ("curated", "fact_sales")
    # All three sale dates arrived today (a history load): the old ones go all the same.
    with lake.staged_partitions(facts, "sale_date") as batch:
        os.makedirs(batch.local_dir, exist_ok=True)
        for n, day in enumerate((date(2023, 12, 1), date(2024, 1, 2), date(2024, 1, 3))):
            pq.write_table(pa.table({"line": [f"L{n}"], "sale_date": pa.array([day], pa.date32())}),
                           f"{batch.local_dir}/part-{n}.parquet")
        batch.commit(state={"run_day": TODAY.isoformat()})
    now = datetime.now(timezone.utc)
    (plan,) = [p for p in run_retention(lake, _config(curated=1), TODAY, now) if p.table == "curated.fact_sales"]
    assert plan.partitions == {"2023-12-01": 1}
    assert lake.committed_partitions(facts) == ["2024-01-02", "2024-01-03"]
    assert lake.read_arrow(facts, "2024-01-02").column("line").to_pylist() == ["L1"]
