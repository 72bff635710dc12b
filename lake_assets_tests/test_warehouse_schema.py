"""The warehouse tables as declared once and rendered per dialect, without a database: the extra-column
types are those docs/reference.md lists, and the config's extra columns join their tables, nullable."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from lake_assets.resources.warehouse_schema import extra_column_type, star_schema

DIALECTS = {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(), "sqlite": sqlite.dialect()}
# docs/reference.md, "Your own columns": type -> (PostgreSQL, MySQL / MariaDB, SQLite).
DOCUMENTED = {
    "string": ("TEXT", "TEXT", "TEXT"),
    "int": ("INTEGER", "INTEGER", "INTEGER"),
    "bigint": ("BIGINT", "BIGINT", "BIGINT"),
    "decimal(12,2)": ("NUMERIC(12, 2)", "NUMERIC(12, 2)", "NUMERIC(12, 2)"),
    "double": ("DOUBLE PRECISION", "DOUBLE", "DOUBLE"),
    "date": ("DATE", "DATE", "DATE"),
    "timestamp": ("TIMESTAMP WITHOUT TIME ZONE", "DATETIME(6)", "DATETIME"),
    "boolean": ("BOOLEAN", "BOOL", "BOOLEAN"),
}


@pytest.mark.parametrize("spark_type", sorted(DOCUMENTED))
def test_extra_column_types_are_the_documented_ones(spark_type: str) -> None:
    kind = extra_column_type(spark_type)
    assert tuple(str(kind.compile(dialect=d)) for d in DIALECTS.values()) == DOCUMENTED[spark_type]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_extra_columns_join_their_tables_nullable_after_the_fixed_ones(dialect: str) -> None:
    extras = {"dim_customer": {"company_name": "string"}, "fact_sales": {"freight": "decimal(12,2)"}}
    schema = None if dialect == "sqlite" else "analytics"
    plain = star_schema(schema, dialect, {})
    extended = star_schema(schema, dialect, extras)
    prefix = f"{schema}." if schema else ""
    for table, columns in extras.items():
        before = [c.name for c in plain.tables[prefix + table].columns]
        after = extended.tables[prefix + table].columns
        assert [c.name for c in after] == [*before, *columns]
        assert all(after[name].nullable for name in columns)
    # Row-level security needs database roles: SQLite has no bi_region_access.
    assert (prefix + "bi_region_access" in plain.tables) == (dialect != "sqlite")
