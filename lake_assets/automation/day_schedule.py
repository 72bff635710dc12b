"""A daily schedule for a single-op maintenance job that counts from the day it runs in.

Grain: one run per tick; the run key is `<prefix>-<day>`, so a tick evaluated twice launches once.
The day is the tick's date in `schedule.timezone` and reaches the op as its `today` config.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)


def build_day_schedule(
    *, name: str, job: JobDefinition, op: str, cron: str, timezone: str, run_key_prefix: str, what: str
) -> ScheduleDefinition:
    zone = ZoneInfo(timezone)

    @schedule(name=name, job=job, cron_schedule=cron, execution_timezone=timezone,
              default_status=DefaultScheduleStatus.RUNNING, description=f"{cron} ({timezone}): {what}.")
    def day_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        now = context.scheduled_execution_time or datetime.now(tz=zone)
        day = now.astimezone(zone).date().isoformat()
        return RunRequest(run_key=f"{run_key_prefix}-{day}", run_config={"ops": {op: {"config": {"today": day}}}})

    return day_schedule
