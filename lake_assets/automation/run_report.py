"""What happened in one run, read back from the Dagster instance's event log.

Grain: one report per run. Rows per layer are the sum of `dagster/row_count` over the run's
materializations, grouped by the first part of the asset key (raw, processed, masked, curated,
warehouse); stage time is first step start to last step end per layer; checks are the run's
asset-check evaluations. Nothing here touches the lake: it only reads what the assets reported.

Quality score: the share of the run's check evaluations that passed, weighted by severity (an ERROR
check counts `CHECK_WEIGHTS["ERROR"]` = 2, a WARN check 1), per run and per asset; None without checks.
`quality_score` is that computation alone, shared with the day's quality report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterEventType, DagsterInstance

from lake_assets.assets.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from lake_assets.automation.peak_memory import PEAK_MEMORY_TAG

CHECK_WEIGHTS = {"ERROR": 2, "WARN": 1}


def quality_score(evaluations: Iterable[tuple[bool, str]]) -> float | None:
    """Weighted share of `(passed, severity)` evaluations that passed, to 4 places; None for none.

    An unknown severity weighs as ERROR: a check is never made cheaper by a missing label.
    """
    passed = failed = 0
    for ok, severity in evaluations:
        weight = CHECK_WEIGHTS.get(severity, CHECK_WEIGHTS["ERROR"])
        if ok:
            passed += weight
        else:
            failed += weight
    return round(passed / (passed + failed), 4) if passed + failed else None


@dataclass
class RunReport:
    run_id: str
    job_name: str
    status: str
    partition: str | None
    ui_url: str
    duration_seconds: float | None = None
    rows_per_layer: dict[str, int] = field(default_factory=dict)
    quarantined_rows: int = 0
    seconds_per_stage: dict[str, float] = field(default_factory=dict)
    checks_passed: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)
    # "asset:check" -> "ERROR" or "WARN"; a check without one counts as ERROR.
    check_severities: dict[str, str] = field(default_factory=dict)
    failed_steps: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    headline: str | None = None  # overrides the subject's verdict (e.g. "running longer than 3600 s")
    quality_alerts: list[str] = field(default_factory=list)  # why this run is a quality alert, if it is
    # The lake after the run (measured by the caller, see metrics.py): bytes per namespace, and their
    # estimated monthly cost when a price is configured.
    lake_bytes_per_layer: dict[str, int] = field(default_factory=dict)
    storage_cost_per_month: float | None = None
    peak_memory_bytes: int | None = None  # the run's `lake/peak_memory_bytes` tag (peak_memory.py)
    memory_alert: str | None = None  # set when the peak is over the configured limit

    def _score(self, names: set[str] | None = None) -> float | None:
        evaluations = [(ok, self.check_severities.get(n, "ERROR"))
                       for ok, checks in ((True, self.checks_passed), (False, self.checks_failed))
                       for n in checks if names is None or n in names]
        return quality_score(evaluations)

    @property
    def error_checks_failed(self) -> list[str]:
        return [n for n in self.checks_failed if self.check_severities.get(n, "ERROR") == "ERROR"]

    def alert_on_memory(self, max_mb: int | None) -> str | None:
        """Why the run's peak memory calls for an alert: over `max_mb` MiB; None otherwise."""
        if max_mb is None or self.peak_memory_bytes is None or self.peak_memory_bytes <= max_mb * 2**20:
            return None
        return f"peak memory {self.peak_memory_bytes / 2**20:.0f} MiB is over the limit {max_mb} MiB"

    def alerts_on_quality(self, score_min: float | None) -> list[str]:
        """Why the run's quality calls for an alert: each failed ERROR check, and a score below `score_min`."""
        alerts = [f"ERROR check failed: {name}" for name in self.error_checks_failed]
        score = self.quality_score
        if score_min is not None and score is not None and score < score_min:
            alerts.append(f"quality score {score:.2%} is below the minimum {score_min:.2%}")
        return alerts

    @property
    def quality_score(self) -> float | None:
        return self._score()

    @property
    def quality_score_per_asset(self) -> dict[str, float]:
        names = {*self.checks_passed, *self.checks_failed}
        assets = sorted({n.rsplit(":", 1)[0] for n in names})
        return {a: score for a in assets if (score := self._score({n for n in names if n.startswith(a + ":")}))
                is not None}

    def subject(self) -> str:
        day = f" [{self.partition}]" if self.partition else ""
        if self.headline:
            return f"[lake_assets] {self.headline}: {self.job_name}{day} run {self.run_id[:8]}"
        if self.status == "FAILURE":
            return f"[lake_assets] FAILED: {self.job_name}{day} run {self.run_id[:8]}"
        if self.quality_alerts:
            return f"[lake_assets] quality alert: {self.job_name}{day} run {self.run_id[:8]}"
        if self.memory_alert:
            return f"[lake_assets] memory alert: {self.job_name}{day} run {self.run_id[:8]}"
        if self.checks_failed:
            return f"[lake_assets] quality checks failed: {self.job_name}{day} run {self.run_id[:8]}"
        return f"[lake_assets] succeeded: {self.job_name}{day} run {self.run_id[:8]}"

    def as_text(self) -> str:
        lines = [
            f"Run:       {self.run_id}",
            f"Job:       {self.job_name}",
            f"Status:    {self.status}",
            f"Partition: {self.partition or '-'}",
            f"Duration:  {self.duration_seconds:.1f} s" if self.duration_seconds is not None else "Duration:  -",
            f"Peak memory: {self.peak_memory_bytes / 2**20:.0f} MiB" if self.peak_memory_bytes else "Peak memory: -",
            f"Link:      {self.ui_url}",
        ]
        for step, message in self.failed_steps:
            lines += ["", f"Failed step: {step}", f"Error: {message}"]
        if self.error and not self.failed_steps:
            lines += ["", f"Error: {self.error}"]
        if self.rows_per_layer:
            lines += ["", "Rows per layer:"] + [f"  {k}: {v}" for k, v in sorted(self.rows_per_layer.items())]
            lines.append(f"  quarantined: {self.quarantined_rows}")
        if self.lake_bytes_per_layer:
            sizes = sorted(self.lake_bytes_per_layer.items())
            lines += ["", "Lake bytes per layer:"] + [f"  {k}: {v}" for k, v in sizes]
            if self.storage_cost_per_month is not None:
                lines.append(f"  estimated storage cost per month: {self.storage_cost_per_month:.2f}")
        if self.seconds_per_stage:
            lines += ["", "Seconds per stage:"] + [f"  {k}: {v:.1f}" for k, v in self.seconds_per_stage.items()]
        lines += ["", f"Checks passed: {len(self.checks_passed)}, failed: {len(self.checks_failed)}"]
        lines += [f"  FAILED {name}" for name in self.checks_failed]
        if self.quality_score is not None:
            lines.append(f"Quality score: {self.quality_score:.2%}")
        lines += [f"Quality alert: {alert}" for alert in self.quality_alerts]
        if self.memory_alert:
            lines.append(f"Memory alert: {self.memory_alert}")
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:  # a JSON document: nested values of every JSON type
        return {
            "run_id": self.run_id,
            "job": self.job_name,
            "status": self.status,
            "partition": self.partition,
            "url": self.ui_url,
            "duration_seconds": self.duration_seconds,
            "rows_per_layer": self.rows_per_layer,
            "quarantined_rows": self.quarantined_rows,
            "seconds_per_stage": self.seconds_per_stage,
            "checks_passed": self.checks_passed,
            "checks_failed": self.checks_failed,
            "quality_score": self.quality_score,
            "quality_score_per_asset": self.quality_score_per_asset,
            "quality_alerts": self.quality_alerts,
            "lake_bytes_per_layer": self.lake_bytes_per_layer,
            "storage_cost_per_month": self.storage_cost_per_month,
            "peak_memory_bytes": self.peak_memory_bytes,
            "memory_alert": self.memory_alert,
            "failed_steps": [{"step": s, "error": e} for s, e in self.failed_steps],
            "error": self.error,
            "headline": self.headline,
        }


def _int(value: object) -> int | None:
    raw = getattr(value, "value", value)
    return int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def _tag_int(tags: Mapping[str, str], name: str) -> int | None:
    value = tags.get(name, "")
    return int(value) if value.isdigit() else None


def _range(tags: Mapping[str, str]) -> str | None:
    """`first...last` of a run over a range of days (a single-run backfill), else None."""
    first, last = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    return f"{first}...{last}" if first and last else None


def build_run_report(instance: DagsterInstance, run_id: str, ui_base_url: str, error: str | None = None) -> RunReport:
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ValueError(f"run {run_id} is not in this Dagster instance")
    report = RunReport(
        run_id=run_id,
        job_name=run.job_name,
        status=run.status.value,
        partition=run.tags.get(PARTITION_TAG) or _range(run.tags),
        ui_url=f"{ui_base_url.rstrip('/')}/runs/{run_id}",
        error=error,
        peak_memory_bytes=_tag_int(run.tags, PEAK_MEMORY_TAG),
    )
    stats = instance.get_run_stats(run_id)
    if stats.start_time and stats.end_time:
        report.duration_seconds = round(stats.end_time - stats.start_time, 3)
    rows: dict[str, int] = defaultdict(int)
    stage_bounds: dict[str, list[float]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            layer = materialization.asset_key.path[0]
            count = _int(materialization.metadata.get("dagster/row_count"))
            if count is not None:
                rows[layer] += count
            quarantined = _int(materialization.metadata.get("quarantined_rows"))
            report.quarantined_rows += quarantined or 0
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            (report.checks_passed if evaluation.passed else report.checks_failed).append(name)
            report.check_severities[name] = getattr(evaluation.severity, "value", "ERROR")
        elif kind == DagsterEventType.STEP_FAILURE:
            error_info = event.step_failure_data.error
            message = error_info.message.strip() if error_info else event.message or ""
            report.failed_steps.append((event.step_key or "?", message))
        if event.step_key and kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
                                       DagsterEventType.STEP_FAILURE):
            stage = event.step_key.split("__")[0]
            bounds = stage_bounds.setdefault(stage, [entry.timestamp, entry.timestamp])
            bounds[0], bounds[1] = min(bounds[0], entry.timestamp), max(bounds[1], entry.timestamp)
    report.rows_per_layer = dict(rows)
    report.seconds_per_stage = {k: round(v[1] - v[0], 3) for k, v in stage_bounds.items()}
    return report
