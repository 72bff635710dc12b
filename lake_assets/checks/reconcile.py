"""Reconciliations between layers, on Arrow record batches (no Dagster, no Spark).

* `reconcile_fact`: the `curated/fact_sales` rows one run day delivered against the same day of
  `masked/sale`. Every fact line comes from a masked line of the day; every masked line is among the
  day's fact rows, or was delivered again on a later day (a fact row of it carries that later
  `ingest_date`); and per `date_key` the fact's `net_amount` total equals the masked lines' net,
  recomputed here independently of Spark: `quantity * unit_price * (1 - discount_rate) - discount`,
  NULL rate and discount as 0, rounded to cents per line, ties away from zero.
  Both sides arrive as record batches and are spilled to hash buckets of `sale_line_id`
  (`lake_assets/checks/buckets.py`), then compared one bucket at a time: a line and its counterpart
  always share a bucket, so the driver holds one bucket (about `BUCKET_ROWS` lines) and never the day.
  Only counts, per-`date_key` sums and the first ids in sort order are kept across buckets.
* `totals_differ`: the (lines, net) totals of one day in two places (warehouse vs curated).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from lake_assets.checks.buckets import BUCKET_ROWS, Spill, bucket_count

SHOWN = 5  # sale_line_ids / days listed in a result
_ID = "sale_line_id"
_MONEY = pa.decimal128(38, 2)
_FACT_SPILL = pa.schema([(_ID, pa.string()), ("date_key", pa.int32()), ("net_amount", _MONEY)])
_LATER_SPILL = pa.schema([(_ID, pa.string())])
_NETS_SPILL = pa.schema([(_ID, pa.string()), ("net", _MONEY)])


@dataclass
class FactReconciliation:
    fact_lines: int = 0
    masked_lines: int = 0
    fact_net: Decimal = Decimal("0.00")
    masked_net: Decimal = Decimal("0.00")  # over the masked lines that are in the fact day
    moved_to_later_days: int = 0
    # Masked lines in no fact row of this day or a later one; fact lines not in the masked day.
    missing_lines: int = 0
    unexpected_lines: int = 0
    # The first SHOWN ids of each, in sort order.
    missing_ids: list[str] = field(default_factory=list)
    unexpected_ids: list[str] = field(default_factory=list)
    # date_key -> (fact net, masked net) where they differ.
    day_differences: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not (self.missing_lines or self.unexpected_lines or self.day_differences)

    def metadata(self) -> dict[str, str | int]:
        return {
            "fact_lines": self.fact_lines,
            "masked_lines": self.masked_lines,
            "moved_to_later_days": self.moved_to_later_days,
            "fact_net_amount": str(self.fact_net),
            "masked_net_amount": str(self.masked_net),
            "missing_lines": self.missing_lines,
            "missing_sample": ", ".join(self.missing_ids) or "none",
            "unexpected_lines": self.unexpected_lines,
            "unexpected_sample": ", ".join(self.unexpected_ids) or "none",
            "days_differing": "; ".join(
                f"{day}: fact {fact} vs masked {masked}"
                for day, (fact, masked) in sorted(self.day_differences.items())[:SHOWN]
            ) or "none",
        }


def line_net(sales: pa.Table) -> pa.Array:
    """The net amount of each masked sale line (decimal, cents)."""
    zero_rate = pa.scalar(Decimal("0"), pa.decimal128(9, 6))
    zero_money = pa.scalar(Decimal("0"), pa.decimal128(12, 2))
    rates = sales.column("discount_rate") if "discount_rate" in sales.column_names else pa.nulls(sales.num_rows)
    rate = pc.fill_null(rates.cast(pa.decimal128(9, 6)), zero_rate)
    discount = pc.fill_null(sales.column("discount").cast(pa.decimal128(12, 2)), zero_money)
    gross = pc.multiply(sales.column("quantity").cast(pa.decimal128(10, 0)),
                        sales.column("unit_price").cast(pa.decimal128(12, 2)))
    exact = pc.subtract(pc.multiply(gross, pc.subtract(pa.scalar(Decimal("1"), pa.decimal128(1, 0)), rate)), discount)
    # Ties away from zero, as Spark's `round` (Java's HALF_UP): Arrow's "half_up" goes towards +inf,
    # a cent off on a return (negative line) whose exact net ends in 5.
    return pc.round(exact, ndigits=2, round_mode="half_towards_infinity")


def _decimal(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal("0")


def _first(ids: pa.Array | pa.ChunkedArray, shown: list[str]) -> list[str]:
    """The SHOWN smallest of `shown` and `ids` (distinct ids; byte order is Python's string order)."""
    smallest = pc.take(ids, pc.array_sort_indices(ids)[:SHOWN]).to_pylist() if len(ids) else []
    return sorted(shown + smallest)[:SHOWN]


def _distinct_outside(ids: pa.ChunkedArray, others: pa.Array) -> pa.Array:
    """The distinct ids of `ids` that are not among `others`."""
    return pc.unique(ids.filter(pc.invert(pc.is_in(ids, value_set=others))))


def _compare_bucket(fact: pa.Table, later: pa.Table, nets: pa.Table, result: FactReconciliation,
                    per_day: dict[int, list[Decimal]]) -> None:
    """Adds one bucket's lines (every id of it on both sides) to `result` and `per_day`."""
    fact_ids = pc.unique(fact.column(_ID))
    masked_ids = pc.unique(nets.column(_ID))
    absent = _distinct_outside(nets.column(_ID), fact_ids)
    moved = pc.is_in(absent, value_set=pc.unique(later.column(_ID)))
    missing = absent.filter(pc.invert(moved))
    unexpected = _distinct_outside(fact.column(_ID), masked_ids)
    expected = nets.filter(pc.is_in(nets.column(_ID), value_set=fact_ids))
    joined = fact.join(expected, _ID, join_type="left outer")
    sums = joined.group_by("date_key").aggregate([("net_amount", "sum"), ("net", "sum")])
    for day, fact_sum, masked_sum in zip(sums.column("date_key").to_pylist(), sums.column("net_amount_sum").to_pylist(),
                                         sums.column("net_sum").to_pylist(), strict=True):
        totals = per_day.setdefault(day, [Decimal("0"), Decimal("0")])
        totals[0] += _decimal(fact_sum)
        totals[1] += _decimal(masked_sum)
    result.fact_lines += fact.num_rows
    result.masked_lines += nets.num_rows
    result.fact_net += _decimal(pc.sum(fact.column("net_amount")).as_py())
    result.masked_net += _decimal(pc.sum(expected.column("net")).as_py())
    result.moved_to_later_days += pc.sum(moved).as_py() or 0
    result.missing_lines += len(missing)
    result.unexpected_lines += len(unexpected)
    result.missing_ids = _first(missing, result.missing_ids)
    result.unexpected_ids = _first(unexpected, result.unexpected_ids)


def reconcile_fact(fact: Iterable[pa.RecordBatch | pa.Table], masked: Iterable[pa.RecordBatch | pa.Table],
                   day: date, rows: int, bucket_rows: int = BUCKET_ROWS) -> FactReconciliation:
    """`fact`: batches of fact rows with `sale_line_id`, `date_key`, `net_amount`, `ingest_date`, among
    them every row delivered on `day` or later that holds a line of the day (rows delivered before `day`
    are ignored). `masked`: the masked sale lines of `day`, with `sale_line_id`, `quantity`,
    `unit_price`, `discount` (and `discount_rate` when the table has it). `rows`: about how many rows
    the larger side has, which sets the bucket count (`bucket_rows` rows a bucket)."""
    buckets = bucket_count(rows, bucket_rows)
    cents = Decimal("0.01")
    with tempfile.TemporaryDirectory(prefix="lake-reconcile-") as directory:
        fact_spill = Spill(directory, "fact", _FACT_SPILL, [_ID], buckets)
        later_spill = Spill(directory, "later", _LATER_SPILL, [_ID], buckets)
        nets_spill = Spill(directory, "nets", _NETS_SPILL, [_ID], buckets)
        try:
            for piece in fact:
                delivered = piece.column("ingest_date").cast(pa.date32())
                on_day = pa.scalar(day, pa.date32())
                fact_spill.add(piece.filter(pc.fill_null(pc.equal(delivered, on_day), False)))
                later_spill.add(piece.filter(pc.fill_null(pc.greater(delivered, on_day), False)))
            for piece in masked:
                table = pa.table(piece) if isinstance(piece, pa.RecordBatch) else piece
                nets_spill.add(pa.table({_ID: table.column(_ID), "net": line_net(table)}))
            result, per_day = FactReconciliation(), dict[int, list[Decimal]]()
            for bucket in range(buckets):
                _compare_bucket(fact_spill.read(bucket), later_spill.read(bucket), nets_spill.read(bucket),
                                result, per_day)
        finally:
            for spill in (fact_spill, later_spill, nets_spill):
                spill.close()
    result.fact_net, result.masked_net = result.fact_net.quantize(cents), result.masked_net.quantize(cents)
    result.day_differences = {day_key: (f.quantize(cents), m.quantize(cents))
                              for day_key, (f, m) in per_day.items() if f != m}
    return result


def fact_against_masked(fact: pa.Table, masked: pa.Table, day: date, bucket_rows: int = BUCKET_ROWS
                        ) -> FactReconciliation:
    """`reconcile_fact` over two whole tables (`fact` with its `ingest_date` column)."""
    return reconcile_fact(fact.to_batches(), masked.to_batches(), day, max(fact.num_rows, masked.num_rows),
                          bucket_rows)


def totals_differ(left: tuple[int, Decimal], right: tuple[int, Decimal]) -> bool:
    """(lines, net) pairs compared exactly, net to the cent."""
    cents = Decimal("0.01")
    return left[0] != right[0] or Decimal(left[1]).quantize(cents) != Decimal(right[1]).quantize(cents)


def row_count_problems(rows: int, previous: tuple[str, int] | None, min_rows: int,
                       tolerance: float | None) -> list[str]:
    """Why a partition's row count is suspect: below `min_rows`, or more than `tolerance` (a share)
    away from the previous committed partition's (`previous` = (day, rows)). Empty when it is fine."""
    problems = []
    if rows < min_rows:
        problems.append(f"{rows} rows, fewer than {min_rows}")
    if tolerance is not None and previous is not None and previous[1] > 0:
        change = abs(rows - previous[1]) / previous[1]
        if change > tolerance:
            problems.append(f"{rows} rows vs {previous[1]} on {previous[0]}: {change:.0%} change, "
                            f"over the {tolerance:.0%} tolerance")
    return problems


def upstream_problems(rows: int, upstream: tuple[str, int] | None, tolerance: float | None) -> list[str]:
    """Why a partition's row count is suspect against the same day of the layer upstream (`upstream` =
    (table, rows)): more than `tolerance` (a share) away from it. Empty when fine, when not compared
    (no tolerance) or when upstream has no rows to compare with."""
    if tolerance is None or upstream is None or upstream[1] <= 0:
        return []
    change = abs(rows - upstream[1]) / upstream[1]
    if change <= tolerance:
        return []
    return [f"{rows} rows vs {upstream[1]} in {upstream[0]}: {change:.0%} difference, "
            f"over the {tolerance:.0%} upstream tolerance"]
