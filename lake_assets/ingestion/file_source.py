"""FileSource: CSV, JSON (array or JSON Lines) and Parquet files from a file-drop directory.

One table of a file source is a file pattern; `{date}` in it is replaced by the partition day
(`2024-01-15`), and glob wildcards are allowed. CSV is read with every column as a string (the raw
layer keeps data as delivered; typing happens in the processed layer). Rows that do not parse (wrong
number of fields) are returned as rejects with the file, line and reason instead of failing the batch.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lake_assets.config import FileSourceConfig, FileTableConfig


class SourceUnavailable(RuntimeError):
    """The source cannot be read at all (missing files, unreachable host, bad credentials)."""


@dataclass
class Extract:
    """What one extraction produced: the rows as delivered, where they came from, and the rejects."""

    table: pa.Table
    origins: list[str]
    rejects: list[dict[str, str]] = field(default_factory=list)


class FileSource:
    def __init__(self, source: FileSourceConfig, table: FileTableConfig) -> None:
        self.source = source
        self.table = table

    @property
    def name(self) -> str:
        return f"{self.source.name}.{self.table.name}"

    def files_for(self, day: str) -> list[str]:
        pattern = os.path.join(self.source.path, self.table.pattern.replace("{date}", day))
        return sorted(glob.glob(pattern))

    def extract(self, day: str) -> Extract:
        pattern = os.path.join(self.source.path, self.table.pattern.replace("{date}", day))
        files = self.files_for(day)
        if not files:
            raise SourceUnavailable(f"source {self.name}: no file matches {pattern} for partition {day}")
        tables: list[pa.Table] = []
        rejects: list[dict[str, str]] = []
        for path in files:
            table, file_rejects = self._read_one(path)
            tables.append(table.append_column("_source_file", pa.array([path] * table.num_rows, pa.string())))
            rejects.extend(file_rejects)
        combined = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        return Extract(table=combined, origins=files, rejects=rejects)

    def _read_one(self, path: str) -> tuple[pa.Table, list[dict[str, str]]]:
        fmt = self.table.format
        if fmt == "csv":
            return self._read_csv(path)
        if fmt == "jsonl":
            return self._read_json_lines(path)
        if fmt == "json":
            with open(path, encoding=self.table.encoding) as handle:
                try:
                    records = json.load(handle)
                except json.JSONDecodeError as exc:
                    raise SourceUnavailable(f"source {self.name}: {path} is not valid JSON: {exc}") from None
            if not isinstance(records, list):
                raise SourceUnavailable(f"source {self.name}: {path} is not a JSON array of records")
            good = [r for r in records if isinstance(r, dict)]
            rejects = [_reject(path, i + 1, json.dumps(r), "record is not a JSON object")
                       for i, r in enumerate(records) if not isinstance(r, dict)]
            return _records_as_strings(good), rejects
        return pq.read_table(path), []

    def _read_json_lines(self, path: str) -> tuple[pa.Table, list[dict[str, str]]]:
        records: list[dict[str, object]] = []
        rejects: list[dict[str, str]] = []
        with open(path, encoding=self.table.encoding) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    rejects.append(_reject(path, number, line.rstrip("\n"), f"invalid JSON: {exc.msg}"))
                    continue
                if isinstance(record, dict):
                    records.append(record)
                else:
                    rejects.append(_reject(path, number, line.rstrip("\n"), "line is not a JSON object"))
        return _records_as_strings(records), rejects

    def _read_csv(self, path: str) -> tuple[pa.Table, list[dict[str, str]]]:
        with open(path, encoding=self.table.encoding, newline="") as handle:
            header = next(csv.reader(handle, delimiter=self.table.delimiter), None)
        if not header:
            raise SourceUnavailable(f"source {self.name}: {path} is empty (no header row)")
        rejects: list[dict[str, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            rejects.append(
                _reject(path, row.number, row.text, f"expected {row.expected_columns} fields, got {row.actual_columns}")
            )
            return "skip"

        table = pacsv.read_csv(
            path,
            # Single-threaded parsing is what lets pyarrow report the line number of a bad row.
            read_options=pacsv.ReadOptions(encoding=self.table.encoding, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=self.table.delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
        return table, rejects


def _reject(path: str, line: int | None, raw: str, reason: str) -> dict[str, str]:
    return {"_source_file": path, "_line": "" if line is None else str(line), "_raw": raw, "_reject_reason": reason}


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # numbers, booleans, nested values: as JSON text


def _records_as_strings(records: list[dict[str, object]]) -> pa.Table:
    """JSON records as delivered, every value as text; columns in order of first appearance."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return pa.table({c: pa.array([_as_text(r.get(c)) for r in records], pa.string()) for c in columns})
