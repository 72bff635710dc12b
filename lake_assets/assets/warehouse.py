"""warehouse/<table>: the curated star schema loaded into the SQL warehouse, plus BI views.

Dimensions are upserted by surrogate key, fact_sales replaced one ingest day at a time (delete the
day and every row of any day whose sale_line_id the day delivers again, then bulk insert), each in
one transaction (see WarehouseIOManager). fact_sales depends on the four warehouse dimensions: when
one of them fails (or its blocking check does), the day's facts are not loaded, so the warehouse
never holds facts whose dimension rows did not arrive. Data errors fail at once; connection errors
are retried by the retry policy (see WarehouseResource). The pipeline creates
and migrates the tables itself (`lake_assets/sql/<dialect>/tables.sql`). After the tables, `warehouse/bi_views`
re-creates the BI views, applies row-level security for the configured BI roles and, in
PostgreSQL, refreshes the materialized views CONCURRENTLY.

PII never reaches a BI role: the rows about to be loaded (the whole curated dimension, or the fact
day) are scanned for e-mails, SSNs and card numbers before the load starts. Scan and load read the
lake's files in record batches (a lazy Dataset), so neither holds the table or the day in memory. A finding fails the
blocking check `no_pii_in_warehouse` and the step (no retry), so nothing is written; the check
passes only for rows that were scanned clean, and its evaluation follows the load it vouches for.
"""


import pyarrow as pa
import pyarrow.dataset as ds
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    Output,
    asset,
)

from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.pools import STAR_SCHEMA_POOL
from lake_assets.assets.retry import retry_policy
from lake_assets.checks.pii_scan import describe_findings, scan_arrow
from lake_assets.config import PipelineConfig
from lake_assets.io_managers.warehouse import PARTITION_COLUMN_KEY, PRIMARY_KEY_KEY
from lake_assets.resources.warehouse import LOAD_BATCH_ROWS, WarehouseResource
from lake_assets.resources.warehouse_security import recreate_views_and_security, refresh_materialized_views
from spark.scd2 import CHANGED_AT

WAREHOUSE_DIMENSIONS = ("dim_customer", "dim_product", "dim_location", "dim_date")
WAREHOUSE_TABLES = (*WAREHOUSE_DIMENSIONS, "fact_sales")
PRIMARY_KEYS = {"dim_customer": "customer_key", "dim_product": "product_key", "dim_location": "location_key",
                "dim_date": "date_key", "fact_sales": "sale_line_id"}
PII_CHECK = "no_pii_in_warehouse"
# Bookkeeping the lake keeps for the next merge; the warehouse tables do not have these columns.
LAKE_ONLY_COLUMNS = (CHANGED_AT,)


def _warehouse_kind(url: str) -> str:
    return "postgres" if url.startswith("postgres") else "mysql" if "mysql" in url else "sqlite"


def _pii_scan(table: str, curated: ds.Dataset) -> tuple[AssetCheckResult, Failure | None]:
    """The check result for the rows about to be loaded, and the step failure when they hold PII.
    Scanned one record batch at a time; the counts per column and kind are summed over the batches."""
    found: dict[str, dict[str, int]] = {}
    scanned = 0
    for batch in curated.to_batches(batch_size=LOAD_BATCH_ROWS, batch_readahead=1, fragment_readahead=1):
        scanned += batch.num_rows
        for column, kinds in scan_arrow(pa.Table.from_batches([batch])).items():
            for kind, count in kinds.items():
                found.setdefault(column, {})[kind] = found.get(column, {}).get(kind, 0) + count
    findings = describe_findings(found)
    check = AssetCheckResult(check_name=PII_CHECK, passed=not found,
                             metadata={"rows_scanned": scanned, "findings": findings or "none"})
    if not found:
        return check, None
    return check, Failure(
        description=f"warehouse/{table}: PII in the rows about to be loaded, nothing was loaded: {findings} "
        "(values not shown). Mask the column(s) before curated (masking.columns, masking.entities, or the "
        "extra column's `mask`) and re-run.",
        metadata={"table": table, "columns": ", ".join(sorted(found))},
        allow_retries=False,
    )


def _build_warehouse_table(config: PipelineConfig, table: str) -> AssetsDefinition:
    partitioned = table == "fact_sales"

    @asset(
        key=["warehouse", table],
        pool=STAR_SCHEMA_POOL,
        group_name="warehouse",
        ins={"curated": AssetIn(key=["curated", table])},
        # Facts after their dimensions: a failed dimension load skips the day's fact load.
        deps=[AssetKey(["warehouse", d]) for d in WAREHOUSE_DIMENSIONS] if partitioned else None,
        partitions_def=daily_partitions(config) if partitioned else None,
        io_manager_key="warehouse_io_manager",
        kinds={"sql", _warehouse_kind(config.warehouse.url)},
        metadata={PRIMARY_KEY_KEY: PRIMARY_KEYS[table]}
        | ({PARTITION_COLUMN_KEY: "ingest_date"} if partitioned else {}),
        retry_policy=retry_policy(config.retries),
        check_specs=[AssetCheckSpec(PII_CHECK, asset=["warehouse", table], blocking=True,
                                    description="no e-mail, SSN or card number in the rows loaded; "
                                    "scanned before the load, which a finding stops")],
        description=f"curated/{table} in the warehouse"
        + (
            ", replaced one ingest_date at a time (a re-delivered sale_line_id moves to the latest day), "
            "after the warehouse dimensions."
            if partitioned
            else ", upserted by surrogate key on each load."
        ),
    )
    def _warehouse_table(curated: ds.Dataset):
        curated = curated.replace_schema(pa.schema([f for f in curated.schema if f.name not in LAKE_ONLY_COLUMNS]))
        check, failure = _pii_scan(table, curated)
        if failure:
            # The failed evaluation is recorded, then the step fails before the IO manager loads anything.
            yield check
            raise failure
        yield Output(curated)
        yield check

    return _warehouse_table


def _build_bi_views(config: PipelineConfig) -> AssetsDefinition:
    @asset(
        key=["warehouse", "bi_views"],
        pool=STAR_SCHEMA_POOL,
        group_name="warehouse",
        deps=[AssetKey(["warehouse", t]) for t in WAREHOUSE_TABLES],
        kinds={"sql"},
        # View DDL and the materialized-view refresh talk to the warehouse: a dropped connection retries.
        retry_policy=retry_policy(config.retries),
        description="BI views (sales by day / month+category / product / location / customer segment, "
        "current customers) re-created after each load; row-level security for the BI roles of "
        "warehouse.row_level_security; PostgreSQL materialized views refreshed CONCURRENTLY.",
    )
    def bi_views(warehouse: WarehouseResource) -> MaterializeResult:
        warehouse.ensure_schema()
        views_and_security = recreate_views_and_security(warehouse, config.warehouse.row_level_security)
        refreshed = refresh_materialized_views(warehouse)
        return MaterializeResult(
            metadata={"materialized_views_refreshed": ", ".join(refreshed) or "none", **views_and_security}
        )

    return bi_views


def build_warehouse_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [*(_build_warehouse_table(config, t) for t in WAREHOUSE_TABLES), _build_bi_views(config)]
