"""PII never reaches the warehouse: curated rows that hold an e-mail address stop the warehouse step
before its load, so the warehouse table keeps what it held and no BI role ever sees the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterEventType, ExecuteInProcessResult, instance_for_test, materialize

from lake_assets.assets import build_all_assets
from lake_assets.assets.warehouse import WAREHOUSE_TABLES
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseResource

from . import warehouse_rows as rows
from .conftest import Warehouse

pytestmark = pytest.mark.services  # warehouse loads on SQLite and PostgreSQL

PLANTED = "ana.lima@example.com"
DAY = "2024-01-01"


def _with_email_in_segment(table: pa.Table) -> pa.Table:
    """dim_customer whose C2 row carries an e-mail address in `segment` (a column kept as delivered)."""
    segments = table.column("segment").to_pylist()
    segments[table.column("customer_id").to_pylist().index("C2")] = f"contact {PLANTED}"
    return table.set_column(table.schema.get_field_index("segment"), "segment", pa.array(segments))


def _dim_customer(warehouse: WarehouseResource) -> list[tuple[str, ...]]:
    found = warehouse.fetch_all(f"SELECT * FROM {warehouse.qualified('dim_customer')}")
    return sorted(tuple(map(str, r)) for r in found)


def _configured(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
                ) -> tuple[PipelineConfig, WarehouseResource]:
    """The pipeline config of a lake under `tmp_path` and a warehouse on `backend`, and that warehouse."""
    if backend == "sqlite":
        server = Warehouse(url=f"sqlite:///{tmp_path / 'wh.db'}", schema="analytics")
    else:
        server = request.getfixturevalue("postgres_warehouse")
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", server.url)
    monkeypatch.setenv("WAREHOUSE_SCHEMA", server.schema)
    return load_config(), WarehouseResource(url=server.url, schema_name=server.schema)


def _write_curated(config: PipelineConfig, dim_customer: pa.Table, facts: pa.Table) -> None:
    """The curated star of run day DAY in the lake: these customers and facts, the other dimensions."""
    lake = LakeStorage(url=config.lake.url)
    lake.write_arrow(["curated", "dim_customer"], None, dim_customer)
    lake.write_arrow(["curated", "dim_product"], None, rows.dim_product())
    lake.write_arrow(["curated", "dim_location"], None, rows.dim_location())
    lake.write_arrow(["curated", "dim_date"], None, rows.dim_date())
    rows.write_lake_facts(lake, facts, DAY)


def _load_warehouse_day(config: PipelineConfig) -> tuple[ExecuteInProcessResult, dict[str, Any], list[Any]]:
    """(result, failed step key -> its failure event, retry events) of the warehouse assets' run of DAY."""
    with instance_for_test() as instance:
        result = materialize(
            build_all_assets(config), selection=[AssetKey(["warehouse", t]) for t in WAREHOUSE_TABLES],
            partition_key=DAY, resources=build_resources(config), instance=instance, raise_on_error=False,
        )
        failed = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_FAILURE)
        retries = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
    return result, {r.step_key: r.dagster_event for r in failed}, list(retries)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_pii_in_curated_stops_the_load_before_any_role_can_read_it(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    config, warehouse = _configured(backend, tmp_path, monkeypatch, request)
    # Yesterday's clean load (Denver), then curated moves C1 to Miami and plants an e-mail in C2's segment.
    rows.load_star(warehouse, city_of_c1="Denver")
    before = _dim_customer(warehouse)
    _write_curated(config, _with_email_in_segment(rows.dim_customer("Miami")), rows.fact_sales(1, [("L9", 3, 1, 4)]))
    result, failures, retries = _load_warehouse_day(config)

    assert set(failures) == {"warehouse__dim_customer"}
    message = failures["warehouse__dim_customer"].event_specific_data.error.message
    assert "dim_customer" in message and "segment: 1 email" in message, message
    assert PLANTED not in message and "ana.lima" not in message
    assert retries == []  # a data finding: failed at once
    customer = AssetKey(["warehouse", "dim_customer"])
    (check,) = [e for e in result.get_asset_check_evaluations() if e.asset_key == customer]
    assert (check.check_name, check.passed) == ("no_pii_in_warehouse", False)
    assert PLANTED not in str(check.metadata)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert customer not in materialized
    assert AssetKey(["warehouse", "dim_product"]) in materialized  # clean tables still load
    # Nothing of the planted load is in the warehouse: no e-mail, C1 still in Denver, the day's fact not loaded.
    after = _dim_customer(warehouse)
    assert after == before
    assert not any(PLANTED in value for row in after for value in row)
    assert "Miami" not in {value for row in after for value in row}
    fact = warehouse.fetch_all(f"SELECT sale_line_id FROM {warehouse.qualified('fact_sales')} ORDER BY 1")
    assert [r[0] for r in fact] == ["L1", "L2", "L3", "L4"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_pii_in_the_facts_rolls_their_load_back(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The fact's rows are scanned beside their load: a finding fails the step and its check, and the
    load (deletes of the replaced sale dates included) is rolled back."""
    config, warehouse = _configured(backend, tmp_path, monkeypatch, request)
    rows.load_star(warehouse, city_of_c1="Denver")
    facts_in = f"SELECT sale_line_id, quantity FROM {warehouse.qualified('fact_sales')} ORDER BY 1"
    fact_before = warehouse.fetch_all(facts_in)
    # Day 1's lines again, L1 with another quantity, and an e-mail in L5's order id.
    facts = rows.fact_sales(1, [("L1", 1, 1, 9), ("L5", 2, 2, 1)])
    orders = pa.array(["O1", f"ref {PLANTED}"])
    _write_curated(config, rows.dim_customer("Denver"),
                   facts.set_column(facts.schema.get_field_index("order_id"), "order_id", orders))
    result, failures, _ = _load_warehouse_day(config)

    assert set(failures) == {"warehouse__fact_sales"}
    message = failures["warehouse__fact_sales"].event_specific_data.error.message
    assert "order_id: 1 email" in message and PLANTED not in message, message
    fact = AssetKey(["warehouse", "fact_sales"])
    (check,) = [e for e in result.get_asset_check_evaluations() if e.asset_key == fact]
    assert (check.check_name, check.passed) == ("no_pii_in_warehouse", False)
    assert check.metadata["rows_scanned"].value == facts.num_rows
    # The day's load was rolled back whole: L1 keeps its quantity, L2 (replaced with its date) is still
    # there, L5 never arrived.
    assert warehouse.fetch_all(facts_in) == fact_before
