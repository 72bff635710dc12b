"""The daily partitioned job over the whole graph and the schedule that launches it.

Grain: one run per daily partition (the unpartitioned dimensions run inside it and apply the days
not yet applied). Order comes from the asset dependencies: ingest -> standardize -> mask ->
star_schema -> warehouse, with each asset's checks right after the asset.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
)
from dagster import define_asset_job as _define_asset_job
from dagster import schedule as _schedule

from lake_assets.assets.partitions import daily_partitions
from lake_assets.automation.peak_memory import PEAK_MEMORY_HOOKS
from lake_assets.config import PipelineConfig

DAILY_JOB_NAME = "daily_lake_job"
DAILY_SCHEDULE_NAME = "daily_lake_schedule"
# Run monitoring (dagster.yaml) stops a run carrying this tag once it is older than the value.
MAX_RUNTIME_TAG = "dagster/max_runtime"


def build_daily_job(config: PipelineConfig):  # the type define_asset_job returns is not exported by Dagster
    return _define_asset_job(
        DAILY_JOB_NAME,
        # Partitioning is inferred from the assets (daily; the dimensions run inside each day's run).
        selection=AssetSelection.all(),
        description="Every asset for one day: ingest -> standardize -> mask -> star_schema -> warehouse, "
        "with the quality checks of each asset.",
        tags={MAX_RUNTIME_TAG: str(config.schedule.max_runtime_seconds)},
        hooks=PEAK_MEMORY_HOOKS,  # the run's peak memory, as a run tag (peak_memory.py)
    )


def build_daily_schedule(config: PipelineConfig) -> ScheduleDefinition:
    """At `schedule.cron` in `schedule.timezone`, run the latest complete day (at 02:00: yesterday).

    A custom schedule rather than `build_schedule_from_partitioned_job`, which refuses a free cron
    for time-partitioned jobs; the run key is the day, so a tick evaluated twice launches once.
    """
    partitions = daily_partitions(config)
    zone = ZoneInfo(config.schedule.timezone)

    @_schedule(
        name=DAILY_SCHEDULE_NAME,
        job_name=DAILY_JOB_NAME,
        cron_schedule=config.schedule.cron,
        execution_timezone=config.schedule.timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"{config.schedule.cron} ({config.schedule.timezone}): the latest complete day.",
    )
    def daily_lake_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        now = context.scheduled_execution_time or datetime.now(tz=zone)
        # Partitions are days in the schedule's zone: the latest complete one is the day before "now".
        day = (now.astimezone(zone).date() - timedelta(days=1)).isoformat()
        if not partitions.has_partition_key(day):
            return SkipReason(f"no complete day since start_date {config.start_date} yet (latest: {day})")
        return RunRequest(run_key=day, partition_key=day, tags={"lake/trigger": "schedule"})

    return daily_lake_schedule
