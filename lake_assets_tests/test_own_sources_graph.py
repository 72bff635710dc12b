"""Four sources of our own (lake_assets_tests/own_fixtures.py: an order-entry database, an invoice-line
CSV export, payments + orders CSV files joined by a derived table, a payments-style HTTP API) feed the
whole graph at once, by configuration only, into each warehouse dialect: SQLite, PostgreSQL, MariaDB.

One run per dialect covers the four: their sale line, customer and product ids never collide, so every
fact row, total and attribute is checked against the oracle of the fixture it came from (plain Python
over the fixture rows). Company, order status and payment method reach dim_customer /
v_current_customers and fact_sales / v_sales_daily_by_order_attributes; the freight measure is summed
in v_sales_daily."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetKey
from sqlalchemy import create_engine, inspect

from lake_assets.assets import build_all_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.resources.lake_storage import LakeStorage

from . import own_fixtures as own
from .api_server import ApiState, serve_api
from .conftest import TEST_MASKING_KEY
from .helpers import materialize_day, warehouse_for, warehouse_rows

CENT = own.CENT
cents = own.cents


@pytest.fixture
def api() -> Iterator[tuple[ApiState, str]]:
    state = ApiState(token=own.API_TOKEN)
    state.charges = own.api_charges()
    with serve_api(state) as url:
        yield state, url





def _all_text(config: PipelineConfig) -> list[tuple[str, str]]:
    """(table, value) of every text value in every warehouse table and view."""
    schema = None if config.warehouse.url.startswith("sqlite") else config.warehouse.schema_name
    engine = create_engine(config.warehouse.url)
    try:
        inspector = inspect(engine)
        names = [*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)]
    finally:
        engine.dispose()
    return [(name, value) for name in names for row in warehouse_rows(config, f"SELECT * FROM {{p}}{name}")
            for value in row.values() if isinstance(value, str)]


def _money(value: Any) -> Decimal | None:
    # SQLite returns NUMERIC sums as floating point: compare to the cent.
    return None if value is None else Decimal(str(value)).quantize(CENT)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_four_own_sources_reach_the_warehouse(
    backend: str, api, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    state, base_url = api
    monkeypatch.setenv("PAYMENTS_API_URL", base_url)
    monkeypatch.setenv("PAYMENTS_API_TOKEN", own.API_TOKEN)
    url, schema = warehouse_for(backend, tmp_path, request)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(own.pipeline_document(tmp_path, url, schema, TEST_MASKING_KEY), sort_keys=False),
                    encoding="utf-8")
    config = load_config(path)

    assets = build_all_assets(config)
    processed_sale = next(a for a in assets if AssetKey(["processed", "sale"]) in a.keys)
    assert {tuple(k.path) for k in processed_sale.dependency_keys} == {
        ("raw", "orders_db", "sales"), ("raw", "invoices", "invoice_lines"), ("raw", "derived", "sale_lines"),
        ("raw", "payments", "charge_lines")}
    derived = next(a for a in assets if AssetKey(["raw", "derived", "sale_lines"]) in a.keys)
    assert {tuple(k.path) for k in derived.dependency_keys} == {
        ("raw", "shop", "orders"), ("raw", "shop", "order_items"), ("raw", "psp", "payments")}

    result = materialize_day(config, own.DAY)

    # The API was paged with starting_after until has_more was false.
    assert len({q.get("starting_after", [None])[0] for p, q in state.requests if p == "/v1/charges"}) >= 3
    # The derived table carries lineage of its own and the line file's.
    [materialization] = result.asset_materializations_for_node("raw__derived__sale_lines")
    assert materialization.metadata["lineage_added"].value == "_source, _batch_id"
    lineage = LakeStorage(url=config.lake.url).read_arrow(["raw", "derived", "sale_lines"], own.DAY).to_pylist()
    assert {r["_source"] for r in lineage} == {"derived.sale_lines"}
    assert {Path(r["_source_file"]).name for r in lineage} == {"order_items.csv"}

    # Oracles, per source.
    db, invoices, shop = own.db_lines(), own.invoice_lines(), own.shop_lines()
    payments = own.api_lines(state.charges)
    sources = {"orders_db": db, "invoices": invoices, "shop+psp": shop, "payments": payments}
    expected = {line: oracle for lines in sources.values() for line, oracle in lines.items()}
    assert len(expected) == sum(len(lines) for lines in sources.values())  # no id shared by two sources

    facts = {f["sale_line_id"]: f for f in warehouse_rows(config, (
        "SELECT sale_line_id, order_id, quantity, unit_price, net_amount, discount_rate, sold_at, customer_key, "
        "product_key, location_key, freight, order_status, shipper, payment_method FROM {p}fact_sales"))}
    assert sorted(facts) == sorted(expected)
    # Net per line and per source to the cent (the database's percentage discounts at full precision,
    # rounded once; the cents of the others scaled exactly).
    assert {k: _money(f["net_amount"]) for k, f in facts.items()} == {k: cents(e["net"]) for k, e in expected.items()}
    for name, lines in sources.items():
        total = sum((_money(facts[k]["net_amount"]) for k in lines), Decimal(0))
        assert total == sum((cents(e["net"]) for e in lines.values()), Decimal(0)), name
    # Status and payment method as each source delivered them.
    assert {k: (f["order_status"], f["payment_method"]) for k, f in facts.items()} == {
        k: (e["status"], e["method"]) for k, e in expected.items()}
    # The database's measure and shipper on its lines only; the rate kept.
    assert {k: _money(f["freight"]) for k, f in facts.items()} == {
        k: cents(db[k]["freight"]) if k in db else None for k in expected}
    assert {k: f["shipper"] for k, f in facts.items()} == {k: e.get("shipper") for k, e in expected.items()}
    assert {k: Decimal(str(facts[k]["discount_rate"])) for k in db} == {
        f"{o}-{p}": Decimal(str(rate)) for o, p, _, _, rate in own.DB_ORDER_DETAILS}
    # The export's cancellations, negative and priced in units.
    for key, line in invoices.items():
        assert (int(facts[key]["quantity"]), Decimal(str(facts[key]["unit_price"]))) == (
            line["quantity"], line["unit_price"]), key
    # The API's lines: their charge, cents to units, Unix seconds as UTC.
    for key, line in payments.items():
        fact = facts[key]
        assert (fact["order_id"], Decimal(str(fact["unit_price"]))) == (line["order_id"], line["unit_price"]), key
        assert dt.datetime.fromisoformat(str(fact["sold_at"])) == line["sold_at"], key
    # Every line found its product and store where it has one; only a line without customer has none.
    assert all(f["product_key"] != -1 for f in facts.values())
    assert {k for k, f in facts.items() if f["location_key"] != -1} == {*db, *shop}
    assert {k for k, f in facts.items() if f["customer_key"] == -1} == {
        k for k, e in invoices.items() if e["customer"] is None}

    # The view sums everything, the measure included.
    [daily] = warehouse_rows(config, "SELECT sale_lines, net_amount, freight FROM {p}v_sales_daily")
    assert (daily["sale_lines"], _money(daily["net_amount"]), _money(daily["freight"])) == (
        len(expected), sum((cents(e["net"]) for e in expected.values()), Decimal(0)),
        sum((e["freight"] for e in db.values()), Decimal(0)))

    # Status, shipper and payment method group the day in the order-attributes view.
    groups: dict[tuple[Any, ...], list[Decimal]] = {}
    for e in expected.values():
        groups.setdefault((e["status"], e.get("shipper"), e["method"]), []).append(cents(e["net"]))
    view = warehouse_rows(config, "SELECT order_status, shipper, payment_method, sale_lines, net_amount "
                         "FROM {p}v_sales_daily_by_order_attributes")
    assert {(v["order_status"], v["shipper"], v["payment_method"]): (int(v["sale_lines"]), _money(v["net_amount"]))
            for v in view} == {k: (len(nets), sum(nets, Decimal(0))) for k, nets in groups.items()}

    # Company names (and the database's other attributes) in the current-customers view.
    companies = {c[0]: c[1] for c in own.DB_CUSTOMERS}
    companies |= {e["customer"]: e["company"] for e in invoices.values() if e["customer"]}
    companies |= {"C-17": "Schulz Textil GmbH", "C-23": None, "C-31": "Fischer & Söhne KG"}
    companies |= {c["customer"]["id"]: c["customer"]["business_name"] for c in state.charges if c["lines"]["data"]}
    current = {c["customer_id"]: c for c in warehouse_rows(config, (
        "SELECT customer_id, first_name, company_name, contact_title, credit_limit, sales_rep, country "
        "FROM {p}v_current_customers"))}
    assert {k: c["company_name"] for k, c in current.items()} == companies
    # The database's contact names (mapped to first_name) are person names: redacted by default.
    assert {c[0]: current[c[0]]["first_name"] for c in own.DB_CUSTOMERS} == dict.fromkeys(
        (c[0] for c in own.DB_CUSTOMERS), "[REDACTED]")
    assert {k: (current[k]["contact_title"], _money(current[k]["credit_limit"]), current[k]["sales_rep"])
            for k in (c[0] for c in own.DB_CUSTOMERS)} == {
        c[0]: (c[3], Decimal(c[8]) if c[8] else None, c[9]) for c in own.DB_CUSTOMERS}
    # The export's country names mapped to codes (unmapped names upper-cased by the customer rule).
    assert {e["customer"]: current[e["customer"]]["country"] for e in invoices.values() if e["customer"]} == {
        e["customer"]: e["country"] for e in invoices.values() if e["customer"]}

    # Products: the database's supplier, the export's and the API's names from the same rows.
    products = {p["product_id"]: p for p in warehouse_rows(
        config, "SELECT product_id, product_name, supplier_name, is_current FROM {p}dim_product") if p["is_current"]}
    assert {str(p[0]): p[3] for p in own.DB_PRODUCTS} == {str(p[0]): products[str(p[0])]["supplier_name"]
                                                          for p in own.DB_PRODUCTS}
    assert {k: products[k]["product_name"] for k in own.API_PRODUCTS} == own.API_PRODUCTS
    assert {e["product"][0]: products[e["product"][0]]["product_name"] for e in invoices.values()} == dict(
        e["product"] for e in invoices.values())

    # No e-mail address in clear text anywhere in the warehouse (emails are lower-cased on the way).
    emails = [c["email"].lower() for c in own.API_CUSTOMERS.values()] + ["mia.schulz@example.de"]
    assert not [(t, v) for t, v in _all_text(config) if any(e in v.lower() for e in emails)]
