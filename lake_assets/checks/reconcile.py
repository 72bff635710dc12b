"""Reconciliations between layers, on Arrow tables (no Dagster, no Spark).

* `fact_against_masked`: the `curated/fact_sales` rows one run day delivered against the same day of
  `masked/sale`. Every fact line comes from a masked line of the day; every masked line is among the
  day's fact rows, or was delivered again on a later day (its row then carries that day); and per `date_key` the
  fact's `net_amount` total equals the masked lines' net, recomputed here independently of Spark:
  `quantity * unit_price * (1 - discount_rate) - discount`, NULL rate and discount as 0, rounded
  half up to cents per line.
  `masked_line_nets` reduces the masked lines to (id, net) piece by piece, so a caller streaming
  record batches never holds the price and discount columns of the whole day.
* `totals_differ`: the (lines, net) totals of one day in two places (warehouse vs curated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

SHOWN = 5  # sale_line_ids / days listed in a result


@dataclass
class FactReconciliation:
    fact_lines: int
    masked_lines: int
    fact_net: Decimal
    masked_net: Decimal  # over the masked lines that are in the fact day
    moved_to_later_days: int
    # Masked lines in no fact partition of this day or later; fact lines not in the masked day.
    missing_ids: list[str] = field(default_factory=list)
    unexpected_ids: list[str] = field(default_factory=list)
    # date_key -> (fact net, masked net) where they differ.
    day_differences: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not (self.missing_ids or self.unexpected_ids or self.day_differences)

    def metadata(self) -> dict[str, str | int]:
        return {
            "fact_lines": self.fact_lines,
            "masked_lines": self.masked_lines,
            "moved_to_later_days": self.moved_to_later_days,
            "fact_net_amount": str(self.fact_net),
            "masked_net_amount": str(self.masked_net),
            "missing_lines": len(self.missing_ids),
            "missing_sample": ", ".join(self.missing_ids[:SHOWN]) or "none",
            "unexpected_lines": len(self.unexpected_ids),
            "unexpected_sample": ", ".join(self.unexpected_ids[:SHOWN]) or "none",
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
    return pc.round(exact, ndigits=2, round_mode="half_up")


def _sum(values: pa.Array | pa.ChunkedArray) -> Decimal:
    total = pc.sum(values).as_py()
    return Decimal(total if total is not None else 0).quantize(Decimal("0.01"))


def _ids_outside(ids: pa.ChunkedArray, others: pa.Array) -> list[str]:
    """The distinct ids of `ids` that are not among `others`, sorted (empty in a passing reconciliation)."""
    outside = ids.filter(pc.invert(pc.is_in(ids, value_set=others)))
    return sorted(pc.unique(outside).to_pylist())


def masked_line_nets(batches: Iterable[pa.RecordBatch | pa.Table]) -> pa.Table:
    """(`sale_line_id`, `net`) of masked sale lines given in pieces (`line_net` of each piece), so the
    price and discount columns of a day are never held at once."""
    pieces = [pa.table({"sale_line_id": piece.column("sale_line_id"), "net": line_net(pa.table(piece))})
              for piece in batches]
    if not pieces:
        return pa.table({"sale_line_id": pa.array([], pa.string()), "net": pa.array([], pa.decimal128(38, 2))})
    return pa.concat_tables(pieces, promote_options="permissive")


def fact_against_masked(
    fact: pa.Table, masked: pa.Table, later_fact_ids: Callable[[Iterable[str]], set[str]]
) -> FactReconciliation:
    """`fact` needs `sale_line_id`, `date_key`, `net_amount`; `masked` needs `sale_line_id`, `quantity`,
    `unit_price`, `discount` (and `discount_rate` when the table has it). `later_fact_ids(ids)`: which
    of `ids` are in a fact partition after this day (called only when some masked line is not in the
    fact day)."""
    return fact_against_line_nets(fact, masked_line_nets([masked]), later_fact_ids)


def fact_against_line_nets(
    fact: pa.Table, nets: pa.Table, later_fact_ids: Callable[[Iterable[str]], set[str]]
) -> FactReconciliation:
    """`fact_against_masked` with the masked lines already reduced to `masked_line_nets`. The id sets
    are compared in Arrow (hash sets over the id columns), never as Python objects."""
    fact_ids = pc.unique(fact.column("sale_line_id"))
    masked_ids = pc.unique(nets.column("sale_line_id"))
    absent = _ids_outside(nets.column("sale_line_id"), fact_ids)
    moved = later_fact_ids(absent) if absent else set()
    expected = nets.filter(pc.is_in(nets.column("sale_line_id"), value_set=fact_ids))
    joined = fact.select(["sale_line_id", "date_key", "net_amount"]).join(
        expected, "sale_line_id", join_type="left outer")
    per_day = joined.group_by("date_key").aggregate([("net_amount", "sum"), ("net", "sum")])
    del joined
    differences = {
        day: (_sum(pa.array([f])), _sum(pa.array([m])))
        for day, f, m in zip(per_day.column("date_key").to_pylist(),
                             per_day.column("net_amount_sum").to_pylist(),
                             per_day.column("net_sum").to_pylist(), strict=True)
        if (f or 0) != (m or 0)
    }
    return FactReconciliation(
        fact_lines=fact.num_rows,
        masked_lines=nets.num_rows,
        fact_net=_sum(fact.column("net_amount")),
        masked_net=_sum(expected.column("net")),
        moved_to_later_days=len(moved),
        missing_ids=sorted(set(absent) - moved),
        unexpected_ids=_ids_outside(fact.column("sale_line_id"), masked_ids),
        day_differences=differences,
    )


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
