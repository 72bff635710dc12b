"""Independent oracles for the end-to-end tests: computed from the source files with the standard
library only, never with the pipeline's own code."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from lake_assets.checks.pii_scan import scan_rows

SALES_FIELDS = 10


def source_sales(sample_dir: Path, day: str) -> dict[str, tuple[int, Decimal, Decimal]]:
    """{line id: (qty, unit price, discount)} of a day's sales files: well-formed rows, de-duplicated."""
    lines: dict[str, tuple[int, Decimal, Decimal]] = {}
    for path in sorted((sample_dir / day).glob("sales_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if len(row) != SALES_FIELDS:
                    continue
                price = Decimal(row[7].replace("$", "").replace(",", "").strip())
                lines[row[0].strip()] = (int(row[6]), price, Decimal(row[8] or "0"))
    return lines


def malformed_sales_rows(sample_dir: Path, day: str) -> int:
    count = 0
    for path in sorted((sample_dir / day).glob("sales_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            count += sum(1 for row in reader if len(row) != SALES_FIELDS)
    return count


def expected_net_total(sample_dir: Path, day: str) -> Decimal:
    return sum(
        ((Decimal(q) * p).quantize(Decimal("0.01")) - d for q, p, d in source_sales(sample_dir, day).values()),
        Decimal("0"),
    )


def pii_in_rows(columns: list[str], rows: Iterable[tuple]) -> dict[str, dict[str, int]]:
    return scan_rows(columns, rows)


def pii_in_parquet_files(files: list[str], filesystem) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for path in files:
        table = pq.read_table(path, filesystem=filesystem)
        rows = zip(*[c.to_pylist() for c in table.columns], strict=True)
        for column, kinds in scan_rows(table.column_names, rows).items():
            found.setdefault(column, {}).update(kinds)
    return found
