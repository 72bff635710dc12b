"""Standalone checks that compare layers and days, per run (ingest) day (re-runnable alone):

* `reconciles_with_masked` on `curated/fact_sales`: the fact lines the day delivered (`ingest_date`,
  found in the sale-date partitions that run or a later one wrote) are exactly the masked sale lines
  of the day (less those delivered again on a later day), and per `date_key` the fact's net amount
  equals the masked lines' net recomputed with Arrow (`lake_assets/checks/reconcile.py`). Both sides
  are compared one hash bucket of sale_line_ids at a time, so the check's memory does not grow with
  the day.
* `reconciles_with_curated` on `warehouse/fact_sales`: the warehouse rows the day delivered have the
  same line count and net total as the curated rows the day delivered.
* `row_count` on the daily tables of `quality.row_count.tables`: at least `min_rows` rows, (with
  `tolerance`) within that share of the previous committed day's count, and (with `upstream_tolerance`)
  within that share of the same day of the layer upstream: `raw` tables of the entity (summed) for
  `processed/<entity>`, `processed/<entity>` for `masked/<entity>`, `masked/sale` for
  `curated/fact_sales`. From commit records; for curated/fact_sales the rows the run day delivered,
  against the previous run day's.

Severity from `quality.checks.<name>.severity` (error = blocking).
"""

import warnings
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pyarrow.compute as pc
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    PreviewWarning,
    asset_check,
)
from sqlalchemy import text

from lake_assets.assets.day_range import each_day_check
from lake_assets.assets.fact_partitions import (
    FACT_KEY,
    delivered_count,
    delivered_dataset,
    delivered_filter,
    delivered_since_filter,
)
from lake_assets.assets.partitions import daily_partitions
from lake_assets.checks.reconcile import (
    FactReconciliation,
    reconcile_fact,
    row_count_problems,
    totals_differ,
    upstream_problems,
)
from lake_assets.config import PipelineConfig
from lake_assets.ingestion import raw_key
from lake_assets.parquet_stream import stream_batches
from lake_assets.resources.lake_storage import LakeDataNotFound, LakeStorage
from lake_assets.resources.warehouse import WarehouseResource

MASKED_SALE = ["masked", "sale"]
# What the fact-vs-masked reconciliation reads of each side; the other columns stay on disk.
FACT_COLUMNS = ["sale_line_id", "date_key", "net_amount", "ingest_date"]
MASKED_COLUMNS = ["sale_line_id", "quantity", "unit_price", "discount", "discount_rate"]


def _severity(config: PipelineConfig, name: str) -> tuple[bool, AssetCheckSeverity]:
    error = config.quality.severity(name) == "error"
    return error, AssetCheckSeverity.ERROR if error else AssetCheckSeverity.WARN


def _daily_check(
    config: PipelineConfig, asset: list[str], name: str, description: str
) -> Callable[[Callable[..., AssetCheckResult]], AssetChecksDefinition]:
    """`@asset_check` for a daily asset; partitioned checks are a Dagster preview (docs/quality.md). In
    a run over several days the check judges each day and records one evaluation (`each_day_check`)."""
    blocking, _ = _severity(config, name)
    decorator = asset_check(
        asset=AssetKey(asset), name=name, blocking=blocking, partitions_def=daily_partitions(config),
        description=f"{description}; {config.quality.severity(name)}{' (blocking)' if blocking else ''}.",
    )

    def apply(function: Callable[..., AssetCheckResult]) -> AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PreviewWarning)
            return decorator(function)

    return apply


def _delivered_rows(lake: LakeStorage, day: str) -> int:
    """curated/fact_sales rows that run day `day` delivered."""
    return delivered_count(lake, day)


def _reconcile_fact(lake: LakeStorage, day: str) -> FactReconciliation:
    """The fact rows delivered on `day` or later in the sale dates run `day` or a later one wrote, against
    the masked sale lines of `day`: both read one record batch at a time, only the columns compared."""
    masked = lake.read_dataset(MASKED_SALE, day)
    fact = delivered_dataset(lake, day)
    rows = max(masked.count_rows(), fact.count_rows())
    return reconcile_fact(
        stream_batches(fact, FACT_COLUMNS, delivered_since_filter(day)),
        stream_batches(masked, [c for c in MASKED_COLUMNS if c in masked.schema.names]),
        date.fromisoformat(day), rows)


def _delivered_total(lake: LakeStorage, day: str) -> tuple[int, Decimal]:
    """(lines, net amount) of the curated rows run `day` delivered, summed one record batch at a time."""
    lines, total = 0, Decimal("0")
    for batch in stream_batches(delivered_dataset(lake, day), ["net_amount"], delivered_filter(day)):
        lines += batch.num_rows
        net = pc.sum(batch.column("net_amount")).as_py()
        total += net if net is not None else Decimal("0")
    return lines, total


def _fact_vs_masked(config: PipelineConfig) -> AssetChecksDefinition:
    name = "reconciles_with_masked"
    _, severity = _severity(config, name)

    @_daily_check(config, FACT_KEY, name, "Fact lines the run day delivered are the masked sale lines of the "
                  "day (less those delivered again later); net amount per date_key equals the masked lines' net")
    def reconciles_with_masked(context: AssetCheckExecutionContext, lake: LakeStorage) -> AssetCheckResult:
        return each_day_check(context, lambda day: _judge(lake, day))

    def _judge(lake: LakeStorage, day: str) -> AssetCheckResult:
        try:
            result = _reconcile_fact(lake, day)
        except LakeDataNotFound as exc:
            return AssetCheckResult(passed=False, severity=severity, metadata={"partition": day, "error": str(exc)})
        return AssetCheckResult(passed=result.passed, severity=severity,
                                metadata={"partition": day, **result.metadata()})

    return reconciles_with_masked


def _warehouse_vs_curated(config: PipelineConfig) -> AssetChecksDefinition:
    name = "reconciles_with_curated"
    _, severity = _severity(config, name)

    @_daily_check(config, ["warehouse", "fact_sales"], name,
                  "Warehouse rows the run day delivered have the line count and net total of the curated rows "
                  "it delivered")
    def reconciles_with_curated(
        context: AssetCheckExecutionContext, lake: LakeStorage, warehouse: WarehouseResource
    ) -> AssetCheckResult:
        return each_day_check(context, lambda day: _judge(lake, warehouse, day))

    def _judge(lake: LakeStorage, warehouse: WarehouseResource, day: str) -> AssetCheckResult:
        curated = _delivered_total(lake, day)
        with warehouse.connect_checked() as conn:
            lines, total = conn.execute(
                text(f"SELECT COUNT(*), SUM(net_amount) FROM {warehouse.qualified('fact_sales')} "
                     "WHERE ingest_date = :day"), {"day": day}
            ).one()
        loaded = (int(lines), Decimal(str(total)) if total is not None else Decimal("0"))
        return AssetCheckResult(
            passed=not totals_differ(loaded, curated), severity=severity,
            metadata={"partition": day, "warehouse_lines": loaded[0], "curated_lines": curated[0],
                      "warehouse_net_amount": str(loaded[1].quantize(Decimal("0.01"))),
                      "curated_net_amount": str(curated[1].quantize(Decimal("0.01")))},
        )

    return reconciles_with_curated


def _upstream_tables(config: PipelineConfig, table: str) -> list[list[str]]:
    """The tables one layer up whose rows of a day feed `table`'s rows of that day."""
    layer, name = table.split("/")
    if layer == "processed":
        return [raw_key(s.name, t.name) for s in config.sources for t in s.tables if t.entity == name]
    if layer == "masked":
        return [["processed", name]]
    return [MASKED_SALE] if table == "curated/fact_sales" else []


def _upstream_rows(lake: LakeStorage, tables: list[list[str]], day: str) -> tuple[str, int] | None:
    """(names, committed rows of `day` summed) of `tables`; None when none of them has that day."""
    infos = [lake.commit_info(t, day) for t in tables]
    if not any(infos):
        return None
    return " + ".join("/".join(t) for t in tables), sum(i.rows for i in infos if i is not None)


def _row_count(config: PipelineConfig, table: str) -> AssetChecksDefinition:
    name, key = "row_count", table.split("/")
    _, severity = _severity(config, name)
    settings = config.quality.row_count

    upstream_tables = _upstream_tables(config, table) if settings.upstream_tolerance else []

    @_daily_check(config, key, name, f"At least {settings.min_rows} row(s) a day"
                  + (f", within {settings.tolerance:.0%} of the previous day" if settings.tolerance else "")
                  + (f", within {settings.upstream_tolerance:.0%} of the layer upstream" if upstream_tables else ""))
    def row_count(context: AssetCheckExecutionContext, lake: LakeStorage) -> AssetCheckResult:
        return each_day_check(context, lambda day: _judge(lake, day))

    def _judge(lake: LakeStorage, day: str) -> AssetCheckResult:
        if key == FACT_KEY:  # partitioned by sale date: count what the run day delivered
            runs = [d for d in lake.committed_partitions(MASKED_SALE) if d < day]
            rows = _delivered_rows(lake, day)
            previous = (runs[-1], _delivered_rows(lake, runs[-1])) if runs else None
        else:
            info = lake.commit_info(key, day)
            if info is None:
                return AssetCheckResult(passed=False, severity=severity,
                                        metadata={"partition": day, "error": f"{table} has no commit for {day}"})
            rows = info.rows
            earlier = [d for d in lake.committed_partitions(key) if d < day]
            previous_info = lake.commit_info(key, earlier[-1]) if earlier else None
            previous = (earlier[-1], previous_info.rows) if previous_info else None
        upstream = _upstream_rows(lake, upstream_tables, day) if upstream_tables else None
        problems = [*row_count_problems(rows, previous, settings.min_rows, settings.tolerance),
                    *upstream_problems(rows, upstream, settings.upstream_tolerance)]
        return AssetCheckResult(
            passed=not problems, severity=severity,
            metadata={"partition": day, "rows": rows,
                      "previous_day_rows": f"{previous[1]} ({previous[0]})" if previous else "none",
                      "upstream_rows": f"{upstream[1]} ({upstream[0]})" if upstream else "none",
                      "problems": "; ".join(problems) or "none"},
        )

    return row_count


def build_reconciliation_checks(config: PipelineConfig) -> list[AssetChecksDefinition]:
    return [
        _fact_vs_masked(config),
        _warehouse_vs_curated(config),
        *(_row_count(config, table) for table in config.quality.row_count.tables),
    ]
