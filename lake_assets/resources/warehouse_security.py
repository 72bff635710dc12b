"""Row-level security for BI roles, and the PostgreSQL materialized-view refresh.

The config (`warehouse.row_level_security`) maps each BI role to the store regions it may see. The
mapping is written to `bi_region_access` on every load (one transaction), then:

* PostgreSQL: RLS policies on `fact_sales` and `dim_location` keep the rows whose store region is
  granted to `current_user` ('*' = all); the policy on `dim_customer` keeps the customer versions
  whose own region (the customer's address) is granted. A customer's region is their own attribute:
  granting by where they bought would show one customer to every region they ever shopped in. The
  pipeline's own role owns the tables and is not subject to them. BI views are `security_invoker`,
  so the policies apply through them. Roles that exist get SELECT on the tables and v_* views;
  materialized views (computed as their owner, so unfiltered) only go to roles granted '*'.
* MySQL/MariaDB (no RLS): every v_* view reads facts through `v_fact_sales_visible` and customers
  through `v_dim_customer_visible`, which filter on the session's login (`USER()`) by the same rules.
  Restricted users get SELECT on the v_* views only.
* Roles/users are never created here (that needs passwords and admin rights): a configured role
  that does not exist is reported, not created.
"""

from __future__ import annotations

from typing import Any

from lake_assets.config import RowLevelSecurityConfig
from lake_assets.resources.warehouse import WarehouseResource

SECURED_TABLES = ("fact_sales", "dim_location", "dim_customer")
BI_TABLES = ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales", "bi_region_access")
MATERIALIZED_VIEWS = ("mv_sales_daily_location", "mv_sales_monthly_category")
_REGION_POLICY = {
    "fact_sales": "EXISTS (SELECT 1 FROM {schema}dim_location l JOIN {schema}bi_region_access a "
    "ON a.region IN (l.region, '*') WHERE l.location_key = {schema}fact_sales.location_key "
    "AND a.grantee IN (current_user, '*'))",
    "dim_location": "EXISTS (SELECT 1 FROM {schema}bi_region_access a WHERE a.grantee IN (current_user, '*') "
    "AND a.region IN ({schema}dim_location.region, '*'))",
    "dim_customer": "EXISTS (SELECT 1 FROM {schema}bi_region_access a WHERE a.grantee IN (current_user, '*') "
    "AND a.region IN ({schema}dim_customer.region, '*'))",
}


def _view_names(warehouse: WarehouseResource) -> list[str]:
    names = []
    for stmt in warehouse.render_sql_file("views.sql"):
        words = stmt.replace("(", " ").split()
        if len(words) > 3 and words[0] == "CREATE" and "VIEW" in words[:6] and "MATERIALIZED" not in words[:3]:
            name = words[words.index("VIEW") + 1]
            names.append(name.split(".")[-1].strip('"`'))
    return names


def recreate_views_and_security(warehouse: WarehouseResource, rls: RowLevelSecurityConfig) -> dict[str, Any]:
    """Re-create the BI views and apply security in ONE transaction: in PostgreSQL a restricted role
    never sees a view without its grant (DROP VIEW drops grants). MySQL commits each DDL statement
    implicitly, so there the views are briefly re-granted after re-creation."""
    with warehouse.connect_checked() as conn, conn.begin():
        statements = warehouse.render_sql_file("views.sql")
        for stmt in statements:
            conn.exec_driver_sql(stmt.rstrip(";"))
        return {"statements": len(statements), **_apply(conn, warehouse, rls)}


def apply_row_level_security(warehouse: WarehouseResource, rls: RowLevelSecurityConfig) -> dict[str, Any]:
    """Write the role -> regions mapping, (PostgreSQL) the policies, and the grants. One transaction."""
    with warehouse.connect_checked() as conn, conn.begin():
        return _apply(conn, warehouse, rls)


def _apply(conn: Any, warehouse: WarehouseResource, rls: RowLevelSecurityConfig) -> dict[str, Any]:
    if warehouse.dialect == "sqlite":
        return {"row_level_security": "not available in SQLite (single-user file)"}
    quote = warehouse.engine.dialect.identifier_preparer.quote
    prefix = warehouse.qualified("x")[: -len(quote("x"))]
    access = warehouse.qualified("bi_region_access")
    me = conn.exec_driver_sql("SELECT current_user" if warehouse.dialect == "postgresql"
                              else "SELECT SUBSTRING_INDEX(USER(), '@', 1)").scalar()
    rows: list[tuple[str, str]] = []
    if rls.enabled:
        rows = [(role, region) for role, regions in rls.roles.items() for region in regions]
        rows.append((str(me), "*"))  # the pipeline itself (owner; also reads the views in checks)
    else:
        rows = [("*", "*")]
    conn.exec_driver_sql(f"DELETE FROM {access}")
    marker = "%s"
    conn.exec_driver_sql(f"INSERT INTO {access} (grantee, region) VALUES ({marker}, {marker})", list(set(rows)))
    present = _existing_roles(conn, warehouse, list(rls.roles))
    views = _view_names(warehouse)
    if warehouse.dialect == "postgresql":
        for table in SECURED_TABLES:
            target = warehouse.qualified(table)
            conn.exec_driver_sql(f"DROP POLICY IF EXISTS bi_region ON {target}")
            if rls.enabled:
                conn.exec_driver_sql(f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY")
                using = _REGION_POLICY[table].format(schema=prefix)
                conn.exec_driver_sql(f"CREATE POLICY bi_region ON {target} FOR SELECT USING ({using})")
            else:
                conn.exec_driver_sql(f"ALTER TABLE {target} DISABLE ROW LEVEL SECURITY")
        for role in present:
            grantee = quote(role)
            if warehouse.schema_name:
                conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quote(warehouse.schema_name)} TO {grantee}")
            for name in (*BI_TABLES, *views):
                conn.exec_driver_sql(f"GRANT SELECT ON {warehouse.qualified(name)} TO {grantee}")
            for name in MATERIALIZED_VIEWS:
                verb = "GRANT SELECT ON {} TO {}" if "*" in rls.roles[role] else "REVOKE ALL ON {} FROM {}"
                conn.exec_driver_sql(verb.format(warehouse.qualified(name), grantee))
    else:
        for role, hosts in present.items():
            names = list(views) if "*" not in rls.roles[role] else [*BI_TABLES, *views]
            for host in hosts:
                # role is a validated identifier, host comes from mysql.user; the driver formats
                # the statement with %, so a '%' host is escaped.
                account = f"'{role}'@'{host}'".replace("%", "%%")
                for name in names:
                    conn.exec_driver_sql(f"GRANT SELECT ON {warehouse.qualified(name)} TO {account}")
    missing = sorted(set(rls.roles) - set(present))
    return {
        "row_level_security": "enabled" if rls.enabled else "disabled (every role sees every region)",
        "roles_granted": ", ".join(sorted(present)) or "none",
        "roles_missing": ", ".join(missing) or "none",
    }


def _existing_roles(conn: Any, warehouse: WarehouseResource, roles: list[str]) -> dict[str, list[str]]:
    """{role: [hosts]} of the configured roles that exist (PostgreSQL: hosts is empty)."""
    if not roles:
        return {}
    found: dict[str, list[str]] = {}
    if warehouse.dialect == "postgresql":
        for (name,) in conn.exec_driver_sql("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (roles,)):
            found[name] = []
    else:
        placeholders = ", ".join(["%s"] * len(roles))
        query = f"SELECT User, Host FROM mysql.user WHERE User IN ({placeholders})"
        for name, host in conn.exec_driver_sql(query, tuple(roles)):
            found.setdefault(name, []).append(host)
    return found


def refresh_materialized_views(warehouse: WarehouseResource) -> list[str]:
    """PostgreSQL: REFRESH MATERIALIZED VIEW CONCURRENTLY (readers are not blocked), one per view."""
    if warehouse.dialect != "postgresql":
        return []
    with warehouse.connect_checked() as conn, conn.begin():
        for name in MATERIALIZED_VIEWS:
            conn.exec_driver_sql(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {warehouse.qualified(name)}")
    return list(MATERIALIZED_VIEWS)
