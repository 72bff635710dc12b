"""`lake-config explain` against real sources: a CSV drop, a PostgreSQL table and query, the local HTTP
API, and sources that cannot be read (refused connection, no file). Expected mappings are written out
from each fixture, not derived from the code under test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from lake_assets.explain import main

from .api_server import ApiState, sale_record, serve_api
from .conftest import REPO

MASKING = {"email": "hmac_sha256", "phone": "last4", "card_number": "tokenize"}


def write_config(tmp_path: Path, sources: list[dict[str, Any]], on_unknown_pii: str = "fail") -> Path:
    config = {
        "start_date": "2024-05-01",
        "lake": {"url": str(tmp_path / "lake")},
        "warehouse": {"url": f"sqlite:///{tmp_path / 'warehouse.db'}"},
        "sources": sources,
        "masking": {"key": "${LAKE_MASKING_KEY}", "columns": MASKING, "on_unknown_pii": on_unknown_pii},
    }
    path = tmp_path / "lake.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def explained(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, Any]]]:
    code, out, _ = run(["explain", "--config", str(config), "--format", "json"], capsys)
    return code, {t["name"]: t for t in json.loads(out)["tables"]}


def mapping_of(table: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """delivered column -> (entity column, masking technique)."""
    return {c["delivered"]: (c["entity_column"], c["masking"]) for c in table["columns"]}


def row_of(out: str, delivered: str) -> str:
    """The text report's table row of one delivered column."""
    rows = [line for line in out.splitlines() if line.startswith(f"  {delivered}  ")]
    assert len(rows) == 1, f"{delivered!r} rows: {rows}"
    return rows[0]


# --------------------------------------------------------------------------- file source
SALES_HEADER = ["Line ID", "Order No", "Sale Time", "Qty", "Unit Price", "Card No", "Till Number", "Contact Email"]
SALES_COLUMNS = {"line_id": "sale_line_id", "order_no": "order_id", "qty": "quantity", "card_no": "card_number"}


@pytest.fixture
def sales_drop(tmp_path: Path) -> dict[str, Any]:
    day = tmp_path / "drop" / "2024-05-01"
    day.mkdir(parents=True)
    (day / "pos_sales.csv").write_text(
        ",".join(SALES_HEADER) + "\nL1,O1,2024-05-01 10:00:00,2,9.50,4111 1111 1111 1111,T7,ann@example.com\n",
        encoding="utf-8",
    )
    return {
        "name": "pos",
        "kind": "file",
        "path": str(tmp_path / "drop"),
        "tables": [{"name": "sales", "entity": "sale", "pattern": "{date}/pos_*.csv", "columns": SALES_COLUMNS}],
    }


def test_file_source_maps_each_delivered_column(tmp_path: Path, sales_drop: dict, capsys) -> None:
    config = write_config(tmp_path, [sales_drop])
    code, tables = explained(config, capsys)
    table = tables["pos.sales"]
    assert code == 1  # sold_at is required and not delivered; Contact Email is PII without a rule
    assert mapping_of(table) == {
        "Line ID": ("sale_line_id", None),
        "Order No": ("order_id", None),
        "Sale Time": (None, None),  # not mapped: the required sold_at is missing
        "Qty": ("quantity", None),
        "Unit Price": ("unit_price", None),  # already the entity name: no rename needed
        "Card No": ("card_number", "tokenize"),
        "Till Number": (None, None),
        "Contact Email": (None, None),
    }
    assert table["unmapped"] == ["Sale Time", "Till Number", "Contact Email"]
    assert table["missing_required"] == ["sold_at"]
    assert table["pii_without_rule"] == ["contact_email"]
    assert table["key"]["delivered"] == ["Line ID"] and table["key"]["entity"] == ["sale_line_id"]
    assert table["duplicates"]["dedup_key"] == ["sale_line_id"]
    assert table["duplicates"]["latest_wins_by"][:3] == ["sold_at", "_ingested_at", "_source_file"]
    assert table["read_from"].endswith("2024-05-01/pos_sales.csv (first of 1 matching file)")

    code, out, _ = run(["explain", "--config", str(config)], capsys)
    assert code == 1
    assert row_of(out, "Card No").split()[2:] == ["card_number", "string", "trim;", "digits", "only", "keep", "NULL",
                                                  "tokenize"]
    assert "cast to int" in row_of(out, "Qty") and "reject row (required)" in row_of(out, "Qty")
    assert "(unmapped: contact_email)" in row_of(out, "Contact Email")
    assert "NONE (looks like email)" in row_of(out, "Contact Email")
    assert "required entity columns missing: sold_at" in out
    assert "error: required entity column 'sold_at' is not delivered" in out
    assert "error: contact_email: name looks like email and has no masking rule" in out
    assert "not loaded into the star schema" in out


def test_bundled_config_explains_cleanly(capsys) -> None:
    code, out, err = run(["explain"], capsys)  # LAKE_CONFIG unset: the bundled config over data/sample
    assert (code, err) == (0, "")
    assert "4 table(s) explained, 0 with errors" in out
    assert "E-Mail" in row_of(out, "E-Mail") and "hmac_sha256" in row_of(out, "E-Mail")


def test_console_script_entry_point(tmp_path: Path, sales_drop: dict) -> None:
    """Runs the `lake-config` entry point named in pyproject.toml as its generated script would."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    scripts = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    module, function = re.search(r'^lake-config = "([\w.]+):(\w+)"$', scripts, re.M).groups()
    sales_drop["tables"][0]["columns"] = {**SALES_COLUMNS, "sale_time": "sold_at"}
    config = write_config(tmp_path, [sales_drop], on_unknown_pii="mask")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())",
         "explain", "--config", str(config), "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (table,) = json.loads(done.stdout)["tables"]
    assert table["missing_required"] == [] and table["errors"] == []
    assert any("contact_email: name looks like email" in w and "masks it with hmac_sha256" in w
               for w in table["warnings"])


def test_help_names_the_config_default(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--config FILE" in out and "$LAKE_CONFIG" in out and "Exit status" in out


# --------------------------------------------------------------------------- PostgreSQL
def test_postgres_table_and_query(tmp_path: Path, postgres_warehouse, capsys) -> None:
    schema = postgres_warehouse.schema
    engine = create_engine(postgres_warehouse.url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(
            text(
                f'CREATE TABLE "{schema}".clients (client_ref text PRIMARY KEY, full_name text, '
                "email_address text, mobile text, loyalty_points int, changed timestamptz)"
            )
        )
    engine.dispose()
    source = {
        "name": "crm_db",
        "kind": "database",
        "url": postgres_warehouse.url,
        "tables": [
            {
                "name": "clients",
                "entity": "customer",
                "table": f"{schema}.clients",
                "columns": {"client_ref": "customer_id", "email_address": "email", "mobile": "phone",
                            "changed": "updated_at"},
                "incremental": {"cursor": "changed"},
            },
            {
                "name": "client_emails",
                "entity": "customer",
                "query": f'SELECT client_ref AS customer_id, email_address AS email FROM "{schema}".clients;',
            },
        ],
    }
    code, tables = explained(write_config(tmp_path, [source]), capsys)
    assert code == 0
    clients = tables["crm_db.clients"]
    assert mapping_of(clients) == {
        "client_ref": ("customer_id", None),
        "full_name": (None, None),
        "email_address": ("email", "hmac_sha256"),
        "mobile": ("phone", "last4"),
        "loyalty_points": (None, None),
        "changed": ("updated_at", None),
    }
    assert clients["unmapped"] == ["full_name", "loyalty_points"]
    assert clients["missing_required"] == [] and clients["errors"] == []
    assert clients["key"]["delivered"] == ["client_ref"]
    assert clients["key"]["cursor_delivered_as"] == "changed"
    assert clients["duplicates"]["dedup_key"] == ["customer_id", "updated_at"]
    assert clients["read_from"].startswith(f"table {schema}.clients at postgresql+psycopg2://")
    assert mapping_of(tables["crm_db.client_emails"]) == {
        "customer_id": ("customer_id", None),
        "email": ("email", "hmac_sha256"),
    }


def test_unreachable_database_and_missing_file_are_errors_per_table(
    tmp_path: Path, sales_drop: dict, capsys
) -> None:
    password = "Pa55-secret-xyz"
    sales_drop["tables"][0]["columns"] = {**SALES_COLUMNS, "sale_time": "sold_at"}
    sales_drop["tables"].append({"name": "returns", "entity": "sale", "pattern": "{date}/returns.csv"})
    unreachable = {
        "name": "erp",
        "kind": "database",
        "url": f"postgresql+psycopg2://lake_reader:{password}@127.0.0.1:1/erp",
        "connect_timeout_seconds": 2,
        "tables": [{"name": "orders", "entity": "sale", "table": "public.orders"}],
    }
    config = write_config(tmp_path, [unreachable, sales_drop], on_unknown_pii="mask")
    code, out, err = run(["explain", "--config", str(config)], capsys)
    assert code == 1
    assert password not in out + err
    assert "erp.orders -> entity sale  [database, ERROR]" in out
    assert "postgresql+psycopg2://lake_reader:***@127.0.0.1:1/erp" in out
    assert "pos.returns -> entity sale  [file, ERROR]" in out and "no file matches" in out
    assert "pos.sales -> entity sale  [file, ok]" in out  # the readable table is still reported in full
    assert "tokenize" in row_of(out, "Card No")
    assert "3 table(s) explained, 2 with errors: erp.orders, pos.returns" in out


# --------------------------------------------------------------------------- HTTP API
def test_api_first_page_with_nested_record(tmp_path: Path, monkeypatch, capsys) -> None:
    token = "api-token-not-for-print"
    monkeypatch.setenv("SHOP_API_TOKEN", token)
    records = [
        {**sale_record(i, f"2024-05-01T10:00:{i:02d}"), "buyer": {"id": f"C{i}", "contact": {"email": f"b{i}@x.io"}}}
        for i in range(5)
    ]
    state = ApiState(records=records, token=token)
    with serve_api(state) as url:
        source = {
            "name": "shop_api",
            "kind": "api",
            "base_url": url,
            "auth": {"type": "bearer", "token_env": "SHOP_API_TOKEN"},
            "tables": [
                {
                    "name": "sales",
                    "entity": "sale",
                    "path": "/v1/page",
                    "records_path": "data.items",
                    "pagination": {"type": "page", "page_size": 2},
                    "columns": {"line_id": "sale_line_id", "order_no": "order_id", "sold": "sold_at",
                                "qty": "quantity", "price": "unit_price"},
                }
            ],
        }
        config = write_config(tmp_path, [source], on_unknown_pii="mask")
        code, tables = explained(config, capsys)
        code_text, out, err = run(["explain", "--config", str(config)], capsys)
    assert (code, code_text) == (0, 0)
    assert [path for path, _ in state.requests] == ["/v1/page", "/v1/page"]  # one page per run, no more
    table = tables["shop_api.sales"]
    assert mapping_of(table) == {
        "line_id": ("sale_line_id", None),
        "order_no": ("order_id", None),
        "sold": ("sold_at", None),
        "qty": ("quantity", None),
        "price": ("unit_price", None),
        "updated_at": (None, None),
        "tags": (None, None),
        "buyer": (None, None),
    }
    buyer = next(c for c in table["columns"] if c["delivered"] == "buyer")
    assert buyer["nested_fields"] == ["buyer.id", "buyer.contact.email"]
    assert table["pii_without_rule"] == ["buyer"] and table["missing_required"] == []
    assert "parse timestamp" in row_of(out, "sold") and "cast to decimal(12,2)" in row_of(out, "price")
    assert "buyer is a nested object, stored as one JSON text column" in out
    assert "warning: buyer: nested field buyer.contact.email looks like email" in out
    assert "masks it with redact if its values show it" in out  # found by value, free text: redacted
    assert token not in out + err


# --------------------------------------------------------------------------- also_feeds and derived tables
LINES_HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                "Country"]
PAYMENTS_HEADER = ["payment_id", "invoice_no", "amount", "method"]


def test_also_feeds_and_derived_tables_are_explained(tmp_path: Path, capsys) -> None:
    day = tmp_path / "drop" / "2024-05-01"
    day.mkdir(parents=True)
    (day / "lines.csv").write_text(",".join(LINES_HEADER) + "\n536365,85123A,HEART,6,5/1/2024 8:26,255,17850,EIRE\n",
                                   encoding="utf-8")
    (day / "payments.csv").write_text(",".join(PAYMENTS_HEADER) + "\nP1,536365,1530,card\n", encoding="utf-8")
    source = {"name": "shop", "kind": "file", "path": str(tmp_path / "drop"), "tables": [
        {"name": "lines", "entity": "sale", "pattern": "{date}/lines.csv",
         "generate": {"sale_line_id": {"from": ["InvoiceNo", "StockCode"]}},
         "columns": {"invoice_date": "sold_at", "stock_code": "product_id"},
         "also_feeds": [
             {"entity": "product", "columns": {"stock_code": "product_id", "description": "product_name"}},
             {"entity": "customer", "columns": {"customer_id": "customer_id", "region_name": "region"}}]},
        {"name": "payments", "pattern": "{date}/payments.csv"},
    ]}
    path = write_config(tmp_path, [source])
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["derived"] = [{
        "name": "paid_lines", "entity": "sale", "columns": {"qty": "quantity"}, "scale": {"unit_price": 0.01},
        "also_feeds": [{"entity": "location", "columns": {"store": "location_id"}}],
        "sql": "SELECT l.*, l.quantity AS qty FROM shop__lines l JOIN shop__payments p ON p.invoice_no = l.invoice_no",
    }]
    path.write_text(yaml.safe_dump(document), encoding="utf-8")

    code, tables = explained(path, capsys)
    assert list(tables) == ["shop.lines", "shop.lines (also feeds product)", "shop.lines (also feeds customer)",
                            "derived.paid_lines", "derived.paid_lines (also feeds location)"]
    assert code == 0, [t["errors"] for t in tables.values()]

    product = tables["shop.lines (also feeds product)"]
    assert (product["entity"], product["via"]) == ("product", "also_feeds")
    assert {k: v[0] for k, v in mapping_of(product).items()} == {
        "InvoiceNo": None, "StockCode": "product_id", "Description": "product_name", "Quantity": None,
        "InvoiceDate": None, "UnitPrice": None, "CustomerID": None, "Country": None}
    dropped = next(c for c in product["columns"] if c["delivered"] == "Country")["transforms"]
    assert dropped == ["dropped (only mapped columns feed product)"]
    assert product["key"]["delivered"] == ["StockCode"] and product["missing_required"] == []
    customer = tables["shop.lines (also feeds customer)"]
    assert "rename region_name -> region matches no delivered column" in customer["warnings"]
    assert customer["key"]["delivered"] == ["CustomerID"]

    derived = tables["derived.paid_lines"]
    assert (derived["kind"], derived["entity"]) == ("derived", "sale")
    assert derived["inputs"] == {"shop__lines": LINES_HEADER, "shop__payments": PAYMENTS_HEADER}
    assert derived["renames"] == {"qty": "quantity"}
    assert "Spark SQL over shop__lines, shop__payments" in derived["read_from"]
    [note] = [w for w in derived["warnings"] if w.startswith("its output columns are known only when the SQL runs")]
    assert "must return sale_line_id, sold_at, unit_price by name" in note and "scale.unit_price" in note
    assert tables["derived.paid_lines (also feeds location)"]["entity"] == "location"

    code, out, _ = run(["explain", "--config", str(path), "--table", "derived"], capsys)
    assert code == 0
    assert "derived.paid_lines -> entity sale  [derived, ok]" in out
    assert "  input shop__payments: payment_id, invoice_no, amount, method" in out
    assert "shop.lines" not in out.split("input")[0]
