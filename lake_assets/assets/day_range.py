"""A daily step over a range of days (a single-run backfill): its one-day body run for each day, oldest
first, in one step of one run.

Grain: one call of the step's one-day body per day of the run. Guarantees:

* a one-day run is exactly the one-day body: its outputs go to the IO manager, its check results to
  Dagster, unchanged (the schedule and the sensors launch one day per run);
* in a range, each output the body yields for day D is committed to the lake as D's partition (one
  commit, the IO manager's own write `store_output`) before the body resumes, so D+1's work reads
  D's commits (a raw cursor, the fact's sale dates, a quarantine read back) as it would in a run of
  its own; D's materialization carries D's metadata (`add_asset_metadata(partition_key=D)`); the
  step's output is then `StoredDays`, which the IO manager records without storing anything;
* every day is judged: a check's results of the days are combined into the one evaluation Dagster
  records for a range (`combined_check`), failed when any day failed, naming those days;
* a day that fails fails the step at that day: the days before it are committed in the lake (a rerun
  replaces them, as re-running a day always does) but Dagster records no materialization for the
  step, and its downstream steps do not run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    Output,
)

from lake_assets.assets.partitions import run_days
from lake_assets.io_managers.parquet_lake import store_output
from lake_assets.io_managers.partition_range import StoredDays
from lake_assets.resources.lake_storage import LakeStorage

DayBody = Callable[[str], Iterable[Any]]
"""A step's work for one day: yields `Output`s and `AssetCheckResult`s as a one-day step does."""


def each_day(context: AssetExecutionContext, lake: LakeStorage, body: DayBody) -> Iterator[Any]:
    """Run `body` for every day of the run, oldest first (see the module docstring)."""
    days = run_days(context)
    if len(days) == 1:
        yield from body(days[0])
        return
    stored: dict[str, dict[str, int]] = {}
    checks: dict[str, dict[str, AssetCheckResult]] = {}
    for number, day in enumerate(days, start=1):
        context.log.info(f"day {day} ({number} of {len(days)})")
        for event in body(day):
            if isinstance(event, Output):
                key = context.asset_key_for_output(event.output_name)
                metadata = ({} if event.value is None
                            else store_output(lake, key.path, day, event.value, context.run.run_id))
                context.add_asset_metadata({**event.metadata, **metadata}, asset_key=key, partition_key=day)
                rows = metadata.get("dagster/row_count", metadata.get("rows_written", 0))
                stored.setdefault(event.output_name, {})[day] = int(rows)
            elif isinstance(event, AssetCheckResult):
                checks.setdefault(_check_id(event), {})[day] = event
            else:
                raise TypeError(f"each_day: a one-day body yields Outputs and AssetCheckResults, not "
                                f"{type(event).__name__}")
    for output_name, rows_by_day in stored.items():
        yield Output(StoredDays(rows_by_day), output_name=output_name)
    for by_day in checks.values():
        yield combined_check(by_day)


def _check_id(result: AssetCheckResult) -> str:
    return f"{result.asset_key.to_user_string() if result.asset_key else ''}:{result.check_name or ''}"


def combined_check(results_by_day: Mapping[str, AssetCheckResult]) -> AssetCheckResult:
    """One evaluation for a check judged on several days: passed when every day passed; its severity
    the gravest of the failed days'; metadata `days_checked`, `failed_days` and the metadata of the
    first failed day (of the last day when none failed), each key prefixed with that day. One day:
    that day's result, unchanged."""
    if len(results_by_day) == 1:
        return next(iter(results_by_day.values()))
    days = sorted(results_by_day)
    failed = [d for d in days if not results_by_day[d].passed]
    shown = failed[0] if failed else days[-1]
    grave = any(results_by_day[d].severity == AssetCheckSeverity.ERROR for d in failed)
    first = results_by_day[shown]
    description = None
    if failed:
        description = f"failed on {', '.join(failed)}" + (f"; {shown}: {first.description}" if first.description
                                                           else "")
    return AssetCheckResult(
        passed=not failed,
        asset_key=first.asset_key,
        check_name=first.check_name,
        severity=first.severity if not failed else AssetCheckSeverity.ERROR if grave else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "days_checked": len(days),
            "failed_days": MetadataValue.text(", ".join(failed) or "none"),
            **{f"{shown}/{name}": value for name, value in first.metadata.items()},
        },
    )


def each_day_check(context: AssetCheckExecutionContext, judge: Callable[[str], AssetCheckResult]) -> AssetCheckResult:
    """A standalone daily check over the run's days: `judge` on each day, oldest first, combined."""
    return combined_check({day: judge(day) for day in run_days(context)})
