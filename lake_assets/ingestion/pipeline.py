"""DataIngestionPipeline: connect -> extract -> validate -> add metadata -> spool, for one source
table and one daily partition; the lake IO manager commits what it delivers.

Grain of the raw partition `raw/<source>/<table>/ingest_date=D`: one row per delivered record, every
value as text (see text.py), plus `_ingested_at`, `_source`, `_batch_id` and the origin
(`_source_file`, `_source_query` or `_source_url`).

Guarantees:
* Streaming: chunks go straight into a Parquet file in a spool outside the lake (`LakeStorage.spool`);
  memory holds one chunk. The ingestion writes nothing into the lake: it hands a `RawDelivery` over
  (`deliver`), and the lake IO manager's write (`io_managers/lake_store.store`) adopts the spooled
  files into the partition.
* Atomic and idempotent: the partition (data, and as its commit state the cursor, file fingerprints
  and column list) is published by one Iceberg commit; a crash before it leaves the previous snapshot
  and mark current (and a spool directory in no table). Running D again replaces D.
* Incremental (database / API): reads the window from the cursor of the newest committed partition
  before D up to where the oldest committed partition after D started (cursor.py), so rerunning an
  older day never re-reads what a later day holds; file sources skip the files already held by
  another committed partition.
* Bad rows go to `quarantine/raw/<source>/<table>/ingest_date=D` with the reason, committed (possibly
  empty) on every run, before the raw partition, so a rerun clears old rejects: the raw asset yields
  them to the lake IO manager, `run` stores them itself. The mark never passes a quarantined row. A
  delivery whose every row was quarantined commits no raw partition and fails (`IngestionError`).
* Schema drift against the previous committed partition is reported; policy `fail` aborts before
  anything is committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from lake_assets.config import (
    ApiSourceConfig,
    DatabaseSourceConfig,
    FileSourceConfig,
    SourceKindConfig,
    TableConfig,
)
from lake_assets.ingestion.api_source import APISource
from lake_assets.ingestion.cursor import CursorState, CursorTracker, CursorWindow
from lake_assets.ingestion.database_source import DatabaseSource
from lake_assets.ingestion.errors import IngestionError, SchemaDriftError, SourceUnavailable
from lake_assets.ingestion.file_source import FileSource, SourceFile
from lake_assets.ingestion.mapping import key_columns, mapping_conflicts
from lake_assets.ingestion.text import records_as_text
from lake_assets.ingestion.validation import REJECT_SCHEMA, RowValidator, reject_record
from lake_assets.ingestion.writer import ChunkWriter
from lake_assets.io_managers.lake_store import store
from lake_assets.io_managers.lake_write import LakeWrite
from lake_assets.resources.lake_storage import CommitInfo, LakeStorage, StagedBatch

Source = FileSource | DatabaseSource | APISource
# The lake layer (and Dagster group) of rejected rows, raw and processed alike.
QUARANTINE_LAYER = "quarantine"
_ROW_INDEX = "__lake_row_index"  # position of a row in its chunk while validation splits it


def raw_key(source_name: str, table_name: str) -> list[str]:
    return ["raw", source_name, table_name]


def quarantine_key(source_name: str, table_name: str) -> list[str]:
    return [QUARANTINE_LAYER, *raw_key(source_name, table_name)]


def make_source(source: SourceKindConfig, table: TableConfig) -> Source:
    if isinstance(source, DatabaseSourceConfig):
        return DatabaseSource(source, table)  # type: ignore[arg-type]
    if isinstance(source, ApiSourceConfig):
        return APISource(source, table)  # type: ignore[arg-type]
    return FileSource(source, table)  # type: ignore[arg-type]


def previous_commit(lake: LakeStorage, key: list[str], day: str) -> tuple[str, CommitInfo] | None:
    """The newest committed partition strictly before `day` (the one a run for `day` continues from)."""
    for partition, info in reversed(lake.commits(key).items()):
        if partition < day:
            return partition, info
    return None


def next_commit(lake: LakeStorage, key: list[str], day: str) -> tuple[str, CommitInfo] | None:
    """The oldest committed partition strictly after `day` (the one that bounds a rerun of `day`)."""
    for partition, info in lake.commits(key).items():
        if partition > day:
            return partition, info
    return None


def cursor_window(lake: LakeStorage, key: list[str], day: str, cursor_field: str) -> CursorWindow:
    """The cursor range a run for `day` reads (see cursor.py).

    Start: the mark of the newest committed partition before `day`. End: the mark the oldest committed
    partition after `day` started from (its `start_cursor`; for a commit without one, the mark of
    the partition before it). A later partition that started from nothing (a full
    load) holds every row, so the window is closed. A different cursor column means a full reload:
    the window is open.
    """

    def same_column(state: CursorState | None) -> CursorState | None:
        return state if state is not None and state.column == cursor_field else None

    before = previous_commit(lake, key, day)
    start = same_column(CursorState.from_json(before[1].state.get("cursor"))) if before else None
    after = next_commit(lake, key, day)
    if after is None:
        return CursorWindow(start)
    later_day, later = after
    if "start_cursor" in later.state:
        recorded = later.state["start_cursor"]
    else:
        behind = previous_commit(lake, key, later_day)
        recorded = behind[1].state.get("cursor") if behind else None
    end = CursorState.from_json(recorded)
    if end is None:
        own = CursorState.from_json(later.state.get("cursor"))
        if own is None or own.column != cursor_field:
            return CursorWindow(start)  # not incremental on this column then: nothing to bound by
        return CursorWindow(start, closed=True)
    if end.column != cursor_field:
        return CursorWindow(start)
    return CursorWindow(start, end)


def ingested_fingerprints(lake: LakeStorage, key: list[str], except_day: str | None = None) -> dict[str, set[str]]:
    """path -> fingerprints held by committed partitions (other than `except_day`)."""
    held: dict[str, set[str]] = {}
    for partition, info in lake.commits(key).items():
        if partition == except_day:
            continue
        for path, fingerprint in (info.state.get("files") or {}).items():
            held.setdefault(path, set()).add(fingerprint)
    return held


def pending_files(
    lake: LakeStorage, source: FileSourceConfig, table: TableConfig, day: str | None = None
) -> list[SourceFile]:
    """Files of a file-source table that no committed raw partition holds yet (same path and fingerprint).

    For the new-file sensor: each `SourceFile` has `.path`, `.fingerprint` (`size:mtime_ns` or
    `size:ETag`) and `.day` (the `{date}` it matched, None for patterns without `{date}`); run the raw
    asset for that day (or today). Restrict to one day with `day`.
    """
    held = ingested_fingerprints(lake, raw_key(source.name, table.name))
    files = FileSource(source, table).list_files(day)  # type: ignore[arg-type]
    return [f for f in files if f.fingerprint not in held.get(f.path, set())]


@dataclass
class IngestionResult:
    rows: int
    quarantined: int
    batch_id: str
    path: str
    schema: pa.Schema
    origins: list[str]
    cursor: dict[str, Any] | None
    previous_cursor: dict[str, Any] | None
    boundary_duplicates_skipped: int
    new_columns: list[str]
    missing_columns: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    cursor_held: str | None = None  # "<value> (<n> quarantined rows)" when quarantine holds the mark back
    window_end: str | None = None  # the later partition that bounds this run, "<day>: <column> = <value>"
    http: dict[str, int] | None = None  # API sources: requests, retries, 429 answers
    snapshot_id: int | None = None  # the Iceberg snapshot the commit produced

    def metadata(self) -> dict[str, Any]:
        """What the raw asset's materialization reports: the commit (rows, batch, path, snapshot) and
        `delivery_metadata`."""
        return {
            "dagster/row_count": self.rows,
            "batch_id": self.batch_id,
            "path": self.path,
            "snapshot_id": str(self.snapshot_id),
            **self.delivery_metadata(),
        }

    def delivery_metadata(self) -> dict[str, Any]:
        """What the delivery itself tells (quarantine, origins, drift, cursor, HTTP counts); the lake IO
        manager adds the commit's keys when it stores the raw output."""
        data: dict[str, Any] = {
            "quarantined_rows": self.quarantined,
            "origins": ", ".join(self.origins[:20]) + (" ..." if len(self.origins) > 20 else ""),
            "schema_new_columns": ", ".join(self.new_columns) or "-",
            "schema_missing_columns": ", ".join(self.missing_columns) or "-",
        }
        if self.cursor is not None:
            data["cursor"] = f"{self.cursor['column']} = {self.cursor['value']}"
            data["boundary_duplicates_skipped"] = self.boundary_duplicates_skipped
        if self.previous_cursor is not None:
            data["previous_cursor"] = f"{self.previous_cursor['column']} = {self.previous_cursor['value']}"
        if self.cursor_held is not None:
            data["cursor_held_by_quarantine"] = self.cursor_held
        if self.window_end is not None:
            data["cursor_window_end"] = self.window_end
        if self.http is not None:
            data.update({f"http_{name}": count for name, count in self.http.items()})
        return data


@dataclass(frozen=True)
class RawDelivery:
    """One run's delivery of raw partition D, extracted and validated, not yet in the lake.

    `quarantine`: the rejected rows (`REJECT_SCHEMA`, state `raw_batch_id`), to be stored as
    `quarantine/raw/<source>/<table>` partition D first. `raw`: the good rows with their metadata
    columns, spooled as Parquet outside the lake (`LakeStorage.spool`), with the commit state (cursor,
    `start_cursor`, file fingerprints, columns, ...): the lake IO manager adopts the files into
    partition D in one commit with that state, so the mark moves only with its rows. `unusable`: why
    the delivery must not be committed (every row was quarantined), else None. `result`: what the run
    reports; rows and batch are the spool's until `committed` adds the commit's snapshot.
    """

    quarantine: LakeWrite
    raw: LakeWrite
    result: IngestionResult
    unusable: str | None = None

    def raise_if_unusable(self) -> None:
        """A delivery whose every row was quarantined fails after its quarantine is stored: committing
        it would report success for rows nobody can use; the old partition and mark stay, so the rows
        are read again once the cause is fixed."""
        if self.unusable is not None:
            raise IngestionError(self.unusable)

    def committed(self, commit: CommitInfo) -> IngestionResult:
        return replace(self.result, rows=commit.rows, batch_id=commit.batch_id, snapshot_id=commit.snapshot_id)


@dataclass
class _Piece:
    rows: pa.Table
    rejects: list[dict[str, str]]
    cursor_values: list[Any] | None


class DataIngestionPipeline:
    def __init__(self, source: Source, lake: LakeStorage) -> None:
        self.source = source
        self.lake = lake
        self.table = source.table
        self.key = raw_key(source.source.name, source.table.name)
        self._columns_hint: list[str] = []
        self._files: list[SourceFile] = []

    @property
    def _origin_column(self) -> str:
        return {"file": "_source_file", "database": "_source_query", "api": "_source_url"}[self.source.kind]

    def _incremental_field(self) -> str | None:
        incremental = getattr(self.table, "incremental", None)
        if incremental is None:
            return None
        return incremental.cursor if isinstance(self.source, DatabaseSource) else incremental.field

    # ------------------------------------------------------------------ extraction, per kind
    def _pieces(self, day: str, window: CursorWindow) -> Iterator[_Piece]:
        source = self.source
        previous = window.start
        if window.closed:
            return
        if isinstance(source, DatabaseSource):
            with source.open(previous, window.end) as (columns, chunks):
                self._columns_hint = columns
                for chunk in chunks:
                    yield _Piece(chunk.rows, [], chunk.cursor_values)
        elif isinstance(source, APISource):
            cursor_field = self._incremental_field()
            for page in source.pages(previous):
                good = [r for r in page.records if isinstance(r, dict)]
                rejects = [
                    reject_record(page.url, "", str(r), "record is not a JSON object")
                    for r in page.records
                    if not isinstance(r, dict)
                ]
                values = [r.get(cursor_field) for r in good] if cursor_field else None
                yield _Piece(records_as_text(good), rejects, values)
        else:
            listed = source.list_files(day)
            if not listed:
                raise SourceUnavailable(f"source {source.name}: no file matches {source.describe(day)}")
            held = ingested_fingerprints(self.lake, self.key, except_day=day)
            self._files = [f for f in listed if f.fingerprint not in held.get(f.path, set())]
            if source.table.format == "csv":
                header: dict[str, None] = {}
                for file in self._files:
                    header.update(dict.fromkeys(source.header(file)))
                self._columns_hint = list(header)
            for file in self._files:
                for file_chunk in source.read(file):
                    yield _Piece(file_chunk.rows, file_chunk.rejects, None)

    # ------------------------------------------------------------------ the run
    def run(self, day: str) -> IngestionResult:
        """The raw asset's run for callers without Dagster (benchmarks, tools, tests): the quarantine,
        then (unless every row was quarantined: `IngestionError`) the raw partition, each committed by
        the lake IO manager's own write (`store`), in the order the asset yields them."""
        with self.deliver(day) as delivery:
            store(self.lake, quarantine_key(self.source.source.name, self.table.name), day, delivery.quarantine,
                  run_id=None)
            delivery.raise_if_unusable()
            commit = store(self.lake, self.key, day, delivery.raw, run_id=None)
        return delivery.committed(commit)

    @contextmanager
    def deliver(self, day: str) -> Iterator[RawDelivery]:
        """Extract and validate the delivery of `day` chunk by chunk into a spool outside the lake
        (`LakeStorage.spool`; memory holds one chunk) and describe it (`RawDelivery`). Nothing reaches
        the lake here: the caller stores `quarantine`, then `raw` unless the delivery is `unusable`.
        The spool is removed when the block ends, whether `raw` was stored or not."""
        with self.lake.spool(self.key, day) as spool:
            yield self._extract(day, spool)

    def _extract(self, day: str, batch: StagedBatch) -> RawDelivery:
        lake, table = self.lake, self.table
        previous = previous_commit(lake, self.key, day)
        previous_extra = previous[1].state if previous else {}
        cursor_field = self._incremental_field()
        window = cursor_window(lake, self.key, day, cursor_field) if cursor_field else CursorWindow(None)
        previous_cursor = window.start
        validator = RowValidator(table)
        ingested_at = datetime.now(timezone.utc).replace(tzinfo=None)
        rejects: list[dict[str, str]] = []
        seen: dict[str, None] = {}
        tracker: CursorTracker | None = None
        origin = getattr(self.source, "origin", "")
        writer = ChunkWriter(batch.local_dir, prepare=batch.with_partition_column)
        for piece in self._pieces(day, window):
            rows = piece.rows
            seen.update(dict.fromkeys(c for c in rows.column_names if not c.startswith("_")))
            rejects.extend(piece.rejects)
            if cursor_field and piece.cursor_values is not None:
                if tracker is None:
                    tracker = CursorTracker(cursor_field, key_columns(table, rows.column_names), window)
                good = self._split_tracked(tracker, validator, rows, piece.cursor_values, origin, rejects)
            else:
                good, bad = validator.split(rows, origin)
                rejects.extend(bad)
            writer.write(self._with_metadata(good, ingested_at, batch.batch_id, origin))
        old_columns = previous_extra.get("columns")
        columns = list(dict.fromkeys([*self._columns_hint, *seen]))
        if not columns and old_columns:
            columns = list(old_columns)  # nothing delivered says nothing about the columns
        conflicts = mapping_conflicts(table, columns)
        if conflicts:
            clash = "; ".join(f"{', '.join(s)} -> {t}" for t, s in conflicts.items())
            raise SourceUnavailable(
                f"source {self.source.name}: several delivered columns map to one entity column ({clash}); "
                "rename one of them in `columns`"
            )
        new_columns = [c for c in columns if old_columns is not None and c not in old_columns]
        missing_columns = [c for c in (old_columns or []) if c not in columns]
        if (new_columns or missing_columns) and table.schema_drift == "fail":
            raise SchemaDriftError(
                f"source {self.source.name}: columns changed since partition {previous[0] if previous else '?'} "
                f"(new: {', '.join(new_columns) or '-'}; missing: {', '.join(missing_columns) or '-'}) "
                "and schema_drift is 'fail'"
            )
        writer.close(self._empty_schema(columns))
        cursor = tracker.state() if tracker else (window.end or previous_cursor)
        origins = [f.path for f in self._files] if isinstance(self.source, FileSource) else [origin]
        extra: dict[str, Any] = {
            "source": self.source.name,
            "kind": self.source.kind,
            "columns": columns,
            "cursor": cursor.to_json() if cursor else None,
            "files": {f.path: f.fingerprint for f in self._files},
            "origin": origin if not isinstance(self.source, FileSource) else self.source.describe(day),
            "quarantined_rows": len(rejects),
        }
        if cursor_field:
            extra["start_cursor"] = previous_cursor.to_json() if previous_cursor else None
        held = None
        if tracker is not None and tracker.held_back:
            held = f"{cursor_field} = {tracker.held_value} ({tracker.held_count} quarantined rows are read again)"
        result = IngestionResult(
            rows=writer.rows,
            quarantined=len(rejects),
            batch_id=batch.batch_id,
            path=lake.uri(lake.dataset_dir(self.key, day)),
            schema=writer.schema or pa.schema([]),
            origins=origins,
            cursor=extra["cursor"],
            previous_cursor=previous_cursor.to_json() if previous_cursor else None,
            boundary_duplicates_skipped=tracker.skipped if tracker else 0,
            new_columns=new_columns,
            missing_columns=missing_columns,
            extra=extra,
            cursor_held=held,
            window_end=self._window_end(day, window),
            http=self._http_counts(),
        )
        return RawDelivery(
            quarantine=LakeWrite(pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA),
                                 state={"raw_batch_id": batch.batch_id}),
            raw=LakeWrite(batch, state=extra),
            result=result,
            unusable=self._nothing_published(day, rejects) if writer.rows == 0 and rejects else None,
        )

    def _split_tracked(
        self,
        tracker: CursorTracker,
        validator: RowValidator,
        rows: pa.Table,
        cursor_values: list[Any],
        origin: str,
        rejects: list[dict[str, str]],
    ) -> pa.Table:
        """Window-filter and validate one chunk, telling the tracker which cursor values were published
        and which were quarantined (a row index column follows the rows through the validator)."""
        rows, cursor_values = tracker.accept(rows, cursor_values)
        indexed = rows.append_column(_ROW_INDEX, pa.array(range(rows.num_rows), pa.int64()))
        good, bad = validator.split(indexed, origin)
        kept = good.column(_ROW_INDEX).to_pylist()
        good = good.drop_columns([_ROW_INDEX])
        rejects.extend(bad)
        tracker.published(good, [cursor_values[i] for i in kept])
        if bad:
            kept_set = set(kept)
            tracker.held([v for i, v in enumerate(cursor_values) if i not in kept_set])
        return good

    def _nothing_published(self, day: str, rejects: list[dict[str, str]]) -> str:
        reasons = Counter(r["_reject_reason"] for r in rejects).most_common(3)
        top = "; ".join(f"{reason} ({count})" for reason, count in reasons)
        where = "/".join(quarantine_key(self.source.source.name, self.table.name))
        return (
            f"source {self.source.name}: all {len(rejects)} delivered rows were quarantined and none was "
            f"published, so partition {day} was not committed and the incremental mark did not move. "
            f"Top reasons: {top}. The rows are in {where}/ingest_date={day}; fix the `columns` mapping "
            "(or the source data) and run the day again."
        )

    def _window_end(self, day: str, window: CursorWindow) -> str | None:
        if window.closed:
            return "a later partition loaded everything; this day reads nothing"
        if window.end is None:
            return None
        after = next_commit(self.lake, self.key, day)
        return f"{after[0] if after else '?'}: {window.end.column} = {window.end.value}"

    def _http_counts(self) -> dict[str, int] | None:
        if not isinstance(self.source, APISource):
            return None
        stats = self.source.stats
        return {"requests": stats.requests, "retries": stats.retries, "429_responses": stats.throttled}

    def _with_metadata(self, rows: pa.Table, ingested_at: datetime, batch_id: str, origin: str) -> pa.Table:
        n = rows.num_rows
        lineage = rows.column("_source_file") if "_source_file" in rows.column_names else None
        if lineage is not None:
            rows = rows.drop_columns(["_source_file"])
        rows = (
            rows.append_column("_ingested_at", pa.array([ingested_at] * n, pa.timestamp("us")))
            .append_column("_source", pa.array([self.source.name] * n, pa.string()))
            .append_column("_batch_id", pa.array([batch_id] * n, pa.string()))
        )
        if lineage is None:
            lineage = pa.array([origin] * n, pa.string())
        return rows.append_column(self._origin_column, lineage)

    def _empty_schema(self, columns: list[str]) -> pa.Schema:
        return pa.schema(
            [(c, pa.string()) for c in columns]
            + [("_ingested_at", pa.timestamp("us")), ("_source", pa.string()), ("_batch_id", pa.string()),
               (self._origin_column, pa.string())]
        )
