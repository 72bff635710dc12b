"""Orchestration: the daily job and its schedule, the lake retention and warehouse backup jobs and their
schedules, the file-drop sensor, run notifications.

`build_automation(config)` returns the jobs, schedules and sensors that `build_definitions` adds.
"""

from typing import Any

from dagster import AssetSpec, ScheduleDefinition, SensorDefinition

from lake_assets.automation.backup_job import build_backup_job, build_backup_schedule
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
) -> tuple[list[Any], list[ScheduleDefinition], list[SensorDefinition]]:
    """(jobs, schedules, sensors); the jobs are `define_asset_job` results, whose type Dagster does not export."""
    job = build_daily_job(config)
    retention = build_retention_job(config)
    backup = build_backup_job(config)
    return (
        [job, retention, backup],
        [build_daily_schedule(config), build_retention_schedule(config, retention),
         build_backup_schedule(config, backup)],
        [build_file_drop_sensor(config), *build_notification_sensors(config)],
    )
