"""The file-drop sensor: a new (or re-delivered) file launches the daily job for its day, once.

Cursor: JSON `{"seen": {path: signature}, "waiting": {path: signature}}`. `seen` holds every file
that launched a run (or was already there on the first tick); `waiting` holds files whose day is not
a partition (before `start_date`, or today, which is incomplete): they are warned about once, and
launch their day on the first tick after it becomes a partition. A cursor in the older flat form
`{path: signature}` is read as `seen`.

First tick: by default it only records what is already there (the schedule and backfills own
history), so turning the sensor on never floods the instance. With
`sensor.ingest_existing_on_first_tick: true` it launches the days of the files already there that no
committed raw partition holds yet (same path and fingerprint), so files dropped before the sensor
was switched on are not left behind, and days already in the lake are not run again.

Later ticks launch one run per affected day, with a run key made of that day's new files: each file
triggers exactly once even if the tick is evaluated again.
"""

import hashlib
import json

from dagster import DefaultSensorStatus, RunRequest, SensorDefinition, SensorEvaluationContext, SensorResult, SkipReason
from dagster import sensor as _sensor

from lake_assets.assets.partitions import daily_partitions
from lake_assets.automation.file_drop import DroppedFile, held_by_lake, list_dropped_files
from lake_assets.automation.jobs import DAILY_JOB_NAME
from lake_assets.config import PipelineConfig

FILE_DROP_SENSOR_NAME = "file_drop_sensor"


def _read_cursor(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(seen, waiting) from the cursor text, accepting the older flat `{path: signature}` form."""
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("seen"), dict):
        return dict(data["seen"]), dict(data.get("waiting") or {})
    return dict(data), {}


def _write_cursor(seen: dict[str, str], waiting: dict[str, str]) -> str:
    return json.dumps({"seen": seen, "waiting": waiting}, sort_keys=True)


def build_file_drop_sensor(config: PipelineConfig) -> SensorDefinition:
    partitions = daily_partitions(config)

    @_sensor(
        name=FILE_DROP_SENSOR_NAME,
        job_name=DAILY_JOB_NAME,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="New files in the file-drop locations launch the daily job for their day.",
    )
    def file_drop_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        files = list_dropped_files(config)
        if context.cursor is None:
            if not config.sensor.ingest_existing_on_first_tick:
                return SensorResult(
                    skip_reason=SkipReason(
                        f"baseline: {len(files)} files already present are recorded as seen, not ingested "
                        "(set sensor.ingest_existing_on_first_tick to ingest them)"
                    ),
                    cursor=_write_cursor({f.path: f.signature for f in files}, {}),
                )
            held = held_by_lake(config, files)
            seen = {f.path: f.signature for f in files if f in held}
            waiting: dict[str, str] = {}
        else:
            seen, waiting = _read_cursor(context.cursor)
        current = {f.path for f in files}
        waiting = {path: signature for path, signature in waiting.items() if path in current}
        by_day: dict[str, list[DroppedFile]] = {}
        for dropped in files:
            if seen.get(dropped.path) == dropped.signature:
                continue
            if partitions.has_partition_key(dropped.day):
                by_day.setdefault(dropped.day, []).append(dropped)
                waiting.pop(dropped.path, None)
            elif waiting.get(dropped.path) != dropped.signature:
                # Warned once; it launches its day on the first tick after the day becomes a partition.
                waiting[dropped.path] = dropped.signature
                context.log.warning(
                    f"{dropped.path}: day {dropped.day} is not a partition (before start_date "
                    f"{config.start_date}, or not complete yet); it runs once the day is a partition"
                )
        next_seen = {**seen, **{f.path: f.signature for day in by_day.values() for f in day}}
        cursor = _write_cursor(next_seen, waiting)
        requests = [
            RunRequest(
                run_key=_run_key(day, day_files),
                partition_key=day,
                tags={"lake/trigger": "file_drop", "lake/files": ", ".join(f.path for f in day_files)[:4000]},
            )
            for day, day_files in sorted(by_day.items())
        ]
        if not requests:
            return SensorResult(skip_reason=SkipReason("no new files"), cursor=cursor)
        return SensorResult(run_requests=requests, cursor=cursor)

    return file_drop_sensor


def _run_key(day: str, files: list[DroppedFile]) -> str:
    digest = hashlib.sha256("\n".join(f"{f.path}|{f.signature}" for f in files).encode()).hexdigest()[:16]
    return f"{day}:{digest}"
