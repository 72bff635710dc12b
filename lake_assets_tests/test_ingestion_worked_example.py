"""The worked example of docs/ingestion.md, run as written: a classic shop database in PostgreSQL
(customers, products, stores, orders, order_lines; nothing like the bundled sample) wired to the
entities by docs/examples/shop_postgres.yaml alone, through the whole graph into a PostgreSQL warehouse.

The source delivers no SSN and no card number, so the example configures no masking for them: the
entity columns the processed layer adds as NULL must not stop the run at masked/*.
Oracles are computed from the seeded rows below, never from the pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetKey
from sqlalchemy import create_engine, text

from lake_assets.config import load_config
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import PG_ADMIN_URL, REPO, Warehouse, require_listening
from .helpers import materialize_day

pytestmark = pytest.mark.services  # whole-graph runs on PostgreSQL

EXAMPLE = REPO / "docs" / "examples" / "shop_postgres.yaml"
DAY = "2024-03-01"
# (order_id, customer_id, store_code, ordered_at, status, updated_at)
ORDERS = [
    (100, 1, "ST1", "2024-02-29 10:15:00", "paid", "2024-02-29 10:15:00"),
    (101, 2, "ST1", "2024-02-29 11:00:00", "cancelled", "2024-02-29 11:00:00"),
    (102, 2, "ST1", "2024-02-29 12:30:00", "paid", "2024-02-29 12:30:00"),
]
# (order_id, line_no, product_id, quantity, unit_price, discount, updated_at); discount is per line.
ORDER_LINES = [
    (100, 1, 10, 1, "39.90", "0", "2024-02-29 10:15:00"),
    (100, 2, 11, 4, "7.50", "2.00", "2024-02-29 10:15:00"),
    (101, 1, 11, 1, "7.50", "0", "2024-02-29 11:00:00"),
    (102, 1, 11, 2, "7.50", "0", "2024-02-29 12:30:00"),
]
SCHEMA_SQL = """
CREATE TABLE {s}.customers (customer_id INT PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, mobile TEXT,
  street TEXT, city TEXT, state TEXT, zip TEXT, country TEXT, tier TEXT, created_at TIMESTAMP, updated_at TIMESTAMP);
CREATE TABLE {s}.products (product_id INT PRIMARY KEY, sku TEXT UNIQUE, name TEXT, category TEXT, brand TEXT,
  price NUMERIC(10,2), updated_at TIMESTAMP);
CREATE TABLE {s}.stores (store_code TEXT PRIMARY KEY, name TEXT, city TEXT, state TEXT, country TEXT, zip TEXT);
CREATE TABLE {s}.orders (order_id INT PRIMARY KEY, customer_id INT, store_code TEXT, ordered_at TIMESTAMP,
  status TEXT, updated_at TIMESTAMP);
CREATE TABLE {s}.order_lines (order_id INT, line_no INT, product_id INT, quantity INT, unit_price NUMERIC(10,2),
  discount NUMERIC(10,2), updated_at TIMESTAMP, PRIMARY KEY (order_id, line_no));
INSERT INTO {s}.customers VALUES
  (1, 'Ada', 'Byron', 'Ada@Example.com', '+1 (555) 010-2000', '1 Loop Rd', 'Austin', 'TX', '73301', 'us', 'vip',
   '2023-01-01', '2024-02-28 09:00:00'),
  (2, 'Alan', 'Turing', 'alan@example.com', '555 010 3000', '2 Enigma St', 'Boston', 'MA', '02101', 'US', 'consumer',
   '2023-01-01', '2024-02-28 09:00:00');
INSERT INTO {s}.products VALUES (10, 'SKU-10', 'Kettle', 'kitchen', 'Brewco', 39.90, '2024-02-01'),
  (11, 'SKU-11', 'Mug', 'kitchen', 'Brewco', 7.50, '2024-02-01');
INSERT INTO {s}.stores VALUES ('ST1', 'Austin Downtown', 'Austin', 'TX', 'us', '73301');
"""


@pytest.fixture
def shop_schema() -> Iterator[str]:
    require_listening("PostgreSQL", 5432)
    schema = f"shop_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        for statement in SCHEMA_SQL.replace("{s}", schema).split(";"):
            if statement.strip():
                conn.execute(text(statement))
        for row in ORDERS:
            conn.execute(text(f"INSERT INTO {schema}.orders VALUES (:a, :b, :c, :d, :e, :f)"),
                         dict(zip("abcdef", row, strict=True)))
        for row in ORDER_LINES:
            conn.execute(text(f"INSERT INTO {schema}.order_lines VALUES (:a, :b, :c, :d, :e, :f, :g)"),
                         dict(zip("abcdefg", row, strict=True)))
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_shop_database_reaches_the_warehouse_by_config_only(
    shop_schema: str, postgres_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    for name, value in {
        "SHOP_DB_USER": "postgres",
        "SHOP_DB_PASSWORD": "unused-with-trust",
        "SHOP_DB_NAME": "postgres",
        "SHOP_DB_SCHEMA": shop_schema,
        "LAKE_URL": str(tmp_path / "lake"),
        "WAREHOUSE_URL": postgres_warehouse.url,
        "WAREHOUSE_SCHEMA": postgres_warehouse.schema,
    }.items():
        monkeypatch.setenv(name, value)
    config = load_config(EXAMPLE)
    result = materialize_day(config, DAY)

    lake = LakeStorage(url=config.lake.url)
    sales = {r["sale_line_id"]: r for r in lake.read_arrow(["processed", "sale"], DAY).to_pylist()}
    assert sorted(sales) == ["100-1", "100-2", "102-1"]  # the cancelled order is filtered by the query
    line = sales["100-2"]
    assert (line["product_id"], line["location_id"], line["quantity"]) == ("11", "ST1", 4)
    assert (line["unit_price"], line["discount"]) == (Decimal("7.50"), Decimal("2.00"))
    assert line["sold_at"].strftime("%Y-%m-%d %H:%M:%S") == "2024-02-29 10:15:00"
    customers = {r["customer_id"]: r for r in lake.read_arrow(["processed", "customer"], DAY).to_pylist()}
    assert (customers["1"]["email"], customers["1"]["region"], customers["1"]["segment"]) == (
        "ada@example.com",
        "TX",
        "vip",
    )
    products = {r["product_id"]: r for r in lake.read_arrow(["processed", "product"], DAY).to_pylist()}
    assert products["10"]["list_price"] == Decimal("39.90") and products["10"]["product_name"] == "Kettle"
    assert lake.read_arrow(["processed", "location"], DAY).column("location_id").to_pylist() == ["ST1"]

    # Never delivered, so never flagged: the masked layer keeps the NULL columns as they are.
    [masked] = [m.metadata for m in result.asset_materializations_for_node("masked__sale")
                if m.asset_key == AssetKey(["masked", "sale"])]
    assert masked["unconfigured_pii_columns"].value == "none"

    # The warehouse: one fact row per paid order line; net = quantity * unit price - line discount.
    paid = {o[0] for o in ORDERS if o[4] != "cancelled"}
    lines = [ln for ln in ORDER_LINES if ln[0] in paid]
    oracle = sum(ln[3] * Decimal(ln[4]) - Decimal(ln[5]) for ln in lines)
    engine = create_engine(postgres_warehouse.url)
    qualified = f'"{postgres_warehouse.schema}".fact_sales'
    with engine.connect() as conn:
        count, net = conn.execute(text(f"SELECT COUNT(*), SUM(net_amount) FROM {qualified}")).one()
        unknown = conn.execute(
            text(f"SELECT COUNT(*) FROM {qualified} WHERE customer_key < 0 OR product_key < 0 OR location_key < 0")
        ).scalar_one()
    engine.dispose()
    assert (count, net) == (len(lines), oracle)
    assert unknown == 0  # every sale found its customer, product and store
