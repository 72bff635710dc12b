"""The whole graph on a file drop shaped like a real retail export (see retail_export.py), two days,
with the documented worked example docs/examples/retail_files.yaml as its config,
on SQLite, PostgreSQL and MariaDB. Totals and history are checked against oracles computed from the
fixture with the standard library."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from dagster import materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

from . import retail_export as export
from .helpers import leaked_pii, materialize_day, source_pii_values, warehouse_for, warehouse_rows

pytestmark = pytest.mark.services  # whole-graph runs on every warehouse





@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_retail_export_two_days(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    drop = export.write_drop(tmp_path / "drop")
    warehouse_url, schema = warehouse_for(backend, tmp_path, request)
    for name, value in export.config_environment(
        drop=drop, lake=str(tmp_path / "lake"), warehouse_url=warehouse_url, schema=schema
    ).items():
        monkeypatch.setenv(name, value)
    config = load_config(export.EXAMPLE_CONFIG)
    first, last = export.DAYS
    materialize_day(config, first)
    materialize_day(config, last)

    # Facts: each line once, as last delivered; the total to the cent, cancellations included.
    facts = warehouse_rows(config, "SELECT sale_line_id, quantity, net_amount, customer_key FROM {p}fact_sales")
    expected = export.latest_sale_lines(last)
    assert sorted(f["sale_line_id"] for f in facts) == sorted(expected)
    assert {f["sale_line_id"]: int(f["quantity"]) for f in facts} == {k: v.quantity for k, v in expected.items()}
    assert sum((Decimal(str(f["net_amount"])) for f in facts), Decimal("0")) == export.expected_net_total(last)
    # Every sale date, the old correction's included, is in dim_date (the FK check passed above too).
    dated = {r["date_key"] for r in warehouse_rows(config, "SELECT DISTINCT date_key FROM {p}fact_sales")}
    assert dated == export.sale_dates(last)
    covered = {r["date_key"] for r in warehouse_rows(config, "SELECT date_key FROM {p}dim_date")}
    assert dated <= covered
    view_total = warehouse_rows(config, "SELECT SUM(net_amount) AS total FROM {p}v_sales_daily")[0]["total"]
    assert Decimal(str(view_total)).quantize(Decimal("0.01")) == export.expected_net_total(last)

    # Customers: float ids normalised, `NA` is no member, the move of a masked column is a version.
    customers = warehouse_rows(
        config,
        "SELECT customer_key, customer_id, country, is_current, is_inferred FROM {p}dim_customer "
        "WHERE customer_key <> -1",
    )
    assert {c["customer_id"] for c in customers} == export.customer_ids(last)
    assert not any(c["is_inferred"] for c in customers)
    moved = [c for c in customers if c["customer_id"] == export.MOVED_CUSTOMER]
    assert len(moved) == 2 and sum(bool(c["is_current"]) for c in moved) == 1
    keys_by_member = {c["customer_key"]: c["customer_id"] for c in customers}
    for fact in facts:
        member = expected[fact["sale_line_id"]].customer
        if member is None:
            assert fact["customer_key"] == -1
        else:
            assert keys_by_member[fact["customer_key"]] == member

    # Type 1: a blank re-delivery does not erase a known product name.
    products = warehouse_rows(config, "SELECT product_id, product_name FROM {p}dim_product WHERE product_id = '71053'")
    assert products and {p["product_name"] for p in products} == {export.BLANKED_PRODUCT[1]}

    # One source value, one value in every dimension.
    customer_country = {c["country"] for c in customers if c["customer_id"] == export.MOVED_CUSTOMER}
    store_country = warehouse_rows(config, "SELECT country FROM {p}dim_location WHERE location_id = 'PAR1'")
    assert customer_country == {r["country"] for r in store_country} and None not in customer_country

    # A rebuild from the masked history gives the same history (keys may be re-assigned).
    if backend == "sqlite":
        lake = LakeStorage(url=config.lake.url)
        history = ["customer_id", "valid_from", "valid_to", "is_current", "row_hash"]
        before = lake.read_arrow(["curated", "dim_customer"]).select(history).sort_by(
            [("customer_id", "ascending"), ("valid_from", "ascending")]).to_pylist()
        rebuilt = materialize(
            build_all_assets(config), resources=build_resources(config), selection=["curated/dim_customer"],
            run_config={"ops": {"curated__dim_customer": {"config": {"rebuild": True}}}},
        )
        assert rebuilt.success
        after = lake.read_arrow(["curated", "dim_customer"]).select(history).sort_by(
            [("customer_id", "ascending"), ("valid_from", "ascending")]).to_pylist()
        assert after == before

    # No source e-mail reached the warehouse.
    dims = warehouse_rows(config, "SELECT * FROM {p}dim_customer")
    pii = source_pii_values(drop)
    assert any("@" in value for value in pii)
    assert leaked_pii(pii, [tuple(r.values()) for r in dims]) == set()
