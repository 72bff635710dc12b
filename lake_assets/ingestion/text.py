"""Values as delivered, as text: every raw column is a string column.

The raw layer stores what the source delivered without interpreting it; typing is the processed
layer's job (per entity). Keeping every column a string also keeps one Parquet schema for all chunks
of a batch. Database values are rendered so the processed layer's formats read them back:
timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]` (timezone-aware ones converted to UTC), dates ISO,
decimals with their scale, booleans `true`/`false`, nested values as JSON, bytes as hex.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def text_of(value: Any) -> str | None:
    """One value as text (the slow path, for values Arrow cannot type)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def array_as_text(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """An Arrow array of any type as strings, vectorised where Arrow can do it."""
    kind = array.type
    if pa.types.is_string(kind):
        return array
    if pa.types.is_null(kind):
        return pa.nulls(len(array), pa.string())
    if pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return array.cast(pa.string())
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            # Dropping the zone keeps the stored UTC instant: the text is UTC wall time.
            array = array.cast(pa.timestamp(kind.unit))
        return pc.replace_substring_regex(array.cast(pa.string()), r"\.0+$", "")
    if (
        pa.types.is_date(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_time(kind)
    ):
        return array.cast(pa.string())
    return pa.array([text_of(v) for v in array.to_pylist()], pa.string())


def values_as_text(values: Sequence[Any]) -> pa.Array:
    """Python values (one column of fetched rows) as a string array."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, Decimal):
        # Arrow's decimal inference is ~15x slower than formatting in Python; "f" avoids exponents.
        return pa.array(
            [v if v is None else format(v, "f") if isinstance(v, Decimal) else text_of(v) for v in values], pa.string()
        )
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError):
        return pa.array([text_of(v) for v in values], pa.string())
    return array_as_text(array)


def rows_as_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Fetched DB rows (tuples) as an all-string table with the given column names."""
    if not rows:
        return empty_text_table(columns)
    by_column = zip(*rows, strict=True)
    return pa.table({name: values_as_text(values) for name, values in zip(columns, by_column, strict=True)})


def table_as_text(table: pa.Table) -> pa.Table:
    return pa.table({name: array_as_text(table.column(name)) for name in table.column_names})


def records_as_text(records: Iterable[dict[str, Any]]) -> pa.Table:
    """JSON records, every value as text (numbers with every delivered digit, booleans, nested values
    as JSON); columns in order of first appearance."""
    records = list(records)
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return pa.table({c: pa.array([_json_text(r.get(c)) for r in records], pa.string()) for c in columns})


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


def json_text(value: Any) -> str:
    """A parsed JSON value back as JSON text, numbers exactly as delivered.

    Files and API bodies are parsed with decimals for fractional numbers (floats would round
    `0.1000000000000000055` and print `1e-07`); they are written with `format(d, "f")` (all digits, no
    exponent). Whole numbers are Python ints, exact at any size. Separators and escaping are those of
    `json.dumps`.
    """
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k), ensure_ascii=False)}: {json_text(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def empty_text_table(columns: Sequence[str]) -> pa.Table:
    return pa.table({name: pa.array([], pa.string()) for name in columns})
