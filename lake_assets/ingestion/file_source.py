"""FileSource: CSV, JSON (array), JSON Lines and Parquet files from a local directory or an S3 prefix.

One table of a file source is a file pattern relative to the source path; `{date}` in it stands for
the partition day (`2024-01-15`) and glob wildcards (`*`, `?`) are allowed. S3 (`s3://bucket/prefix`)
is listed with boto3 and read with pyarrow, both honouring `AWS_ENDPOINT_URL`.

Each file has a fingerprint (`size:mtime_ns` locally, `size:ETag` on S3); the pipeline records the
fingerprints of the files a partition holds in its commit state, so a file is ingested once, and a file
re-delivered with new content counts as new.

Reading streams: CSV through `pyarrow.csv.open_csv` block by block (quoted values may hold
newlines; a file with a row longer than the block is read again with larger blocks, up to
`CSV_MAX_BLOCK_BYTES`, each row still delivered once), JSON Lines and Parquet in batches; only a
JSON array file is parsed whole. Every value is kept as text (see text.py). Rows that do not parse
(wrong number of fields, invalid JSON line) are returned as rejects with file, line and reason
instead of failing the batch.

Column names: a UTF-8 byte-order mark is dropped; a blank name (a pandas index column, a trailing
delimiter) becomes `column_<n>`, n its 1-based position. A file is refused as a whole (UnreadableFile,
not retried) when its CSV header reads as one column although it holds another delimiter, when two of
its column names become one after snake_case, or when it has rows but no column for one of the
entity's required columns. A zero-byte file, or a CSV file with only a header, gives no rows and is
listed in `empty_files`.
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
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lake_assets.config import FileSourceConfig, FileTableConfig
from lake_assets.ingestion.errors import SourceTemporarilyUnavailable, SourceUnavailable, UnreadableFile
from lake_assets.ingestion.text import json_text, records_as_text, table_as_text
from lake_assets.ingestion.validation import reject_record, require_columns
from lake_assets.resources.s3 import s3_client, s3_filesystem
from spark.naming import blank_header_name, snake_case_names

_DAY_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
JSON_LINES_CHUNK = 50_000
CSV_BLOCK_BYTES = 4 << 20
# The longest CSV row read (a block holds whole rows; see FileSource._read_csv).
CSV_MAX_BLOCK_BYTES = 256 << 20
CSV_HEAD_BYTES = 1 << 16  # read to find the header (a header longer than this is cut)
# Delimiters seen in exports; one of them in a header read as a single column means a wrong `delimiter`.
_DELIMITERS = (",", ";", "\t", "|")
_BOM = "\ufeff"


@dataclass(frozen=True)
class SourceFile:
    path: str  # local path or s3://bucket/key
    fingerprint: str
    size: int
    day: str | None  # the `{date}` the path matched; None for patterns without `{date}`


@dataclass(frozen=True)
class _CsvHead:
    first: list[str] | None  # the first non-blank record's fields (BOM dropped); None for an empty file
    more: bool  # whether anything follows that record


@dataclass
class FileChunk:
    rows: pa.Table  # every delivered column as text, plus `_source_file` and `_row_number`
    rejects: list[dict[str, str]] = field(default_factory=list)


def name_blank_columns(table: pa.Table) -> pa.Table:
    """`table` with each blank column name replaced by `column_<n>` (n: its 1-based position)."""
    names = table.column_names
    if all(name.strip() for name in names):
        return table
    return table.rename_columns([n if n.strip() else blank_header_name(i) for i, n in enumerate(names, start=1)])


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


class _RowLongerThanBlock(Exception):
    """A CSV row did not fit in one block of the reader."""


class FileSource:
    kind = "file"

    def __init__(self, source: FileSourceConfig, table: FileTableConfig) -> None:
        self.source = source
        self.table = table
        self._fs: pafs.FileSystem | None = None
        self._heads: dict[tuple[str, str], _CsvHead] = {}
        self._records: dict[str, int] = {}  # path -> records read (rows and rejects) by `read`

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

    @property
    def empty_files(self) -> list[str]:
        """The files `read` found no record in (zero bytes, or a CSV header only), sorted."""
        return sorted(path for path, records in self._records.items() if records == 0)

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
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        bucket, _, prefix = self.source.path[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        static = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
        list_prefix = "/".join(p for p in (prefix, static) if p)
        glob_pattern = pattern.replace("{date}", "*")
        client = s3_client()
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
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        bucket, _, key = path[len("s3://") :].partition("/")
        client = s3_client()
        try:
            return contextlib.closing(client.get_object(Bucket=bucket, Key=key)["Body"])
        except EndpointConnectionError as exc:
            raise SourceTemporarilyUnavailable(f"source {self.name}: {path}: {exc}") from None
        except (ClientError, BotoCoreError) as exc:
            raise SourceUnavailable(f"source {self.name}: cannot read {path}: {exc}") from None

    def _head(self, file: SourceFile) -> _CsvHead:
        """The first record of a CSV file, parsed like pyarrow parses it (quotes, blank lines skipped)."""
        cache_key = (file.path, file.fingerprint)
        if cache_key not in self._heads:
            with self._open(file.path) as stream:
                data = stream.read(CSV_HEAD_BYTES) if file.size else b""
            text = data.decode(self.table.encoding, errors="replace").removeprefix(_BOM)
            records = csv.reader(
                io.StringIO(text, newline=""), delimiter=self.table.delimiter, quotechar=self.table.quote_char
            )
            non_blank = (r for r in records if r)
            first = next(non_blank, None)
            more = file.size > len(data) or next(non_blank, None) is not None
            self._heads[cache_key] = _CsvHead(first, first is not None and more)
        return self._heads[cache_key]

    def _check_names(self, file: SourceFile, names: list[str]) -> None:
        """Two delivered names that become one snake_case name make the file unusable as configured."""
        try:
            snake_case_names(names)
        except ValueError as exc:
            raise UnreadableFile(f"source {self.name}: file {file.path}: {exc}") from None

    def _check_delimiter(self, file: SourceFile, first: list[str]) -> None:
        """A header (or first line) read as one column that holds another known delimiter: say so."""
        expected = len(self.table.column_names) if not self.table.header and self.table.column_names else None
        if len(first) != 1 or expected == 1:
            return
        counts = {d: first[0].count(d) for d in _DELIMITERS if d != self.table.delimiter}
        likely = max(counts, key=lambda d: counts[d])
        if counts[likely] == 0:
            return
        what = "header" if self.table.header else "first line"
        # YAML reads a tab only from a double-quoted "\t".
        setting = json.dumps(likely) if likely == "\t" else repr(likely)
        raise UnreadableFile(
            f"source {self.name}: file {file.path}: one column read with delimiter {self.table.delimiter!r}; "
            f"the {what} contains {likely!r} — wrong delimiter? set delimiter: {setting}"
        )

    def header(self, file: SourceFile) -> list[str]:
        """The column names of a CSV file: its first line (blank names as `column_<n>`), or the configured
        `column_names` when there is no header line. Empty for an empty file.

        Raises UnreadableFile for a header read with the wrong delimiter or with colliding names.
        """
        head = self._head(file)
        if head.first is None:
            return list(self.table.column_names) if not self.table.header else []
        self._check_delimiter(file, head.first)
        if not self.table.header:
            names = list(self.table.column_names) or [f"f{i}" for i in range(len(head.first))]
        else:
            names = [name if name.strip() else blank_header_name(i) for i, name in enumerate(head.first, start=1)]
        self._check_names(file, names)
        return names

    def read(self, file: SourceFile) -> Iterator[FileChunk]:
        """The file's rows in chunks, every value as text plus `_source_file` and `_row_number` (the row's
        1-based position among the rows the file delivered); parse failures as rejects.

        Raises UnreadableFile when the file cannot supply a required entity column (CSV and Parquet:
        before any row; JSON: once the file's columns are known) or its names collide.
        """
        fmt = self.table.format
        if file.size == 0:
            chunks: Iterator[FileChunk] = iter(())
        elif fmt == "csv":
            chunks = self._read_csv(file)
        elif fmt == "jsonl":
            chunks = self._read_json_lines(file)
        elif fmt == "json":
            chunks = self._read_json(file)
        else:
            chunks = self._read_parquet(file)
        self._records[file.path] = 0
        columns: dict[str, None] = {}
        rows_before = 0
        for chunk in chunks:
            rows = chunk.rows
            if fmt != "csv":
                rows = name_blank_columns(rows)
                self._check_names(file, rows.column_names)
                if rows.num_rows:
                    columns.update(dict.fromkeys(rows.column_names))
            self._records[file.path] += rows.num_rows + len(chunk.rejects)
            chunk.rows = rows.append_column("_source_file", pa.array([file.path] * rows.num_rows, pa.string()))
            # The row's 1-based position among the rows this file delivered (rejected rows not counted):
            # with the file name it identifies a line of an export that has no line id of its own.
            numbers = pa.array(range(rows_before + 1, rows_before + rows.num_rows + 1), pa.int64())
            chunk.rows = chunk.rows.append_column("_row_number", numbers)
            rows_before += rows.num_rows
            yield chunk
        if fmt in ("json", "jsonl") and columns:
            require_columns(self.name, file.path, self.table, list(columns))

    def _read_csv(self, file: SourceFile) -> Iterator[FileChunk]:
        names = self.header(file)
        head = self._head(file)
        if head.first is None:
            return
        require_columns(self.name, file.path, self.table, names)
        if self.table.header and not head.more:
            # Header only: pyarrow cannot open a file that ends inside its header line.
            yield FileChunk(pa.table({n: pa.array([], pa.string()) for n in names}))
            return
        # pyarrow parses whole rows per block, so a row longer than the block (a huge quoted field)
        # cannot be read with it: the file is read again with a larger block, and what the smaller
        # blocks already delivered (same parser, same order) is skipped, so every row comes once.
        block = CSV_BLOCK_BYTES
        rows_done = rejects_done = 0
        while True:
            rows_seen = rejects_seen = 0
            try:
                for chunk in self._csv_blocks(file, names, head, block):
                    skip_rows = min(max(rows_done - rows_seen, 0), chunk.rows.num_rows)
                    skip_rejects = min(max(rejects_done - rejects_seen, 0), len(chunk.rejects))
                    rows_seen += chunk.rows.num_rows
                    rejects_seen += len(chunk.rejects)
                    if skip_rows or skip_rejects:
                        chunk = FileChunk(chunk.rows.slice(skip_rows), chunk.rejects[skip_rejects:])
                        if not chunk.rows.num_rows and not chunk.rejects:
                            continue
                    rows_done = max(rows_done, rows_seen)
                    rejects_done = max(rejects_done, rejects_seen)
                    yield chunk
                return
            except _RowLongerThanBlock:
                if block >= CSV_MAX_BLOCK_BYTES:
                    longest = f"{CSV_MAX_BLOCK_BYTES / (1 << 20):g} MiB"
                    raise SourceUnavailable(
                        f"source {self.name}: {file.path} has a row longer than {longest} "
                        "(a quote left open, or a field that is no table value); fix the file's quoting"
                    ) from None
                block = min(block * 4, CSV_MAX_BLOCK_BYTES)

    def _csv_blocks(self, file: SourceFile, names: list[str], head: _CsvHead, block: int) -> Iterator[FileChunk]:
        """The file's rows in batches read with blocks of `block` bytes; `_RowLongerThanBlock` when a
        row does not fit in one block."""
        rejects: list[dict[str, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            line = "" if row.number is None or row.number < 0 else str(row.number)
            reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
            rejects.append(reject_record(file.path, line, row.text, reason))
            return "skip"

        # With a header line pyarrow reads the delivered names (it drops a UTF-8 BOM, as `_head` does);
        # columns are typed by those and renamed by position to `names` (blank ones named).
        delivered = head.first if self.table.header else names
        assert delivered is not None  # an empty file has no rows to read
        read_options = pacsv.ReadOptions(
            encoding=self.table.encoding,
            block_size=block,
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
                        delimiter=self.table.delimiter,
                        quote_char=self.table.quote_char,
                        newlines_in_values=True,
                        invalid_row_handler=on_invalid,
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in delivered}, strings_can_be_null=False
                    ),
                )
                if reader.schema.names != delivered:
                    raise UnreadableFile(
                        f"source {self.name}: file {file.path}: header read as {reader.schema.names}, "
                        f"expected {delivered}; check delimiter, quote_char and encoding"
                    )
                for batch in reader:
                    limited.batch_taken()
                    yield FileChunk(pa.Table.from_batches([batch]).rename_columns(names), rejects[:])
                    rejects.clear()
            except pa.ArrowInvalid as exc:
                if "straddl" in str(exc):  # pyarrow: "straddling object straddles two block boundaries"
                    raise _RowLongerThanBlock from None
                raise SourceUnavailable(f"source {self.name}: {file.path} is not readable CSV: {exc}") from None
            except UnicodeDecodeError as exc:
                raise SourceUnavailable(f"source {self.name}: {file.path} is not readable CSV: {exc}") from None
        if rejects:
            yield FileChunk(pa.table({n: pa.array([], pa.string()) for n in names}), rejects)

    def _read_json_lines(self, file: SourceFile) -> Iterator[FileChunk]:
        records: list[dict[str, Any]] = []
        rejects: list[dict[str, str]] = []
        with self._open(file.path) as stream:
            text = io.TextIOWrapper(stream, encoding=self.table.encoding)  # type: ignore[arg-type]
            for number, line in enumerate(text, start=1):
                if number == 1:
                    line = line.removeprefix(_BOM)
                if not line.strip():
                    continue
                try:
                    record = json.loads(line, parse_float=Decimal)  # every digit kept (text.json_text)
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
            raw = stream.read().decode(self.table.encoding).removeprefix(_BOM)
        if not raw.strip():
            return
        try:
            records = json.loads(raw, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise SourceUnavailable(f"source {self.name}: {file.path} is not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise SourceUnavailable(f"source {self.name}: {file.path} is not a JSON array of records")
        good = [r for r in records if isinstance(r, dict)]
        rejects = [
            reject_record(file.path, str(i + 1), json_text(r), "record is not a JSON object")
            for i, r in enumerate(records)
            if not isinstance(r, dict)
        ]
        yield FileChunk(records_as_text(good), rejects)

    def _read_parquet(self, file: SourceFile) -> Iterator[FileChunk]:
        path = file.path[len("s3://") :] if self.is_s3 else file.path
        try:
            parquet = pq.ParquetFile(path, filesystem=self.filesystem)
            columns = name_blank_columns(parquet.schema_arrow.empty_table()).column_names
            if parquet.metadata.num_rows:
                require_columns(self.name, file.path, self.table, columns)
            else:
                yield FileChunk(pa.table({n: pa.array([], pa.string()) for n in columns}))
            for batch in parquet.iter_batches(batch_size=JSON_LINES_CHUNK):
                yield FileChunk(table_as_text(pa.Table.from_batches([batch])))
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceUnavailable(f"source {self.name}: {file.path} is not readable Parquet: {exc}") from None
