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
    DEFAULT_TIMESTAMP_FORMATS,
    REJECT_REASON,
    DuplicateCounter,
    add_audit_columns,
    apply_null_defaults,
    cast_to_schema,
    deduplicate_latest,
    infer_date_orders,
    parse_timestamp,
    rename_columns,
    row_hash,
    snake_case_columns,
    split_rejects,
    with_row_hash,
)


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


def test_default_formats_never_read_day_or_month_first(spark) -> None:
    # Which of day/month comes first is decided per input (see the date-order tests), not by a list.
    df = spark.createDataFrame([("28/12/2023 00:00",), ("02/01/2024",), ("12/1/2010 8:26",)], "t string")
    assert [r["ts"] for r in df.select(parse_timestamp(F.col("t")).alias("ts")).collect()] == [None, None, None]


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
        ("A3", "  ", "ext.", None, "€0.99", "-2", None, "N/A", ""),
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
    assert a1["_parse_errors"] == ["unparsable day"]  # "free text ü" is not a date
    a2 = got["A2"]
    assert a2["email"] is None  # the null token NULL is a missing value, not an error
    assert sorted(a2["_parse_errors"]) == ["unparsable price", "unparsable qty", "unparsable updated_at"]
    a3 = got["A3"]
    assert a3["email"] is None and a3["phone"] is None and a3["country"] is None
    assert a3["price"] == Decimal("0.99") and a3["qty"] == -2 and a3["updated_at"] is None
    # "  " and "N/A" are null tokens; "ext." in a digits-only column holds no digit: unparsable.
    assert a3["_parse_errors"] == ["unparsable phone"]
    # decimal(12,2) overflow is unparsable, not silently NULL
    assert "unparsable price" in got[None]["_parse_errors"]


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
        [("1", 5, []), (None, 5, []), (None, None, ["unparsable qty"]),
         ("4", None, ["unparsable qty", "unparsable day"])],
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
    # A given tie hash decides a full tie instead: the greatest value wins.
    for favoured in ("tie p", "tie q"):
        marked = df.withColumn("_h", F.when(F.col("v") == favoured, "b").otherwise("a"))
        kept = deduplicate_latest(marked, ["id"], ["updated_at"], tie_hash="_h").filter("id = 'C4'").first()
        assert kept["v"] == favoured and "_tie" not in kept.asDict()


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
    # Hashed before the de-duplication: the same values, the column still last.
    early = add_audit_columns(with_row_hash(df, ["k", "v"]), None, "r")
    assert [r["_row_hash"] for r in early.collect()] == hashes and early.columns[-1] == "_row_hash"
    assert audited.columns[-1] == "_row_hash"


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


# Day/month order of slash, dot and dash dates: decided per source file from the values that can only
# be read one way; rows whose reading stays open are rejected with a reason, never guessed.
DATE_ORDER_CASES = [
    # (source file, text as delivered, expected timestamp or None, expected problem or None)
    ("eu.csv", "13/01/2024 08:00", datetime(2024, 1, 13, 8, 0), None),
    ("eu.csv", "02/01/2024 09:30", datetime(2024, 1, 2, 9, 30), None),  # day-first: 13/01 decided it
    ("eu.csv", "30/02/2024 10:00", None, "unparsable sold_at"),  # day-first, but there is no 30 February
    ("us.csv", "12/13/2010 8:26", datetime(2010, 12, 13, 8, 26), None),
    ("us.csv", "12/1/2010 8:26", datetime(2010, 12, 1, 8, 26), None),  # US export: no leading zeros
    ("us.csv", "2010-12-02 10:00:00", datetime(2010, 12, 2, 10, 0), None),  # ISO needs no decision
    ("open.csv", "10/11/2011", None, "ambiguous date in sold_at"),
    ("open.csv", "05/05/2024 07:15:30", datetime(2024, 5, 5, 7, 15, 30), None),  # both readings agree
    ("mixed.csv", "13/01/2024", datetime(2024, 1, 13), None),  # only one reading exists
    ("mixed.csv", "01/14/2024", datetime(2024, 1, 14), None),
    ("mixed.csv", "02/03/2024", None, "conflicting date order in sold_at"),
    ("de.csv", "31.12.2023 23:59:59", datetime(2023, 12, 31, 23, 59, 59), None),
    ("de.csv", "01.02.2024", datetime(2024, 2, 1), None),
]


def test_day_month_order_is_decided_per_file_or_rejected(spark) -> None:
    df = spark.createDataFrame(
        [(f"L{i}", text, path) for i, (path, text, _, _) in enumerate(DATE_ORDER_CASES)],
        "line string, sold_at string, _source_file string",
    )
    assert infer_date_orders(df, ["sold_at"]) == {
        "eu.csv": "day-first", "us.csv": "month-first", "open.csv": "undecided", "mixed.csv": "conflicting",
        "de.csv": "day-first",
    }
    typed = cast_to_schema(df, {"line": "string", "sold_at": "timestamp"})
    good, bad = split_rejects(typed, ["line", "sold_at"])
    got = {r["line"]: (r["sold_at"], None) for r in good.collect()}
    got |= {r["line"]: (None, r[REJECT_REASON]) for r in bad.collect()}
    for i, (path, text, expected, problem) in enumerate(DATE_ORDER_CASES):
        value, reason = got[f"L{i}"]
        assert value == expected, (path, text)
        if problem is None:
            assert reason is None, (path, text, reason)
        else:
            assert reason.startswith(problem) and "missing" not in reason, (path, text, reason)
            if "unparsable" not in problem:
                assert "configure timestamp_formats" in reason


def test_day_month_order_without_source_file_is_decided_per_batch(spark) -> None:
    df = spark.createDataFrame([("a", "02/01/2024"), ("b", "25/12/2023")], "id string, d string")
    typed = cast_to_schema(df, {"id": "string", "d": "date"})
    assert {r["id"]: r["d"] for r in typed.collect()} == {"a": date(2024, 1, 2), "b": date(2023, 12, 25)}


def test_configured_formats_are_tried_before_the_day_month_decision(spark) -> None:
    df = spark.createDataFrame([("a", "10/11/2011 08:26")], "id string, t string")
    typed = cast_to_schema(df, {"id": "string", "t": "timestamp"},
                           timestamp_formats=["MM/dd/yyyy HH:mm", *DEFAULT_TIMESTAMP_FORMATS])
    row = typed.first()
    assert row["t"] == datetime(2011, 10, 11, 8, 26) and row["_parse_errors"] == []


def test_default_null_tokens_and_na_as_a_missing_key(spark) -> None:
    schema = {"customer_id": "string", "first_name": "string", "country": "string", "quantity": "int",
              "unit_price": "decimal(12,2)", "updated_at": "timestamp"}
    rows = [
        ("NA", "NA", "NA", "NA", "NA", "NA"),
        ("C1", "None", " - ", "-", "#N/A", "NULL"),
        ("C2", "null", "N/A", " ", "NaN", "nan"),
        ("C3", "Null", "DE", "n/a", "", "None"),
    ]
    df = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in schema))
    typed = cast_to_schema(df, schema, id_columns=["customer_id"])
    got = [r.asDict() for r in typed.orderBy(F.col("customer_id").asc_nulls_first()).collect()]
    # `NA` in an id, number or date is no value; in text it stays (it is Namibia's country code).
    assert got[0]["customer_id"] is None and got[0]["country"] == "NA" and got[0]["first_name"] == "NA"
    assert got[0]["quantity"] is None and got[0]["unit_price"] is None and got[0]["updated_at"] is None
    assert [r["_parse_errors"] for r in got] == [[], [], [], []]
    assert got[1]["first_name"] is None and got[1]["country"] is None and got[1]["quantity"] is None
    assert got[2]["first_name"] is None and got[2]["country"] is None and got[2]["unit_price"] is None
    assert got[3]["first_name"] == "Null"  # a surname; only the all-caps/lower-case tokens are null
    _, bad = split_rejects(typed, ["customer_id"])
    assert [r[REJECT_REASON] for r in bad.collect()] == ["missing customer_id"]


def test_integral_float_ids_lose_their_fraction(spark) -> None:
    cases = [("17850.0", "17850"), ("17850.00", "17850"), (" 17850 ", "17850"), ("17850.5", "17850.5"),
             ("C17850.0", "C17850.0"), ("0.0", "0")]
    df = spark.createDataFrame([(raw, raw) for raw, _ in cases], "customer_id string, note string")
    typed = cast_to_schema(df, {"customer_id": "string", "note": "string"}, id_columns=["customer_id"])
    rows = typed.collect()
    assert [r["customer_id"] for r in rows] == [want for _, want in cases]
    assert [r["note"] for r in rows] == [raw.strip() for raw, _ in cases]  # other columns untouched


def test_duplicate_counter_tells_exact_copies_from_conflicting_rows_in_the_write(spark, tmp_path) -> None:
    rows = [
        ("L1", "P1", 2, "S1"), ("L1", "P1", 2, "S1"), ("L1", "P1", 2, "S1"),  # re-delivered twice
        ("L2", "P1", 1, "S1"), ("L2", "P2", 1, "S1"),  # one order number mapped to the line key: two products
        ("L3", "P1", 1, "S1"), ("L3", "P1", 1, "S1"), ("L3", "P1", 5, "S1"),
        ("L4", "P9", 1, "S1"),
        ("L5", None, 1, "S1"), ("L5", None, 1, "S1"),
        ("L6", None, 1, "S1"), ("L6", "", 1, "S1"),  # NULL and empty differ
        ("L7", "S1", 1, None), ("L7", None, 1, "S1"),  # the same values in other columns differ
        ("L8", None, 1, None), ("L8", None, 1, None),
    ]
    df = spark.createDataFrame(rows, "sale_line_id string, product_id string, quantity int, location_id string")
    df = df.withColumn("_ingested_at", F.monotonically_increasing_id())  # lineage columns never count
    by_key: dict[str, list[tuple]] = {}
    for row in rows:
        by_key.setdefault(row[0], []).append(row)
    exact = sum(len(v) - len(set(v)) for v in by_key.values())
    conflicting_keys = sorted(k for k, v in by_key.items() if len(set(v)) > 1)
    conflicting = sum(len(set(v)) - 1 for v in by_key.values())
    counter = DuplicateCounter(sample_size=2)
    kept_rows = deduplicate_latest(df, ["sale_line_id"], [], counter=counter)
    # Counted by the job that writes the kept rows, as the processed step writes them.
    kept_rows.write.parquet(str(tmp_path / "kept"))
    kept = spark.read.parquet(str(tmp_path / "kept")).count()
    stats = counter.stats()
    assert (stats.exact_duplicates, stats.conflicting_rows, stats.conflicting_keys) == (
        exact, conflicting, len(conflicting_keys))
    assert stats.sample_keys == [{"sale_line_id": k} for k in conflicting_keys[:2]]
    assert kept == len(by_key)
    assert stats.removed == exact + conflicting == len(rows) - kept
    assert stats.rows == len(rows)


def test_rejected_rows_pass_through_the_deduplication_uncounted(spark, tmp_path) -> None:
    """With `reason`, every rejected row comes out as it is, beside one usable row per key: even when it
    shares the key and would sort first (a later `sold_at`), and even when it repeats another row."""
    rows = [
        ("L1", 1, "P1", ""), ("L1", 1, "P1", ""), ("L1", 3, "P2", "unparsable quantity"),
        ("L2", 2, "P1", ""), ("L2", 1, "P3", ""),  # the same key, other content: conflicting
        ("L3", 9, "P1", "missing product_id"), ("L3", 9, "P1", "missing product_id"),  # no usable row
        (None, 5, "P1", "missing sale_line_id"),
        ("L4", 1, "P4", ""),
    ]
    df = spark.createDataFrame(rows, "sale_line_id string, sold_at int, product_id string, _reject_reason string")
    usable = [r for r in rows if r[3] == ""]
    by_key: dict[str, list[tuple]] = {}
    for row in usable:
        by_key.setdefault(row[0], []).append(row)
    latest = {max(v, key=lambda r: r[1]) for v in by_key.values()}
    counter = DuplicateCounter()
    out = deduplicate_latest(df, ["sale_line_id"], ["sold_at"], counter=counter, reason="_reject_reason")
    out.write.parquet(str(tmp_path / "out"))
    written = sorted((tuple(r) for r in spark.read.parquet(str(tmp_path / "out")).collect()), key=repr)
    assert written == sorted([*latest, *(r for r in rows if r[3] != "")], key=repr)
    stats = counter.stats()
    assert stats.rows == len(usable)
    assert stats.quarantined == len(rows) - len(usable)
    assert stats.exact_duplicates == sum(len(v) - len(set(v)) for v in by_key.values())
    assert stats.conflicting_keys == sum(len(set(v)) > 1 for v in by_key.values())
    assert stats.sample_keys == [{"sale_line_id": k} for k, v in sorted(by_key.items()) if len(set(v)) > 1]
