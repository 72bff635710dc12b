"""The whole graph on a payments-style API, by configuration only (docs/examples/payments_api.yaml):
charges listed newest first with `starting_after` + `has_more` over several pages, line items nested
in each charge (`lines.data`), amounts in cents, Unix `created` seconds, the customer a nested object
with an address, and the payment method nested in `payment_method_details`. One day into SQLite; the
oracles come from the fixture charges below with the stdlib only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dagster import materialize
from sqlalchemy import create_engine, inspect, text

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.explain import explain
from lake_assets.ingestion.text import records_as_text
from spark.mapping_rules import map_columns
from spark.standardize import snake_case_columns

from .api_server import ApiState, serve_api
from .helpers import query_rows

DAY = "2024-03-01"
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "payments_api.yaml"
TOKEN = "sk_test_51Hx-payments-fixture"
DAY_START = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp())
CUSTOMERS = {
    "cus_PQ1": {"id": "cus_PQ1", "object": "customer", "email": "Jana.Novak@example.cz",
                "address": {"city": "Brno", "country": "CZ", "line1": "Masarykova 12", "postal_code": "60200"}},
    "cus_PQ2": {"id": "cus_PQ2", "object": "customer", "email": "m.dupont@example.fr",
                "address": {"city": "Lyon", "country": "FR", "line1": "3 rue Mercière", "postal_code": "69002"}},
    "cus_PQ3": {"id": "cus_PQ3", "object": "customer", "email": "ole@example.no",
                "address": {"city": "Bergen", "country": "NO", "line1": None, "postal_code": None}},
}
PRODUCTS = {"prod_Mug": "Enamel mug, 350 ml", "prod_Tee": "Organic tee \"Fjord\"", "prod_Bag": "Canvas tote",
            "prod_Pin": "Pin badge"}
# (charge seconds after midnight UTC, customer, payment method, [(product, quantity, cents)])
CHARGES = [
    (8 * 3600 + 1, "cus_PQ1", "card", [("prod_Mug", 2, 1250), ("prod_Tee", 1, 2499)]),
    (8 * 3600 + 17, "cus_PQ2", "sepa_debit", [("prod_Bag", 3, 899)]),
    (9 * 3600 + 5, "cus_PQ3", "card", [("prod_Pin", 10, 199), ("prod_Mug", 1, 1250), ("prod_Tee", 2, 2499)]),
    (10 * 3600 + 42, "cus_PQ1", "card", []),  # a charge without line items gives no rows
    (11 * 3600 + 30, "cus_PQ2", "sepa_debit", [("prod_Tee", 1, 2499), ("prod_Pin", 3, 199)]),
    (13 * 3600 + 3, "cus_PQ3", "klarna", [("prod_Bag", 1, 899)]),
    (23 * 3600 + 59 * 60 + 59, "cus_PQ1", "card", [("prod_Mug", 4, 1250)]),  # the last second of the day
]


def _charge(n: int, seconds: int, customer: str, method: str, lines: list[tuple[str, int, int]]) -> dict[str, Any]:
    items = [
        {"id": f"li_{n}{i}x", "object": "line_item", "quantity": qty, "unit_amount": cents, "currency": "eur",
         "amount_total": qty * cents, "product": {"id": product, "object": "product", "name": PRODUCTS[product]}}
        for i, (product, qty, cents) in enumerate(lines)
    ]
    return {
        "id": f"ch_3Ok{n:04d}", "object": "charge", "created": DAY_START + seconds, "currency": "eur",
        "amount": sum(item["amount_total"] for item in items), "livemode": False, "status": "succeeded",
        "customer": CUSTOMERS[customer],
        "payment_method_details": {"type": method, method: {"network": "visa"} if method == "card" else {}},
        "lines": {"object": "list", "data": items, "has_more": False, "total_count": len(items),
                  "url": f"/v1/charges/ch_3Ok{n:04d}/lines"},
    }


@pytest.fixture
def api() -> Iterator[tuple[ApiState, str]]:
    state = ApiState(token=TOKEN)
    state.charges = [_charge(n, *charge) for n, charge in enumerate(CHARGES)]
    with serve_api(state) as url:
        yield state, url


def _env(monkeypatch: pytest.MonkeyPatch, base_url: str, tmp_path: Path) -> str:
    """Set the example's `${...}` variables; returns the warehouse URL."""
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    for name, value in {"PAYMENTS_API_URL": base_url, "PAYMENTS_API_TOKEN": TOKEN, "LAKE_URL": str(tmp_path / "lake"),
                        "WAREHOUSE_URL": warehouse, "START_DATE": DAY}.items():
        monkeypatch.setenv(name, value)
    return warehouse


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(url)
    try:
        names = inspect(engine).get_table_names()
        with engine.connect() as conn:
            return {n: [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{n}"'))] for n in names}
    finally:
        engine.dispose()


def test_payments_api_with_nested_line_items_reaches_the_warehouse(
    api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    state, base_url = api
    warehouse = _env(monkeypatch, base_url, tmp_path)
    config = load_config(EXAMPLE)
    result = materialize(build_all_assets(config), resources=build_resources(config), partition_key=DAY,
                         raise_on_error=False)
    failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert not failed, [f"{e.asset_key.to_user_string()}:{e.check_name} {e.metadata}" for e in failed]
    assert len({q.get("starting_after", [None])[0] for p, q in state.requests if p == "/v1/charges"}) >= 3

    # Oracles from the fixture: one sale line per line item; cents to units; Unix seconds as UTC.
    lines = {
        item["id"]: (charge, item) for charge in state.charges for item in charge["lines"]["data"]
    }
    net = sum((Decimal(item["quantity"]) * Decimal(item["unit_amount"]) / 100 for _, item in lines.values()),
              Decimal("0"))
    facts = query_rows(warehouse, "SELECT sale_line_id, order_id, quantity, unit_price, net_amount, sold_at, "
                             "payment_method FROM fact_sales")
    assert sorted(f["sale_line_id"] for f in facts) == sorted(lines)
    assert sum(Decimal(str(f["net_amount"])) for f in facts) == net
    daily = query_rows(warehouse, "SELECT sale_lines, net_amount FROM v_sales_daily")
    assert [(d["sale_lines"], Decimal(str(d["net_amount"]))) for d in daily] == [(len(lines), net)]
    by_line = {f["sale_line_id"]: f for f in facts}
    for line_id, (charge, item) in lines.items():
        fact = by_line[line_id]
        assert fact["order_id"] == charge["id"]
        assert fact["payment_method"] == charge["payment_method_details"]["type"]
        assert Decimal(str(fact["unit_price"])) == Decimal(item["unit_amount"]) / 100
        sold_at = dt.datetime.fromisoformat(str(fact["sold_at"]))
        assert sold_at == dt.datetime.fromtimestamp(charge["created"], dt.UTC).replace(tzinfo=None), line_id

    products = query_rows(warehouse, "SELECT product_id, product_name FROM dim_product WHERE product_key <> -1")
    assert {p["product_id"]: p["product_name"] for p in products} == PRODUCTS
    customers = query_rows(warehouse, "SELECT customer_id, email, country FROM dim_customer WHERE customer_key <> -1")
    used = {charge["customer"]["id"] for charge, _ in lines.values()}
    assert {c["customer_id"]: c["country"] for c in customers} == {
        c: CUSTOMERS[c]["address"]["country"] for c in used}
    assert all(len(c["email"]) == 64 for c in customers)  # HMAC-SHA256 hex
    # No e-mail address in clear text anywhere in the warehouse (case-insensitively: emails are lowercased).
    emails = [c["email"].lower() for c in CUSTOMERS.values()]
    leaks = [(table, value) for table, rows in _tables(warehouse).items() for row in rows for value in row.values()
             if isinstance(value, str) and any(e in value.lower() for e in emails)]
    assert not leaks


def test_a_path_into_an_exploded_parent_object_may_be_written_as_raw_names_it(spark) -> None:
    """Raw shows an exploded line's parent object as the column `parent.customer`; a path written from
    that name (`parent.customer.id`) reads the same field as the snake_case form (`parent_customer.id`),
    instead of matching no column and leaving the entity column NULL without a word."""
    rows = [
        {"id": "li_1", "quantity": 2, "parent.id": "ch_1", "parent.amount": 2500,
         "parent.customer": {"id": "cus_1", "address": {"country": "CZ"}},
         "parent.payment_method_details": {"type": "sepa_debit"}},
        {"id": "li_2", "quantity": 1, "parent.id": "ch_2", "parent.amount": 899,
         "parent.customer": {"id": "cus_2", "address": {"country": "FR"}},
         "parent.payment_method_details": {"type": "card"}},
    ]
    raw = snake_case_columns(spark.createDataFrame(records_as_text(rows).to_pandas()))
    mapping = {"id": "sale_line_id", "parent.id": "order_id", "parent.amount": "amount",
               "parent.customer.id": "customer_id", "parent.customer.address.country": "country",
               "parent.payment_method_details.type": "payment_method"}
    out = map_columns(raw, mapping).orderBy("sale_line_id").collect()
    assert [(r["sale_line_id"], r["order_id"], r["amount"], r["customer_id"], r["country"], r["payment_method"])
            for r in out] == [("li_1", "ch_1", "2500", "cus_1", "CZ", "sepa_debit"),
                              ("li_2", "ch_2", "899", "cus_2", "FR", "card")]
    snake = {"parent_customer.id": "customer_id", "parent_payment_method_details.type": "payment_method"}
    assert [(r["customer_id"], r["payment_method"]) for r in map_columns(raw, snake).orderBy("id").collect()] == [
        ("cus_1", "sepa_debit"), ("cus_2", "card")]


def test_explain_counts_nested_paths_as_mapped(api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lake-config explain` on the example: the nested paths deliver their entity columns, so none is
    reported as a rename matching nothing, as not delivered, or as a nested object left unmapped."""
    _, base_url = api
    _env(monkeypatch, base_url, tmp_path)
    report = explain(load_config(EXAMPLE))[0]
    assert report.errors == []
    assert report.unused_renames == []
    assert {"customer_id", "product_id", "payment_method"}.isdisjoint(report.not_delivered)
    assert not [w for w in report.warnings if "parent.customer is a nested object" in w or "product is a nested" in w]
    transforms = {c.processed_name: c.transforms for c in report.columns}
    assert transforms["sold_at"] == ["Unix seconds as UTC", "parse timestamp"]
    assert transforms["unit_price"] == ["times 0.01", "cast to decimal(12,2)"]
    # An object nothing reads from is still pointed out.
    assert [w for w in report.warnings if w.startswith("parent.lines is a nested object")]
