"""The latest outcome of every asset check for one day, read from the Dagster instance's event log.

Grain: one `CheckOutcome` per check (asset key + check name) that was evaluated in a run tagged with
the day's partition; when several runs of the day evaluated a check, the newest run's evaluation wins
(a re-run of a check alone replaces what the day's job found). The one reader of "latest outcome per
check per day": the Airflow quality gate and the quality report both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, RunsFilter

from lake_assets.assets.partitions import PARTITION_TAG


@dataclass(frozen=True)
class CheckOutcome:
    """One evaluation of one check: its verdict, severity and metadata as plain values."""

    asset: str  # "processed/sale"
    check: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    run_id: str
    timestamp: float
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.asset}:{self.check}"

    @property
    def layer(self) -> str:
        """The first part of the asset key (raw, processed, masked, curated, warehouse)."""
        return self.asset.split("/")[0]


def latest_check_outcomes(instance: DagsterInstance, day: str) -> dict[str, CheckOutcome]:
    """{"asset:check": outcome} from the newest run of `day` that evaluated each check."""
    outcomes: dict[str, CheckOutcome] = {}
    for run in instance.get_runs(RunsFilter(tags={PARTITION_TAG: day})):  # newest first
        run_outcomes: dict[str, CheckOutcome] = {}
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            event = entry.dagster_event
            if event is None:  # of_type selects Dagster events only; a None here is a broken event log
                raise ValueError(f"run {run.run_id}: a check evaluation entry carries no Dagster event")
            evaluation = event.asset_check_evaluation_data
            outcome = CheckOutcome(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                passed=evaluation.passed,
                severity=getattr(evaluation.severity, "value", "ERROR"),
                run_id=run.run_id,
                timestamp=entry.timestamp,
                metadata={key: getattr(value, "value", value) for key, value in evaluation.metadata.items()},
            )
            run_outcomes[outcome.name] = outcome  # a check evaluated twice in one run: its last word
        for name, outcome in run_outcomes.items():
            outcomes.setdefault(name, outcome)
    return outcomes
