"""PII scan of values bound for (or already in) the warehouse: Arrow tables and SQL result rows.

Finds e-mail addresses, SSNs (`123-45-6789`) and Luhn-valid 13-19 digit card numbers. Reports counts
and column names only, never the values themselves. `scan_arrow` reads every row of every string
column: a vectorized regex picks the candidate values, the exact Python rules below confirm them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spark.pii_patterns import CARD_CANDIDATE_REGEX, EMAIL_REGEX, SSN_REGEX

EMAIL = re.compile(EMAIL_REGEX)
SSN = re.compile(SSN_REGEX)
CARD_CANDIDATE = re.compile(CARD_CANDIDATE_REGEX)
# A superset of the three patterns in RE2 syntax (no look-arounds), run by Arrow over whole columns.
_PREFILTER = r"@|\d{3}-\d{2}-\d{4}|(?:\d[ -]?){12,18}\d"


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def pii_kinds(value: str) -> set[str]:
    kinds = set()
    if EMAIL.search(value):
        kinds.add("email")
    if SSN.search(value):
        kinds.add("ssn")
    if any(luhn_valid(m.group(0)) for m in CARD_CANDIDATE.finditer(value)):
        kinds.add("card_number")
    return kinds


def scan_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, int]]:
    """{column: {kind: count}} over every string value of `rows`; empty when nothing is found."""
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            if isinstance(value, str):
                for kind in pii_kinds(value):
                    found.setdefault(column, {}).setdefault(kind, 0)
                    found[column][kind] += 1
    return found


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def scan_arrow(table: pa.Table) -> dict[str, dict[str, int]]:
    """{column: {kind: count}} over every value of every string column of `table` (dictionary-encoded
    ones included); empty when nothing is found. Same rules as `scan_rows`."""
    found: dict[str, dict[str, int]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(column.type) and _is_text(column.type.value_type):
            column = column.cast(column.type.value_type)
        if not _is_text(column.type) or column.null_count == len(column):
            continue
        candidates = column.filter(pc.fill_null(pc.match_substring_regex(column, _PREFILTER), False))
        counts = scan_rows([name], ((value,) for value in candidates.to_pylist()))
        if counts:
            found[name] = counts[name]
    return found


def describe_findings(found: dict[str, dict[str, int]]) -> str:
    """`column: 2 email, 1 ssn; other: 1 card_number`, columns and kinds sorted (no values)."""
    return "; ".join(
        f"{column}: " + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        for column, kinds in sorted(found.items())
    )
