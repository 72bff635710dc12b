"""SCD2 change detection on real-world input: no change timestamp, masked attributes, NULL Type-1 values.

Expected rows are written out from the fixtures; hashes are checked against Python's `hmac`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark.masking import REDACTED
from spark.scd2 import ATTR_HASH, attribute_hash, empty_scd2_dimension, scd2_merge

B, E = datetime(1900, 1, 1), datetime(9999, 12, 31)
KEY = b"k" * 32


def _merge(dim: DataFrame, changes: DataFrame, attrs: dict[str, str], **kwargs) -> DataFrame:
    return scd2_merge(
        dim, changes, key_col="customer_key", natural_key="customer_id", attributes=attrs,
        effective_col="updated_at", delete_policy="close", **kwargs,
    ).localCheckpoint()


def _versions(dim: DataFrame, *cols: str) -> list[tuple]:
    return sorted(tuple(r) for r in dim.filter("customer_key <> -1").select("customer_id", *cols, "valid_from",
                                                                           "valid_to", "is_current").collect())


def test_change_without_timestamp_is_a_version_stamped_at_the_partition_day(spark: SparkSession) -> None:
    attrs = {"city": "string"}
    schema = "customer_id string, city string, updated_at timestamp"
    day1 = spark.createDataFrame([("C1", "Boston", None), ("C2", "Austin", None)], schema)
    day2 = spark.createDataFrame([("C1", "Denver", None), ("C2", "Austin", None)], schema)
    dim = empty_scd2_dimension(spark, "customer_key", "customer_id", attrs)
    dim = _merge(dim, day1, attrs, undated_at=datetime(2024, 1, 1))
    dim = _merge(dim, day2, attrs, undated_at=datetime(2024, 1, 2))
    expected = [
        ("C1", "Boston", B, datetime(2024, 1, 2), False),
        ("C1", "Denver", datetime(2024, 1, 2), E, True),  # the move, effective at 00:00 of the day applied
        ("C2", "Austin", B, E, True),  # unchanged: no version
    ]
    assert _versions(dim, "city") == expected
    # Re-applying either day (a rerun, a re-ingest) changes nothing.
    again = _merge(_merge(dim, day2, attrs, undated_at=datetime(2024, 1, 2)), day1, attrs,
                   undated_at=datetime(2024, 1, 1))
    assert _versions(again, "city") == expected


def test_masked_change_is_detected_through_the_keyed_hash(spark: SparkSession) -> None:
    attrs = {"street_address": "string", "city": "string"}
    schema = "customer_id string, street_address string, city string, updated_at timestamp"
    unmasked1 = [("C1", "1 Oak Ave", "Boston", datetime(2024, 1, 1, 9)), ("C2", "7 Elm St", "Boston",
                                                                          datetime(2024, 1, 1, 9))]
    unmasked2 = [("C1", "9 Pine Rd", "Boston", datetime(2024, 1, 2, 9))]  # moved within the city

    def masked(rows: list[tuple]) -> DataFrame:
        frame = spark.createDataFrame(rows, schema)
        return frame.withColumn(ATTR_HASH, attribute_hash(["street_address", "city"], KEY)).withColumn(
            "street_address", F.lit(REDACTED))

    day1 = masked(unmasked1)
    # The oracle: Python's hmac over the same text layout (values joined by U+001F).
    got = {r.customer_id: r[ATTR_HASH] for r in day1.collect()}
    for customer_id, street, city, _ in unmasked1:
        text = f"{street}\u001f{city}".encode()
        assert got[customer_id] == hmac.new(KEY, text, hashlib.sha256).hexdigest()
    dim = _merge(empty_scd2_dimension(spark, "customer_key", "customer_id", attrs), day1, attrs)
    hashes = {r.customer_id: r.row_hash for r in dim.filter("customer_key <> -1").collect()}
    assert hashes["C1"] != hashes["C2"]  # different streets, same masked row
    dim = _merge(dim, masked(unmasked2), attrs)
    assert _versions(dim, "street_address") == [
        ("C1", REDACTED, B, datetime(2024, 1, 2, 9), False),
        ("C1", REDACTED, datetime(2024, 1, 2, 9), E, True),
        ("C2", REDACTED, B, E, True),
    ]


def test_type1_null_keeps_the_last_known_value_unless_overwrite(spark: SparkSession) -> None:
    attrs = {"product_name": "string", "category": "string"}
    schema = "customer_id string, product_name string, category string, updated_at timestamp"
    day1 = spark.createDataFrame([("P1", "Kettle", "kitchen", datetime(2024, 1, 1)),
                                  ("P2", "Mug", "kitchen", datetime(2024, 1, 1))], schema)
    day2 = spark.createDataFrame([
        ("P1", None, "home", datetime(2024, 1, 2)),  # the name arrives NULL with a Type-2 change
        ("P2", "Mug XL", "kitchen", datetime(2024, 1, 2, 1)),
        ("P2", None, "kitchen", datetime(2024, 1, 2, 2)),  # a later NULL does not undo the new name
    ], schema)
    start = empty_scd2_dimension(spark, "customer_key", "customer_id", attrs)
    kwargs = dict(type1_columns=("product_name",))
    dim = _merge(_merge(start, day1, attrs, **kwargs), day2, attrs, **kwargs)
    assert _versions(dim, "product_name", "category") == [
        ("P1", "Kettle", "home", datetime(2024, 1, 2), E, True),
        ("P1", "Kettle", "kitchen", B, datetime(2024, 1, 2), False),
        ("P2", "Mug XL", "kitchen", B, E, True),
    ]
    kwargs = dict(type1_columns=("product_name",), type1_null_policy="overwrite")
    dim = _merge(_merge(start, day1, attrs, **kwargs), day2, attrs, **kwargs)
    assert [(r[0], r[1]) for r in _versions(dim, "product_name", "category")] == [
        ("P1", None), ("P1", None), ("P2", None)]
