"""SCD Type 2 scenarios over three daily batches, with the expected dimension rows written out.

Members: C1 changes address; C2 changes twice on one day (delivered out of order, plus an exact
duplicate); C3 changes and changes back; C4 is deleted then re-appears; C5 arrives late (a sale
references it on day 1, its row comes on day 2) and is completed in place.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from dagster import AssetCheckResult
from pyspark.sql import DataFrame, SparkSession

from lake_assets.resources.lake_storage import LakeStorage
from spark.scd2 import add_inferred_members, empty_scd2_dimension, late_changes, scd2_merge
from spark.star_schema import build_fact_sales, scd1_merge

ATTRS = {"city": "string", "segment": "string"}
B, E = datetime(1900, 1, 1), datetime(9999, 12, 31)
CHANGE_SCHEMA = "customer_id string, city string, segment string, updated_at timestamp, _deleted boolean"


def t(day: int, hour: int) -> datetime:
    return datetime(2024, 1, day, hour)


DAY1 = [
    ("C1", "Boston", "vip", t(1, 1), False),
    ("C2", "Austin", "vip", t(1, 1), False),
    ("C2", "Austin", "vip", t(1, 1), False),  # exact duplicate
    ("C3", "Austin", "vip", t(1, 1), False),
    ("C4", "Portland", "vip", t(1, 1), False),
]
DAY2 = [
    ("C1", "Denver", "vip", t(2, 10), False),
    ("C2", "Houston", "vip", t(2, 12), False),  # delivered before the earlier change
    ("C2", "Dallas", "vip", t(2, 8), False),
    ("C2", "Houston", "vip", t(2, 12), False),
    ("C3", "Reno", "vip", t(2, 9), False),
    ("C4", None, None, t(2, 11), True),  # hard delete
    ("C5", "Boise", "vip", t(2, 7), False),  # the late-arriving member's real row
]
DAY3 = [
    ("C3", "Austin", "vip", t(3, 9), False),  # change back
    ("C4", "Portland", "vip", t(3, 11), False),  # re-appears
]


def _changes(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, CHANGE_SCHEMA)


def _merge(dim: DataFrame, changes: DataFrame, **kwargs) -> DataFrame:
    return scd2_merge(
        dim, changes, key_col="customer_key", natural_key="customer_id", attributes=ATTRS,
        effective_col="updated_at", **kwargs,
    ).localCheckpoint()


def _rows(dim: DataFrame) -> list[tuple]:
    cols = ["customer_key", "customer_id", "city", "segment", "version", "valid_from", "valid_to",
            "is_current", "is_deleted", "is_inferred"]
    return sorted(tuple(r) for r in dim.select(*cols).collect())


def _run_days(spark: SparkSession, policy: str, days=(DAY1, DAY2, DAY3), **kwargs) -> list[DataFrame]:
    dim = empty_scd2_dimension(spark, "customer_key", "customer_id", ATTRS)
    states = []
    for i, day in enumerate(days):
        dim = _merge(dim, _changes(spark, day), delete_policy=policy, **kwargs)
        if i == 0:  # day 1's sales reference C5 before its row exists
            sold_to = spark.createDataFrame([("C5",), ("C1",), (None,)], "customer_id string")
            dim = add_inferred_members(
                dim, sold_to, key_col="customer_key", natural_key="customer_id", attributes=ATTRS
            ).localCheckpoint()
        states.append(dim)
    return states


UNKNOWN = (-1, "UNKNOWN", "Unknown", "Unknown", 0, B, E, True, False, False)


@pytest.fixture(scope="module")
def close_days(spark: SparkSession) -> list[DataFrame]:
    """The three days under the `close` delete policy (shared: Spark work is the test's cost)."""
    return _run_days(spark, "close")


def test_scd2_scenarios_close_policy(spark: SparkSession, close_days: list[DataFrame]) -> None:
    day1, day2, day3 = close_days
    assert _rows(day1) == [
        UNKNOWN,
        (1, "C1", "Boston", "vip", 1, B, E, True, False, False),
        (2, "C2", "Austin", "vip", 1, B, E, True, False, False),
        (3, "C3", "Austin", "vip", 1, B, E, True, False, False),
        (4, "C4", "Portland", "vip", 1, B, E, True, False, False),
        (5, "C5", "Unknown", "Unknown", 1, B, E, True, False, True),  # inferred
    ]
    assert _rows(day3) == [
        UNKNOWN,
        (1, "C1", "Boston", "vip", 1, B, t(2, 10), False, False, False),
        (2, "C2", "Austin", "vip", 1, B, t(2, 8), False, False, False),
        (3, "C3", "Austin", "vip", 1, B, t(2, 9), False, False, False),
        (4, "C4", "Portland", "vip", 1, B, t(2, 11), False, False, False),  # closed by the delete
        (5, "C5", "Boise", "vip", 1, B, E, True, False, False),  # completed in place, same key
        (6, "C1", "Denver", "vip", 2, t(2, 10), E, True, False, False),
        (7, "C2", "Dallas", "vip", 2, t(2, 8), t(2, 12), False, False, False),
        (8, "C2", "Houston", "vip", 3, t(2, 12), E, True, False, False),
        (9, "C3", "Reno", "vip", 2, t(2, 9), t(3, 9), False, False, False),
        (10, "C3", "Austin", "vip", 3, t(3, 9), E, True, False, False),  # change back is a version
        (11, "C4", "Portland", "vip", 2, t(3, 11), E, True, False, False),  # re-appeared
    ]
    # Re-applying already applied batches changes nothing (reruns are no-ops).
    again = _merge(_merge(day3, _changes(spark, DAY2), delete_policy="close"), _changes(spark, DAY3),
                   delete_policy="close")
    assert _rows(again) == _rows(day3)


def test_scd2_mark_deleted_and_ignore_policies(spark: SparkSession) -> None:
    *_, marked = _run_days(spark, "mark_deleted")
    c4 = [r for r in _rows(marked) if r[1] == "C4"]
    assert c4 == [
        (4, "C4", "Portland", "vip", 1, B, t(2, 11), False, False, False),
        (10, "C4", "Portland", "vip", 2, t(2, 11), t(3, 11), False, True, False),  # the delete, marked
        (12, "C4", "Portland", "vip", 3, t(3, 11), E, True, False, False),  # re-appeared
    ]
    *_, ignored = _run_days(spark, "ignore", days=(DAY1, DAY2))
    assert [r for r in _rows(ignored) if r[1] == "C4"] == [(4, "C4", "Portland", "vip", 1, B, E, True, False, False)]


def test_type1_columns_overwrite_all_versions(spark: SparkSession) -> None:
    day2 = [
        ("C1", "Denver", "corporate", t(2, 10), False),  # Type-2 change (city) plus a Type-1 change
        ("C2", "Austin", "corporate", t(2, 9), False),  # only the Type-1 column changes: no version
    ]
    *_, dim = _run_days(spark, "close", days=(DAY1, day2), type1_columns=("segment",))
    assert [r for r in _rows(dim) if r[1] in ("C1", "C2")] == [
        (1, "C1", "Boston", "corporate", 1, B, t(2, 10), False, False, False),
        (2, "C2", "Austin", "corporate", 1, B, E, True, False, False),
        (6, "C1", "Denver", "corporate", 2, t(2, 10), E, True, False, False),
    ]


def test_never_two_current_rows_or_overlaps(spark: SparkSession) -> None:
    # Many changes, duplicates and two different rows at one instant for one member in one batch.
    rows = [("C9", f"city{i % 3}", "vip", t(1 + i // 5, i % 5), False) for i in range(15)]
    rows += [("C9", "cityX", "vip", t(1, 0), False), ("C9", "city0", "vip", t(2, 2), False)]
    *_, dim = _run_days(spark, "close", days=([r for r in rows if r[3].day == 1], rows))
    versions = sorted((r[5], r[6], r[7]) for r in _rows(dim) if r[1] == "C9")
    assert sum(1 for v in versions if v[2]) == 1
    for (_, end, _), (start, _, _) in zip(versions, versions[1:], strict=False):
        assert end == start  # contiguous, no overlap
    assert versions[0][0] == B and versions[-1][1] == E


def test_facts_resolve_to_the_version_valid_at_sale_time(spark: SparkSession, close_days: list[DataFrame]) -> None:
    customers = close_days[-1]
    products = empty_scd2_dimension(spark, "product_key", "product_id", {"category": "string"})
    stores = spark.createDataFrame([("S1", "MA")], "location_id string, region string")
    locations = scd1_merge(None, stores, key_col="location_key", natural_key="location_id",
                           attributes={"region": "string"})
    sales = spark.createDataFrame(
        [
            ("L1", "C2", t(2, 10), "S1"),  # between C2's two changes on day 2 -> Dallas (7)
            ("L2", "C3", t(2, 23), "S1"),  # C3 was in Reno then -> 9
            ("L3", "C3", t(3, 23), "S1"),  # changed back -> 10
            ("L4", "C4", t(2, 20), "S2"),  # C4 deleted at that time; unknown store
            ("L5", "C5", t(1, 5), "S1"),  # late-arriving member: its (completed) inferred key 5
            ("L6", None, t(1, 5), None),
            ("L7", "C1", t(1, 23), "S1"),  # before the address change -> Boston (1)
        ],
        "sale_line_id string, customer_id string, sold_at timestamp, location_id string",
    ).selectExpr("*", "'O1' as order_id", "'P1' as product_id", "1 as quantity",
                 "cast(10 as decimal(12,2)) as unit_price", "cast(1 as decimal(12,2)) as discount",
                 "'tok' as card_number", "'src' as _source", "'b1' as _batch_id")
    facts = build_fact_sales(sales, customers, products, locations)
    got = sorted((r.sale_line_id, r.customer_key, r.location_key) for r in facts.collect())
    assert got == [("L1", 7, 1), ("L2", 9, 1), ("L3", 10, 1), ("L4", -1, -1), ("L5", 5, 1), ("L6", -1, -1),
                   ("L7", 1, 1)]


def test_late_changes_are_found_and_known_versions_are_not(spark: SparkSession) -> None:
    # After DAY1..DAY3 (close policy): C1 Boston until 2 Jan 10:00 then Denver; C3 Austin, Reno (2 Jan
    # 09:00), Austin again (3 Jan 09:00); C4 deleted 2 Jan 11:00, back 3 Jan 11:00.
    dim = _run_days(spark, "close")[-1]
    late_rows = [
        ("C1", "Chicago", "vip", t(2, 5), False),  # late: Boston was valid then, Chicago is news
        ("C1", "Boston", "vip", t(1, 20), False),  # re-delivery of what was valid then
        ("C1", "Denver", "vip", t(2, 10), False),  # re-delivery of the latest version
        ("C3", "Reno", "gold", t(3, 9), False),    # same instant as the last change, other values
        ("C4", "Portland", "vip", t(2, 12), False),  # dated while the member was deleted
        ("C1", "Miami", "vip", t(4, 1), False),    # after the history: an ordinary change
        ("C9", "Tulsa", "vip", t(1, 1), False),    # a new member: never late
        ("C2", "Waco", "vip", None, False),        # undated: takes the day's stamp, never late
    ]
    late = late_changes(dim, _changes(spark, late_rows), natural_key="customer_id", attributes=ATTRS,
                        effective_col="updated_at")
    found = sorted((r["customer_id"], r["effective_at"]) for r in late.collect())
    assert found == [("C1", t(2, 5)), ("C3", t(3, 9)), ("C4", t(2, 12))]
    # What scd2_merge does with the same batch: only the ordinary change and the new member are applied.
    merged = _merge(dim, _changes(spark, late_rows), delete_policy="close", undated_at=t(4, 0))
    added = {(r["customer_id"], r["city"]) for r in merged.subtract(dim).collect()}
    assert ("C1", "Chicago") not in added and ("C3", "Reno") in {
        (r["customer_id"], r["city"]) for r in dim.collect()}
    assert {("C1", "Miami"), ("C9", "Tulsa"), ("C2", "Waco")} <= added


def test_key_checks_find_planted_defects_and_pass_a_clean_history(spark: SparkSession, tmp_path: Path) -> None:
    from lake_assets.assets.curated import _key_check_results

    lake = LakeStorage(url=str(tmp_path / "lake"))
    schema = "customer_key bigint, customer_id string, valid_from timestamp, valid_to timestamp, is_current boolean"

    def checked(rows: list[tuple[object, ...]]) -> list[AssetCheckResult]:
        """The key checks over `rows` written as the lake's dim_customer (Spark's column types)."""
        lake.write_arrow(["curated", "dim_customer"], None, spark.createDataFrame(rows, schema).toArrow())
        return _key_check_results(lake, ["curated", "dim_customer"], "customer_key", "customer_id", scd2=True)

    clean = [(1, "C1", B, t(2, 0), False), (2, "C1", t(2, 0), E, True), (3, "C2", B, E, True),
             (4, "C3", B, t(2, 0), False), (5, "C3", t(3, 0), E, True)]  # C3: deleted, then back (a gap)
    assert [r.passed for r in checked(clean)] == [True, True]

    broken = [
        (1, "C1", B, t(2, 0), False), (1, "C1", t(2, 0), E, True),  # a surrogate key twice
        (None, "C2", B, E, True),                                      # a NULL key
        (4, "C3", B, E, True), (5, "C3", t(2, 0), E, True),            # two current rows, overlapping
        (6, "C4", B, E, False),                                        # open but not current
    ]
    key, history = checked(broken)
    assert not key.passed and key.metadata["null_keys"].value == 1
    assert key.metadata["rows"].value == 6 and key.metadata["distinct_keys"].value == 4
    assert not history.passed
    assert history.metadata["members_with_several_current_rows"].value == 1
    assert history.metadata["overlaps"].value == 1
    assert history.metadata["open_versions_not_current"].value == 1
