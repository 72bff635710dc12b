"""Warehouse load errors on SQLite, PostgreSQL and MariaDB: a data error is a `dagster.Failure` that
forbids retries and names the table, column, row and key; the previous rows stay; an unreachable
warehouse is not a data error (its retry policy applies)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from dagster import Failure

from lake_assets.resources.warehouse import WarehouseResource, WarehouseUnavailable, is_data_error

from . import warehouse_rows as rows


def _lines(warehouse: WarehouseResource) -> list[tuple[str, str]]:
    return [
        (str(d), s)
        for d, s in warehouse.fetch_all(
            f"SELECT ingest_date, sale_line_id FROM {warehouse.qualified('fact_sales')} ORDER BY sale_line_id"
        )
    ]


def test_duplicate_line_in_a_fact_day_fails_without_retry_naming_table_column_row(
    warehouse: WarehouseResource,
) -> None:
    warehouse.ensure_schema()
    day1 = rows.fact_sales(1, [("L1", 1, 1, 1)])
    warehouse.replace_rows("fact_sales", day1, ("ingest_date", "2024-01-01"), key=["sale_line_id"])
    lines = [("L2", 1, 1, 1), ("L3", 2, 1, 2), ("L4", 2, 2, 3), ("L3", 2, 1, 5)]
    day2 = rows.fact_sales(2, lines)
    # Oracle from the fixture: the second occurrence of L3 is the offending row.
    ids = [line[0] for line in lines]
    offending = next(i for i, s in enumerate(ids, start=1) if s in ids[: i - 1])
    first = ids.index(ids[offending - 1]) + 1
    with pytest.raises(Failure) as caught:
        warehouse.replace_rows("fact_sales", day2, ("ingest_date", "2024-01-02"), key=["sale_line_id"])
    failure = caught.value
    assert failure.allow_retries is False
    message = failure.description or ""
    assert "fact_sales" in message and "sale_line_id" in message
    assert f"row {offending} of the load (sale_line_id = 'L3')" in message, message
    assert f"row {first}" in message, message
    assert {k: v.value for k, v in failure.metadata.items() if k in ("table", "column", "row")} == {
        "table": "fact_sales", "column": "sale_line_id", "row": offending,
    }
    # Nothing of the failed day was kept; day 1 is untouched.
    assert _lines(warehouse) == [("2024-01-01", "L1")]


def test_bad_value_in_a_dimension_names_column_and_row(warehouse: WarehouseResource) -> None:
    """A NULL natural key (NOT NULL column) in row 3 of a dimension load."""
    warehouse.ensure_schema()
    table = rows.dim_location()
    ids = table.column("location_id").to_pylist()
    ids[2] = None
    broken = table.set_column(1, "location_id", pa.array(ids, pa.string()))
    with pytest.raises(Failure) as caught:
        warehouse.upsert_rows("dim_location", broken, ["location_key"])
    failure = caught.value
    assert failure.allow_retries is False
    message = failure.description or ""
    assert "dim_location" in message and "location_id" in message, message
    assert "row 3 of the load (location_key = 2)" in message, message
    assert warehouse.fetch_all(f"SELECT COUNT(*) FROM {warehouse.qualified('dim_location')}") == [(0,)]


def test_arrow_type_error_is_a_data_error(warehouse: WarehouseResource) -> None:
    """A nested column no bulk path can serialise: fails at once, naming the table and column."""
    warehouse.ensure_schema()
    table = rows.dim_location().set_column(2, "store_name", pa.array([["a"], ["b"], ["c"]]))
    with pytest.raises(Failure) as caught:
        warehouse.upsert_rows("dim_location", table, ["location_key"])
    assert caught.value.allow_retries is False
    message = caught.value.description or ""
    assert "dim_location" in message and "column store_name" in message, message


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg2://postgres@127.0.0.1:1/postgres", "mysql+pymysql://root:pw-here@127.0.0.1:1/"]
)
def test_unreachable_warehouse_is_not_a_data_error(url: str) -> None:
    warehouse = WarehouseResource(url=url, schema_name="analytics")
    with pytest.raises(WarehouseUnavailable) as caught:
        warehouse.replace_rows("fact_sales", rows.fact_sales(1, [("L1", 1, 1, 1)]), ("ingest_date", "2024-01-01"))
    assert not isinstance(caught.value, Failure)
    assert not is_data_error(caught.value) and not is_data_error(caught.value.__cause__ or caught.value)
    assert "pw-here" not in str(caught.value)


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_key_twice_in_a_dimension_load_names_the_key_and_rows(backend: str, request: pytest.FixtureRequest) -> None:
    """PostgreSQL: ON CONFLICT cannot update a row twice (SQLSTATE 21000); MariaDB: duplicate in staging."""
    server = request.getfixturevalue("postgres_warehouse" if backend == "postgresql" else "mariadb_warehouse")
    warehouse = WarehouseResource(url=server.url, schema_name=server.schema)
    warehouse.ensure_schema()
    table = rows.dim_location()
    doubled = pa.concat_tables([table, table.slice(1, 1)])  # row 4 repeats row 2's key
    with pytest.raises(Failure) as caught:
        warehouse.upsert_rows("dim_location", doubled, ["location_key"])
    assert caught.value.allow_retries is False
    key = table.column("location_key")[1].as_py()
    assert f"row 4 of the load (location_key = {key}); the same key in row 2" in (caught.value.description or "")
