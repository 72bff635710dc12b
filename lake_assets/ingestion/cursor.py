"""The incremental high-water mark: durable in the raw partition's commit state, advanced only on commit.

A run for partition D reads a window of the source. Its start is the mark stored in the newest
committed partition before D: every row with `cursor >= mark` is read, and the rows that sit exactly
on the mark and whose key was already delivered (the mark's `boundary_keys`) are dropped. So:

* rows that share the boundary value but arrived after the previous read are not lost (`>=`);
* rows already delivered at the boundary are not delivered twice (key de-duplication);
* the new mark is stored in the same Iceberg commit that publishes the data, so a crash before the commit
  leaves the old mark and the next run re-reads; a rerun of D starts from the same mark and replaces D.

The window ends where the oldest committed partition after D started (its `start_cursor`): rows past
that mark belong to the later partition, so rerunning an older day never reads them again, and D's
new mark is exactly that start (the later partitions' marks are untouched). Without a later partition
the window is open.

The mark only moves over rows that were published. It is the maximum cursor of the published rows,
but never past the oldest quarantined row's cursor value: rows are only asked for by `cursor >= mark`,
so a quarantined row behind the mark would never be read again. When it holds the mark below the
newest published row, the boundary keys are the published rows on the held value only if that value
is the previous mark (they are known from the de-duplication pass); otherwise they are empty, and
the published rows from the held value on are delivered again by the next run (at-least-once: the
same version of a row may then be in two partitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

KEY_SEPARATOR = "\x1f"


@dataclass
class CursorState:
    column: str
    type: str  # int | float | decimal | timestamp | date | string
    value: str
    boundary_keys: list[str] = field(default_factory=list)

    def native(self) -> Any:
        """The mark as the Python value a driver binds (and rows compare against)."""
        if self.type == "int":
            return int(self.value)
        if self.type == "float":
            return float(self.value)
        if self.type == "decimal":
            return Decimal(self.value)
        if self.type == "timestamp":
            return datetime.fromisoformat(self.value)
        if self.type == "date":
            return date.fromisoformat(self.value)
        return self.value

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "type": self.type, "value": self.value, "boundary_keys": self.boundary_keys}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CursorState | None:
        if not data:
            return None
        return cls(data["column"], data["type"], data["value"], list(data.get("boundary_keys", [])))


def _serialize(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return "string", str(value)
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, float):
        return "float", repr(value)
    if isinstance(value, Decimal):
        return "decimal", str(value)
    if isinstance(value, datetime):
        return "timestamp", value.isoformat()
    if isinstance(value, date):
        return "date", value.isoformat()
    return "string", str(value)


def row_keys(table: pa.Table, key_columns: list[str], indices: list[int] | None = None) -> list[str]:
    """The key of each row (or of the rows at `indices`) as one string."""
    if indices is not None:
        table = table.take(pa.array(indices, pa.int64()))
    # A chunk of JSON records may lack a key field altogether: that key part is empty, as for a null.
    columns = [
        table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows for c in key_columns
    ]
    return [KEY_SEPARATOR.join("" if v is None else str(v) for v in values) for values in zip(*columns, strict=True)]


@dataclass
class CursorWindow:
    """What a run may read: from `start` (None: from the beginning) up to `end` (None: open).

    `closed` means a later partition started from no mark at all (a full load), so it holds every row
    and this run must read none.
    """

    start: CursorState | None
    end: CursorState | None = None
    closed: bool = False


class CursorTracker:
    """Filters one extraction to its window and follows the mark over published and quarantined rows.

    Per chunk: `accept` drops the rows outside the window (already delivered at the start, or past
    the end), then the caller reports the rows it published (`published`) and quarantined (`held`).
    """

    def __init__(self, column: str, key_columns: list[str], window: CursorWindow) -> None:
        self.column = column
        self.key_columns = key_columns
        self.previous = window.start
        self.end = window.end
        self._previous_value = self.previous.native() if self.previous else None
        self._previous_keys = set(self.previous.boundary_keys) if self.previous else set()
        self._end_value = self.end.native() if self.end else None
        self._end_keys = set(self.end.boundary_keys) if self.end else set()
        self.max_value: Any = None
        self.max_keys: list[str] = []
        self.held_value: Any = None  # oldest cursor value among quarantined rows
        self.held_count = 0
        self._published_on_previous: set[str] = set()
        self.skipped = 0
        self.beyond_window = 0

    def accept(self, table: pa.Table, cursor_values: list[Any]) -> tuple[pa.Table, list[Any]]:
        """The rows of a chunk inside the window (and their cursor values)."""
        keys: list[str] | None = None
        drop: set[int] = set()
        if self._previous_value is not None and self._previous_keys:
            on_mark = [i for i, v in enumerate(cursor_values) if v is not None and v == self._previous_value]
            if on_mark:
                keys = row_keys(table, self.key_columns)
                delivered = {i for i in on_mark if keys[i] in self._previous_keys}
                self.skipped += len(delivered)
                drop |= delivered
        if self.end is not None:
            # Past the end: newer than the later partition's start, or on it but not among the rows
            # delivered before it (those the later partition read). Rows without a cursor value are
            # read only by open-ended loads.
            if keys is None and self._end_keys:
                keys = row_keys(table, self.key_columns)
            beyond = {
                i
                for i, v in enumerate(cursor_values)
                if i not in drop
                and (
                    v is None
                    or v > self._end_value
                    or (v == self._end_value and (keys is None or keys[i] not in self._end_keys))
                )
            }
            self.beyond_window += len(beyond)
            drop |= beyond
        if drop:
            keep = [i for i in range(table.num_rows) if i not in drop]
            table = table.take(pa.array(keep, pa.int64()))
            cursor_values = [cursor_values[i] for i in keep]
        return table, cursor_values

    def published(self, table: pa.Table, cursor_values: list[Any]) -> None:
        """Follow the maximum over rows that are committed with this batch."""
        present = [v for v in cursor_values if v is not None]
        if not present:
            return
        chunk_max = max(present)
        if self.max_value is None or chunk_max > self.max_value:
            self.max_value, self.max_keys = chunk_max, []
        if chunk_max == self.max_value:
            at_max = [i for i, v in enumerate(cursor_values) if v is not None and v == chunk_max]
            self.max_keys.extend(row_keys(table, self.key_columns, at_max))
        if self._previous_value is not None:
            on_previous = [i for i, v in enumerate(cursor_values) if v is not None and v == self._previous_value]
            if on_previous:
                self._published_on_previous.update(row_keys(table, self.key_columns, on_previous))

    def held(self, cursor_values: list[Any]) -> None:
        """Quarantined rows: the mark must not pass the oldest of them (rows without a value cannot hold it)."""
        present = [v for v in cursor_values if v is not None]
        if present:
            self.held_count += len(present)
            oldest = min(present)
            if self.held_value is None or oldest < self.held_value:
                self.held_value = oldest

    @property
    def held_back(self) -> bool:
        """True when quarantined rows keep the mark below the newest published row."""
        return self.end is None and self.held_value is not None and (
            self.max_value is None or self.held_value <= self.max_value
        )

    def state(self) -> CursorState | None:
        """The mark to store with this batch; the previous one when nothing newer may be marked."""
        if self.end is not None:
            return self.end  # the later partitions started there; they must keep reading from it
        value, keys = self.max_value, set(self.max_keys)
        if self.held_value is not None and value is not None and self.held_value < value:
            value, keys = self.held_value, set()  # keys on the held value are re-read (see module doc)
        if value is None:
            return self.previous
        if self._previous_value is not None and value < self._previous_value:
            return self.previous  # a source that ignores the mark must not move it back
        if self._previous_value is not None and value == self._previous_value:
            # Nothing newer may be marked: the mark stays, its key set grows by the rows published on it.
            keys = self._previous_keys | self._published_on_previous
            return CursorState(self.column, self.previous.type, self.previous.value, sorted(keys))  # type: ignore[union-attr]
        kind, serialized = _serialize(value)
        return CursorState(self.column, kind, serialized, sorted(keys))
