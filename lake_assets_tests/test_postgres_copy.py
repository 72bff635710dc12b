"""PostgreSQL sources read through COPY give the raw layer the same text as the row-by-row path.

The same values are extracted twice: once with only COPY-rendered types, once with an extra float
column that sends the whole result down the server-side-cursor path. Both must give the texts written
below (taken from the inserted values: NULL stays NULL, '' stays '', zoned times in UTC, numeric scale
kept), in chunks of `chunk_rows`. Real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from lake_assets.config import DatabaseSourceConfig
from lake_assets.ingestion import DatabaseSource
from lake_assets.ingestion.postgres_copy import copy_select

from .conftest import PG_ADMIN_URL, require_listening

pytestmark = pytest.mark.services

VALUES = """(VALUES
  (1, 9000000000::bigint, 12.50::numeric(12,2), 'a,"b"'::text, ''::varchar, DATE '2024-01-02',
   TIMESTAMP '2024-01-02 10:00:00', TIMESTAMPTZ '2024-01-02 10:00:00.123+02', true,
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, -5, -0.5::numeric(12,2), E'two\\nlines', 'x y', DATE '2024-02-29', TIMESTAMP '2024-02-29 23:59:59.000001',
   TIMESTAMPTZ '1999-12-31 23:00:00-05', false, NULL)
) v(id, big, amount, note, label, day, at, at_tz, paid, ref)"""
EXPECTED = {
    "id": ["1", "2", "3"],
    "big": ["9000000000", None, "-5"],
    "amount": ["12.50", None, "-0.50"],
    "note": ['a,"b"', None, "two\nlines"],
    "label": ["", None, "x y"],
    "day": ["2024-01-02", None, "2024-02-29"],
    "at": ["2024-01-02 10:00:00", None, "2024-02-29 23:59:59.000001"],
    "at_tz": ["2024-01-02 08:00:00.123000", None, "2000-01-01 04:00:00"],
    "paid": ["true", None, "false"],
    "ref": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None, None],
}


def _extract(query: str) -> tuple[list[str], dict[str, list[str | None]], list[int]]:
    config = DatabaseSourceConfig.model_validate({
        "name": "shop_db", "kind": "database", "url": PG_ADMIN_URL, "chunk_rows": 2,
        "tables": [{"name": "lines", "query": query}],
    })
    with DatabaseSource(config, config.tables[0]).open(None) as (columns, chunks):
        tables = [chunk.rows for chunk in chunks]
    texts = {c: [v for t in tables for v in t.column(c).to_pylist()] for c in columns}
    return columns, texts, [t.num_rows for t in tables]


@pytest.mark.parametrize("extra", ["", ", 0.5::float8 AS f"], ids=["copy", "row-path"])
def test_copy_and_row_path_give_the_same_text(extra: str) -> None:
    require_listening("PostgreSQL", 5432)
    query = f"SELECT v.*{extra} FROM {VALUES} ORDER BY id"
    connection = create_engine(PG_ADMIN_URL).raw_connection()
    try:  # which path the source takes: COPY unless a column type has no server-side rendering
        assert (copy_select(connection.cursor(), query, {}, None) is None) == bool(extra)
    finally:
        connection.close()
    columns, texts, sizes = _extract(query)
    assert columns == [*EXPECTED, *(["f"] if extra else [])]
    assert {c: texts[c] for c in EXPECTED} == EXPECTED
    assert sizes == [2, 1]


def test_rows_longer_than_the_read_block_come_whole_and_in_order() -> None:
    # A 6 MB text value (quotes, delimiters and line breaks in it) is longer than pyarrow's read
    # block (1 MiB): such rows are parsed on their own, between the streamed rows around them.
    require_listening("PostgreSQL", 5432)
    piece = 'ab,"c\n'
    query = (f"SELECT g AS id, CASE WHEN g IN (3, 4) THEN repeat(E'{piece.replace(chr(10), chr(92) + 'n')}', "
             "1000000) || g ELSE 'x' || g END AS note FROM generate_series(1, 7) g ORDER BY g")
    connection = create_engine(PG_ADMIN_URL).raw_connection()
    try:
        assert copy_select(connection.cursor(), query, {}, None) is not None  # the COPY path
    finally:
        connection.close()
    columns, texts, _ = _extract(query)
    assert texts["id"] == [str(g) for g in range(1, 8)]
    assert texts["note"] == [piece * 1_000_000 + str(g) if g in (3, 4) else f"x{g}" for g in range(1, 8)]
