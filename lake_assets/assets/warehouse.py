"""warehouse/<table>: the curated star schema loaded into the SQL warehouse, plus BI views.

Dimensions are replaced whole, fact_sales one ingest day at a time, each in one transaction (see
WarehouseIOManager). After the tables, `warehouse/bi_views` re-creates the BI views. Every table is
scanned for e-mails, SSNs and card numbers after the load; finding any fails the check.
"""


import pyarrow as pa
from sqlalchemy import text
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    Output,
    RetryPolicy,
    asset,
)

from lake_assets.assets.partitions import daily_partitions
from lake_assets.checks.pii_scan import scan_rows
from lake_assets.config import PipelineConfig
from lake_assets.io_managers.warehouse import PARTITION_COLUMN_KEY
from lake_assets.resources.warehouse import WarehouseResource

WAREHOUSE_TABLES = ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales")
PII_SCAN_ROW_LIMIT = 200_000


def _pii_check(warehouse: WarehouseResource, table: str, where: tuple[str, str] | None) -> AssetCheckResult:
    sql = f"SELECT * FROM {warehouse.qualified(table)}"
    params: dict[str, str] = {}
    if where:
        sql += f" WHERE {warehouse.engine.dialect.identifier_preparer.quote(where[0])} = :value"
        params = {"value": where[1]}
    with warehouse.connect_checked() as conn:
        result = conn.execute(text(sql), params)
        columns = list(result.keys())
        found = scan_rows(columns, result.fetchmany(PII_SCAN_ROW_LIMIT))
    return AssetCheckResult(
        check_name="no_pii_in_warehouse",
        passed=not found,
        metadata={"findings": ", ".join(f"{c}: {k}" for c, k in sorted(found.items())) or "none"},
    )


def _build_warehouse_table(config: PipelineConfig, table: str) -> AssetsDefinition:
    partitioned = table == "fact_sales"

    @asset(
        key=["warehouse", table],
        group_name="warehouse",
        ins={"curated": AssetIn(key=["curated", table])},
        partitions_def=daily_partitions(config) if partitioned else None,
        io_manager_key="warehouse_io_manager",
        kinds={"sql", "postgres" if config.warehouse.url.startswith("postgres") else "mysql" if "mysql" in config.warehouse.url else "sqlite"},
        metadata={PARTITION_COLUMN_KEY: "ingest_date"} if partitioned else {},
        retry_policy=RetryPolicy(max_retries=config.retries.max, delay=config.retries.delay_seconds),
        check_specs=[AssetCheckSpec("no_pii_in_warehouse", asset=["warehouse", table], blocking=True)],
        description=f"curated/{table} in the warehouse"
        + (", replaced one ingest_date at a time." if partitioned else ", replaced whole on each load."),
    )
    def _warehouse_table(context: AssetExecutionContext, warehouse: WarehouseResource, curated: pa.Table):
        yield Output(curated)
        where = ("ingest_date", context.partition_key) if partitioned else None
        yield _pii_check(warehouse, table, where)

    return _warehouse_table


def _build_bi_views(config: PipelineConfig) -> AssetsDefinition:
    @asset(
        key=["warehouse", "bi_views"],
        group_name="warehouse",
        deps=[AssetKey(["warehouse", t]) for t in WAREHOUSE_TABLES],
        kinds={"sql"},
        description="BI views (sales by day / month+category / product / location / customer segment, "
        "current customers), re-created after each load.",
    )
    def bi_views(warehouse: WarehouseResource) -> MaterializeResult:
        statements = warehouse.run_sql_file("views.sql")
        return MaterializeResult(metadata={"statements": statements})

    return bi_views


def build_warehouse_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [*(_build_warehouse_table(config, t) for t in WAREHOUSE_TABLES), _build_bi_views(config)]
