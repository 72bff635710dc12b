"""Warehouse backups in the lake, their retention, and `lake-restore-warehouse`.

Layout (local lake or S3, through the lake's own filesystem; on S3 uploaded with the lake's
server-side encryption)::

    <lake>/backups/warehouse/<YYYY-MM-DD>/warehouse.pgdump | warehouse.sql.gz | warehouse.sqlite3
    <lake>/backups/warehouse/<YYYY-MM-DD>/manifest.json

One backup per day: a rerun of a day replaces it (the new dump is complete before the old goes).
The manifest is written last, so a directory without one is an interrupted backup, which restore
refuses. It records the dialect, the schema, the dump's size and SHA-256 (checked before a restore)
and the rows per table at the dump, which a restore compares with what it restored.

Retention (`backups.retention_days`): after a successful dump, the backups of days before
`today - retention_days` are deleted. The newest backup is never deleted, and a failed dump deletes
nothing. On a versioned bucket the deleted objects stay as noncurrent versions until a lifecycle rule
expires them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from lake_assets.config import PipelineConfig, load_config
from lake_assets.lake_maintenance import lake_from_config
from lake_assets.lake_maintenance.warehouse_dump import (
    WarehouseDumpError,
    dump,
    restore,
    table_counts,
    warehouse_schema,
)
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.tls import tls_fields
from lake_assets.resources.warehouse import WarehouseResource, WarehouseUnavailable
from lake_assets.secrets import hide_url_passwords, safe_url

BACKUP_AREA = ("backups", "warehouse")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass
class BackupResult:
    day: str
    location: str  # URI of the day's backup directory
    manifest: dict[str, Any]
    deleted: list[str] = field(default_factory=list)  # days whose backups retention removed


def backups_root(lake: LakeStorage) -> str:
    """Filesystem path (bucket/prefix/… on S3) of the backups area."""
    return lake.dataset_dir(list(BACKUP_AREA))


def warehouse_from_config(config: PipelineConfig, url: str | None = None) -> WarehouseResource:
    """The warehouse the pipeline loads (or the same settings at another `url`), TLS included."""
    return WarehouseResource(url=url or config.warehouse.url, schema_name=config.warehouse.schema_name,
                             **tls_fields(config.warehouse.tls))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _put(lake: LakeStorage, local: Path, path: str) -> None:
    if lake.is_s3:
        lake._put_file(str(local), path)  # boto3 upload with the lake's SSE arguments
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, path)


def list_backups(lake: LakeStorage) -> list[str]:
    """Days (YYYY-MM-DD) that have a backup directory, oldest first; other names are ignored."""
    infos = lake.filesystem.get_file_info(pafs.FileSelector(backups_root(lake), allow_not_found=True))
    days = []
    for info in infos:
        if info.type == pafs.FileType.Directory:
            try:
                days.append(date.fromisoformat(info.base_name).isoformat())
            except ValueError:
                continue
    return sorted(days)


def prune_backups(lake: LakeStorage, today: date, retention_days: int) -> list[str]:
    """Delete the backups of days before `today - retention_days`, never the newest one; the days deleted."""
    days = list_backups(lake)
    cutoff = (today - timedelta(days=retention_days)).isoformat()
    doomed = [d for d in days[:-1] if d < cutoff]
    for day in doomed:
        lake.filesystem.delete_dir(f"{backups_root(lake)}/{day}")
    return doomed


def backup_warehouse(lake: LakeStorage, warehouse: WarehouseResource, today: date,
                     retention_days: int) -> BackupResult:
    """Dump the warehouse into the day's backup directory, then apply retention."""
    day = today.isoformat()
    target = f"{backups_root(lake)}/{day}"
    with tempfile.TemporaryDirectory(prefix="lake-backup-") as tmp:
        result = dump(warehouse, Path(tmp))
        manifest = {
            "format": MANIFEST_FORMAT,
            "day": day,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "dialect": warehouse.dialect,
            "schema": warehouse_schema(warehouse),
            "warehouse": safe_url(warehouse.sqlalchemy_url),
            "file": result.file.name,
            "bytes": result.file.stat().st_size,
            "sha256": _sha256(result.file),
            "tool": result.tool,
            "tables": result.tables,
            "row_counts_exact": result.exact,
        }
        _put(lake, result.file, f"{target}/{result.file.name}")
        manifest_file = Path(tmp) / MANIFEST
        manifest_file.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _put(lake, manifest_file, f"{target}/{MANIFEST}")  # last: its presence marks a complete backup
    for info in lake.filesystem.get_file_info(pafs.FileSelector(target)):
        if info.base_name not in (result.file.name, MANIFEST):  # a rerun's leftovers (another dialect's dump)
            lake.filesystem.delete_file(info.path)
    deleted = prune_backups(lake, today, retention_days)
    return BackupResult(day, lake.uri(target), manifest, deleted)


# ---------------------------------------------------------------------- restore
def _locate(lake: LakeStorage, backup: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, directory) of `backup`: a day of the lake's backups area, a local directory or an
    s3:// URL of a backup directory."""
    try:
        day = date.fromisoformat(backup).isoformat()
    except ValueError:
        day = ""
    if day:
        return lake.filesystem, f"{backups_root(lake)}/{day}"
    if backup.startswith("s3://"):
        return LakeStorage(url=backup).filesystem, backup[len("s3://"):].rstrip("/")
    return pafs.LocalFileSystem(), str(Path(backup).expanduser().resolve())


def fetch_backup(lake: LakeStorage, backup: str, into: Path) -> tuple[dict[str, Any], Path]:
    """(manifest, local dump file) of a backup, copied into `into` and checked against its SHA-256."""
    filesystem, directory = _locate(lake, backup)
    try:
        with filesystem.open_input_stream(f"{directory}/{MANIFEST}", compression=None) as stream:
            manifest = json.loads(stream.read().decode("utf-8"))
    except FileNotFoundError:
        days = list_backups(lake)
        raise WarehouseDumpError(
            f"backup {backup}: no {MANIFEST} in {directory} (no backup there, or an interrupted one). "
            f"Backups in {lake.uri(backups_root(lake))}: {', '.join(days) or 'none'}"
        ) from None
    local = into / manifest["file"]
    # compression=None: Arrow would otherwise un-gzip a .gz file on the way, and its SHA-256 would differ.
    with filesystem.open_input_stream(f"{directory}/{manifest['file']}", compression=None) as stream, \
            open(local, "wb") as out:
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    if _sha256(local) != manifest["sha256"]:
        raise WarehouseDumpError(f"backup {backup}: {manifest['file']} does not match the SHA-256 of its manifest "
                                 "(damaged or replaced); not restored")
    return manifest, local


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    restored: dict[str, int]

    @property
    def differences(self) -> dict[str, tuple[int | None, int | None]]:
        """table -> (rows in the manifest, rows restored) where they differ."""
        expected: dict[str, int] = self.manifest["tables"]
        names = set(expected) | set(self.restored)
        return {n: (expected.get(n), self.restored.get(n)) for n in sorted(names)
                if expected.get(n) != self.restored.get(n)}

    def describe(self) -> str:
        m = self.manifest
        lines = [f"restored the {m['dialect']} backup of {m['day']} ({m['schema'] or 'file'}, dumped "
                 f"{m['created_at']} by {m['tool']})"]
        for table, rows in sorted(self.restored.items()):
            lines.append(f"  {table}: {rows} rows" + ("" if m["tables"].get(table) == rows
                                                       else f" (the manifest says {m['tables'].get(table)})"))
        return "\n".join(lines)


def restore_backup(lake: LakeStorage, warehouse: WarehouseResource, backup: str, force: bool = False,
                   privileges: bool = True) -> RestoreReport:
    """Restore a backup into `warehouse` (which must be empty unless `force`); the rows restored."""
    with tempfile.TemporaryDirectory(prefix="lake-restore-") as tmp:
        manifest, local = fetch_backup(lake, backup, Path(tmp))
        if manifest["dialect"] != warehouse.dialect:
            raise WarehouseDumpError(f"backup {backup} is a {manifest['dialect']} dump; the target "
                                     f"{warehouse.safe_url} is {warehouse.dialect}")
        restore(warehouse, local, manifest["schema"], force=force, privileges=privileges)
    return RestoreReport(manifest, table_counts(warehouse))


def expand_variables(text: str) -> str:
    """`text` with each `${VAR}` replaced by the variable's value (a command-line URL keeps its password
    off the command line, where `ps` shows it to every user)."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in os.environ:
            raise ValueError(f"--target-url: environment variable {match.group(1)} is not set")
        return os.environ[match.group(1)]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lake-restore-warehouse",
        description="Restore a warehouse backup (made by the warehouse_backup job) into an EMPTY "
        "schema (PostgreSQL), database (MySQL/MariaDB) or file (SQLite). Exit 0: restored and every table "
        "has the rows the backup's manifest records; 1: refused or failed; 2: restored, but row counts "
        "differ from the manifest (MySQL/MariaDB counts are taken just before the dump, so a load "
        "committing meanwhile explains a difference).",
    )
    parser.add_argument("--config", help="pipeline config YAML (default: LAKE_CONFIG)")
    parser.add_argument("--backup", required=True,
                        help="a day (YYYY-MM-DD) of <lake>/backups/warehouse/, or a backup directory (path or s3://)")
    parser.add_argument("--target-url", help="SQLAlchemy URL to restore into (default: warehouse.url of the config). "
                        "Write a password as ${VAR} in single quotes, e.g. "
                        "'postgresql+psycopg2://etl:${DW_PASSWORD}@db/dw': the command reads the variable, so the "
                        "password is not on its command line")
    parser.add_argument("--force", action="store_true",
                        help="restore even if the target holds tables: the dumped objects replace those of the "
                        "same name")
    parser.add_argument("--no-privileges", action="store_true",
                        help="PostgreSQL: skip the dump's GRANTs (when the BI roles do not exist on the target)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        warehouse = warehouse_from_config(config, expand_variables(args.target_url) if args.target_url else None)
        report = restore_backup(lake_from_config(config), warehouse, args.backup, args.force,
                                privileges=not args.no_privileges)
    except (WarehouseDumpError, WarehouseUnavailable, ValueError, OSError) as exc:
        print(f"lake-restore-warehouse: {hide_url_passwords(str(exc))}", file=sys.stderr)
        return 1
    print(f"into {warehouse.safe_url}: {report.describe()}")
    if report.differences:
        print(f"row counts differ from the manifest: {report.differences}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
