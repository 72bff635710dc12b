"""Column names: the one rule turning a delivered column name into the lake's snake_case name.

Pure Python (no Spark, no Dagster), so raw ingestion (finding a table's entity columns in the
delivered data) and the processed layer (naming its columns) apply the same rule and agree on every
name. Rules, in order:

* Unicode NFC first, so a name typed with a combining accent (`e` + U+0301) equals its composed form.
* A lower-case letter or digit followed by an upper-case letter starts a new word (`customerId`).
* Every run of characters that are neither letters nor digits (any script) becomes one `_`; leading
  and trailing `_` go; the result is lower-cased. Accents are kept: `Prénom` -> `prénom`.
* Digits first stay as they are: `1st Name` -> `1st_name`.
* A name with no letter or digit at all is spelled with its characters' Unicode names:
  `#` -> `number_sign`, `%` -> `percent_sign`.
* An empty or blank name is refused; a file source names a blank header by its position first
  (`blank_header_name`).

Names starting with `_` are lineage columns the lake adds and are never renamed. Two names that
become one are an error naming both (`snake_case_names`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


class ColumnNameCollision(ValueError):
    """Two delivered column names become the same snake_case name."""


def blank_header_name(position: int) -> str:
    """The name of a blank header cell at 1-based `position` (a pandas index column is `column_1`)."""
    return f"column_{position}"


def _spelled(text: str) -> str:
    """`#%` -> `number_sign_percent_sign`: a name made of symbols only, in words."""
    words = [unicodedata.name(ch, f"u{ord(ch):04x}") for ch in text if not ch.isspace()]
    return _NOT_LETTER_OR_DIGIT.sub("_", " ".join(words)).strip("_").lower()


def to_snake_case(name: str) -> str:
    """`Customer ID` / `customerId` / `CUSTOMER-ID` -> `customer_id`; `Prénom` -> `prénom`."""
    text = unicodedata.normalize("NFC", name).strip()
    if not text:
        raise ValueError(f"a column name is empty ({name!r}); give the column a name")
    pieces: list[str] = []
    previous = ""
    for ch in text:
        if ch.isupper() and (previous.islower() or previous.isdigit()):
            pieces.append("_")
        pieces.append(ch)
        previous = ch
    snake = _NOT_LETTER_OR_DIGIT.sub("_", "".join(pieces)).strip("_").lower()
    return snake or _spelled(text)


def snake_case_names(columns: Iterable[str]) -> dict[str, str]:
    """Delivered name -> snake_case name, in the given order; `_`-prefixed names are kept as they are.

    Raises ColumnNameCollision naming both columns when two names (or one name twice) become one.
    """
    names: dict[str, str] = {}
    owner: dict[str, str] = {}
    for column in columns:
        target = column if column.startswith("_") else to_snake_case(column)
        first = owner.get(target)
        if first is not None:
            raise ColumnNameCollision(
                f"column names collide: {first!r} and {column!r} both become {target!r}; "
                "rename one of them at the source"
            )
        owner[target] = column
        names[column] = target
    return names
