"""When the jobs run and how failing steps are retried: the daily job (`schedule:`), the file-drop
sensor, lake retention (`maintenance:`), warehouse backups (`backups:`), `retries:`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lake_assets.config.base import StrictModel
from lake_assets.cron import checked_cron


class ScheduleConfig(StrictModel):
    """When the daily job runs; the Airflow export uses the same values."""

    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    max_runtime_seconds: int = Field(default=3 * 3600, gt=0, description="runs longer than this are stopped")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return checked_cron(value, "0 2 * * *")

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None
        return value


class SensorConfig(StrictModel):
    """The file-drop sensor (see docs/orchestration.md)."""

    ingest_existing_on_first_tick: bool = Field(
        default=False,
        description="first tick: launch the days of files already in the drop that the lake does not hold yet "
        "(default: only record them as seen; the schedule and backfills own history)",
    )


class MaintenanceConfig(StrictModel):
    """The daily `lake_retention` job: partition retention, snapshot expiry, orphan-file removal."""

    cron: str = Field(default="30 3 * * *", description="when the job runs, in schedule.timezone")
    snapshot_retention_days: int = Field(
        default=7, ge=1, description="snapshots older than this are expired (the current one always stays); "
        "it bounds how far back lake-restore and time travel reach"
    )
    orphan_min_age_hours: int = Field(
        default=24, ge=1, description="unreferenced files younger than this are kept: they may belong to a "
        "write still in flight"
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return ScheduleConfig._valid_cron(value)


class BackupConfig(StrictModel):
    """The daily `warehouse_backup` job: a dump of the warehouse into `<lake>/backups/warehouse/<day>/`."""

    cron: str = Field(default="0 4 * * *", description="when the job runs, in schedule.timezone")
    retention_days: int = Field(
        default=30, ge=1, description="dumps of days older than this are deleted by the job (the newest always stays)"
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return ScheduleConfig._valid_cron(value)


class RetriesConfig(StrictModel):
    """Retries of the steps a later attempt may fix (connection and throttling errors; data errors fail
    at once). See lake_assets/assets/retry.py."""

    max: int = Field(default=2, ge=0)
    delay_seconds: float = Field(default=300, ge=0, description="the first delay; the base of the backoff")
    backoff: Literal["exponential", "linear", "constant"] = Field(
        default="exponential", description="exponential: delay, 3 x delay, 7 x delay...; linear: delay x attempt"
    )
    jitter: Literal["plus_minus", "full", "none"] = Field(
        default="plus_minus", description="plus_minus: ± delay_seconds at random; full: 0 to the delay"
    )
