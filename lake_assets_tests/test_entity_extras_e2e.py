"""Bring your own columns, end to end: an order-entry database exported as CSV files (Northwind-like:
customers with company name, contact title, credit limit and sales rep; order header and lines already
joined into sale lines with status, shipper, freight, payment method and a percentage discount) runs
through the whole graph into a SQLite warehouse with the extras declared in `entities:`.

Oracles come from the CSV rows below with the standard library: the net total is what the order system
prints (each line at full precision, rounded once to the cent)."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from lake_assets.config import load_config

from .conftest import TEST_MASKING_KEY
from .helpers import materialize_day

DAY = "2024-05-06"
CUSTOMERS = [
    ["CustomerID", "CompanyName", "ContactName", "ContactTitle", "Address", "City", "Region", "PostalCode",
     "Country", "Phone", "CreditLimit", "SalesRep", "LastModified"],
    ["ALFKI", "Alfreds Futterkiste", "Maria Anders", "Sales Representative", "Obere Str. 57", "Berlin", "",
     "12209", "Germany", "030-0074321", "2500.00", "Nancy Davolio", "2024-05-05 09:12:00"],
    ["ANATR", "Ana Trujillo Emparedados y helados", "Ana Trujillo", "Owner", "Avda. de la Constitución 2222",
     "México D.F.", "", "05021", "Mexico", "(5) 555-4729", "800.00", "Janet Leverling", "2024-05-05 10:40:00"],
    ["VINET", "Vins et alcools Chevalier", "Paul Henriot", "Accounting Manager", "59 rue de l'Abbaye", "Reims",
     "", "51100", "France", "26.47.15.10", "", "Steven Buchanan", "2024-05-05 11:02:00"],
]
PRODUCTS = [
    ["ProductID", "ProductName", "CategoryName", "SupplierName", "UnitPrice"],
    ["11", "Queso Cabrales", "Dairy Products", "Cooperativa de Quesos 'Las Cabras'", "21.00"],
    ["42", "Singaporean Hokkien Fried Mee", "Grains/Cereals", "Leka Trading", "14.00"],
    ["72", "Mozzarella di Giovanni", "Dairy Products", "Formaggi Fortini s.r.l.", "34.80"],
    ["14", "Tofu", "Produce", "Mayumi's", "23.25"],
    ["51", "Manjimup Dried Apples", "Produce", "G'day, Mate", "53.00"],
]
WAREHOUSES = [
    ["WarehouseID", "WarehouseName", "City", "Region", "Country", "PostalCode"],
    ["W1", "Seattle depot", "Seattle", "WA", "USA", "98122"],
]
# Order header joined to its lines; Discount is a rate, Freight is spread over the lines.
SALE_LINES = [
    ["LineID", "OrderID", "OrderDate", "CustomerID", "ProductID", "WarehouseID", "Quantity", "UnitPrice",
     "Discount", "OrderStatus", "ShipVia", "Freight", "PaymentMethod"],
    ["10248-11", "10248", "2024-05-06 08:00:00", "VINET", "11", "W1", "12", "14.00", "0.15", "shipped",
     "Federal Shipping", "10.79", "invoice"],
    ["10248-42", "10248", "2024-05-06 08:00:00", "VINET", "42", "W1", "10", "9.80", "0.15", "shipped",
     "Federal Shipping", "10.79", "invoice"],
    ["10248-72", "10248", "2024-05-06 08:00:00", "VINET", "72", "W1", "5", "34.80", "0.05", "shipped",
     "Federal Shipping", "10.80", "invoice"],
    ["10249-14", "10249", "2024-05-06 09:30:00", "ALFKI", "14", "W1", "7", "0.70", "0.15", "pending",
     "Speedy Express", "11.61", "card"],
    ["10249-51", "10249", "2024-05-06 09:30:00", "ALFKI", "51", "W1", "3", "12.50", "0.05", "pending",
     "Speedy Express", "0", "card"],
    ["10250-65", "10250", "2024-05-06 14:05:00", "ANATR", "72", "W1", "15", "16.80", "", "cancelled",
     "United Package", "65.83", "cash"],
]
ENTITIES = {
    "customer": {"attributes": {
        "company_name": {"type": "string", "mask": "keep", "scd": 2},
        "contact_title": {"type": "string", "mask": "keep", "scd": 1},
        "credit_limit": {"type": "decimal(12,2)", "mask": "keep", "scd": 1},
        "sales_rep": {"type": "string", "mask": "keep", "scd": 2},
    }},
    "product": {"attributes": {"supplier_name": {"type": "string", "mask": "keep"}}},
    "sale": {
        "measures": {"freight": "decimal(12,2)"},
        "degenerate": {"order_status": "string", "shipper": "string",
                       "payment_method": {"type": "string", "mask": "keep"}},
    },
}


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _config(tmp_path: Path) -> Path:
    drop = tmp_path / "export"
    for name, rows in (("customers", CUSTOMERS), ("products", PRODUCTS), ("warehouses", WAREHOUSES),
                       ("order_lines", SALE_LINES)):
        _write_csv(drop / DAY / f"{name}.csv", rows)
    document = {
        "start_date": DAY,
        "lake": {"url": str(tmp_path / "lake")},
        "warehouse": {"url": f"sqlite:///{tmp_path / 'warehouse.db'}"},
        "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4"}},
        "sources": [{"name": "orders_db", "kind": "file", "path": str(drop), "tables": [
            {"name": "customers", "entity": "customer", "pattern": "{date}/customers.csv",
             "columns": {"contact_name": "first_name", "address": "street_address", "last_modified": "updated_at"}},
            {"name": "products", "entity": "product", "pattern": "{date}/products.csv",
             "columns": {"category_name": "category", "unit_price": "list_price"}},
            {"name": "warehouses", "entity": "location", "pattern": "{date}/warehouses.csv",
             "columns": {"warehouse_id": "location_id", "warehouse_name": "store_name"}},
            {"name": "order_lines", "entity": "sale", "pattern": "{date}/order_lines.csv",
             "columns": {"line_id": "sale_line_id", "order_date": "sold_at", "warehouse_id": "location_id",
                         "discount": "discount_rate", "ship_via": "shipper"}},
        ]}],
        "masking": {"key": TEST_MASKING_KEY, "columns": {"email": "hmac_sha256", "phone": "last4", "ssn": "last4",
                                                         "card_number": "tokenize", "street_address": "redact"}},
        "retries": {"max": 0, "delay_seconds": 0},
        "entities": ENTITIES,
    }
    path = tmp_path / "orders.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _net(line: list[str]) -> Decimal:
    header = SALE_LINES[0]
    value = dict(zip(header, line, strict=True))
    rate = Decimal(value["Discount"] or "0")
    exact = int(value["Quantity"]) * Decimal(value["UnitPrice"]) * (1 - rate)
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_order_database_export_with_own_columns_reaches_warehouse_and_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    config = load_config(_config(tmp_path))
    materialize_day(config, DAY)

    lines = SALE_LINES[1:]
    oracle_net = sum((_net(line) for line in lines), Decimal("0"))
    oracle_freight = sum((Decimal(line[11]) for line in lines), Decimal("0"))
    engine = create_engine(config.warehouse.url)
    with engine.connect() as conn:
        fact = conn.execute(text(
            "SELECT sale_line_id, net_amount, discount_rate, freight, order_status, shipper, payment_method "
            "FROM fact_sales ORDER BY sale_line_id")).all()
        daily = conn.execute(text("SELECT sale_lines, net_amount, freight FROM v_sales_daily")).all()
        current = conn.execute(text(
            "SELECT customer_id, company_name, contact_title, credit_limit, sales_rep "
            "FROM v_current_customers ORDER BY customer_id")).all()
        suppliers = dict(conn.execute(text(
            "SELECT product_id, supplier_name FROM dim_product WHERE is_current = 1")).all())
        by_status = dict(conn.execute(text(
            "SELECT order_status, SUM(freight) FROM fact_sales GROUP BY order_status")).all())
    engine.dispose()

    # Degenerate dimensions and the measure on every fact row, as delivered.
    assert [(r[0], r[4], r[5], r[6]) for r in fact] == [
        (line[0], line[9], line[10], line[12]) for line in sorted(lines)]
    assert {r[0]: Decimal(str(r[3])) for r in fact} == {line[0]: Decimal(line[11]) for line in lines}
    # Net per line and in total to the cent; the rate is kept (0 where none was given).
    assert {r[0]: Decimal(str(r[1])).quantize(Decimal("0.01")) for r in fact} == {
        line[0]: _net(line) for line in lines}
    assert sum(Decimal(str(r[1])) for r in fact).quantize(Decimal("0.01")) == oracle_net
    assert Decimal(str(dict((r[0], r[2]) for r in fact)["10250-65"])) == 0
    # The view sums the measure; the day's totals match the export.
    assert len(daily) == 1
    sale_lines, net, freight = daily[0]
    assert (sale_lines, Decimal(str(net)).quantize(Decimal("0.01")), Decimal(str(freight)).quantize(
        Decimal("0.01"))) == (len(lines), oracle_net, oracle_freight)
    assert Decimal(str(by_status["shipped"])).quantize(Decimal("0.01")) == Decimal("32.38")
    # Extra customer attributes in the current-customers view; an empty credit limit stays NULL.
    header = CUSTOMERS[0]
    expected = []
    for row in sorted(CUSTOMERS[1:]):
        value = dict(zip(header, row, strict=True))
        expected.append((value["CustomerID"], value["CompanyName"], value["ContactTitle"],
                         Decimal(value["CreditLimit"]) if value["CreditLimit"] else None, value["SalesRep"]))
    assert [(c, n, t, Decimal(str(limit)) if limit is not None else None, rep)
            for c, n, t, limit, rep in current] == expected
    assert suppliers["51"] == "G'day, Mate"
