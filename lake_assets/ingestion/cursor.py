"""The incremental high-water mark: durable in the raw partition's manifest, advanced only on commit.

A run for partition D starts from the cursor stored in the newest committed partition before D, reads
every row with `cursor >= high-water mark`, and drops the rows that sit exactly on the mark and whose
key was already delivered (the mark's `boundary_keys`). So:

* rows that share the boundary value but arrived after the previous read are not lost (`>=`);
* rows already delivered at the boundary are not delivered twice (key de-duplication);
* the new mark is written in the same manifest that publishes the data, so a crash before the commit
  leaves the old mark and the next run re-reads; a rerun of D starts from the same mark and replaces D.
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
    columns = [table.column(c).to_pylist() for c in key_columns]
    return [KEY_SEPARATOR.join("" if v is None else str(v) for v in values) for values in zip(*columns, strict=True)]


class CursorTracker:
    """Follows the maximum cursor value of one extraction and filters the previous boundary rows."""

    def __init__(self, column: str, key_columns: list[str], previous: CursorState | None) -> None:
        self.column = column
        self.key_columns = key_columns
        self.previous = previous
        self._previous_value = previous.native() if previous else None
        self._previous_keys = set(previous.boundary_keys) if previous else set()
        self.max_value: Any = None
        self.max_keys: list[str] = []
        self.skipped = 0

    def accept(self, table: pa.Table, cursor_values: list[Any]) -> pa.Table:
        """Drop already-delivered boundary rows from a chunk, then follow its maximum."""
        if self._previous_value is not None and self._previous_keys:
            on_mark = [i for i, v in enumerate(cursor_values) if v is not None and v == self._previous_value]
            if on_mark:
                keys = row_keys(table, self.key_columns, on_mark)
                drop = {i for i, key in zip(on_mark, keys, strict=True) if key in self._previous_keys}
                if drop:
                    self.skipped += len(drop)
                    keep = [i for i in range(table.num_rows) if i not in drop]
                    table = table.take(pa.array(keep, pa.int64()))
                    cursor_values = [cursor_values[i] for i in keep]
        present = [v for v in cursor_values if v is not None]
        if present:
            chunk_max = max(present)
            if self.max_value is None or chunk_max > self.max_value:
                self.max_value, self.max_keys = chunk_max, []
            if chunk_max == self.max_value:
                at_max = [i for i, v in enumerate(cursor_values) if v is not None and v == chunk_max]
                self.max_keys.extend(row_keys(table, self.key_columns, at_max))
        return table

    def state(self) -> CursorState | None:
        """The mark to store with this batch; the previous one when nothing newer arrived."""
        if self.max_value is None:
            return self.previous
        if self._previous_value is not None and self.max_value < self._previous_value:
            return self.previous  # a source that ignores the mark must not move it back
        if self._previous_value is not None and self.max_value == self._previous_value:
            # Only boundary rows arrived: the mark stays, its key set grows.
            keys = sorted(self._previous_keys | set(self.max_keys))
            return CursorState(self.column, self.previous.type, self.previous.value, keys)  # type: ignore[union-attr]
        kind, value = _serialize(self.max_value)
        return CursorState(self.column, kind, value, sorted(set(self.max_keys)))
