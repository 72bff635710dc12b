"""Lake retention: expired daily partitions, old snapshots and orphan files go, per table.

Grain: one plan per Iceberg table of the catalog, made from one read of the table (nothing changes
while planning), then applied exactly: `--dry-run` prints the same plan the real run executes.

* Partitions: a daily table (partitioned on `ingest_date`; curated/fact_sales on `sale_date`, so
  sales are kept by the day they happened, not the day they arrived) loses the days older than its
  layer's `retention_days`: day D goes when D < today - N days (a day exactly N days old stays). One Iceberg
  delete per table removes them, and the same transaction drops their `lake.commit.<D>` records.
  Unpartitioned tables (dimensions) never lose rows here.
* Snapshots: those committed before now - `maintenance.snapshot_retention_days` are expired, never
  the snapshot that is current when planning (nor a branch/tag head).
* Orphans: files under the table's location that no kept snapshot or metadata file references and
  that are older than `maintenance.orphan_min_age_hours` (younger ones may be a write in flight).
  The snapshot the partition delete replaces stays until a later run, so the files of expired days
  are physically removed by the first run after that snapshot is older than the snapshot retention.

Commits are optimistic: the snapshot expiry requires the table's current snapshot to be the one this
run left; if another writer committed meanwhile, expiry and orphan removal of that table are skipped
(reported) and the next run does them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import In

from lake_assets.config import LAKE_LAYERS, PipelineConfig, load_config
from lake_assets.lake_maintenance import lake_from_config, table_label
from lake_assets.lake_maintenance.orphans import OrphanFile, delete_files, find_orphans
from lake_assets.resources.lake_storage import COMMIT_PROPERTY, PARTITION_COLUMN, SNAPSHOT_BATCH, LakeStorage

RETENTION_SNAPSHOT = "lake.retention"  # snapshot summary property of a retention delete: the days it removed


@dataclass(frozen=True)
class ExpiredSnapshot:
    snapshot_id: int
    committed_at: datetime
    batch_id: str | None


@dataclass
class TablePlan:
    """What retention removes from one table (and, after `apply`, what it did)."""

    table: str  # namespace.table
    layer: str
    retention_days: int | None  # None: unpartitioned (or not a lake layer), no row deletion
    partition_column: str = PARTITION_COLUMN
    partitions: dict[str, int] = field(default_factory=dict)  # expired day -> rows it holds
    records_only: list[str] = field(default_factory=list)  # expired days with a commit record and no rows
    kept_partitions: int = 0
    current_snapshot_id: int | None = None
    snapshots: list[ExpiredSnapshot] = field(default_factory=list)
    orphans: list[OrphanFile] = field(default_factory=list)
    applied: bool = False
    skipped: str = ""  # why part of the plan was not applied

    @property
    def days(self) -> list[str]:
        return sorted({*self.partitions, *self.records_only})

    @property
    def empty(self) -> bool:
        return not (self.days or self.snapshots or self.orphans)

    def summary(self) -> dict[str, Any]:
        """A JSON-able report of the table's plan (run metadata, CLI output)."""
        return {
            "table": self.table,
            "retention_days": self.retention_days,
            "expired_partitions": {day: self.partitions.get(day, 0) for day in self.days},
            "kept_partitions": self.kept_partitions,
            "expired_snapshots": [s.snapshot_id for s in self.snapshots],
            "orphan_files": len(self.orphans),
            "orphan_bytes": sum(f.size for f in self.orphans),
            **({"skipped": self.skipped} if self.skipped else {}),
        }


def _is_daily(table: Any) -> bool:
    """Partitioned by a date column: `ingest_date`, or `sale_date` for curated/fact_sales."""
    return bool(table.spec().fields)


def lake_tables(lake: LakeStorage) -> list[Any]:
    """Every table of the lake's catalog, by namespace then name."""
    catalog = lake.catalog
    tables = []
    for namespace in sorted(catalog.list_namespaces()):
        for identifier in sorted(catalog.list_tables(namespace)):
            tables.append(catalog.load_table(identifier))
    return tables


def plan_table(lake: LakeStorage, table: Any, config: PipelineConfig, today: date, now: datetime,
               other_locations: Sequence[str] = ()) -> TablePlan:
    """What retention would remove from `table` on `today` at `now`; changes nothing."""
    layer = table.name()[0]
    days = config.retention_days.get(layer) if layer in LAKE_LAYERS and _is_daily(table) else None
    current = table.current_snapshot()
    plan = TablePlan(table=table_label(table), layer=layer, retention_days=days,
                     partition_column=lake.partition_column(table),
                     current_snapshot_id=current.snapshot_id if current else None)
    if days is not None:
        cutoff = (today - timedelta(days=days)).isoformat()
        prefix = f"{COMMIT_PROPERTY}."
        recorded = {k[len(prefix):] for k in table.properties if k.startswith(prefix)}
        if current is not None:
            for task in table.scan().plan_files():
                day = task.file.partition[0]
                day = day.isoformat() if isinstance(day, date) else _day_from_ordinal(day)
                if day < cutoff:
                    plan.partitions[day] = plan.partitions.get(day, 0) + task.file.record_count
        plan.records_only = sorted(d for d in recorded if d < cutoff and d not in plan.partitions)
        plan.kept_partitions = len({d for d in recorded if d >= cutoff})
    expire_before = int((now - timedelta(days=config.maintenance.snapshot_retention_days)).timestamp() * 1000)
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    for snapshot in table.metadata.snapshots:
        if snapshot.timestamp_ms < expire_before and snapshot.snapshot_id not in protected:
            summary = snapshot.summary.additional_properties if snapshot.summary else {}
            plan.snapshots.append(ExpiredSnapshot(
                snapshot.snapshot_id, datetime.fromtimestamp(snapshot.timestamp_ms / 1000, timezone.utc),
                summary.get(SNAPSHOT_BATCH),
            ))
    expired = {s.snapshot_id for s in plan.snapshots}
    keep = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id not in expired]
    margin = now - timedelta(hours=config.maintenance.orphan_min_age_hours)
    plan.orphans = find_orphans(lake, table, keep, margin, other_locations)
    return plan


def _day_from_ordinal(value: int) -> str:
    """An Iceberg date partition value (days since 1970-01-01) as YYYY-MM-DD."""
    return (date(1970, 1, 1) + timedelta(days=int(value))).isoformat()


def apply_plan(lake: LakeStorage, plan: TablePlan) -> TablePlan:
    """Execute `plan` exactly: delete its days, expire its snapshots, delete its orphan files."""
    from pyiceberg.table.update import AssertRefSnapshotId

    table = lake.catalog.load_table(plan.table)
    current = table.current_snapshot()
    if (current.snapshot_id if current else None) != plan.current_snapshot_id:
        plan.skipped = "the table changed since planning; the next run retries"
        return plan
    if plan.days:
        tx = table.transaction()
        if plan.partitions:
            # pyiceberg's In takes (term, values) in its own __init__, which mypy does not see behind the
            # one pydantic's dataclass_transform synthesizes from the model fields.
            tx.delete(In(lake.partition_column(table), list(plan.partitions)),  # type: ignore[call-arg, arg-type]
                      snapshot_properties={RETENTION_SNAPSHOT: ",".join(sorted(plan.partitions))})
        tx.remove_properties(*[f"{COMMIT_PROPERTY}.{day}" for day in plan.days])
        try:
            tx.commit_transaction()
        except CommitFailedException as exc:
            plan.skipped = f"another writer committed while the expired days were deleted ({exc}); the next run retries"
            return plan
        table = lake.catalog.load_table(plan.table)
    if plan.snapshots:
        expire = table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in plan.snapshots])
        # pyiceberg's expiry asserts nothing about the table; without this a restore committed in
        # between could make an expired snapshot current again, and it would be removed.
        head = table.current_snapshot()
        # The model populates fields by name too; mypy sees only the alias "snapshot-id".
        expire._requirements += (
            AssertRefSnapshotId(snapshot_id=head.snapshot_id if head else None, ref="main"),  # type: ignore[call-arg]
        )
        try:
            expire.commit()
        except CommitFailedException as exc:
            plan.skipped = f"another writer committed before the snapshot expiry ({exc}); the next run retries"
            return plan
    delete_files(lake, plan.orphans, table.location())
    plan.applied = True
    return plan


def run_retention(lake: LakeStorage, config: PipelineConfig, today: date, now: datetime,
                  dry_run: bool = False) -> list[TablePlan]:
    """Plan (and unless `dry_run`, apply) retention for every table of the lake, one table at a time."""
    tables = lake_tables(lake)
    locations = {table_label(t): t.location() for t in tables}
    plans = []
    for table in tables:
        label = table_label(table)
        nested = [loc for name, loc in locations.items()
                  if name != label and loc.rstrip("/").startswith(table.location().rstrip("/") + "/")]
        plan = plan_table(lake, table, config, today, now, nested)
        if not dry_run and not plan.empty:
            apply_plan(lake, plan)
        plans.append(plan)
    return plans


def today_in(config: PipelineConfig) -> date:
    """Today in the pipeline's time zone (the zone its daily partitions are counted in)."""
    return datetime.now(ZoneInfo(config.schedule.timezone)).date()


def format_plan(plans: Sequence[TablePlan], dry_run: bool) -> str:
    """Human-readable listing: every expired partition, snapshot and orphan file, per table."""
    verb = "would remove" if dry_run else "removed"
    lines = []
    for plan in plans:
        kept = "no row deletion (unpartitioned)" if plan.retention_days is None else \
            f"keeps {plan.retention_days} days ({plan.kept_partitions} partitions kept)"
        lines.append(f"{plan.table}: {kept}")
        if plan.skipped:
            lines.append(f"  skipped: {plan.skipped}")
        for day in plan.days:
            lines.append(f"  {verb} partition {plan.partition_column}={day} ({plan.partitions.get(day, 0)} rows)")
        for s in plan.snapshots:
            lines.append(f"  {verb} snapshot {s.snapshot_id} ({s.committed_at:%Y-%m-%d %H:%M:%S} UTC"
                         f"{', batch ' + s.batch_id if s.batch_id else ''})")
        for f in plan.orphans:
            lines.append(f"  {verb} orphan file {f.path} ({f.size} bytes, {f.modified:%Y-%m-%d %H:%M:%S} UTC)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lake-retention",
        description="Apply the lake's retention: delete daily partitions older than retention_days of their layer, "
        "expire snapshots older than maintenance.snapshot_retention_days, remove orphan files older than "
        "maintenance.orphan_min_age_hours. See docs/storage.md#retention.",
    )
    parser.add_argument("--config", help="pipeline config file (default: LAKE_CONFIG or the bundled sample)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    parser.add_argument("--today", type=date.fromisoformat,
                        help="the day retention counts from, YYYY-MM-DD (default: today in schedule.timezone)")
    parser.add_argument("--json", action="store_true", help="print one JSON report per table instead")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    lake = lake_from_config(config)
    plans = run_retention(lake, config, args.today or today_in(config), datetime.now(timezone.utc), args.dry_run)
    if args.json:
        print(json.dumps([p.summary() for p in plans], indent=2))
    else:
        print(format_plan(plans, args.dry_run))
    skipped = [p.table for p in plans if p.skipped]
    if skipped:
        print(f"lake-retention: not finished on {', '.join(skipped)} (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
