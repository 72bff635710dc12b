"""Run notifications: e-mail (and an optional webhook) on failure, a summary on completion.

- failure: run id, failed step(s), error, link to the run in the UI, plus what the run did so far.
- success: the same report (partition, rows per layer, checks passed/failed, duration) when
  `notify.on_completion` is on; a run whose quality checks failed is always reported (quality alert).
A delivery problem (SMTP down, webhook refusing) never hides the run failure: both are logged
together, to the sensor's log (visible in the UI tick) and to the `lake_assets.notifications` logger.
"""

import logging

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    run_failure_sensor,
    run_status_sensor,
)

from lake_assets.automation.channels import deliver
from lake_assets.automation.run_report import RunReport, build_run_report
from lake_assets.config import NotifyConfig, PipelineConfig

LOGGER = logging.getLogger("lake_assets.notifications")
FAILURE_SENSOR_NAME = "notify_on_run_failure"
COMPLETION_SENSOR_NAME = "notify_on_run_success"


def notify_run(
    instance: DagsterInstance, run_id: str, notify: NotifyConfig, error: str | None = None, *, force: bool = True
) -> tuple[RunReport, list[str]]:
    """Build the report of `run_id` and deliver it (unless `force` is off and nothing is wrong)."""
    report = build_run_report(instance, run_id, notify.ui_base_url, error)
    if not force and not report.checks_failed:
        return report, []
    problems = deliver(report, notify)
    for problem in problems:
        LOGGER.error("%s -- while notifying: %s", problem, report.subject())
    return report, problems


def build_notification_sensors(config: PipelineConfig) -> list[SensorDefinition]:
    notify = config.notify

    @run_failure_sensor(name=FAILURE_SENSOR_NAME, default_status=DefaultSensorStatus.RUNNING,
                        description="E-mail / webhook with run id, failed step, error and UI link.")
    def notify_on_run_failure(context: RunFailureSensorContext) -> None:
        run_id = context.dagster_run.run_id
        error = context.failure_event.message
        # Logged first and unconditionally: whatever happens to delivery, the failure is on record.
        context.log.error(f"run {run_id} ({context.dagster_run.job_name}) failed: {error}")
        LOGGER.error("run %s (%s) failed: %s", run_id, context.dagster_run.job_name, error)
        _, problems = notify_run(context.instance, run_id, notify, error)
        for problem in problems:
            context.log.error(f"{problem} -- the failure it was reporting: run {run_id}: {error}")

    @run_status_sensor(run_status=DagsterRunStatus.SUCCESS, name=COMPLETION_SENSOR_NAME,
                       default_status=DefaultSensorStatus.RUNNING,
                       description="Run summary on completion (notify.on_completion); quality alerts always.")
    def notify_on_run_success(context: RunStatusSensorContext) -> None:
        run_id = context.dagster_run.run_id
        report, problems = notify_run(context.instance, run_id, notify, force=notify.on_completion)
        if report.checks_failed:
            context.log.warning(f"run {run_id}: quality checks failed: {', '.join(report.checks_failed)}")
        for problem in problems:
            context.log.error(f"{problem} -- while reporting run {run_id}")

    return [notify_on_run_failure, notify_on_run_success]
