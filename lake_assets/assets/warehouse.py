"""warehouse/<table>: the curated star schema loaded into the SQL warehouse, plus BI views.

Dimensions are upserted by surrogate key (see WarehouseIOManager). fact_sales is loaded per run day:
the sale dates that the day's curated run (or a later one) committed in the lake are replaced by the
lake's rows of those dates (a run over a range of days loads once, for its first day: the dates its
later days committed are among those) (delete those date_keys and any row whose sale_line_id is loaded, then
bulk insert), in one transaction, so the warehouse mirrors the lake's sale-date partitions.
fact_sales depends on the four warehouse dimensions: when one of them fails (or its blocking check
does), the day's facts are not loaded, so the warehouse never holds facts whose dimension rows did not
arrive. Data errors fail at once; connection errors are retried by the retry policy (see
WarehouseResource). The pipeline creates and migrates the tables itself
(`lake_assets/resources/warehouse_schema.py`). After the tables, `warehouse/bi_views`
re-creates the BI views, applies row-level security for the configured BI roles and, in
PostgreSQL, refreshes the materialized views CONCURRENTLY.

PII never reaches a BI role: the rows about to be loaded (the whole curated dimension, or the fact
sale dates of the load) are scanned for e-mails, SSNs and card numbers. A dimension is scanned before
its load starts; the fact's sale dates are scanned beside their load, in one transaction that commits
only after the scan found nothing. Scan and load read the lake's files in record batches (a lazy
Dataset), so neither holds the table or the sale dates in memory. A finding fails the blocking check
`no_pii_in_warehouse` and the step (no retry), so nothing is kept; the check passes only for rows that
were scanned clean, and its evaluation follows the load it vouches for.
"""

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.dataset as ds
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    Output,
    asset,
)

from lake_assets.assets.fact_partitions import FACT_KEY, SALE_DATE, sale_dates_since
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions, run_days
from lake_assets.assets.pools import STAR_SCHEMA_POOL
from lake_assets.assets.retry import retry_policy
from lake_assets.checks.pii_scan import describe_findings, scan_arrow
from lake_assets.config import PipelineConfig
from lake_assets.dialects import sql_dialect
from lake_assets.io_managers.warehouse import PRIMARY_KEY_KEY
from lake_assets.parquet_stream import stream_batches
from lake_assets.resources.lake_storage import LakeStorage
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
    """The UI's kind tag of the warehouse (Dagster names PostgreSQL's icon `postgres`)."""
    dialect = sql_dialect(url)
    return "postgres" if dialect == "postgresql" else dialect


def _pii_scan(table: str, curated: ds.Dataset) -> tuple[AssetCheckResult, Failure | None]:
    """The check result for the rows about to be loaded, and the step failure when they hold PII.
    Scanned one decoded batch at a time (not a whole row group); the counts per column and kind are
    summed over the batches."""
    found: dict[str, dict[str, int]] = {}
    scanned = 0
    for batch in stream_batches(curated, batch_rows=LOAD_BATCH_ROWS):
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
    @asset(
        key=["warehouse", table],
        pool=STAR_SCHEMA_POOL,
        group_name="warehouse",
        ins={"curated": AssetIn(key=["curated", table])},
        io_manager_key="warehouse_io_manager",
        kinds={"sql", _warehouse_kind(config.warehouse.url)},
        metadata={PRIMARY_KEY_KEY: PRIMARY_KEYS[table]},
        retry_policy=retry_policy(config.retries),
        check_specs=[AssetCheckSpec(PII_CHECK, asset=["warehouse", table], blocking=True,
                                    description="no e-mail, SSN or card number in the rows loaded; "
                                    "scanned before the load, which a finding stops")],
        description=f"curated/{table} in the warehouse, upserted by surrogate key on each load.",
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


def _build_warehouse_facts(config: PipelineConfig) -> AssetsDefinition:
    @asset(
        key=["warehouse", "fact_sales"],
        pool=STAR_SCHEMA_POOL,
        group_name="warehouse",
        # Facts after their dimensions: a failed dimension load skips the day's fact load.
        deps=[AssetKey(FACT_KEY), *(AssetKey(["warehouse", d]) for d in WAREHOUSE_DIMENSIONS)],
        partitions_def=daily_partitions(config),
        backfill_policy=DAILY_BACKFILL_POLICY,
        kinds={"sql", _warehouse_kind(config.warehouse.url)},
        retry_policy=retry_policy(config.retries),
        check_specs=[AssetCheckSpec(PII_CHECK, asset=["warehouse", "fact_sales"], blocking=True,
                                    description="no e-mail, SSN or card number in the rows loaded; "
                                    "scanned beside the load, which commits only when none was found")],
        description="curated/fact_sales in the warehouse, after the warehouse dimensions. The run day's load "
        "replaces, in one transaction, every sale date (date_key) that the day's curated run (or a later "
        "one) wrote in the lake, with the lake's rows of those dates; a run over several days loads once, "
        "from its first day.",
    )
    def fact_sales(context: AssetExecutionContext, lake: LakeStorage, warehouse: WarehouseResource):
        # A run over several days loads once: what its first day's run or a later one committed covers
        # every day of the range.
        days = run_days(context)
        dates = sale_dates_since(lake, days[0])
        if not dates:
            yield MaterializeResult(metadata={"dagster/row_count": 0, "sale_dates_replaced": 0})
            yield AssetCheckResult(check_name=PII_CHECK, passed=True,
                                   metadata={"rows_scanned": 0, "findings": "none"})
            return
        rows = lake.read_dataset_partitions(FACT_KEY, dates)
        rows = rows.replace_schema(
            pa.schema([f for f in rows.schema if f.name not in (*LAKE_ONLY_COLUMNS, SALE_DATE)]))
        warehouse.ensure_schema()
        date_keys = [int(d.replace("-", "")) for d in dates]
        # The PII scan reads the rows beside the load (Arrow's regex kernels leave the GIL, and the server
        # parses the COPY meanwhile); the load commits only once the scan found nothing, and a finding
        # rolls all of it back.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pii-scan") as pool:
            scanning = pool.submit(_pii_scan, "fact_sales", rows)

            def found_nothing() -> None:
                _, failure = scanning.result()
                if failure is not None:
                    raise failure

            try:
                loaded = warehouse.replace_rows("fact_sales", rows, ("date_key", date_keys),
                                                key=[PRIMARY_KEYS["fact_sales"]], before_commit=found_nothing)
            except Exception:
                check, failure = scanning.result()
                if failure is None:
                    raise
                yield check  # the failed evaluation is recorded; nothing of the load was kept
                raise failure from None
        check, _ = scanning.result()
        yield MaterializeResult(metadata={
            "dagster/row_count": loaded, "sale_dates_replaced": len(dates),
            "first_sale_date": dates[0], "last_sale_date": dates[-1], "run_days": len(days),
            "table": f"{warehouse.schema_name + '.' if warehouse.schema_name else ''}fact_sales",
            "warehouse": warehouse.safe_url,
        })
        yield check

    return fact_sales


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
    return [*(_build_warehouse_table(config, t) for t in WAREHOUSE_DIMENSIONS), _build_warehouse_facts(config),
            _build_bi_views(config)]
