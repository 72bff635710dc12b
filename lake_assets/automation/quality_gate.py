"""Quality gate for one day: exit 1 if the latest evaluation of any asset check for that day failed.

    python -m lake_assets.automation.quality_gate --partition 2024-01-01

Used as the `data_quality_checks` task of the exported Airflow DAG: the checks themselves run with
their assets during materialization (recorded in the Dagster instance at DAGSTER_HOME); this reads
the newest outcome of each check over the runs of that day and fails if one failed or none ran.
"""

from __future__ import annotations

import argparse
import sys

from dagster import DagsterEventType, DagsterInstance, RunsFilter

from lake_assets.automation.run_report import PARTITION_TAG


def latest_check_outcomes(instance: DagsterInstance, day: str) -> dict[str, bool]:
    """{"asset:check": passed} from the newest run of `day` that evaluated each check."""
    outcomes: dict[str, bool] = {}
    for run in instance.get_runs(RunsFilter(tags={PARTITION_TAG: day})):  # newest first
        run_outcomes: dict[str, bool] = {}
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            run_outcomes[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = evaluation.passed
        for name, passed in run_outcomes.items():
            outcomes.setdefault(name, passed)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lake_assets.automation.quality_gate", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--partition", required=True, help="the day, YYYY-MM-DD")
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        outcomes = latest_check_outcomes(instance, args.partition)
    failed = sorted(name for name, passed in outcomes.items() if not passed)
    if not outcomes:
        print(f"no asset check ran for {args.partition} in this Dagster instance (is DAGSTER_HOME shared?)")
        return 1
    for name in failed:
        print(f"FAILED {name}")
    print(f"{args.partition}: {len(outcomes) - len(failed)} checks passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
