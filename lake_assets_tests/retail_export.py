"""A file drop shaped like a real retail export, not like the project's own generator, and the
oracles computed from it with the standard library only.

Shape (two daily deliveries):
* `customers.csv`: a CRM export written by pandas on Windows: UTF-8 byte-order mark, CRLF line
  endings, an unnamed index column first, numeric ids written as floats (`17850.0`), accented
  names, country names rather than codes, a `credit_limit` column nobody mapped, an `NA` id, and no
  change timestamp at all. On day 2 one customer has moved (a new street, a masked column).
* `products.csv`: stock codes and descriptions; day 2 re-delivers one product with a blank
  description.
* `stores.csv`: the country as a name, like the customers file.
* `sales.csv`: invoice lines in Windows-1252 with US dates (`12/1/2011 8:26`), cancellations
  (invoice `C...` with negative quantities), lines without a customer, customer ids as floats. Day 2
  re-delivers every line of day 1 (one with a corrected quantity) plus new lines, as a source that
  is exported in full every day does, and one old invoice dated long before `start_date`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

DAYS = ("2011-12-01", "2011-12-02")

CUSTOMERS_HEADER = ["", "Customer ID", "Name", "Email", "Street", "City", "Country", "Credit Limit"]
CUSTOMERS = {
    "2011-12-01": [
        ["0", "17850.0", "Zoë Müller", "zoe.muller@example.com", "12 Rue de Rivoli", "Paris", "France", "5000"],
        ["1", "13047.0", "Seán Ó Briain", "sean@example.ie", "4 Quay St", "Galway", "Ireland", "1200"],
        ["2", "12583.0", "Ana Núñez", "ana.nunez@example.es", "Calle Mayor 3", "Madrid", "Spain", "800"],
        ["3", "NA", "Nobody", "", "", "", "", ""],
    ],
    "2011-12-02": [
        # Moved: only the street (masked by redaction) changes.
        ["0", "17850.0", "Zoë Müller", "zoe.muller@example.com", "8 Avenue Foch", "Paris", "France", "5000"],
        ["1", "13047.0", "Seán Ó Briain", "sean@example.ie", "4 Quay St", "Galway", "Ireland", "1200"],
    ],
}
MOVED_CUSTOMER = "17850"

PRODUCTS_HEADER = ["Stock Code", "Description", "Unit Price"]
PRODUCTS = {
    "2011-12-01": [
        ["85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "2.55"],
        ["71053", "WHITE METAL LANTERN", "3.39"],
        ["22752", "SET 7 BABUSHKA NESTING BOXES", "7.65"],
    ],
    "2011-12-02": [["71053", "", "3.39"]],
}
BLANKED_PRODUCT = ("71053", "WHITE METAL LANTERN")

STORES_HEADER = ["Store Code", "Store Name", "City", "Country"]
STORES = {
    "2011-12-01": [
        ["PAR1", "Paris Rivoli", "Paris", "France"],
        ["DUB1", "Dublin Grafton", "Dublin", "Ireland"],
    ],
    "2011-12-02": [],
}

SALES_HEADER = ["Line No", "Invoice", "Stock Code", "Description", "Quantity", "Invoice Date", "Price",
                "Customer ID", "Store Code"]
_DAY1_SALES = [
    ["1", "536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "6", "12/1/2011 8:26", "2.55", "17850.0", "PAR1"],
    ["2", "536365", "71053", "WHITE METAL LANTERN", "6", "12/1/2011 8:26", "3.39", "17850.0", "PAR1"],
    ["3", "536366", "22752", "SET 7 BABUSHKA NESTING BOXES", "2", "12/1/2011 9:01", "7.65", "13047.0", "DUB1"],
    ["4", "536367", "22752", "Café crème déco set", "3", "12/1/2011 9:34", "7.65", "", "DUB1"],
    ["5", "C536379", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "-1", "12/1/2011 9:41", "2.55", "12583.0",
     "PAR1"],
]
SALES = {
    "2011-12-01": _DAY1_SALES,
    "2011-12-02": [
        *[row if row[0] != "3" else [*row[:4], "4", *row[5:]] for row in _DAY1_SALES],
        ["6", "536400", "71053", "WHITE METAL LANTERN", "12", "12/2/2011 10:03", "3.39", "13047.0", "DUB1"],
        ["7", "536401", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", "1", "12/2/2011 11:15", "2.95", "", "PAR1"],
        # A correction of an old invoice, delivered late: dated two years before `start_date`.
        ["8", "489434", "22752", "SET 7 BABUSHKA NESTING BOXES", "2", "6/15/2009 10:00", "7.65", "13047.0", "DUB1"],
    ],
}


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_drop(root: Path) -> Path:
    """Write both days under `root/<day>/` and return `root`."""
    for day in DAYS:
        folder = root / day
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "customers.csv").write_bytes(b"\xef\xbb\xbf" + _csv_text(CUSTOMERS_HEADER, CUSTOMERS[day]).encode())
        (folder / "products.csv").write_text(_csv_text(PRODUCTS_HEADER, PRODUCTS[day]), encoding="utf-8", newline="")
        (folder / "stores.csv").write_text(_csv_text(STORES_HEADER, STORES[day]), encoding="utf-8", newline="")
        (folder / "sales.csv").write_bytes(_csv_text(SALES_HEADER, SALES[day]).encode("cp1252"))
    return root


EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "docs" / "examples" / "retail_files.yaml"


def config_environment(*, drop: Path, lake: str, warehouse_url: str, schema: str) -> dict[str, str]:
    """The variables docs/examples/retail_files.yaml reads: the test runs the documented example itself."""
    return {"DROP_PATH": str(drop), "LAKE_URL": lake, "WAREHOUSE_URL": warehouse_url, "WAREHOUSE_SCHEMA": schema,
            "START_DATE": DAYS[0], "SPARK_MASTER": "local[2]"}


# --------------------------------------------------------------------------- oracles
@dataclass(frozen=True)
class SaleLine:
    quantity: int
    price: Decimal
    customer: str | None

    @property
    def net(self) -> Decimal:
        return (Decimal(self.quantity) * self.price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _integral(text: str) -> str | None:
    text = text.strip()
    if not text or text.upper() == "NA":
        return None
    return str(int(Decimal(text)))


def latest_sale_lines(up_to_day: str) -> dict[str, SaleLine]:
    """{line no: the line as last delivered} over the deliveries up to `up_to_day`."""
    lines: dict[str, SaleLine] = {}
    for day in DAYS:
        if day > up_to_day:
            break
        for row in SALES[day]:
            lines[row[0]] = SaleLine(int(row[4]), Decimal(row[6]), _integral(row[7]))
    return lines


def sale_dates(up_to_day: str) -> set[int]:
    """The `YYYYMMDD` date keys the delivered lines are dated on."""
    keys = set()
    for day in DAYS:
        if day <= up_to_day:
            for row in SALES[day]:
                month, mday, year = row[5].split(" ")[0].split("/")
                keys.add(int(year) * 10000 + int(month) * 100 + int(mday))
    return keys


def expected_net_total(up_to_day: str) -> Decimal:
    return sum((line.net for line in latest_sale_lines(up_to_day).values()), Decimal("0"))


def customer_ids(up_to_day: str) -> set[str]:
    ids = {_integral(row[1]) for day in DAYS if day <= up_to_day for row in CUSTOMERS[day]}
    return {i for i in ids if i is not None}
