"""The `lake_retention` job and its daily schedule (docs/storage.md#retention).

One op over the whole catalog: per table, expired partitions, snapshots and orphan files go (see
lake_maintenance/retention.py). The op's output metadata reports every table; the run log lists
every removed partition, snapshot and file. Its own schedule (`maintenance.cron` in
`schedule.timezone`, default 03:30) keeps it out of the daily graph's run.
"""

from datetime import date, datetime, timezone

from dagster import (
    Config,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    ScheduleDefinition,
    job,
    op,
)

from lake_assets.automation.day_schedule import build_day_schedule
from lake_assets.config import PipelineConfig
from lake_assets.lake_maintenance.retention import format_plan, run_retention, today_in
from lake_assets.resources.lake_storage import LakeStorage

RETENTION_JOB_NAME = "lake_retention"
RETENTION_SCHEDULE_NAME = "lake_retention_schedule"
RETENTION_OP = "apply_lake_retention"


class RetentionRunConfig(Config):
    today: str = ""  # YYYY-MM-DD the retention counts from; empty: today in schedule.timezone
    dry_run: bool = False


def build_retention_job(pipeline: PipelineConfig) -> JobDefinition:
    @op(name=RETENTION_OP, out=Out(dict), description="Delete expired partitions, expire snapshots, "
        "remove orphan files, for every lake table.")
    def apply_lake_retention(context: OpExecutionContext, config: RetentionRunConfig, lake: LakeStorage):
        today = date.fromisoformat(config.today) if config.today else today_in(pipeline)
        plans = run_retention(lake, pipeline, today, datetime.now(timezone.utc), dry_run=config.dry_run)
        context.log.info(f"lake retention for {today}{' (dry run)' if config.dry_run else ''}:\n"
                         f"{format_plan(plans, config.dry_run)}")
        for plan in plans:
            if plan.skipped:
                context.log.warning(f"{plan.table}: {plan.skipped}")
        report = {plan.table: plan.summary() for plan in plans}
        yield Output(report, metadata={
            "today": today.isoformat(),
            "dry_run": config.dry_run,
            "partitions_deleted": sum(len(p.days) for p in plans),
            "rows_deleted": sum(sum(p.partitions.values()) for p in plans),
            "snapshots_expired": sum(len(p.snapshots) for p in plans),
            "orphan_files_deleted": sum(len(p.orphans) for p in plans),
            "orphan_bytes_deleted": sum(sum(f.size for f in p.orphans) for p in plans),
            "tables_skipped": [p.table for p in plans if p.skipped],
            "tables": MetadataValue.json(report),
        })

    @job(name=RETENTION_JOB_NAME, description="Lake retention: expired partitions per layer (retention_days), "
         "old snapshots and orphan files (maintenance.*).")
    def lake_retention() -> None:
        apply_lake_retention()

    return lake_retention


def build_retention_schedule(config: PipelineConfig, retention_job: JobDefinition) -> ScheduleDefinition:
    """At `maintenance.cron` in `schedule.timezone`: retention counted from that day."""
    return build_day_schedule(name=RETENTION_SCHEDULE_NAME, job=retention_job, op=RETENTION_OP,
                              cron=config.maintenance.cron,
                              timezone=config.schedule.timezone, run_key_prefix="retention", what="lake retention")
