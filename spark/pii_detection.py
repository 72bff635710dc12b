"""PII detection by column name and by value pattern, with Spark built-in functions only.

Value patterns: e-mail addresses, US SSNs (`123-45-6789`), and Luhn-valid 13-19 digit numbers (card
numbers, with or without single spaces/dashes). The Luhn check runs as a higher-order SQL expression
over the digit array, not a Python UDF. A digit run glued to letters (inside a hex digest such as an
HMAC or inside a token) is not a card candidate: 0.4% of random 64-hex digests contain a Luhn-valid
13-19 digit run, which would otherwise flag every hashed column.
Reports hold column names, kinds and counts, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
SSN_REGEX = r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"
CARD_CANDIDATE_REGEX = r"(?<![0-9A-Za-z*])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z*])"
# Types whose text can hold PII; timestamps, booleans and floats cannot hold these patterns.
SCANNED_TYPE_PREFIXES = ("string", "bigint", "decimal", "varchar", "char")

NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"e_?mail"),
    "phone": re.compile(r"phone|mobile|tel(ephone)?$|^tel_|fax"),
    "ssn": re.compile(r"ssn|social_security|national_id|tax_id"),
    "card_number": re.compile(r"card|cc_num|^pan$|credit"),
    "street_address": re.compile(r"street|address|addr"),
}


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


def contains_card_number(value: Column) -> Column:
    """True when any candidate run in the text is Luhn-valid (not only the first one)."""
    candidates = F.regexp_extract_all(value, F.lit(CARD_CANDIDATE_REGEX), F.lit(0))
    return F.exists(candidates, lambda c: luhn_valid(F.regexp_replace(c, r"\D", "")))


def value_flags(value: Column) -> dict[str, Column]:
    """{kind: boolean column}; NULL values are not PII (the flags are NULL, counted as False)."""
    return {
        "email": value.rlike(EMAIL_REGEX),
        "ssn": value.rlike(SSN_REGEX),
        "card_number": contains_card_number(value),
    }


def pii_kind_by_name(column: str) -> str | None:
    """The PII kind a column name suggests (`e_mail` -> email), else None."""
    lowered = column.lower()
    for kind, pattern in NAME_PATTERNS.items():
        if pattern.search(lowered):
            return kind
    return None


def scan_values(df: DataFrame, columns: Iterable[str], sample_rows: int | None = None) -> dict[str, dict[str, int]]:
    """Count values that look like PII, per string column and kind: {column: {kind: count}}.

    Only non-zero counts are returned. `sample_rows` limits the scan (None = every row).
    """
    types = dict(df.dtypes)
    scanned = [c for c in columns if types.get(c, "").startswith(SCANNED_TYPE_PREFIXES)]
    if not scanned:
        return {}
    source = df.limit(sample_rows) if sample_rows else df
    aggregates = []
    for column in scanned:
        for kind, flag in value_flags(F.col(f"`{column}`").cast("string")).items():
            aggregates.append(F.sum(F.when(flag, 1).otherwise(0)).alias(f"{column}\u0001{kind}"))
    row = source.agg(*aggregates).collect()[0].asDict()
    found: dict[str, dict[str, int]] = {}
    for name, count in row.items():
        if count:
            column, kind = name.split("\u0001")
            found.setdefault(column, {})[kind] = int(count)
    return found


@dataclass(frozen=True)
class Finding:
    """One unconfigured column that looks like PII; `counts` are rows per kind (value findings)."""

    column: str
    kind: str
    by: str  # "name" or "values"
    counts: tuple[tuple[str, int], ...] = ()

    @property
    def reason(self) -> str:
        if self.by == "name":
            return f"name looks like {self.kind}"
        return "values look like " + ", ".join(f"{k} ({n} rows)" for k, n in self.counts)


def detect_unconfigured_pii(
    df: DataFrame, configured: Iterable[str], sample_rows: int | None = None
) -> list[Finding]:
    """Columns not covered by a masking rule that look like PII, by name first, then by value.

    Columns starting with `_` (lineage/audit) are not candidates. By default every row is scanned:
    a sample would let PII that first appears in row 10,001 through.
    """
    configured = set(configured)
    candidates = [c for c in df.columns if c not in configured and not c.startswith("_")]
    findings = [Finding(c, kind, "name") for c in candidates if (kind := pii_kind_by_name(c))]
    named = {f.column for f in findings}
    for column, kinds in scan_values(df, [c for c in candidates if c not in named], sample_rows).items():
        counts = tuple(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        findings.append(Finding(column, counts[0][0], "values", counts))
    return sorted(findings, key=lambda f: f.column)


def find_unconfigured_pii(
    df: DataFrame, configured: Iterable[str], sample_rows: int | None = None
) -> dict[str, str]:
    """{column: reason} view of `detect_unconfigured_pii` (reasons name kinds and counts, never values)."""
    return {f.column: f.reason for f in detect_unconfigured_pii(df, configured, sample_rows)}
