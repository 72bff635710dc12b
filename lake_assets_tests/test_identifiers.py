"""Identifiers from the config that reach SQL: hostile values are refused at load naming their YAML
key; a legitimately odd name (accents, a space, a hyphen) is quoted and read as written."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lake_assets.config import BUNDLED_CONFIG, ConfigError, DatabaseSourceConfig, load_config
from lake_assets.ingestion import DatabaseSource, DataIngestionPipeline
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import PG_ADMIN_URL, require_listening

HOSTILE = "x; DROP TABLE y"
DB_SOURCE = """
  - name: shop_db
    kind: database
    url: "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    tables:
      - name: orders
        entity: sale
        {what}
"""


def _config_with(tmp_path: Path, old: str, new: str) -> Path:
    text_ = BUNDLED_CONFIG.read_text(encoding="utf-8")
    assert old in text_, f"test setup: {old!r} not in bundled config"
    path = tmp_path / "pipeline.yaml"
    path.write_text(text_.replace(old, new, 1), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(path)
    return str(error.value)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('schema: "${WAREHOUSE_SCHEMA:-analytics}"', f'schema: "{HOSTILE}"', "warehouse.schema"),
        ("roles: {bi_all:", f'roles: {{"{HOSTILE}": ["*"], bi_all:', "warehouse.row_level_security.roles"),
        ("      - name: customers\n", f'      - name: "{HOSTILE}"\n', "sources.0.tables.0.name"),
        ("sources:\n", "entities:\n  customer:\n    attributes:\n"
                       f'      "{HOSTILE}": {{type: string, mask: keep}}\nsources:\n', "entities"),
    ],
    ids=["warehouse_schema", "bi_role", "table_name", "extra_attribute"],
)
def test_hostile_identifier_is_refused_naming_the_key(old: str, new: str, key: str, tmp_path: Path) -> None:
    message = _error(_config_with(tmp_path, old, new))
    assert key in message, message
    assert HOSTILE in message  # the offending value is shown, so the user finds it


@pytest.mark.parametrize(
    ("what", "key"),
    [
        (f'table: "{HOSTILE}"', "sources.1.tables.0.table"),
        ('table: "public.orders\\"; DROP TABLE y; --"', "sources.1.tables.0.table"),
        ('query: "SELECT 1 AS line_id; DROP TABLE y"', "sources.1.tables.0.query"),
        (f'table: orders\n        incremental: {{cursor: "{HOSTILE}"}}', "sources.1.tables.0.incremental.cursor"),
    ],
    ids=["table", "quote_escape", "second_statement", "cursor"],
)
def test_hostile_source_database_names_are_refused(what: str, key: str, tmp_path: Path) -> None:
    path = _config_with(tmp_path, "masking:\n", DB_SOURCE.format(what=what).lstrip("\n") + "masking:\n")
    message = _error(path)
    assert f"key '{key}'" in message, message
    assert "DROP TABLE y" in message


def test_odd_but_valid_source_table_and_column_names_are_quoted(tmp_path: Path) -> None:
    """Accents, a space and a hyphen in a PostgreSQL schema, table and cursor column: loaded and read."""
    require_listening("PostgreSQL", 5432)
    schema, table, cursor = f"Lager Süd-{uuid.uuid4().hex[:6]}", "Bestellpositionen 2024-Q1", "geändert am"
    engine = create_engine(PG_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'CREATE TABLE "{schema}"."{table}" (line_id INT, "{cursor}" TIMESTAMP)'))
        conn.execute(text(f'INSERT INTO "{schema}"."{table}" VALUES '
                          "(1, '2024-03-01 10:00'), (2, '2024-03-01 11:00')"))
    try:
        source = DatabaseSourceConfig.model_validate({
            "name": "lager", "kind": "database", "url": PG_ADMIN_URL,
            "tables": [{"name": "lines", "table": f"{schema}.{table}", "incremental": {"cursor": cursor}}],
        })
        lake = LakeStorage(url=str(tmp_path / "lake"))
        result = DataIngestionPipeline(DatabaseSource(source, source.tables[0]), lake).run("2024-03-01")
        assert result.rows == 2
        rows = lake.read_arrow(["raw", "lager", "lines"], "2024-03-01").to_pylist()
        assert sorted(r["line_id"] for r in rows) == ["1", "2"]
        assert result.metadata()["cursor"] == f"{cursor} = 2024-03-01T11:00:00"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
