"""Numbers written as text in exports, made into the plain text a Spark cast reads: pure PySpark.

Exports write numbers for people: currency symbols (`$1,234.50`, `€ 5`), thousands separators
(`1,234`, `1 234`, `1'234`, a no-break space) and, in much of Europe, a decimal comma (`2,50`,
`1.234,50`). A separator is taken for a thousands separator only where it separates groups of three
digits; any other use makes the value unusable (NULL here, `unparsable <column>` in the processed
layer), never a different number: under a decimal point `2,00` and `1,5` are not 200 and 15, they are
values written with a decimal comma, which the table must declare (`decimal_separator: ","`).
"""

from __future__ import annotations

from typing import Literal

from pyspark.sql import Column
from pyspark.sql import functions as F

DecimalSeparator = Literal[".", ","]
CURRENCY_SYMBOLS = "$€£¥"
# Thousands separators besides the other mark: apostrophe, space, no-break space, narrow no-break space.
_SEPARATORS = "'\u0020\u00a0\u202f"
_GROUP_SEPARATORS: dict[str, str] = {".": "," + _SEPARATORS, ",": "." + _SEPARATORS}


def number_text(column: Column, decimal_separator: DecimalSeparator = ".") -> Column:
    """The value as plain number text (`-1234.50`: no symbol, no separator, a decimal point), the
    text without its currency symbol when it has no separator (Spark then reads `1.5E3`, or finds it
    is no number), or NULL when it uses a separator other than between groups of three digits.

    A value already written plainly (`12.50`, `-3`, `1.5E3`) is recognised by one match and passed on
    as it is; only the others (a symbol, a separator, a decimal comma) take the slower rewriting path,
    so a day of millions of plain numbers costs one regular expression per value."""
    trimmed = F.trim(column.cast("string"))
    text = F.trim(F.translate(trimmed, CURRENCY_SYMBOLS, ""))
    groups = _GROUP_SEPARATORS[decimal_separator]
    ungrouped = F.translate(text, groups, "")
    mark = r"\." if decimal_separator == "." else ","
    group_class = "[" + "".join("\\" + c if c in ".'" else c for c in groups) + "]"
    grouped = rf"^[+-]?\d{{1,3}}({group_class}\d{{3}})+({mark}\d*)?$"
    as_point = F.translate(ungrouped, ",", ".") if decimal_separator == "," else ungrouped
    # Under a decimal comma a point is a group separator: `2.50` is no number there.
    rewritten = F.when(F.length(ungrouped) == F.length(text), as_point).when(text.rlike(grouped), as_point)
    return F.when(trimmed.rlike(_PLAIN[decimal_separator]), trimmed).otherwise(rewritten)


# Numbers Spark reads as they are, with nothing to rewrite: under a decimal comma only whole numbers
# (`2.50` is no number there).
_PLAIN: dict[str, str] = {".": r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", ",": r"^[+-]?\d+$"}


NUMBER_TYPES = frozenset({"tinyint", "smallint", "int", "bigint", "float", "double"})


def is_number_type(spark_type: str) -> bool:
    """Whether a column of `spark_type` holds numbers (`decimal(p,s)` included)."""
    return spark_type in NUMBER_TYPES or spark_type.startswith("decimal")
