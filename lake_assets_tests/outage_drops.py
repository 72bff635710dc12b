"""Tiny, clean daily file drops in the sample source's shapes (customers.csv, products.jsonl,
stores.csv, sales_001.csv), for backfills over many days, and the oracles computed from them.

Every day delivers every customer, product and store in full (so no delivery is read as a deletion)
and `SALES_PER_DAY` sale lines sold that day. One customer (`CHANGED_CUSTOMER`) changes segment on
the days of `SEGMENT_CHANGES`, its `Last Modified` at 08:00 that day: the dimension must hold one
version per change, effective at those times, in that order.
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

SALES_PER_DAY = 20
CUSTOMERS = [f"C{n:07d}" for n in range(1, 6)]
PRODUCTS = [(f"P{n:05d}", Decimal(f"{n * 7}.25")) for n in range(1, 4)]
STORES = ["S001", "S002"]
CHANGED_CUSTOMER = CUSTOMERS[0]
FIRST_SEGMENT = "consumer"
SEGMENT_CHANGES = {5: "corporate", 20: "vip"}  # day number (1 = first day) -> new segment
CARD = "4111 1111 1111 1111"


def days_from(first: date, count: int) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range(count)]


def change_times(first: date) -> list[datetime]:
    """When the changed customer's versions after the first take effect, in order."""
    return [datetime.combine(first + timedelta(days=n - 1), datetime.min.time()) + timedelta(hours=8)
            for n in sorted(SEGMENT_CHANGES)]


def write_drops(root: Path, first: date, count: int) -> list[str]:
    """Write `count` days of drops under `root/<day>/`; returns the days."""
    days = days_from(first, count)
    for number, day in enumerate(days, start=1):
        folder = root / day
        folder.mkdir(parents=True)
        with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Cust_No", "First Name", "Last Name", "E-Mail", "Phone Number", "Social Security",
                             "Street", "City", "Region", "ZIP", "Country", "Customer Segment", "Last Modified"])
            for n, customer in enumerate(CUSTOMERS, start=1):
                segment, modified = FIRST_SEGMENT, "2023-12-01 00:00:00"
                if customer == CHANGED_CUSTOMER:
                    changed = [c for c in sorted(SEGMENT_CHANGES) if c <= number]
                    if changed:
                        segment = SEGMENT_CHANGES[changed[-1]]
                        modified = f"{days[changed[-1] - 1]} 08:00:00"
                writer.writerow([customer, "Ana", "Smith", f"ana{n}@example.com", f"+1 (555) 010-{n:04d}",
                                 f"123-45-{n:04d}", f"{n} Main St", "Boston", "MA", f"0210{n}", "US", segment,
                                 modified])
        with open(folder / "products.jsonl", "w", encoding="utf-8") as handle:
            for sku, price in PRODUCTS:
                handle.write(json.dumps({"SKU": sku, "Title": f"Item {sku}", "Category": "Home", "Brand": "Casa",
                                         "Price": str(price), "Modified_At": "2023-12-01T00:00:00Z"}) + "\n")
        with open(folder / "stores.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Store_Code", "Store", "City", "State", "Country", "ZIP"])
            for n, store in enumerate(STORES, start=1):
                writer.writerow([store, f"Store {n}", "Boston", "MA", "US", f"0211{n}"])
        with open(folder / "sales_001.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Line_ID", "Order_No", "Sale_TS", "Cust_No", "SKU", "Store_Code", "Qty", "Price",
                             "Discount_Amt", "Card"])
            for i in range(SALES_PER_DAY):
                sku, price = PRODUCTS[i % len(PRODUCTS)]
                writer.writerow([f"L{number:03d}{i:04d}", f"O{number:03d}{i // 3:03d}", f"{day} {9 + i % 10:02d}:15:00",
                                 CUSTOMERS[i % len(CUSTOMERS)], sku, STORES[i % len(STORES)], 1 + (i + number) % 4,
                                 str(price), "0.50" if i % 5 == 0 else "0.00", CARD])
    return days


def sales_by_day(root: Path, days: list[str]) -> dict[str, tuple[int, int, Decimal]]:
    """{day: (lines, quantity, net amount)} of the delivered sales files, read with the standard library."""
    totals = {}
    for day in days:
        with open(root / day / "sales_001.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        net = sum((int(r["Qty"]) * Decimal(r["Price"]) - Decimal(r["Discount_Amt"]) for r in rows), Decimal("0"))
        totals[day] = (len(rows), sum(int(r["Qty"]) for r in rows), net)
    return totals
