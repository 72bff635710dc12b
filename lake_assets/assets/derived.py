"""raw/derived/<name>: a table computed with Spark SQL from other raw tables of the same day.

A file or API source delivers what it delivers: payments in one file, orders in another, order lines
in a third. A derived table joins them into the rows an entity needs (config `derived:`), and then
feeds its entity in the processed layer exactly like a source table (`config.tables_for_entity`).

Grain: whatever the SQL selects; for a sale feed, one row per sale line.
Inputs: the raw tables the SQL names as `<source>__<table>` (one `AssetIn` each, same daily
partition), registered as Spark temporary views with their columns in snake_case (spark/naming.py,
the names `lake-config explain` shows), dropped again as soon as Spark has analysed the query.
Output: every selected column as text, like any raw table, plus the lineage columns. The SQL should
select the driving table's `_ingested_at` (de-duplication keeps the latest delivery) and
`_source_file`; what it leaves out is added where one value is right for every row:
`_ingested_at` = the latest `_ingested_at` of the inputs, `_source` = `derived.<name>` (as a source
table's is `<source>.<table>`), `_batch_id` = the run id. Lineage columns the SQL selects are kept as they are.
A query Spark cannot parse or analyse (syntax error, unknown column) fails the step without retries,
naming the derived table and Spark's message.
"""

import threading
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    Failure,
    MetadataValue,
    Output,
    asset,
)
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake_assets.assets.day_range import each_day
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from lake_assets.assets.retry import retry_policy
from lake_assets.config import DERIVED_SOURCE, DerivedTableConfig, PipelineConfig, view_name
from lake_assets.ingestion import raw_key
from lake_assets.io_managers.partition_range import for_day
from lake_assets.resources.lake_storage import LakeStorage
from spark.naming import ColumnNameCollision
from spark.standardize import snake_case_columns

LINEAGE_INGESTED_AT = "_ingested_at"
# Temporary views live in the Spark session, which the assets of one process share: one derived
# query is analysed at a time so two assets never see each other's views.
_VIEWS_LOCK = threading.Lock()


def derived_asset_key(table: DerivedTableConfig) -> list[str]:
    return raw_key(DERIVED_SOURCE, table.name)


def spark_message(exc: Exception) -> str:
    """The first meaningful line of a Spark error (a ParseException starts with a blank line)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def run_derived_sql(table: DerivedTableConfig, views: dict[str, DataFrame]) -> DataFrame:
    """`table.sql` over `views` (view name -> raw frame), analysed eagerly; the views are dropped
    before returning (the analysed plan no longer needs them). Raises a non-retryable Failure naming
    the table and Spark's message when the query does not parse or analyse."""
    where = f"derived table {table.name} (raw/{DERIVED_SOURCE}/{table.name})"
    prepared: dict[str, DataFrame] = {}
    for name, frame in views.items():
        try:
            prepared[name] = snake_case_columns(frame)
        except ColumnNameCollision as exc:
            raise Failure(description=f"{where}: input {name}: {exc}", allow_retries=False) from None
    spark = next(iter(prepared.values())).sparkSession
    with _VIEWS_LOCK:
        try:
            for name, frame in prepared.items():
                frame.createOrReplaceTempView(name)
            try:
                result = spark.sql(table.sql)
                result.schema  # noqa: B018 - forces analysis while the views exist
            except AnalysisException as exc:  # ParseException is one too
                raise Failure(
                    description=f"{where}: Spark cannot run its `sql`: {spark_message(exc)}\n"
                    f"Fix derived[].sql of {table.name}; its inputs are {', '.join(prepared)} with the columns "
                    + "; ".join(f"{n}: {', '.join(f.columns)}" for n, f in prepared.items()),
                    allow_retries=False,
                ) from None
        finally:
            for name in prepared:
                spark.catalog.dropTempView(name)
    lowered = [c.lower() for c in result.columns]
    twice = sorted({c for c in result.columns if lowered.count(c.lower()) > 1})
    if twice:
        raise Failure(
            description=f"{where}: its `sql` selects {twice} more than once (e.g. `_source_file` of two "
            "inputs); give each output column one name with AS",
            allow_retries=False,
        )
    return result


def with_lineage(
    table: DerivedTableConfig, result: DataFrame, inputs: list[DataFrame], run_id: str
) -> tuple[DataFrame, list[str]]:
    """Business columns as text (the raw-layer contract) and the lineage columns the SQL left out;
    returns the frame and the names of the columns added."""
    typed = result.select(
        [F.col(f"`{c}`") if c.startswith("_") else F.col(f"`{c}`").cast("string").alias(c) for c in result.columns]
    )
    added: list[str] = []
    if LINEAGE_INGESTED_AT not in result.columns:
        # A derived row exists once all of its inputs are delivered: the latest delivery dates it.
        latest = [f.agg(F.max(LINEAGE_INGESTED_AT)).collect()[0][0] for f in inputs if LINEAGE_INGESTED_AT in f.columns]
        value = max((v for v in latest if v is not None), default=None)
        typed = typed.withColumn(LINEAGE_INGESTED_AT, F.lit(value).cast("timestamp"))
        added.append(LINEAGE_INGESTED_AT)
    for column, value in (("_source", f"{DERIVED_SOURCE}.{table.name}"), ("_batch_id", run_id)):
        if column not in result.columns:
            typed = typed.withColumn(column, F.lit(value))
            added.append(column)
    return typed, added


def _build_derived_asset(config: PipelineConfig, table: DerivedTableConfig) -> AssetsDefinition:
    inputs = config.derived_inputs(table)
    ins = {f"input_{i}": AssetIn(key=raw_key(source.name, t.name)) for i, (source, t) in enumerate(inputs)}
    names = {f"input_{i}": view_name(source.name, t.name) for i, (source, t) in enumerate(inputs)}
    summary = table.description or f"Spark SQL over {', '.join(names.values())}"

    @asset(
        key=derived_asset_key(table),
        group_name="raw",
        ins=ins,
        partitions_def=daily_partitions(config),
        backfill_policy=DAILY_BACKFILL_POLICY,
        kinds={"spark", "parquet"},
        description=f"Derived table: {summary} (feeds entity `{table.entity}`). Grain: one row per row the "
        f"SQL selects.\n\n```sql\n{table.sql.strip()}\n```",
        metadata={
            "entity": table.entity,
            "source_kind": "derived",
            "sql": MetadataValue.md(f"```sql\n{table.sql.strip()}\n```"),
            "inputs": ", ".join(f"{v} = raw/{v.replace('__', '/', 1)}" for v in names.values()),
        },
        retry_policy=retry_policy(config.retries),
    )
    def _derived(context: AssetExecutionContext, lake: LakeStorage, **frames: Any) -> Iterator[Output]:
        yield from each_day(context, lake, lambda day: [_derive_day(context.run.run_id, frames, day)])

    def _derive_day(run_id: str, frames: dict[str, Any], day: str) -> Output:
        views = {names[arg]: for_day(frames[arg], day) for arg in ins}
        result = run_derived_sql(table, views)
        derived, added = with_lineage(table, result, list(views.values()), run_id)
        metadata: dict[str, Any] = {"lineage_added": ", ".join(added) or "none"}
        metadata.update({f"input_rows/{name}": frame.count() for name, frame in views.items()})
        return Output(derived, metadata=metadata)

    return _derived


def build_derived_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_derived_asset(config, table) for table in config.derived]
