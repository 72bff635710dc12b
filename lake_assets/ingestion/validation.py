"""Row validation before the raw commit: rows that can never become entity records go to quarantine.

A row is rejected when one of the entity's `required` columns is missing or blank, or holds text that
no supported format reads as a number (int/decimal) or a date/time (timestamp/date). The checks are
deliberately no stricter than the processed layer: anything they pass, the processed layer may still
reject with its exact formats (and quarantine there). Vectorised with Arrow compute; only rejected
rows are touched in Python.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from lake_assets.config import TableConfig
from lake_assets.entities import ENTITIES
from lake_assets.ingestion.errors import UnreadableFile
from lake_assets.ingestion.mapping import entity_column, source_columns_for, to_snake_case

REJECT_SCHEMA = pa.schema(
    [("_source_file", pa.string()), ("_line", pa.string()), ("_raw", pa.string()), ("_reject_reason", pa.string())]
)
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_CURRENCY = r"[$€£,\s]"
_DATETIME = (
    r"^(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
    r"|\d{4}/\d{1,2}/\d{1,2}( \d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{1,2}/\d{1,2}/\d{4}( \d{1,2}:\d{2}(:\d{2})?)?"
    r"|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})$"
)


def _kind(spark_type: str) -> str | None:
    if spark_type in ("timestamp", "date"):
        return "datetime"
    if spark_type in ("int", "bigint", "smallint", "long", "double", "float") or spark_type.startswith("decimal"):
        return "number"
    return None


def reject_record(source_file: str, line: str, raw: str, reason: str) -> dict[str, str]:
    return {"_source_file": source_file, "_line": line, "_raw": raw, "_reject_reason": reason}


def missing_required(table: TableConfig, columns: list[str]) -> list[str]:
    """The entity's required columns that no delivered column maps to (after snake_case and renames).

    A table without an entity (an input of derived tables only) requires nothing."""
    if table.entity is None:
        return []
    by_entity = source_columns_for(table, [c for c in columns if c.strip() and not c.startswith("_")])
    # Generated keys and nested paths are built by the processed layer, which checks their parts.
    derived = table.derived_columns()
    return [c for c in ENTITIES[table.entity].required if c not in by_entity and c not in derived]


def require_columns(source_name: str, path: str, table: TableConfig, columns: list[str]) -> None:
    """Raise UnreadableFile when the file's `columns` cannot supply every required entity column."""
    missing = missing_required(table, columns)
    if not missing or table.entity is None:  # a table without an entity requires nothing
        return
    delivered = [c for c in columns if not c.startswith("_")]
    # Suggest a delivered column that maps to no entity column yet: the likely renamed one.
    known = ENTITIES[table.entity].columns
    unmapped = [c for c in delivered if c.strip() and entity_column(table, c) not in known]
    example = to_snake_case(unmapped[0]) if unmapped else "source_column"
    raise UnreadableFile(
        f"source {source_name}: file {path}: no column for required {', '.join(missing)}; "
        f"its columns: {', '.join(delivered) or '(none)'}. Map the column that holds it in the table's "
        f"`columns` (snake_case source name: entity column, e.g. `{example}: {missing[0]}`) or fix the export"
    )


class RowValidator:
    """Splits an all-string chunk into good rows and rejects (with the reason per row)."""

    def __init__(self, table: TableConfig) -> None:
        self.table = table
        self.entity = ENTITIES[table.entity] if table.entity else None

    def split(self, chunk: pa.Table, origin: str) -> tuple[pa.Table, list[dict[str, str]]]:
        if chunk.num_rows == 0 or self.entity is None:
            return chunk, []
        by_entity = source_columns_for(self.table, chunk.column_names)
        reason = pa.nulls(chunk.num_rows, pa.string())
        # Later checks are applied first so the first failing required column names the reason.
        derived = self.table.derived_columns()
        for column in reversed(self.entity.required):
            if column in derived:
                continue  # built by the processed layer, which quarantines a row lacking it
            kind = _kind(self.entity.columns[column])
            if column in self.table.timestamp_units:
                kind = "number"  # Unix seconds or milliseconds
            source = by_entity.get(column)
            if source is None:
                reason = pa.array([f"required column {column} is absent"] * chunk.num_rows, pa.string())
                continue
            values = pc.utf8_trim_whitespace(chunk.column(source))
            missing = pc.fill_null(pc.equal(values, ""), True)
            bad = missing
            message = pa.scalar(f"unparsable {kind} in {source} ({column})", pa.string())
            if kind == "number":
                cleaned = pc.replace_substring_regex(values, _CURRENCY, "")
                bad = pc.or_(missing, pc.invert(pc.fill_null(pc.match_substring_regex(cleaned, _NUMBER), False)))
            elif kind == "datetime":
                bad = pc.or_(missing, pc.invert(pc.fill_null(pc.match_substring_regex(values, _DATETIME), False)))
            reason = pc.if_else(
                missing, pa.scalar(f"missing {source} ({column})", pa.string()), pc.if_else(bad, message, reason)
            )
        rejected = pc.is_valid(reason)
        if not pc.any(rejected).as_py():
            return chunk, []
        bad_rows = chunk.filter(rejected)
        reasons = reason.filter(rejected).to_pylist()
        files = bad_rows.column("_source_file").to_pylist() if "_source_file" in bad_rows.column_names else None
        payload = [c for c in bad_rows.column_names if not c.startswith("_")]
        rejects = [
            reject_record(
                files[i] if files else origin,
                "",
                json.dumps({c: row.get(c) for c in payload}, ensure_ascii=False),
                reasons[i],
            )
            for i, row in enumerate(bad_rows.to_pylist())
        ]
        return chunk.filter(pc.invert(rejected)), rejects
