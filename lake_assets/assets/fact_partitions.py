"""How curated/fact_sales is laid out in the lake, and which of its partitions a run day touched.

The lake table is partitioned by `sale_date` (the UTC date of `sold_at`, the day BI queries filter
on), not by the day a line arrived. Every row also carries `ingest_date`, the run day whose delivery
it comes from. The Dagster asset stays partitioned by run day: the run of day D writes D's masked
lines into the sale dates they belong to, in one lake commit, and stores `{"run_day": D}` with each
sale-date partition it replaced. So:

* the sale dates run D touched, and every later run's: the partitions whose commit has run_day >= D;
* the rows delivered by run D: rows with `ingest_date` = D, all inside those partitions (a partition
  that a later run replaced still holds D's rows that the later run did not deliver again).

The checks read these rows through `delivered_dataset` + `delivered_filter` (or `delivered_since_filter`
for the rows of that day and later, which the reconciliation needs to see lines delivered again): only
the columns they need, one record batch at a time, so the driver's memory does not grow with the day.
"""

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lake_assets.resources.lake_storage import LakeStorage

FACT_KEY = ["curated", "fact_sales"]
SALE_DATE = "sale_date"
DELIVERED_ON = "ingest_date"
RUN_DAY = "run_day"
# What the fact readers below need of a run that wrote no sale date.
_EMPTY = pa.schema([("sale_line_id", pa.string()), ("date_key", pa.int32()), ("net_amount", pa.decimal128(14, 2)),
                    (DELIVERED_ON, pa.date32())])


def sale_dates_since(lake: LakeStorage, day: str) -> list[str]:
    """Sorted sale dates whose last commit came from run day `day` or a later one."""
    return [p for p, info in lake.commits(FACT_KEY).items() if str(info.state.get(RUN_DAY, "")) >= day]


def facts_since(lake: LakeStorage, day: str) -> pa.Table:
    """Every row of the sale dates that run `day` or a later run committed (see `sale_dates_since`)."""
    dates = sale_dates_since(lake, day)
    return lake.read_arrow_partitions(FACT_KEY, dates) if dates else _EMPTY.empty_table()


def delivered_on(facts: pa.Table, day: str) -> pa.Table:
    """The rows of `facts` that run `day` delivered."""
    return facts.filter(pc.equal(pc.cast(facts.column(DELIVERED_ON), pa.string()), day))


def delivered_dataset(lake: LakeStorage, day: str) -> ds.Dataset:
    """The rows `facts_since` gives, as a lazy Dataset over the committed files (nothing read yet)."""
    dates = sale_dates_since(lake, day)
    return lake.read_dataset_partitions(FACT_KEY, dates) if dates else ds.dataset(_EMPTY.empty_table())


def delivered_filter(day: str) -> ds.Expression:
    """Selects, in `delivered_dataset(lake, day)`, the rows run `day` delivered."""
    return ds.field(DELIVERED_ON) == pa.scalar(date.fromisoformat(day), pa.date32())


def delivered_since_filter(day: str) -> ds.Expression:
    """Selects, in `delivered_dataset(lake, day)`, the rows run `day` or a later run delivered (a line
    of `day` delivered again later is there with the later day)."""
    return ds.field(DELIVERED_ON) >= pa.scalar(date.fromisoformat(day), pa.date32())


def delivered_count(lake: LakeStorage, day: str) -> int:
    """How many rows run `day` delivered, reading the `ingest_date` column alone."""
    return delivered_dataset(lake, day).count_rows(filter=delivered_filter(day))
