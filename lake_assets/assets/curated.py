"""curated/*: the Kimball star schema, built only from masked/* (never from unmasked layers).

* dim_customer, dim_product: SCD Type 2, one row per member version, unpartitioned. Each run applies
  the masked partitions committed since the last applied one (up to the run's day, the last day of
  a run over a range of days: every pending day, oldest first, in one step), reading the previous
  dimension state plus those days only, never the raw history. Only the versions of the members those
  days deliver go through the merge (`spark/scd2_members.py`); the other rows are written back as
  read. Type-1 columns and the hard-delete policy come from `star_schema.dimensions` in the config.
* Late changes (dated before a member's latest version): under `late_changes: apply` (default) spliced
  into history at their time (`spark/scd2_splice.py`); the sale dates whose facts now resolve to another
  version wait in the dimension's commit state until fact_sales rewrote them with the keys resolved again
  (`assets/late_splices.py`). What is not applied is counted and warned about (`no_late_changes_ignored`).
* Late-arriving members: the same run reads the day's masked sales and adds an inferred row for every
  customer/product/location a sale references that the dimension has never seen; the real row, when
  it arrives, completes that row in place (same key), so facts never need re-pointing.
* Rebuild: run a dimension with config `rebuild: true` to discard its state and re-apply every
  committed masked partition in order (after a config fix; see docs/star_schema.md).
* dim_location: SCD Type 1, one row per location.
* dim_date: generated calendar, one row per day, covering every sale date of the committed masked sales.
* fact_sales: one row per sale line across all partitions; keys resolved as of the sale time. The lake
  table is partitioned by sale_date (the UTC date of sold_at); each run day writes its lines into their
  sale dates in one commit, so a re-delivered line replaces its row in its own day (see
  `assets/fact_partitions.py`). A run over a range of days writes each run day in turn, oldest first,
  one commit per day (`assets/day_range.py`). The configured sale measures and degenerate dimensions
  (`entities.sale`) are carried over. The same commit rewrites the sale dates a dimension's splice left
  pending, their rows' customer/product keys resolved again, and records the splices it handled.
* Storage: every table reaches the lake through the lake IO manager. The dimensions hand it a
  `LakeWrite` whose commit state is the days they applied (`applied`), committed with the rows; the
  fact hands it its touched sale dates, replaced in one commit recording the run day (`run_day`). The
  key and uniqueness checks run after the IO manager stored the output, on the table as written; the
  fact's history is read only where its lines can be (`assets/fact_lines.py`).
* Extra attributes (`entities.<entity>.attributes`) are dimension attributes like the entity's own:
  `scd: 1` ones are Type-1 columns of an SCD2 dimension. A state or masked day written before an extra
  was configured reads with it NULL.
"""


from collections.abc import Iterator
from datetime import date, datetime, timezone
from functools import reduce
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Config,
    MetadataValue,
    Output,
    asset,
)
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lake_assets.assets.day_range import each_day
from lake_assets.assets.fact_lines import files_meeting, line_counts, sale_dates_holding
from lake_assets.assets.fact_partitions import DELIVERED_ON, FACT_KEY, RUN_DAY, SALE_DATE
from lake_assets.assets.late_splices import (
    RE_RESOLVED,
    SPLICES,
    acknowledged,
    next_splices,
    re_resolution,
    sale_date_ranges,
)
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions, run_partition
from lake_assets.assets.pools import STAR_SCHEMA_POOL
from lake_assets.checks.dimension_keys import dataset_key_figures
from lake_assets.config import PipelineConfig
from lake_assets.entities import EntitySchema, entity_schema
from lake_assets.io_managers.lake_store import RUN_ID_STATE
from lake_assets.io_managers.lake_write import LakeWrite
from lake_assets.io_managers.partition_range import for_day
from lake_assets.io_managers.spark_lake import (
    read_columns,
    read_file_columns,
    read_partitions,
    read_spark,
    read_spark_if_exists,
)
from lake_assets.resources.lake_storage import LakeStorage
from spark.checkpoint import local_checkpoint
from spark.observations import observed_figures
from spark.scd2 import ATTR_HASH, DELETE_FLAG, END_OF_TIME, add_inferred_members, late_changes, unknown_member
from spark.scd2_members import split_by_members, whole_dimension
from spark.scd2_splice import splice_late_changes
from spark.star_schema import (
    UNKNOWN_KEY,
    build_dim_date,
    build_fact_sales,
    empty_scd2_dimension,
    re_resolve_keys,
    scd1_merge,
    scd2_merge,
)

GROUP = "curated"
SALE_SOURCE = ["masked", "sale"]
SAMPLE_VALUES = 5


class DimensionRunConfig(Config):
    """Run config of a dimension asset."""

    rebuild: bool = Field(
        default=False,
        description="discard the dimension's state and re-apply every committed masked partition in order",
    )


def _attributes(entity: EntitySchema, exclude: tuple[str, ...]) -> dict[str, str]:
    return {c: t for c, t in entity.columns.items() if c not in (*entity.key, *exclude)}


def _conform(df: DataFrame, columns: dict[str, str]) -> DataFrame:
    """`df` with every column of `columns` it lacks added as a typed NULL: a dimension state or masked
    day written before an extra column was configured reads like one that delivered no value for it."""
    missing = [F.lit(None).cast(t).alias(c) for c, t in columns.items() if c not in df.columns]
    return df.select("*", *missing) if missing else df


def _pending_partitions(
    lake: LakeStorage, source_key: list[str], applied: dict[str, str], up_to: str | None
) -> list[tuple[str, str]]:
    """(partition, batch_id) of committed source partitions not yet applied, oldest first."""
    pending = []
    for partition, commit in lake.commits(source_key).items():
        if up_to is not None and partition > up_to:
            continue
        if applied.get(partition) != commit.batch_id:
            pending.append((partition, commit.batch_id))
    return pending


def _applied_state(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{source: {day: batch_id}} already applied to a dimension (its lake commit state, `applied`)."""
    return {k: dict(v) for k, v in (state.get("applied") or {}).items()}


def _key_checks(name: str, key_col: str, natural_key: str, scd2: bool) -> list[AssetCheckSpec]:
    specs = [AssetCheckSpec("surrogate_key_unique", asset=["curated", name], blocking=True,
                            description=f"{key_col} is unique and not null")]
    if scd2:
        specs.append(AssetCheckSpec("one_current_row_per_member", asset=["curated", name], blocking=True,
                                    description=f"at most one is_current row per {natural_key}, no overlaps"))
    return specs


LATE_CHANGES_CHECK = "no_late_changes_ignored"
LATE_SAMPLE = 10


def _late_changes_check(name: str, natural_key: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        LATE_CHANGES_CHECK, asset=["curated", name], blocking=False,
        description=f"WARN when delivered changes dated before their {natural_key}'s latest version (late "
        "records, corrections of history) were not applied: all of them under late_changes: ignore; under "
        "apply those dated while the member was deleted and late deletes",
    )


def _late_changes_result(count: int, sample: list[tuple[str, str, str]]) -> AssetCheckResult:
    """`sample`: (member, effective at, applied until) of some of the `count` changes not applied."""
    shown = [f"- {member}: dated {at}, history applied until {until}" for member, at, until in sample]
    return AssetCheckResult(
        check_name=LATE_CHANGES_CHECK,
        passed=count == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={"late_changes_ignored": count,
                  "sample": MetadataValue.md("\n".join(shown)) if shown else MetadataValue.text("none")},
    )


def _key_check_results(lake: LakeStorage, key_path: list[str], key_col: str, natural_key: str, scd2: bool
                       ) -> list[AssetCheckResult]:
    """Both key checks over the table as written, from its key columns read in batches on Arrow (a
    dimension's check costs no Spark job; see `lake_assets/checks/dimension_keys.py`)."""
    figures = dataset_key_figures(lake.read_dataset(key_path), key_col, member_col=natural_key if scd2 else None,
                                  open_until=END_OF_TIME)
    results = [
        AssetCheckResult(
            check_name="surrogate_key_unique",
            passed=figures.rows == figures.distinct_keys and not figures.null_keys,
            metadata={"rows": figures.rows, "distinct_keys": figures.distinct_keys, "null_keys": figures.null_keys},
        )
    ]
    if scd2:
        results.append(
            AssetCheckResult(
                check_name="one_current_row_per_member",
                passed=not (figures.several_current or figures.overlaps or figures.open_not_current),
                metadata={"members_with_several_current_rows": figures.several_current,
                          "overlaps": figures.overlaps, "open_versions_not_current": figures.open_not_current},
            )
        )
    return results


def _snapshot_deletes(
    state: DataFrame, changes: DataFrame, natural_key: str, attributes: dict[str, str], effective: str, day: str
) -> DataFrame:
    """Members current in the dimension but absent from a complete daily delivery: deleted that day.

    The delete takes effect at the end of the delivery's day, so that day's sales still resolve.
    """
    live = state.filter(
        F.col("is_current") & ~F.col("is_deleted") & ~F.col("is_inferred") & (F.col(natural_key) != "UNKNOWN")
    )
    gone = live.select(natural_key).join(changes.select(natural_key), natural_key, "left_anti")
    return gone.select(
        natural_key,
        *[F.lit(None).cast(t).alias(c) for c, t in attributes.items()],
        (F.to_timestamp(F.lit(day)) + F.expr("INTERVAL 1 DAY")).alias(effective),
        F.lit(True).alias(DELETE_FLAG),
    )


def _scd2_changes(
    state: DataFrame, changes: DataFrame, natural_key: str, attributes: dict[str, str], effective: str,
    detection: str, day: str,
) -> DataFrame:
    """The day's change rows (plus synthesized delete rows when the delivery is a full snapshot)."""
    delivered = [F.col("_ingested_at")] if "_ingested_at" in changes.columns else []
    keyed = [F.col(ATTR_HASH)] if ATTR_HASH in changes.columns else []
    rows = changes.select(natural_key, *attributes, effective, *delivered, *keyed, F.lit(False).alias(DELETE_FLAG))
    if detection == "snapshot":
        deletes = _snapshot_deletes(state, changes, natural_key, attributes, effective, day)
        if delivered:
            deletes = deletes.withColumn("_ingested_at", F.lit(None).cast("timestamp"))
        if keyed:
            deletes = deletes.withColumn(ATTR_HASH, F.lit(None).cast("string"))
        rows = rows.unionByName(deletes)
    return rows


def _highest_key(lake: LakeStorage, key_path: list[str], key_col: str) -> int | None:
    """The highest surrogate key of an unpartitioned lake table from its files' Parquet statistics (no
    Spark job); None when a file has none for it."""
    bounds = lake.column_bounds(key_path, [None], key_col)
    return None if bounds is None or bounds[1] is None else int(bounds[1])


def _pending_days(
    lake: LakeStorage, sources: dict[str, list[str]], applied: dict[str, dict[str, str]], up_to: str | None
) -> list[tuple[str, dict[str, str]]]:
    """[(day, {source name: batch_id to apply})], oldest day first, across several masked datasets."""
    days: dict[str, dict[str, str]] = {}
    for name, key in sources.items():
        for partition, batch_id in _pending_partitions(lake, key, applied.get(name, {}), up_to):
            days.setdefault(partition, {})[name] = batch_id
    return sorted(days.items())


def _carried(df: DataFrame, *, read_again: bool) -> DataFrame:
    """`df` checkpointed (`local_checkpoint`) when a later day's step of the same run builds on it; as
    it is when only the write reads it. Same rows either way. A state read once more gains nothing from
    a checkpoint (one more job, then a re-read of its blocks), and no later day's plan grows on it."""
    return local_checkpoint(df) if read_again else df


def _build_scd2_dimension(config: PipelineConfig, name: str, entity: EntitySchema, key_col: str) -> AssetsDefinition:
    attributes = _attributes(entity, exclude=(entity.cursor,) if entity.cursor else ())
    natural_key = entity.key[0]
    source_key = ["masked", entity.name]
    settings = config.star_schema.dimension(entity.name)
    type1_columns = config.type1_columns(entity.name)  # configured ones plus extras with scd: 1
    effective = entity.cursor or "_ingested_at"

    @asset(
        key=["curated", name],
        pool=STAR_SCHEMA_POOL,
        group_name=GROUP,
        deps=[AssetKey(source_key), AssetKey(SALE_SOURCE)],
        kinds={"spark", "parquet"},
        check_specs=[*_key_checks(name, key_col, natural_key, scd2=True), _late_changes_check(name, natural_key)],
        description=f"SCD Type 2 dimension of {entity.name}. Grain: one row per {natural_key} version; "
        f"{key_col} stable across runs; unknown member {key_col} = {UNKNOWN_KEY}; Type-1 columns: "
        f"{', '.join(type1_columns) or 'none'}; extra attributes: {', '.join(entity.extras) or 'none'}; "
        f"deletes: {settings.delete_policy} "
        f"(detection: {settings.delete_detection}); Type-1 NULLs: {settings.type1_null_policy}; "
        f"late changes: {settings.late_changes}; "
        "late-arriving members inferred from sales. Config rebuild: true re-applies all masked history.",
    )
    def _dimension(
        context: AssetExecutionContext, config: DimensionRunConfig, pyspark: LazyPySparkResource, lake: LakeStorage
    ) -> Iterator[Output | AssetCheckResult]:
        spark = pyspark.spark_session
        own_key = ["curated", name]
        previous = lake.partition_state(own_key)  # its splice ids go on across a rebuild
        applied = {} if config.rebuild else _applied_state(previous)
        state = None if config.rebuild else read_spark_if_exists(spark, lake, own_key)
        if config.rebuild:
            context.log.info(f"curated/{name}: rebuilding from every committed masked partition")
        starts_empty = state is None
        if state is None:
            state = empty_scd2_dimension(spark, key_col, natural_key, attributes)
        state = _conform(state, attributes)
        pending = _pending_days(lake, {"changes": source_key, "sales": SALE_SOURCE}, applied, run_partition(context))
        deliveries = {day: _conform(read_spark(spark, lake, source_key, day), attributes)
                      for day, batches in pending if "changes" in batches}
        # Only the versions of the members the pending days deliver can change; the merge runs on those
        # and the other rows are written as read. A full snapshot deletes every member it leaves out, so
        # there every member can change; an empty dimension (first run, rebuild) has nothing to set aside.
        split = (
            whole_dimension(state, key_col=key_col, natural_key=natural_key, attributes=list(attributes))
            if starts_empty or settings.delete_detection == "snapshot"
            else split_by_members(state, list(deliveries.values()), key_col=key_col, natural_key=natural_key,
                                  attributes=list(attributes), highest_key=_highest_key(lake, own_key, key_col))
        )
        touched = split.touched
        late_count = spliced_count = 0
        late_sample: list[tuple[str, str, str]] = []
        windows: list[tuple[date, date]] = []
        # Until a day is merged into an empty dimension (a first load, a rebuild) no member has a version
        # a change could precede: nothing is late, and the late-change jobs need not run.
        versions_recorded = not starts_empty
        for number, (day, batches) in enumerate(pending, start=1):
            last_day = number == len(pending)
            if day in deliveries:
                changes = _scd2_changes(touched, deliveries[day], natural_key, attributes, effective,
                                        settings.delete_detection, day)
                if not versions_recorded:
                    found = 0
                elif settings.late_changes == "apply":
                    splice = splice_late_changes(
                        touched, changes, key_col=key_col, natural_key=natural_key, attributes=attributes,
                        effective_col=effective, type1_columns=type1_columns,
                        delete_policy=settings.delete_policy, keys_above=split.keys_above)
                    ignored = splice.ignored
                    spliced, found = splice.figures()
                    if spliced:
                        # Dated by Spark (UTC session), as sale_date is: not by Python's local time zone.
                        windows += [(r[0], r[1]) for r in splice.windows.select(
                            F.to_date("window_from"), F.to_date("window_to")).collect()]
                        touched = local_checkpoint(splice.dimension)
                    spliced_count += spliced
                else:
                    ignored = late_changes(touched, changes, natural_key=natural_key, attributes=attributes,
                                           effective_col=effective, type1_columns=type1_columns)
                    found = ignored.count()
                if found and len(late_sample) < LATE_SAMPLE:
                    late_sample += [(str(r[0]), str(r[1]), str(r[2])) for r in
                                    ignored.orderBy(natural_key).limit(LATE_SAMPLE - len(late_sample)).collect()]
                late_count += found
                touched = _carried(scd2_merge(
                    touched, changes, key_col=key_col, natural_key=natural_key, attributes=attributes,
                    effective_col=effective, type1_columns=type1_columns,
                    delete_policy=settings.delete_policy, type1_null_policy=settings.type1_null_policy,
                    # A source without change timestamps: its changes take effect at 00:00 UTC of the day.
                    undated_at=datetime.fromisoformat(day), keys_above=split.keys_above,
                ), read_again=not last_day or "sales" in batches)  # each day's merge builds on the last
                versions_recorded = True
            if "sales" in batches:
                # Members among the rows kept aside are known: only the others can be inferred.
                referenced = read_spark(spark, lake, SALE_SOURCE, day).select(natural_key).join(
                    split.kept.select(natural_key), natural_key, "left_anti")
                touched = _carried(add_inferred_members(
                    touched, referenced, key_col=key_col, natural_key=natural_key, attributes=attributes,
                    keys_above=split.keys_above,
                ), read_again=not last_day)
            for source, batch_id in batches.items():
                applied.setdefault(source, {})[day] = batch_id
        state = split.combined(touched)
        # The sale dates whose facts resolve differently now wait in the state until the fact did them.
        ranges = sale_date_ranges(windows)
        splices = next_splices(previous, ranges, acknowledged(lake, name))
        if spliced_count:
            context.log.info(f"curated/{name}: {spliced_count} late change(s) spliced into history; facts of "
                             f"sale dates {ranges} to be resolved again by curated/fact_sales")
        if late_count:
            context.log.warning(f"curated/{name}: {late_count} delivered change(s) dated before their member's "
                                "latest version were not applied (see the no_late_changes_ignored check)")
        # The applied days are committed with the rows they produced (one commit), by the IO manager.
        yield Output(LakeWrite(state, state={"applied": applied, SPLICES: splices}), metadata={
            "applied_days": ", ".join(p for p, _ in pending) or "none (up to date)",
            "late_changes_policy": settings.late_changes,
            "late_changes_spliced": spliced_count,
            "late_changes_ignored": late_count,
            "sale_date_ranges_to_re_resolve": ", ".join(
                f"{e['first']}..{e['last']}" for e in splices["pending"]) or "none",
        })
        # Stored before this code resumes: the key checks read the table as written.
        yield from _key_check_results(lake, own_key, key_col, natural_key, scd2=True)
        yield _late_changes_result(late_count, late_sample)

    return _dimension


def _build_dim_location(config: PipelineConfig) -> AssetsDefinition:
    location = entity_schema(config, "location")
    attributes = _attributes(location, exclude=())
    source_key = ["masked", location.name]

    @asset(
        key=["curated", "dim_location"],
        pool=STAR_SCHEMA_POOL,
        group_name=GROUP,
        deps=[AssetKey(source_key), AssetKey(SALE_SOURCE)],
        kinds={"spark", "parquet"},
        check_specs=_key_checks("dim_location", "location_key", "location_id", scd2=False),
        description="SCD Type 1 dimension of store locations. Grain: one row per location_id; "
        f"unknown member location_key = {UNKNOWN_KEY}.",
    )
    def dim_location(
        context: AssetExecutionContext, config: DimensionRunConfig, pyspark: LazyPySparkResource, lake: LakeStorage
    ) -> Iterator[Output | AssetCheckResult]:
        spark = pyspark.spark_session
        own_key = ["curated", "dim_location"]
        applied = {} if config.rebuild else _applied_state(lake.partition_state(own_key))
        state = None if config.rebuild else read_spark_if_exists(spark, lake, own_key)
        if state is not None:
            state = _conform(state, attributes)
        pending = _pending_days(lake, {"changes": source_key, "sales": SALE_SOURCE}, applied, run_partition(context))
        for number, (day, batches) in enumerate(pending, start=1):
            last_day = number == len(pending)
            if "changes" in batches:
                changes = _conform(read_spark(spark, lake, source_key, day), attributes)
                state = _carried(scd1_merge(
                    state, changes, key_col="location_key", natural_key="location_id", attributes=attributes
                ), read_again=not last_day or "sales" in batches)
            if "sales" in batches:
                if state is None:
                    state = unknown_member(spark, "location_key", "location_id", attributes, scd2=False)
                state = _carried(add_inferred_members(
                    state, read_spark(spark, lake, SALE_SOURCE, day), key_col="location_key",
                    natural_key="location_id", attributes=attributes, scd2=False,
                ), read_again=not last_day)
            for source, batch_id in batches.items():
                applied.setdefault(source, {})[day] = batch_id
        if state is None:
            state = scd1_merge(
                None, spark.range(0).select(
                    F.lit(None).cast("string").alias("location_id"),
                    *[F.lit(None).cast(t).alias(c) for c, t in attributes.items()]),
                key_col="location_key", natural_key="location_id", attributes=attributes,
            )
        yield Output(LakeWrite(state, state={"applied": applied}))
        # Stored before this code resumes: the key check reads the table as written.
        yield from _key_check_results(lake, ["curated", "dim_location"], "location_key", "location_id",
                                      scd2=False)

    return dim_location


def sale_date_range(spark: SparkSession, lake: LakeStorage) -> tuple[date | None, date | None]:
    """(first, last) sale date (UTC) over every committed masked/sale partition: from the files' column
    statistics (footers only, no Spark job), else by reading `sold_at`."""
    partitions = lake.committed_partitions(SALE_SOURCE)
    if not partitions:
        return None, None
    bounds = lake.column_bounds(SALE_SOURCE, partitions, "sold_at")
    if bounds is not None:
        return _utc_date(bounds[0]), _utc_date(bounds[1])
    row = read_columns(spark, lake, SALE_SOURCE, partitions, ["sold_at"]).agg(
        F.min(F.to_date("sold_at")).alias("first"), F.max(F.to_date("sold_at")).alias("last")
    ).collect()[0]
    return row["first"], row["last"]


def _utc_date(value: datetime | None) -> date | None:
    """The date Spark's `to_date` gives a timestamp in the UTC session (a zoned one converted first)."""
    if value is None:
        return None
    return (value.astimezone(timezone.utc) if value.tzinfo else value).date()


def _build_dim_date(config: PipelineConfig) -> AssetsDefinition:
    @asset(
        key=["curated", "dim_date"],
        pool=STAR_SCHEMA_POOL,
        group_name=GROUP,
        deps=[AssetKey(SALE_SOURCE)],
        kinds={"spark", "parquet"},
        check_specs=[AssetCheckSpec("date_key_unique", asset=["curated", "dim_date"], blocking=True)],
        description="Generated calendar. Grain: one row per day, date_key = YYYYMMDD, from 1 January of the "
        "year before the start year (or of the year of the earliest sale, if earlier) to 31 December of the "
        "year after the latest run (or of the latest sale, if later); fiscal year from config.",
    )
    def dim_date(context: AssetExecutionContext, pyspark: LazyPySparkResource, lake: LakeStorage):
        partition = run_partition(context)
        latest = date.fromisoformat(partition) if partition else datetime.now(timezone.utc).date()
        latest = max(latest, datetime.now(timezone.utc).date())
        # One year before the first partition too: sales delivered late are dated before it. History
        # loaded later can be older still: the calendar reaches back to the earliest sale delivered.
        first_sale, last_sale = sale_date_range(pyspark.spark_session, lake)
        start = date(min(config.start_date.year - 1, first_sale.year if first_sale else 9999), 1, 1)
        end = date(max(latest.year + 1, last_sale.year if last_sale else 1), 12, 31)
        calendar = build_dim_date(pyspark.spark_session, start, end, config.star_schema.fiscal_year_start_month)
        days = (end - start).days + 1
        yield Output(calendar, metadata={
            "first_day": start.isoformat(), "last_day": end.isoformat(),
            "first_sale_day": first_sale.isoformat() if first_sale else "none",
            "last_sale_day": last_sale.isoformat() if last_sale else "none",
        })
        # Stored before this code resumes: the check reads the table as written.
        keys = dataset_key_figures(lake.read_dataset(["curated", "dim_date"]), "date_key")
        yield AssetCheckResult(check_name="date_key_unique",
                               passed=keys.rows == keys.distinct_keys == days and not keys.null_keys,
                               metadata={"rows": keys.rows, "distinct_date_keys": keys.distinct_keys, "days": days})

    return dim_date


def _build_fact_sales(config: PipelineConfig) -> AssetsDefinition:
    sale_extras = config.entities.extra_columns("sale")  # measures and degenerate dimensions, passed through
    checks = [
        AssetCheckSpec("sale_line_unique", asset=["curated", "fact_sales"], blocking=True,
                       description="no sale_line_id has two rows in the table when one of them is in a sale date "
                       "this run wrote (the dates it left alone were checked by the runs that wrote them)"),
        AssetCheckSpec("foreign_keys_resolve", asset=["curated", "fact_sales"], blocking=True,
                       description="every customer/product/location/date key exists in its dimension"),
    ]

    @asset(
        key=["curated", "fact_sales"],
        pool=STAR_SCHEMA_POOL,
        group_name=GROUP,
        partitions_def=daily_partitions(config),
        backfill_policy=DAILY_BACKFILL_POLICY,
        ins={
            "sales": AssetIn(key=["masked", "sale"]),
            "dim_customer": AssetIn(key=["curated", "dim_customer"]),
            "dim_product": AssetIn(key=["curated", "dim_product"]),
            "dim_location": AssetIn(key=["curated", "dim_location"]),
            "dim_date": AssetIn(key=["curated", "dim_date"]),
        },
        kinds={"spark", "parquet"},
        check_specs=checks,
        description="Sales fact. Grain: one row per sale line (sale_line_id). Customer and product keys are "
        "the dimension versions valid at sold_at; members not delivered yet resolve to their inferred row; "
        "a NULL member (or one deleted at sold_at) points to key -1; sale dates a dimension's late-record "
        "splice changed are rewritten with their keys resolved again. The lake table is partitioned by "
        "sale_date (UTC date of sold_at); the asset's partition is the run day (ingest_date of its rows), "
        "whose masked lines it writes into their sale dates in one commit: a re-delivered line replaces its "
        "row in its own sale date (and leaves its old one if that changed); re-running a day replaces what "
        "that day delivered; a line delivered again by a later day stays as that day delivered it.",
    )
    def fact_sales(
        context: AssetExecutionContext,
        pyspark: LazyPySparkResource,
        lake: LakeStorage,
        sales: Any,
        dim_customer: DataFrame,
        dim_product: DataFrame,
        dim_location: DataFrame,
        dim_date: DataFrame,
    ) -> Iterator[Output | AssetCheckResult]:
        dimensions = {"customer_key": dim_customer, "product_key": dim_product, "location_key": dim_location,
                      "date_key": dim_date}
        yield from each_day(context, lake, lambda day: _fact_day(
            context, pyspark.spark_session, lake, day, for_day(sales, day), dimensions))

    def _fact_day(
        context: AssetExecutionContext, spark: SparkSession, lake: LakeStorage, day: str, sales: DataFrame,
        dimensions: dict[str, DataFrame],
    ) -> Iterator[Output | AssetCheckResult]:
        """Run day `day`'s lines written into their sale dates (one commit), then its checks."""
        dim_customer, dim_product, dim_location = (
            dimensions["customer_key"], dimensions["product_key"], dimensions["location_key"])
        on_day = F.lit(day).cast("date")
        _require_sale_date_partitions(lake)
        commits = lake.commits(FACT_KEY)
        run_days = {d: str(info.state.get(RUN_DAY, "")) for d, info in commits.items()}
        # Sale dates whose rows resolve to other versions since a dimension spliced late records in.
        redo = re_resolution(lake, day, {d: info.state for d, info in commits.items()})
        if redo.waiting:
            context.log.warning(f"curated/fact_sales: sale dates {', '.join(redo.waiting)} must be resolved "
                                "again after late dimension records, but a later run day wrote them last: "
                                "a run of that day (or later) does it")
        # Rows a later run delivered sit only in the sale dates a later run committed.
        later_dates = [d for d, run in run_days.items() if run > day]
        if later_dates:
            later = read_columns(spark, lake, FACT_KEY, later_dates, ["sale_line_id", DELIVERED_ON]).filter(
                F.col(DELIVERED_ON) > on_day)
            # A line delivered again by a later day stays as that day delivered it.
            sales = sales.join(later.select("sale_line_id"), "sale_line_id", "left_anti")
        lines = sales.select("sale_line_id")
        facts = _with_known_keys(build_fact_sales(
            sales, dim_customer, dim_product, dim_location, extra_columns=sale_extras
        ).withColumns({DELIVERED_ON: on_day, SALE_DATE: F.to_date("sold_at")}), dimensions)
        observed = Observation()  # a fresh name: one session runs many days
        facts = facts.observe(observed, *_fact_figures(dimensions)).drop(*[_KNOWN + key for key in dimensions])
        content, touched, again = facts, [], []
        if run_days:
            # Rows this run replaces: its lines wherever they are now (a line whose sale date changed is in
            # another date), and whatever an earlier run of this day wrote (only in dates this day or a
            # later one committed).
            replaced = [sales.select(F.to_date("sold_at").alias(SALE_DATE))]
            own_dates = [d for d, run in run_days.items() if run >= day]
            if own_dates:
                replaced.append(read_columns(spark, lake, FACT_KEY, own_dates, [SALE_DATE, DELIVERED_ON])
                                .filter(F.col(DELIVERED_ON) == on_day).select(SALE_DATE))
            moved = sale_dates_holding(spark, lake, lines)
            if moved is not None:
                replaced.append(moved)
            dates = reduce(DataFrame.unionByName, replaced).distinct()
            # Of the sale dates a splice may affect, only those holding a row whose key changes are rewritten.
            again = _dates_resolving_differently(spark, lake, redo.dates, dim_customer, dim_product)
            touched = sorted({r[0] for r in dates.select(F.col(SALE_DATE).cast("string")).collect() if r[0]}
                             | set(again))
            kept = read_partitions(spark, lake, FACT_KEY, [d for d in touched if d in run_days])
            if kept is not None:
                kept = kept.join(lines, "sale_line_id", "left_anti").filter(F.col(DELIVERED_ON) != on_day)
                if again:
                    kept = _resolved_again(kept, again, dim_customer, dim_product)
                content = facts.unionByName(kept, allowMissingColumns=True)
        # One commit for every touched sale date, made by the IO manager, the run day recorded with it; the
        # figures observed on the day's rows while they are written become the output's metadata.
        yield Output(LakeWrite(content, state={RUN_DAY: day, RE_RESOLVED: redo.done}, partition_column=SALE_DATE,
                               replace=tuple(touched), observation=observed),
                     metadata={"sale_dates_resolved_again": len(again),
                               "sale_dates_waiting_to_resolve_again": len(redo.waiting)})
        # Stored before this code resumes: the checks read the table as written.
        run_id = context.run.run_id
        # This day's commit (a run over several days made the others' too).
        written = [d for d, info in lake.commits(FACT_KEY).items()
                   if info.state.get(RUN_ID_STATE) == run_id and info.state.get(RUN_DAY) == day]
        delivered = (read_columns(spark, lake, FACT_KEY, written, [*dimensions, "net_amount", DELIVERED_ON])
                     .filter(F.col(DELIVERED_ON) == on_day) if written else None)
        figures = observed_figures(observed)
        if figures is None:  # Spark skipped the observation: measured on the rows as written instead
            figures = (_with_known_keys(delivered, dimensions).agg(*_fact_figures(dimensions)).collect()[0].asDict()
                       if delivered is not None else {})
        orphans: dict[str, tuple[int, list[str]]] = {
            key: (int(figures.get(f"orphan_{key}") or 0), []) for key in dimensions}
        if delivered is not None:
            orphans = {key: (count, _missing_sample(delivered, dimensions[key], key) if count else [])
                       for key, (count, _) in orphans.items()}
        checked = files_meeting(lake, written)
        unique = line_counts(lake, checked)
        duplicated = [] if unique["rows"] == unique["distinct_lines"] else [
            r["sale_line_id"] for r in read_file_columns(spark, lake, checked, ["sale_line_id"])
            .groupBy("sale_line_id").count().filter("count > 1").orderBy("sale_line_id").limit(SAMPLE_VALUES).collect()]
        failing = {k: v for k, v in orphans.items() if v[0]}
        yield from [
            AssetCheckResult(
                check_name="sale_line_unique",
                passed=unique["rows"] == unique["distinct_lines"],
                metadata={"rows_checked": unique["rows"], "distinct_sale_lines": unique["distinct_lines"],
                          "sale_dates_written": len(written),
                          "rows_this_run": int(figures.get("dagster/row_count") or 0),
                          "duplicated_sample": ", ".join(duplicated) or "none"},
                description=(f"duplicated sale_line_id across partitions, e.g. {', '.join(duplicated)}"
                             if duplicated else None),
            ),
            AssetCheckResult(
                check_name="foreign_keys_resolve",
                passed=not failing,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    **{f"orphan_{k}": count for k, (count, _) in orphans.items()},
                    **{f"orphan_{k}_sample": ", ".join(sample) for k, (_, sample) in failing.items()},
                },
                description="; ".join(
                    f"{count} fact rows have a {k} missing from its dimension, e.g. {', '.join(sample)}"
                    + (" (dim_date does not cover these dates: rematerialize curated/dim_date)"
                       if k == "date_key" else "")
                    for k, (count, sample) in failing.items()
                ) or None,
            ),
        ]

    return fact_sales


def _keys_resolved_again(rows: DataFrame, dim_customer: DataFrame, dim_product: DataFrame) -> DataFrame:
    """`rows` with their customer and product keys resolved again as of sold_at."""
    rows = re_resolve_keys(rows, dim_customer, "customer_id", "customer_key")
    return re_resolve_keys(rows, dim_product, "product_id", "product_key")


def _resolved_again(kept: DataFrame, dates: list[str], dim_customer: DataFrame, dim_product: DataFrame) -> DataFrame:
    """`kept` with the customer and product keys of its rows in `dates` resolved again as of sold_at."""
    again = F.col(SALE_DATE).cast("string").isin(dates)
    return kept.filter(~again).unionByName(_keys_resolved_again(kept.filter(again), dim_customer, dim_product))


def _dates_resolving_differently(spark: SparkSession, lake: LakeStorage, dates: list[str], dim_customer: DataFrame,
                                 dim_product: DataFrame) -> list[str]:
    """The sale dates among `dates` holding a row whose customer or product key resolves differently now.

    A splice's window covers every sale date of the changed stretch of a member's history (from 1900 for
    a record dated before the member's first version), but only the dates where that member sold need
    rewriting: this reads the key columns of `dates` alone, and the other dates keep their files."""
    if not dates:
        return []
    keys = read_columns(spark, lake, FACT_KEY, dates, [SALE_DATE, "sold_at", "customer_key", "product_key"])
    before = keys.select("*", F.col("customer_key").alias("_was_customer"), F.col("product_key").alias("_was_product"))
    after = _keys_resolved_again(before, dim_customer, dim_product)
    moved = (F.col("customer_key") != F.col("_was_customer")) | (F.col("product_key") != F.col("_was_product"))
    return sorted(r[0] for r in after.filter(moved).select(F.col(SALE_DATE).cast("string")).distinct().collect())


def _require_sale_date_partitions(lake: LakeStorage) -> None:
    """Fail with the way out when the lake's fact table is partitioned by another column (a lake
    written before facts were partitioned by sale date)."""
    table = lake.load_table(FACT_KEY)
    if table is not None and lake.partition_column(table) != SALE_DATE:
        raise ValueError(
            f"curated/fact_sales in the lake is partitioned by {lake.partition_column(table)}, not {SALE_DATE}: "
            "drop the lake table curated.fact_sales and re-run the days (see docs/history.md)"
        )


_KNOWN = "_known_"


def _with_known_keys(facts: DataFrame, dimensions: dict[str, DataFrame]) -> DataFrame:
    """`facts` plus, per key column, `_known_<key>`: the key when its dimension has it, else NULL (an
    orphan). Joined against each dimension's distinct keys, broadcast: no fact row is repeated or lost."""
    for key, dim in dimensions.items():
        known = F.broadcast(dim.select(F.col(key).alias(_KNOWN + key)).distinct())
        facts = facts.join(known, facts[key] == known[_KNOWN + key], "left")
    return facts


def _fact_figures(dimensions: dict[str, DataFrame]) -> list[Column]:
    """Aggregates over fact rows carrying `_known_<key>` (see `_with_known_keys`), named as the
    output metadata and the orphan counts of `foreign_keys_resolve`."""
    return [
        F.count(F.lit(1)).alias("dagster/row_count"),
        F.sum((F.col("customer_key") == UNKNOWN_KEY).cast("int")).alias("unknown_customer_rows"),
        F.sum((F.col("product_key") == UNKNOWN_KEY).cast("int")).alias("unknown_product_rows"),
        F.sum((F.col("location_key") == UNKNOWN_KEY).cast("int")).alias("unknown_location_rows"),
        F.sum("net_amount").alias("net_amount_total"),
        *[F.sum(F.col(_KNOWN + key).isNull().cast("int")).alias(f"orphan_{key}") for key in dimensions],
    ]


def _missing_sample(facts: DataFrame, dim: DataFrame, key: str) -> list[str]:
    """Up to five values of `key` in `facts` that its dimension lacks, smallest first."""
    missing = facts.select(key).join(dim.select(key), key, "left_anti").distinct().orderBy(key)
    return [str(r[key]) for r in missing.limit(SAMPLE_VALUES).collect()]


def build_curated_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [
        _build_scd2_dimension(config, "dim_customer", entity_schema(config, "customer"), "customer_key"),
        _build_scd2_dimension(config, "dim_product", entity_schema(config, "product"), "product_key"),
        _build_dim_location(config),
        _build_dim_date(config),
        _build_fact_sales(config),
    ]
