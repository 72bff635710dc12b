"""Orchestration: the daily job and its schedule, the lake retention job and its schedule, the file-drop
sensor, run notifications.

`build_automation(config)` returns the jobs, schedules and sensors that `build_definitions` adds.
"""

from dagster import AssetSpec, JobDefinition, ScheduleDefinition, SensorDefinition
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from lake_assets.automation.jobs import DAILY_JOB_NAME, build_daily_job, build_daily_schedule
from lake_assets.automation.metrics import METRICS_SPEC
from lake_assets.automation.notifications import build_notification_sensors
from lake_assets.automation.retention_job import build_retention_job, build_retention_schedule
from lake_assets.automation.sensors import build_file_drop_sensor
from lake_assets.config import PipelineConfig

__all__ = ["DAILY_JOB_NAME", "METRICS_SPEC", "build_automation", "monitoring_assets"]


def monitoring_assets() -> list[AssetSpec]:
    """External assets the sensors report on (not materialized by any job)."""
    return [METRICS_SPEC]


def build_automation(
    config: PipelineConfig,
) -> tuple[list[UnresolvedAssetJobDefinition | JobDefinition], list[ScheduleDefinition], list[SensorDefinition]]:
    job = build_daily_job(config)
    retention = build_retention_job(config)
    return (
        [job, retention],
        [build_daily_schedule(config, job), build_retention_schedule(config, retention)],
        [build_file_drop_sensor(config, job), *build_notification_sensors(config)],
    )
