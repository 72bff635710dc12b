"""A source's whole history loaded in ONE run, then a daily incremental run (docs/history.md).

The source is an order database (a SQLite file) with two years of sale lines and a customers table
holding every dated version of each customer (`updated_at`). The first run reads everything (the
cursors have no mark yet); oracles come from the fixture rows with plain Python:

* the warehouse per sale month and category (through the BI view, so dim_date must cover every sale)
  equals the fixture's lines and net amounts;
* every line points to the customer version valid when it was sold (the first version also covers
  sales older than it);
* the lake's fact partitions are exactly the fixture's sale dates.

The next day's run reads only what changed: one old line corrected (quantity). It replaces that
line's row in its own sale date: the line count is unchanged, the total moves by the correction.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from lake_assets.assets.fact_partitions import FACT_KEY, RUN_DAY
from lake_assets.config import load_config
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import TEST_MASKING_KEY
from .helpers import materialize_day, warehouse_for, warehouse_rows

pytestmark = pytest.mark.services  # two whole-graph runs per warehouse

FIRST_RUN, NEXT_RUN = "2025-01-02", "2025-01-03"
LOADED_AT = "2025-01-01 20:00:00"  # when the source last changed before the first run
CORRECTED_AT = "2025-01-03 06:00:00"
# (customer_id, [(updated_at, segment), ...]): versions in date order.
CUSTOMERS = [
    ("C1", [("2022-11-01 00:00:00", "retail"), ("2023-06-15 10:00:00", "wholesale"), ("2024-03-01 08:00:00", "vip")]),
    ("C2", [("2023-01-10 12:00:00", "retail"), ("2024-01-20 09:00:00", "vip")]),  # sold to before its first version
    ("C3", [("2023-02-01 00:00:00", "retail")]),
    ("C4", [("2022-12-01 00:00:00", "wholesale"), ("2023-11-05 00:00:00", "retail"),
            ("2024-08-08 00:00:00", "wholesale")]),
]
PRODUCTS = [("P1", "Kettle", "Kitchen", "24.50"), ("P2", "Lamp", "Living", "39.90"), ("P3", "Mug", "Kitchen", "6.25")]


def _sales() -> list[tuple[str, str, str, str, str, int, str]]:
    """(line id, order id, sold_at, customer, product, quantity, unit price): 9 lines a month on the 1st, 11th and
    21st, 24 months (72 sale dates: each is a lake partition, and what a partition costs is not under test)."""
    lines = []
    for month in range(24):
        year, number = 2023 + month // 12, month % 12 + 1
        for k in range(9):
            sold = dt.datetime(year, number, 1 + (k // 3) * 10, 8 + k, 15)
            customer = CUSTOMERS[(month + k) % len(CUSTOMERS)][0]
            product_id, _, _, price = PRODUCTS[k % len(PRODUCTS)]
            lines.append((f"L{month:02d}{k}", f"O{month:02d}{k // 3}", sold.strftime("%Y-%m-%d %H:%M:%S"), customer,
                          product_id, 1 + (month * k) % 5, price))
    return lines


CORRECTED = "L041"  # a line of May 2023, sold in quantity 5; corrected to 9


def _write_source(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE customers (customer_id TEXT, first_name TEXT, city TEXT, country TEXT, segment TEXT,
                                    updated_at TEXT, PRIMARY KEY (customer_id, updated_at));
            CREATE TABLE products (product_id TEXT PRIMARY KEY, product_name TEXT, category TEXT, list_price NUMERIC,
                                   updated_at TEXT);
            CREATE TABLE stores (location_id TEXT PRIMARY KEY, store_name TEXT, city TEXT, region TEXT, country TEXT);
            CREATE TABLE sales (sale_line_id TEXT PRIMARY KEY, order_id TEXT, sold_at TEXT, customer_id TEXT,
                                product_id TEXT, location_id TEXT, quantity INTEGER, unit_price NUMERIC,
                                discount NUMERIC, changed_at TEXT);
        """)
        conn.executemany("INSERT INTO customers VALUES (?, ?, 'Lyon', 'fr', ?, ?)",
                         [(c, f"Name{c}", segment, at) for c, versions in CUSTOMERS for at, segment in versions])
        conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, '2022-10-01 00:00:00')", PRODUCTS)
        conn.execute("INSERT INTO stores VALUES ('S1', 'Lyon centre', 'Lyon', 'ARA', 'FR')")
        conn.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, 'S1', ?, ?, 0, ?)",
                         [(*line, LOADED_AT) for line in _sales()])
    return f"sqlite:///{path}"


def _pipeline(tmp_path: Path, source_url: str, warehouse_url: str, schema: str) -> dict[str, Any]:
    incremental = {"cursor": "updated_at"}
    return {
        "start_date": FIRST_RUN,
        "lake": {"url": str(tmp_path / "lake")},
        "warehouse": {"url": warehouse_url, "schema": schema},
        "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4"}},
        "sources": [{"name": "shop_db", "kind": "database", "url": source_url, "tables": [
            {"name": "customers", "entity": "customer", "table": "customers", "incremental": incremental},
            {"name": "products", "entity": "product", "table": "products", "incremental": incremental},
            {"name": "stores", "entity": "location", "table": "stores"},
            {"name": "sales", "entity": "sale", "table": "sales", "incremental": {"cursor": "changed_at"}},
        ]}],
        "masking": {"key": TEST_MASKING_KEY, "columns": {"email": "hmac_sha256"}},
        "retries": {"max": 0, "delay_seconds": 0},
    }


def _version_at(customer: str, sold_at: str) -> tuple[int, str]:
    """(version number, segment) of `customer` valid at `sold_at`: the last version dated at or before
    it, or the first version for a sale older than every version."""
    versions = dict(CUSTOMERS)[customer]
    valid = [n for n, (at, _) in enumerate(versions, start=1) if at <= sold_at] or [1]
    return valid[-1], versions[valid[-1] - 1][1]


def _by_month(lines: list[tuple], quantities: dict[str, int]) -> dict[tuple[int, int, str], tuple[int, Decimal]]:
    """{(year, month, category): (lines, net)} of the fixture, with `quantities` overriding some lines."""
    categories = {p[0]: p[2] for p in PRODUCTS}
    found: dict[tuple[int, int, str], tuple[int, Decimal]] = {}
    for line, _, sold_at, _, product, quantity, price in lines:
        key = (int(sold_at[:4]), int(sold_at[5:7]), categories[product])
        count, net = found.get(key, (0, Decimal(0)))
        found[key] = (count + 1, net + quantities.get(line, quantity) * Decimal(price))
    return found


def _month_view(config: Any) -> dict[tuple[int, int, str], tuple[int, Decimal]]:
    rows = warehouse_rows(config, "SELECT year, month, category, sale_lines, net_amount "
                          "FROM {p}v_sales_by_month_category")
    return {(int(r["year"]), int(r["month"]), r["category"]): (int(r["sale_lines"]),
                                                                Decimal(str(r["net_amount"])).quantize(Decimal("0.01")))
            for r in rows}


# One warehouse: the sale-date replace of the fact load runs on every dialect in the two-day graph tests
# (test_real_exports, test_end_to_end, test_own_sources_graph); what is particular here is the history.
@pytest.mark.parametrize("backend", ["postgres"])
def test_two_years_of_history_in_one_run_then_daily(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, spark
) -> None:
    source = tmp_path / "shop.db"
    url, schema = warehouse_for(backend, tmp_path, request)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(_pipeline(tmp_path, _write_source(source), url, schema), sort_keys=False),
                    encoding="utf-8")
    config = load_config(path)
    lake = LakeStorage(url=config.lake.url)
    lines = _sales()
    sold = {line[0]: line for line in lines}

    materialize_day(config, FIRST_RUN)

    assert _month_view(config) == _by_month(lines, {})
    assert len({(y, m) for y, m, _ in _month_view(config)}) == 24
    assert lake.committed_partitions(FACT_KEY) == sorted({line[2][:10] for line in lines})
    facts = {f["sale_line_id"]: f for f in warehouse_rows(config, (
        "SELECT f.sale_line_id, f.quantity, f.ingest_date, c.customer_id, c.version, c.segment "
        "FROM {p}fact_sales f JOIN {p}dim_customer c ON c.customer_key = f.customer_key"))}
    assert {k: (f["customer_id"], int(f["version"]), f["segment"]) for k, f in facts.items()} == {
        k: (line[3], *_version_at(line[3], line[2])) for k, line in sold.items()}
    assert {int(r["n"]) for r in warehouse_rows(config, "SELECT COUNT(*) AS n FROM {p}dim_customer "
                                                "WHERE customer_id = 'C1'")} == {3}
    earliest = min(line[2][:10] for line in lines).replace("-", "")
    assert warehouse_rows(config, f"SELECT date_key FROM {{p}}dim_date WHERE date_key = {earliest}")

    # The next day: one old line corrected in the source; only it is read again.
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE sales SET quantity = 9, changed_at = ? WHERE sale_line_id = ?", (CORRECTED_AT, CORRECTED))
    materialize_day(config, NEXT_RUN)

    assert _month_view(config) == _by_month(lines, {CORRECTED: 9})
    [row] = warehouse_rows(config, "SELECT quantity, ingest_date FROM {p}fact_sales "
                           f"WHERE sale_line_id = '{CORRECTED}'")
    assert (int(row["quantity"]), str(row["ingest_date"])[:10]) == (9, NEXT_RUN)
    [total] = warehouse_rows(config, "SELECT COUNT(*) AS n FROM {p}fact_sales")
    assert int(total["n"]) == len(lines)
    sale_date = sold[CORRECTED][2][:10]
    touched = {d for d, info in lake.commits(FACT_KEY).items() if info.state.get(RUN_DAY) == NEXT_RUN}
    assert touched == {sale_date}
    day_lines = sorted(r["sale_line_id"] for r in lake.read_arrow(FACT_KEY, sale_date).to_pylist())
    assert day_lines == sorted(k for k, line in sold.items() if line[2][:10] == sale_date)
