"""Source column <-> entity column, the same way the processed layer maps them.

The processed layer snake-cases every raw column name and then applies the table's `columns` renames;
ingestion uses the same rule to find a table's key and required columns in the delivered data.
"""

from __future__ import annotations

import re

from lake_assets.config import TableConfig
from lake_assets.entities import ENTITIES


def to_snake_case(name: str) -> str:
    """`Customer ID` / `customerId` / `CUSTOMER-ID` -> `customer_id` (as spark.standardize does)."""
    name = name.strip()
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"[^0-9A-Za-z]+", "_", name)
    return name.strip("_").lower()


def entity_column(table: TableConfig, source_column: str) -> str:
    snake = to_snake_case(source_column)
    return table.columns.get(snake, table.columns.get(source_column, snake))


def source_columns_for(table: TableConfig, columns: list[str]) -> dict[str, str]:
    """entity column -> delivered column, for the delivered columns that map to an entity column."""
    found: dict[str, str] = {}
    for column in columns:
        found.setdefault(entity_column(table, column), column)
    return found


def mapping_conflicts(table: TableConfig, columns: list[str]) -> dict[str, list[str]]:
    """Entity columns that more than one delivered column maps to (the processed layer cannot choose)."""
    targets: dict[str, list[str]] = {}
    for column in columns:
        if not column.startswith("_"):
            targets.setdefault(entity_column(table, column), []).append(column)
    return {target: sources for target, sources in targets.items() if len(sources) > 1}


def key_columns(table: TableConfig, columns: list[str]) -> list[str]:
    """The delivered columns identifying a record: the configured `key`, else the entity key mapped back."""
    if table.key:
        return list(table.key)
    by_entity = source_columns_for(table, columns)
    entity = ENTITIES[table.entity]
    return [by_entity[c] for c in entity.key if c in by_entity] or list(columns)
