"""Finding where sale lines live in curated/fact_sales from the manifests' line bounds, and the rows
the uniqueness check reads: exact (a file that holds a line is never skipped), and independent of
how many earlier sale dates hold other lines. Fact partitions are written straight into the lake."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from lake_assets.assets.fact_lines import files_meeting, files_that_may_hold, line_counts, sale_dates_holding
from lake_assets.assets.fact_partitions import FACT_KEY, SALE_DATE
from lake_assets.io_managers.spark_lake import write_spark_partitions
from lake_assets.resources.lake_storage import LakeStorage


def _facts(spark: SparkSession, rows: list[tuple[str | None, str]], tasks: int = 1) -> DataFrame:
    """(sale_line_id, sale date) pairs as fact rows, in `tasks` Spark partitions (one: a small day's
    sales, read from one file)."""
    return spark.createDataFrame([(line, date.fromisoformat(day)) for line, day in rows],
                                 f"sale_line_id string, {SALE_DATE} date").repartition(tasks)


def _lines(spark: SparkSession, ids: list[str]) -> DataFrame:
    return spark.createDataFrame([(i,) for i in ids], "sale_line_id string")


def test_only_files_whose_bounds_enclose_a_line_are_read(tmp_path: Path, spark: SparkSession) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    days = [f"2024-01-0{n}" for n in range(1, 6)]
    # Five days of history, each day's lines numbered after the last day's (order numbers).
    history = {day: [f"L{n}{k:03d}" for k in range(3)] for n, day in enumerate(days, start=1)}
    for day, ids in history.items():
        write_spark_partitions(_facts(spark, [(i, day) for i in ids]), lake, FACT_KEY, SALE_DATE)
    files = {b.partition: b.path for b in lake.string_bounds(FACT_KEY, "sale_line_id")}
    assert sorted(files) == days

    # New lines: no file of any earlier date can hold them, however many dates there are.
    assert files_that_may_hold(spark, lake, _lines(spark, ["L6000", "L6001"])) == []
    # A line of day 2 delivered again: day 2's file alone.
    assert files_that_may_hold(spark, lake, _lines(spark, ["L2001", "L6000"])) == [files["2024-01-02"]]
    # Inside day 2's bounds but in no file: the file is read (bounds cannot tell), the line is not found.
    assert files_that_may_hold(spark, lake, _lines(spark, ["L2001x"])) == [files["2024-01-02"]]
    assert files_that_may_hold(spark, lake, _lines(spark, ["L1999"])) == []
    holding = sale_dates_holding(spark, lake, _lines(spark, ["L2001", "L4002", "L2001x"]))
    assert holding is not None
    assert sorted(r[0].isoformat() for r in holding.distinct().collect()) == ["2024-01-02", "2024-01-04"]


def test_a_line_written_twice_is_met_twice_when_one_row_is_in_a_written_date(
    tmp_path: Path, spark: SparkSession
) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    rows = [("L1000", "2024-01-01"), ("L1001", "2024-01-01"), ("L2000", "2024-01-02"),
            ("L3000", "2024-01-03"), ("L1001", "2024-01-03")]  # L1001 in two sale dates
    write_spark_partitions(_facts(spark, rows), lake, FACT_KEY, SALE_DATE)

    def met(written: set[str]) -> dict[str, int]:
        files = files_meeting(lake, written)
        return dict(Counter(i for f in files for i in pq.read_table(f, columns=["sale_line_id"])[0].to_pylist()))

    # The oracle from the input: every line with a row in the written date, counted over the table.
    for written in ({"2024-01-03"}, {"2024-01-01"}):
        expected = {line for line, day in rows if day in written}
        seen = met(written)
        assert expected <= set(seen)
        for line in expected:
            assert seen[line] == sum(1 for other, _ in rows if other == line)
    # A duplicate with no row in the written dates is not this write's (the narrower guarantee).
    # (Day 3's file is read, its bounds L1001..L3000 overlapping L2000's, but day 1's is not: L1001 is seen once.)
    seen = met({"2024-01-02"})
    assert seen["L2000"] == 1 and all(count == 1 for count in seen.values())
    assert files_meeting(lake, set()) == []


def test_only_files_overlapping_the_written_dates_lines_are_met(tmp_path: Path, spark: SparkSession) -> None:
    """Growing line ids: a new day's lines lie above every earlier file's bounds, so no earlier date's
    file is read, however long the history."""
    lake = LakeStorage(url=str(tmp_path / "lake"))
    for n in range(1, 6):
        day = f"2024-01-0{n}"
        write_spark_partitions(_facts(spark, [(f"L{n}{k:03d}", day) for k in range(3)]), lake, FACT_KEY, SALE_DATE)
    files = {b.partition: b.path for b in lake.string_bounds(FACT_KEY, "sale_line_id")}
    assert files_meeting(lake, {"2024-01-05"}) == [files["2024-01-05"]]
    assert files_meeting(lake, {"2024-01-02", "2024-01-04"}) == sorted(files[f"2024-01-0{n}"] for n in (2, 3, 4))


def test_a_date_spread_over_several_tasks_is_several_files_each_one_date(
    tmp_path: Path, spark: SparkSession
) -> None:
    """A large day's sales are read by several tasks (one per input split), each writing its own file
    per date it holds, with no shuffle between: every file holds one date, a date has no more files
    than there are tasks, every row is committed once, and a line is still found in exactly the file
    that holds it."""
    lake = LakeStorage(url=str(tmp_path / "lake"))
    rows = [(f"L{k:05d}", "2024-01-01") for k in range(6000)] + [("M00001", "2024-01-02")]
    commits = write_spark_partitions(_facts(spark, rows, tasks=3), lake, FACT_KEY, SALE_DATE)
    assert {day: c.rows for day, c in commits.items()} == {"2024-01-01": 6000, "2024-01-02": 1}
    bounds = lake.string_bounds(FACT_KEY, "sale_line_id")
    big = [b for b in bounds if b.partition == "2024-01-01"]
    assert len(big) == 3 and [b.partition for b in bounds].count("2024-01-02") == 1
    stored = spark.read.parquet(*[b.path for b in bounds])
    assert stored.count() == len(rows)
    assert {(r[0], r[1].isoformat()) for r in stored.select("sale_line_id", SALE_DATE).collect()} == set(rows)
    for b in big:
        in_file = spark.read.parquet(b.path).select("sale_line_id", SALE_DATE).collect()
        assert {r[1].isoformat() for r in in_file} == {"2024-01-01"}
        line = in_file[0][0]
        assert b.path in files_that_may_hold(spark, lake, _lines(spark, [line]))


def test_a_task_holding_more_dates_than_its_open_files_still_writes_one_date_a_file(
    tmp_path: Path, spark: SparkSession
) -> None:
    """A backfill's lines span many sale dates: one task meeting more dates than
    `spark.sql.maxConcurrentOutputFileWriters` sorts the rest by date; each file still holds one date and
    every row is committed once."""
    open_files = int(spark.conf.get("spark.sql.maxConcurrentOutputFileWriters"))
    days = [f"2024-02-{n:02d}" for n in range(1, open_files + 4)]
    rows = [(f"L{k:05d}", days[k % len(days)]) for k in range(700)]  # dates interleaved, one task
    commits = write_spark_partitions(_facts(spark, rows), lake := LakeStorage(url=str(tmp_path / "lake")),
                                     FACT_KEY, SALE_DATE)
    assert {day: c.rows for day, c in commits.items()} == {d: sum(1 for _, r in rows if r == d) for d in days}
    for b in lake.string_bounds(FACT_KEY, "sale_line_id"):
        in_file = spark.read.parquet(b.path).select("sale_line_id", SALE_DATE).collect()
        assert {r[1].isoformat() for r in in_file} == {b.partition}
        assert {r[0] for r in in_file} == {line for line, day in rows if day == b.partition}


def test_line_counts_are_exact_with_repeated_and_null_ids(tmp_path: Path, spark: SparkSession) -> None:
    """Rows and distinct non-NULL ids of the files, as COUNT(*) and COUNT(DISTINCT) of their rows have
    them, a repeat within one file and across two counted alike."""
    cases = {
        "unique": [(f"L{k:04d}", "2024-01-01") for k in range(500)],
        "repeated in a file": [(f"L{k:04d}", "2024-01-01") for k in range(500)] + [("L0007", "2024-01-01")],
        "repeated across files": [("L0001", "2024-01-01"), ("L0001", "2024-01-02"), ("L0002", "2024-01-02")],
        "NULL ids": [(f"L{k:04d}", "2024-01-01") for k in range(10)] + [(None, "2024-01-01")] * 2,
    }
    for number, (name, rows) in enumerate(cases.items()):
        lake = LakeStorage(url=str(tmp_path / f"lake{number}"))
        write_spark_partitions(_facts(spark, rows), lake, FACT_KEY, SALE_DATE)
        files = [b.path for b in lake.string_bounds(FACT_KEY, "sale_line_id")]
        expected = {"rows": len(rows), "distinct_lines": len({i for i, _ in rows if i is not None})}
        assert line_counts(lake, files) == expected, name
    assert line_counts(LakeStorage(url=str(tmp_path / "none")), []) == {"rows": 0, "distinct_lines": 0}
