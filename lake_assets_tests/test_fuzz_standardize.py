"""The standardizer (mapping value rules, `cast_to_schema`, `split_rejects`) on generated rows, with
the oracle built with the input: hypothesis draws a number or an instant, then writes it the way an
export would (currency symbols, thousands separators of several kinds, a decimal point or comma,
padding); hostile text goes in beside it, and quantities that are no count (`inf`, `1e400`, `(5)`,
`5.7`, `1,5`, Arabic-Indic digits). Every row comes out once, good or quarantined with a reason;
a number reads back as the number drawn (never another one: `2,00` under a decimal point is
quarantined, not 200); an instant reads back as drawn when it lies in 1900-2099 and is quarantined as
out of range otherwise (year 1, 9999 and the literal year 0 included)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from spark.mapping_rules import apply_value_rules
from spark.standardize import DEFAULT_NULL_TOKENS, REJECT_REASON, cast_to_schema, split_rejects

SCHEMA = {"line": "string", "quantity": "int", "unit_price": "decimal(12,2)", "sold_at": "timestamp",
          "note": "string"}
CURRENCIES = ["", "$", "€", "£", " €"]  # a prefix, or a suffix after a space
GROUPS = {".": [",", " ", "'", "\u00a0", "\u202f"], ",": [".", " ", "'", "\u00a0"]}

hostile = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),
    st.sampled_from(["NaN", "inf", "-Infinity", "1e400", "0x10", "(5)", "5-", "١٢", "", " ", "NA", "x" * 3000]),
)


def _grouped(digits: str, separator: str) -> str:
    """`digits` with `separator` between groups of three, from the right."""
    head = len(digits) % 3 or 3
    return separator.join([digits[:head], *[digits[i:i + 3] for i in range(head, len(digits), 3)]])


@st.composite
def written_number(draw: st.DrawFn, mark: str) -> tuple[str, Decimal | None]:
    """(text, the value it must read as; None: must be quarantined) for a unit price."""
    units = draw(st.integers(0, 999_999_999))
    cents = draw(st.integers(0, 99))
    negative = draw(st.booleans())
    digits = str(units)
    kind = draw(st.sampled_from(["plain", "grouped", "wrong_mark"]))
    if kind == "wrong_mark":
        # The other mark before one or two digits: no group of three follows it, so it is no thousands
        # separator; read under this mark it is no number.
        other = "," if mark == "." else "."
        fraction = f"{cents:02d}"[: draw(st.integers(1, 2))]
        return f"{'-' if negative else ''}{digits}{other}{fraction}", None
    body = _grouped(digits, draw(st.sampled_from(GROUPS[mark]))) if kind == "grouped" and units >= 1000 else digits
    fraction = draw(st.sampled_from(["", f"{cents:02d}", f"{cents:02d}"[:1]]))
    text = body + (mark + fraction if fraction else "")
    symbol = draw(st.sampled_from(CURRENCIES))
    sign = "-" if negative else ""
    text = f"{sign}{text}{symbol}" if symbol.startswith(" ") else f"{sign}{symbol}{text}"
    value = Decimal(f"{'-' if negative else ''}{units}.{fraction or '0'}").quantize(Decimal("0.01"), ROUND_HALF_UP)
    return draw(st.sampled_from(["", " ", "  "])) + text + draw(st.sampled_from(["", " "])), value


@st.composite
def written_instant(draw: st.DrawFn) -> tuple[str, datetime | None]:
    """(text, the instant it must read as; None: out of range, must be quarantined)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["0000-01-01 00:00:00", "0000-12-31"])), None
    instant = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    instant = instant.replace(microsecond=0)
    text = f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d} {instant:%H:%M:%S}"
    return text, instant if 1900 <= instant.year < 2100 else None


# Quantities no export means as a count: infinities, overflow, hex, accounting negatives, Arabic-Indic
# digits, a fraction, a decimal-comma fraction, a null token.
BAD_QUANTITIES = ["inf", "-Infinity", "1e400", "99999999999", "0x10", "(5)", "5-", "١٢", "5.7", "1,5", "NaN", ""]
quantity = st.one_of(st.integers(-1_000, 100_000).map(lambda q: (str(q), q)),
                     st.sampled_from(BAD_QUANTITIES).map(lambda t: (t, None)))


def rows_strategy(mark: str) -> st.SearchStrategy:
    return st.lists(st.tuples(quantity, written_number(mark), written_instant(), hostile), min_size=1, max_size=60)


def _standardize(spark, rows: list, mark: str):
    data = [(f"L{i}", qty[0], price[0], sold[0], note, "drop/file.csv") for i, (qty, price, sold, note)
            in enumerate(rows)]
    raw = spark.createDataFrame(data, "line string, quantity string, unit_price string, sold_at string, "
                                      "note string, _source_file string")
    mapped = apply_value_rules(raw, decimal_comma=["quantity", "unit_price"] if mark == "," else ())
    # Cached before the split, as the processed step does: the split's filters then read the typed rows
    # instead of repeating the typing in their own generated code.
    typed = cast_to_schema(mapped, SCHEMA, date_orders={}).persist()
    good, rejected = split_rejects(typed, ["line", "quantity"])
    try:
        return _by_line(good, rejected)
    finally:
        typed.unpersist()


def _by_line(good, rejected) -> tuple[dict, dict]:
    return ({r["line"]: r for r in good.withColumn("sold_at", F.col("sold_at").cast("string")).collect()},
            {r["line"]: r[REJECT_REASON] for r in rejected.select("line", REJECT_REASON).collect()})


def _check(spark, rows: list, mark: str) -> None:
    good, rejected = _standardize(spark, rows, mark)
    assert not set(good) & set(rejected)
    assert set(good) | set(rejected) == {f"L{i}" for i in range(len(rows))}  # every row once
    for i, ((quantity_text, quantity), (price_text, price), (sold_text, sold), note) in enumerate(rows):
        line = f"L{i}"
        if quantity is None or price is None or sold is None:
            assert line in rejected, (quantity_text, price_text, sold_text)
            reason = rejected[line]
            if quantity is None:  # a required column: no value is `missing`, a bad one `unparsable`
                assert "quantity" in reason, (quantity_text, reason)
            if price is None:
                assert "unparsable unit_price" in reason, (price_text, reason)
            if sold is None:
                assert "sold_at out of range" in reason, (sold_text, reason)
            continue
        assert line in good, (price_text, sold_text, rejected.get(line))
        row = good[line]
        assert row["quantity"] == quantity
        assert row["unit_price"] == price, price_text
        assert row["sold_at"] == f"{sold:%Y-%m-%d %H:%M:%S}"
        # Text columns: trimmed of spaces (Spark's trim), the documented null tokens are no value.
        assert row["note"] == (None if note.strip(" ") in DEFAULT_NULL_TOKENS else note.strip(" "))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy("."))
def test_numbers_and_instants_read_as_written_with_a_decimal_point(spark, rows: list) -> None:
    _check(spark, rows, ".")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy(","))
def test_numbers_read_as_written_with_a_decimal_comma(spark, rows: list) -> None:
    _check(spark, rows, ",")


def test_european_and_english_exports_of_the_same_prices(spark) -> None:
    # The same three prices written by a German and a US export: both read as 1234.50, 2.00 and 0.99;
    # the German text read as if it had a decimal point is quarantined, never 1.23 or 200.
    prices = [Decimal("1234.50"), Decimal("2.00"), Decimal("0.99")]
    german = ["1.234,50 €", "2,00", "0,99"]
    english = ["$1,234.50", "2.00", ".99"]
    sold = ("2024-03-01 10:00:00", datetime(2024, 3, 1, 10))
    for texts, mark in ((german, ","), (english, ".")):
        _check(spark, [(("1", 1), (t, p), sold, "ok") for t, p in zip(texts, prices, strict=True)], mark)
    misread = [(("1", 1), (t, None), sold, "ok") for t in german[:2]]
    _check(spark, misread, ".")
