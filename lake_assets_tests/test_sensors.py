"""The file-drop sensor, evaluated with build_sensor_context on a real local drop folder and on a
moto S3 prefix (over HTTP): a new file launches one run for its day, once; a re-delivered file with
new content launches again; a file for a day that is not a partition is not run and is warned about
once; the first tick can launch the files the lake does not hold yet."""

import json
import logging
import shutil
from pathlib import Path

import pytest
from dagster import build_sensor_context

from lake_assets.automation.file_drop import list_dropped_files
from lake_assets.automation.jobs import DAILY_JOB_NAME
from lake_assets.automation.sensors import FILE_DROP_SENSOR_NAME
from lake_assets.config import SensorConfig, load_config
from lake_assets.definitions import build_definitions
from lake_assets.ingestion import DataIngestionPipeline, make_source
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR, S3Server


def _tick(defs, cursor: str | None):
    sensor = defs.get_sensor_def(FILE_DROP_SENSOR_NAME)
    return sensor.evaluate_tick(build_sensor_context(cursor=cursor, repository_def=defs.get_repository_def()))


def test_listing_takes_the_day_from_the_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop"
    for relative in (
        "2024-01-02/sales_1.csv",
        "2024-01-02/sales_.csv",
        "2024-01-02/sub/sales_1.csv",
        "2024-01-02/sales_1.csv.bak",
        "latest/sales_1.csv",
    ):
        (drop / relative).parent.mkdir(parents=True, exist_ok=True)
        (drop / relative).write_text("Line_ID\n", encoding="utf-8")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    sales = [f for f in list_dropped_files(load_config()) if f.table == "sales"]
    assert [(Path(f.path).relative_to(drop).as_posix(), f.day) for f in sales] == [
        ("2024-01-02/sales_.csv", "2024-01-02"),
        ("2024-01-02/sales_1.csv", "2024-01-02"),
    ]


def test_local_drop_launches_once_per_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / "2024-01-01", drop / "2024-01-01")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    defs = build_definitions(load_config())

    # First tick: a baseline of what is already there, no run.
    first = _tick(defs, None)
    assert first.run_requests == []
    baseline = json.loads(first.cursor)["seen"]
    assert set(baseline) == {f.path for f in list_dropped_files(load_config())}
    assert len(baseline) == len(list((drop / "2024-01-01").iterdir()))

    # A new day arrives: one run for that day, through the daily job, listing the new files.
    shutil.copytree(SAMPLE_DIR / "2024-01-02", drop / "2024-01-02")
    second = _tick(defs, first.cursor)
    (request,) = second.run_requests
    assert request.partition_key == "2024-01-02"
    assert defs.get_sensor_def(FILE_DROP_SENSOR_NAME).job_name == DAILY_JOB_NAME
    assert str(drop / "2024-01-02" / "customers.csv") in request.tags["lake/files"]
    assert "2024-01-01" not in request.tags["lake/files"]

    # Nothing new: nothing launched; the same files never trigger twice.
    third = _tick(defs, second.cursor)
    assert third.run_requests == []
    assert third.cursor == second.cursor

    # A re-delivered file with different content (size) triggers its day again, and only it.
    with open(drop / "2024-01-01" / "stores.csv", "a", encoding="utf-8") as handle:
        handle.write("\n")
    fourth = _tick(defs, third.cursor)
    assert [r.partition_key for r in fourth.run_requests] == ["2024-01-01"]
    assert fourth.run_requests[0].tags["lake/files"] == str(drop / "2024-01-01" / "stores.csv")
    assert fourth.run_requests[0].run_key != request.run_key

    # A file for a day before start_date is not a partition: no run, and it stays "unseen".
    shutil.copytree(SAMPLE_DIR / "2024-01-03", drop / "2023-12-31")
    fifth = _tick(defs, fourth.cursor)
    assert fifth.run_requests == []
    assert not any("2023-12-31" in path for path in json.loads(fifth.cursor)["seen"])


def test_s3_drop_launches_for_new_objects(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    bucket = s3.make_bucket()
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")

    def upload(day: str) -> None:
        for path in sorted((SAMPLE_DIR / day).iterdir()):
            client.put_object(Bucket=bucket, Key=f"drop/in/{day}/{path.name}", Body=path.read_bytes())

    upload("2024-01-01")
    client.put_object(Bucket=bucket, Key="drop/in/2024-01-02/readme.txt", Body=b"not a source file")
    monkeypatch.setenv("SAMPLE_DROP_PATH", f"s3://{bucket}/drop/in")
    defs = build_definitions(load_config())

    first = _tick(defs, None)
    assert first.run_requests == []
    assert all(p.startswith(f"s3://{bucket}/drop/in/2024-01-01/") for p in json.loads(first.cursor)["seen"])

    upload("2024-01-03")
    second = _tick(defs, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2024-01-03"]
    assert f"s3://{bucket}/drop/in/2024-01-03/stores.csv" in second.run_requests[0].tags["lake/files"]
    assert _tick(defs, second.cursor).run_requests == []

    # Same key, new content (new ETag): launches again.
    client.put_object(Bucket=bucket, Key="drop/in/2024-01-03/stores.csv", Body=b"store_code,store\nS9,new\n")
    third = _tick(defs, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["2024-01-03"]


def test_first_tick_can_ingest_what_the_lake_does_not_hold_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = tmp_path / "drop"
    for day in ("2024-01-01", "2024-01-02"):
        shutil.copytree(SAMPLE_DIR / day, drop / day)
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    assert config.sensor.ingest_existing_on_first_tick is False  # the documented default
    # 2024-01-01 is already in the lake (every file table of it); 2024-01-02 is not.
    lake = LakeStorage(url=config.lake.url)
    for source in config.sources:
        for table in source.tables:
            DataIngestionPipeline(make_source(source, table), lake).run("2024-01-01")

    eager = config.model_copy(update={"sensor": SensorConfig(ingest_existing_on_first_tick=True)})
    first = _tick(build_definitions(eager), None)
    assert [r.partition_key for r in first.run_requests] == ["2024-01-02"]
    assert set(json.loads(first.cursor)["seen"]) == {f.path for f in list_dropped_files(config)}


def test_a_file_outside_the_partitions_is_warned_about_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / "2024-01-01", drop / "2024-01-01")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    defs = build_definitions(load_config())
    cursor = _tick(defs, None).cursor
    early = drop / "2023-12-31"
    shutil.copytree(SAMPLE_DIR / "2024-01-03", early)  # before start_date: never a partition
    expected = {str(p) for p in early.iterdir()}

    def warned(cursor: str | None) -> tuple[set[str], str | None]:
        context = build_sensor_context(cursor=cursor, repository_def=defs.get_repository_def())
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = records.append  # type: ignore[method-assign]
        context.log.addHandler(handler)
        result = defs.get_sensor_def(FILE_DROP_SENSOR_NAME).evaluate_tick(context)
        assert result.run_requests == []
        warnings = [r.getMessage() for r in records]
        assert all(sum(p in w for w in warnings) <= 1 for p in expected)
        return {p for p in expected if any(p in w for w in warnings)}, result.cursor

    first, cursor = warned(cursor)
    assert first == expected  # each of the four files, once
    again, cursor = warned(cursor)
    assert again == set()  # and never again on later ticks
    # A waiting file is launched once its day is a partition (here: the cursor says it waited on 2024-01-01).
    state = json.loads(cursor)
    stores = str(drop / "2024-01-01" / "stores.csv")
    signature = state["seen"].pop(stores)
    state["waiting"][stores] = signature
    launched = _tick(defs, json.dumps(state))
    assert [r.partition_key for r in launched.run_requests] == ["2024-01-01"]
    assert stores not in json.loads(launched.cursor)["waiting"]
