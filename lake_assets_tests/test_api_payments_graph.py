"""The payments-style API example (docs/examples/payments_api.yaml) without running the graph: nested
paths into an exploded line's parent object, and `lake-config explain` on the example against the local
API (lake_assets_tests/own_fixtures.py). The whole graph on it runs in test_own_sources_graph.py, on
every warehouse dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lake_assets.config import load_config
from lake_assets.explain import explain
from lake_assets.ingestion.text import records_as_text
from spark.mapping_rules import map_columns
from spark.standardize import snake_case_columns

from . import own_fixtures as own
from .api_server import ApiState, serve_api


@pytest.fixture
def api() -> Iterator[tuple[ApiState, str]]:
    state = ApiState(token=own.API_TOKEN)
    state.charges = own.api_charges()
    with serve_api(state) as url:
        yield state, url


def _env(monkeypatch: pytest.MonkeyPatch, base_url: str, tmp_path: Path) -> None:
    """Set the example's `${...}` variables."""
    for name, value in {"PAYMENTS_API_URL": base_url, "PAYMENTS_API_TOKEN": own.API_TOKEN,
                        "LAKE_URL": str(tmp_path / "lake"), "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'wh.db'}",
                        "START_DATE": own.DAY}.items():
        monkeypatch.setenv(name, value)


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
    report, product, customer = explain(load_config(own.API_EXAMPLE))
    assert report.errors == []
    assert report.unused_renames == []
    assert {"customer_id", "product_id", "payment_method", "order_status"}.isdisjoint(report.not_delivered)
    # The entities the same rows also feed, each with its nested paths.
    assert (product.name, customer.name) == ("payments.charge_lines (also feeds product)",
                                             "payments.charge_lines (also feeds customer)")
    assert product.errors == customer.errors == [] and customer.unused_renames == []
    assert {"customer_id", "email", "country", "company_name"}.isdisjoint(customer.not_delivered)
    assert not [w for w in report.warnings if "parent.customer is a nested object" in w or "product is a nested" in w]
    transforms = {c.processed_name: c.transforms for c in report.columns}
    assert transforms["sold_at"] == ["Unix seconds as UTC", "parse timestamp"]
    assert transforms["unit_price"] == ["times 0.01", "cast to decimal(12,2)"]
    # An object nothing reads from is still pointed out.
    assert [w for w in report.warnings if w.startswith("parent.lines is a nested object")]
