"""What the lake IO manager exchanges with a step that runs over a range of days (a single-run
backfill, see `assets/day_range.py`).

* `DayInputs`, loaded for an input over several daily partitions: one value per day, each read only
  when the step asks for its day and exactly as a one-day run loads it (the same columns, the same
  types: a day delivered before a column was added reads without it, as it always did).
* `StoredDays`, the output of such a step: each day was committed during the step, oldest first, by
  the IO manager's own write (`parquet_lake.store_output`), because a day's work may read what the
  day before it committed (a raw cursor, the fact's sale dates). The IO manager records the range
  and stores nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DayInputs:
    """An input over `days` (oldest first); `day(d)` loads partition `d` the way a one-day run does."""

    days: tuple[str, ...]
    load: Callable[[str], Any]
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def day(self, day: str) -> Any:
        if day not in self.days:
            raise KeyError(f"{day} is not one of this input's days ({self.days[0]}...{self.days[-1]})")
        if day not in self._loaded:
            self._loaded[day] = self.load(day)
        return self._loaded[day]


def for_day(value: Any, day: str) -> Any:
    """`value` as a one-day step sees it: its day's partition of a `DayInputs`, else `value` itself
    (an unpartitioned input, or a one-day run's input)."""
    return value.day(day) if isinstance(value, DayInputs) else value


@dataclass(frozen=True)
class StoredDays:
    """Days a step already committed to one lake table: {day: rows stored}, oldest first."""

    rows_by_day: Mapping[str, int]
