"""spark/standardize.py and spark/aggregations.py on small DataFrames: names, types in odd formats,
null tokens and null rules, reject reasons, deterministic de-duplication, audit columns."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from spark.aggregations import aggregate, metric_column
from spark.standardize import (
    REJECT_REASON,
    add_audit_columns,
    apply_null_defaults,
    cast_to_schema,
    deduplicate_latest,
    parse_timestamp,
    rename_columns,
    row_hash,
    snake_case_columns,
    split_rejects,
    to_snake_case,
)


@pytest.mark.parametrize(
    ("raw", "snake"),
    [
        ("Customer ID", "customer_id"),
        ("customerId", "customer_id"),
        ("CUSTOMER-ID", "customer_id"),
        ("  E-Mail ", "e_mail"),
        ("Last Modified", "last_modified"),
        ("Prénom", "prénom"),
        ("zip__code!!", "zip_code"),
    ],
)
def test_to_snake_case(raw: str, snake: str) -> None:
    assert to_snake_case(raw) == snake


def test_snake_case_columns_keeps_lineage_columns_and_rejects_collisions(spark) -> None:
    df = spark.createDataFrame([("1", "a", "f")], "`Cust No` string, `E-Mail` string, _source_file string")
    assert snake_case_columns(df).columns == ["cust_no", "e_mail", "_source_file"]
    clash = spark.createDataFrame([("1", "2")], "`Cust No` string, `cust_no` string")
    with pytest.raises(ValueError, match="collide"):
        snake_case_columns(clash)


def test_rename_columns_compares_source_names_in_snake_case(spark) -> None:
    df = spark.createDataFrame([("1", "x")], "cust_no string, other string")
    assert rename_columns(df, {"Cust_No": "customer_id", "absent": "y"}).columns == ["customer_id", "other"]


TIMESTAMP_CASES = [
    ("2024-01-01 20:25:26", datetime(2024, 1, 1, 20, 25, 26)),
    ("2024-01-01 20:25:26.5", datetime(2024, 1, 1, 20, 25, 26, 500000)),
    ("2024-01-01T05:39:52Z", datetime(2024, 1, 1, 5, 39, 52)),
    ("2024-01-01T07:39:52+02:00", datetime(2024, 1, 1, 5, 39, 52)),
    ("2024/01/01 05:12:56", datetime(2024, 1, 1, 5, 12, 56)),
    ("28/12/2023 00:00", datetime(2023, 12, 28)),
    ("02/01/2024", datetime(2024, 1, 2)),  # day-first: the configured order decides
    (" 2024-03-05 ", datetime(2024, 3, 5)),
    ("Jan 5 2024", datetime(2024, 1, 5)),
    ("2024-02-30", None),
    ("yesterday", None),
    (None, None),
]


def test_parse_timestamp_formats(spark) -> None:
    # One DataFrame for all cases: one Spark job instead of one per case.
    df = spark.createDataFrame([(i, t) for i, (t, _) in enumerate(TIMESTAMP_CASES)], "i int, t string")
    got = [r["ts"] for r in df.select("i", parse_timestamp(F.col("t")).alias("ts")).orderBy("i").collect()]
    assert list(zip([t for t, _ in TIMESTAMP_CASES], got, strict=True)) == TIMESTAMP_CASES


def test_parse_timestamp_uses_only_the_given_formats(spark) -> None:
    df = spark.createDataFrame([("01/02/2024",)], "t string")
    assert df.select(parse_timestamp(F.col("t"), ["MM/dd/yyyy"]).alias("ts")).first()["ts"] == datetime(2024, 1, 2)


SCHEMA = {"id": "string", "email": "string", "phone": "string", "country": "string", "price": "decimal(12,2)",
          "qty": "int", "day": "date", "updated_at": "timestamp"}


def test_cast_to_schema_types_cleans_and_records_unparsable_values(spark) -> None:
    rows = [
        (" A1 ", " Ana@Example.COM ", "+1 (717) 816-1434", "us", "$1,172.66", " 3", "2024-01-05", "2024/01/01 05:12:56",
         "free text ü"),
        ("A2", "NULL", "", "ca", "abc", "3.5x", "31/02/2024", "not a date", None),
        ("A3", "  ", "n/a", None, "€0.99", "-2", None, "N/A", ""),
        (None, "b@c.io", "555", "DE", "99999999999999", "2", "2024-01-01", "2024-01-01", "x"),
    ]
    df = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in [*SCHEMA, "notes"]))
    typed = cast_to_schema(df.drop("day").withColumn("day", F.col("notes")).drop("notes")
                           .withColumn("notes", F.lit(" keep me ")),
                           SCHEMA, lowercase=["email"], uppercase=["country"], digits_only=["phone"])
    got = {r["id"]: r.asDict() for r in typed.collect()}
    a1 = got["A1"]
    assert a1["email"] == "ana@example.com" and a1["phone"] == "17178161434" and a1["country"] == "US"
    assert a1["price"] == Decimal("1172.66") and a1["qty"] == 3
    assert a1["updated_at"] == datetime(2024, 1, 1, 5, 12, 56)
    assert a1["notes"] == "keep me"  # columns outside the schema pass through, trimmed, for PII detection
    assert a1["_parse_errors"] == ["day"]  # "free text ü" is not a date
    a2 = got["A2"]
    assert a2["email"] is None  # the null token NULL is a missing value, not an error
    assert sorted(a2["_parse_errors"]) == ["price", "qty", "updated_at"]
    a3 = got["A3"]
    assert a3["email"] is None and a3["phone"] is None and a3["country"] is None
    assert a3["price"] == Decimal("0.99") and a3["qty"] == -2 and a3["updated_at"] is None
    # "  " and "N/A" are null tokens; "n/a" in a digits-only column holds no digit: unparsable.
    assert a3["_parse_errors"] == ["phone"]
    # decimal(12,2) overflow is unparsable, not silently NULL
    assert "price" in got[None]["_parse_errors"]


def test_cast_to_schema_adds_missing_columns_as_typed_nulls(spark) -> None:
    typed = cast_to_schema(spark.createDataFrame([("1",)], "id string"), {"id": "string", "qty": "int"})
    assert dict(typed.dtypes)["qty"] == "int" and typed.first()["qty"] is None


def test_null_defaults_cast_to_the_column_type_and_bad_defaults_fail(spark) -> None:
    df = spark.createDataFrame([(None, None), (Decimal("1.50"), "x")], "discount decimal(12,2), segment string")
    out = apply_null_defaults(df, {"discount": "0", "segment": "unknown"}).collect()
    assert [(r["discount"], r["segment"]) for r in out] == [(Decimal("0.00"), "unknown"), (Decimal("1.50"), "x")]
    with pytest.raises(ValueError, match="'discount'"):
        apply_null_defaults(df, {"discount": "zero"})
    with pytest.raises(ValueError, match="unknown column"):
        apply_null_defaults(df, {"nope": "1"})


def test_split_rejects_lists_every_reason(spark) -> None:
    df = spark.createDataFrame(
        [("1", 5, []), (None, 5, []), (None, None, ["qty"]), ("4", None, ["qty", "day"])],
        "id string, qty int, _parse_errors array<string>",
    )
    good, bad = split_rejects(df, ["id", "qty"])
    assert [r["id"] for r in good.collect()] == ["1"] and "_parse_errors" not in good.columns
    reasons = sorted(r[REJECT_REASON] for r in bad.collect())
    assert reasons == ["missing id", "missing id; unparsable qty", "unparsable qty; unparsable day"]


def test_deduplicate_latest_keeps_latest_and_is_deterministic_on_ties(spark) -> None:
    rows = [
        ("C1", datetime(2024, 1, 1), datetime(2024, 1, 2, 1), "a.csv", "old"),
        ("C1", datetime(2024, 1, 1), datetime(2024, 1, 2, 2), "a.csv", "newer ingest"),
        ("C1", datetime(2024, 1, 1, 12), datetime(2024, 1, 2, 1), "a.csv", "same-day change"),
        ("C2", None, datetime(2024, 1, 2), "a.csv", "null cursor"),
        ("C2", datetime(2023, 1, 1), datetime(2024, 1, 2), "a.csv", "dated"),
        ("C3", datetime(2024, 1, 1), datetime(2024, 1, 2), "a.csv", "tie x"),
        ("C3", datetime(2024, 1, 1), datetime(2024, 1, 2), "b.csv", "tie later file"),
        ("C4", datetime(2024, 1, 1), datetime(2024, 1, 2), "a.csv", "tie p"),
        ("C4", datetime(2024, 1, 1), datetime(2024, 1, 2), "a.csv", "tie q"),
    ]
    df = spark.createDataFrame(
        rows, "id string, updated_at timestamp, _ingested_at timestamp, _source_file string, v string"
    )
    latest = deduplicate_latest(df, ["id"], ["updated_at", "_ingested_at"], ["_source_file"])
    got = {r["id"]: r["v"] for r in latest.collect()}
    assert got["C1"] == "same-day change" and got["C2"] == "dated" and got["C3"] == "tie later file"
    # Versions (key, cursor): both C1 versions of 2024-01-01 and 12:00 survive, re-delivery removed.
    versions = deduplicate_latest(df, ["id", "updated_at"], ["_ingested_at"], ["_source_file"])
    assert sorted(r["v"] for r in versions.filter("id = 'C1'").collect()) == ["newer ingest", "same-day change"]
    # A full tie is broken by content: the same row wins whatever the input order or partitioning.
    winners = {deduplicate_latest(d, ["id"], ["updated_at"]).filter("id = 'C4'").first()["v"]
               for d in (df, df.orderBy(F.desc("v")), df.repartition(4))}
    assert len(winners) == 1


def test_row_hash_distinguishes_null_from_empty_and_audit_columns(spark) -> None:
    df = spark.createDataFrame([("a", None), ("a", ""), ("ü", "x")], "k string, v string")
    hashes = [r["h"] for r in df.select(row_hash(["k", "v"]).alias("h")).collect()]
    assert len(set(hashes)) == 3
    assert hashes[2] == hashlib.sha256("ü\u001fx".encode()).hexdigest()
    audited = add_audit_columns(df, ["k", "v"], "run-123")
    row = audited.first()
    assert {"_processed_at", "_run_id", "_source", "_row_hash"} <= set(audited.columns)
    assert row["_run_id"] == "run-123" and row["_processed_at"] is not None and row["_source"] is None
    kept = add_audit_columns(df.withColumn("_source", F.lit("shop_files")), ["k"], "r").first()
    assert kept["_source"] == "shop_files"


def test_aggregate_metrics_and_rejects_arbitrary_sql(spark) -> None:
    df = spark.createDataFrame(
        [("S1", date(2024, 1, 1), 2, Decimal("1.50"), "C1"), ("S1", date(2024, 1, 1), 3, None, "C1"),
         ("S2", date(2024, 1, 1), 1, Decimal("2.00"), None)],
        "location_id string, day date, quantity int, price decimal(12,2), customer_id string",
    )
    out = aggregate(df, ["location_id", "day"], {"lines": "count(*)", "units": "sum(quantity)",
                                                   "priced": "count(price)", "customers": "count_distinct(customer_id)",
                                                   "max_price": "max(price)"})
    got = {r["location_id"]: r.asDict() for r in out.collect()}
    assert (got["S1"]["lines"], got["S1"]["units"], got["S1"]["priced"], got["S1"]["customers"]) == (2, 5, 1, 1)
    assert got["S2"]["customers"] == 0 and got["S1"]["max_price"] == Decimal("1.50")
    for bad in ("sum(quantity); drop table x", "exec(quantity)", "sum(*)", "sum(a, b)"):
        with pytest.raises(ValueError):
            metric_column(bad)
    with pytest.raises(ValueError, match="group_by"):
        aggregate(df, ["nope"], {"n": "count(*)"})
