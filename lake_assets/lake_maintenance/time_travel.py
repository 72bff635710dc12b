"""Time travel over a lake table's history, for audits and for `lake-restore`.

A table's committed states are its metadata files: the current one and those in its metadata log
(Iceberg keeps the last `write.metadata.previous-versions-max`, default 100). Each holds the current
snapshot of that moment and the table properties, among them the per-partition commit records.
Nothing here changes a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lake_assets.resources.lake_storage import SNAPSHOT_BATCH, LakeDataNotFound, LakeStorage


class RestoreError(ValueError):
    """The requested state cannot be restored (unknown, expired, or never committed); names the table."""


@dataclass(frozen=True)
class TableState:
    """One committed state of a table: the metadata file, when it was written, its current snapshot."""

    metadata_file: str
    timestamp_ms: int
    snapshot_id: int | None

    @property
    def committed_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc)


def load_lake_table(lake: LakeStorage, key_path: Sequence[str]) -> Any:
    """The pyiceberg table of a lake key; raises `LakeDataNotFound` naming it if it does not exist."""
    table = lake.load_table(key_path)
    if table is None:
        raise LakeDataNotFound(f"lake table {'/'.join(key_path)} does not exist in the catalog")
    return table


def table_states(table: Any) -> list[TableState]:
    """Every committed state still on record, oldest first (the metadata log, then the current state)."""
    from pyiceberg.serializers import FromInputFile

    states = []
    for entry in table.metadata.metadata_log:
        try:
            metadata = FromInputFile.table_metadata(table.io.new_input(entry.metadata_file))
        except FileNotFoundError:  # removed by hand; retention keeps every logged file
            continue
        states.append(TableState(entry.metadata_file, entry.timestamp_ms, metadata.current_snapshot_id))
    states.append(TableState(table.metadata_location, table.metadata.last_updated_ms,
                             table.metadata.current_snapshot_id))
    return states


def resolve_state(table: Any, snapshot_id: int | None = None, as_of: datetime | None = None) -> TableState:
    """The committed state to restore: the newest one whose snapshot is `snapshot_id`, or the one
    current at `as_of`."""
    name = ".".join(table.name())
    states = table_states(table)
    if (snapshot_id is None) == (as_of is None):
        raise ValueError("give exactly one of snapshot_id and as_of")
    if snapshot_id is not None:
        matching = [s for s in states if s.snapshot_id == snapshot_id]
        if not matching:
            known = table.metadata.snapshot_by_id(snapshot_id) is not None
            raise RestoreError(
                f"{name}: snapshot {snapshot_id} " + (
                    "was never a committed state of the table (it is an intermediate step of a write, or its "
                    "metadata file has left the metadata log); see lake-restore --show" if known else
                    "does not exist (expired by retention, or another table's); see lake-restore --show")
            )
        state = matching[-1]
    else:
        assert as_of is not None
        moment = int(as_of.timestamp() * 1000)
        earlier = [s for s in states if s.timestamp_ms <= moment]
        if not earlier:
            raise RestoreError(f"{name}: no committed state at {as_of.isoformat()}; the oldest on record is "
                               f"{states[0].committed_at.isoformat()}")
        state = earlier[-1]
    if state.snapshot_id is None:
        raise RestoreError(f"{name}: the table held no data at that point ({state.committed_at.isoformat()})")
    if table.metadata.snapshot_by_id(state.snapshot_id) is None:
        raise RestoreError(f"{name}: snapshot {state.snapshot_id} of {state.committed_at.isoformat()} has been "
                           "expired by retention (maintenance.snapshot_retention_days); it cannot be restored")
    return state


def snapshot_history(lake: LakeStorage, key_path: Sequence[str]) -> list[dict[str, Any]]:
    """Every snapshot of a table, oldest first: time, id, operation, batch, rows, whether it can be
    restored (it was a committed state) and whether it is current."""
    table = load_lake_table(lake, key_path)
    restorable = {s.snapshot_id for s in table_states(table)}
    rows = []
    for snapshot in table.metadata.snapshots:
        summary = snapshot.summary
        extra = summary.additional_properties if summary else {}
        rows.append({
            "snapshot_id": snapshot.snapshot_id,
            "committed_at": datetime.fromtimestamp(snapshot.timestamp_ms / 1000, timezone.utc).isoformat(),
            "operation": summary.operation.value if summary else "",
            "batch_id": extra.get(SNAPSHOT_BATCH, ""),
            "total_rows": int(extra.get("total-records", 0)),
            "restorable": snapshot.snapshot_id in restorable,
            "current": snapshot.snapshot_id == table.metadata.current_snapshot_id,
        })
    return rows


def read_as_of(lake: LakeStorage, key_path: Sequence[str], partition: str | None = None,
               snapshot_id: int | None = None, as_of: datetime | None = None) -> pa.Table:
    """Time travel for audits: a partition (or the whole table) as it was at a snapshot or a moment.

    Rows as lake_assets wrote them (the lake's hidden `ingest_date` dropped); nothing is changed.
    """
    table = load_lake_table(lake, key_path)
    if snapshot_id is None:
        snapshot_id = resolve_state(table, as_of=as_of).snapshot_id
    elif table.metadata.snapshot_by_id(snapshot_id) is None:
        raise RestoreError(f"{'.'.join(table.name())}: snapshot {snapshot_id} does not exist (expired?)")
    scan = table.scan(snapshot_id=snapshot_id, row_filter=lake._filter(partition, lake.partition_column(table)))
    files = [lake._fs_path(task.file.file_path) for task in scan.plan_files()]
    hidden = lake.hidden_columns(table)
    if not files:
        return lake._empty(table)
    data = pq.ParquetDataset(files, filesystem=lake.filesystem, partitioning=None).read()
    return data.drop_columns([c for c in hidden if c in data.column_names])
