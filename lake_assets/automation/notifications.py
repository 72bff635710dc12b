"""Run notifications: e-mail (and an optional webhook) on failure, a summary on completion.

- failure: run id, failed step(s), error, link to the run in the UI, plus what the run did so far.
- success: the same report (partition, rows per layer, checks passed/failed, duration) when
  `notify.on_completion` is on; a quality alert is always sent: an ERROR check failed, or the run's
  quality score is below `notify.quality_score_min`. A failed WARN check above the threshold only
  shows in the summary (and in the quality report). So is a memory alert: the run's peak memory is
  over `notify.peak_memory_max_mb`.
A delivery problem (SMTP down, webhook refusing) never hides the run failure: both are logged
together, to the sensor's log (visible in the UI tick) and to the `lake_assets.notifications` logger.
"""

import json
import logging
import time

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
)
from dagster import sensor as _sensor

from lake_assets.automation.channels import deliver
from lake_assets.automation.jobs import MAX_RUNTIME_TAG
from lake_assets.automation.metrics import lake_bytes_per_layer, record_run_metrics, storage_cost_per_month
from lake_assets.automation.run_report import RunReport, build_run_report
from lake_assets.config import PipelineConfig
from lake_assets.lake_maintenance import lake_from_config
from lake_assets.secrets import hide_url_passwords

LOGGER = logging.getLogger("lake_assets.notifications")
FAILURE_SENSOR_NAME = "notify_on_run_failure"
COMPLETION_SENSOR_NAME = "notify_on_run_success"
LONG_RUN_SENSOR_NAME = "alert_on_long_runs"


def notify_run(
    instance: DagsterInstance, run_id: str, config: PipelineConfig, error: str | None = None, *, force: bool = True
) -> tuple[RunReport, list[str]]:
    """Build the report of `run_id`, record its metrics and deliver it (unless `force` is off and there
    is no quality or memory alert)."""
    notify = config.notify
    report = build_run_report(instance, run_id, notify.ui_base_url, error)
    report.quality_alerts = report.alerts_on_quality(notify.quality_score_min)
    report.memory_alert = report.alert_on_memory(notify.peak_memory_max_mb)
    try:
        report.lake_bytes_per_layer = lake_bytes_per_layer(lake_from_config(config))
        report.storage_cost_per_month = storage_cost_per_month(
            report.lake_bytes_per_layer, config.monitoring.storage_price_per_gb_month)
    except Exception as exc:  # noqa: BLE001 - a lake that cannot be measured must not stop the notification
        LOGGER.warning("lake size not measured after run %s: %s: %s", run_id, type(exc).__name__,
                       hide_url_passwords(str(exc)))  # a catalog URL may carry its password
    record_run_metrics(instance, report)
    if not force and not report.quality_alerts and not report.memory_alert:
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
        _, problems = notify_run(context.instance, run_id, config, error)
        for problem in problems:
            context.log.error(f"{problem} -- the failure it was reporting: run {run_id}: {error}")

    @run_status_sensor(run_status=DagsterRunStatus.SUCCESS, name=COMPLETION_SENSOR_NAME,
                       default_status=DefaultSensorStatus.RUNNING,
                       description="Run summary on completion (notify.on_completion); quality alerts (a failed ERROR "
                       "check, a score below notify.quality_score_min) always.")
    def notify_on_run_success(context: RunStatusSensorContext) -> None:
        run_id = context.dagster_run.run_id
        report, problems = notify_run(context.instance, run_id, config, force=notify.on_completion)
        if report.checks_failed:
            context.log.warning(f"run {run_id}: quality checks failed: {', '.join(report.checks_failed)}")
        for problem in problems:
            context.log.error(f"{problem} -- while reporting run {run_id}")

    @_sensor(name=LONG_RUN_SENSOR_NAME, minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
             description="Alert once per run that runs longer than its dagster/max_runtime tag "
             "(schedule.max_runtime_seconds); run monitoring then stops it.")
    def alert_on_long_runs(context: SensorEvaluationContext) -> SkipReason:
        alerted: set[str] = set(json.loads(context.cursor or "[]"))
        running = context.instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        still_running, now, sent = set(), time.time(), []
        for record in running:
            run = record.dagster_run
            still_running.add(run.run_id)
            limit = float(run.tags.get(MAX_RUNTIME_TAG, config.schedule.max_runtime_seconds))
            if record.start_time is None or now - record.start_time <= limit or run.run_id in alerted:
                continue
            report = build_run_report(context.instance, run.run_id, notify.ui_base_url)
            report.headline = f"running longer than {limit:g} s"
            report.duration_seconds = round(now - record.start_time, 1)
            for problem in deliver(report, notify):
                context.log.error(f"{problem} -- while alerting on long run {run.run_id}")
            context.log.warning(f"run {run.run_id} has run {now - record.start_time:.0f} s (limit {limit:g} s)")
            alerted.add(run.run_id)
            sent.append(run.run_id)
        # Only runs still going need remembering: the cursor stays small.
        context.update_cursor(json.dumps(sorted(alerted & still_running)))
        return SkipReason(f"alerted on {sent}" if sent else f"{len(still_running)} runs in progress, none too long")

    return [notify_on_run_failure, notify_on_run_success, alert_on_long_runs]
