"""spark/format_shapes.py: the shape test before `try_to_timestamp` never rules out a text the format
parses. The oracle is Spark's own `try_to_timestamp` of each format, unguarded, over many real-world
date shapes (built here from separators, field orders, widths and time parts, plus odd cases)."""

from __future__ import annotations

import itertools

from pyspark.sql import functions as F

from spark.format_shapes import format_shape
from spark.standardize import DEFAULT_TIMESTAMP_FORMATS, parse_timestamp

CONFIGURED_FORMATS = (
    "dd/MM/yyyy HH:mm", "dd/MM/yyyy", "M/d/yyyy H:mm", "MM/dd/yyyy", "d.M.yyyy", "yyyyMMdd", "yyyyMMddHHmmss",
    "dd-MMM-yyyy", "d MMM yyyy HH:mm:ss z", "h:mm a", "yyyy-MM-dd HH:mm:ss.SSS", "MMMM d, yyyy",
    "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "yy-MM-dd", "dd/MM/yy", "yyyy-MM-dd'T'HH:mm:ssZ", "d MMM yyyy HH:mm",
    "yyyy-DDD", "h 'o''clock' a, d MMM yyyy",
)

ODD = [
    "2024-01-05T13:45:00.1234567Z", "2024-01-05 13:45:00.", "2024-01-05 13:45:00,123", "+2024-01-05",
    "-2024-01-05", "+12024-01-05 00:00:00", "12024-01-05", "024-01-05", "2024-13-01", "2024-02-30",
    "2024-01-05 24:00:00", "2024-01-05 13:60:00", "2024-01-05  13:45:00", "2024-01-05\t13:45:00",
    "٢٠٢٤-٠١-٠٥", "２０２４-01-05", "2024‐01‐05", "", " ", "NULL", "abc", "Fri, 05 Jan 2024 13:45:00 GMT",
    "Fri, 05 Jan 2024 13:45:00 UTC", "1704462300", "2024-005", "2024-W01-5", "13:45", "1:45 PM", "1:45 pm",
    "2024-01-05T13:45:00-0500", "2024-01-05T13:45:00+0530", "2024-01-05 13:45:00 UTC", "Jan 5 2024",
    "jan 5 2024", "JAN 05 2024", "January 5, 2024", "january 5, 2024", "5 Jan 2024 13:45", "05-Jan-2024",
    "05-jan-2024", "Sept 5 2024", "Sep 5 2024", "5-Sep-24", "1 o'clock PM, 5 Jan 2024", "2024-01-05\n",
    "1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1x", "2024-01-05T13:45:00ZZ", "2024-01-05t13:45:00z",
    "--2024-01-05", "2024-+1-05", "20240105 ", "2024010513450", "99991231235959", "00010101",
]


def _shapes() -> list[str]:
    """Dates of two days and several times in many delivered shapes."""
    days = [(2024, 1, 5), (2023, 12, 25), (2024, 2, 29)]
    times = ["", " 13:45", " 13:45:07", " 1:05", "T13:45:07", "T13:45:07Z", "T13:45:07.5Z", "T13:45:07.123456Z",
             "T13:45:07+02:00", " 13:45:07.123", " 13:45:07.123456", " 01:05 PM"]
    texts = []
    for (y, m, d), sep, order, pad, year2, time in itertools.product(
            days, ["-", "/", ".", " ", ""], ["ymd", "dmy", "mdy"], [True, False], [False, True], times):
        year = f"{y % 100:02d}" if year2 else str(y)
        month, day = (f"{m:02d}", f"{d:02d}") if pad else (str(m), str(d))
        fields = {"ymd": (year, month, day), "dmy": (day, month, year), "mdy": (month, day, year)}[order]
        texts.append(sep.join(fields) + time)
    return texts + ODD


def test_a_shape_never_rules_out_a_text_the_format_parses(spark) -> None:
    texts = _shapes()
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    formats = [*DEFAULT_TIMESTAMP_FORMATS, *CONFIGURED_FORMATS]
    columns = []
    for i, fmt in enumerate(formats):
        shape = format_shape(fmt)
        assert shape is not None, fmt  # every pattern above is one the module knows
        # As microseconds: Python's datetime cannot hold the negative years Spark reads.
        columns += [F.unix_micros(F.try_to_timestamp("t", F.lit(fmt))).alias(f"p{i}"),
                    F.col("t").rlike(shape).alias(f"s{i}")]
    rows = df.select(*columns).collect()
    parsed = 0
    for i, fmt in enumerate(formats):
        missed = [t for t, r in zip(texts, rows, strict=True) if r[f"p{i}"] is not None and not r[f"s{i}"]]
        assert missed == [], (fmt, missed[:5])
        parsed += sum(r[f"p{i}"] is not None for r in rows)
        # The shape does rule texts out: otherwise it would be no help.
        assert sum(not r[f"s{i}"] for r in rows) > len(texts) // 2, fmt
    assert parsed > len(formats) * 3  # the shapes above are ones these formats read


def test_guarded_parse_equals_every_format_tried_in_order(spark) -> None:
    texts = _shapes()
    formats = ["dd/MM/yyyy HH:mm", "dd/MM/yyyy", *DEFAULT_TIMESTAMP_FORMATS]
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    plain = F.coalesce(*[F.try_to_timestamp(F.trim("t"), F.lit(f)) for f in formats])
    rows = df.select(F.unix_micros(plain).alias("plain"),
                     F.unix_micros(parse_timestamp(F.col("t"), formats)).alias("guarded")).collect()
    assert [r["guarded"] for r in rows] == [r["plain"] for r in rows]
    assert sum(r["plain"] is not None for r in rows) > 50


def test_unknown_pattern_letters_and_digit_literals_get_no_shape() -> None:
    assert format_shape("yyyy-MM-dd ppH") is None  # padding
    assert format_shape("yyyy-MM-dd'T'HH 'h'") is not None
    assert format_shape("yyyy'1'MM") is None
    assert format_shape("yyyy-MM-dd [HH") is None  # unbalanced
    assert format_shape("yyyy-MM-dd 'unclosed") is None
