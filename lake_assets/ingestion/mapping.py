"""Source column <-> entity column, the same way the processed layer maps them.

The processed layer snake-cases every raw column name (spark/naming.py) and then applies the table's
`columns` renames, whose keys are compared in snake_case too; ingestion uses the very same rule to find
a table's key and required columns in the delivered data, so both layers agree on every name.
"""

from __future__ import annotations

from lake_assets.config import TableConfig
from lake_assets.entities import ENTITIES
from spark.naming import to_snake_case

__all__ = ["entity_column", "key_columns", "mapping_conflicts", "source_columns_for", "to_snake_case"]


def _renames(table: TableConfig) -> dict[str, str]:
    """The table's `columns` renames keyed by snake_case source name (blank keys cannot match)."""
    return {to_snake_case(k): v for k, v in table.columns.items() if k.strip()}


def entity_column(table: TableConfig, source_column: str) -> str:
    """The entity (or processed) column a delivered column becomes: snake_case, then the renames.

    A blank name (only an API or database can still deliver one) maps to itself, i.e. to no entity column.
    """
    if not source_column.strip():
        return source_column
    snake = to_snake_case(source_column)
    return _renames(table).get(snake, snake)


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
    """The delivered columns identifying a record: the configured `key` (names compared in snake_case,
    as in `columns` and `generate`), else the entity key mapped back."""
    if table.key:
        delivered = {to_snake_case(c): c for c in columns if c.strip() and not c.startswith("_")}
        return [delivered.get(to_snake_case(k), k) if k.strip() else k for k in table.key]
    if table.entity is None:
        return list(columns)  # an input of derived tables only: no entity key to map back
    by_entity = source_columns_for(table, columns)
    entity = ENTITIES[table.entity]
    return [by_entity[c] for c in entity.key if c in by_entity] or list(columns)
