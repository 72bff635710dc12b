"""Mapping rules of one source table (the processed layer): pure PySpark, built-in functions only.

They run between snake-casing and `cast_to_schema` (they do the renames themselves), on text columns
as raw delivers them, and hand text on to `cast_to_schema`, which still types, trims and null-checks every value. A
value a rule cannot use is passed on unchanged, so `cast_to_schema` reports it (`unparsable <col>`)
and the row is quarantined instead of silently becoming NULL.

Order (see lake_assets/assets/processed.py): `generate_keys` (on snake_case source columns) ->
`map_columns` (nested paths and renames) -> `apply_value_rules` (Unix timestamps, scale, value maps,
on entity columns). Grain in = grain out: one row per delivered row.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark.naming import to_snake_case
from spark.number_text import number_text

FILE_ROW = "file_row"
SOURCE_FILE = "_source_file"
ROW_NUMBER = "_row_number"  # 1-based position of a row among the rows its file delivered (ingestion)
KEY_SEPARATOR = "|"
# Within one part, `\` and `|` are escaped, so the joined key splits back into exactly its parts: two
# different part lists never give one key, whatever the values hold.
_ESCAPES = ((r"\\", r"\\\\"), (r"\|", r"\\|"))
# Wide enough for any delivered amount; the product is cast to the column's type by cast_to_schema.
_SCALED_INPUT = "decimal(30,8)"
# What a number that its decimal-comma table cannot have written becomes: no cast reads it.
NOT_A_NUMBER = "<not a number>"
_EPOCH = "decimal(30,6)"
_MICROS_PER = {"seconds": 1_000_000, "milliseconds": 1_000}
# Text cast_to_schema parses with its first built-in format, in the session time zone the value was
# formatted in, so the instant survives the round trip.
_TIMESTAMP_TEXT = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def _quoted(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")


def _part(name: str, null_tokens: Sequence[str]) -> Column:
    """One key part: the trimmed text, NULL when blank or a null token; `\\` and `|` escaped."""
    text = F.trim(_quoted(name).cast("string"))
    value = F.when(text.isin(*null_tokens, ""), None).otherwise(text)
    for pattern, replacement in _ESCAPES:
        value = F.regexp_replace(value, pattern, replacement)
    return value


def composite_key(columns: Sequence[str], null_tokens: Sequence[str] = ()) -> Column:
    """The parts joined by `|` (each part trimmed, `\\` and `|` in it escaped); NULL if any part is
    missing (NULL, blank or a null token), so such a row is quarantined as missing its key."""
    pieces: list[Column] = []
    for i, name in enumerate(columns):
        if i:
            pieces.append(F.lit(KEY_SEPARATOR))
        pieces.append(_part(name, null_tokens))
    # concat (not concat_ws) is NULL as soon as one part is NULL.
    return F.concat(*pieces)


def file_row_key() -> Column:
    """`<file name>:<row number>`: the base name of `_source_file` and the row's 1-based position among
    the rows that file delivered. NULL when either is unknown (rows ingested before row numbers were
    recorded). Stable only while the file is re-delivered with the same rows in the same order."""
    base = F.regexp_extract(F.col(SOURCE_FILE), r"([^/\\]+)$", 1)
    return F.concat(F.when(base != "", base), F.lit(":"), F.col(ROW_NUMBER).cast("string"))


def generate_keys(
    df: DataFrame, rules: Mapping[str, Sequence[str] | str], null_tokens: Sequence[str] = ()
) -> DataFrame:
    """Add each generated column: `rules[target]` is either the source column names to join (compared in
    snake_case, as the columns of `df` are named) or `file_row`.

    A `from` column absent from `df` makes the column NULL; `absent_key_parts` names it.
    """
    out = df
    for target, rule in rules.items():
        if rule == FILE_ROW:
            # Without a file name or row number (an empty delivery, rows ingested before row numbers were
            # recorded) the key is NULL and the row is quarantined as missing it.
            known = all(c in df.columns for c in (SOURCE_FILE, ROW_NUMBER))
            out = out.withColumn(target, file_row_key() if known else F.lit(None).cast("string"))
            continue
        names = [to_snake_case(c) for c in rule]
        if any(c not in df.columns for c in names):
            # Reported by `absent_key_parts` for a feed that has rows; without rows nothing is lost.
            out = out.withColumn(target, F.lit(None).cast("string"))
            continue
        out = out.withColumn(target, composite_key(names, null_tokens))
    return out


def absent_key_parts(columns: Sequence[str], rules: Mapping[str, Sequence[str] | str]) -> list[str]:
    """`generate.<target>: <column>` for every `from` column (in snake_case) not among `columns`."""
    return [
        f"generate.{target}: source column {to_snake_case(c)} is not delivered"
        for target, rule in rules.items() if rule != FILE_ROW
        for c in rule if to_snake_case(c) not in columns
    ]


def present(columns: Sequence[str], null_tokens: Sequence[str] = ()) -> Column:
    """True where every one of `columns` holds a value (not NULL, blank or a null token after trimming)."""
    checks = [F.trim(_quoted(c).cast("string")).isNotNull() & ~F.trim(_quoted(c).cast("string")).isin(*null_tokens, "")
              for c in columns]
    return reduce(lambda a, b: a & b, checks, F.lit(True))


def nested_path(source: str, delivered: Sequence[str]) -> tuple[str, str] | None:
    """(column, JSON path) when `source` (`customer.address.country`, `items[0].id`) is a path whose
    first part names a delivered column (compared in snake_case); None for a plain column name, including
    a flat header that itself contains a dot. Fields below the column are JSON keys, matched exactly.

    The column may itself be written with dots as raw names it: an exploded line's parent object is the
    raw column `parent.customer` (`parent_customer` once snake-cased), so `parent.customer.id` reads
    field `id` of it. The shortest leading parts that name a delivered column are the column."""
    if to_snake_case(source) in delivered:
        return None
    heads = [m.start() for m in re.finditer(r"[.\[]", source)]
    for end in heads:
        head, rest = source[:end], source[end:]
        if head.strip() and to_snake_case(head) in delivered:
            return to_snake_case(head), "$" + rest
    return None


def unmatched_sources(mapping: Mapping[str, str], delivered: Sequence[str]) -> list[str]:
    """Keys of `mapping` that read nothing from `delivered` (snake_case column names): neither a
    delivered column (compared in snake_case) nor a nested path into one. `map_columns` would leave
    their entity column NULL on every row, so the caller reports them instead."""
    return [
        source for source in mapping
        if source.strip() and to_snake_case(source) not in delivered and nested_path(source, delivered) is None
    ]


def map_columns(df: DataFrame, mapping: Mapping[str, str], keep_unmapped: bool = True) -> DataFrame:
    """Rename source columns (keys compared in snake_case) and extract nested fields: a key such as
    `product.id` reads field `id` of the JSON object text in column `product` (`get_json_object`; NULL
    when the field is absent or the text is not JSON). A nested object or array extracted this way stays
    JSON text. With `keep_unmapped` False only the mapped columns and the `_` lineage columns remain."""
    delivered = df.columns
    renames: dict[str, str] = {}
    extracted: dict[str, Column] = {}
    for source, target in mapping.items():
        path = nested_path(source, delivered)
        if path is not None:
            extracted[target] = F.get_json_object(_quoted(path[0]).cast("string"), path[1]).alias(target)
        elif source.strip():
            renames[to_snake_case(source)] = target
    kept = []
    for column in delivered:
        name = renames.get(column, column)
        if name in extracted:
            continue  # the extracted field of that name replaces a delivered column
        if keep_unmapped or column.startswith("_") or column in renames:
            kept.append(_quoted(column).alias(name))
    return df.select(*kept, *extracted.values())


def unix_timestamp_text(column: Column, unit: str) -> Column:
    """Unix seconds or milliseconds (digits, optionally a fraction) as timestamp text in the session time
    zone, which `cast_to_schema` reads back as the same instant; other text passes unchanged."""
    number = F.trim(column.cast("string")).try_cast(_EPOCH)
    micros = (number * F.lit(_MICROS_PER[unit])).try_cast("bigint")
    text = F.date_format(F.timestamp_micros(micros), _TIMESTAMP_TEXT)
    return F.when(micros.isNotNull(), text).otherwise(column)


def scaled_text(column: Column, factor: Decimal) -> Column:
    """The number times `factor`, in exact decimal arithmetic, as text; other text passes unchanged."""
    number = number_text(column).try_cast(_SCALED_INPUT)  # the text cast_to_schema would read
    product = number * F.lit(factor)
    return F.when(number.isNotNull(), product.cast("string")).otherwise(column)


def mapped_value(column: Column, pairs: Mapping[str, str]) -> Column:
    """The mapped value of the trimmed text when it is a key of `pairs` (exact match), else the value
    unchanged."""
    lookup = F.create_map(*[F.lit(x) for pair in sorted(pairs.items()) for x in pair])
    return F.coalesce(F.try_element_at(lookup, F.trim(column.cast("string"))), column)


def apply_value_rules(
    df: DataFrame,
    *,
    timestamp_units: Mapping[str, str] | None = None,
    scale: Mapping[str, Decimal] | None = None,
    value_map: Mapping[str, Mapping[str, str]] | None = None,
    decimal_comma: Collection[str] = (),
) -> DataFrame:
    """Rewrite entity columns of `df` before typing: numbers written with a decimal comma (the columns
    `decimal_comma`) to plain number text, Unix timestamps to timestamp text, numbers times a factor,
    delivered values to configured values (in that order). Columns absent from `df` are skipped: one
    table's rules serve every entity it feeds. A `decimal_comma` value with a separator that is
    neither its decimal comma nor between groups of three digits (`2.50`, `1.5`) becomes text no cast
    reads, so the typing reports it (`1.500` is 1500 there, so `1.5` cannot be 1.5)."""
    rules: dict[str, Column] = {}
    for name in df.columns:
        value = _quoted(name)
        changed = False
        if name in decimal_comma:
            value, changed = F.when(value.isNull(), value).otherwise(
                F.coalesce(number_text(value, ","), F.lit(NOT_A_NUMBER))), True
        if timestamp_units and name in timestamp_units:
            value, changed = unix_timestamp_text(value, timestamp_units[name]), True
        if scale and name in scale:
            value, changed = scaled_text(value, scale[name]), True
        if value_map and name in value_map:
            value, changed = mapped_value(value, value_map[name]), True
        if changed:
            rules[name] = value
    if not rules:
        return df
    return df.select(*[rules[c].alias(c) if c in rules else _quoted(c) for c in df.columns])
