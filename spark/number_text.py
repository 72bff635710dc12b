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
CURRENCY_SYMBOLS = r"[$€£¥]"
# Spaces people and spreadsheets put between digit groups: space, no-break space, narrow no-break space.
_SPACES = "\\s\u00a0\u202f"
_GROUP_SEPARATORS: dict[str, str] = {".": f"[,'{_SPACES}]", ",": f"[.'{_SPACES}]"}


def number_text(column: Column, decimal_separator: DecimalSeparator = ".") -> Column:
    """The value as plain number text (`-1234.50`: no symbol, no separator, a decimal point), the
    text without its currency symbol when it has no separator (Spark then reads `1.5E3`, or finds it
    is no number), or NULL when it uses a separator other than between groups of three digits."""
    text = F.trim(F.regexp_replace(F.trim(column.cast("string")), CURRENCY_SYMBOLS, ""))
    groups = _GROUP_SEPARATORS[decimal_separator]
    mark = r"\." if decimal_separator == "." else ","
    grouped = rf"^[+-]?\d{{1,3}}({groups}\d{{3}})+({mark}\d*)?$"
    plain = F.regexp_replace(F.regexp_replace(text, groups, ""), ",", ".")
    if decimal_separator == ".":
        return F.when(text.rlike(grouped), plain).when(text.rlike(groups), F.lit(None)).otherwise(text)
    # Under a decimal comma a point is a group separator: `2.50` is no number there.
    return F.when(text.rlike(grouped), plain).when(text.rlike(groups), F.lit(None)).otherwise(
        F.regexp_replace(text, ",", "."))


NUMBER_TYPES = frozenset({"tinyint", "smallint", "int", "bigint", "float", "double"})


def is_number_type(spark_type: str) -> bool:
    """Whether a column of `spark_type` holds numbers (`decimal(p,s)` included)."""
    return spark_type in NUMBER_TYPES or spark_type.startswith("decimal")
