"""Late and corrected records spliced into SCD Type 2 history (`spark/scd2_splice.py`), on a tiny
dimension built by `scd2_merge` from three on-time days; every expected row is written out here.

History before any splice (`DAYS`, close delete policy; `segment` is a Type-1 column): C1 Boston,
Denver from 2 Jan 10:00, Miami from 3 Jan 10:00; C2 Austin; C3 Austin, Reno from 2 Jan 09:00; C4
Portland, deleted 2 Jan 11:00, back 3 Jan 11:00; C5 Boise, deleted 2 Jan 11:00 and never back.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark.scd2 import empty_scd2_dimension, scd2_merge
from spark.scd2_splice import Splice, splice_late_changes

ATTRS = {"city": "string", "segment": "string"}
TYPE1 = ("segment",)
B, E = datetime(1900, 1, 1), datetime(9999, 12, 31)
SCHEMA = "customer_id string, city string, segment string, updated_at timestamp, _deleted boolean"


def t(day: int, hour: int) -> datetime:
    return datetime(2024, 1, day, hour)


DAYS = [
    [("C1", "Boston", "vip", t(1, 1), False), ("C2", "Austin", "vip", t(1, 1), False),
     ("C3", "Austin", "vip", t(1, 1), False), ("C4", "Portland", "vip", t(1, 1), False),
     ("C5", "Boise", "vip", t(1, 1), False)],
    [("C1", "Denver", "vip", t(2, 10), False), ("C3", "Reno", "vip", t(2, 9), False),
     ("C4", None, None, t(2, 11), True), ("C5", None, None, t(2, 11), True)],
    [("C1", "Miami", "gold", t(3, 10), False), ("C4", "Portland", "vip", t(3, 11), False)],
]
# Keys: day 1 C1..C5 = 1..5; day 2 C1 Denver 6, C3 Reno 7; day 3 C1 Miami 8, C4 back 9.
C1 = [
    (1, "C1", "Boston", "gold", 1, B, t(2, 10), False, False),
    (6, "C1", "Denver", "gold", 2, t(2, 10), t(3, 10), False, False),
    (8, "C1", "Miami", "gold", 3, t(3, 10), E, True, False),
]


def _changes(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


def _merge(dim: DataFrame, changes: DataFrame) -> DataFrame:
    return scd2_merge(dim, changes, key_col="customer_key", natural_key="customer_id", attributes=ATTRS,
                      effective_col="updated_at", type1_columns=TYPE1, delete_policy="close").localCheckpoint()


def _splice(dim: DataFrame, changes: DataFrame) -> Splice:
    return splice_late_changes(dim, changes, key_col="customer_key", natural_key="customer_id", attributes=ATTRS,
                               effective_col="updated_at", type1_columns=TYPE1, delete_policy="close")


def _rows(dim: DataFrame, member: str | None = None) -> list[tuple]:
    cols = ["customer_key", "customer_id", "city", "segment", "version", "valid_from", "valid_to",
            "is_current", "is_deleted"]
    return sorted(tuple(r) for r in dim.select(*cols).collect() if member in (None, r["customer_id"]))


def _all(dim: DataFrame) -> list[tuple]:
    return sorted(tuple(r) for r in dim.collect())


@pytest.fixture(scope="module")
def base(spark: SparkSession) -> DataFrame:
    dim = empty_scd2_dimension(spark, "customer_key", "customer_id", ATTRS)
    for day in DAYS:
        dim = _merge(dim, _changes(spark, day))
    assert _rows(dim, "C1") == C1  # the history the tests start from
    return dim


def _assert_well_formed(dim: DataFrame) -> None:
    """Per member: versions numbered 1.. in time order, no overlap, at most one current row (the
    open one); keys unique."""
    rows = dim.filter("customer_key != -1").collect()
    assert len({r["customer_key"] for r in rows}) == len(rows)
    for member in {r["customer_id"] for r in rows}:
        versions = sorted((r["valid_from"], r["valid_to"], r["is_current"], r["version"]) for r in rows
                          if r["customer_id"] == member)
        assert [v[3] for v in versions] == list(range(1, len(versions) + 1))
        assert sum(v[2] for v in versions) <= 1
        assert all(v[2] == (v[1] == E) for v in versions)
        assert all(a[1] <= b[0] for a, b in zip(versions, versions[1:], strict=False))


def test_a_late_change_in_the_middle_is_a_version_between_its_neighbours(spark: SparkSession, base) -> None:
    # Chicago from 2 Jan 05:00, while Boston was valid; its Type-1 segment is older than the member's.
    splice = _splice(base, _changes(spark, [("C1", "Chicago", "bronze", t(2, 5), False)]))
    dim = splice.dimension.localCheckpoint()
    assert _rows(dim, "C1") == [
        (1, "C1", "Boston", "gold", 1, B, t(2, 5), False, False),         # cut at the late change
        (6, "C1", "Denver", "gold", 3, t(2, 10), t(3, 10), False, False),
        (8, "C1", "Miami", "gold", 4, t(3, 10), E, True, False),
        (10, "C1", "Chicago", "gold", 2, t(2, 5), t(2, 10), False, False),  # new key above all (9)
    ]
    # Every other member's rows are untouched, keys included.
    others = [r for r in _all(dim) if r[1] != "C1"]
    assert others == [r for r in _all(base) if r[1] != "C1"]
    assert [tuple(r) for r in splice.spliced.collect()] == [("C1", t(2, 5))]
    assert [tuple(r) for r in splice.windows.collect()] == [("C1", t(2, 5), t(2, 10))]
    assert splice.ignored.count() == 0
    _assert_well_formed(dim)


def test_a_late_change_before_the_first_version_is_the_state_until_its_change(spark: SparkSession, base) -> None:
    # C2's first version is valid from 1900 but changed on 1 Jan 01:00; Tulsa is dated 31 Dec 2023.
    splice = _splice(base, _changes(spark, [("C2", "Tulsa", "vip", datetime(2023, 12, 31, 12), False)]))
    dim = splice.dimension.localCheckpoint()
    assert _rows(dim, "C2") == [
        (2, "C2", "Austin", "vip", 2, t(1, 1), E, True, False),
        (10, "C2", "Tulsa", "vip", 1, B, t(1, 1), False, False),
    ]
    assert [tuple(r) for r in splice.windows.collect()] == [("C2", B, t(1, 1))]
    _assert_well_formed(dim)


def test_two_late_changes_and_an_on_time_one_in_one_batch_then_reapplied(spark: SparkSession, base) -> None:
    batch = _changes(spark, [
        ("C1", "Chicago", "vip", t(2, 5), False),   # in Boston's time
        ("C1", "Reno", "vip", t(3, 0), False),      # in Denver's time
        ("C1", "Tampa", "silver", t(4, 1), False),  # on time: after Miami, for scd2_merge
    ])
    splice = _splice(base, batch)
    dim = _merge(splice.dimension, batch)
    assert _rows(dim, "C1") == [
        (1, "C1", "Boston", "silver", 1, B, t(2, 5), False, False),
        (6, "C1", "Denver", "silver", 3, t(2, 10), t(3, 0), False, False),
        (8, "C1", "Miami", "silver", 5, t(3, 10), t(4, 1), False, False),
        (10, "C1", "Chicago", "silver", 2, t(2, 5), t(2, 10), False, False),
        (11, "C1", "Reno", "silver", 4, t(3, 0), t(3, 10), False, False),
        (12, "C1", "Tampa", "silver", 6, t(4, 1), E, True, False),
    ]
    assert sorted(tuple(r) for r in splice.spliced.collect()) == [("C1", t(2, 5)), ("C1", t(3, 0))]
    _assert_well_formed(dim)
    # The same batch again: every late change is now a version with the same state.
    again = _splice(dim, batch)
    assert again.spliced.count() == 0 and again.windows.count() == 0
    assert _all(_merge(again.dimension, batch)) == _all(dim)


def test_re_deliveries_of_known_states_change_nothing(spark: SparkSession, base) -> None:
    splice = _splice(base, _changes(spark, [
        ("C1", "Boston", "vip", t(1, 20), False),                   # what was valid then
        ("C2", "Austin", "vip", datetime(2023, 12, 31, 0), False),  # before the first version, same state
        ("C3", "Reno", "vip", t(2, 9), False),                      # the version's own change again
    ]))
    assert _all(splice.dimension) == _all(base)
    assert splice.spliced.count() == 0 and splice.windows.count() == 0 and splice.ignored.count() == 0


def test_a_correction_at_a_change_instant_is_applied_in_place(spark: SparkSession, base) -> None:
    splice = _splice(base, _changes(spark, [("C3", "Paris", "vip", t(2, 9), False)]))
    assert _rows(splice.dimension, "C3") == [
        (3, "C3", "Austin", "vip", 1, B, t(2, 9), False, False),
        (7, "C3", "Paris", "vip", 2, t(2, 9), E, True, False),  # same key, same validity
    ]
    assert splice.windows.count() == 0  # no sale resolves to another key


def test_a_late_change_equal_to_the_next_version_moves_its_start(spark: SparkSession, base) -> None:
    splice = _splice(base, _changes(spark, [("C1", "Denver", "vip", t(2, 0), False)]))
    dim = splice.dimension.localCheckpoint()
    assert _rows(dim, "C1") == [
        (1, "C1", "Boston", "gold", 1, B, t(2, 0), False, False),
        (6, "C1", "Denver", "gold", 2, t(2, 0), t(3, 10), False, False),  # no new key
        (8, "C1", "Miami", "gold", 3, t(3, 10), E, True, False),
    ]
    assert [tuple(r) for r in splice.windows.collect()] == [("C1", t(2, 0), t(2, 10))]


def test_deleted_members_closed_history_and_late_deletes(spark: SparkSession, base) -> None:
    splice = _splice(base, _changes(spark, [
        ("C5", "Nampa", "vip", t(2, 0), False),  # before C5's delete: spliced, C5 stays closed
        ("C4", "Lima", "vip", t(3, 0), False),   # while C4 was deleted (2 Jan 11:00 .. 3 Jan 11:00)
        ("C1", None, None, t(2, 12), True),      # a late delete of a live version
    ]))
    dim = splice.dimension.localCheckpoint()
    assert _rows(dim, "C5") == [
        (5, "C5", "Boise", "vip", 1, B, t(2, 0), False, False),
        (10, "C5", "Nampa", "vip", 2, t(2, 0), t(2, 11), False, False),  # no current row: still deleted
    ]
    assert _rows(dim, "C4") == _rows(base, "C4") and _rows(dim, "C1") == C1
    assert sorted(tuple(r) for r in splice.ignored.collect()) == [
        ("C1", t(2, 12), t(3, 10)), ("C4", t(3, 0), t(3, 11))]
    assert splice.figures() == (1, 2)  # (spliced, ignored)
    _assert_well_formed(dim)
