"""The files of the configured file-drop sources, with the partition day each one belongs to.

Listing, pattern matching (`{date}/sales_*.csv`; `{date}` is the YYYY-MM-DD partition day) and the
file fingerprints (size + mtime locally, size + ETag on S3) are the ingestion layer's
(`FileSource.list_files`), so the sensor sees exactly the files the raw assets will read. A file
whose pattern has no `{date}` has no day and is left to the schedule. Database and API sources have
no files and are skipped. `held_by_lake` tells which of them a committed raw partition already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake_assets.config import FileSourceConfig, PipelineConfig
from lake_assets.ingestion import FileSource, raw_key
from lake_assets.ingestion.pipeline import ingested_fingerprints
from lake_assets.resources.lake_storage import LakeStorage


@dataclass(frozen=True)
class DroppedFile:
    """One file in the drop: where it is, which source table it feeds, its day and its signature."""

    path: str
    source: str
    table: str
    day: str
    signature: str


def list_dropped_files(config: PipelineConfig) -> list[DroppedFile]:
    """Every dated file currently in the drop locations of every file source, in a stable order."""
    files: list[DroppedFile] = []
    for source in config.sources:
        if not isinstance(source, FileSourceConfig):
            continue
        for table in source.tables:
            for found in FileSource(source, table).list_files():
                if found.day is not None:
                    files.append(DroppedFile(found.path, source.name, table.name, found.day, found.fingerprint))
    return sorted(files, key=lambda f: (f.day, f.path))


def held_by_lake(config: PipelineConfig, files: list[DroppedFile]) -> set[DroppedFile]:
    """The files some committed raw partition already holds (same path and fingerprint)."""
    lake = LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri)
    held: set[DroppedFile] = set()
    by_table: dict[tuple[str, str], dict[str, set[str]]] = {}
    for dropped in files:
        table = (dropped.source, dropped.table)
        if table not in by_table:
            by_table[table] = ingested_fingerprints(lake, raw_key(*table))
        if dropped.signature in by_table[table].get(dropped.path, set()):
            held.add(dropped)
    return held
