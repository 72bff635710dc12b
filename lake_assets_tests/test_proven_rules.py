"""Rules proven by the Parquet statistics of a lake table's files: a column is left out of the pass over
the rows only when no row can fail its rules, and a validation's outcome is the same either way."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lake_assets.checks.proven_rules import proven_columns
from lake_assets.checks.table_rules import ColumnRule, TableRules, validate

MONEY = pa.decimal128(12, 2)
RULES = TableRules(columns={
    "line": ColumnRule(dtype=pa.string(), not_null=True),
    "price": ColumnRule(dtype=MONEY, not_null=True, min=0),
    "rate": ColumnRule(dtype=pa.decimal128(9, 6), min=0, max=1),
    "quantity": ColumnRule(dtype=pa.int32(), min=1, max=100),
    "token": ColumnRule(dtype=pa.string(), regex=r"tok_[a-p]{4}"),
    "note": ColumnRule(dtype=pa.string(), not_null=True, required=False),
})


def _write(folder: Path, name: str, rows: list[dict], row_group_size: int = 4) -> None:
    schema = pa.schema([("line", pa.string()), ("price", MONEY), ("rate", pa.decimal128(9, 6)),
                        ("quantity", pa.int32()), ("token", pa.string()), ("note", pa.string())])
    table = pa.Table.from_pylist(rows, schema=schema)
    if not any(r.get("note") for r in rows):
        table = table.drop_columns(["note"])  # a file written before the column existed
    pq.write_table(table, folder / name, row_group_size=row_group_size)


def _row(n: int, **values: object) -> dict:
    return {"line": f"L{n}", "price": Decimal("2.50"), "rate": None, "quantity": 1 + n % 100,
            "token": "tok_abcd", "note": "x", **values}


def test_only_columns_whose_statistics_rule_out_every_failure_are_proven(tmp_path: Path) -> None:
    _write(tmp_path, "a.parquet", [_row(n) for n in range(10)])
    _write(tmp_path, "b.parquet", [_row(n, rate=Decimal("0.25")) for n in range(10, 20)])
    dataset = ds.dataset(tmp_path, format="parquet")
    # `rate` is NULL in a's row groups and within bounds in b's; `token` has a regex (values only);
    # `note` is in every file without a NULL.
    assert proven_columns(dataset, RULES.columns.items()) == {"line", "price", "rate", "quantity", "note"}

    # One negative price in the last row group of one file, one quantity over the bound, one NULL line.
    _write(tmp_path, "c.parquet", [_row(20), _row(21, price=Decimal("-1.00")), _row(22, quantity=101),
                                   _row(23, line=None), _row(24)] + [_row(n) for n in range(25, 29)])
    assert proven_columns(ds.dataset(tmp_path, format="parquet"), RULES.columns.items()) == {"rate", "note"}
    # A file without the column: its rows are NULL there, which a `not_null` rule must see.
    _write(tmp_path, "d.parquet", [_row(n, note=None) for n in range(30, 33)])
    assert proven_columns(ds.dataset(tmp_path, format="parquet"), RULES.columns.items()) == {"rate"}
    # Floating point: Parquet's min/max leave NaN out, and a NaN fails a range rule.
    (tmp_path / "floats").mkdir()
    pq.write_table(pa.table({"share": pa.array([0.5, float("nan")])}), tmp_path / "floats" / "f.parquet")
    floats = ds.dataset(tmp_path / "floats", format="parquet")
    share = ColumnRule(dtype=pa.float64(), min=0, max=1)
    assert proven_columns(floats, [("share", share)]) == set()
    assert validate(floats, TableRules(columns={"share": share})).failures == {"share: min": 1, "share: max": 1}
    # An in-memory table has no statistics: every column is read.
    assert proven_columns(ds.dataset(pa.table({"line": ["L1"]})), RULES.columns.items()) == set()


def test_validation_counts_the_same_failures_with_proven_columns_left_out(tmp_path: Path) -> None:
    rows = [_row(n) for n in range(40)]
    rows[5]["price"] = Decimal("-3.00")
    rows[17]["token"] = "tok_zz"
    rows[33]["rate"] = Decimal("1.5")
    for number, chunk in enumerate(range(0, 40, 10)):
        _write(tmp_path, f"part-{number}.parquet", rows[chunk:chunk + 10])
    dataset = ds.dataset(sorted(str(p) for p in tmp_path.iterdir()), format="parquet")
    assert proven_columns(dataset, RULES.columns.items()) == {"line", "quantity", "note"}

    outcome = validate(dataset, RULES, batch_rows=7)
    # The oracle, from the rows as written.
    expected = {
        "price: min": sum(1 for r in rows if r["price"] < 0),
        "token: regex": sum(1 for r in rows if not r["token"].startswith("tok_") or len(r["token"]) != 8),
        "rate: max": sum(1 for r in rows if r["rate"] is not None and r["rate"] > 1),
    }
    assert outcome.rows == len(rows)
    assert outcome.failures == expected
    assert outcome.failures == validate(pa.Table.from_pylist(rows, schema=dataset.schema), RULES, batch_rows=7).failures
    assert [s["line"] for s in outcome.sample] == ["L5", "L17", "L33"]


def test_a_column_of_the_wrong_type_is_judged_row_by_row_as_before(tmp_path: Path) -> None:
    pq.write_table(pa.table({"line": ["L1", "L2"], "price": pa.array([1.5, 2.0], pa.float64())}),
                   tmp_path / "a.parquet")
    rules = TableRules(columns={"line": ColumnRule(dtype=pa.string(), not_null=True),
                                "price": ColumnRule(dtype=MONEY, not_null=True, min=0)})
    dataset = ds.dataset(tmp_path, format="parquet")
    assert proven_columns(dataset, rules.columns.items()) == {"line"}
    outcome = validate(dataset, rules)
    assert outcome.rows == 2
    assert outcome.failures == validate(dataset.to_table(), rules).failures == {
        "price: type double, expected decimal128(12, 2)": 2}
