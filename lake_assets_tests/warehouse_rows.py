"""Tiny star-schema Arrow tables for warehouse tests (the shapes curated/* writes)."""

from __future__ import annotations

import os
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake_assets.assets.fact_partitions import FACT_KEY, RUN_DAY, SALE_DATE
from lake_assets.resources.lake_storage import LakeStorage

B, E = datetime(1900, 1, 1), datetime(9999, 12, 31)
D2 = pa.decimal128(12, 2)
D4 = pa.decimal128(14, 2)


def dim_customer(city_of_c1: str = "Denver") -> pa.Table:
    rows = [
        (-1, "UNKNOWN", "Unknown", 0, B, E, True, False, False),
        (1, "C1", "Boston", 1, B, datetime(2024, 1, 2, 10), False, False, False),
        (2, "C2", "Austin", 1, B, E, True, False, False),
        (3, "C1", city_of_c1, 2, datetime(2024, 1, 2, 10), E, True, False, False),
        (4, "C9", "Unknown", 1, B, E, True, False, True),
    ]
    names = [
        "customer_key",
        "customer_id",
        "city",
        "version",
        "valid_from",
        "valid_to",
        "is_current",
        "is_deleted",
        "is_inferred",
    ]
    table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
    table = table.append_column("segment", pa.array(["Unknown", "vip", "corporate", "vip", "Unknown"]))
    # The customer's own region (address): C1 moved from MA to CO; the inferred C9 has none yet.
    table = table.append_column("region", pa.array(["Unknown", "MA", "TX", "CO", None]))
    return table.append_column("row_hash", pa.array([f"h{r[0]}" for r in rows]))


def dim_location() -> pa.Table:
    return pa.table(
        {
            "location_key": [-1, 1, 2],
            "location_id": ["UNKNOWN", "S1", "S2"],
            "store_name": ["Unknown", "Boston #1", "Portland #2"],
            "region": ["Unknown", "MA", "OR"],
            "is_inferred": [False, False, False],
        }
    )


def dim_product() -> pa.Table:
    return pa.table(
        {
            "product_key": [-1, 1],
            "product_id": ["UNKNOWN", "P1"],
            "category": ["Unknown", "toys"],
            "list_price": pa.array([None, Decimal("10.00")], D2),
            "version": [0, 1],
            "valid_from": [B, B],
            "valid_to": [E, E],
            "is_current": [True, True],
            "is_deleted": [False, False],
            "is_inferred": [False, False],
            "row_hash": ["unknown", "p1"],
        }
    )


def dim_date() -> pa.Table:
    days = [date(2024, 1, d) for d in (1, 2, 3)]
    return pa.table(
        {
            "date_key": [int(d.strftime("%Y%m%d")) for d in days],
            "full_date": days,
            "day_of_month": [d.day for d in days],
            "day_of_week": [d.isoweekday() for d in days],
            "day_name": [d.strftime("%A") for d in days],
            "iso_week": [1, 1, 1],
            "iso_year": [2024] * 3,
            "month": [1] * 3,
            "month_name": ["January"] * 3,
            "quarter": [1] * 3,
            "year": [2024] * 3,
            "is_weekend": [False] * 3,
            "fiscal_year": [2024] * 3,
            "fiscal_quarter": [1] * 3,
            "fiscal_month": [1] * 3,
        }
    )


def fact_sales(day: int, lines: list[tuple[str, int, int, int]]) -> pa.Table:
    """lines: (sale_line_id, customer_key, location_key, quantity) sold at noon of 2024-01-<day>."""
    n = len(lines)
    qty = [q for *_, q in lines]
    return pa.table(
        {
            "sale_line_id": [line[0] for line in lines],
            "order_id": ["O1"] * n,
            "ingest_date": [date(2024, 1, day)] * n,
            "date_key": [20240100 + day] * n,
            "customer_key": pa.array([line[1] for line in lines], pa.int64()),
            "product_key": pa.array([1] * n, pa.int64()),
            "location_key": pa.array([line[2] for line in lines], pa.int64()),
            "sold_at": [datetime(2024, 1, day, 12)] * n,
            "quantity": pa.array(qty, pa.int32()),
            "unit_price": pa.array([Decimal("10.00")] * n, D2),
            "discount": pa.array([Decimal("1.00")] * n, D2),
            "gross_amount": pa.array([Decimal(10 * q) for q in qty], D4),
            "net_amount": pa.array([Decimal(10 * q - 1) for q in qty], D4),
            "payment_token": ["tok_x"] * n,
            "_source": ["test"] * n,
            "_batch_id": ["b1"] * n,
        }
    )


def write_lake_facts(lake: LakeStorage, facts: pa.Table, run_day: str, empty_file_first: bool = False) -> None:
    """`facts` committed the way the curated run of `run_day` commits them: one commit, one file per
    sale date (the UTC date of sold_at); optionally an empty part file first, as Spark writes one per
    empty task."""
    facts = facts.append_column(SALE_DATE, pc.cast(facts.column("sold_at"), pa.date32()))
    with lake.staged_partitions(FACT_KEY, SALE_DATE) as batch:
        os.makedirs(batch.local_dir, exist_ok=True)
        if empty_file_first:
            pq.write_table(facts.slice(0, 0), f"{batch.local_dir}/part-00000.parquet")
        for number, day in enumerate(sorted(set(facts.column(SALE_DATE).to_pylist())), start=1):
            one = facts.filter(pc.equal(facts.column(SALE_DATE), pa.scalar(day, pa.date32())))
            pq.write_table(one, f"{batch.local_dir}/part-{number:05d}.parquet")
        batch.commit(state={RUN_DAY: run_day})


def load_star(warehouse, city_of_c1: str = "Denver") -> None:
    warehouse.ensure_schema()
    warehouse.upsert_rows("dim_customer", dim_customer(city_of_c1), ["customer_key"])
    warehouse.upsert_rows("dim_product", dim_product(), ["product_key"])
    warehouse.upsert_rows("dim_location", dim_location(), ["location_key"])
    warehouse.upsert_rows("dim_date", dim_date(), ["date_key"])
    warehouse.replace_rows(
        "fact_sales", fact_sales(1, [("L1", 1, 1, 2), ("L2", 2, 2, 3)]), ("ingest_date", "2024-01-01")
    )
    warehouse.replace_rows(
        "fact_sales", fact_sales(2, [("L3", 3, 1, 1), ("L4", 4, 2, 5)]), ("ingest_date", "2024-01-02")
    )
