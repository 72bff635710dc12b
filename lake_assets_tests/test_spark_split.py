"""One Spark job staging a frame's usable rows and its rejected rows as two lake tables
(`write_spark_split`), on a local lake and on S3: each side's rows and columns, and a side without rows
still replacing its partition."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lake_assets.io_managers.spark_split import write_spark_split
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import lake_of_kind

pytestmark = pytest.mark.services  # the S3 lake: moto S3 and a PostgreSQL catalog

USABLE_KEY, REJECTED_KEY = ["processed", "thing"], ["quarantine", "processed", "thing"]
DAY = "2024-03-05"
AUDIT = ("_processed_at", "_run_id", "_row_hash")
SCHEMA = ("id string, qty int, note string, _source_file string, _reject_reason string, "
          "_processed_at timestamp, _run_id string, _row_hash string")
AT = datetime(2024, 3, 5, 7, 30, tzinfo=timezone.utc)


def _split(spark: SparkSession, lake: LakeStorage, rows: list[tuple]) -> None:
    frame = spark.createDataFrame(rows, SCHEMA)
    with lake.spool(USABLE_KEY, DAY) as usable, lake.spool(REJECTED_KEY, DAY) as rejected:
        write_spark_split(frame, lake, usable, rejected, "_reject_reason", usable_only=AUDIT, carrier="_row_hash")
        usable.commit()
        rejected.commit()


def _rows(lake: LakeStorage, key: list[str]) -> tuple[list[str], list[tuple]]:
    table = lake.read_arrow(key, DAY)
    return table.column_names, sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_usable_and_rejected_rows_land_in_their_own_tables(
    kind: str, spark: SparkSession, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    lake = lake_of_kind(kind, tmp_path, request)
    rows = [
        ("A1", 2, "Zoë", "f1.csv", "", AT, "run-1", "h-a1"),
        ("A2", 1, None, "f1.csv", "", AT, "run-1", None),  # a NULL in a usable-only column stays NULL
        ("A3", 7, "", "f2.csv", "", AT, "run-1", "h-a3"),
        ("A1", None, "x", "f2.csv", "missing qty", AT, "run-1", "h-dup"),  # shares a key with a usable row
        (None, 3, "y", "f2.csv", "missing id; unparsable when", AT, "run-1", "h-none"),
    ]
    _split(spark, lake, rows)

    usable_columns, usable_rows = _rows(lake, USABLE_KEY)
    assert usable_columns == ["id", "qty", "note", "_source_file", "_processed_at", "_run_id", "_row_hash"]
    assert usable_rows == sorted(((i, q, n, f, at, run, h) for i, q, n, f, r, at, run, h in rows if r == ""), key=repr)
    rejected_columns, rejected_rows = _rows(lake, REJECTED_KEY)
    assert rejected_columns == ["id", "qty", "note", "_source_file", "_reject_reason"]
    assert rejected_rows == sorted(((i, q, n, f, r) for i, q, n, f, r, *_ in rows if r != ""), key=repr)
    assert not lake.read_schema(REJECTED_KEY, DAY).field("_reject_reason").nullable

    # The same day again with nothing to reject: the quarantine partition is emptied, not left as it was.
    _split(spark, lake, rows[:3])
    assert _rows(lake, REJECTED_KEY) == (rejected_columns, [])
    assert len(_rows(lake, USABLE_KEY)[1]) == 3

    # Everything rejected: the processed partition is emptied.
    _split(spark, lake, rows[3:])
    assert _rows(lake, USABLE_KEY) == (usable_columns, [])
    assert len(_rows(lake, REJECTED_KEY)[1]) == 2


def test_a_carrier_outside_the_usable_only_columns_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    frame = spark.createDataFrame([("A1", 1, "n", "f", "", AT, "r", "h")], SCHEMA)
    with lake.spool(USABLE_KEY, DAY) as usable, lake.spool(REJECTED_KEY, DAY) as rejected, \
            pytest.raises(ValueError, match="carrier"):
        write_spark_split(frame, lake, usable, rejected, "_reject_reason", usable_only=AUDIT, carrier="note")
