"""The column-rule checks at scale: `validate` holds `batch_rows` rows in pandas at a time, and finds
exactly what a validation of the whole partition at once finds: per-row failures added up over slices,
a duplicate key split across two slices, a missing column counted once, a wrong type counted per value,
the failing-row sample pointing at the planted rows. No Spark, no Dagster: small Arrow tables."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from lake_assets.checks.layer_rules import built_in_rules
from lake_assets.checks.table_rules import validate
from lake_assets.config import QualityConfig, load_config

from .check_runs import sales_partition


@pytest.fixture
def rules():  # noqa: ANN201 - TableRules
    return built_in_rules(load_config())["processed/sale"]


def _planted() -> pa.Table:
    # Nine lines: L1 again on line 7 (another slice for any batch under 7 rows), no key on line 4,
    # negative prices on lines 2 and 8, a discount rate above 1 on line 5.
    ids = ["L0", "L1", "L2", "L3", None, "L5", "L6", "L1", "L8"]
    prices = [Decimal("1.00")] * 9
    prices[2] = prices[8] = Decimal("-1.00")
    rates = [Decimal("0")] * 9
    rates[5] = Decimal("1.5")
    return sales_partition(9, sale_line_id=ids, unit_price=prices, discount_rate=rates)


@pytest.mark.parametrize(("batch_rows", "bucket_rows"), [(1, 1), (2, 3), (4, 100), (100, 2)])
def test_each_slice_size_finds_what_the_whole_table_holds(rules, batch_rows: int, bucket_rows: int) -> None:  # noqa: ANN001
    # bucket_rows 1 and 2 spread the keys over several hash buckets: the repeated L1 must still meet its twin.
    outcome = validate(_planted(), rules, batch_rows=batch_rows, bucket_rows=bucket_rows)
    assert outcome.rows == 9
    assert outcome.failures == {
        "sale_line_id: not_null": 1,
        "sale_line_id: unique": 2,
        "unit_price: min": 2,
        "discount_rate: max": 1,
    }
    # The five planted lines (1, 2, 4, 5, 7, 8 minus one over the bound of five) and no good one.
    shown = {row["sale_line_id"] for row in outcome.sample}
    assert len(outcome.sample) == 5 and shown <= {"L1", "L2", "None", "L5", "L8"}


@pytest.mark.parametrize("batch_rows", [1, 2, 100])
def test_table_level_failures_are_counted_as_on_the_whole_table(rules, batch_rows: int) -> None:  # noqa: ANN001
    wrong = sales_partition(5).set_column(7, "unit_price", pa.array([9.99] * 5, pa.float64()))
    outcome = validate(wrong.drop_columns(["order_id"]), rules, batch_rows=batch_rows)
    assert outcome.failures == {"unit_price: type double, expected decimal128(12, 2)": 5, "order_id: missing": 1}
    assert validate(sales_partition(5), rules, batch_rows=batch_rows).passed


def test_batch_rows_from_config() -> None:
    assert QualityConfig().schema_batch_rows == 100_000
    assert QualityConfig.model_validate({"schema_batch_rows": 5000}).schema_batch_rows == 5000
