"""PII detection by column name and by value pattern, with Spark built-in functions only.

Value patterns: e-mail addresses, US SSNs (`123-45-6789`), and Luhn-valid 13-19 digit numbers (card
numbers, with or without single spaces/dashes). The Luhn check runs as a higher-order SQL expression
over the digit array, not a Python UDF, and a scan runs it only on the rows holding a candidate run (a
second, filtered pass), so its full pass over every row stays compiled. A digit run glued to letters
(inside a hex digest such as an HMAC or inside a token) is not a card candidate: 0.4% of random 64-hex
digests contain a Luhn-valid 13-19 digit run, which would otherwise flag every hashed column.

Name patterns match whole name tokens (`card_no`, `payment_card`), not substrings: `credit_limit`,
`card_type` and `cardinality` are not card numbers, `hotel` is not a phone.

What a finding means (see `Finding.blocking`):
* a column whose every value is NULL (or blank text) is never PII, whatever its name (the processed
  layer adds the entity columns a source does not deliver as NULL);
* values that match a pattern (e-mail, SSN, Luhn card) make a blocking finding;
* a name that suggests a kind with a value pattern (e-mail, SSN, card) while no value matches makes a
  warning only: the values show the name misleads (`card_no` holding order numbers);
* a name that suggests a kind without a value pattern (phone, street address) makes a blocking
  finding when the column holds values: nothing can show those values are not PII.
Reports hold column names, kinds and counts, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark.checkpoint import local_checkpoint
from spark.number_text import is_number_type
from spark.pii_patterns import CARD_CANDIDATE_REGEX, EMAIL_REGEX, SSN_REGEX

# Types whose text can hold PII; timestamps, booleans and floats cannot hold these patterns.
SCANNED_TYPE_PREFIXES = ("string", "bigint", "decimal", "varchar", "char")
MIN_CARD_DIGITS = 13  # the shortest card number the patterns recognise
# Types that cannot hold an e-mail, phone, SSN, card number or address whatever the column is called.
NEVER_PII_TYPE_PREFIXES = ("boolean", "timestamp", "date")

# Matched against the lower-cased snake_case name; `(^|_)`/`(_|$)` bound a pattern to whole tokens so a
# name that merely contains the letters (`cardinality`, `hotel`, `class_name`) is not taken for PII.
_NUMBER_SUFFIX = r"_?(number|num|nr|no)"
NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"e_?mail"),
    "phone": re.compile(rf"phone|(^|_)(mobile|tel|fax)({_NUMBER_SUFFIX})?(_|$)"),
    "ssn": re.compile(r"(^|_)ssn(_|$)|social_?security|(^|_)national_?id(_|$)|(^|_)tax_?id(_|$)"),
    # Card numbers, never a card's limit, type, brand, expiry or last four digits.
    "card_number": re.compile(
        rf"credit_?card|(^|_)(card|cc|pan){_NUMBER_SUFFIX}(_|$)|(^|_)card(_?pan)?$|^(pan|cc)$"
    ),
    "street_address": re.compile(r"street|address|(^|_)addr(_|$)"),
}


# Person-name columns (`first_name`, `last_name`, `full_name`, `surname`, `customer_name`...), never a
# product, store or company name. Not a detection kind: a name has no value pattern, and a delivered
# column of that name that no entity column takes is dropped before the lake; it picks the entity
# columns that get a masking rule by default.
PERSON_NAME_PATTERN = re.compile(
    r"(^|_)(first|last|full|given|family|middle|maiden|nick|person|customer|contact)_?name(_|$)"
    r"|(^|_)(surname|forename)(_|$)"
)
PERSON_NAME_TECHNIQUE = "redact"


def default_mask_rules(columns: Iterable[str]) -> dict[str, str]:
    """Column -> technique every entity gets unless configured otherwise: person names are redacted
    (`keep` or another technique in masking.columns / masking.entities overrides it)."""
    return {c: PERSON_NAME_TECHNIQUE for c in columns if PERSON_NAME_PATTERN.search(c.lower())}


def luhn_valid(digit_string: Column) -> Column:
    """True when a 13-19 digit string passes the Luhn checksum; False otherwise."""
    doubled_sum = F.aggregate(
        F.transform(
            F.reverse(F.split(digit_string, "")),
            lambda d, i: F.when(
                i % 2 == 1,
                d.cast("int") * 2 - F.when(d.cast("int") * 2 > 9, 9).otherwise(0),
            ).otherwise(d.cast("int")),
        ),
        F.lit(0),
        lambda acc, x: acc + x,
    )
    return F.when(F.length(digit_string).between(13, 19), doubled_sum % 10 == 0).otherwise(F.lit(False))


def card_candidate(value: Column) -> Column:
    """True when the text holds a 13-19 digit run that could be a card number (not yet Luhn-checked).

    Built-in row functions only, so a plan that tests it is compiled whole (`contains_card_number`'s
    Luhn check is a higher-order function, which Spark evaluates row by row outside generated code)."""
    return (F.length(value) >= MIN_CARD_DIGITS) & value.rlike(CARD_CANDIDATE_REGEX)


def contains_card_number(value: Column) -> Column:
    """True when any candidate run in the text is Luhn-valid (not only the first one)."""
    candidates = F.regexp_extract_all(value, F.lit(CARD_CANDIDATE_REGEX), F.lit(0))
    any_valid = F.exists(candidates, lambda c: luhn_valid(F.regexp_replace(c, r"\D", "")))
    # Most values hold no candidate at all: a length test, then one regex test settle them without the
    # array and the per-digit lambdas (the same result: a candidate is at least 13 characters long,
    # `exists` over no candidates is false, NULL stays NULL).
    return F.when(card_candidate(value), any_valid).when(value.isNotNull(), F.lit(False))


def value_flags(value: Column) -> dict[str, Column]:
    """{kind: boolean column}; NULL values are not PII (the flags are NULL, counted as False).

    Each pattern's regex runs only on values holding a character it cannot match without (`@` for an
    e-mail, `-` for an SSN, 13 characters for a card): the same result, without a regex on most values.
    """
    return {
        "email": value.contains("@") & value.rlike(EMAIL_REGEX),
        "ssn": value.contains("-") & value.rlike(SSN_REGEX),
        "card_number": contains_card_number(value),
    }


def kinds_a_type_can_hold(spark_type: str) -> tuple[str, ...]:
    """The value-detected kinds whose pattern the text of a `spark_type` value can match at all.

    A number's text is a sign, digits, a point and maybe an exponent: never an `@` (e-mail) nor a digit
    before a `-` (SSN); a 13-19 digit card run needs a type with at least 13 digits (bigint: 19,
    `decimal(p,s)`: p). Text types can hold every kind. Leaving out what a type cannot hold changes no
    count, and spares the text conversion of every number.
    """
    if spark_type.startswith(("string", "varchar", "char")):
        return tuple(VALUE_PATTERN_KINDS)
    if spark_type.startswith("bigint"):
        return ("card_number",)
    precision = re.fullmatch(r"decimal\((\d+),\s*\d+\)", spark_type)
    if precision and int(precision.group(1)) >= MIN_CARD_DIGITS:
        return ("card_number",)
    return ()


# Kinds a value pattern recognises, in the order `value_flags` lists them; for the others (phone,
# street address) only the name can tell.
VALUE_PATTERN_KINDS = ("email", "ssn", "card_number")
VALUE_DETECTED_KINDS = frozenset(VALUE_PATTERN_KINDS)


def pii_kind_by_name(column: str) -> str | None:
    """The PII kind a column name suggests (`e_mail` -> email), else None."""
    lowered = column.lower()
    for kind, pattern in NAME_PATTERNS.items():
        if pattern.search(lowered):
            return kind
    return None


def _profile(
    df: DataFrame, columns: list[str], sample_rows: int | None
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """({column: rows with a non-blank value}, {column: {kind: rows whose value matches}}).

    Every row (or the first `sample_rows`) is read once, by an aggregation Spark compiles whole: it
    counts the values, the e-mails and SSNs, and the card candidates. Only when a column holds a
    candidate are the rows holding one read again, to Luhn-check them (`contains_card_number`, a
    higher-order function: in the first pass it would make Spark evaluate the whole aggregation row by
    row, about twice as slow, for the candidates most columns never hold).
    """
    if not columns:
        return {}, {}
    types = dict(df.dtypes)
    # Both passes must see the same rows: a sample is taken once.
    source = local_checkpoint(df.limit(sample_rows)) if sample_rows else df

    def text(column: str) -> Column:
        return F.col(f"`{column}`").cast("string")

    # Rows with a value that is not blank: a column of NULLs and blanks holds no PII whatever its name.
    # A number's text is never blank: counting its non-NULL values gives the same count without the text.
    figures: dict[str, tuple[str, str]] = {}  # alias -> (column, kind); kind "" = filled rows
    aggregates = []
    for column in columns:
        spark_type = types.get(column, "")
        filled = F.count(F.col(f"`{column}`")) if _is_number(spark_type) else F.count(
            F.when(F.trim(text(column)) != "", 1))
        aggregates.append(filled.alias(_figure(figures, column, "")))
        if not spark_type.startswith(SCANNED_TYPE_PREFIXES):
            continue
        flags = value_flags(text(column))
        for kind in kinds_a_type_can_hold(spark_type):
            flag = card_candidate(text(column)) if kind == "card_number" else flags[kind]
            aggregates.append(F.count(F.when(flag, 1)).alias(_figure(figures, column, kind)))
    filled_rows: dict[str, int] = {}
    found: dict[str, dict[str, int]] = {}
    for alias, count in source.agg(*aggregates).collect()[0].asDict().items():
        column, kind = figures[alias]
        if not kind:
            filled_rows[column] = int(count)
        elif count:
            found.setdefault(column, {})[kind] = int(count)
    # So far "card_number" counts candidates; the Luhn-valid ones among them replace that count.
    with_candidates = sorted(c for c, kinds in found.items() if "card_number" in kinds)
    if with_candidates:
        any_candidate = reduce(lambda a, b: a | b, [card_candidate(text(c)) for c in with_candidates])
        cards = source.filter(any_candidate).agg(
            *[F.count(F.when(contains_card_number(text(c)), 1)).alias(c) for c in with_candidates]).collect()[0]
        for column in with_candidates:
            found[column]["card_number"] = int(cards[column])
            if not found[column]["card_number"]:
                del found[column]["card_number"]
            if not found[column]:
                del found[column]
    return filled_rows, found


def _figure(figures: dict[str, tuple[str, str]], column: str, kind: str) -> str:
    """A fresh alias for the aggregate of (column, kind), recorded in `figures`."""
    alias = f"_figure_{len(figures)}"
    figures[alias] = (column, kind)
    return alias


def _is_number(spark_type: str) -> bool:
    return is_number_type(spark_type)


def scan_values(df: DataFrame, columns: Iterable[str], sample_rows: int | None = None) -> dict[str, dict[str, int]]:
    """Count values that look like PII, per string column and kind: {column: {kind: count}}.

    Only non-zero counts are returned. `sample_rows` limits the scan (None = every row).
    """
    types = dict(df.dtypes)
    scanned = [c for c in columns if types.get(c, "").startswith(SCANNED_TYPE_PREFIXES)]
    return _profile(df, scanned, sample_rows)[1]


@dataclass(frozen=True)
class Finding:
    """One unconfigured column that looks like PII.

    `by` is "values" when at least one value matches a PII pattern (`counts`: rows per kind, `kind`:
    the most frequent), else "name" (the name suggests `kind`, no value matches). `name_kind` is the
    kind the name suggests, if any, for both.
    """

    column: str
    kind: str
    by: str  # "name" or "values"
    counts: tuple[tuple[str, int], ...] = ()
    name_kind: str | None = None

    @property
    def blocking(self) -> bool:
        """True when values match, or when the name suggests a kind no value pattern can clear (phone,
        street address): these fail a run under `on_unknown_pii: fail`; the rest warn."""
        return self.by == "values" or self.kind not in VALUE_DETECTED_KINDS

    @property
    def reason(self) -> str:
        if self.by == "name" and self.kind not in VALUE_DETECTED_KINDS:
            return f"name looks like {self.kind} and the column holds values (no value pattern can clear it)"
        if self.by == "name":
            return f"name looks like {self.kind}; no value matches a PII pattern"
        values = "values look like " + ", ".join(f"{k} ({n} rows)" for k, n in self.counts)
        return f"name looks like {self.name_kind}; {values}" if self.name_kind else values


def detect_unconfigured_pii(
    df: DataFrame, configured: Iterable[str], sample_rows: int | None = None
) -> list[Finding]:
    """Columns not covered by a masking rule that look like PII, by value and by name, sorted by column.

    Columns starting with `_` (lineage/audit) are not candidates, nor columns of a type that cannot
    hold PII (boolean, date, timestamp), nor columns whose every scanned value is NULL or blank. By default
    every row is scanned: a sample would let PII that first appears in row 10,001 through.
    """
    configured = set(configured)
    types = dict(df.dtypes)
    candidates = [
        c for c in df.columns
        if c not in configured and not c.startswith("_") and not types[c].startswith(NEVER_PII_TYPE_PREFIXES)
    ]
    filled, found = _profile(df, candidates, sample_rows)
    findings = []
    for column in candidates:
        if not filled.get(column):
            continue
        name_kind = pii_kind_by_name(column)
        if column in found:
            counts = tuple(sorted(found[column].items(), key=lambda kv: (-kv[1], kv[0])))
            findings.append(Finding(column, counts[0][0], "values", counts, name_kind))
        elif name_kind:
            findings.append(Finding(column, name_kind, "name", (), name_kind))
    return sorted(findings, key=lambda f: f.column)


def find_unconfigured_pii(
    df: DataFrame, configured: Iterable[str], sample_rows: int | None = None
) -> dict[str, str]:
    """{column: reason} view of `detect_unconfigured_pii` (reasons name kinds and counts, never values)."""
    return {f.column: f.reason for f in detect_unconfigured_pii(df, configured, sample_rows)}


# Technique used for an unconfigured column when `on_unknown_pii: mask`, by the kind its name shows.
DEFAULT_TECHNIQUE_BY_KIND = {
    "email": "hmac_sha256",
    "phone": "last4",
    "ssn": "last4",
    "card_number": "tokenize",
    "street_address": "redact",
}


def technique_for(finding: Finding) -> str:
    """The technique of the kind the name shows when the values agree with it (or none match);
    otherwise redact (free text with PII somewhere inside)."""
    value_kinds = {kind for kind, _ in finding.counts}
    if finding.name_kind and value_kinds <= {finding.name_kind}:
        return DEFAULT_TECHNIQUE_BY_KIND.get(finding.name_kind, "redact")
    return "redact"
