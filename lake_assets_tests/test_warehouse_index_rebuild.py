"""PostgreSQL: a large load into an empty fact table builds the table's indexes after the rows; a load
into a table with rows, or a small one, keeps them. Observed through the indexes' object ids (a
rebuilt index is a new relation) and their definitions, on the real server. The threshold is lowered
so that a few rows count as large."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from lake_assets.resources.warehouse import WarehouseDataRejected, WarehouseResource

from . import warehouse_rows as rows
from .conftest import Warehouse

pytestmark = pytest.mark.services

DAY1 = [(f"L{i:02d}", i % 3 + 1, i % 2 + 1, i % 5 + 1) for i in range(12)]
DAY2 = [(f"M{i:02d}", 1, 1, 2) for i in range(8)]


@pytest.fixture
def pg(postgres_warehouse: Warehouse) -> Iterator[WarehouseResource]:
    warehouse = WarehouseResource(url=postgres_warehouse.url, schema_name=postgres_warehouse.schema,
                                  index_rebuild_rows=5)
    warehouse.ensure_schema()
    yield warehouse


def _indexes(warehouse: WarehouseResource) -> dict[str, tuple[int, str]]:
    """{index name: (object id, definition)} of fact_sales, the primary key's index included."""
    engine = create_engine(warehouse.url)
    with engine.connect() as conn:
        found = conn.execute(text(
            "SELECT i.indexname, c.oid, i.indexdef FROM pg_indexes i "
            "JOIN pg_namespace n ON n.nspname = i.schemaname "
            "JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = n.oid "
            "WHERE i.schemaname = :schema AND i.tablename = 'fact_sales'"), {"schema": warehouse.schema_name})
        result = {name: (int(oid), definition) for name, oid, definition in found}
    engine.dispose()
    return result


def _primary_key(warehouse: WarehouseResource) -> list[tuple[str, str]]:
    return [(str(name), str(definition)) for name, definition in warehouse.fetch_all(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE conrelid = '{warehouse.qualified('fact_sales')}'::regclass AND contype = 'p'")]


def _lines(warehouse: WarehouseResource) -> list[tuple[str, int]]:
    return [(str(s), int(q)) for s, q in warehouse.fetch_all(
        f"SELECT sale_line_id, quantity FROM {warehouse.qualified('fact_sales')} ORDER BY sale_line_id")]


def test_large_load_into_empty_table_rebuilds_indexes_then_keeps_them(pg: WarehouseResource) -> None:
    declared = _indexes(pg)
    primary = _primary_key(pg)
    assert len(declared) == 6 and primary == [("fact_sales_pkey", "PRIMARY KEY (sale_line_id)")]

    loaded = pg.replace_rows("fact_sales", rows.fact_sales(1, DAY1), ("ingest_date", "2024-01-01"),
                             key=["sale_line_id"])
    assert loaded == len(DAY1)
    assert _lines(pg) == [(s, q) for s, *_, q in DAY1]
    rebuilt = _indexes(pg)
    # Same indexes, same definitions, same primary key; every one a new relation (built after the rows).
    assert {n: d for n, (_, d) in rebuilt.items()} == {n: d for n, (_, d) in declared.items()}
    assert _primary_key(pg) == primary
    assert all(rebuilt[n][0] != declared[n][0] for n in declared)
    # The rebuilt primary key still refuses a repeated key.
    with pytest.raises(WarehouseDataRejected):
        pg.replace_rows("fact_sales", rows.fact_sales(3, DAY1[:1] * 2), ("ingest_date", "2024-01-03"))

    # A table with rows keeps its indexes through a large load.
    pg.replace_rows("fact_sales", rows.fact_sales(2, DAY2), ("ingest_date", "2024-01-02"), key=["sale_line_id"])
    assert _indexes(pg) == rebuilt
    assert _lines(pg) == sorted([(s, q) for s, *_, q in DAY1] + [(s, q) for s, *_, q in DAY2])


def test_small_load_into_empty_table_keeps_indexes(pg: WarehouseResource) -> None:
    declared = _indexes(pg)
    pg.replace_rows("fact_sales", rows.fact_sales(1, DAY1[:4]), ("ingest_date", "2024-01-01"))
    assert _indexes(pg) == declared
    assert _lines(pg) == [(s, q) for s, *_, q in DAY1[:4]]


def test_duplicate_key_found_by_the_rebuilt_primary_key_keeps_nothing(pg: WarehouseResource) -> None:
    declared = _indexes(pg)
    repeated = DAY1 + [DAY1[3]]  # line L03 again as row 13 of the load
    with pytest.raises(WarehouseDataRejected) as failure:
        pg.replace_rows("fact_sales", rows.fact_sales(1, repeated), ("ingest_date", "2024-01-01"))
    assert (failure.value.column, failure.value.row, failure.value.key) == ("sale_line_id", 13, "sale_line_id = 'L03'")
    assert "the same key in row 4" in failure.value.description
    # Rolled back: no row, the original indexes (same relations) and primary key.
    assert _lines(pg) == []
    assert _indexes(pg) == declared
    assert _primary_key(pg) == [("fact_sales_pkey", "PRIMARY KEY (sale_line_id)")]


def test_a_reader_holding_the_empty_table_is_not_waited_for(pg: WarehouseResource) -> None:
    """A BI session inside a transaction that read the empty table holds a lock the rebuild would need:
    the load waits LOCK_WAIT at most, then loads the ordinary way (indexes kept), and the reader's
    transaction is untouched."""
    declared = _indexes(pg)
    engine = create_engine(pg.url)
    with engine.connect() as reader:
        reader.begin()
        assert reader.execute(text(f"SELECT count(*) FROM {pg.qualified('fact_sales')}")).scalar() == 0
        loaded = pg.replace_rows("fact_sales", rows.fact_sales(1, DAY1), ("ingest_date", "2024-01-01"))
        assert reader.execute(text("SELECT 1")).scalar() == 1
        reader.rollback()
    engine.dispose()
    assert loaded == len(DAY1)
    assert _indexes(pg) == declared
    assert _lines(pg) == [(s, q) for s, *_, q in DAY1]
