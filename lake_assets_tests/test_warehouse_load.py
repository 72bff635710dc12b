"""Warehouse loads on SQLite, PostgreSQL and MariaDB: DDL created and migrated by the pipeline,
dimensions upserted, one fact day replaced without touching the others, reloads idempotent, BI views
and (PostgreSQL) materialized views refreshed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy import inspect, text

from lake_assets.config import RowLevelSecurityConfig
from lake_assets.resources.warehouse import WarehouseDataRejected, WarehouseResource
from lake_assets.resources.warehouse_security import apply_row_level_security, refresh_materialized_views

from . import warehouse_rows as rows


def _q(warehouse: WarehouseResource, table: str) -> str:
    return warehouse.qualified(table)


def _customers(warehouse: WarehouseResource) -> list[tuple]:
    return [
        (int(k), i, c, int(v), bool(cur), bool(inf))
        for k, i, c, v, cur, inf in warehouse.fetch_all(
            "SELECT customer_key, customer_id, city, version, is_current, is_inferred "
            f"FROM {_q(warehouse, 'dim_customer')} ORDER BY customer_key"
        )
    ]


def _fact_days(warehouse: WarehouseResource) -> list[tuple]:
    return [
        (str(d), s, int(k), Decimal(str(n)))
        for d, s, k, n in warehouse.fetch_all(
            f"SELECT ingest_date, sale_line_id, customer_key, net_amount FROM {_q(warehouse, 'fact_sales')} "
            "ORDER BY sale_line_id"
        )
    ]


def test_load_upsert_replace_day_and_views(warehouse: WarehouseResource) -> None:
    rows.load_star(warehouse)
    assert _customers(warehouse) == [
        (-1, "UNKNOWN", "Unknown", 0, True, False),
        (1, "C1", "Boston", 1, False, False),
        (2, "C2", "Austin", 1, True, False),
        (3, "C1", "Denver", 2, True, False),
        (4, "C9", "Unknown", 1, True, True),
    ]
    before = _fact_days(warehouse)
    assert before == [
        ("2024-01-01", "L1", 1, Decimal("19.00")),
        ("2024-01-01", "L2", 2, Decimal("29.00")),
        ("2024-01-02", "L3", 3, Decimal("9.00")),
        ("2024-01-02", "L4", 4, Decimal("49.00")),
    ]
    # Reloading everything is idempotent.
    rows.load_star(warehouse)
    assert _fact_days(warehouse) == before

    # A dimension upsert updates changed rows in place and deletes vanished keys; keys stay.
    changed = rows.dim_customer("Miami").filter([True, True, True, True, False])
    warehouse.upsert_rows("dim_customer", changed, ["customer_key"])
    assert [c for c in _customers(warehouse) if c[0] == 3] == [(3, "C1", "Miami", 2, True, False)]
    assert 4 not in [c[0] for c in _customers(warehouse)]

    # Rebuilding day 2 replaces day 2 only.
    warehouse.replace_rows("fact_sales", rows.fact_sales(2, [("L5", 2, 1, 4)]), ("ingest_date", "2024-01-02"))
    assert _fact_days(warehouse) == [*before[:2], ("2024-01-02", "L5", 2, Decimal("39.00"))]

    warehouse.run_sql_file("views.sql")
    apply_row_level_security(warehouse, RowLevelSecurityConfig())
    refreshed = refresh_materialized_views(warehouse)
    daily = warehouse.fetch_all(
        f"SELECT full_date, net_amount FROM {_q(warehouse, 'v_sales_daily')} ORDER BY full_date"
    )
    assert [Decimal(str(n)).quantize(Decimal("0.01")) for _, n in daily] == [Decimal("48.00"), Decimal("39.00")]
    current = warehouse.fetch_all(f"SELECT customer_id, city FROM {_q(warehouse, 'v_current_customers')} ORDER BY 1")
    assert current == [("C1", "Miami"), ("C2", "Austin")]
    if warehouse.dialect == "postgresql":
        assert refreshed == ["mv_sales_daily_location", "mv_sales_monthly_category"]
        mv = warehouse.fetch_all(
            f"SELECT date_key, location_key, net_amount FROM {_q(warehouse, 'mv_sales_daily_location')} ORDER BY 1, 2"
        )
        assert mv == [(20240101, 1, Decimal("19.00")), (20240101, 2, Decimal("29.00")), (20240102, 1, Decimal("39.00"))]


def test_schema_migration_adds_new_columns(warehouse: WarehouseResource) -> None:
    """A warehouse created by an older DDL (no is_inferred / fiscal_month, no customer index) is migrated
    in place."""
    warehouse.ensure_schema()
    (customer_index,) = [i for t in warehouse.schema_metadata().sorted_tables for i in t.indexes
                         if i.name == "ix_dim_customer_id"]
    with warehouse.connect_checked() as conn, conn.begin():
        customer_index.drop(conn)
        conn.exec_driver_sql(f"DROP TABLE {_q(warehouse, 'dim_location')}")
        conn.exec_driver_sql(
            f"CREATE TABLE {_q(warehouse, 'dim_location')} (location_key BIGINT PRIMARY KEY,"
            " location_id VARCHAR(64) NOT NULL, store_name VARCHAR(64), city VARCHAR(64), region VARCHAR(64),"
            " country VARCHAR(64), postal_code VARCHAR(32))"
        )
        conn.execute(text(f"INSERT INTO {_q(warehouse, 'dim_location')} (location_key, location_id) VALUES (7, 'S7')"))
    with warehouse.connect_checked() as conn:
        schema = None if warehouse.dialect == "sqlite" else warehouse.schema_name
        assert "ix_dim_customer_id" not in {i["name"] for i in inspect(conn).get_indexes("dim_customer", schema)}
    warehouse.ensure_schema()
    assert "is_inferred" in warehouse.table_columns("dim_location")
    with warehouse.connect_checked() as conn:
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("dim_customer", schema)}
    assert indexes["ix_dim_customer_id"] == ["customer_id", "valid_from"]
    assert warehouse.fetch_all(f"SELECT location_id, is_inferred FROM {_q(warehouse, 'dim_location')}") in (
        [("S7", False)],
        [("S7", 0)],
    )


def test_bulk_paths_keep_awkward_values(warehouse: WarehouseResource) -> None:
    """COPY CSV / LOAD DATA TSV / executemany: NULL stays NULL, '' stays '', escapes survive."""
    import pyarrow as pa

    names = ["tab\there", "new\nline", "back\\slash \\N", "", None, 'quote " , comma', "Ünïcødé ✓"]
    table = pa.table({
        "location_key": list(range(1, len(names) + 1)),
        "location_id": [f"S{i}" for i in range(len(names))],
        "store_name": names,
        "is_inferred": [True, False, True, False, True, False, True],
    })
    warehouse.ensure_schema()
    warehouse.upsert_rows("dim_location", table, ["location_key"])
    got = warehouse.fetch_all(
        f"SELECT store_name, is_inferred FROM {_q(warehouse, 'dim_location')} ORDER BY location_key"
    )
    assert [n for n, _ in got] == names
    assert [bool(i) for _, i in got] == [True, False, True, False, True, False, True]


def _after_empty_part_file(table: pa.Table) -> pa.Table:
    """`table` as `ParquetDataset(...).read()` returns it when Spark wrote an empty part file first:
    the same rows, behind a first chunk of zero rows."""
    chunked = pa.concat_tables([table.slice(0, 0), table])
    assert [len(c) for c in chunked.column(0).chunks] == [0, table.num_rows]
    return chunked


def test_tables_with_an_empty_first_chunk_load(warehouse: WarehouseResource) -> None:
    """Dimension upsert (staging) and fact day replace both load the rows behind an empty first chunk."""
    warehouse.ensure_schema()
    customers = rows.dim_customer()
    warehouse.upsert_rows("dim_customer", _after_empty_part_file(customers), ["customer_key"])
    got = warehouse.fetch_all(
        f"SELECT customer_key, customer_id, city, segment FROM {_q(warehouse, 'dim_customer')} ORDER BY customer_key"
    )
    expected = sorted(
        zip(*(customers.column(c).to_pylist() for c in ("customer_key", "customer_id", "city", "segment")), strict=True)
    )
    assert [(int(k), i, c, s) for k, i, c, s in got] == expected

    facts = rows.fact_sales(1, [("L1", 1, 1, 2), ("L2", 2, 2, 3)])
    warehouse.replace_rows("fact_sales", _after_empty_part_file(facts), ("ingest_date", "2024-01-01"))
    assert [(s, q) for _, s, _, q in _fact_days(warehouse)] == [
        (s, Decimal(10 * q - 1)) for s, q in zip(facts["sale_line_id"].to_pylist(), facts["quantity"].to_pylist(),
                                                 strict=True)
    ]


def test_redelivered_sale_line_is_one_row_latest_delivery_wins(warehouse: WarehouseResource) -> None:
    """Day 1 delivers lines a, b; day 2 re-delivers b (changed) and adds c: each line once, b from day 2."""
    warehouse.ensure_schema()
    day1 = rows.fact_sales(1, [("a", 1, 1, 1), ("b", 2, 1, 2)])
    day2 = rows.fact_sales(2, [("b", 2, 2, 7), ("c", 3, 2, 4)])
    warehouse.replace_rows("fact_sales", day1, ("ingest_date", "2024-01-01"), key=["sale_line_id"])
    warehouse.replace_rows("fact_sales", day2, ("ingest_date", "2024-01-02"), key=["sale_line_id"])
    expected = [
        ("2024-01-01", "a", 1, Decimal("9.00")),
        ("2024-01-02", "b", 2, Decimal("69.00")),
        ("2024-01-02", "c", 3, Decimal("39.00")),
    ]
    assert _fact_days(warehouse) == expected
    # Re-running day 2 (same delivery) changes nothing.
    warehouse.replace_rows("fact_sales", day2, ("ingest_date", "2024-01-02"), key=["sale_line_id"])
    assert _fact_days(warehouse) == expected


def test_streamed_load_of_more_rows_than_one_batch(warehouse: WarehouseResource, tmp_path: Path) -> None:
    """Rows handed over as lazy Datasets over Parquet files (an empty part file first, as Spark writes
    them) load in batches of 4: every row once, the totals of the input; a duplicate key in a later
    batch fails the whole load, located by its row in the load, and nothing of it is kept."""
    small = WarehouseResource(url=warehouse.url, schema_name=warehouse.schema_name, load_batch_rows=4)
    small.ensure_schema()

    customers = rows.dim_customer()
    pq.write_table(customers, tmp_path / "customers.parquet", row_group_size=2)
    assert small.upsert_rows("dim_customer", ds.dataset(str(tmp_path / "customers.parquet")), ["customer_key"]) == 5
    assert [(k, i, c) for k, i, c, *_ in _customers(small)] == sorted(
        zip(*(customers.column(n).to_pylist() for n in ("customer_key", "customer_id", "city")), strict=True))

    lines = [(f"L{i:02d}", i % 3 + 1, i % 2 + 1, i % 5 + 1) for i in range(11)]
    facts = rows.fact_sales(1, lines)
    parts = [tmp_path / f"part-{i}.parquet" for i in range(3)]
    for part, piece in zip(parts, (facts.slice(0, 0), facts.slice(0, 6), facts.slice(6)), strict=True):
        pq.write_table(piece, part, row_group_size=3)
    day = ("ingest_date", "2024-01-01")
    loaded = small.replace_rows("fact_sales", ds.dataset([str(p) for p in parts]), day, key=["sale_line_id"])
    assert loaded == len(lines)
    got = _fact_days(small)
    assert [(s, k) for _, s, k, _ in got] == [(line[0], line[1]) for line in lines]
    assert sum(n for *_, n in got) == sum(Decimal(10 * q - 1) for *_, q in lines)

    # Line L02 again as the 10th row of the load (third batch): rejected as a whole.
    repeated = pa.concat_tables([facts.slice(0, 9), facts.slice(2, 1)])
    pq.write_table(repeated, tmp_path / "repeated.parquet", row_group_size=4)
    with pytest.raises(WarehouseDataRejected) as failure:
        small.replace_rows("fact_sales", ds.dataset(str(tmp_path / "repeated.parquet")), day, key=["sale_line_id"])
    assert (failure.value.column, failure.value.row) == ("sale_line_id", 10)
    assert _fact_days(small) == got
