"""Standardization (the processed layer): pure PySpark, built-in functions only, no Dagster.

Grain in = grain out: one row per source record, minus exact re-deliveries, minus rows that cannot
be standardized (returned separately with a reason, never dropped silently).

Order of operations (processed asset): snake_case -> renames -> `cast_to_schema` (types, trims,
case, digits, null tokens; records unparsable values) -> `apply_null_defaults` -> `split_rejects`
(missing required/`reject` columns, unparsable values) -> `deduplicate_latest` -> `add_audit_columns`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Formats seen in the wild for one timestamp column; the first that parses wins, so the unambiguous
# ISO forms come first and day-first European forms before US month-first ones is a config choice.
DEFAULT_TIMESTAMP_FORMATS: tuple[str, ...] = (
    "yyyy-MM-dd HH:mm:ss[.SSSSSS]",
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]'Z'",
    "yyyy-MM-dd'T'HH:mm:ss",
    "yyyy-MM-dd'T'HH:mm:ssXXX",
    "yyyy-MM-dd",
    "yyyy/MM/dd HH:mm:ss",
    "yyyy/MM/dd",
    "dd/MM/yyyy HH:mm",
    "dd/MM/yyyy",
    "MMM d yyyy",
)

REJECT_REASON = "_reject_reason"
# Texts that mean "no value" in the feeds seen so far; compared after trimming, case-sensitively
# (a surname "Null" is a real name; the all-caps database dump token is not).
DEFAULT_NULL_TOKENS: tuple[str, ...] = ("", "NULL", "null", "N/A")


def to_snake_case(name: str) -> str:
    """`Customer ID` / `customerId` / `CUSTOMER-ID` -> `customer_id`."""
    name = name.strip()
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    # Unicode letters stay (`Prénom` -> `prénom`); every run of other characters becomes one `_`.
    name = re.sub(r"[\W_]+", "_", name)
    return name.strip("_").lower()


def snake_case_columns(df: DataFrame) -> DataFrame:
    """Rename every column by spark/naming.py's rule (the one raw ingestion maps with); `_` lineage
    columns keep their names. Two source columns becoming one name raise ColumnNameCollision (a
    ValueError) naming both."""
    from spark.naming import snake_case_names

    names = snake_case_names(df.columns)
    # Backticks quote names with spaces or dots; a backtick inside a name is doubled.
    return df.select([F.col("`" + src.replace("`", "``") + "`").alias(dst) for src, dst in names.items()])


def rename_columns(df: DataFrame, renames: Mapping[str, str]) -> DataFrame:
    """Apply `source -> canonical` renames (keys compared in snake_case); unknown keys are ignored."""
    lookup = {to_snake_case(k): v for k, v in renames.items()}
    return df.select([F.col(c).alias(lookup.get(c, c)) for c in df.columns])


def parse_timestamp(column: Column, formats: Sequence[str] = DEFAULT_TIMESTAMP_FORMATS) -> Column:
    """First format that parses, else NULL (try_to_timestamp never raises under ANSI mode)."""
    trimmed = F.trim(column)
    return F.coalesce(*[F.try_to_timestamp(trimmed, F.lit(fmt)) for fmt in formats])


def _typed(column: Column, spark_type: str, formats: Sequence[str]) -> Column:
    """Typed value, or NULL when the text does not parse as `spark_type`."""
    if spark_type == "timestamp":
        return parse_timestamp(column, formats)
    if spark_type == "date":
        return F.to_date(parse_timestamp(column, formats))
    if spark_type == "string":
        return F.trim(column)
    # Money and counts: strip currency symbols and thousands separators before the cast.
    cleaned = F.regexp_replace(F.trim(column), r"[$€£,\s]", "")
    return cleaned.try_cast(spark_type)


def cast_to_schema(
    df: DataFrame,
    schema: Mapping[str, str],
    *,
    lowercase: Sequence[str] = (),
    uppercase: Sequence[str] = (),
    digits_only: Sequence[str] = (),
    timestamp_formats: Sequence[str] = DEFAULT_TIMESTAMP_FORMATS,
    null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS,
) -> DataFrame:
    """Type every schema column (missing ones become typed NULLs) and record unparsable values.

    Adds `_parse_errors`: an array naming each column whose non-null input did not parse. Columns not
    in the schema pass through as trimmed strings so PII detection can still see them.
    A value equal to one of `null_tokens` after trimming is NULL (not a parse error).
    """
    out: list[Column] = []
    errors: list[Column] = []
    present = set(df.columns)
    for name, spark_type in schema.items():
        if name not in present:
            out.append(F.lit(None).cast(spark_type).alias(name))
            continue
        raw = F.col(name).cast("string")
        blank_to_null = F.when(F.trim(raw).isin(*null_tokens), None).otherwise(raw)
        value = _typed(blank_to_null, spark_type, timestamp_formats)
        if name in lowercase:
            value = F.lower(value)
        if name in uppercase:
            value = F.upper(value)
        if name in digits_only:
            value = F.when(value.isNull(), None).otherwise(F.regexp_replace(value, r"\D", ""))
            value = F.when(value == "", None).otherwise(value)
        out.append(value.alias(name))
        errors.append(F.when(blank_to_null.isNotNull() & value.isNull(), F.lit(name)).otherwise(F.lit("")))
    passthrough = [
        F.trim(F.col(c).cast("string")).alias(c) if not c.startswith("_") else F.col(c)
        for c in df.columns
        if c not in schema
    ]
    # array_remove rather than a higher-order `filter`: lambdas disable whole-stage codegen for the
    # whole projection, which made this step several times slower.
    parse_errors = F.array_remove(F.array(*errors), "") if errors else F.array()
    return df.select(*out, *passthrough, parse_errors.cast("array<string>").alias("_parse_errors"))


def apply_null_defaults(df: DataFrame, defaults: Mapping[str, str]) -> DataFrame:
    """Replace NULLs of the named columns with a default given as text, cast to the column's type.

    Raises ValueError (naming column and default) when the default does not parse as that type,
    so a bad rule fails before any data is written.
    """
    if not defaults:
        return df
    types = dict(df.dtypes)
    missing = sorted(set(defaults) - set(types))
    if missing:
        raise ValueError(f"null default for unknown column(s) {missing}")
    literals = {}
    for name, text in defaults.items():
        value = df.sparkSession.range(1).select(F.lit(text).try_cast(types[name]).alias("v")).first()["v"]
        if value is None:
            raise ValueError(f"null default {text!r} for column {name!r} is not a valid {types[name]}")
        literals[name] = F.lit(text).try_cast(types[name])
    return df.select(
        [F.coalesce(F.col(c), literals[c]).alias(c) if c in literals else F.col(c) for c in df.columns]
    )


def split_rejects(df: DataFrame, required: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """(good rows, rejected rows with `_reject_reason`): a row is rejected when a required column is
    NULL or any column failed to parse. The reason lists every problem of the row."""
    # A required value that was present but did not parse is reported once, as unparsable.
    missing = [
        F.when(F.col(c).isNull() & ~F.array_contains(F.col("_parse_errors"), c), F.lit(f"missing {c}"))
        for c in required
    ]
    errors = F.col("_parse_errors")
    unparsable = F.when(F.size(errors) > 0, F.concat(F.lit("unparsable "), F.array_join(errors, "; unparsable ")))
    # concat_ws skips NULLs; no higher-order functions, so the step stays in generated code.
    flagged = df.withColumn(REJECT_REASON, F.concat_ws("; ", *missing, unparsable))
    good = flagged.filter(F.col(REJECT_REASON) == "").drop(REJECT_REASON, "_parse_errors")
    bad = flagged.filter(F.col(REJECT_REASON) != "").drop("_parse_errors")
    return good, bad


def deduplicate_latest(
    df: DataFrame, key: Sequence[str], order_by: Sequence[str], tie_breakers: Sequence[str] = ()
) -> DataFrame:
    """One row per `key`: the one with the greatest `order_by` values (NULLs last).

    Deterministic: rows tied on `order_by` are ordered by `tie_breakers` (e.g. the source file name),
    then by a hash of their business (non-`_`) values, so every rerun keeps the same content.
    Persist `df` first when it is an expensive projection: the hash would inline it into the sort.
    """
    tie_hash = row_hash(sorted(c for c in df.columns if not c.startswith("_")))
    order = [F.col(c).desc_nulls_last() for c in (*order_by, *tie_breakers)] + [tie_hash.desc()]
    window = Window.partitionBy(*key).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window)).filter("_rank = 1").drop("_rank")


def row_hash(columns: Sequence[str]) -> Column:
    """SHA-256 over the business columns; NULL and empty string hash differently."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("\u0000")) for c in columns]
    return F.sha2(F.concat_ws("\u001f", *parts), 256)


def add_audit_columns(df: DataFrame, business_columns: Sequence[str], run_id: str) -> DataFrame:
    """`_processed_at`, `_run_id`, `_row_hash` (over the business columns); `_source` is kept (NULL
    when the input had none, so the column always exists)."""
    if "_source" not in df.columns:
        df = df.withColumn("_source", F.lit(None).cast("string"))
    return (
        df.withColumn("_processed_at", F.current_timestamp())
        .withColumn("_run_id", F.lit(run_id))
        .withColumn("_row_hash", row_hash(business_columns))
    )
