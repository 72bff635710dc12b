"""The whole graph on one invoice-line export shaped like the UCI "Online Retail" file: no line id
(the line key is generated from invoice and stock code), prices in cents as integers (scaled to
units), countries as names (mapped to codes), cancellations (`C...` invoices, negative quantities),
an exact duplicate line, lines without a customer, and products and customers fed from the same file
through `also_feeds`. One run into SQLite; the oracles come from the fixture with the stdlib only."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from lake_assets.config import load_config

from .helpers import materialize_day, query_rows

DAY = "2011-12-01"
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
ROWS = [
    ["536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "6", "12/1/2011 8:26", "255", "17850", "United Kingdom"],
    ["536365", "71053", "WHITE METAL LANTERN", "6", "12/1/2011 8:26", "339", "17850", "United Kingdom"],
    ["536366", "22633", "HAND WARMER UNION JACK", "6", "12/1/2011 8:28", "185", "17850", "United Kingdom"],
    ["536367", "84879", "ASSORTED COLOUR BIRD ORNAMENT", "32", "12/1/2011 8:34", "169", "13047", "United Kingdom"],
    ["536370", "22728", "ALARM CLOCK BAKELIKE PINK", "24", "12/1/2011 8:45", "375", "12583", "France"],
    # The same line twice, as the original export holds thousands of times.
    ["536370", "22727", "ALARM CLOCK BAKELIKE RED ", "24", "12/1/2011 8:45", "375", "12583", "France"],
    ["536370", "22727", "ALARM CLOCK BAKELIKE RED ", "24", "12/1/2011 8:45", "375", "12583", "France"],
    ["C536379", "D", "Discount", "-1", "12/1/2011 9:41", "2750", "14527", "United Kingdom"],
    ["C536383", "35004C", "SET OF 3 COLOURED  FLYING DUCKS", "-1", "12/1/2011 9:49", "465", "15311", "United Kingdom"],
    ["536389", "22941", "CHRISTMAS LIGHTS 10 REINDEER", "6", "12/1/2011 10:03", "850", "12431", "Australia"],
    ["536395", "71053", "WHITE METAL LANTERN", "8", "12/1/2011 10:47", "339", "", "United Kingdom"],
    ["536527", "22809", "SET OF 6 T-LIGHTS SANTA", "6", "12/1/2011 13:04", "295", "12662", "Germany"],
    ["536540", "22086", "PAPER CHAIN KIT 50'S CHRISTMAS ", "4", "12/1/2011 14:05", "295", "14911", "EIRE"],
    ["536541", "22086", "PAPER CHAIN KIT 50'S CHRISTMAS ", "2", "12/1/2011 14:09", "295", "14932", "Channel Islands"],
]
COUNTRY_CODES = {"United Kingdom": "GB", "EIRE": "IE", "France": "FR", "Germany": "DE", "Australia": "AU"}

CONFIG = """
start_date: "{day}"
lake: {{url: "{lake}"}}
warehouse: {{url: "sqlite:///{warehouse}", schema: analytics}}
spark: {{master: "local[2]", conf: {{spark.sql.shuffle.partitions: "4"}}}}
sources:
  - name: retail
    kind: file
    path: "{drop}"
    tables:
      - name: invoice_lines
        entity: sale
        pattern: "{{date}}/Online Retail.csv"
        generate: {{sale_line_id: {{from: [InvoiceNo, StockCode]}}}}
        columns: {{invoice_no: order_id, stock_code: product_id, invoice_date: sold_at, customer_id: customer_id}}
        scale: {{unit_price: 0.01}}
        value_map: {{country: {{"United Kingdom": GB, EIRE: IE, France: FR, Germany: DE, Australia: AU}}}}
        also_feeds:
          - {{entity: product, columns: {{stock_code: product_id, description: product_name}}}}
          - {{entity: customer, columns: {{customer_id: customer_id, country: country}}}}
masking:
  key: "${{LAKE_MASKING_KEY}}"
  columns: {{email: hmac_sha256}}
standardize:
  entities:
    sale:
      timestamp_formats: ["M/d/yyyy H:mm"]
      nulls: {{discount: {{rule: default, value: "0"}}}}
"""


def test_online_retail_export_through_mapping_rules(tmp_path: Path, spark) -> None:
    drop = tmp_path / "drop" / DAY
    drop.mkdir(parents=True)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([HEADER, *ROWS])
    (drop / "Online Retail.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="")
    warehouse = tmp_path / "warehouse.db"
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(CONFIG.format(day=DAY, lake=tmp_path / "lake", warehouse=warehouse, drop=drop.parent),
                           encoding="utf-8")
    config = load_config(config_file)

    materialize_day(config, DAY)

    # Oracles from the fixture: one line per (invoice, stock code); prices are cents.
    lines = {(r[0], r[1]): r for r in ROWS}
    net = sum((Decimal(r[3]) * Decimal(r[5]) / 100 for r in lines.values()), Decimal("0"))
    url = f"sqlite:///{warehouse}"
    facts = query_rows(url, "SELECT sale_line_id, order_id, quantity, unit_price, net_amount FROM fact_sales")
    assert sorted(f["sale_line_id"] for f in facts) == sorted(f"{i}|{s}" for i, s in lines)
    assert sum(Decimal(str(f["net_amount"])) for f in facts) == net
    cancelled = [f for f in facts if str(f["order_id"]).startswith("C")]
    assert sorted(int(f["quantity"]) for f in cancelled) == [-1, -1]
    assert {Decimal(str(f["unit_price"])) for f in cancelled} == {Decimal("27.50"), Decimal("4.65")}

    # Products from the same file: every stock code with its description.
    products = query_rows(url, "SELECT product_id, product_name FROM dim_product WHERE product_key <> -1")
    assert {p["product_id"]: p["product_name"] for p in products} == {r[1]: r[2].strip() for r in ROWS}

    # Customers from the same file: countries mapped by value_map (unmapped names pass, upper-cased by
    # the customer entity's rule); lines without a customer feed no customer.
    customers = query_rows(url, "SELECT customer_id, country FROM dim_customer WHERE customer_key <> -1")
    expected = {r[6]: COUNTRY_CODES.get(r[7], r[7].upper()) for r in ROWS if r[6]}
    assert {c["customer_id"]: c["country"] for c in customers} == expected
