"""Late and corrected SCD Type 2 records spliced into a member's history: pure PySpark.

A *late* change is a dated, non-delete row of a batch whose effective time is at or before its
member's last recorded change (`scd2_merge` ignores it: it continues history only after that point).
`splice_late_changes` applies such rows where they belong. Per member with at least one late change
whose Type-2 state differs from the version valid at its time (a member whose late rows all repeat
the version valid then is left exactly as it is: a re-delivery), the history is rebuilt from
*points*: every existing version at its change time (`_changed_at`) plus every late row at its
effective time, in time order. Rules, each tested in lake_assets_tests/test_scd2_splice.py:

* **In the middle**: the version a late row falls in is cut at the row's time (`valid_to` = that
  time) and the row becomes a version from there to the end of the version it fell in (the next
  version's `valid_from`, or the close time of a member closed by a delete: it stays closed).
* **Before the first version**: a first version is valid from 1900 but changed at `_changed_at`; a
  late row dated before that becomes the member's state from 1900 to the first version's change time,
  and the first version then starts at its change time (sales before it resolve to the late row).
* **At the same instant** as an existing version's change: a correction of that version, applied in
  place (same key, same validity, the row's Type-2 values and hash).
* **Consecutive equal states are one version**: a late row equal to the state before it adds
  nothing; a late row equal to the version after it moves that version's start back to the row's
  time (same key). Two existing versions are never merged, so no key disappears.
* **Keys**: every existing version keeps its key; each new version gets a key above every key of
  the dimension (`keys_above`, as `scd2_merge`). Versions are renumbered in time order, `is_current`
  is set on the open (last) version only, `row_hash` is the row's Type-2 hash, `_changed_at` its time.
* **Type-1 columns** keep the member's value on every version (a late row is older than the
  member's latest change, so its Type-1 values are not the latest; `scd2_merge` overwrites them
  from the batch's on-time rows as usual).
* **Not applied** (listed in `ignored`, for the caller to count and warn about): a late row dated
  while the member was deleted (in the gap between a close and a re-appearance, or at the instant of
  its last close: history says the member did not exist then; a row after that close is not late,
  `scd2_merge` re-opens the member), and late delete rows that fall in a live version (under the
  `ignore` delete policy deletes are nothing to apply).
* Re-applying a batch is a no-op: each spliced row is then an existing version with the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark.scd2 import (
    BASE_KEY,
    CHANGED_AT,
    END_OF_TIME,
    SCD2_META,
    UNKNOWN_KEY,
    DeletePolicy,
    change_events,
    last_change_at,
    stored_hash,
    type2_hash_of,
    with_base_key,
    with_changed_at,
)


@dataclass(frozen=True)
class Splice:
    """What `splice_late_changes` did.

    `dimension`: `current` with the affected members' histories rebuilt (every other row as it was).
    `spliced`: one row per late change applied (natural key, `effective_at`).
    `ignored`: one row per late change not applied (natural key, `effective_at`, `applied_until`).
    `windows`: one row per affected member (natural key, `window_from`, `window_to`): the instants
    whose version key may differ from before, half-open; a sale of the member in it must be resolved
    again. In-place corrections change no key and open no window.

    `dimension` and `windows` are planned on first use: on most days nothing is late, `figures()` says
    so, and the rebuilt histories' plans (dozens of DataFrame operations, each analyzed as it is
    built) are never needed.
    """

    spliced: DataFrame
    ignored: DataFrame
    counts: DataFrame
    rebuild: Callable[[], tuple[DataFrame, DataFrame]] = field(repr=False)

    @cached_property
    def _rebuilt(self) -> tuple[DataFrame, DataFrame]:
        return self.rebuild()

    @property
    def dimension(self) -> DataFrame:
        return self._rebuilt[0]

    @property
    def windows(self) -> DataFrame:
        return self._rebuilt[1]

    def figures(self) -> tuple[int, int]:
        """(rows of `spliced`, rows of `ignored`), from one aggregation."""
        row = self.counts.collect()[0]
        return int(row["spliced"] or 0), int(row["ignored"] or 0)


def splice_late_changes(
    current: DataFrame,
    changes: DataFrame,
    *,
    key_col: str,
    natural_key: str,
    attributes: Mapping[str, str],
    effective_col: str,
    type1_columns: Sequence[str] = (),
    delete_policy: DeletePolicy = "close",
    keys_above: int = 0,
) -> Splice:
    """Splice the late changes of `changes` into `current` (see the module docstring).

    `changes` is a batch as `scd2_merge` takes it; its on-time rows are left to `scd2_merge`, which
    the caller runs on the result. Only the rows of members in `changes` are read, except for the
    highest key (so the part of a dimension `spark/scd2_members.py` sets aside can be left out).
    """
    nk = natural_key
    attr_cols = list(attributes)
    type2_cols = [c for c in attr_cols if c not in type1_columns]
    columns = [key_col, nk, *attr_cols, *SCD2_META]
    current = with_changed_at(current).select(*columns)
    known = current.filter((F.col(key_col) != UNKNOWN_KEY) & ~F.col("is_inferred"))
    applied = known.groupBy(nk).agg(F.max(last_change_at()).alias("applied_until"))

    dated = changes.filter(F.col(effective_col).isNotNull())
    events = change_events(dated, nk, attr_cols, effective_col, "close", None)
    late = (
        events.join(applied, nk)
        .filter(F.col("_effective") <= F.col("applied_until"))
        .withColumn("row_hash", F.when(~F.col("_deleted"), stored_hash(type2_hash_of(type2_cols))))
    )
    spans = known.select(
        F.col(nk).alias("_member"), F.col(key_col).alias("_span"), F.col("valid_from").alias("_span_from"),
        F.col("valid_to").alias("_span_to"), F.col("row_hash").alias("_span_hash"),
        F.col("is_deleted").alias("_span_deleted"),
    )
    placed = late.join(
        spans,
        (late[nk] == spans["_member"]) & (spans["_span_from"] <= late["_effective"])
        & (late["_effective"] < spans["_span_to"]),
        "left",
    ).drop("_member")

    live = ~F.col("_deleted")
    applies = live & F.col("_span").isNotNull() & ~F.col("row_hash").eqNullSafe(F.col("_span_hash"))
    news = placed.filter(applies)
    in_gap = live & F.col("_span").isNull()
    late_delete = F.col("_deleted") & F.col("_span").isNotNull() & ~F.col("_span_deleted")
    not_applied = in_gap | (late_delete & F.lit(delete_policy != "ignore"))
    ignored = placed.filter(not_applied).select(nk, F.col("_effective").alias("effective_at"), "applied_until")
    spliced = news.select(nk, F.col("_effective").alias("effective_at"))

    counts = placed.agg(F.sum(applies.cast("int")).alias("spliced"), F.sum(not_applied.cast("int")).alias("ignored"))

    def rebuild() -> tuple[DataFrame, DataFrame]:
        members = news.select(nk).distinct()
        versions = known.join(members, nk, "left_semi")
        rebuilt = _rebuilt_histories(versions, placed.filter(live & F.col("_span").isNotNull()).join(
            members, nk, "left_semi"), key_col, nk, attr_cols, type1_columns, current, keys_above)
        dimension = current.join(members, nk, "left_anti").select(*columns).unionByName(rebuilt.select(*columns))
        return dimension, _changed_windows(versions, rebuilt, key_col, nk)

    return Splice(spliced=spliced, ignored=ignored, counts=counts, rebuild=rebuild)


def _rebuilt_histories(
    versions: DataFrame,
    placed: DataFrame,
    key_col: str,
    nk: str,
    attr_cols: list[str],
    type1_columns: Sequence[str],
    dimension: DataFrame,
    keys_above: int,
) -> DataFrame:
    """Every version of the members in `versions` after their late rows (`placed`: each with the span,
    i.e. the existing version, it falls in) joined their history; dimension columns. New versions are
    keyed above every key of `dimension` and `keys_above`."""
    # The member's Type-1 values (the same on every version) go onto its new versions.
    latest = Window.partitionBy(nk).orderBy(F.col("valid_from").desc())
    type1 = (versions.withColumn("_r", F.row_number().over(latest)).filter("_r = 1")
             .select(nk, *[F.col(c).alias(f"_t1_{c}") for c in type1_columns]))
    state = [*attr_cols, "is_deleted", "row_hash"]
    existing = versions.select(
        nk, F.col(key_col).alias("_key"), *state, F.coalesce(F.col(CHANGED_AT), F.col("valid_from")).alias("_time"),
        F.col(key_col).alias("_span"), F.col("valid_from").alias("_span_from"), F.col("valid_to").alias("_span_to"),
    )
    late = placed.join(type1, nk, "left").select(
        nk, F.lit(None).cast("bigint").alias("_key"),
        *[F.col(f"_t1_{c}").alias(c) if c in type1_columns else F.col(c) for c in attr_cols],
        F.lit(False).alias("is_deleted"), "row_hash", F.col("_effective").alias("_time"),
        "_span", "_span_from", "_span_to",
    )
    # One point per instant: a late row at an existing version's change time corrects it in place.
    instant = Window.partitionBy(nk, "_time")
    points = (
        existing.unionByName(late)
        .withColumn("_owner", F.max("_key").over(instant))
        .withColumn("_r", F.row_number().over(instant.orderBy(F.col("_key").asc_nulls_first())))
        .filter("_r = 1")
        .withColumn("_key", F.col("_owner"))
    )
    by_time = Window.partitionBy(nk).orderBy("_time")
    # The first point of a span starts where the span starts (1900 for a member's first version).
    span_first = F.row_number().over(Window.partitionBy(nk, "_span").orderBy("_time")) == 1
    gap = F.lag("_span_to").over(by_time) < F.col("_span_from")  # the member was closed in between
    same_state = (F.lag("row_hash").over(by_time).eqNullSafe(F.col("row_hash"))
                  & F.lag("is_deleted").over(by_time).eqNullSafe(F.col("is_deleted")))
    running = by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    points = (
        points.withColumn("_from", F.when(span_first, F.col("_span_from")).otherwise(F.col("_time")))
        .withColumn("_starts", (~same_state | F.coalesce(gap, F.lit(False))).cast("int"))
        .withColumn("_run", F.sum("_starts").over(running))
    )
    # A run of equal states is one version, but two existing versions stay two (both keys are kept).
    in_run = Window.partitionBy(nk, "_run").orderBy("_time").rowsBetween(Window.unboundedPreceding,
                                                                         Window.currentRow)
    points = points.withColumn("_part", F.greatest(F.sum(F.col("_key").isNotNull().cast("int")).over(in_run),
                                                   F.lit(1)))
    kept_state = F.struct(*state)
    grouped = points.groupBy(nk, "_run", "_part").agg(
        F.max("_key").alias("_key"),
        F.min("_time").alias(CHANGED_AT),
        F.min("_from").alias("valid_from"),
        F.max("_span_to").alias("_span_end"),
        F.coalesce(F.max(F.when(F.col("_key").isNotNull(), kept_state)),
                   F.min(F.struct(F.col("_time"), kept_state.alias("_s"))).getField("_s")).alias("_state"),
    )
    member = Window.partitionBy(nk).orderBy("valid_from")
    valid_to = F.least(F.coalesce(F.lead("valid_from").over(member), _end()), F.col("_span_end"))
    new_key = F.col(BASE_KEY) + F.row_number().over(
        Window.partitionBy(F.col("_key").isNull()).orderBy(nk, CHANGED_AT))
    return with_base_key(grouped, dimension, key_col, keys_above).select(
        F.when(F.col("_key").isNull(), new_key).otherwise(F.col("_key")).cast("bigint").alias(key_col),
        nk,
        *[F.col(f"_state.{c}").alias(c) for c in attr_cols],
        F.row_number().over(member).cast("int").alias("version"),
        "valid_from",
        valid_to.alias("valid_to"),
        (valid_to == _end()).alias("is_current"),
        F.col("_state.is_deleted").alias("is_deleted"),
        F.lit(False).alias("is_inferred"),
        F.col("_state.row_hash").alias("row_hash"),
        CHANGED_AT,
    )


def _end() -> Column:
    return F.lit(END_OF_TIME).cast("timestamp")


def _changed_windows(before: DataFrame, after: DataFrame, key_col: str, nk: str) -> DataFrame:
    """Per member, from the earliest to the latest instant whose version (key) differs between
    `before` and `after`: a new version's validity, and the stretch a kept version gained or lost at
    either end."""
    old = before.select(key_col, F.col("valid_from").alias("_of"), F.col("valid_to").alias("_ot"))
    compared = after.join(old, key_col, "left")
    vf, vt, of, ot = F.col("valid_from"), F.col("valid_to"), F.col("_of"), F.col("_ot")
    stretches = F.array(
        F.when(of.isNull(), F.struct(vf.alias("s"), vt.alias("e"))),
        F.when(of != vf, F.struct(F.least(of, vf).alias("s"), F.greatest(of, vf).alias("e"))),
        F.when(ot != vt, F.struct(F.least(ot, vt).alias("s"), F.greatest(ot, vt).alias("e"))),
    )
    exploded = compared.select(nk, F.explode(stretches).alias("_w")).filter(F.col("_w").isNotNull())
    return exploded.groupBy(nk).agg(F.min("_w.s").alias("window_from"), F.max("_w.e").alias("window_to"))
