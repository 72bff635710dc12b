"""processed/<entity>: every raw table mapped to the entity, standardized, daily partitioned.

Grain: one row per entity record version. For `keep_versions` entities (customer, product) that is
one row per (key, `updated_at`): several changes of one customer on one day all survive, because the
SCD2 dimension must see each of them; only re-deliveries of the same version are removed (the latest
ingest wins, then the latest source file, then a content hash, so reruns pick the same row). For
location and sale it is one row per key.
Rows that cannot be standardized (missing required key, `reject` null rule, unparsable or ambiguous
date/number) go to `quarantine/processed/<entity>/ingest_date=D` with the reason (`_reject_reason`),
and are counted in the processed asset's metadata (total and per reason). The quarantine is an asset
of its own (group `quarantine`, same daily partitions, depending on the same raw tables), the second
output of this step: when both are selected the lake IO manager stores both tables. One Spark job
per day types the rows, de-duplicates the usable ones (the rejected ones pass through) and stages both
tables (`io_managers/spark_split.py`); the typed rows are never cached. The
step yields the quarantine first, so it is committed before anything else is decided. When more than
`standardize.max_quarantine_share` of the input is quarantined, or a feed with rows lacks a required
column entirely, the step then fails (not retried: the same input fails again), naming the entity,
the count and the reasons; the quarantine rows stay for inspection. A rerun of the day replaces
both partitions (one commit each). A selection may take either output alone (`*warehouse/fact_sales`
leaves the quarantine out): the step then stores the rejected rows to the same quarantine partition
with the IO manager's own write (`assets/side_tables.py`), so no selection loses them.
Rows removed by de-duplication are counted: exact copies, and rows that shared the key but differed
(those are not duplicates); the check `no_conflicting_duplicates` warns about the latter.
Null rules, timestamp formats and aggregations come from the `standardize` config section, never from
code per source. Before typing, each table's mapping rules run (spark/mapping_rules.py): generated keys,
nested paths and renames, Unix timestamps, scales and value maps. A table feeding this entity through
`also_feeds` contributes only its mapped columns, and only its rows that carry the entity key.
Audit columns: `_processed_at`, `_run_id`, `_source`, `_row_hash` (SHA-256 over the business columns).
A run over a range of days standardizes and de-duplicates each day on its own, oldest first, one
commit per day and output (`assets/day_range.py`): a day's rows are never de-duplicated against
another day's.

processed/agg/<name>: optional aggregates of one entity (config `standardize.entities.<e>.aggregations`).
"""

from collections.abc import Iterator
from functools import reduce
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    Failure,
    Output,
    asset,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lake_assets.assets.day_range import each_day
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from lake_assets.assets.raw import raw_asset_key
from lake_assets.assets.side_tables import store_side_table
from lake_assets.config import EntityStandardizeConfig, FeedSourceConfig, PipelineConfig
from lake_assets.entities import EntitySchema, entity_schemas
from lake_assets.ingestion import QUARANTINE_LAYER
from lake_assets.io_managers.lake_write import LakeWrite
from lake_assets.io_managers.partition_range import for_day
from lake_assets.io_managers.spark_lake import read_columns
from lake_assets.io_managers.spark_split import write_spark_split
from lake_assets.resources.lake_storage import LakeStorage, StagedBatch
from spark.aggregations import aggregate, metric_column
from spark.mapping_rules import (
    absent_key_parts,
    apply_value_rules,
    generate_keys,
    map_columns,
    present,
    unmatched_sources,
)
from spark.naming import snake_case_names
from spark.number_text import is_number_type
from spark.standardize import (
    AUDIT_COLUMNS,
    DEFAULT_NULL_TOKENS,
    DEFAULT_TIMESTAMP_FORMATS,
    DEFAULT_TYPED_NULL_TOKENS,
    REJECT_REASON,
    ROW_HASH,
    DuplicateCounter,
    DuplicateStats,
    add_audit_columns,
    apply_null_defaults,
    cast_to_schema,
    deduplicate_latest,
    flag_rejects,
    infer_date_orders,
    snake_case_columns,
    with_row_hash,
)

CONFLICT_CHECK = "no_conflicting_duplicates"


def quarantine_key(entity: str) -> list[str]:
    """The processed layer's quarantine of one entity: `quarantine/processed/<entity>`."""
    return [QUARANTINE_LAYER, "processed", entity]


def _null_rules(entity: EntitySchema, rules: EntityStandardizeConfig) -> tuple[dict[str, str], tuple[str, ...]]:
    """(defaults, required columns) for one entity; a `keep` rule on a key column is a config error."""
    kept_keys = sorted(c for c, r in rules.nulls.items() if r.rule == "keep" and c in entity.required)
    if kept_keys:
        raise ValueError(
            f"standardize.entities.{entity.name}.nulls: {kept_keys} are required by the entity; "
            "a NULL there can only be rejected or defaulted"
        )
    defaults = {c: r.value for c, r in rules.nulls.items() if r.rule == "default" and r.value is not None}
    rejected = tuple(c for c, r in rules.nulls.items() if r.rule == "reject" and c not in entity.required)
    return defaults, (*entity.required, *rejected)


def timestamp_formats(config: PipelineConfig, entity: str) -> tuple[str, ...]:
    """The formats tried, in order: the entity's, then `standardize.timestamp_formats`, then the
    built-in ones (configured formats add to the defaults; they never remove one)."""
    rules = config.standardize.entities.get(entity, EntityStandardizeConfig())
    ordered = [*(rules.timestamp_formats or ()), *(config.standardize.timestamp_formats or ()),
               *DEFAULT_TIMESTAMP_FORMATS]
    return tuple(dict.fromkeys(ordered))


def id_columns(entity: EntitySchema) -> tuple[str, ...]:
    """String `*_id` columns (customer_id, order_id, ...): identifiers, never free text."""
    return tuple(c for c, t in entity.columns.items() if t == "string" and c.endswith("_id"))


def _absent_required(
    entity: EntitySchema, required: tuple[str, ...], feeds: list[tuple[FeedSourceConfig, Any]],
    frames: list[DataFrame],
) -> list[str]:
    """One problem per (feed with rows, required column it lacks after renames), naming the renames
    that should have produced it."""
    problems = []
    for (source, table), frame in zip(feeds, frames, strict=True):
        absent = [c for c in required if c not in frame.columns]
        if not absent or not frame.limit(1).count():
            continue  # a feed without rows that day says nothing about its columns
        for column in absent:
            mapped = [f"{src!r}" for src, dst in table.columns.items() if dst == column]
            origin = ", ".join(mapped) if mapped else f"no rename; a column named {column!r}"
            delivered = sorted(c for c in frame.columns if not c.startswith("_"))
            problems.append(
                f"{source.name}.{table.name}: required column {column} absent "
                f"(mapped from: {origin}); delivered columns: {delivered}"
            )
    return problems


def _unmatched_renames(feeds: list[tuple[FeedSourceConfig, Any]], raw_frames: list[DataFrame]) -> list[str]:
    """One problem per `columns` key of a feed with rows that matches no delivered column: left alone it
    would make its entity column NULL on every row of that table without a word."""
    problems = []
    for (source, table), frame in zip(feeds, raw_frames, strict=True):
        delivered = [c for c in snake_case_names(frame.columns).values() if not c.startswith("_")]
        unmatched = unmatched_sources(table.columns, delivered)
        if not unmatched or not frame.limit(1).count():
            continue  # a feed without rows that day says nothing about its columns
        feed = f" (also_feeds {table.entity})" if _is_also_feed(source, table) else ""
        for key in unmatched:
            problems.append(
                f"{source.name}.{table.name}{feed}: columns key {key!r} (-> {table.columns[key]}) matches no "
                f"delivered column; delivered columns: {sorted(delivered)}"
            )
    return problems


def _key_rules(table: Any) -> dict[str, Any]:
    """`generate` as spark/mapping_rules.py takes it: target -> source columns, or `file_row`."""
    return {target: rule if isinstance(rule, str) else list(rule.from_) for target, rule in table.generate.items()}


def _is_also_feed(source: FeedSourceConfig, table: Any) -> bool:
    """Whether `table` is the view of a table feeding this entity through `also_feeds`."""
    return not any(t is table for t in source.tables)


def _mapped(
    frame: DataFrame, source: FeedSourceConfig, table: Any, entity: EntitySchema, null_tokens: tuple[str, ...]
) -> DataFrame:
    """One raw table mapped onto the entity: snake_case, generated keys, nested paths and renames, value
    rules. Through `also_feeds` only the mapped columns are kept, and rows without the entity key are
    skipped: a sale line without a customer carries no customer record."""
    frame = generate_keys(snake_case_columns(frame), _key_rules(table), null_tokens)
    also = _is_also_feed(source, table)
    frame = map_columns(frame, table.columns, keep_unmapped=not also)
    numbers = [c for c, t in entity.columns.items() if is_number_type(t)]
    frame = apply_value_rules(frame, timestamp_units=table.timestamp_units, scale=table.scale,
                              value_map=table.value_map,
                              decimal_comma=numbers if table.decimal_separator == "," else ())
    if also:
        frame = frame.filter(present([c for c in entity.key if c in frame.columns], null_tokens))
    return frame


def _conflict_check(entity: EntitySchema, stats: DuplicateStats) -> AssetCheckResult:
    samples = "; ".join(", ".join(f"{k}={v}" for k, v in key.items()) for key in stats.sample_keys)
    return AssetCheckResult(
        asset_key=AssetKey(["processed", entity.name]),
        check_name=CONFLICT_CHECK,
        passed=stats.conflicting_keys == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "conflicting_keys": stats.conflicting_keys,
            "conflicting_rows_removed": stats.conflicting_rows,
            "exact_duplicates_removed": stats.exact_duplicates,
            # Key columns only: the rest of a row may hold personal data this layer has not masked yet.
            "sample_keys": samples or "none",
            "what_to_do": "none" if not stats.conflicting_keys else (
                f"rows sharing ({', '.join(entity.dedup_key)}) differ in other columns, so they are not "
                "duplicates; only one per key was kept. Check which source column is mapped to "
                f"{', '.join(entity.key)}: it is probably not unique."
            ),
        },
    )


def _build_processed_asset(config: PipelineConfig, entity: EntitySchema) -> AssetsDefinition | None:
    feeds = config.tables_for_entity(entity.name)
    if not feeds:
        return None
    ins = {f"raw_{i}": AssetIn(key=raw_asset_key(source, table)) for i, (source, table) in enumerate(feeds)}
    rules = config.standardize.entities.get(entity.name, EntityStandardizeConfig())
    formats = timestamp_formats(config, entity.name)
    configured_formats = len(formats) - len(DEFAULT_TIMESTAMP_FORMATS)
    null_tokens = tuple(
        DEFAULT_NULL_TOKENS if config.standardize.null_tokens is None else config.standardize.null_tokens
    )
    typed_null_tokens = tuple(
        DEFAULT_TYPED_NULL_TOKENS if config.standardize.typed_null_tokens is None
        else config.standardize.typed_null_tokens
    )
    max_share = config.standardize.max_quarantine_share
    defaults, required = _null_rules(entity, rules)
    dated = [c for c, t in entity.columns.items() if t in ("timestamp", "date")]

    @multi_asset(
        name=f"processed__{entity.name}",
        outs={
            "processed": AssetOut(
                is_required=False,  # the step is subsettable: a selection may leave this output out
                key=["processed", entity.name],
                group_name="processed",
                kinds={"spark", "parquet"},
                description=f"Standardized `{entity.name}` records. Grain: one row per "
                + (f"({', '.join(entity.dedup_key)})." if entity.keep_versions else f"{', '.join(entity.key)}."),
            ),
            "quarantine": AssetOut(
                is_required=False,  # the step is subsettable: a selection may leave this output out
                key=quarantine_key(entity.name),
                group_name=QUARANTINE_LAYER,
                kinds={"spark", "parquet"},
                description=f"Input rows of processed/{entity.name} that could not be standardized, as "
                "typed so far, with `_reject_reason` (every problem of the row). Grain: one row per "
                "rejected input row. Written even when the step then fails for too high a share.",
            ),
        },
        ins=ins,
        partitions_def=daily_partitions(config),
        backfill_policy=DAILY_BACKFILL_POLICY,
        can_subset=True,
        check_specs=[
            AssetCheckSpec(
                CONFLICT_CHECK,
                asset=["processed", entity.name],
                description="Warns when rows removed as duplicates differed from the kept row "
                f"(same ({', '.join(entity.dedup_key)}), other content).",
            )
        ],
    )
    def _processed(context: AssetExecutionContext, lake: LakeStorage, **raw_inputs: Any) -> Iterator:
        yield from each_day(context, lake, lambda day: _standardize_day(
            context, lake, day, {name: for_day(value, day) for name, value in raw_inputs.items()}))

    def _standardize_day(
        context: AssetExecutionContext, lake: LakeStorage, day: str, raw_frames: dict[str, DataFrame]
    ) -> Iterator:
        """One day's delivery standardized and de-duplicated (within the day)."""
        # Id tokens too: a key part or an entity key of `NA` is no value (as cast_to_schema treats ids).
        frames = [
            _mapped(raw_frames[name], source, table, entity, (*null_tokens, *typed_null_tokens))
            for name, (source, table) in zip(ins, feeds, strict=True)
        ]
        unioned = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
        context.log.info(
            f"{entity.name}: timestamp formats tried in order: {list(formats)} ({configured_formats} "
            "configured, then the built-in ones); d/M/yyyy dates follow each file's day/month order"
        )
        date_orders = infer_date_orders(unioned, dated)
        open_orders = sorted(f for f, o in date_orders.items() if o in ("undecided", "conflicting"))
        if open_orders:
            # With a configured format those dates are usually read by it: then this is only information.
            (context.log.info if configured_formats else context.log.warning)(
                f"{entity.name}: day/month order of d/M/yyyy dates is undecided or conflicting in "
                f"{open_orders[:10]}; such dates are quarantined unless standardize.timestamp_formats "
                "(or the entity's) has a format for them"
            )
        typed = cast_to_schema(
            unioned,
            entity.columns,
            lowercase=entity.lowercase,
            uppercase=entity.uppercase,
            digits_only=entity.digits_only,
            id_columns=id_columns(entity),
            timestamp_formats=formats,
            null_tokens=null_tokens,
            typed_null_tokens=typed_null_tokens,
            date_orders=date_orders,
        )
        typed = apply_null_defaults(typed, defaults)
        order = [c for c in (entity.cursor, "_ingested_at") if c]
        tie_breakers = [c for c in ("_source_file",) if c in typed.columns]
        counter = DuplicateCounter()
        # The content hash is computed once, before the shuffle: the de-duplication's last tie-breaker
        # and the output's `_row_hash` alike. Rejected rows pass through the de-duplication untouched, so
        # one job writes the processed rows and the quarantine (`write_spark_split`).
        hashed = with_row_hash(flag_rejects(typed, required), list(entity.columns))
        deduplicated = deduplicate_latest(hashed, entity.dedup_key, order, tie_breakers, counter=counter,
                                          tie_hash=ROW_HASH, reason=REJECT_REASON)
        result = add_audit_columns(deduplicated, None, context.run.run_id)
        with lake.spool(["processed", entity.name], day) as processed_rows, \
                lake.spool(quarantine_key(entity.name), day) as rejects:
            write_spark_split(result, lake, processed_rows, rejects, REJECT_REASON, usable_only=AUDIT_COLUMNS,
                              carrier=ROW_HASH)
            # Committed before anything else is decided, so the rows are kept if the step fails below.
            rejected_rows = yield from store_side_table(context, lake, "quarantine", quarantine_key(entity.name),
                                                        rejects, day)
            yield from _judge_and_store(context, lake, day, processed_rows, counter, rejected_rows,
                                        _absent_columns(raw_frames, frames), date_orders,
                                        result.sparkSession)

    def _absent_columns(raw_frames: dict[str, DataFrame], frames: list[DataFrame]) -> list[str]:
        """Required columns a feed with rows lacks, key parts a generated key cannot find, renames that
        match no delivered column: each fails the day."""
        return _absent_required(entity, required, feeds, frames) + [
            f"{source.name}.{table.name}: {problem}"
            for (source, table), name, frame in zip(feeds, ins, frames, strict=True)
            for problem in absent_key_parts(list(snake_case_names(raw_frames[name].columns).values()),
                                            _key_rules(table))
            if frame.limit(1).count()
        ] + _unmatched_renames(feeds, [raw_frames[name] for name in ins])

    def _judge_and_store(
        context: AssetExecutionContext, lake: LakeStorage, day: str, processed_rows: StagedBatch,
        counter: DuplicateCounter, rejected_rows: int, absent: list[str], date_orders: dict[str, str],
        spark: SparkSession,
    ) -> Iterator:
        """After the quarantine's commit: fail the day when a column is absent or too much was rejected,
        else commit the processed rows (staged by the job that wrote the quarantine) and judge their
        duplicates."""
        stats = counter.stats()  # measured by the job that wrote both sides
        reasons = {}
        if rejected_rows:
            # One reason string can list several problems; count per whole reason (bounded by columns).
            rejected = read_columns(spark, lake, quarantine_key(entity.name),
                                    [day], [REJECT_REASON])
            reasons = {r[REJECT_REASON]: r["n"] for r in rejected.groupBy(REJECT_REASON).agg(F.count("*").alias("n"))
                       .orderBy(F.desc("n"), REJECT_REASON).limit(20).collect()}
        input_rows = stats.rows + stats.quarantined
        where = f"{'/'.join(quarantine_key(entity.name))}/ingest_date={day}"
        share = rejected_rows / input_rows if input_rows else 0.0
        if absent or share > max_share:
            top = "; ".join(f"{n} rows: {r}" for r, n in list(reasons.items())[:3]) or "none"
            headline = (
                f"processed/{entity.name}: {rejected_rows} of {input_rows} input rows quarantined "
                f"({share:.1%}; standardize.max_quarantine_share is {max_share:.1%})."
            )
            raise Failure(
                description="\n".join([headline, *absent, f"Top reasons: {top}.",
                                       f"The rows are in {where}; fix the source file or the mapping "
                                       "(sources[].tables[].columns, standardize.*) and rerun the day."]),
                metadata={"quarantined_rows": rejected_rows, "input_rows": input_rows,
                          "quarantined_share": round(share, 4)},
                allow_retries=False,
            )
        if rejected_rows:
            context.log.warning(f"{rejected_rows} of {input_rows} {entity.name} rows quarantined ({where})")
        if AssetKey(["processed", entity.name]) not in context.selected_asset_keys:
            return
        yield Output(
            # The de-duplication counts (duplicate_rows_removed, quarantined_rows, ...) were measured by the
            # job that staged these rows; the IO manager adds them to the metadata.
            LakeWrite(processed_rows, observation=counter.observation),
            output_name="processed",
            metadata={
                "input_rows": input_rows,
                "quarantine_reasons": ", ".join(f"{r}: {n}" for r, n in reasons.items()) or "none",
                "null_defaults": ", ".join(sorted(defaults)) or "none",
                "timestamp_formats": ", ".join(formats),
                "date_orders": ", ".join(f"{f.rsplit('/', 1)[-1] or 'batch'}: {o}"
                                         for f, o in sorted(date_orders.items())[:20]) or "none",
                "sources": len(feeds),
            },
        )
        if stats.conflicting_keys:
            context.log.warning(
                f"{entity.name}: {stats.conflicting_rows} rows removed by de-duplication differed from the "
                f"row kept for their ({', '.join(entity.dedup_key)}) in {stats.conflicting_keys} keys; "
                "the mapped key is probably not unique"
            )
        if context.selected_asset_check_keys:
            yield _conflict_check(entity, stats)

    return _processed


def _build_aggregation_asset(config: PipelineConfig, entity: EntitySchema, index: int) -> AssetsDefinition:
    spec = config.standardize.entities[entity.name].aggregations[index]
    for expression in spec.metrics.values():
        metric_column(expression)  # fail at definitions load, not mid-run

    @asset(
        key=["processed", "agg", spec.name],
        group_name="processed",
        ins={"processed": AssetIn(key=["processed", entity.name])},
        partitions_def=daily_partitions(config),
        backfill_policy=DAILY_BACKFILL_POLICY,
        kinds={"spark", "parquet"},
        description=f"Aggregate of processed/{entity.name}. Grain: one row per ({', '.join(spec.group_by)}).",
    )
    def _aggregate(context: AssetExecutionContext, lake: LakeStorage, processed: Any) -> Iterator[Output]:
        yield from each_day(context, lake, lambda day: [
            Output(aggregate(for_day(processed, day), spec.group_by, spec.metrics))])

    return _aggregate


def build_processed_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    entities = entity_schemas(config)  # with the configured extra columns
    built = [_build_processed_asset(config, entity) for entity in entities.values()]
    aggregates = [
        _build_aggregation_asset(config, entities[name], i)
        for name, rules in config.standardize.entities.items()
        if config.tables_for_entity(name)
        for i in range(len(rules.aggregations))
    ]
    return [a for a in built if a is not None] + aggregates
