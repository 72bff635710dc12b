"""Derived tables: Spark SQL over raw tables of the same day feeding an entity like a source table.

Config validation and run-time SQL errors on a drop shaped like a web shop's exports beside a payment
provider's (order headers, order lines and payments in three CSV files from two sources). The whole
graph on such a drop, with amounts in cents, runs in test_own_sources_graph.py on every warehouse
dialect.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import Failure

from lake_assets.assets.derived import run_derived_sql
from lake_assets.config import ConfigError, DerivedTableConfig, load_config, sql_references

DAY = "2026-03-02"

ORDERS = """order_id,customer_id,created_at,status,store
SO-1001,C-17,2026-03-02 09:14:05,paid,BER1
SO-1002,C-17,2026-03-02 10:02:41,paid,BER1
SO-1003,C-23,2026-03-02 11:30:00,pending,HAM1
SO-1004,C-31,2026-03-02 12:45:19,paid,HAM1
SO-1005,C-23,2026-03-02 13:05:00,cancelled,BER1
"""
ORDER_ITEMS = """order_id,line_no,sku,qty,unit_price
SO-1001,1,SKU-RED-M,2,19.99
SO-1001,2,SKU-CAP,1,7.50
SO-1002,1,SKU-RED-M,1,19.99
SO-1003,1,SKU-CAP,3,7.50
SO-1004,1,SKU-BAG,1,49.00
SO-1004,2,SKU-CAP,4,7.45
SO-1004,3,SKU-RED-M,1,17.99
SO-1005,1,SKU-BAG,1,49.00
"""
# SO-1002 paid in two instalments (must not double its lines); SO-1005's payment was voided (0.00);
# SO-1003 has none; PAY-9 is for an order the shop export does not hold.
PAYMENTS = """payment_id,order_id,amount,method,paid_at
PAY-1,SO-1001,47.48,card,2026-03-02 09:15:10
PAY-2,SO-1002,10.00,paypal,2026-03-02 10:03:00
PAY-3,SO-1002,9.99,paypal,2026-03-02 10:04:12
PAY-4,SO-1004,106.79,card,2026-03-02 12:46:00
PAY-5,SO-1005,0.00,card,2026-03-02 13:06:00
PAY-9,SO-0999,12.00,card,2026-03-02 08:00:00
"""
CUSTOMERS = """customer_id,email,city,country
C-17,mia.schulz@example.de,Berlin,DE
C-23,jonas.weber@example.de,Hamburg,DE
C-31,lea.fischer@example.de,Hamburg,DE
"""
PRODUCTS = """sku,title,price
SKU-RED-M,Red T-Shirt M,19.99
SKU-CAP,Baseball Cap,7.50
SKU-BAG,Canvas Bag,49.00
"""
STORES = """store,name,city,country
BER1,Berlin Mitte,Berlin,DE
HAM1,Hamburg Altona,Hamburg,DE
"""

SALE_LINES_SQL = """
-- A sale line is an order line of an order with a captured payment.
WITH paid AS (
  SELECT order_id, MIN(paid_at) AS paid_at
  FROM psp__payments
  WHERE CAST(amount AS DECIMAL(12,2)) > 0
  GROUP BY order_id
)
SELECT oi.order_id || '-' || oi.line_no AS sale_line_id,
       oi.order_id, o.created_at AS sold_at, o.customer_id, oi.sku, o.store, oi.qty, oi.unit_price,
       oi._ingested_at, oi._source_file
FROM shop__order_items oi
JOIN shop__orders o ON o.order_id = oi.order_id
JOIN paid p ON p.order_id = oi.order_id
"""

CONFIG = """
start_date: "2026-03-01"
lake: {{url: "{lake}"}}
warehouse: {{url: "sqlite:///{warehouse}"}}
spark: {{master: "local[2]", conf: {{spark.sql.shuffle.partitions: "4"}}}}
sources:
  - name: shop
    kind: file
    path: "{shop}"
    tables:
      - {{name: orders, pattern: "{{date}}/orders.csv"}}
      - {{name: order_items, pattern: "{{date}}/order_items.csv"}}
      - {{name: customers, entity: customer, pattern: "{{date}}/customers.csv"}}
      - {{name: products, entity: product, pattern: "{{date}}/products.csv",
         columns: {{sku: product_id, title: product_name, price: list_price}}}}
      - {{name: stores, entity: location, pattern: "{{date}}/stores.csv",
         columns: {{store: location_id, name: store_name}}}}
  - name: psp
    kind: file
    path: "{psp}"
    tables:
      - {{name: payments, pattern: "payments_{{date}}.csv"}}
derived:
  - name: sale_lines
    entity: sale
    columns: {{sku: product_id, store: location_id, qty: quantity}}
    sql: |
{sql}
masking:
  key: "${{LAKE_MASKING_KEY}}"
  columns: {{email: hmac_sha256}}
standardize:
  entities:
    sale:
      nulls: {{discount: {{rule: default, value: "0"}}}}
"""


def _write_config(tmp_path: Path, sql: str = SALE_LINES_SQL) -> Path:
    shop, psp = tmp_path / "shop", tmp_path / "psp"
    (shop / DAY).mkdir(parents=True)
    psp.mkdir()
    for name, body in (("orders", ORDERS), ("order_items", ORDER_ITEMS), ("customers", CUSTOMERS),
                       ("products", PRODUCTS), ("stores", STORES)):
        (shop / DAY / f"{name}.csv").write_text(body, encoding="utf-8")
    (psp / f"payments_{DAY}.csv").write_text(PAYMENTS, encoding="utf-8")
    indented = "\n".join("      " + line for line in sql.strip().splitlines())
    path = tmp_path / "pipeline.yaml"
    path.write_text(CONFIG.format(lake=tmp_path / "lake", warehouse=tmp_path / "warehouse.db", shop=shop,
                                  psp=psp, sql=indented), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- config validation
def _config_error(tmp_path: Path, sql: str, extra: str = "") -> str:
    path = _write_config(tmp_path, sql)
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_unknown_referenced_table_fails_at_load(tmp_path: Path) -> None:
    message = _config_error(tmp_path, SALE_LINES_SQL.replace("shop__orders", "shop__order"))
    assert "derived[0] (sale_lines).sql: unknown table shop__order" in message
    assert "shop__orders" in message and "psp__payments" in message  # what it can read
    assert "masking" not in message  # a cross-section check does not echo the whole config


def test_unknown_table_after_from_fails_at_load(tmp_path: Path) -> None:
    message = _config_error(tmp_path, "SELECT * FROM shop__order_items JOIN orders o ON TRUE")
    assert "unknown table orders" in message


def test_derived_name_clash_fails_at_load(tmp_path: Path) -> None:
    path = _write_config(tmp_path)
    body = path.read_text(encoding="utf-8")
    block = body[body.index("  - name: sale_lines"):body.index("masking:")]
    path.write_text(body.replace(block, block + block), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"derived\[1\] \(sale_lines\): name 'sale_lines' appears twice"):
        load_config(path)


def test_source_named_derived_clashes(tmp_path: Path) -> None:
    path = _write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("- name: psp", "- name: derived")
                    .replace("psp__payments", "derived__payments"), encoding="utf-8")
    with pytest.raises(ConfigError, match="source name 'derived' is reserved"):
        load_config(path)


def test_table_without_entity_must_feed_a_derived_table(tmp_path: Path) -> None:
    sql = SALE_LINES_SQL.replace("JOIN paid p ON p.order_id = oi.order_id", "").replace(
        "WITH paid AS (\n  SELECT order_id, MIN(paid_at) AS paid_at\n  FROM psp__payments\n"
        "  WHERE CAST(amount AS DECIMAL(12,2)) > 0\n  GROUP BY order_id\n)\n", "")
    message = _config_error(tmp_path, sql)
    assert "psp.payments: 'entity' is missing" in message and "psp__payments" in message


def test_sql_reference_scan() -> None:
    views = {v: v for v in ("shop__orders", "shop__order_items", "psp__payments")}
    found, problems = sql_references(
        "/* FROM nowhere */ SELECT EXTRACT(YEAR FROM o.created_at) AS y, TRIM(BOTH ' ' FROM o.store), "
        "'FROM ghost__table' AS s, o.x__y FROM `shop__orders` o WHERE EXISTS (SELECT 1 FROM psp__payments p)",
        views,
    )
    assert (found, problems) == (["shop__orders", "psp__payments"], [])
    assert sql_references("SELECT 1", views)[1] == ["reads no table; name its inputs <source>__<table>"]
    with pytest.raises(ValueError, match="one Spark SQL query"):
        DerivedTableConfig(name="x", entity="sale", sql="SELECT 1 FROM shop__orders; DROP VIEW shop__orders")


# --------------------------------------------------------------------------- run-time SQL errors
@pytest.mark.parametrize(
    ("sql", "spark_error"),
    [
        ("SELECT order_id, colour FROM shop__orders", "UNRESOLVED_COLUMN"),
        ("SELECT order_id FORM shop__orders", "PARSE_SYNTAX_ERROR"),
    ],
)
def test_failing_sql_names_the_table_and_spark_error(spark, sql: str, spark_error: str) -> None:
    orders = spark.createDataFrame([("SO-1", "paid")], "`Order ID` string, status string")
    table = DerivedTableConfig(name="sale_lines", entity="sale", sql=sql)
    with pytest.raises(Failure) as caught:
        run_derived_sql(table, {"shop__orders": orders})
    first_line = caught.value.description.splitlines()[0]
    assert first_line.startswith("derived table sale_lines (raw/derived/sale_lines): Spark cannot run its `sql`: [")
    assert spark_error in first_line
    assert "shop__orders: order_id, status" in caught.value.description  # the snake_case columns it can use
    assert caught.value.allow_retries is False
    assert not spark.catalog.tableExists("shop__orders")  # the views are gone after a failure too
