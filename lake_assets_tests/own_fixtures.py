"""Four sources of our own, shaped unlike the bundled sample, that reach the warehouse by configuration
only, and their oracles computed from the fixture rows with the standard library (never from the
pipeline's output).

* `orders_db`: an order-entry database (SQLite file, Northwind-like): customers with company name,
  contact title, credit limit and sales rep; order headers (status, shipper, freight, payment method)
  and order lines with a percentage discount, joined into sale lines by the table's `query`.
* `invoices`: an invoice-line CSV export shaped like UCI "Online Retail": no line id (the key is
  invoice + stock code), prices in cents, cancellations (`C...` invoices, negative quantities), an exact
  duplicate line, lines without a customer, country names; products and customers fed from the same
  file (`also_feeds`); company, status and payment method per line.
* `shop` + `psp`: a web shop's orders, order items and customers files beside a payment provider's
  payments file, amounts in cents; sale lines are a derived table (Spark SQL): order items of orders
  with a captured payment, with the order's status and the payment's method.
* `payments`: a payments-style HTTP API (docs/examples/payments_api.yaml): charges newest first with
  `starting_after` + `has_more`, line items nested in each charge, amounts in cents, Unix `created`
  seconds, the customer a nested object with its business name and address.

Every sale is dated on DAY; sale line ids, customer and product ids of the four never collide, so each
source's oracle is checked on its own rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
API_EXAMPLE = REPO / "docs" / "examples" / "payments_api.yaml"
DAY = "2024-03-01"
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _csv_text(rows: list[list[str]], terminator: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------- orders_db (SQLite database)
DB_CUSTOMERS = [
    # (CustomerID, CompanyName, ContactName, ContactTitle, Address, City, Country, Phone, CreditLimit, SalesRep)
    ("ALFKI", "Alfreds Futterkiste", "Maria Anders", "Sales Representative", "Obere Str. 57", "Berlin", "Germany",
     "030-0074321", "2500.00", "Nancy Davolio"),
    ("ANATR", "Ana Trujillo Emparedados y helados", "Ana Trujillo", "Owner", "Avda. de la Constitución 2222",
     "México D.F.", "Mexico", "(5) 555-4729", "800.00", "Janet Leverling"),
    ("VINET", "Vins et alcools Chevalier", "Paul Henriot", "Accounting Manager", "59 rue de l'Abbaye", "Reims",
     "France", "26.47.15.10", None, "Steven Buchanan"),
]
DB_PRODUCTS = [(11, "Queso Cabrales", "Dairy Products", "Cooperativa de Quesos 'Las Cabras'", "21.00"),
               (42, "Singaporean Hokkien Fried Mee", "Grains/Cereals", "Leka Trading", "14.00"),
               (72, "Mozzarella di Giovanni", "Dairy Products", "Formaggi Fortini s.r.l.", "34.80"),
               (14, "Tofu", "Produce", "Mayumi's", "23.25"),
               (51, "Manjimup Dried Apples", "Produce", "G'day, Mate", "53.00")]
# (OrderID, CustomerID, OrderDate, Status, ShipVia, Freight, PaymentMethod)
DB_ORDERS = [
    (10248, "VINET", f"{DAY} 08:00:00", "shipped", "Federal Shipping", "32.38", "invoice"),
    (10249, "ALFKI", f"{DAY} 09:30:00", "pending", "Speedy Express", "11.61", "card"),
    (10250, "ANATR", f"{DAY} 14:05:00", "cancelled", "United Package", "65.83", "cash"),
]
# (OrderID, ProductID, UnitPrice, Quantity, Discount as a rate)
DB_ORDER_DETAILS = [
    (10248, 11, "14.00", 12, 0.15), (10248, 42, "9.80", 10, 0.15), (10248, 72, "34.80", 5, 0.05),
    (10249, 14, "0.70", 7, 0.15), (10249, 51, "12.50", 3, 0.05),
    (10250, 72, "16.80", 15, 0.0),
]
DB_SCHEMA = """
CREATE TABLE customers (CustomerID TEXT PRIMARY KEY, CompanyName TEXT, ContactName TEXT, ContactTitle TEXT,
  Address TEXT, City TEXT, Country TEXT, Phone TEXT, CreditLimit NUMERIC, SalesRep TEXT, LastModified TEXT);
CREATE TABLE products (ProductID INTEGER PRIMARY KEY, ProductName TEXT, CategoryName TEXT, SupplierName TEXT,
  UnitPrice NUMERIC);
CREATE TABLE warehouses (WarehouseID TEXT PRIMARY KEY, WarehouseName TEXT, City TEXT, Country TEXT);
CREATE TABLE orders (OrderID INTEGER PRIMARY KEY, CustomerID TEXT, OrderDate TEXT, Status TEXT, ShipVia TEXT,
  Freight NUMERIC, PaymentMethod TEXT, WarehouseID TEXT);
CREATE TABLE order_details (OrderID INTEGER, ProductID INTEGER, UnitPrice NUMERIC, Quantity INTEGER,
  Discount REAL, PRIMARY KEY (OrderID, ProductID));
"""
# One sale line per order line; the order's freight is carried by its first line so that it sums once.
DB_SALES_QUERY = """
SELECT d.OrderID || '-' || d.ProductID AS LineID, o.OrderID, o.OrderDate, o.CustomerID, d.ProductID,
       o.WarehouseID, d.Quantity, d.UnitPrice, d.Discount, o.Status AS OrderStatus, o.ShipVia,
       CASE WHEN d.ProductID = (SELECT MIN(x.ProductID) FROM order_details x WHERE x.OrderID = d.OrderID)
            THEN o.Freight ELSE 0 END AS Freight,
       o.PaymentMethod
FROM orders o JOIN order_details d ON d.OrderID = o.OrderID
"""


def write_orders_db(path: Path) -> str:
    """The order-entry database as a SQLite file; returns its SQLAlchemy URL."""
    with sqlite3.connect(path) as conn:
        conn.executescript(DB_SCHEMA)
        conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         [(*c, f"{DAY} 07:00:00") for c in DB_CUSTOMERS])
        conn.executemany("INSERT INTO products VALUES (?,?,?,?,?)", DB_PRODUCTS)
        conn.execute("INSERT INTO warehouses VALUES ('W1', 'Seattle depot', 'Seattle', 'USA')")
        conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,'W1')", DB_ORDERS)
        conn.executemany("INSERT INTO order_details VALUES (?,?,?,?,?)", DB_ORDER_DETAILS)
    return f"sqlite:///{path}"


def db_source(url: str) -> dict[str, Any]:
    return {"name": "orders_db", "kind": "database", "url": url, "tables": [
        {"name": "customers", "entity": "customer", "table": "customers",
         "columns": {"contact_name": "first_name", "address": "street_address", "last_modified": "updated_at"}},
        {"name": "products", "entity": "product", "table": "products",
         "columns": {"category_name": "category", "unit_price": "list_price"}},
        {"name": "warehouses", "entity": "location", "table": "warehouses",
         "columns": {"warehouse_id": "location_id", "warehouse_name": "store_name"}},
        {"name": "sales", "entity": "sale", "query": DB_SALES_QUERY,
         "columns": {"line_id": "sale_line_id", "order_date": "sold_at", "warehouse_id": "location_id",
                     "discount": "discount_rate", "ship_via": "shipper"}},
    ]}


def db_lines() -> dict[str, dict[str, Any]]:
    """{sale line id: net, freight, status, method, company}: net is each line at full precision
    (quantity x price x (1 - rate)) rounded once to the cent, as the order system prints it."""
    orders = {o[0]: o for o in DB_ORDERS}
    companies = {c[0]: c[1] for c in DB_CUSTOMERS}
    lines = {}
    for order_id, product_id, price, quantity, rate in DB_ORDER_DETAILS:
        order = orders[order_id]
        first = min(p for o, p, *_ in DB_ORDER_DETAILS if o == order_id)
        lines[f"{order_id}-{product_id}"] = {
            "net": cents(quantity * Decimal(price) * (1 - Decimal(str(rate)))),
            "freight": Decimal(order[5]) if product_id == first else Decimal(0),
            "status": order[3], "shipper": order[4], "method": order[6], "company": companies[order[1]],
        }
    return lines


# --------------------------------------------------------------------------- invoices (CSV export)
INVOICE_HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                  "Country", "Company", "Status", "Payment"]
INVOICE_ROWS = [
    ["536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "6", "3/1/2024 8:26", "255", "17850", "United Kingdom",
     "Hearts & Lanterns Ltd", "invoiced", "bank_transfer"],
    ["536365", "71053", "WHITE METAL LANTERN", "6", "3/1/2024 8:26", "339", "17850", "United Kingdom",
     "Hearts & Lanterns Ltd", "invoiced", "bank_transfer"],
    ["536366", "22633", "HAND WARMER UNION JACK", "6", "3/1/2024 8:28", "185", "17850", "United Kingdom",
     "Hearts & Lanterns Ltd", "invoiced", "bank_transfer"],
    ["536367", "84879", "ASSORTED COLOUR BIRD ORNAMENT", "32", "3/1/2024 8:34", "169", "13047", "United Kingdom",
     "Bird & Feather Co", "invoiced", "card"],
    ["536370", "22728", "ALARM CLOCK BAKELIKE PINK", "24", "3/1/2024 8:45", "375", "12583", "France",
     "Réveils Lyonnais SARL", "invoiced", "card"],
    # The same line twice, as the original export holds thousands of times.
    ["536370", "22727", "ALARM CLOCK BAKELIKE RED ", "24", "3/1/2024 8:45", "375", "12583", "France",
     "Réveils Lyonnais SARL", "invoiced", "card"],
    ["536370", "22727", "ALARM CLOCK BAKELIKE RED ", "24", "3/1/2024 8:45", "375", "12583", "France",
     "Réveils Lyonnais SARL", "invoiced", "card"],
    ["C536379", "D", "Discount", "-1", "3/1/2024 9:41", "2750", "14527", "United Kingdom",
     "Duck Pond Gifts", "cancelled", "credit_note"],
    ["C536383", "35004C", "SET OF 3 COLOURED  FLYING DUCKS", "-1", "3/1/2024 9:49", "465", "15311", "United Kingdom",
     "Flying Ducks Ltd", "cancelled", "credit_note"],
    ["536389", "22941", "CHRISTMAS LIGHTS 10 REINDEER", "6", "3/1/2024 10:03", "850", "12431", "Australia",
     "Reindeer Pty Ltd", "invoiced", "card"],
    ["536395", "71053", "WHITE METAL LANTERN", "8", "3/1/2024 10:47", "339", "", "United Kingdom",
     "", "invoiced", "cash"],
    ["536527", "22809", "SET OF 6 T-LIGHTS SANTA", "6", "3/1/2024 13:04", "295", "12662", "Germany",
     "Lichterglanz GmbH", "invoiced", "bank_transfer"],
    ["536540", "22086", "PAPER CHAIN KIT 50'S CHRISTMAS ", "4", "3/1/2024 14:05", "295", "14911", "EIRE",
     "Paper Chain Ltd", "invoiced", "card"],
    ["536541", "22086", "PAPER CHAIN KIT 50'S CHRISTMAS ", "2", "3/1/2024 14:09", "295", "14932", "Channel Islands",
     "Island Crafts", "invoiced", "card"],
]
COUNTRY_CODES = {"United Kingdom": "GB", "EIRE": "IE", "France": "FR", "Germany": "DE", "Australia": "AU"}


def write_invoices(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Online Retail.csv").write_text(_csv_text([INVOICE_HEADER, *INVOICE_ROWS], "\r\n"), encoding="utf-8",
                                              newline="")


def invoices_source(drop: Path) -> dict[str, Any]:
    return {"name": "invoices", "kind": "file", "path": str(drop), "tables": [{
        "name": "invoice_lines", "entity": "sale", "pattern": "{date}/Online Retail.csv",
        "generate": {"sale_line_id": {"from": ["InvoiceNo", "StockCode"]}},
        "columns": {"invoice_no": "order_id", "stock_code": "product_id", "invoice_date": "sold_at",
                    "status": "order_status", "payment": "payment_method"},
        "scale": {"unit_price": 0.01},
        "value_map": {"country": COUNTRY_CODES},
        "also_feeds": [
            {"entity": "product", "columns": {"stock_code": "product_id", "description": "product_name"}},
            {"entity": "customer", "columns": {"customer_id": "customer_id", "country": "country",
                                               "company": "company_name"}},
        ],
    }]}


def invoice_lines() -> dict[str, dict[str, Any]]:
    """{invoice|stock code: ...}: one line per (invoice, stock code); prices are cents."""
    header = INVOICE_HEADER
    lines = {}
    for row in INVOICE_ROWS:
        value = dict(zip(header, row, strict=True))
        lines[f"{value['InvoiceNo']}|{value['StockCode']}"] = {
            "net": Decimal(value["Quantity"]) * Decimal(value["UnitPrice"]) / 100,
            "quantity": int(value["Quantity"]), "unit_price": Decimal(value["UnitPrice"]) / 100,
            "status": value["Status"], "method": value["Payment"], "company": value["Company"] or None,
            "customer": value["CustomerID"] or None, "product": (value["StockCode"], value["Description"].strip()),
            "country": COUNTRY_CODES.get(value["Country"], value["Country"].upper()),
        }
    return lines


# --------------------------------------------------------------------------- shop + psp (two CSV sources)
SHOP_ORDERS = """order_id,customer_id,created_at,status,store
SO-1001,C-17,2024-03-01 09:14:05,paid,BER1
SO-1002,C-17,2024-03-01 10:02:41,paid,BER1
SO-1003,C-23,2024-03-01 11:30:00,pending,HAM1
SO-1004,C-31,2024-03-01 12:45:19,partially_refunded,HAM1
SO-1005,C-23,2024-03-01 13:05:00,cancelled,BER1
"""
# Unit prices in cents.
SHOP_ORDER_ITEMS = """order_id,line_no,sku,qty,unit_price
SO-1001,1,SKU-RED-M,2,1999
SO-1001,2,SKU-CAP,1,750
SO-1002,1,SKU-RED-M,1,1999
SO-1003,1,SKU-CAP,3,750
SO-1004,1,SKU-BAG,1,4900
SO-1004,2,SKU-CAP,4,745
SO-1004,3,SKU-RED-M,1,1799
SO-1005,1,SKU-BAG,1,4900
"""
# Amounts in cents. SO-1002 paid in two instalments (must not double its lines); SO-1005's payment was
# voided (0); SO-1003 has none; PAY-9 is for an order the shop export does not hold.
PSP_PAYMENTS = """payment_id,order_id,amount,method,paid_at
PAY-1,SO-1001,4748,card,2024-03-01 09:15:10
PAY-2,SO-1002,1000,paypal,2024-03-01 10:03:00
PAY-3,SO-1002,999,paypal,2024-03-01 10:04:12
PAY-4,SO-1004,10679,sepa_debit,2024-03-01 12:46:00
PAY-5,SO-1005,0,card,2024-03-01 13:06:00
PAY-9,SO-0999,1200,card,2024-03-01 08:00:00
"""
SHOP_CUSTOMERS = """customer_id,email,company,city,country
C-17,mia.schulz@example.de,Schulz Textil GmbH,Berlin,DE
C-23,jonas.weber@example.de,,Hamburg,DE
C-31,lea.fischer@example.de,Fischer & Söhne KG,Hamburg,DE
"""
SHOP_PRODUCTS = """sku,title,price
SKU-RED-M,Red T-Shirt M,1999
SKU-CAP,Baseball Cap,750
SKU-BAG,Canvas Bag,4900
"""
SHOP_STORES = """store,name,city,country
BER1,Berlin Mitte,Berlin,DE
HAM1,Hamburg Altona,Hamburg,DE
"""
SALE_LINES_SQL = """
-- A sale line is an order line of an order with a captured payment, with the order's status and the
-- payment's method.
WITH paid AS (
  SELECT order_id, MIN(paid_at) AS paid_at, MIN(method) AS method
  FROM psp__payments
  WHERE CAST(amount AS BIGINT) > 0
  GROUP BY order_id
)
SELECT oi.order_id || '-' || oi.line_no AS sale_line_id,
       oi.order_id, o.created_at AS sold_at, o.customer_id, oi.sku, o.store, oi.qty, oi.unit_price,
       o.status AS order_status, p.method AS payment_method, oi._ingested_at, oi._source_file
FROM shop__order_items oi
JOIN shop__orders o ON o.order_id = oi.order_id
JOIN paid p ON p.order_id = oi.order_id
"""


def write_shop(shop: Path, psp: Path) -> None:
    (shop / DAY).mkdir(parents=True, exist_ok=True)
    psp.mkdir(parents=True, exist_ok=True)
    for name, body in (("orders", SHOP_ORDERS), ("order_items", SHOP_ORDER_ITEMS), ("customers", SHOP_CUSTOMERS),
                       ("products", SHOP_PRODUCTS), ("stores", SHOP_STORES)):
        (shop / DAY / f"{name}.csv").write_text(body, encoding="utf-8")
    (psp / f"payments_{DAY}.csv").write_text(PSP_PAYMENTS, encoding="utf-8")


def shop_sources(shop: Path, psp: Path) -> list[dict[str, Any]]:
    return [
        {"name": "shop", "kind": "file", "path": str(shop), "tables": [
            {"name": "orders", "pattern": "{date}/orders.csv"},
            {"name": "order_items", "pattern": "{date}/order_items.csv"},
            {"name": "customers", "entity": "customer", "pattern": "{date}/customers.csv",
             "columns": {"company": "company_name"}},
            {"name": "products", "entity": "product", "pattern": "{date}/products.csv",
             "columns": {"sku": "product_id", "title": "product_name", "price": "list_price"},
             "scale": {"list_price": 0.01}},
            {"name": "stores", "entity": "location", "pattern": "{date}/stores.csv",
             "columns": {"store": "location_id", "name": "store_name"}},
        ]},
        {"name": "psp", "kind": "file", "path": str(psp), "tables": [
            {"name": "payments", "pattern": "payments_{date}.csv"}]},
    ]


SHOP_DERIVED = {"name": "sale_lines", "entity": "sale", "sql": SALE_LINES_SQL,
                "columns": {"sku": "product_id", "store": "location_id", "qty": "quantity"},
                "scale": {"unit_price": 0.01}}


def shop_lines() -> dict[str, dict[str, Any]]:
    """{order-line no: ...} of the orders with a payment > 0 (amounts in cents)."""
    orders = {r["order_id"]: r for r in csv.DictReader(io.StringIO(SHOP_ORDERS))}
    companies = {r["customer_id"]: r["company"] or None for r in csv.DictReader(io.StringIO(SHOP_CUSTOMERS))}
    methods: dict[str, set[str]] = {}
    for r in csv.DictReader(io.StringIO(PSP_PAYMENTS)):
        if int(r["amount"]) > 0:
            methods.setdefault(r["order_id"], set()).add(r["method"])
    return {
        f"{r['order_id']}-{r['line_no']}": {
            "net": int(r["qty"]) * Decimal(r["unit_price"]) / 100,
            "status": orders[r["order_id"]]["status"], "method": min(methods[r["order_id"]]),
            "company": companies[orders[r["order_id"]]["customer_id"]],
        }
        for r in csv.DictReader(io.StringIO(SHOP_ORDER_ITEMS))
        if r["order_id"] in orders and r["order_id"] in methods
    }


# --------------------------------------------------------------------------- payments (HTTP API)
API_TOKEN = "sk_test_51Hx-payments-fixture"
DAY_START = int(dt.datetime.fromisoformat(DAY).replace(tzinfo=dt.UTC).timestamp())
API_CUSTOMERS = {
    "cus_PQ1": {"id": "cus_PQ1", "object": "customer", "email": "Jana.Novak@example.cz",
                "business_name": "Novak Keramika s.r.o.",
                "address": {"city": "Brno", "country": "CZ", "line1": "Masarykova 12", "postal_code": "60200"}},
    "cus_PQ2": {"id": "cus_PQ2", "object": "customer", "email": "m.dupont@example.fr",
                "business_name": "Dupont & Fils",
                "address": {"city": "Lyon", "country": "FR", "line1": "3 rue Mercière", "postal_code": "69002"}},
    "cus_PQ3": {"id": "cus_PQ3", "object": "customer", "email": "ole@example.no", "business_name": None,
                "address": {"city": "Bergen", "country": "NO", "line1": None, "postal_code": None}},
}
API_PRODUCTS = {"prod_Mug": "Enamel mug, 350 ml", "prod_Tee": "Organic tee \"Fjord\"", "prod_Bag": "Canvas tote",
                "prod_Pin": "Pin badge"}
# (charge seconds after midnight UTC, customer, payment method, status, [(product, quantity, cents)])
API_CHARGES = [
    (8 * 3600 + 1, "cus_PQ1", "card", "succeeded", [("prod_Mug", 2, 1250), ("prod_Tee", 1, 2499)]),
    (8 * 3600 + 17, "cus_PQ2", "sepa_debit", "pending", [("prod_Bag", 3, 899)]),
    (9 * 3600 + 5, "cus_PQ3", "card", "succeeded",
     [("prod_Pin", 10, 199), ("prod_Mug", 1, 1250), ("prod_Tee", 2, 2499)]),
    (10 * 3600 + 42, "cus_PQ1", "card", "succeeded", []),  # a charge without line items gives no rows
    (11 * 3600 + 30, "cus_PQ2", "sepa_debit", "succeeded", [("prod_Tee", 1, 2499), ("prod_Pin", 3, 199)]),
    (13 * 3600 + 3, "cus_PQ3", "klarna", "succeeded", [("prod_Bag", 1, 899)]),
    (23 * 3600 + 59 * 60 + 59, "cus_PQ1", "card", "succeeded", [("prod_Mug", 4, 1250)]),  # the day's last second
]


def api_charge(n: int, seconds: int, customer: str, method: str, status: str,
               lines: list[tuple[str, int, int]]) -> dict[str, Any]:
    """A Stripe-shaped charge with its line items embedded (`lines.data`)."""
    items = [
        {"id": f"li_{n}{i}x", "object": "line_item", "quantity": qty, "unit_amount": cents, "currency": "eur",
         "amount_total": qty * cents, "product": {"id": product, "object": "product", "name": API_PRODUCTS[product]}}
        for i, (product, qty, cents) in enumerate(lines)
    ]
    return {
        "id": f"ch_3Ok{n:04d}", "object": "charge", "created": DAY_START + seconds, "currency": "eur",
        "amount": sum(item["amount_total"] for item in items), "livemode": False, "status": status,
        "customer": API_CUSTOMERS[customer],
        "payment_method_details": {"type": method, method: {"network": "visa"} if method == "card" else {}},
        "lines": {"object": "list", "data": items, "has_more": False, "total_count": len(items),
                  "url": f"/v1/charges/ch_3Ok{n:04d}/lines"},
    }


def api_charges() -> list[dict[str, Any]]:
    return [api_charge(n, *charge) for n, charge in enumerate(API_CHARGES)]


def api_example() -> dict[str, Any]:
    """docs/examples/payments_api.yaml as written (its `${...}` resolved by load_config later)."""
    return yaml.safe_load(API_EXAMPLE.read_text(encoding="utf-8"))


def api_lines(charges: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{line item id: ...}: one sale line per line item; cents to units; Unix seconds as UTC."""
    return {
        item["id"]: {
            "net": Decimal(item["quantity"]) * Decimal(item["unit_amount"]) / 100,
            "unit_price": Decimal(item["unit_amount"]) / 100, "order_id": charge["id"],
            "sold_at": dt.datetime.fromtimestamp(charge["created"], dt.UTC).replace(tzinfo=None),
            "status": charge["status"], "method": charge["payment_method_details"]["type"],
            "company": charge["customer"]["business_name"],
        }
        for charge in charges for item in charge["lines"]["data"]
    }


# --------------------------------------------------------------------------- the one configuration
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
        "degenerate": {"order_status": {"type": "string"}, "shipper": {"type": "string"},
                       "payment_method": {"type": "string", "mask": "keep"}},
    },
}


def pipeline_document(tmp_path: Path, warehouse_url: str, schema: str, masking_key: str) -> dict[str, Any]:
    """One configuration feeding the graph from all four sources at once (written in tmp_path)."""
    drop = tmp_path / "invoices"
    write_invoices(drop / DAY)
    write_shop(tmp_path / "shop", tmp_path / "psp")
    example = api_example()
    for entity, groups in example.get("entities", {}).items():
        for group, columns in groups.items():
            for name, spec in columns.items():  # the example declares what this config declares
                mine = ENTITIES[entity][group][name]
                assert {**mine, **spec} == mine, (entity, group, name, spec, mine)
    return {
        "start_date": DAY,
        "lake": {"url": str(tmp_path / "lake")},
        "warehouse": {"url": warehouse_url, "schema": schema},
        "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4"}},
        "sources": [db_source(write_orders_db(tmp_path / "orders.db")), invoices_source(drop),
                    *shop_sources(tmp_path / "shop", tmp_path / "psp"), *example["sources"]],
        "derived": [SHOP_DERIVED],
        "masking": {"key": masking_key,
                    "columns": {"email": "hmac_sha256", "phone": "last4", "street_address": "redact"},
                    "entities": example["masking"]["entities"]},
        "standardize": {"entities": {"sale": {"timestamp_formats": ["M/d/yyyy H:mm"],
                                              "nulls": {"discount": {"rule": "default", "value": "0"}}}}},
        "retries": {"max": 0, "delay_seconds": 0},
        "entities": ENTITIES,
    }
