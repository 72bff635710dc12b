"""Standardization (the processed layer): pure PySpark, built-in functions only, no Dagster.

Grain in = grain out: one row per source record, minus exact re-deliveries, minus rows that cannot
be standardized (returned separately with a reason, never dropped silently).

Order of operations (processed asset): snake_case -> renames -> `infer_date_orders` (day-first or
month-first, per source file) -> `cast_to_schema` (types, trims, case, digits, null tokens, integral
float ids; records unparsable and ambiguous values) -> `apply_null_defaults` -> `flag_rejects`
(missing required/`reject` columns, unparsable values) -> `with_row_hash` (the content hash, also the
de-duplication's last tie-breaker) -> `deduplicate_latest` (counting what it removes; the rejected rows
pass through it) -> `add_audit_columns`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F

from spark.format_shapes import format_shape
from spark.naming import snake_case_names, to_snake_case
from spark.number_text import number_text
from spark.observations import observed_figures

# Formats that read one way only, tried in order. Dates such as `10/11/2011` are deliberately absent:
# whether the day or the month comes first is decided per input by `infer_date_orders`, or by a
# configured format (configured formats are tried before these).
DEFAULT_TIMESTAMP_FORMATS: tuple[str, ...] = (
    "yyyy-MM-dd HH:mm:ss[.SSSSSS]",
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]'Z'",
    "yyyy-MM-dd'T'HH:mm:ss",
    "yyyy-MM-dd'T'HH:mm:ssXXX",
    "yyyy-MM-dd",
    "yyyy/MM/dd HH:mm:ss",
    "yyyy/MM/dd",
    "MMM d yyyy",
)

REJECT_REASON = "_reject_reason"
ROW_HASH = "_row_hash"
# Texts that mean "no value" in every column; compared after trimming (so whitespace-only is empty),
# case-sensitively: a surname "Null" is a real name, the database/pandas/spreadsheet tokens are not.
DEFAULT_NULL_TOKENS: tuple[str, ...] = ("", "NULL", "null", "None", "N/A", "n/a", "#N/A", "NaN", "nan", "-")
# Also "no value" in id columns and in number/date columns, where they cannot be a real value (R and
# pandas write NA for missing). Text columns keep them: `NA` is Namibia's country code.
DEFAULT_TYPED_NULL_TOKENS: tuple[str, ...] = ("NA",)

# d/M/yyyy, d.M.yyyy or d-M-yyyy (one separator throughout), optionally with H:mm[:ss]. Groups: 1 first
# field, 3 second field, 4 year, 5-7 time. Hours without a leading zero are what US exports write.
_DAY_MONTH = r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
DAY_FIRST, MONTH_FIRST, UNDECIDED, CONFLICTING = "day-first", "month-first", "undecided", "conflicting"
_NO_FILE = ""  # the date-order group of rows without a `_source_file`: the whole batch


def _ambiguous_reason(column: str) -> str:
    return f"ambiguous date in {column}: day-first or month-first? configure timestamp_formats"


# The instants a timestamp or date may take: from the SCD2 dimensions' beginning of time (a version's
# validity starts there, so an earlier sale resolves to no member) to before 2100. Year 0, 9999 and the
# like are placeholders or typos: as values they would stretch the date dimension over millennia.
EARLIEST_TIMESTAMP, LATEST_TIMESTAMP = "1900-01-01 00:00:00", "2100-01-01 00:00:00"


def _out_of_range_reason(column: str) -> str:
    return f"{column} out of range (before {EARLIEST_TIMESTAMP[:10]} or from {LATEST_TIMESTAMP[:10]})"


def _conflicting_reason(column: str) -> str:
    return (f"conflicting date order in {column}: the same input has day-first and month-first dates; "
            "configure timestamp_formats")


def snake_case_columns(df: DataFrame) -> DataFrame:
    """Rename every column by spark/naming.py's rule (the one raw ingestion maps with); `_` lineage
    columns keep their names. Two source columns becoming one name raise ColumnNameCollision (a
    ValueError) naming both."""
    names = snake_case_names(df.columns)
    # Backticks quote names with spaces or dots; a backtick inside a name is doubled.
    return df.select([F.col("`" + src.replace("`", "``") + "`").alias(dst) for src, dst in names.items()])


def rename_columns(df: DataFrame, renames: Mapping[str, str]) -> DataFrame:
    """Apply `source -> canonical` renames (keys compared in snake_case); unknown keys are ignored."""
    lookup = {to_snake_case(k): v for k, v in renames.items()}
    return df.select([F.col(c).alias(lookup.get(c, c)) for c in df.columns])


def _try_format(text: Column, fmt: str) -> Column:
    """try_to_timestamp, attempted only on text of the format's shape: a failed attempt costs a parse
    exception inside Spark, a shape test a short regex match (spark/format_shapes.py)."""
    attempt = F.try_to_timestamp(text, F.lit(fmt))
    shape = format_shape(fmt)
    return attempt if shape is None else F.when(text.rlike(shape), attempt)


def parse_timestamp(column: Column, formats: Sequence[str] = DEFAULT_TIMESTAMP_FORMATS) -> Column:
    """First format that parses, else NULL (try_to_timestamp never raises under ANSI mode)."""
    trimmed = F.trim(column)
    return F.coalesce(*[_try_format(trimmed, fmt) for fmt in formats])


def _day_month_fields(column: Column) -> list[Column]:
    """[first, second, year, hour, minute, second-of-minute] as ints; first is NULL unless the text has
    the d/M/yyyy shape (regexp_extract gives "" for an absent time part, which try_cast turns into NULL).
    Text of another shape is tested once and not extracted: most values are not d/M/yyyy."""
    trimmed = F.trim(column)
    shaped = trimmed.rlike(_DAY_MONTH)
    return [F.when(shaped, F.regexp_extract(trimmed, _DAY_MONTH, group).try_cast("int"))
            for group in (1, 3, 4, 5, 6, 7)]


def _date_group(df: DataFrame, by: str) -> Column:
    return F.coalesce(F.col(by).cast("string"), F.lit(_NO_FILE)) if by in df.columns else F.lit(_NO_FILE)


def infer_date_orders(df: DataFrame, columns: Sequence[str], by: str = "_source_file") -> dict[str, str]:
    """Per value of `by` (a source file; all rows without one form one batch, key ""): is the input's
    d/M/yyyy-shaped text day-first, month-first, undecided or conflicting?

    Evidence is a value that reads one way only: a first field over 12 (day-first) or a second field
    over 12 (month-first), over all `columns` of the group. Both kinds in one group is `conflicting`,
    none is `undecided`. Groups without such text are absent. One aggregation job; the result is one
    small row per source file.
    """
    columns = [c for c in columns if c in df.columns]
    if not columns:
        return {}
    day_evidence, month_evidence, shaped = [], [], []
    for name in columns:
        first, second, *_ = _day_month_fields(F.col(name).cast("string"))
        day_evidence.append(((first > 12) & (first <= 31) & (second >= 1) & (second <= 12)).cast("int"))
        month_evidence.append(((second > 12) & (second <= 31) & (first >= 1) & (first <= 12)).cast("int"))
        shaped.append(first.isNotNull().cast("int"))

    def any_of(flags: list[Column]) -> Column:
        """1 when a row of the group has the flag in any column (NULL flags count as 0)."""
        per_row = [F.coalesce(f, F.lit(0)) for f in flags]
        return F.max(F.greatest(*per_row) if len(per_row) > 1 else per_row[0])

    rows = (
        df.groupBy(_date_group(df, by).alias("g"))
        .agg(any_of(day_evidence).alias("d"), any_of(month_evidence).alias("m"), any_of(shaped).alias("s"))
        .filter("s = 1")
        .collect()
    )
    decide = {(1, 1): CONFLICTING, (1, 0): DAY_FIRST, (0, 1): MONTH_FIRST, (0, 0): UNDECIDED}
    return {r["g"]: decide[(r["d"], r["m"])] for r in rows}


def _parse_day_month(column: Column, order: Column) -> tuple[Column, Column]:
    """(timestamp, reading) of d/M/yyyy text: a value that reads one way only (first field over 12,
    second over 12, or both fields equal) is read that way; any other follows its input's `order`.
    The reading is `undecided`/`conflicting` when that order is; then the timestamp is NULL."""
    first, second, year, hour, minute, sec = _day_month_fields(column)
    reading = (
        F.when(first.isNull(), F.lit(None))
        .when(first > 12, F.lit(DAY_FIRST))
        .when(second > 12, F.lit(MONTH_FIRST))
        .when(first == second, F.lit(DAY_FIRST))
        .when(order.isin(DAY_FIRST, MONTH_FIRST, CONFLICTING), order)
        .otherwise(F.lit(UNDECIDED))
    )
    day = F.when(reading == DAY_FIRST, first).when(reading == MONTH_FIRST, second)
    month = F.when(reading == DAY_FIRST, second).when(reading == MONTH_FIRST, first)
    # Through ISO text rather than make_timestamp: try_to_timestamp gives NULL for 30 February or hour
    # 25 instead of raising under ANSI mode; a NULL part prints as "null" and fails to parse too.
    iso = F.format_string(
        "%04d-%02d-%02d %02d:%02d:%02d", year, month, day,
        F.coalesce(hour, F.lit(0)), F.coalesce(minute, F.lit(0)), F.coalesce(sec, F.lit(0)),
    )
    return F.try_to_timestamp(iso, F.lit("yyyy-MM-dd HH:mm:ss")), reading


def _typed(column: Column, spark_type: str, formats: Sequence[str]) -> Column:
    """Typed value, or NULL when the text does not parse as `spark_type`."""
    if spark_type == "timestamp":
        return parse_timestamp(column, formats)
    if spark_type == "date":
        return F.to_date(parse_timestamp(column, formats))
    if spark_type == "string":
        return F.trim(column)
    # Money and counts: currency symbols and thousands separators go before the cast; a separator
    # anywhere else makes the value unusable rather than another number (spark/number_text.py).
    return number_text(column).try_cast(spark_type)


def cast_to_schema(
    df: DataFrame,
    schema: Mapping[str, str],
    *,
    lowercase: Sequence[str] = (),
    uppercase: Sequence[str] = (),
    digits_only: Sequence[str] = (),
    id_columns: Sequence[str] = (),
    timestamp_formats: Sequence[str] = DEFAULT_TIMESTAMP_FORMATS,
    null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS,
    typed_null_tokens: Sequence[str] = DEFAULT_TYPED_NULL_TOKENS,
    date_orders: Mapping[str, str] | None = None,
    date_order_by: str = "_source_file",
) -> DataFrame:
    """Type every schema column (missing ones become typed NULLs) and record values that cannot be used.

    Adds `_parse_errors`: an array with one problem text per column whose non-null input could not be
    used (`unparsable <col>`, or for d/M/yyyy dates whose day/month order is open, an `ambiguous date`
    or `conflicting date order` text). Columns not in the schema pass through as trimmed strings so PII
    detection can still see them.
    A value equal to one of `null_tokens` after trimming is NULL (not a parse error); so is one of
    `typed_null_tokens` in `id_columns` and in non-string columns. In `id_columns` an integral float
    (`17850.0`, as spreadsheets and pandas write numeric ids) becomes `17850`.
    Timestamps and dates: `timestamp_formats` first, then d/M/yyyy text by its input's day/month order
    (`date_orders` per `date_order_by` value, see `infer_date_orders`; computed here when not given);
    one before 1900-01-01 or from 2100-01-01 on is `out of range`, not a value. Numbers: currency
    symbols and thousands separators between groups of three digits are dropped; a separator anywhere
    else is `unparsable` (spark/number_text.py: `2,00` is not 200).
    """
    present = set(df.columns)
    dated = [n for n, t in schema.items() if t in ("timestamp", "date") and n in present]
    if dated and date_orders is None:
        date_orders = infer_date_orders(df, dated, date_order_by)
    order: Column = F.lit(None).cast("string")
    if date_orders:
        lookup = F.create_map(*[F.lit(x) for pair in sorted(date_orders.items()) for x in pair])
        order = F.element_at(lookup, _date_group(df, date_order_by))
    out: list[Column] = []
    errors: list[tuple[str, Column]] = []
    for name, spark_type in schema.items():
        if name not in present:
            out.append(F.lit(None).cast(spark_type).alias(name))
            continue
        raw = F.col(name).cast("string")
        tokens = [*null_tokens]
        if name in id_columns or spark_type != "string":
            tokens += typed_null_tokens
        blank_to_null = F.when(F.trim(raw).isin(*tokens), None).otherwise(raw)
        value = _typed(blank_to_null, spark_type, timestamp_formats)
        problem = F.lit(f"unparsable {name}")
        if name in dated:
            explicit = value
            inferred, reading = _parse_day_month(blank_to_null, order)
            value = F.coalesce(explicit, F.to_date(inferred) if spark_type == "date" else inferred)
            problem = (
                F.when(explicit.isNull() & (reading == UNDECIDED), F.lit(_ambiguous_reason(name)))
                .when(explicit.isNull() & (reading == CONFLICTING), F.lit(_conflicting_reason(name)))
                .otherwise(problem)
            )
        if name in id_columns:
            value = F.regexp_replace(value, r"^(\d+)\.0+$", "$1")
        if name in lowercase:
            value = F.lower(value)
        if name in uppercase:
            value = F.upper(value)
        if name in digits_only:
            value = F.when(value.isNull(), None).otherwise(F.regexp_replace(value, r"\D", ""))
            value = F.when(value == "", None).otherwise(value)
        out.append(value.alias(name))
        errors.append((name, F.when(blank_to_null.isNotNull() & value.isNull(), problem).otherwise(F.lit(""))))
    passthrough = [
        F.trim(F.col(c).cast("string")).alias(c) if not c.startswith("_") else F.col(c)
        for c in df.columns
        if c not in schema
    ]
    typed = df.select(*out, *passthrough, *[error.alias(f"_parse_error_{i}") for i, (_, error) in enumerate(errors)])
    # The range check reads the typed values as columns of their own: written into the expressions above
    # it would repeat each timestamp's parse several times over, past the JVM's 64 KB method limit of
    # generated code (Spark keeps the two projections apart rather than repeat such an expression).
    columns = {c: F.col(f"`{c}`") for c in [*schema, *(c for c in df.columns if c not in schema)]}
    problems = []
    for i, (name, _) in enumerate(errors):
        problem = F.col(f"_parse_error_{i}")
        spark_type = schema[name]
        if spark_type in ("timestamp", "date"):
            value = F.col(f"`{name}`")
            earliest, latest = (F.lit(bound).cast(spark_type) for bound in (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP))
            outside = value.isNotNull() & ((value < earliest) | (value >= latest))
            problem = F.when(outside, F.lit(_out_of_range_reason(name))).otherwise(problem)
            columns[name] = F.when(~outside, value)
        problems.append(problem)
    # array_remove rather than a higher-order `filter`: lambdas disable whole-stage codegen for the
    # whole projection, which made this step several times slower.
    parse_errors = F.array_remove(F.array(*problems), "") if problems else F.array()
    return typed.select(*[column.alias(name) for name, column in columns.items()],
                        parse_errors.cast("array<string>").alias("_parse_errors"))


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
        value = df.sparkSession.range(1).select(F.lit(text).try_cast(types[name]).alias("v")).collect()[0]["v"]
        if value is None:
            raise ValueError(f"null default {text!r} for column {name!r} is not a valid {types[name]}")
        literals[name] = F.lit(text).try_cast(types[name])
    return df.select(
        [F.coalesce(F.col(c), literals[c]).alias(c) if c in literals else F.col(c) for c in df.columns]
    )


def flag_rejects(df: DataFrame, required: Sequence[str]) -> DataFrame:
    """`df` (as `cast_to_schema` types it) with `_reject_reason` in place of `_parse_errors`: empty for a
    usable row, else every problem of the row: a required column NULL, or any column that could not be
    used (`_parse_errors`)."""
    errors = F.col("_parse_errors")

    def reported(column: str) -> Column:
        # A required value that was present but could not be used is reported once, with its problem.
        texts = (f"unparsable {column}", _ambiguous_reason(column), _conflicting_reason(column),
                 _out_of_range_reason(column))
        return reduce(operator.or_, [F.array_contains(errors, text) for text in texts])

    missing = [F.when(F.col(c).isNull() & ~reported(c), F.lit(f"missing {c}")) for c in required]
    # concat_ws skips NULLs and flattens the array; no higher-order functions, so the step stays in
    # generated code.
    return df.withColumn(REJECT_REASON, F.concat_ws("; ", *missing, errors)).drop("_parse_errors")


def split_rejects(df: DataFrame, required: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """(good rows, rejected rows with `_reject_reason`), as `flag_rejects` judges them.

    Both filters reach back into the typing: over an uncached typed frame each would repeat the whole
    typing inside its condition (Spark pushes a filter through the projection that computes its column).
    Filter a persisted frame, or keep the rejected rows in one pass (`deduplicate_latest(reason=...)`)."""
    flagged = flag_rejects(df, required)
    good = flagged.filter(F.col(REJECT_REASON) == "").drop(REJECT_REASON)
    bad = flagged.filter(F.col(REJECT_REASON) != "")
    return good, bad


@dataclass(frozen=True)
class DuplicateStats:
    """What de-duplication on a key removes. Per key with n rows of which h are distinct in content
    (every non-`_` column): n - h rows are exact copies of another row of the key, h - 1 rows differ
    from the row kept (the same key, other content: not duplicates, usually a non-unique key).
    `rows` is every row looked at (kept and removed); `quarantined` the rows passed through untouched
    because they carry a reject reason (`deduplicate_latest(reason=...)`)."""

    exact_duplicates: int
    conflicting_rows: int
    conflicting_keys: int
    sample_keys: list[dict[str, object]] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0

    @property
    def removed(self) -> int:
        return self.exact_duplicates + self.conflicting_rows


def _usable(reason: str | None) -> Column:
    """True for a row whose `reason` column is empty (every row without a reason column)."""
    return F.lit(True) if reason is None else F.col(reason) == ""


def _content_hash(df: DataFrame, key: Sequence[str]) -> Column:
    """A row's content within its key (every non-`_` column outside `key`) as a 64-bit hash: shuffled
    and compared instead of the whole row. xxhash64 skips NULLs, so each value is hashed with its NULL
    flag (("a", NULL) and (NULL, "a") differ). Rows are only compared within one key, so a collision
    (odds about 2^-64 per pair of rows of a key) is not a practical concern for these counts."""
    business = sorted(c for c in df.columns if not c.startswith("_") and c not in key)
    if not business:
        return F.lit(0).cast("long")
    return F.xxhash64(*[part for c in business for part in (F.col(c), F.col(c).isNull())])


class DuplicateCounter:
    """Counts what `deduplicate_latest` removes (see DuplicateStats) while its result is written: a
    Spark `Observation` computed by the job that writes the rows, so counting costs no job of its own.
    Its metrics are named as the processed asset's metadata (`duplicate_rows_removed`, ...).
    `stats()` blocks until that job ran; conflicting keys, when there are any, are sampled by one more
    small job over the input."""

    def __init__(self, sample_size: int = 5) -> None:
        self.observation = Observation("duplicate_stats")
        self.sample_size = sample_size
        self._input: DataFrame | None = None
        self._key: Sequence[str] = ()
        self._reason: str | None = None
        self._stats: DuplicateStats | None = None

    def observe(self, ranked: DataFrame, key: Sequence[str], source: DataFrame, reason: str | None = None
                ) -> DataFrame:
        """`ranked` (one row per input row, with `_rank`, `_rows_of_key`, `_contents_of_key`) observed. With
        `reason`, only usable rows are counted as de-duplicated, and the others as `quarantined_rows`."""
        self._input, self._key, self._reason = source, key, reason
        usable = _usable(reason)
        first = (F.col("_rank") == 1) & usable  # one row per key carries the key's counts
        rows_of_key, contents = F.col("_rows_of_key"), F.col("_contents_of_key")
        quarantined = [F.count(F.when(~usable, 1)).alias("quarantined_rows")] if reason is not None else []
        return ranked.observe(
            self.observation,
            F.count(F.when(usable, 1)).alias("rows_before_deduplication"),
            *quarantined,
            F.coalesce(F.sum(F.when(first, rows_of_key - 1)), F.lit(0)).alias("duplicate_rows_removed"),
            F.coalesce(F.sum(F.when(first, rows_of_key - contents)), F.lit(0)).alias("exact_duplicates_removed"),
            F.coalesce(F.sum(F.when(first, contents - 1)), F.lit(0)).alias("conflicting_rows_removed"),
            F.count(F.when(first & (contents > 1), 1)).alias("conflicting_keys"),
        )

    def stats(self) -> DuplicateStats:
        if self._input is None:
            raise RuntimeError("DuplicateCounter: pass it to deduplicate_latest and write the result first")
        if self._stats is None:
            # None: Spark's adaptive plan found that no row reaches the observation.
            totals = observed_figures(self.observation) or {}
            count = {name: int(totals.get(name) or 0) for name in
                     ("rows_before_deduplication", "exact_duplicates_removed", "conflicting_rows_removed",
                      "conflicting_keys", "quarantined_rows")}
            samples: list[dict[str, object]] = []
            if count["conflicting_keys"]:
                samples = conflicting_keys_sample(self._input, self._key, self.sample_size, self._reason)
            self._stats = DuplicateStats(count["exact_duplicates_removed"], count["conflicting_rows_removed"],
                                         count["conflicting_keys"], samples, rows=count["rows_before_deduplication"],
                                         quarantined=count["quarantined_rows"])
        return self._stats


def conflicting_keys_sample(
    df: DataFrame, key: Sequence[str], size: int, reason: str | None = None
) -> list[dict[str, object]]:
    """Up to `size` keys of `df` (smallest first) whose rows differ in content: the key columns only.
    With `reason`, rows with a non-empty reason are left out (inside the aggregate, not by a filter: see
    `split_rejects`)."""
    content = _content_hash(df, key)
    if reason is not None:
        content = F.when(_usable(reason), content)
    contents = df.groupBy(*key).agg(F.countDistinct(content).alias("_h"))
    rows = contents.filter("_h > 1").select(*key).orderBy(*key).limit(size).collect()
    return [r.asDict() for r in rows]


def deduplicate_latest(
    df: DataFrame, key: Sequence[str], order_by: Sequence[str], tie_breakers: Sequence[str] = (),
    counter: DuplicateCounter | None = None, tie_hash: str | None = None, reason: str | None = None,
) -> DataFrame:
    """One row per `key`: the one with the greatest `order_by` values (NULLs last).

    With `reason` (a string column, empty for a usable row), rows with a non-empty reason are neither
    de-duplicated nor counted: every one of them is returned as it is, beside the kept usable rows, so
    one pass can write both (the processed rows and their quarantine). Usable rows sort first in their
    key, so a rejected row never displaces one.

    Deterministic: rows tied on `order_by` are ordered by `tie_breakers` (e.g. the source file name),
    then by a hash of their business (non-`_`) values, so every rerun keeps the same content: the
    column `tie_hash` when given (the rows' `_row_hash` from `with_row_hash`: computed once, for the
    tie and for the output alike), else one computed here.
    With `counter`, the job that consumes the result also counts what was removed (same window: no
    second shuffle). Persist `df` first when it is an expensive projection: the hash would inline it
    into the sort.
    """
    # The tie hash is a column, not an expression of the order: repeated in each window expression it
    # would make their specifications differ, and Spark would sort once per expression.
    # A given tie hash is ordered by as it is: a copy of it would travel through the shuffle beside it.
    tie = tie_hash if tie_hash is not None else "_tie"
    ranked = df if tie_hash is not None else df.withColumn(
        "_tie", row_hash(sorted(c for c in df.columns if not c.startswith("_"))))
    usable = _usable(reason)
    order = [F.col(c).desc_nulls_last() for c in (*order_by, *tie_breakers)] + [F.col(tie).desc()]
    if reason is not None:
        order.insert(0, usable.desc())
    window = Window.partitionBy(*key).orderBy(*order)
    # Above the window: a filter on the reason is not pushed down into the typing that computes it.
    kept = F.col("_rank") == 1 if reason is None else ((F.col("_rank") == 1) & usable) | ~usable
    if counter is None:
        ranked = ranked.withColumn("_rank", F.row_number().over(window))
        return ranked.filter(kept).drop("_rank", "_tie")
    # The same partitioning and order with the whole key as frame: one window operator over one sort.
    whole_key = window.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    ranked = ranked.select(
        "*",
        F.row_number().over(window).alias("_rank"),
        F.count(F.when(usable, 1)).over(whole_key).alias("_rows_of_key"),
        # collect_set skips NULLs: a rejected row adds no content.
        F.size(F.collect_set(F.when(usable, _content_hash(df, key))).over(whole_key)).alias("_contents_of_key"),
    )
    observed = counter.observe(ranked, key, df, reason)
    return observed.filter(kept).drop("_rank", "_rows_of_key", "_contents_of_key", "_tie")


def row_hash(columns: Sequence[str]) -> Column:
    """SHA-256 over the business columns; NULL and empty string hash differently."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("\u0000")) for c in columns]
    return F.sha2(F.concat_ws("\u001f", *parts), 256)


def with_row_hash(df: DataFrame, business_columns: Sequence[str]) -> DataFrame:
    """`df` with `_row_hash`: `row_hash` over `business_columns`, in that order."""
    return df.withColumn(ROW_HASH, row_hash(business_columns))


# The columns `add_audit_columns` gives a processed row (a rejected row has none of them).
AUDIT_COLUMNS: tuple[str, ...] = ("_processed_at", "_run_id", ROW_HASH)


def add_audit_columns(df: DataFrame, business_columns: Sequence[str] | None, run_id: str) -> DataFrame:
    """`_processed_at`, `_run_id`, `_row_hash` (over `business_columns`; with None, `df` has it already:
    `with_row_hash` ran before the de-duplication); `_source` is kept (NULL when the input had none,
    so the column always exists)."""
    if "_source" not in df.columns:
        df = df.withColumn("_source", F.lit(None).cast("string"))
    audited = df.withColumn("_processed_at", F.current_timestamp()).withColumn("_run_id", F.lit(run_id))
    # Last either way, so the output's column order does not depend on where the hash was computed.
    hash_column = F.col(ROW_HASH) if business_columns is None else row_hash(business_columns)
    return audited.select(*[F.col(f"`{c}`") for c in audited.columns if c != ROW_HASH], hash_column.alias(ROW_HASH))
