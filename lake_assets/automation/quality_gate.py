"""Quality gate for one day: exit 1 if the latest evaluation of any asset check for that day failed.

    python -m lake_assets.automation.quality_gate --partition 2024-01-01

Used as the `data_quality_checks` task of the exported Airflow DAG: the checks themselves run with
their assets during materialization (recorded in the Dagster instance at DAGSTER_HOME); this reads
the newest outcome of each check over the runs of that day and fails if one failed or none ran.
"""

from __future__ import annotations

import argparse
import sys

from dagster import DagsterInstance

from lake_assets.automation.quality_outcomes import latest_check_outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lake_assets.automation.quality_gate", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--partition", required=True, help="the day, YYYY-MM-DD")
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        outcomes = latest_check_outcomes(instance, args.partition)
    failed = sorted(name for name, outcome in outcomes.items() if not outcome.passed)
    if not outcomes:
        print(f"no asset check ran for {args.partition} in this Dagster instance (is DAGSTER_HOME shared?)")
        return 1
    for name in failed:
        print(f"FAILED {name}")
    print(f"{args.partition}: {len(outcomes) - len(failed)} checks passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
