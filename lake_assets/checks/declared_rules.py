"""Per-column rules declared in `quality.tables` (not-null, unique, accepted values, range, regex),
as `TableRules` for the `declared_columns` check of each table that declares some.

A declared column must exist in the table (an absent one fails the check, naming it); values that are
None are judged by `not_null` alone.
"""

from __future__ import annotations

from lake_assets.checks.layer_rules import PII_COLUMNS
from lake_assets.checks.table_rules import ColumnRule, TableRules
from lake_assets.config import QualityConfig


def declared_rules(quality: QualityConfig) -> dict[str, TableRules]:
    """Layer table (`processed/customer`) -> the rules its `quality.tables` entry declares."""
    return {
        table: TableRules(
            columns={
                name: ColumnRule(
                    not_null=column.not_null,
                    unique=column.unique,
                    accepted_values=tuple(column.accepted_values) if column.accepted_values else None,
                    min=column.min,
                    max=column.max,
                    regex=column.regex,
                )
                for name, column in declared.columns.items()
            },
            pii_columns=PII_COLUMNS,
        )
        for table, declared in quality.tables.items()
    }
