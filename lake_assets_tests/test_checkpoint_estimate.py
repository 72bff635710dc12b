"""A dimension merged day after day keeps a size estimate of the same order on every day: the state
carried from one day to the next (`spark.checkpoint.local_checkpoint`) does not inherit the estimate
of the plan that built it. With `DataFrame.localCheckpoint()` alone Spark copies that estimate, and a
merge (a join of the state with rows derived from the state) roughly squares it each day: the driver
then spends memory and time on ever longer numbers (a 30-day range ran out of heap). Five tiny days;
the oracle is the estimate's own digits as Spark prints them (`explain(mode="cost")`), and the rows
are the same either way."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark.checkpoint import local_checkpoint
from spark.scd2 import empty_scd2_dimension, scd2_merge

pytestmark = pytest.mark.services  # real Spark

ATTRS = {"city": "string"}
DAYS = 5
ESTIMATE = re.compile(r"Statistics\(sizeInBytes=([^,)]+)")


def _estimate(df: DataFrame, capsys: pytest.CaptureFixture[str]) -> str:
    """The optimizer's size estimate of `df` (its plan's root), as Spark prints it."""
    capsys.readouterr()
    df.explain(mode="cost")
    found = ESTIMATE.search(capsys.readouterr().out)
    assert found is not None
    return found.group(1)


def _days(spark: SparkSession, cut: Callable[[DataFrame], DataFrame],
          capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[tuple]]:
    dim = empty_scd2_dimension(spark, "customer_key", "customer_id", ATTRS)
    estimates = []
    for day in range(1, DAYS + 1):
        changes = spark.createDataFrame(
            [(f"C{n}", f"city {day}", datetime(2024, 1, day, 8), False) for n in range(1, 4)],
            "customer_id string, city string, updated_at timestamp, _deleted boolean")
        dim = cut(scd2_merge(dim, changes, key_col="customer_key", natural_key="customer_id", attributes=ATTRS,
                             effective_col="updated_at"))
        estimates.append(_estimate(dim, capsys))
    rows = sorted(tuple(r) for r in dim.select("customer_key", "customer_id", "city", "is_current").collect())
    return estimates, rows


def test_the_carried_state_keeps_its_estimate(spark: SparkSession, capsys: pytest.CaptureFixture[str]) -> None:
    estimates, rows = _days(spark, local_checkpoint, capsys)
    assert len(set(estimates)) == 1, estimates
    # One version per member and day, the last one current.
    assert len(rows) == 1 + 3 * DAYS  # the unknown member, then C1..C3 on each day
    assert {r[2] for r in rows if r[3] and r[1] != "UNKNOWN"} == {f"city {DAYS}"}

    # The same merges carried with localCheckpoint() alone: the estimate grows day after day.
    plain, plain_rows = _days(spark, lambda df: df.localCheckpoint(), capsys)
    assert plain_rows == rows
    assert len(set(plain)) == DAYS, plain
