"""List the files of the configured file-drop sources and the partition day each one belongs to.

A table pattern such as `{date}/sales_*.csv` matches `2024-01-02/sales_1.csv`; `{date}` is the
partition day (YYYY-MM-DD). Local directories are walked with glob; `s3://bucket/prefix` sources are
listed with boto3 (which honours AWS_ENDPOINT_URL). Each file has a signature (size + mtime locally,
ETag on S3) so a re-delivered file with new content counts as new again.

Kept here (not in lake_assets.ingestion, owned by the ingestion work) because the sensor only needs
names and signatures, never the content.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from lake_assets.config import FileSourceConfig, FileTableConfig, PipelineConfig

_DAY = r"(?P<day>\d{4}-\d{2}-\d{2})"


@dataclass(frozen=True)
class DroppedFile:
    """One file in the drop: where it is, which source table it feeds, its day and its signature."""

    path: str
    source: str
    table: str
    day: str
    signature: str


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """`{date}/sales_*.csv` -> a regex over the path relative to the source root, capturing the day."""
    parts: list[str] = []
    rest = pattern
    while rest:
        if rest.startswith("{date}"):
            parts.append(_DAY)
            rest = rest[len("{date}") :]
        elif rest[0] == "*":
            parts.append(r"[^/]*")
            rest = rest[1:]
        elif rest[0] == "?":
            parts.append(r"[^/]")
            rest = rest[1:]
        else:
            parts.append(re.escape(rest[0]))
            rest = rest[1:]
    return re.compile("^" + "".join(parts) + "$")


def _glob_of(pattern: str) -> str:
    return pattern.replace("{date}", "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]")


def _list_local(source: FileSourceConfig, table: FileTableConfig) -> list[DroppedFile]:
    regex = pattern_regex(table.pattern)
    found = []
    for path in sorted(glob.glob(os.path.join(source.path, _glob_of(table.pattern)))):
        relative = os.path.relpath(path, source.path).replace(os.sep, "/")
        match = regex.match(relative)
        if not match or not os.path.isfile(path):
            continue
        stat = os.stat(path)
        found.append(DroppedFile(path, source.name, table.name, match["day"], f"{stat.st_size}:{stat.st_mtime_ns}"))
    return found


def _list_s3(source: FileSourceConfig, table: FileTableConfig) -> list[DroppedFile]:
    import boto3

    bucket, _, prefix = source.path[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    regex = pattern_regex(table.pattern)
    client = boto3.client("s3")
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) + 1 :] if prefix else item["Key"]
            match = regex.match(relative)
            if match:
                path = f"s3://{bucket}/{item['Key']}"
                found.append(DroppedFile(path, source.name, table.name, match["day"], item["ETag"].strip('"')))
    return found


def list_dropped_files(config: PipelineConfig) -> list[DroppedFile]:
    """Every file currently in the drop locations of every file source, in a stable order."""
    files: list[DroppedFile] = []
    for source in config.sources:
        for table in source.tables:
            lister = _list_s3 if source.path.startswith("s3://") else _list_local
            files.extend(lister(source, table))
    return sorted(files, key=lambda f: (f.day, f.path))
