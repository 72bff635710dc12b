"""PII detection by column name and by value pattern, with Spark built-in functions only.

Value patterns: e-mail addresses, US SSNs (`123-45-6789`), and Luhn-valid 13-19 digit numbers (card
numbers, with or without spaces/dashes). The Luhn check runs as a higher-order SQL expression over the
digit array, not a Python UDF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
SSN_REGEX = r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"
CARD_CANDIDATE_REGEX = r"(?<![\d*])(?:\d[ -]?){12,18}\d(?![\d*])"

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
    candidate = F.regexp_extract(value, CARD_CANDIDATE_REGEX, 0)
    return (candidate != "") & luhn_valid(F.regexp_replace(candidate, r"\D", ""))


def value_flags(value: Column) -> dict[str, Column]:
    return {
        "email": value.rlike(EMAIL_REGEX),
        "ssn": value.rlike(SSN_REGEX),
        "card_number": contains_card_number(value),
    }


def pii_kind_by_name(column: str) -> str | None:
    lowered = column.lower()
    for kind, pattern in NAME_PATTERNS.items():
        if pattern.search(lowered):
            return kind
    return None


def scan_values(df: DataFrame, columns: Iterable[str], sample_rows: int | None = None) -> dict[str, dict[str, int]]:
    """Count values that look like PII, per string column and kind: {column: {kind: count}}.

    Only non-zero counts are returned. `sample_rows` limits the scan (None = every row).
    """
    string_columns = [c for c in columns if dict(df.dtypes).get(c) == "string"]
    if not string_columns:
        return {}
    source = df.limit(sample_rows) if sample_rows else df
    aggregates = []
    for column in string_columns:
        for kind, flag in value_flags(F.col(f"`{column}`")).items():
            aggregates.append(F.sum(F.when(flag, 1).otherwise(0)).alias(f"{column}\u0001{kind}"))
    row = source.agg(*aggregates).collect()[0].asDict()
    found: dict[str, dict[str, int]] = {}
    for name, count in row.items():
        if count:
            column, kind = name.split("\u0001")
            found.setdefault(column, {})[kind] = int(count)
    return found


def find_unconfigured_pii(
    df: DataFrame, configured: Iterable[str], sample_rows: int = 10_000
) -> dict[str, str]:
    """Columns that are not covered by a masking rule but look like PII: {column: reason}."""
    configured = set(configured)
    candidates = [c for c in df.columns if c not in configured and not c.startswith("_")]
    findings: dict[str, str] = {}
    for column in candidates:
        kind = pii_kind_by_name(column)
        if kind:
            findings[column] = f"name looks like {kind}"
    for column, kinds in scan_values(df, [c for c in candidates if c not in findings], sample_rows).items():
        findings[column] = "values look like " + ", ".join(f"{k} ({n} rows)" for k, n in sorted(kinds.items()))
    return findings
