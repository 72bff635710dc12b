"""Derived tables (`derived:`): raw tables computed with Spark SQL from other raw tables of the same day,
and the check that their SQL reads only tables that exist."""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import Field, field_validator

from lake_assets.config.base import StrictModel
from lake_assets.config.mapping import MappedTable
from lake_assets.config.sources import SourceKindConfig
from lake_assets.config.sql_scan import SQL_TOKEN, one_query

DERIVED_SOURCE: Final = "derived"
# Functions whose argument syntax has a FROM that is no table: EXTRACT(YEAR FROM ts), TRIM(BOTH FROM s)...
_FROM_FUNCTIONS = frozenset({"extract", "trim", "substring", "substr", "position", "overlay"})


def view_name(source_name: str, table_name: str) -> str:
    """The name a table has in derived SQL: `<source>__<table>` (a plain identifier Spark SQL parses)."""
    return f"{source_name}__{table_name}"


class DerivedTableConfig(MappedTable):
    """A table computed with Spark SQL from other raw tables of the same day: `raw/derived/<name>`.

    `sql` is one SELECT (or WITH ... SELECT) naming its inputs `<source>__<table>` (or
    `derived__<name>` for a derived table listed before it); `columns` renames its output columns to
    entity columns exactly as a source table's `columns` do.
    """

    entity: str  # type: ignore[assignment]  # a derived table always feeds an entity
    sql: str = Field(min_length=1, description="Spark SQL over `<source>__<table>` views of the same day")
    description: str = ""

    @field_validator("sql")
    @classmethod
    def _one_select(cls, value: str) -> str:
        return one_query(value, "Spark SQL")


class DerivedSourceConfig(StrictModel):
    """The derived tables seen as one pseudo-source, so they feed entities exactly like source tables."""

    name: Literal["derived"] = DERIVED_SOURCE
    kind: Literal["derived"] = "derived"
    tables: list[DerivedTableConfig] = Field(default_factory=list)


# What feeds an entity: a source, or the derived tables' pseudo-source (PipelineConfig.tables_for_entity).
FeedSourceConfig = SourceKindConfig | DerivedSourceConfig


def sql_references(sql: str, views: dict[str, str]) -> tuple[list[str], list[str]]:
    """(views the SQL reads, problems) for one derived table's `sql`.

    `views` maps lower-cased view names to their spelling. A `<prefix>__<rest>` word whose prefix is a
    source (or `derived`) must be a known view; a name after FROM or JOIN must be a view or a CTE of
    the query. Comments, string literals and qualified names (`o.order__id`) are skipped. Anything
    this scan cannot see (a misspelt column, a syntax error) Spark reports when the asset runs.
    """
    prefixes = {name.split("__", 1)[0] for name in views} | {DERIVED_SOURCE}
    tokens = [m for m in SQL_TOKEN.finditer(sql) if not (m.group("comment") or m.group("string"))]
    found: dict[str, str] = {}
    problems: list[str] = []
    ctes: set[str] = set()
    stack: list[str] = []  # what each open parenthesis belongs to: a function name or ""
    previous: re.Match[str] | None = None
    for index, token in enumerate(tokens):
        if token.group("open"):
            stack.append((previous.group("word") or "").lower() if previous and previous.group("word") else "")
        elif token.group("close") and stack:
            stack.pop()
        word = token.group("word") or (token.group("quoted") or "").replace("``", "`") or None
        if word is None:
            previous = token
            continue
        lowered = word.lower()
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        qualified = previous is not None and previous.group("dot") is not None
        if after is not None and (after.group("word") or "").lower() == "as" and index + 2 < len(tokens) \
                and tokens[index + 2].group("open") and previous is not None \
                and ((previous.group("word") or "").lower() == "with" or previous.group("comma")):
            ctes.add(lowered)  # `WITH name AS (` / `, name AS (`
        if not qualified and lowered in views:
            found.setdefault(views[lowered], word)
        elif not qualified and "__" in lowered and lowered.split("__", 1)[0] in prefixes:
            problems.append(f"unknown table {word}")
        if (previous is not None and (previous.group("word") or "").lower() in ("from", "join")
                and not qualified and lowered not in views and lowered not in ctes
                and not (stack and stack[-1] in _FROM_FUNCTIONS)
                and lowered not in ("values", "lateral")
                and not (after is not None and (after.group("open") or after.group("dot")))
                and f"unknown table {word}" not in problems):
            problems.append(f"unknown table {word}")
        previous = token
    if not found and not problems:
        problems.append("reads no table; name its inputs <source>__<table>")
    return list(found), problems
