"""The column-rule checks (`schema`, `declared_columns`): each rule fails on data planted to break it
and passes on good data; failing samples are bounded and mask PII; severity and blocking come from
config; a check runs alone in Dagster on a committed partition, without its asset. No Spark: small
Arrow tables written with LakeStorage."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
)
from pydantic import ValidationError

from lake_assets.assets.quality import build_quality_checks
from lake_assets.automation.run_report import build_run_report
from lake_assets.checks.declared_rules import declared_rules
from lake_assets.checks.layer_rules import built_in_rules
from lake_assets.checks.table_rules import SAMPLE_ROWS, validate
from lake_assets.config import PipelineConfig, QualityConfig, load_config
from lake_assets.resources.lake_storage import LakeStorage

from .check_runs import DAY, run_checks_alone, sales_partition


@pytest.fixture
def config() -> PipelineConfig:
    return load_config()


def test_built_in_rules_pass_good_sales_and_name_each_broken_rule(config: PipelineConfig) -> None:
    rules = built_in_rules(config)["processed/sale"]
    assert validate(sales_partition(), rules).passed
    bad = sales_partition(
        8,
        sale_line_id=["L0", "L0", None, "L3", "L4", "L5", "L6", "L7"],
        unit_price=[Decimal("-1.00"), *[Decimal("1.00")] * 7],
        discount_rate=[Decimal("0.5"), Decimal("1.5"), *[Decimal("0")] * 6],
    )
    outcome = validate(bad, rules)
    assert outcome.failures == {
        "sale_line_id: not_null": 1,
        "sale_line_id: unique": 2,
        "unit_price: min": 1,
        "discount_rate: max": 1,
    }
    # Rows 0, 1 (duplicate key, negative price, rate 1.5) and 2 (no key); card numbers never shown.
    assert sorted(row["sale_line_id"] for row in outcome.sample) == ["L0", "L0", "None"]
    assert {row["card_number"] for row in outcome.sample} == {"***"}


def test_a_wrong_type_and_a_missing_column_fail(config: PipelineConfig) -> None:
    rules = built_in_rules(config)["processed/sale"]
    wrong = sales_partition().set_column(7, "unit_price", pa.array([9.99] * 3, pa.float64())).drop_columns(["order_id"])
    assert validate(wrong, rules).failures == {
        "unit_price: type double, expected decimal128(12, 2)": 3,
        "order_id: missing": 1,
    }


def test_the_sample_is_bounded(config: PipelineConfig) -> None:
    outcome = validate(sales_partition(50, unit_price=[Decimal("-1")] * 50), built_in_rules(config)["processed/sale"])
    assert outcome.failures == {"unit_price: min": 50}
    assert len(outcome.sample) == SAMPLE_ROWS


def test_masked_layer_rejects_an_unmasked_email(config: PipelineConfig) -> None:
    rules = built_in_rules(config)["masked/customer"]
    columns = {name: pa.array([None, None], pa.string()) for name in rules.columns}
    columns["customer_id"] = pa.array(["C1", "C2"])
    columns["updated_at"] = pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)] * 2, pa.timestamp("us", tz="UTC"))
    columns["email"] = pa.array(["a" * 64, "ana@example.com"])
    columns["phone"] = pa.array(["*******1434", "5551234567"])
    outcome = validate(pa.table(columns), rules)
    assert outcome.failures == {"email: regex": 1, "phone: regex": 1}
    expected = {c: "None" for c in columns} | {"customer_id": "C2", "updated_at": "2024-01-01 00:00:00+00:00"}
    assert outcome.sample == [expected | {"email": "***", "phone": "***"}]


RULES = {
    "not_null": ({"segment": {"not_null": True}}, ["vip", None]),
    "unique": ({"segment": {"unique": True}}, ["vip", "vip"]),
    "accepted_values": ({"segment": {"accepted_values": ["vip", "consumer"]}}, ["vip", "gold"]),
    "min": ({"segment": {"min": 10}}, [10, 9]),
    "max": ({"segment": {"max": 10}}, [10, 11]),
    "regex": ({"segment": {"regex": "[a-z]+"}}, ["vip", "VIP"]),
}
GOOD = {"not_null": ["vip", "consumer"], "unique": ["vip", "consumer"], "accepted_values": ["vip", "consumer"],
        "min": [10, 11], "max": [9, 10], "regex": ["vip", "consumer"]}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_declared_rule_fails_on_planted_data_and_passes_on_good(rule: str) -> None:
    declared, planted = RULES[rule]
    quality = QualityConfig.model_validate({"tables": {"processed/customer": {"columns": declared}}})
    rules = declared_rules(quality)["processed/customer"]
    assert validate(pa.table({"customer_id": ["C1", "C2"], "segment": GOOD[rule]}), rules).passed
    outcome = validate(pa.table({"customer_id": ["C1", "C2"], "segment": planted}), rules)
    counted = 2 if rule == "unique" else 1  # both rows of a duplicate fail
    assert outcome.failures == {f"segment: {rule}": counted}


def test_quality_config_rejects_unknown_tables_checks_and_empty_rules() -> None:
    with pytest.raises(ValidationError, match="unknown table"):
        QualityConfig.model_validate({"tables": {"curated/fact_sale": {"columns": {"x": {"not_null": True}}}}})
    with pytest.raises(ValidationError, match="unknown check"):
        QualityConfig.model_validate({"checks": {"schemas": {"severity": "warn"}}})
    with pytest.raises(ValidationError, match="declares no rule"):
        QualityConfig.model_validate({"tables": {"processed/sale": {"columns": {"quantity": {}}}}})
    with pytest.raises(ValidationError, match="min 5 is above max 1"):
        QualityConfig.model_validate({"tables": {"processed/sale": {"columns": {"quantity": {"min": 5, "max": 1}}}}})


def test_checks_run_alone_in_dagster_with_severity_from_config(config: PipelineConfig, tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config = config.model_copy(update={"quality": QualityConfig.model_validate({
        "checks": {"schema": {"severity": "warn"}},
        "tables": {"processed/sale": {"columns": {"quantity": {"min": 1, "max": 5}}}},
    })})
    specs = {k.name: c.get_spec_for_check_key(k) for c in build_quality_checks(config) for k in c.check_keys
             if k.asset_key == AssetKey(["processed", "sale"])}
    assert (specs["schema"].blocking, specs["declared_columns"].blocking) == (False, True)

    lake.write_arrow(["processed", "sale"], DAY, sales_partition(3, quantity=[2, 9, 5], unit_price=[Decimal("-2")] * 3))
    evaluations = run_checks_alone(config, lake, "processed/sale")
    schema, declared = evaluations["schema"], evaluations["declared_columns"]
    assert (schema.passed, schema.severity) == (False, AssetCheckSeverity.WARN)
    assert schema.metadata["failures"].value == "unit_price: min: 3"
    assert (declared.passed, declared.severity) == (False, AssetCheckSeverity.ERROR)
    assert declared.metadata["failures"].value == "quantity: max: 1"
    (row,) = declared.metadata["failing_rows_sample"].value
    assert (row["sale_line_id"], row["quantity"], row["card_number"]) == ("L1", "9", "***")

    # Quantities corrected, prices still negative: the WARN check fails, the ERROR one passes; the run's
    # quality score weighs them 1 and 2. Then all corrected: the same checks re-run pass.
    lake.write_arrow(["processed", "sale"], DAY, sales_partition(3, unit_price=[Decimal("-2")] * 3))
    with DagsterInstance.ephemeral() as instance:
        mixed = run_checks_alone(config, lake, "processed/sale", instance)
        report = build_run_report(instance, mixed["run_id"], "http://dagster")
    assert (mixed["schema"].passed, mixed["declared_columns"].passed) == (False, True)
    assert report.quality_score == round(2 / 3, 4)
    assert report.quality_score_per_asset == {"processed/sale": round(2 / 3, 4)}
    lake.write_arrow(["processed", "sale"], DAY, sales_partition(3))
    fixed = run_checks_alone(config, lake, "processed/sale")
    assert (fixed["schema"].passed, fixed["declared_columns"].passed) == (True, True)


def test_every_layer_table_has_a_schema_check(config: PipelineConfig) -> None:
    keys = {k for c in build_quality_checks(config) for k in c.check_keys if k.name == "schema"}
    entities = ("customer", "location", "product", "sale")
    tables = [*(f"{layer}/{e}" for layer in ("processed", "masked") for e in entities),
              *(f"curated/{t}" for t in ("dim_customer", "dim_date", "dim_location", "dim_product", "fact_sales"))]
    assert keys == {AssetCheckKey(AssetKey(t.split("/")), "schema") for t in tables}
