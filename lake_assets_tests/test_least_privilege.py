"""Least privilege, tested as the logins themselves.

PostgreSQL: the pipeline's login owns its schema and nothing else (no CREATE on the database, no
superuser) and still loads the star schema, its views, grants and row-level security; a BI role reads
its regions and can change nothing. MariaDB: the pipeline's login has its database (WITH GRANT OPTION,
to pass SELECT on the views on) and SELECT on `mysql.user` (to find the configured BI users), nothing
else; a restricted BI user reads its regions through the views and nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from lake_assets.config import RowLevelSecurityConfig
from lake_assets.resources.warehouse import WarehouseResource
from lake_assets.resources.warehouse_security import recreate_views_and_security, refresh_materialized_views

from . import warehouse_rows as rows
from .conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, require_listening

PASSWORD = "least-priv-pw"


@pytest.fixture
def roles() -> Iterator[tuple[str, str, str]]:
    """(pipeline role, BI role, schema): the schema exists and belongs to the pipeline role."""
    require_listening("PostgreSQL", 5432)
    tag = uuid.uuid4().hex[:8]
    etl, bi, schema = f"lake_etl_{tag}", f"bi_east_{tag}", f"lake_lp_{tag}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {etl} LOGIN PASSWORD '{PASSWORD}' NOSUPERUSER NOCREATEDB NOCREATEROLE"))
        conn.execute(text(f"CREATE ROLE {bi} LOGIN PASSWORD '{PASSWORD}'"))
        conn.execute(text(f"CREATE SCHEMA {schema} AUTHORIZATION {etl}"))
    yield etl, bi, schema
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        for role in (bi, etl):
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
    admin.dispose()


def _login(role: str) -> str:
    return make_url(PG_ADMIN_URL).set(username=role, password=PASSWORD).render_as_string(hide_password=False)


def _as(role: str, sql: str) -> list[tuple]:
    engine = create_engine(_login(role))
    try:
        with engine.begin() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_pipeline_owns_only_its_schema_and_bi_role_only_reads(roles: tuple[str, str, str]) -> None:
    etl, bi, schema = roles
    with pytest.raises(DBAPIError, match="permission denied"):  # the pipeline role's limits, as set up
        _as(etl, f"CREATE SCHEMA other_{schema}")
    warehouse = WarehouseResource(url=_login(etl).replace(f":{PASSWORD}", ""), password=PASSWORD, schema_name=schema)
    rows.load_star(warehouse)  # L1, L3 sold in S1 (MA); L2, L4 in S2 (OR)
    result = recreate_views_and_security(warehouse, RowLevelSecurityConfig(enabled=True, roles={bi: ["MA"]}))
    assert result["roles_granted"] == bi
    refresh_materialized_views(warehouse)
    assert warehouse.fetch_all(f"SELECT COUNT(*) FROM {schema}.fact_sales") == [(4,)]

    # The BI role reads its region, through the views and (filtered) the tables the views read.
    assert _as(bi, f"SELECT location_id FROM {schema}.v_sales_by_location") == [("S1",)]
    assert _as(bi, f"SELECT sale_line_id FROM {schema}.fact_sales ORDER BY 1") == [("L1",), ("L3",)]
    # ... and can change nothing, create nothing, and not read the unfiltered materialized views.
    for statement in (
        f"DELETE FROM {schema}.fact_sales",
        f"UPDATE {schema}.dim_location SET region = 'MA'",
        f"INSERT INTO {schema}.bi_region_access (grantee, region) VALUES ('{bi}', '*')",
        f"TRUNCATE {schema}.fact_sales",
        f"CREATE TABLE {schema}.mine (x int)",
        f"SELECT * FROM {schema}.mv_sales_daily_location",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            _as(bi, statement)
    assert warehouse.fetch_all(f"SELECT COUNT(*) FROM {schema}.fact_sales") == [(4,)]



@pytest.fixture
def mariadb_logins() -> Iterator[tuple[str, str, str]]:
    """(pipeline user, BI user, database) on MariaDB, with only the privileges docs/reliability.md lists."""
    require_listening("MariaDB", 3306)
    tag = uuid.uuid4().hex[:8]
    etl, bi, database = f"lake_etl_{tag}", f"bi_east_{tag}", f"lake_lp_{tag}"
    admin = create_engine(MARIADB_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{database}`"))
        for user in (etl, bi):
            conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'"))
        conn.execute(text(f"GRANT ALL ON `{database}`.* TO '{etl}'@'%' WITH GRANT OPTION"))
        conn.execute(text(f"GRANT SELECT ON mysql.user TO '{etl}'@'%'"))
    yield etl, bi, database
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        for user in (etl, bi):
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
    admin.dispose()


def _mariadb_as(user: str, sql: str) -> list[tuple]:
    engine = create_engine(make_url(MARIADB_ADMIN_URL).set(username=user, password=PASSWORD))
    try:
        with engine.begin() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_mariadb_pipeline_has_only_its_database_and_bi_user_only_reads_views(
    mariadb_logins: tuple[str, str, str],
) -> None:
    etl, bi, database = mariadb_logins
    with pytest.raises(DBAPIError, match="denied"):  # the pipeline login's limits, as set up
        _mariadb_as(etl, f"CREATE DATABASE `other_{database}`")
    url = make_url(MARIADB_ADMIN_URL).set(username=etl).render_as_string(hide_password=False)
    warehouse = WarehouseResource(url=url, password=PASSWORD, schema_name=database)
    rows.load_star(warehouse)  # L1, L3 sold in S1 (MA); L2, L4 in S2 (OR)
    result = recreate_views_and_security(warehouse, RowLevelSecurityConfig(enabled=True, roles={bi: ["MA"]}))
    assert result["roles_granted"] == bi
    assert warehouse.fetch_all(f"SELECT COUNT(*) FROM `{database}`.fact_sales") == [(4,)]

    # The BI user reads its region through the views, and only the views.
    assert _mariadb_as(bi, f"SELECT location_id FROM `{database}`.v_sales_by_location") == [("S1",)]
    assert _mariadb_as(bi, f"SELECT sale_line_id FROM `{database}`.v_fact_sales_visible ORDER BY 1") == [
        ("L1",), ("L3",)]
    for statement in (
        f"SELECT * FROM `{database}`.fact_sales",
        f"DELETE FROM `{database}`.v_fact_sales_visible",
        f"UPDATE `{database}`.dim_location SET region = 'MA'",
        f"INSERT INTO `{database}`.bi_region_access (grantee, region) VALUES ('{bi}', '*')",
        f"CREATE TABLE `{database}`.mine (x int)",
        f"DROP VIEW `{database}`.v_sales_by_location",
    ):
        with pytest.raises(DBAPIError, match="denied"):
            _mariadb_as(bi, statement)
    assert warehouse.fetch_all(f"SELECT COUNT(*) FROM `{database}`.fact_sales") == [(4,)]
