"""The key figures on Arrow (`lake_assets/checks/dimension_keys.py`) over tables built for each case,
against figures worked out by hand from the rows, in one bucket and spread over several, and against
the same figures aggregated by Spark SQL over the same rows."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import pyarrow as pa
import pytest

from lake_assets.checks.dimension_keys import KeyFigures, key_figures

END = datetime(9999, 12, 31)
T = [datetime(2024, 1, d) for d in range(1, 8)]

SCHEMA = pa.schema([("customer_key", pa.int64()), ("customer_id", pa.string()),
                    ("valid_from", pa.timestamp("us", tz="UTC")), ("valid_to", pa.timestamp("us", tz="UTC")),
                    ("is_current", pa.bool_())])


def _table(rows: list[tuple[object, ...]]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], schema=SCHEMA)


# (rows, figures expected), each worked out from the rows.
CASES = {
    "clean": ([
        (-1, "UNKNOWN", datetime(1900, 1, 1), END, True),
        (1, "C1", datetime(1900, 1, 1), T[2], False),
        (2, "C1", T[2], END, True),
        (3, "C2", datetime(1900, 1, 1), T[1], False),  # closed by a delete, re-appearing later: a gap
        (4, "C2", T[4], END, True),
    ], KeyFigures(rows=5, distinct_keys=5)),
    "repeated and null keys": ([
        (1, "C1", T[0], END, True),
        (1, "C2", T[0], END, True),
        (None, "C3", T[0], END, True),
        (None, "C4", T[0], END, True),
    ], KeyFigures(rows=4, distinct_keys=1, null_keys=2)),
    "two current rows of a member": ([
        (1, "C1", T[0], T[2], True),
        (2, "C1", T[2], END, True),
        (3, "C2", T[0], END, True),
    ], KeyFigures(rows=3, distinct_keys=3, several_current=1)),
    "overlapping and empty versions": ([
        (1, "C1", T[0], T[3], False),  # runs past C1's next version (from T[2])
        (2, "C1", T[2], END, True),
        (3, "C2", T[4], T[4], False),  # empty validity
        (4, "C2", T[5], END, True),
    ], KeyFigures(rows=4, distinct_keys=4, overlaps=2)),
    "open version not current": ([
        (1, "C1", T[0], END, False),
        (2, "C2", T[0], T[1], False),  # closed, last version: not open
        (3, "C3", T[0], T[1], False),
        (4, "C3", T[1], END, True),
    ], KeyFigures(rows=4, distinct_keys=4, open_not_current=1)),
    "null members and times": ([
        (1, None, T[0], T[3], True),   # NULL members form one member: this runs past the next one's start
        (2, None, T[1], END, True),    # two current NULL-member rows: not counted (no member)
        (3, "C1", None, END, True),    # NULL start: ordered first, no empty validity, runs past the next start
        (4, "C1", T[0], None, False),  # NULL end: no overlap either way, not open
    ], KeyFigures(rows=4, distinct_keys=4, overlaps=2, several_current=0)),
}


def _batches(table: pa.Table, size: int) -> list[pa.RecordBatch]:
    return table.to_batches(max_chunksize=size)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("spread", [False, True])
def test_figures_equal_those_worked_out_from_the_rows(case: str, spread: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if spread:  # a bucket per row: the keys and members of a case spread over several spilled buckets
        monkeypatch.setattr("lake_assets.checks.dimension_keys.bucket_count", lambda rows: rows)
    rows, expected = CASES[case]
    table = _table(rows)
    got = key_figures(_batches(table, 2), SCHEMA, table.num_rows, "customer_key", "customer_id", open_until=END)
    assert got == expected


def test_without_a_member_column_only_the_key_is_read() -> None:
    table = pa.table({"location_key": pa.array([1, 2, 2, None], pa.int64())})
    got = key_figures(_batches(table, 3), table.schema, table.num_rows, "location_key")
    assert got == KeyFigures(rows=4, distinct_keys=2, null_keys=1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_figures_equal_spark_sql_over_the_same_rows(case: str, spark) -> None:
    """The same figures as SQL window functions and aggregates give over the rows."""
    rows, _ = CASES[case]
    table = _table(rows)
    spark.createDataFrame(table.to_pylist(), "customer_key bigint, customer_id string, valid_from timestamp, "
                          "valid_to timestamp, is_current boolean").createOrReplaceTempView("dim")
    sql = spark.sql("""
        WITH v AS (
          SELECT *, SUM(CAST(is_current AS INT)) OVER (PARTITION BY customer_id) AS current_rows,
                 LEAD(valid_from) OVER (PARTITION BY customer_id ORDER BY valid_from) AS next_from
          FROM dim)
        SELECT COUNT(1) AS `rows`, COUNT(DISTINCT customer_key) AS distinct_keys,
               COALESCE(SUM(CAST(customer_key IS NULL AS INT)), 0) AS null_keys,
               COUNT(DISTINCT CASE WHEN current_rows > 1 THEN customer_id END) AS several_current,
               COALESCE(SUM(CAST((valid_from >= valid_to) OR (next_from IS NOT NULL AND next_from < valid_to)
                                 AS INT)), 0) AS overlaps,
               COALESCE(SUM(CAST(next_from IS NULL AND NOT is_current AND valid_to = TIMESTAMP'9999-12-31'
                                 AS INT)), 0) AS open_not_current
        FROM v""").collect()[0].asDict()
    got = key_figures(_batches(table, 2), SCHEMA, table.num_rows, "customer_key", "customer_id", open_until=END)
    assert asdict(got) == sql
