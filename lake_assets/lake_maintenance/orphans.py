"""Orphan files of an Iceberg table: files under its location that no kept table state references.

Referenced (never an orphan): the current metadata file and every metadata file in its log, and for
every snapshot that is kept, its manifest list, its manifests and the live data/delete files they
list, plus statistics files. Anything else under the table's location is an orphan once it is older
than the safety margin: younger files may be a write in flight (staged, not committed yet).
Files under another table's location (a table nested inside this one's directory) are never listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from lake_assets.resources.lake_storage import LakeStorage


@dataclass(frozen=True)
class OrphanFile:
    path: str  # for `LakeStorage.filesystem` (no scheme)
    size: int
    modified: datetime


def referenced_paths(lake: LakeStorage, table: Any, keep_snapshot_ids: Iterable[int]) -> set[str]:
    """Filesystem paths the table still needs if only `keep_snapshot_ids` survive."""
    metadata = table.metadata
    paths = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    paths.update(s.statistics_path for s in metadata.statistics)
    paths.update(s.statistics_path for s in getattr(metadata, "partition_statistics", []) or [])
    seen_manifests: set[str] = set()
    for snapshot_id in keep_snapshot_ids:
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            continue
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            paths.add(manifest.manifest_path)
            # Live entries only: a DELETED entry names a file its snapshot removed, which stays
            # referenced through the parent snapshot for as long as that one is kept.
            paths.update(entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io))
    return {lake._fs_path(p) for p in paths}


def list_files(lake: LakeStorage, location: str, skip_under: Iterable[str] = ()) -> list[OrphanFile]:
    """Every file under a table location (a catalog URI), except those under `skip_under` locations."""
    root = lake._fs_path(location).rstrip("/")
    skipped = [lake._fs_path(s).rstrip("/") + "/" for s in skip_under]
    try:
        infos = lake.filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return []
    files = []
    for info in infos:
        if info.type != pafs.FileType.File or any(info.path.startswith(s) for s in skipped):
            continue
        modified = info.mtime or datetime.fromtimestamp(0, timezone.utc)
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=timezone.utc)
        files.append(OrphanFile(path=info.path, size=info.size or 0, modified=modified))
    return sorted(files, key=lambda f: f.path)


def find_orphans(lake: LakeStorage, table: Any, keep_snapshot_ids: Iterable[int], older_than: datetime,
                 skip_under: Iterable[str] = ()) -> list[OrphanFile]:
    """Files under the table's location that the kept state does not reference, modified before `older_than`."""
    referenced = referenced_paths(lake, table, keep_snapshot_ids)
    return [f for f in list_files(lake, table.location(), skip_under)
            if f.path not in referenced and f.modified < older_than]


def delete_files(lake: LakeStorage, files: Iterable[OrphanFile], location: str) -> int:
    """Delete the files; on a local lake also the directories they leave empty (up to the table location)."""
    root = lake._fs_path(location).rstrip("/")
    deleted = 0
    parents: set[str] = set()
    for f in files:
        try:
            lake.filesystem.delete_file(f.path)
        except FileNotFoundError:
            continue
        deleted += 1
        parents.add(os.path.dirname(f.path))
    if not lake.is_s3:  # S3 has no directories to leave behind
        for directory in sorted(parents, key=len, reverse=True):
            while directory.startswith(root + "/") and os.path.isdir(directory) and not os.listdir(directory):
                os.rmdir(directory)
                directory = os.path.dirname(directory)
    return deleted
