"""Row-level security: a BI role configured for regions MA and TX sees only the sales of MA's store (no
store is in TX) and the customer versions whose own region is MA or TX, connecting as itself.

PostgreSQL: RLS policies (through security_invoker views too). MariaDB: the view-based equivalent
(views filtered on the session login; no access to the base tables). Roles are created here with
unique names and dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from lake_assets.config import RowLevelSecurityConfig
from lake_assets.resources.warehouse import WarehouseResource
from lake_assets.resources.warehouse_security import recreate_views_and_security, refresh_materialized_views

from . import warehouse_rows as rows
from .conftest import Warehouse

PASSWORD = "bi-test-password"


def _prepare(url: str, schema: str, role: str) -> WarehouseResource:
    warehouse = WarehouseResource(url=url, schema_name=schema)
    # L1, L3 sold in S1 (MA); L2, L4 in S2 (OR). Customer versions: 1 = C1 in MA, 2 = C2 in TX (current),
    # 3 = C1 in CO (current), 4 = C9 inferred (no region), -1 unknown.
    rows.load_star(warehouse)
    config = RowLevelSecurityConfig(enabled=True, roles={role: ["MA", "TX"], "bi_nobody_configured": ["OR"]})
    recreate_views_and_security(warehouse, config)
    result = recreate_views_and_security(warehouse, config)  # the next load: views dropped, re-granted
    assert result["roles_granted"] == role and result["roles_missing"] == "bi_nobody_configured"
    refresh_materialized_views(warehouse)
    return warehouse


def _as(url: str, role: str, sql: str) -> list[tuple]:
    login = make_url(url).set(username=role, password=PASSWORD)
    engine = create_engine(login)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture
def pg_role(postgres_warehouse: Warehouse) -> Iterator[str]:
    role = f"bi_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_warehouse.url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"))
    yield role
    with admin.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))
    admin.dispose()


@pytest.fixture
def mariadb_user(mariadb_warehouse: Warehouse) -> Iterator[str]:
    user = f"bi_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(mariadb_warehouse.url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'"))
    yield user
    with admin.begin() as conn:
        conn.execute(text(f"DROP USER '{user}'@'%'"))
    admin.dispose()


def _assert_customers_of_granted_regions(query: Callable[[str], list[tuple]]) -> None:
    """What the MA+TX role reads of customers through the BI views (`{s}`: the schema)."""
    # Current customers: C2 (TX); C1's current version is in CO, C9 has no region yet.
    assert query("SELECT customer_id, region FROM {s}.v_current_customers") == [("C2", "TX")]
    # Its sales by segment still add up to its sales (L1 19.00 by C1 in MA, vip; L3 9.00 by C1 in CO):
    # the sale of a customer version it may not see counts under no segment.
    segments = query("SELECT segment, customers, net_amount FROM {s}.v_sales_by_customer_segment")
    assert sorted(segments, key=str) == sorted([("vip", 1, Decimal("19.00")), (None, 0, Decimal("9.00"))], key=str)


def test_postgres_rls_hides_other_regions(postgres_warehouse: Warehouse, pg_role: str) -> None:
    s = postgres_warehouse.schema
    _prepare(postgres_warehouse.url, s, pg_role)
    url = postgres_warehouse.url
    assert _as(url, pg_role, f"SELECT sale_line_id FROM {s}.fact_sales ORDER BY 1") == [("L1",), ("L3",)]
    assert _as(url, pg_role, f"SELECT location_id FROM {s}.dim_location") == [("S1",)]
    daily = _as(url, pg_role, f"SELECT full_date, net_amount FROM {s}.v_sales_daily ORDER BY 1")
    assert [n for _, n in daily] == [Decimal("19.00"), Decimal("9.00")]
    by_attributes = _as(url, pg_role, f"SELECT full_date, net_amount FROM {s}.v_sales_daily_by_order_attributes "
                                      "ORDER BY 1")
    assert by_attributes == daily  # no degenerate columns here: one row per day, filtered the same way
    _assert_customers_of_granted_regions(lambda sql: _as(url, pg_role, sql.format(s=s)))
    assert _as(url, pg_role, f"SELECT customer_key FROM {s}.dim_customer ORDER BY 1") == [(1,), (2,)]
    # The owner (the pipeline) still sees every region.
    admin = WarehouseResource(url=url, schema_name=s)
    assert admin.fetch_all(f"SELECT COUNT(*) FROM {s}.fact_sales") == [(4,)]
    assert admin.fetch_all(f"SELECT COUNT(*) FROM {s}.dim_customer") == [(5,)]
    # Materialized views are not filtered by RLS, so a restricted role cannot read them.
    with pytest.raises(DBAPIError, match="permission denied"):
        _as(url, pg_role, f"SELECT * FROM {s}.mv_sales_daily_location")


def test_mariadb_view_based_security_hides_other_regions(mariadb_warehouse: Warehouse, mariadb_user: str) -> None:
    s = mariadb_warehouse.schema
    _prepare(mariadb_warehouse.url, s, mariadb_user)
    url = mariadb_warehouse.url
    visible = _as(url, mariadb_user, f"SELECT sale_line_id FROM {s}.v_fact_sales_visible ORDER BY 1")
    assert visible == [("L1",), ("L3",)]
    daily = _as(url, mariadb_user, f"SELECT full_date, net_amount FROM {s}.v_sales_daily ORDER BY 1")
    assert [n for _, n in daily] == [Decimal("19.00"), Decimal("9.00")]
    by_attributes = _as(url, mariadb_user, f"SELECT full_date, net_amount FROM "
                                           f"{s}.v_sales_daily_by_order_attributes ORDER BY 1")
    assert by_attributes == daily  # no degenerate columns here: one row per day, filtered the same way
    by_location = _as(url, mariadb_user, f"SELECT location_id FROM {s}.v_sales_by_location")
    assert by_location == [("S1",)]
    _assert_customers_of_granted_regions(lambda sql: _as(url, mariadb_user, sql.format(s=s)))
    # The base tables are not granted: the views are the only way in.
    for table in ("fact_sales", "dim_customer"):
        with pytest.raises(DBAPIError, match="denied"):
            _as(url, mariadb_user, f"SELECT * FROM {s}.{table}")
    # The pipeline's own login sees everything through the same views.
    admin = WarehouseResource(url=url, schema_name=s)
    assert admin.fetch_all(f"SELECT COUNT(*) FROM {s}.v_fact_sales_visible") == [(4,)]
