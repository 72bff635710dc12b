"""The files of the configured file-drop sources, with the partition day each one belongs to.

Listing, pattern matching (`{date}/sales_*.csv`; `{date}` is the YYYY-MM-DD partition day) and the
file fingerprints (size + mtime locally, size + ETag on S3) are the ingestion layer's
(`FileSource.list_files`), so the sensor sees exactly the files the raw assets will read. A file
whose pattern has no `{date}` has no day and is left to the schedule. Database and API sources have
no files and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake_assets.config import FileSourceConfig, PipelineConfig
from lake_assets.ingestion import FileSource


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
