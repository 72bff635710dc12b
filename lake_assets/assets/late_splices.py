"""The hand-over from an SCD2 dimension that spliced late records into history to the sales fact whose
rows in the affected period must be resolved again.

A splice gives some of a member's sales another version key: those sold in the stretch the new
version (or a moved boundary) now covers. The dimension commits, in its lake commit state, the sale
dates those stretches span, one entry per commit that spliced:

    {"splices": {"last": N, "pending": [{"id": N, "first": "YYYY-MM-DD", "last": "YYYY-MM-DD"}, ...]}}

`id` grows with every dimension commit that spliced (also across a rebuild). The fact resolves the
keys of the rows in the pending dates it holds again, and records in its own commit state the highest
id of each dimension it did so for (`{"re_resolved": {"dim_customer": N, ...}}`, carried by every
later fact commit too). A dimension's next commit drops the entries the fact acknowledged, so the
list holds only what is still to do, whatever runs in between (a dimension run alone, a range run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from lake_assets.assets.fact_partitions import FACT_KEY, RUN_DAY
from lake_assets.resources.lake_storage import LakeStorage

SPLICES = "splices"
RE_RESOLVED = "re_resolved"
SPLICED_DIMENSIONS = ("dim_customer", "dim_product")


def sale_date_ranges(windows: Iterable[tuple[date, date]]) -> list[tuple[str, str]]:
    """Ranges of sale dates (inclusive), overlapping or adjacent ones merged; `windows`: the UTC dates of
    each half-open window's start and end (the end's date included: a window ending at midnight adds
    one date more than needed, which is resolved again to the same keys)."""
    ranges = sorted(windows)
    merged: list[list[date]] = []
    for first, last in ranges:
        if merged and first <= merged[-1][1] + timedelta(days=1):
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first.isoformat(), last.isoformat()) for first, last in merged]


def acknowledged(lake: LakeStorage, dimension: str) -> int:
    """The highest splice id of `dimension` the fact resolved its rows again for (0: none)."""
    return _acknowledged({d: info.state for d, info in lake.commits(FACT_KEY).items()}, dimension)


def _acknowledged(fact_states: Mapping[str, Mapping[str, Any]], dimension: str) -> int:
    return max((int((state.get(RE_RESOLVED) or {}).get(dimension, 0)) for state in fact_states.values()),
               default=0)


@dataclass(frozen=True)
class ReResolution:
    """What one fact run day does about the dimensions' splices.

    `dates`: committed sale dates whose rows it resolves again; `done`: {dimension: id} to record in
    its commit state; `waiting`: dates it leaves for later (see `re_resolution`)."""

    dates: list[str]
    done: dict[str, int]
    waiting: list[str]


def re_resolution(lake: LakeStorage, day: str, fact_states: Mapping[str, Mapping[str, Any]]) -> ReResolution:
    """The splices run day `day` of the fact takes on, given its table's commit states per sale date.

    All pending entries of both dimensions at once, or none: when a sale date to resolve again was last
    committed by a later run day, this day must not record itself as that date's last writer (the run
    day of a date's commit bounds where later deliveries are looked for), so everything waits for a
    run of that day or later, and nothing is acknowledged.
    """
    done = {d: _acknowledged(fact_states, d) for d in SPLICED_DIMENSIONS}
    newest, ranges = dict(done), []
    for dimension in SPLICED_DIMENSIONS:
        newest[dimension], found = pending_ranges(lake.partition_state(["curated", dimension]), done[dimension])
        ranges += found
    dates = dates_in(ranges, fact_states)
    waiting = [d for d in dates if str(fact_states[d].get(RUN_DAY, "")) > day]
    if waiting:
        return ReResolution(dates=[], done=done, waiting=waiting)
    return ReResolution(dates=dates, done=newest, waiting=[])


def next_splices(previous: Mapping[str, Any], ranges: list[tuple[str, str]], done: int) -> dict[str, Any]:
    """The dimension's `splices` state after a commit: `previous` (its last commit's state) without the
    entries up to `done` (acknowledged by the fact), plus one entry for `ranges` when there are any."""
    last = int((previous.get(SPLICES) or {}).get("last", 0))
    pending = [e for e in (previous.get(SPLICES) or {}).get("pending", []) if int(e["id"]) > done]
    if ranges:
        last += 1
        pending += [{"id": last, "first": first, "last": end} for first, end in ranges]
    return {"last": last, "pending": pending}


def pending_ranges(dimension_state: Mapping[str, Any], done: int) -> tuple[int, list[tuple[str, str]]]:
    """(highest id, sale-date ranges) of a dimension's entries not acknowledged yet (after `done`)."""
    entries = [e for e in (dimension_state.get(SPLICES) or {}).get("pending", []) if int(e["id"]) > done]
    return max((int(e["id"]) for e in entries), default=done), [(e["first"], e["last"]) for e in entries]


def dates_in(ranges: list[tuple[str, str]], dates: Iterable[str]) -> list[str]:
    """The sorted `dates` that fall in one of `ranges`."""
    return sorted(d for d in dates if any(first <= d <= last for first, last in ranges))
