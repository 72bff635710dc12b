"""Roll a lake table (or one day of it) back to an earlier committed state: `lake-restore`.

A table's committed states are its metadata files: the current one and those in its metadata log
(Iceberg keeps the last `write.metadata.previous-versions-max`, default 100). Each holds the current
snapshot AND the table properties of that moment, among them the per-partition commit records
(`lake.commit.<day>`: batch id, rows, the writer's state such as the ingestion cursor and file
fingerprints) that incremental ingestion and the dimensions read. A restore therefore makes that
state current again in ONE catalog transaction: the snapshot (`set_current_snapshot`, pyiceberg's
ManageSnapshots) and the commit records together, so data and records never disagree. The commit
requires the table's head to be unchanged since it was read; a concurrent writer makes it fail with
`CommitFailedException` and nothing changes.

`restore_partition` puts back one day only (a bad load of a day): it re-adds that day's files of the
old state and its commit record in one transaction, like a write of that day; other days keep theirs.

Snapshots written after the restored one stay in the table (a restore can be undone by restoring
the later snapshot) until retention expires them. A snapshot that was only an intermediate step of a
write (its delete before its add) was never a committed state and cannot be restored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyiceberg.exceptions import CommitFailedException

from lake_assets.config import load_config
from lake_assets.lake_maintenance import lake_from_config, parse_table_key
from lake_assets.lake_maintenance.time_travel import (
    RestoreError,
    TableState,
    load_lake_table,
    resolve_state,
    snapshot_history,
)
from lake_assets.resources.lake_storage import COMMIT_PROPERTY, SNAPSHOT_BATCH, LakeDataNotFound, LakeStorage


@dataclass
class RestoreResult:
    table: str
    from_snapshot: int | None
    to_snapshot: int
    state_time: datetime
    # partition ('' for an unpartitioned table) -> (batch id before, batch id after); None: no record
    partitions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    applied: bool = False

    def describe(self) -> str:
        verb = "restored" if self.applied else "would restore"
        lines = [f"{self.table}: {verb} snapshot {self.to_snapshot} (the table's state at "
                 f"{self.state_time:%Y-%m-%d %H:%M:%S.%f} UTC); current was {self.from_snapshot}"]
        for partition, (before, after) in sorted(self.partitions.items()):
            lines.append(f"  {partition or '(whole table)'}: batch {before or '-'} -> {after or '- (no commit)'}")
        if not self.partitions:
            lines.append("  commit records unchanged")
        return "\n".join(lines)


def _snapshot_of(state: TableState) -> int:
    """The snapshot of a state `resolve_state` returned (it raises rather than return one without)."""
    if state.snapshot_id is None:
        raise RestoreError(f"the state of {state.committed_at.isoformat()} has no snapshot to restore")
    return state.snapshot_id


def _commit_records(properties: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in properties.items() if k == COMMIT_PROPERTY or k.startswith(f"{COMMIT_PROPERTY}.")}


def _batch(raw: str | None) -> str | None:
    return None if raw is None else json.loads(raw).get("batch_id")


def restore_table(lake: LakeStorage, key_path: Sequence[str], snapshot_id: int | None = None,
                  as_of: datetime | None = None, dry_run: bool = False) -> RestoreResult:
    """Make the table's state at `snapshot_id` / `as_of` current: its snapshot and its commit records."""
    from pyiceberg.serializers import FromInputFile
    from pyiceberg.table.update.snapshot import ManageSnapshots

    table = load_lake_table(lake, key_path)
    state = resolve_state(table, snapshot_id, as_of)
    old = _commit_records(FromInputFile.table_metadata(table.io.new_input(state.metadata_file)).properties)
    now = _commit_records(table.properties)
    result = RestoreResult(table=".".join(table.name()), from_snapshot=table.metadata.current_snapshot_id,
                           to_snapshot=_snapshot_of(state), state_time=state.committed_at)
    for key in sorted({*old, *now}):
        if old.get(key) != now.get(key):
            partition = key[len(COMMIT_PROPERTY) + 1:]
            result.partitions[partition] = (_batch(now.get(key)), _batch(old.get(key)))
    if dry_run or (result.from_snapshot == result.to_snapshot and not result.partitions):
        return result
    tx = table.transaction()
    # Requires the main branch to still point where it pointed when the table was loaded.
    ManageSnapshots(tx).set_current_snapshot(snapshot_id=state.snapshot_id)
    gone = [k for k in now if k not in old]
    if gone:
        tx.remove_properties(*gone)
    changed = {k: v for k, v in old.items() if now.get(k) != v}
    if changed:
        tx.set_properties(changed)
    tx.commit_transaction()
    result.applied = True
    return result


def restore_partition(lake: LakeStorage, key_path: Sequence[str], partition: str, snapshot_id: int | None = None,
                      as_of: datetime | None = None, dry_run: bool = False) -> RestoreResult:
    """Put one day of a daily table back as it was at `snapshot_id` / `as_of`; other days keep their data.

    One transaction, like a write of that day: delete the day's current files, re-add the files the
    old state held (they are still on disk while that snapshot is not expired) and put back the
    day's commit record. The new snapshot carries the old batch id.
    """
    from pyiceberg.serializers import FromInputFile

    table = load_lake_table(lake, key_path)
    state = resolve_state(table, snapshot_id, as_of)
    prop = lake._property(partition)
    old = FromInputFile.table_metadata(table.io.new_input(state.metadata_file)).properties.get(prop)
    now = table.properties.get(prop)
    result = RestoreResult(table=".".join(table.name()), from_snapshot=table.metadata.current_snapshot_id,
                           to_snapshot=_snapshot_of(state), state_time=state.committed_at)
    if old != now:
        result.partitions[partition] = (_batch(now), _batch(old))
    if dry_run or old == now:
        return result
    row_filter = lake._filter(partition, lake.partition_column(table))
    files = [task.file.file_path for task in table.scan(snapshot_id=state.snapshot_id, row_filter=row_filter)
             .plan_files()]
    summary = {SNAPSHOT_BATCH: _batch(old) or f"restore-{state.snapshot_id}"}
    tx = table.transaction()
    if any(True for _ in table.scan(row_filter=row_filter).plan_files()):
        tx.delete(row_filter, snapshot_properties=summary)
    if files:
        tx.add_files(files, snapshot_properties=summary, check_duplicate_files=False)
    if old is None:
        tx.remove_properties(prop)
    else:
        tx.set_properties({prop: old})
    tx.commit_transaction()
    result.applied = True
    return result


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lake-restore",
        description="Roll a lake table back to an earlier committed state (its snapshot and its per-partition "
        "commit records, in one transaction), or list its snapshots. Then rerun the downstream assets of the "
        "affected days: see docs/storage.md#restore.",
    )
    parser.add_argument("--table", required=True,
                        help="asset key <layer>/<a>/<b> (raw/shop_files/sales) or Iceberg name raw.shop_files__sales")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--snapshot", type=int, help="restore the state whose current snapshot was this id")
    target.add_argument("--as-of", type=_moment,
                        help="restore the state current at this ISO timestamp (no offset: UTC), "
                        "e.g. 2024-01-02T09:00:00+01:00")
    target.add_argument("--show", action="store_true", help="list the table's snapshots and change nothing")
    parser.add_argument("--partition", metavar="YYYY-MM-DD",
                        help="restore only this day of a daily table (the other days keep their current data)")
    parser.add_argument("--config", help="pipeline config file (default: LAKE_CONFIG or the bundled sample)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    args = parser.parse_args(argv)
    lake = lake_from_config(load_config(args.config))
    key_path = parse_table_key(args.table)
    try:
        if args.show:
            for row in snapshot_history(lake, key_path):
                flags = ("current " if row["current"] else "") + ("" if row["restorable"] else "(not restorable)")
                print(f"{row['committed_at']}  {row['snapshot_id']}  {row['operation']:<9} "
                      f"batch={row['batch_id'] or '-'}  rows={row['total_rows']}  {flags}".rstrip())
            return 0
        if args.partition:
            result = restore_partition(lake, key_path, args.partition, snapshot_id=args.snapshot, as_of=args.as_of,
                                       dry_run=args.dry_run)
        else:
            result = restore_table(lake, key_path, snapshot_id=args.snapshot, as_of=args.as_of,
                                   dry_run=args.dry_run)
    except (RestoreError, LakeDataNotFound) as exc:
        print(f"lake-restore: {exc}", file=sys.stderr)
        return 2
    except CommitFailedException as exc:
        print(f"lake-restore: {args.table}: another writer committed while restoring ({exc}); nothing was "
              "changed. Check the table (--show) and run the restore again.", file=sys.stderr)
        return 3
    print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
