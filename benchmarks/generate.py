"""Deterministic retail data generator: customers, products, stores and sales, messy on purpose.

    python -m benchmarks.generate --rows 200 --days 3 --seed 42 --out data/sample

writes one folder per day (`<out>/<YYYY-MM-DD>/`) holding `customers.csv`, `products.jsonl`,
`stores.csv` and `sales_001.csv`. The same arguments always give byte-identical files.

Realistic PII: e-mails, phones, SSNs (`123-45-6789`), Luhn-valid card numbers, street addresses.
Realistic mess: mixed-case and spaced headers, exact duplicate rows, NULLs, stray whitespace and case,
mixed date formats, currency symbols, a few rows with a wrong field count, sales of customers that
arrive only on a later day (late-arriving members). Day 1 holds every customer and product; later days
hold only changes (some members change twice on one day) and new members.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena", "Mo", "Noor"]
LAST = ["Smith", "García", "Müller", "Okafor", "Nguyen", "Rossi", "Kowalski", "Tanaka", "Silva", "Brown", "O'Neil"]
STREETS = ["Main St", "Oak Ave", "Pine Rd", "Maple Dr", "Cedar Ln", "Elm St", "Lake View"]
CITIES = [("Springfield", "IL", "US"), ("Portland", "OR", "US"), ("Austin", "TX", "US"), ("Boston", "MA", "US"),
          ("Denver", "CO", "US"), ("Toronto", "ON", "CA"), ("Vancouver", "BC", "CA")]
SEGMENTS = ["consumer", "corporate", "home_office", "vip"]
CATEGORIES = {"Electronics": ["Acme", "Voltix"], "Grocery": ["FreshCo", "Farmly"], "Apparel": ["Threadly", "Nordwear"],
              "Home": ["Casa", "Nestor"], "Toys": ["Playo", "Kidzo"]}
CUSTOMER_HEADER = ["Cust_No", "First Name", "Last Name", "E-Mail", "Phone Number", "Social Security", "Street", "City",
                   "Region", "ZIP", "Country", "Customer Segment", "Last Modified"]
STORE_HEADER = ["Store_Code", "Store", "City", "State", "Country", "ZIP"]
SALES_HEADER = ["Line_ID", "Order_No", "Sale_TS", "Cust_No", "SKU", "Store_Code", "Qty", "Price", "Discount_Amt",
                "Card"]


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to `prefix`."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


@dataclass
class Customer:
    no: str
    first: str
    last: str
    email: str
    phone: str
    ssn: str
    street: str
    city: tuple[str, str, str]
    zip: str
    segment: str
    card: str


class RetailGenerator:
    """`customers`, `products`, `stores` override the member counts derived from `rows`;
    `blank_discounts` is the share of sale lines whose discount is left empty (0: none, the default,
    which draws no random numbers for it, so the default output never changes)."""

    def __init__(self, seed: int, rows: int, *, customers: int | None = None, products: int | None = None,
                 stores: int | None = None, blank_discounts: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.rows = rows
        self.n_customers = customers if customers is not None else max(40, rows // 10)
        self.n_products = products if products is not None else max(15, rows // 50)
        self.n_stores = stores if stores is not None else max(5, min(50, rows // 100))
        self.blank_discounts = blank_discounts
        self.customers: dict[str, Customer] = {}
        self.products: dict[str, dict[str, object]] = {}
        self.next_customer = 1
        self.next_line = 1

    # ------------------------------------------------------------------ members
    def _new_customer(self) -> Customer:
        r = self.rng
        no = f"C{self.next_customer:07d}"
        self.next_customer += 1
        first, last = r.choice(FIRST), r.choice(LAST)
        issuer = r.choice(["4", "51", "52"])
        card_prefix = issuer + "".join(r.choice("0123456789") for _ in range(15 - len(issuer)))
        card = luhn_complete(card_prefix)  # 16-digit Visa / Mastercard style
        return Customer(
            no=no,
            first=first,
            last=last,
            email=f"{first.lower()}.{last.lower().replace(chr(39), '')}{no[-4:]}@example.com",
            phone=f"+1 ({r.randint(200, 989)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
            ssn=f"{r.randint(100, 665):03d}-{r.randint(10, 99):02d}-{r.randint(1000, 9999):04d}",
            street=f"{r.randint(1, 9999)} {r.choice(STREETS)}",
            city=r.choice(CITIES),
            zip=f"{r.randint(10000, 99999)}",
            segment=r.choice(SEGMENTS),
            card=card,
        )

    def _customer_row(self, c: Customer, modified: datetime) -> list[str]:
        r = self.rng
        email = c.email
        if r.random() < 0.1:
            email = f"  {email.upper()} "  # stray whitespace and case
        phone = "" if r.random() < 0.05 else c.phone
        return [c.no, c.first, c.last, email, phone, c.ssn, c.street, c.city[0], c.city[1], c.zip, c.city[2].lower()
                if r.random() < 0.2 else c.city[2], c.segment, self._messy_timestamp(modified)]

    def _messy_timestamp(self, ts: datetime) -> str:
        fmt = self.rng.choice(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%d/%m/%Y %H:%M", "%Y/%m/%d %H:%M:%S"])
        if fmt == "%d/%m/%Y %H:%M":
            ts = ts.replace(second=0)
        return ts.strftime(fmt)

    def _product(self, n: int, modified: datetime) -> dict[str, object]:
        r = self.rng
        category = r.choice(sorted(CATEGORIES))
        price = round(r.uniform(1, 500), 2)
        return {"SKU": f"P{n:05d}", "Title": f"{category[:-1] if category.endswith('s') else category} item {n}",
                "Category": category, "Brand": r.choice(CATEGORIES[category]),
                "Price": f"${price:,.2f}" if r.random() < 0.3 else price,
                "Modified_At": modified.strftime("%Y-%m-%dT%H:%M:%SZ")}

    # ------------------------------------------------------------------ days
    def day(self, day: date, first: bool, rows: int | None = None,
            changed_share: float | None = None) -> dict[str, list]:
        """One day's files. `rows` overrides the sales lines of this day; `changed_share` the share of
        known customers changed on a later day (default 1/30)."""
        r = self.rng
        rows = self.rows if rows is None else rows
        midnight = datetime(day.year, day.month, day.day)
        customer_rows: list[list[str]] = []
        if first:
            for _ in range(self.n_customers):
                c = self._new_customer()
                self.customers[c.no] = c
                customer_rows.append(self._customer_row(c, midnight - timedelta(days=r.randint(1, 400))))
        else:
            known = len(self.customers)
            count = max(1, known // 30 if changed_share is None else round(known * changed_share))
            changed = r.sample(sorted(self.customers), k=count)
            for no in changed:
                c = self.customers[no]
                c.street = f"{r.randint(1, 9999)} {r.choice(STREETS)}"
                c.city = r.choice(CITIES)
                customer_rows.append(self._customer_row(c, midnight + timedelta(hours=r.randint(0, 10))))
                if r.random() < 0.2:  # a second change of the same customer on the same day
                    c.segment = r.choice(SEGMENTS)
                    customer_rows.append(self._customer_row(c, midnight + timedelta(hours=r.randint(11, 23))))
            for _ in range(max(1, self.n_customers // 50)):
                c = self._new_customer()
                self.customers[c.no] = c
                customer_rows.append(self._customer_row(c, midnight + timedelta(hours=r.randint(0, 23))))
        # Late-arriving customers: created now, sold to today, delivered in tomorrow's file.
        late = [self._new_customer() for _ in range(max(1, rows // 200))]
        customer_rows += [list(row) for row in r.sample(customer_rows, k=max(1, len(customer_rows) // 100))]  # dups

        products: list[dict[str, object]] = []
        if first:
            for n in range(1, self.n_products + 1):
                p = self._product(n, midnight - timedelta(days=30))
                self.products[str(p["SKU"])] = p
                products.append(p)
        else:
            for sku in r.sample(sorted(self.products), k=max(1, len(self.products) // 20)):
                p = dict(self.products[sku])
                p["Price"] = round(r.uniform(1, 500), 2)
                p["Modified_At"] = (midnight + timedelta(hours=r.randint(0, 23))).strftime("%Y-%m-%dT%H:%M:%SZ")
                self.products[sku] = p
                products.append(p)

        stores = []
        for n in range(1, self.n_stores + 1):
            city = CITIES[n % len(CITIES)]
            stores.append([f"S{n:03d}", f" {city[0]} Store #{n} ", city[0], city[1], city[2], f"{10000 + n * 7}"])

        sales: list[list[str]] = []
        buyers = sorted(self.customers)
        skus = sorted(self.products)
        for i in range(rows):
            if i < len(late):
                cust_no, card = late[i].no, late[i].card
            else:
                c = self.customers[r.choice(buyers)]
                cust_no, card = c.no, c.card
            qty = r.randint(1, 5)
            price = round(r.uniform(1, 300), 2)
            discount = round(r.choice([0, 0, 0, price * qty * 0.1]), 2)
            ts = midnight + timedelta(seconds=r.randint(0, 86399))
            line = self.next_line
            self.next_line += 1
            sales.append([
                f"L{line:09d}", f"O{(line + 2) // 3:09d}", self._messy_timestamp(ts), cust_no, r.choice(skus),
                f"S{r.randint(1, self.n_stores):03d}", str(qty),
                f"${price:.2f}" if r.random() < 0.1 else f" {price:.2f}",
                "" if self.blank_discounts and r.random() < self.blank_discounts else f"{discount:.2f}",
                " ".join(card[j:j + 4] for j in range(0, len(card), 4)) if r.random() < 0.3 else card,
            ])
        sales += [list(row) for row in r.sample(sales, k=max(1, len(sales) // 100))]  # re-delivered lines
        for c in late:
            self.customers[c.no] = c
        return {"customers": customer_rows, "products": products, "stores": stores, "sales": sales,
                "late": [self._customer_row(c, midnight) for c in late]}


def write_day(out: Path, day: date, data: dict[str, list], malformed_every: int) -> None:
    folder = out / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUSTOMER_HEADER)
        writer.writerows(data["customers"])
    with open(folder / "products.jsonl", "w", encoding="utf-8") as handle:
        for record in data["products"]:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(folder / "stores.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(STORE_HEADER)
        writer.writerows(data["stores"])
    with open(folder / "sales_001.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SALES_HEADER)
        for i, row in enumerate(data["sales"], start=1):
            writer.writerow(row + ["EXTRA-FIELD"] if malformed_every and i % malformed_every == 0 else row)


def generate(out: Path, rows: int, days: int, seed: int, start: date, malformed_every: int = 97) -> None:
    generator = RetailGenerator(seed, rows)
    pending_late: list[list[str]] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        data = generator.day(day, first=offset == 0)
        data["customers"] = pending_late + data["customers"]
        pending_late = data.pop("late")
        write_day(out, day, data, malformed_every)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200, help="sales rows per day (customers ~rows/10)")
    parser.add_argument("--days", type=int, default=3, help="number of daily folders")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1), help="first day")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--malformed-every", type=int, default=97,
                        help="every Nth sales row gets an extra field (0: none)")
    args = parser.parse_args(argv)
    generate(args.out, args.rows, args.days, args.seed, args.start, args.malformed_every)
    print(f"wrote {args.days} day(s) to {args.out}")


if __name__ == "__main__":
    main()
