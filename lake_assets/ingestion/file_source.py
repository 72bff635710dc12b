"""FileSource: CSV, JSON (array), JSON Lines and Parquet files from a local directory or an S3 prefix.

One table of a file source is a file pattern relative to the source path; `{date}` in it stands for
the partition day (`2024-01-15`) and glob wildcards (`*`, `?`) are allowed. S3 (`s3://bucket/prefix`)
is listed with boto3 and read with pyarrow, both honouring `AWS_ENDPOINT_URL`.

Each file has a fingerprint (`size:mtime_ns` locally, `size:ETag` on S3); the pipeline records the
fingerprints of the files a partition holds in its manifest, so a file is ingested once, and a file
re-delivered with new content counts as new.

Reading streams: CSV through `pyarrow.csv.open_csv` block by block, JSON Lines and Parquet in
batches; only a JSON array file is parsed whole. Every value is kept as text (see text.py). Rows that
do not parse (wrong number of fields, invalid JSON line) are returned as rejects with file, line and
reason instead of failing the batch.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import glob
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lake_assets.config import FileSourceConfig, FileTableConfig
from lake_assets.ingestion.errors import SourceTemporarilyUnavailable, SourceUnavailable
from lake_assets.ingestion.text import records_as_text, table_as_text
from lake_assets.ingestion.validation import reject_record

_DAY_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
JSON_LINES_CHUNK = 50_000
CSV_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class SourceFile:
    path: str  # local path or s3://bucket/key
    fingerprint: str
    size: int
    day: str | None  # the `{date}` the path matched; None for patterns without `{date}`


@dataclass
class FileChunk:
    rows: pa.Table  # every delivered column as text, plus `_source_file`
    rejects: list[dict[str, str]] = field(default_factory=list)


def s3_filesystem() -> pafs.S3FileSystem:
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    kwargs: dict[str, Any] = {"region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
    return pafs.S3FileSystem(**kwargs)


def _day_regex(pattern: str) -> re.Pattern[str]:
    """Regex over the path relative to the source root, capturing `{date}` as `day`."""
    out = []
    for token in re.split(r"(\{date\}|\*|\?)", pattern):
        out.append({"{date}": r"(?P<day>\d{4}-\d{2}-\d{2})", "*": r"[^/]*", "?": r"[^/]"}.get(token, re.escape(token)))
    return re.compile("^" + "".join(out) + "$")


class _ReadAheadLimit(io.RawIOBase):
    """A binary stream that lets pyarrow's CSV read-ahead run at most `ahead` blocks before the consumer.

    `pyarrow.csv.open_csv` reads the whole input in its background thread as fast as it can, so
    memory would grow with the file. Each `read` here waits (GIL released) until the consumer has
    taken enough batches; after `patience` seconds it reads anyway, so an unusual block/batch ratio
    (a line longer than a block) costs time, never a deadlock.
    """

    def __init__(self, raw: Any, ahead: int = 4, patience: float = 1.0) -> None:
        super().__init__()
        self.raw, self.ahead, self.patience = raw, ahead, patience
        self.reads = 0
        self.consumed = 0
        self._cond = threading.Condition()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            self._cond.wait_for(lambda: self.reads < self.consumed + self.ahead, timeout=self.patience)
            self.reads += 1
        return self.raw.read(size)

    def batch_taken(self) -> None:
        with self._cond:
            self.consumed += 1
            self._cond.notify_all()


class FileSource:
    kind = "file"

    def __init__(self, source: FileSourceConfig, table: FileTableConfig) -> None:
        self.source = source
        self.table = table
        self._fs: pafs.FileSystem | None = None

    @property
    def name(self) -> str:
        return f"{self.source.name}.{self.table.name}"

    @property
    def is_s3(self) -> bool:
        return self.source.path.startswith("s3://")

    @property
    def filesystem(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs = s3_filesystem() if self.is_s3 else pafs.LocalFileSystem()
        return self._fs

    def describe(self, day: str | None) -> str:
        pattern = self.table.pattern if day is None else self.table.pattern.replace("{date}", day)
        return f"{self.source.path.rstrip('/')}/{pattern}"

    # ------------------------------------------------------------------ listing
    def list_files(self, day: str | None = None) -> list[SourceFile]:
        """Files matching the pattern for `day` (every day when None), sorted by path."""
        pattern = self.table.pattern if day is None else self.table.pattern.replace("{date}", day)
        regex = _day_regex(self.table.pattern)
        listed = self._list_s3(pattern) if self.is_s3 else self._list_local(pattern)
        files = []
        for relative, path, fingerprint, size in listed:
            match = regex.match(relative)
            if match is None:
                continue
            files.append(SourceFile(path, fingerprint, size, match.groupdict().get("day")))
        return sorted(files, key=lambda f: f.path)

    def _list_local(self, pattern: str) -> list[tuple[str, str, str, int]]:
        root = self.source.path
        found = []
        for path in glob.glob(os.path.join(root, pattern.replace("{date}", _DAY_GLOB))):
            if os.path.isfile(path):
                stat = os.stat(path)
                relative = os.path.relpath(path, root).replace(os.sep, "/")
                found.append((relative, path, f"{stat.st_size}:{stat.st_mtime_ns}", stat.st_size))
        return found

    def _list_s3(self, pattern: str) -> list[tuple[str, str, str, int]]:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        bucket, _, prefix = self.source.path[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        static = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
        list_prefix = "/".join(p for p in (prefix, static) if p)
        glob_pattern = pattern.replace("{date}", "*")
        client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        found = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=list_prefix):
                for item in page.get("Contents", []):
                    relative = item["Key"][len(prefix) + 1 :] if prefix else item["Key"]
                    if fnmatch.fnmatchcase(relative, glob_pattern):
                        etag = item["ETag"].strip('"')
                        found.append((relative, f"s3://{bucket}/{item['Key']}", f"{item['Size']}:{etag}", item["Size"]))
        except EndpointConnectionError as exc:
            raise SourceTemporarilyUnavailable(f"source {self.name}: {self.source.path}: {exc}") from None
        except (ClientError, BotoCoreError) as exc:
            raise SourceUnavailable(f"source {self.name}: cannot list {self.source.path}: {exc}") from None
        return found

    # ------------------------------------------------------------------ reading
    def _open(self, path: str) -> Any:
        """A plain Python binary stream (read-ahead for CSV is then bounded by `_ReadAheadLimit`)."""
        if not self.is_s3:
            try:
                return open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`
            except OSError as exc:
                raise SourceUnavailable(f"source {self.name}: cannot read {path}: {exc}") from None
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        bucket, _, key = path[len("s3://") :].partition("/")
        client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        try:
            return contextlib.closing(client.get_object(Bucket=bucket, Key=key)["Body"])
        except EndpointConnectionError as exc:
            raise SourceTemporarilyUnavailable(f"source {self.name}: {path}: {exc}") from None
        except (ClientError, BotoCoreError) as exc:
            raise SourceUnavailable(f"source {self.name}: cannot read {path}: {exc}") from None

    def header(self, file: SourceFile) -> list[str]:
        """The column names of a CSV file (from its first line, or from config when there is no header)."""
        if not self.table.header and self.table.column_names:
            return list(self.table.column_names)
        with self._open(file.path) as stream:
            head = stream.read(1 << 16).decode(self.table.encoding, errors="replace")
        lines = csv.reader(io.StringIO(head), delimiter=self.table.delimiter, quotechar=self.table.quote_char)
        first = next(lines, None)
        if not first:
            raise SourceUnavailable(f"source {self.name}: {file.path} is empty (no header row)")
        return list(first) if self.table.header else [f"f{i}" for i in range(len(first))]

    def read(self, file: SourceFile) -> Iterator[FileChunk]:
        fmt = self.table.format
        if fmt == "csv":
            chunks = self._read_csv(file)
        elif fmt == "jsonl":
            chunks = self._read_json_lines(file)
        elif fmt == "json":
            chunks = self._read_json(file)
        else:
            chunks = self._read_parquet(file)
        for chunk in chunks:
            rows = chunk.rows
            chunk.rows = rows.append_column("_source_file", pa.array([file.path] * rows.num_rows, pa.string()))
            yield chunk

    def _read_csv(self, file: SourceFile) -> Iterator[FileChunk]:
        names = self.header(file)
        rejects: list[dict[str, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            line = "" if row.number is None or row.number < 0 else str(row.number)
            reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
            rejects.append(reject_record(file.path, line, row.text, reason))
            return "skip"

        read_options = pacsv.ReadOptions(
            encoding=self.table.encoding,
            block_size=CSV_BLOCK_BYTES,
            column_names=None if self.table.header else names,
            use_threads=False,
        )
        with self._open(file.path) as stream:
            limited = _ReadAheadLimit(stream)
            try:
                reader = pacsv.open_csv(
                    pa.PythonFile(limited, mode="r"),
                    read_options=read_options,
                    parse_options=pacsv.ParseOptions(
                        delimiter=self.table.delimiter, quote_char=self.table.quote_char, invalid_row_handler=on_invalid
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in names}, strings_can_be_null=False
                    ),
                )
                for batch in reader:
                    limited.batch_taken()
                    yield FileChunk(pa.Table.from_batches([batch]), rejects[:])
                    rejects.clear()
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise SourceUnavailable(f"source {self.name}: {file.path} is not readable CSV: {exc}") from None
        if rejects:
            yield FileChunk(pa.table({n: pa.array([], pa.string()) for n in names}), rejects)

    def _read_json_lines(self, file: SourceFile) -> Iterator[FileChunk]:
        records: list[dict[str, Any]] = []
        rejects: list[dict[str, str]] = []
        with self._open(file.path) as stream:
            text = io.TextIOWrapper(stream, encoding=self.table.encoding)  # type: ignore[arg-type]
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    rejects.append(reject_record(file.path, str(number), line.rstrip("\n"), f"invalid JSON: {exc.msg}"))
                    continue
                if isinstance(record, dict):
                    records.append(record)
                else:
                    reason = "line is not a JSON object"
                    rejects.append(reject_record(file.path, str(number), line.rstrip("\n"), reason))
                if len(records) >= JSON_LINES_CHUNK:
                    yield FileChunk(records_as_text(records), rejects)
                    records, rejects = [], []
        if records or rejects:
            yield FileChunk(records_as_text(records), rejects)

    def _read_json(self, file: SourceFile) -> Iterator[FileChunk]:
        with self._open(file.path) as stream:
            raw = stream.read().decode(self.table.encoding)
        try:
            records = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SourceUnavailable(f"source {self.name}: {file.path} is not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise SourceUnavailable(f"source {self.name}: {file.path} is not a JSON array of records")
        good = [r for r in records if isinstance(r, dict)]
        rejects = [
            reject_record(file.path, str(i + 1), json.dumps(r), "record is not a JSON object")
            for i, r in enumerate(records)
            if not isinstance(r, dict)
        ]
        yield FileChunk(records_as_text(good), rejects)

    def _read_parquet(self, file: SourceFile) -> Iterator[FileChunk]:
        path = file.path[len("s3://") :] if self.is_s3 else file.path
        try:
            parquet = pq.ParquetFile(path, filesystem=self.filesystem)
            for batch in parquet.iter_batches(batch_size=JSON_LINES_CHUNK):
                yield FileChunk(table_as_text(pa.Table.from_batches([batch])))
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceUnavailable(f"source {self.name}: {file.path} is not readable Parquet: {exc}") from None
