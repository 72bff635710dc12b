"""The file-drop sensor: a new (or re-delivered) file launches the daily job for its day, once.

Cursor: JSON {path: signature} of every file already seen. The first tick only records what is
already there (the schedule and backfills own history), so turning the sensor on never floods the
instance. Later ticks launch one run per affected day, with a run key made of that day's new files:
each file triggers exactly once even if the tick is evaluated again.
"""

import hashlib
import json

from dagster import DefaultSensorStatus, RunRequest, SensorDefinition, SensorEvaluationContext, SensorResult, SkipReason
from dagster import sensor as _sensor
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from lake_assets.assets.partitions import daily_partitions
from lake_assets.automation.file_drop import DroppedFile, list_dropped_files
from lake_assets.config import PipelineConfig

FILE_DROP_SENSOR_NAME = "file_drop_sensor"


def build_file_drop_sensor(config: PipelineConfig, job: UnresolvedAssetJobDefinition) -> SensorDefinition:
    partitions = daily_partitions(config)

    @_sensor(
        name=FILE_DROP_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="New files in the file-drop locations launch the daily job for their day.",
    )
    def file_drop_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        files = list_dropped_files(config)
        current = {f.path: f.signature for f in files}
        if context.cursor is None:
            return SensorResult(skip_reason=SkipReason(f"baseline: {len(files)} files already present"),
                                cursor=json.dumps(current, sort_keys=True))
        seen: dict[str, str] = json.loads(context.cursor)
        new = [f for f in files if seen.get(f.path) != f.signature]
        by_day: dict[str, list[DroppedFile]] = {}
        for dropped in new:
            if partitions.has_partition_key(dropped.day):
                by_day.setdefault(dropped.day, []).append(dropped)
            else:
                context.log.warning(f"{dropped.path}: day {dropped.day} is not a partition yet (or before start_date)")
        # Files for a day that is not a partition yet stay unseen, so they trigger once the day exists.
        next_seen = {**seen, **{f.path: f.signature for day in by_day.values() for f in day}}
        requests = [
            RunRequest(
                run_key=_run_key(day, day_files),
                partition_key=day,
                tags={"lake/trigger": "file_drop", "lake/files": ", ".join(f.path for f in day_files)[:4000]},
            )
            for day, day_files in sorted(by_day.items())
        ]
        if not requests:
            return SensorResult(skip_reason=SkipReason("no new files"), cursor=json.dumps(next_seen, sort_keys=True))
        return SensorResult(run_requests=requests, cursor=json.dumps(next_seen, sort_keys=True))

    return file_drop_sensor


def _run_key(day: str, files: list[DroppedFile]) -> str:
    digest = hashlib.sha256("\n".join(f"{f.path}|{f.signature}" for f in files).encode()).hexdigest()[:16]
    return f"{day}:{digest}"
