"""processed/<entity> on small files shaped like a real retail export (the UCI Online Retail layout:
`InvoiceNo,StockCode,...,InvoiceDate,UnitPrice,CustomerID,Country`, US dates without leading zeros,
customer ids written as floats): de-duplication counts and the conflicting-duplicates check, and the
step failing when too much of the input is quarantined."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from dagster import AssetCheckSeverity, AssetKey, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import BUNDLED_CONFIG, PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

DAY = "2024-01-01"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
# InvoiceNo is an order number, not a line id: mapping it to the line key is the mistake under test.
MAPPING = {"invoice_no": "sale_line_id", "stock_code": "product_id", "invoice_date": "sold_at",
           "customer_id": "customer_id", "quantity": "quantity", "unit_price": "unit_price"}


def _config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, standardize: dict | None = None
) -> PipelineConfig:
    drop = tmp_path / "drop" / DAY
    drop.mkdir(parents=True)
    (drop / "online_retail.csv").write_text(text, encoding="utf-8")
    raw = yaml.safe_load(BUNDLED_CONFIG.read_text())
    raw["sources"] = [{"name": "retail", "kind": "file", "path": str(tmp_path / "drop"), "tables": [
        {"name": "online_retail", "entity": "sale", "pattern": "{date}/online_retail.csv", "columns": MAPPING}]}]
    raw["standardize"] = standardize or {}  # built-in defaults only: no configured date format
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("LAKE_CONFIG", str(path))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    return load_config()


def _run(config: PipelineConfig):
    wanted = {AssetKey(["raw", "retail", "online_retail"]), AssetKey(["processed", "sale"])}
    assets = [a for a in build_all_assets(config) if set(a.keys) & wanted]
    return materialize(assets, resources=build_resources(config), partition_key=DAY, raise_on_error=False)


def _failure(result) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure)


LINES = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom",
    "536365,84406B,CREAM CUPID HEARTS COAT HANGER,8,12/1/2010 8:26,2.75,17850.0,United Kingdom",
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom",
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom",
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/13/2010 8:34,1.69,13047.0,United Kingdom",
    "536368,22960,JAM MAKING SET WITH JARS,6,12/13/2010 8:34,4.25,NA,United Kingdom",
]


def test_conflicting_duplicates_are_counted_and_warned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark) -> None:
    config = _config(tmp_path, monkeypatch, HEADER + "\n".join(LINES) + "\n")
    result = _run(config)
    assert result.success  # a warning, not a failure
    # Oracle from the fixture: per invoice, identical lines are copies, different lines conflicts.
    by_key: dict[str, Counter] = {}
    for line in LINES:
        by_key.setdefault(line.split(",")[0], Counter())[line] += 1
    exact = sum(c.total() - len(c) for c in by_key.values())
    conflicting = sum(len(c) - 1 for c in by_key.values())
    conflicting_keys = sorted(k for k, c in by_key.items() if len(c) > 1)

    [metadata] = [m.metadata for m in result.asset_materializations_for_node("processed__sale")
                  if m.asset_key == AssetKey(["processed", "sale"])]
    assert metadata["exact_duplicates_removed"].value == exact == 1
    assert metadata["conflicting_rows_removed"].value == conflicting == 2
    assert metadata["duplicate_rows_removed"].value == exact + conflicting
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_conflicting_duplicates"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["conflicting_keys"].value == len(conflicting_keys)
    assert check.metadata["sample_keys"].value == "; ".join(f"sale_line_id={k}" for k in conflicting_keys)
    assert "HEART" not in str(check.metadata)  # the key only, never the rest of a row

    rows = LakeStorage(url=config.lake.url).read_arrow(["processed", "sale"], DAY).to_pylist()
    got = {r["sale_line_id"]: (r["sold_at"].replace(tzinfo=None), r["customer_id"]) for r in rows}  # stored as UTC
    # 12/13/2010 in the same file makes it month-first; 17850.0 is the id 17850; NA is no customer.
    assert got == {
        "536365": (datetime(2010, 12, 1, 8, 26), "17850"),
        "536366": (datetime(2010, 12, 1, 8, 28), "17850"),
        "536367": (datetime(2010, 12, 13, 8, 34), "13047"),
        "536368": (datetime(2010, 12, 13, 8, 34), None),
    }


@pytest.mark.parametrize(
    ("case", "text", "standardize", "expected"),
    [
        (
            "no date over 12: day-first or month-first cannot be told",
            HEADER + "\n".join(line.replace("12/13/2010", "12/2/2010") for line in LINES) + "\n",
            None,
            ["7 of 7 input rows quarantined (100.0%", "ambiguous date in sold_at", "configure timestamp_formats"],
        ),
        (
            "CustomerID exported as Customer, while the config rejects sales without a customer",
            HEADER.replace("CustomerID", "Customer") + "\n".join(LINES) + "\n",
            {"entities": {"sale": {"nulls": {"customer_id": {"rule": "reject"}}}}},
            ["retail.online_retail: required column customer_id absent (mapped from: 'customer_id')",
             "7 rows: missing customer_id"],
        ),
    ],
)
def test_mostly_quarantined_input_fails_after_writing_the_quarantine(
    case: str, text: str, standardize: dict | None, expected: list[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, spark,
) -> None:
    config = _config(tmp_path, monkeypatch, text, standardize)
    result = _run(config)
    assert not result.success, case
    message = _failure(result)
    assert "processed/sale" in message and "quarantine/processed/sale/ingest_date=2024-01-01" in message
    for part in expected:
        assert part in message, (case, part, message)
    lake = LakeStorage(url=config.lake.url)
    assert lake.commit_info(["quarantine", "processed", "sale"], DAY).rows == len(LINES)
    assert lake.commit_info(["processed", "sale"], DAY) is None


def test_a_rename_matching_no_delivered_column_fails_naming_table_key_and_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    """CustomerID exported as `Customer`: customer_id is optional, so without this check every line would
    load with no customer and nobody would be told."""
    config = _config(tmp_path, monkeypatch, HEADER.replace("CustomerID", "Customer") + "\n".join(LINES) + "\n")
    result = _run(config)
    assert not result.success
    message = _failure(result)
    # The header as the processed layer names it (snake_case), sorted.
    delivered = ["country", "customer", "description", "invoice_date", "invoice_no", "quantity", "stock_code",
                 "unit_price"]
    assert ("retail.online_retail: columns key 'customer_id' (-> customer_id) matches no delivered column; "
            f"delivered columns: {delivered}") in message, message
    assert LakeStorage(url=config.lake.url).commit_info(["processed", "sale"], DAY) is None


def test_a_selection_without_the_quarantine_still_keeps_the_rejected_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    # Sales without a customer are rejected by this config; the one line whose CustomerID is `NA` must
    # be quarantined in processed although the selection leaves the quarantine asset out.
    no_customer = [line.split(",")[0] for line in LINES if line.split(",")[6] == "NA"]
    rules = {"max_quarantine_share": 0.5, "entities": {"sale": {"nulls": {"customer_id": {"rule": "reject"}}}}}
    config = _config(tmp_path, monkeypatch, HEADER + "\n".join(LINES) + "\n", rules)
    wanted = [AssetKey(["raw", "retail", "online_retail"]), AssetKey(["processed", "sale"])]
    assets = [a for a in build_all_assets(config) if set(a.keys) & set(wanted)]
    result = materialize(assets, selection=wanted, resources=build_resources(config), partition_key=DAY,
                         raise_on_error=False)
    assert result.success, _failure(result)
    stored = {e.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey(["quarantine", "processed", "sale"]) not in stored and AssetKey(["processed", "sale"]) in stored
    metadata = result.asset_materializations_for_node("processed__sale")[0].metadata
    assert metadata["quarantined_rows"].value == len(no_customer) == 1
    quarantined = LakeStorage(url=config.lake.url).read_arrow(["quarantine", "processed", "sale"], DAY).to_pylist()
    assert [r["sale_line_id"] for r in quarantined] == no_customer
    assert "missing customer_id" in quarantined[0]["_reject_reason"]
