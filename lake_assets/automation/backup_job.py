"""The `warehouse_backup` job and its daily schedule (docs/bi.md#backups).

One op: dump the warehouse (pg_dump / mariadb-dump / SQLite's backup API) into
`<lake>/backups/warehouse/<day>/` with a manifest, then delete the backups older than
`backups.retention_days` (lake_maintenance/warehouse_backup.py). Its own schedule (`backups.cron` in
`schedule.timezone`, default 04:00) keeps it apart from the daily graph and the lake retention job.
A failed dump fails the run and deletes no older backup.
"""

from datetime import date

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
from lake_assets.lake_maintenance.retention import today_in
from lake_assets.lake_maintenance.warehouse_backup import backup_warehouse
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseResource

BACKUP_JOB_NAME = "warehouse_backup"
BACKUP_SCHEDULE_NAME = "warehouse_backup_schedule"
BACKUP_OP = "dump_warehouse"


class BackupRunConfig(Config):
    today: str = ""  # YYYY-MM-DD the backup is filed under and retention counts from; empty: today


def build_backup_job(pipeline: PipelineConfig) -> JobDefinition:
    @op(name=BACKUP_OP, out=Out(dict), description="Dump the warehouse into <lake>/backups/warehouse/<day>/ "
        "and delete backups older than backups.retention_days.")
    def dump_warehouse(context: OpExecutionContext, config: BackupRunConfig, lake: LakeStorage,
                       warehouse: WarehouseResource):
        today = date.fromisoformat(config.today) if config.today else today_in(pipeline)
        result = backup_warehouse(lake, warehouse, today, pipeline.backups.retention_days)
        manifest = result.manifest
        context.log.info(f"warehouse backup {result.day}: {manifest['file']} ({manifest['bytes']} bytes) in "
                         f"{result.location}; deleted backups of: {', '.join(result.deleted) or 'none'}")
        yield Output(manifest, metadata={
            "day": result.day,
            "location": result.location,
            "file": manifest["file"],
            "bytes": manifest["bytes"],
            "rows": sum(manifest["tables"].values()),
            "tables": MetadataValue.json(manifest["tables"]),
            "row_counts_exact": manifest["row_counts_exact"],
            "tool": manifest["tool"],
            "backups_deleted": result.deleted,
        })

    @job(name=BACKUP_JOB_NAME, description="Warehouse backup: a dump into the lake's backups area, "
         "old dumps deleted after backups.retention_days.")
    def warehouse_backup() -> None:
        dump_warehouse()

    return warehouse_backup


def build_backup_schedule(config: PipelineConfig, backup_job: JobDefinition) -> ScheduleDefinition:
    """At `backups.cron` in `schedule.timezone`: the backup of that day."""
    return build_day_schedule(name=BACKUP_SCHEDULE_NAME, job=backup_job, op=BACKUP_OP,
                              cron=config.backups.cron,
                              timezone=config.schedule.timezone, run_key_prefix="backup", what="warehouse backup")
