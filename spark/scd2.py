"""SCD Type 2 merge, inferred (late-arriving) members and the unknown member: pure PySpark.

Grain of an SCD2 dimension: one row per member version. Columns: surrogate key, natural key, the
attributes, then `version`, `valid_from`, `valid_to` (half-open: valid_from <= t < valid_to),
`is_current`, `is_deleted`, `is_inferred`, `row_hash` (SHA-256 over the Type-2 attributes, base64).

Guarantees of `scd2_merge` (each is tested in lake_assets_tests/test_scd2.py):
* Surrogate keys never change; new versions get `max(existing key) + n`. The unknown member is -1.
* Per natural key: at most one current row and no overlapping validity, whatever the batch holds
  (several changes of one member are ordered by their effective time; exact duplicates and
  re-deliveries collapse; two different rows at the same instant keep the later-delivered one).
* A change becomes a version only when the Type-2 attributes differ from the previous state, so
  A -> B -> A makes three versions and re-applying an already applied batch is a no-op (events not
  later than the member's last recorded change are ignored). The last recorded change is kept in
  `_changed_at` (a first version's validity starts in 1900, its change does not), so a record older
  than a member's first version never takes over as current; `late_changes` lists such records.
* The Type-2 state is compared through `_attr_hash` when the batch carries it: a keyed hash of the
  *unmasked* Type-2 values, computed by the masked layer before masking (`attribute_hash`). A moved
  street address is then a change even though `[REDACTED]` reads the same before and after, and two
  members with different streets get different `row_hash` values. Without it, the delivered values
  are hashed.
* A row without an effective time (the source gives no change timestamp) takes `undated_at`, the
  start of the partition day being applied: a member whose attributes differ from its latest version
  still gets a new version, and re-applying that day is a no-op because the stamp is not later than
  the version it created. Without `undated_at` such rows only ever create a member's first version.
* Type-1 columns are overwritten on every version of the member with the latest delivered value;
  under `keep_last_known` (the default) a NULL never replaces a known value, under `overwrite` the
  latest delivered value wins even when it is NULL.
* Hard deletes are rows whose `_deleted` column is true (see `DELETE_FLAG`); the policy decides:
  `ignore` drops them, `close` ends the current version at the delete time (no current row until the
  member re-appears, which opens a new version), `mark_deleted` adds a version with `is_deleted`.
* Inferred members (created by `add_inferred_members` when a fact references a member not delivered
  yet) are completed in place when the real row arrives: same key, same validity, `is_inferred`
  false, so facts already pointing at them keep their key and now see the real attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark.masking import hmac_sha256
from spark.standardize import row_hash

UNKNOWN_KEY = -1
BEGINNING_OF_TIME = datetime(1900, 1, 1)
END_OF_TIME = datetime(9999, 12, 31)
# When the version's change happened at the source. Equal to `valid_from` except on a member's first
# version, whose validity starts at the beginning of time so earlier facts resolve to it; without it a
# record older than that first version, delivered later, would look newer and take over as current.
# A lake-only column: the warehouse tables do not have it.
CHANGED_AT = "_changed_at"
SCD2_META = ("version", "valid_from", "valid_to", "is_current", "is_deleted", "is_inferred", "row_hash", CHANGED_AT)
DELETE_FLAG = "_deleted"
DELIVERY_ORDER = "_ingested_at"
DeletePolicy = Literal["ignore", "close", "mark_deleted"]
Type1NullPolicy = Literal["keep_last_known", "overwrite"]
ATTR_HASH = "_attr_hash"
_CLOSED = "<deleted>"
_INFERRED_HASH = "inferred"


def _ts(value: datetime) -> Column:
    return F.lit(value).cast("timestamp")


def attribute_hash(columns: Sequence[str], hash_key: bytes) -> Column:
    """HMAC-SHA256 (hex) of the values of `columns`, NULL and empty string told apart.

    Computed on unmasked rows, it lets change detection see through masking without exposing the
    values: equal values give equal hashes, and without the key no candidate value can be matched.
    """
    parts = [F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("\u0000")) for c in columns]
    return hmac_sha256(F.concat_ws("\u001f", *parts), hash_key)


def _placeholder_attributes(attributes: Mapping[str, str]) -> list[Column]:
    # Strings read "Unknown" in BI tools; other types stay NULL.
    return [
        (F.lit("Unknown") if spark_type == "string" else F.lit(None)).cast(spark_type).alias(name)
        for name, spark_type in attributes.items()
    ]


def _valid_for_all_time(scd2: bool, *, version: int, inferred: bool, hash_value: str) -> list[Column]:
    """Bookkeeping columns of a placeholder row (unknown or inferred member) that every fact resolves to."""
    if not scd2:
        return [F.lit(inferred).alias("is_inferred")]
    return [
        F.lit(version).alias("version"),
        _ts(BEGINNING_OF_TIME).alias("valid_from"),
        _ts(END_OF_TIME).alias("valid_to"),
        F.lit(True).alias("is_current"),
        F.lit(False).alias("is_deleted"),
        F.lit(inferred).alias("is_inferred"),
        F.lit(hash_value).alias("row_hash"),
        F.lit(None).cast("timestamp").alias(CHANGED_AT),
    ]


def unknown_member(
    spark: SparkSession, key_col: str, natural_key: str, attributes: Mapping[str, str], scd2: bool
) -> DataFrame:
    """The one row with key -1 that facts point to when their member is missing (NULL natural key)."""
    values = [F.lit(UNKNOWN_KEY).cast("bigint").alias(key_col), F.lit("UNKNOWN").alias(natural_key)]
    values += _placeholder_attributes(attributes)
    values += _valid_for_all_time(scd2, version=0, inferred=False, hash_value="unknown")
    return spark.range(1).select(*values)


def empty_scd2_dimension(
    spark: SparkSession, key_col: str, natural_key: str, attributes: Mapping[str, str]
) -> DataFrame:
    """A dimension holding only its unknown member."""
    return unknown_member(spark, key_col, natural_key, attributes, scd2=True)


def max_key(dim: DataFrame, key_col: str) -> int:
    """The highest surrogate key of `dim` (0 when it has none above 0): new rows are numbered above it."""
    value = dim.agg(F.max(key_col)).collect()[0][0]
    return max(int(value) if value is not None else 0, 0)


BASE_KEY = "_base_key"


def with_base_key(rows: DataFrame, dim: DataFrame, key_col: str, keys_above: int = 0) -> DataFrame:
    """`rows` plus `_base_key`: the highest of `dim`'s keys, `keys_above` and 0, which new keys are
    numbered above. Computed inside the plan that numbers the rows (one broadcast row), so finding it
    costs no job of its own and is only done when that plan runs."""
    highest = F.greatest(F.coalesce(F.max(key_col), F.lit(0)), F.lit(keys_above)).cast("bigint")
    return rows.crossJoin(F.broadcast(dim.agg(highest.alias(BASE_KEY))))


def add_inferred_members(
    dim: DataFrame,
    referenced: DataFrame,
    *,
    key_col: str,
    natural_key: str,
    attributes: Mapping[str, str],
    scd2: bool = True,
    keys_above: int = 0,
) -> DataFrame:
    """Add an inferred row for every natural key in `referenced` that the dimension has never seen.

    The row is valid for all time (1900-01-01 .. 9999-12-31) so every fact resolves to it; its
    attributes are placeholders until `scd2_merge` / `scd1_merge` completes it in place. New keys start
    above `dim`'s highest key and above `keys_above` (the highest key of rows held elsewhere, when `dim`
    is part of a dimension: see `spark/scd2_members.py`).
    """
    missing = (
        referenced.select(natural_key)
        .filter(F.col(natural_key).isNotNull())
        .distinct()
        .join(dim.select(natural_key), natural_key, "left_anti")
    )
    values = [
        (F.col(BASE_KEY) + F.row_number().over(Window.orderBy(natural_key))).cast("bigint").alias(key_col),
        F.col(natural_key),
        *_placeholder_attributes(attributes),
        *_valid_for_all_time(scd2, version=1, inferred=True, hash_value=_INFERRED_HASH),
    ]
    # A dimension written before `_changed_at` existed lacks it: its rows read NULL there.
    return dim.unionByName(with_base_key(missing, dim, key_col, keys_above).select(*values), allowMissingColumns=True)


def _undated_stamp(undated_at: datetime | None) -> Column:
    if undated_at is None:
        return _ts(BEGINNING_OF_TIME)
    # Through text, so the instant is read in the session time zone (UTC), like every lake timestamp.
    return F.lit(undated_at.strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp")


def change_events(
    changes: DataFrame,
    natural_key: str,
    attr_cols: Sequence[str],
    effective_col: str,
    policy: DeletePolicy,
    undated_at: datetime | None,
) -> DataFrame:
    """One event per member and instant: (natural key, attributes, _attr_hash, _effective, _deleted)."""
    deleted = F.coalesce(F.col(DELETE_FLAG), F.lit(False)) if DELETE_FLAG in changes.columns else F.lit(False)
    delivered = F.col(DELIVERY_ORDER) if DELIVERY_ORDER in changes.columns else F.lit(None).cast("timestamp")
    keyed = F.col(ATTR_HASH) if ATTR_HASH in changes.columns else F.lit(None).cast("string")
    events = changes.filter(F.col(natural_key).isNotNull()).select(
        natural_key,
        *attr_cols,
        keyed.alias(ATTR_HASH),
        F.coalesce(F.col(effective_col).cast("timestamp"), _undated_stamp(undated_at)).alias("_effective"),
        deleted.alias("_deleted"),
        delivered.alias("_delivered"),
        # Masked values alone can tie two different rows; the keyed hash tells them apart.
        F.concat_ws("|", row_hash([*attr_cols]), keyed).alias("_content"),
    )
    if policy == "ignore":
        events = events.filter(~F.col("_deleted"))
    # Two different rows at one instant would give a version with empty validity: keep the one
    # delivered last, then a deterministic choice so reruns pick the same row.
    same_instant = Window.partitionBy(natural_key, "_effective").orderBy(
        F.col("_delivered").desc_nulls_last(), F.col("_deleted").desc(), F.col("_content").desc()
    )
    return events.withColumn("_r", F.row_number().over(same_instant)).filter("_r = 1").drop("_r", "_delivered")


def scd2_merge(
    current: DataFrame,
    changes: DataFrame,
    *,
    key_col: str,
    natural_key: str,
    attributes: Mapping[str, str],
    effective_col: str,
    type1_columns: Sequence[str] = (),
    delete_policy: DeletePolicy = "ignore",
    undated_at: datetime | None = None,
    type1_null_policy: Type1NullPolicy = "keep_last_known",
    keys_above: int = 0,
) -> DataFrame:
    """Apply one batch of changes (and deletes) to an SCD Type 2 dimension; see the module docstring.

    `undated_at`: the effective time of rows whose `effective_col` is NULL (the start of the partition
    day being applied). `changes` may carry `_attr_hash` (see `attribute_hash`) for change detection.
    `keys_above`: new surrogate keys also start above this one (the highest key of rows held elsewhere
    when `current` is only the part of a dimension the batch can change: see `spark/scd2_members.py`).
    Only the rows of members in `changes` are read for anything but the highest key, so such a part
    gives the same rows as the whole dimension.
    """
    attr_cols = list(attributes)
    unknown_type1 = set(type1_columns) - set(attr_cols)
    if unknown_type1:
        raise ValueError(f"type1 columns {sorted(unknown_type1)} are not attributes of the dimension")
    type2_cols = [c for c in attr_cols if c not in type1_columns]
    columns = [key_col, natural_key, *attr_cols, *SCD2_META]
    current = with_changed_at(current).select(*columns)
    known = current.filter(F.col(key_col) != UNKNOWN_KEY)

    # The member's latest version is the anchor the batch continues from.
    by_version = Window.partitionBy(natural_key).orderBy(F.col("version").desc())
    anchors = (
        known.withColumn("_r", F.row_number().over(by_version))
        .filter("_r = 1")
        .select(
            natural_key,
            F.col(key_col).alias("_a_key"),
            F.col("version").alias("_a_version"),
            F.col("valid_from").alias("_a_from"),
            F.col("is_current").alias("_a_current"),
            F.col("is_inferred").alias("_a_inferred"),
            F.struct(*attr_cols).alias("_a_attrs"),
            last_change_at().alias("_a_time"),
            F.when(F.col("is_current"), F.col("row_hash")).otherwise(F.lit(_CLOSED)).alias("_a_hash"),
        )
    )
    events = change_events(changes, natural_key, attr_cols, effective_col, delete_policy, undated_at)
    events = events.join(anchors, natural_key, "left").filter(
        F.col("_a_time").isNull() | (F.col("_effective") > F.col("_a_time"))
    )

    ordered = Window.partitionBy(natural_key).orderBy("_effective")
    if delete_policy == "mark_deleted":
        # A deleted version repeats the attributes the member had just before the delete.
        running = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        last_attrs = F.coalesce(
            F.last(F.when(~F.col("_deleted"), F.struct(*attr_cols)), ignorenulls=True).over(running),
            F.col("_a_attrs"),
        )
        events = events.withColumn("_attrs", last_attrs).select(
            *[c for c in events.columns if c not in attr_cols], *[F.col(f"_attrs.{c}").alias(c) for c in attr_cols]
        )
    # The keyed hash of the unmasked values when the batch has it; a delete row has none, and a
    # `mark_deleted` version is told apart by its marker, so its delivered values suffice there.
    type2_hash = type2_hash_of(type2_cols)
    event_hash = (
        F.when(~F.col("_deleted"), stored_hash(type2_hash))
        .when(F.lit(delete_policy == "close"), F.lit(_CLOSED))
        .otherwise(F.base64(F.unhex(F.sha2(F.concat(type2_hash, F.lit("|deleted")), 256))))
    )
    events = events.withColumn("row_hash", event_hash)
    previous = F.coalesce(F.lag("row_hash").over(ordered), F.col("_a_hash"))
    changed = (
        events.withColumn("_previous", previous)
        # Keep real state changes only; a delete of a member never seen is nothing to record.
        .filter(F.col("_previous").isNull() | (F.col("_previous") != F.col("row_hash")))
        .filter(~(F.col("_deleted") & F.col("_previous").isNull()))
        .withColumn("_next", F.lead("_effective").over(ordered))
        .withColumn("_seq", F.row_number().over(ordered))
        # An inferred member's first real row completes the inferred row instead of adding a version.
        .withColumn(
            "_in_place", F.coalesce(F.col("_a_inferred"), F.lit(False)) & (F.col("_seq") == 1) & ~F.col("_deleted")
        )
    )
    first_change = changed.filter("_seq = 1").select(
        natural_key, F.col("_effective").alias("_closed_at"), F.col("_in_place").alias("_fill")
    )

    # Under `close` a delete only ends the version before it; every other change is a new row.
    rows = changed.filter(~(F.col("_deleted") & F.lit(delete_policy == "close")))
    rows = rows.withColumn("_n", F.row_number().over(ordered))
    in_place = F.col("_in_place")
    rows = with_base_key(rows, current, key_col, keys_above)
    new_key = F.col(BASE_KEY) + F.row_number().over(Window.partitionBy(in_place).orderBy(natural_key, "_effective"))
    version_shift = F.max(F.col("_in_place").cast("int")).over(Window.partitionBy(natural_key))
    rows = rows.select(
        F.when(in_place, F.col("_a_key")).otherwise(new_key).cast("bigint").alias(key_col),
        natural_key,
        *attr_cols,
        (F.coalesce(F.col("_a_version"), F.lit(0)) + F.col("_n") - version_shift)
        .cast("int")
        .alias("version"),
        F.when(in_place, F.col("_a_from"))
        .when(F.col("_a_key").isNull() & (F.col("_seq") == 1), _ts(BEGINNING_OF_TIME))
        .otherwise(F.col("_effective"))
        .alias("valid_from"),
        F.coalesce(F.col("_next"), _ts(END_OF_TIME)).alias("valid_to"),
        F.col("_next").isNull().alias("is_current"),
        F.col("_deleted").alias("is_deleted"),
        F.lit(False).alias("is_inferred"),
        "row_hash",
        F.col("_effective").alias(CHANGED_AT),
    )

    # Close the anchor version at the first change, or drop it when it is completed in place.
    existing = (
        current.join(first_change, natural_key, "left")
        .filter(~(F.coalesce(F.col("_fill"), F.lit(False)) & F.col("is_current")))
        .withColumn(
            "valid_to",
            F.when(F.col("is_current") & F.col("_closed_at").isNotNull(), F.col("_closed_at")).otherwise(
                F.col("valid_to")
            ),
        )
        .withColumn("is_current", F.col("is_current") & F.col("_closed_at").isNull())
        .select(*columns)
    )
    merged = existing.unionByName(rows.select(*columns))
    if type1_columns:
        merged = _overwrite_type1(merged, events, known, natural_key, type1_columns, columns, type1_null_policy)
    return merged


def with_changed_at(dim: DataFrame) -> DataFrame:
    """`dim` with `_changed_at` (NULL in a dimension written before the column existed)."""
    return dim if CHANGED_AT in dim.columns else dim.withColumn(CHANGED_AT, F.lit(None).cast("timestamp"))


def last_change_at() -> Column:
    """A version row's last recorded change: its delete time when closed, else when it changed."""
    changed = F.coalesce(F.col(CHANGED_AT), F.col("valid_from"))
    return F.greatest(changed, F.when(F.col("valid_to") != _ts(END_OF_TIME), F.col("valid_to")))


def type2_hash_of(type2_cols: Sequence[str]) -> Column:
    """Hex SHA-256 of a row's Type-2 state: the keyed `_attr_hash` when the batch has it."""
    return F.coalesce(F.col(ATTR_HASH), row_hash(type2_cols))


def stored_hash(type2_hash: Column) -> Column:
    """The stored form of a hex Type-2 hash: base64 of its bytes."""
    # Stored base64, not hex: 64 hex characters often hold a Luhn-valid run of digits, which the
    # warehouse PII scan would rightly report as a card number.
    return F.base64(F.unhex(type2_hash))


def late_changes(
    current: DataFrame,
    changes: DataFrame,
    *,
    natural_key: str,
    attributes: Mapping[str, str],
    effective_col: str,
    type1_columns: Sequence[str] = (),
) -> DataFrame:
    """The change rows `scd2_merge` does not apply although they say something new.

    Grain: one row per (natural key, effective time) of `changes` that is dated at or before its
    member's last recorded change AND whose Type-2 state differs from the version valid at that time
    (a late record or a correction of history). Re-deliveries of known versions are not included.
    Columns: the natural key, `effective_at`, `applied_until` (the member's last recorded change).
    Rows without an effective time and delete rows are never late.
    """
    type2_cols = [c for c in attributes if c not in type1_columns]
    known = with_changed_at(current).filter((F.col("version") > 0) & ~F.col("is_inferred"))
    last_change = known.groupBy(natural_key).agg(F.max(last_change_at()).alias("applied_until"))
    if ATTR_HASH not in changes.columns:
        changes = changes.withColumn(ATTR_HASH, F.lit(None).cast("string"))
    dated = changes.filter(F.col(effective_col).isNotNull())
    if DELETE_FLAG in dated.columns:
        dated = dated.filter(~F.coalesce(F.col(DELETE_FLAG), F.lit(False)))
    late = (
        dated.select(natural_key, F.col(effective_col).alias("effective_at"),
                     stored_hash(type2_hash_of(type2_cols)).alias("_hash"))
        .join(last_change, natural_key)
        .filter(F.col("effective_at") <= F.col("applied_until"))
    )
    versions = known.select(
        F.col(natural_key).alias("_member"), "valid_from", "valid_to", F.col("row_hash").alias("_version_hash")
    )
    as_of = late.join(
        versions,
        (late[natural_key] == versions["_member"])
        & (versions["valid_from"] <= late["effective_at"])
        & (late["effective_at"] < versions["valid_to"]),
        "left",
    )
    differs = F.col("_version_hash").isNull() | (F.col("_version_hash") != F.col("_hash"))
    return as_of.filter(differs).select(natural_key, "effective_at", "applied_until").distinct()


def _overwrite_type1(
    merged: DataFrame,
    events: DataFrame,
    known: DataFrame,
    natural_key: str,
    type1_columns: Sequence[str],
    columns: Sequence[str],
    null_policy: Type1NullPolicy,
) -> DataFrame:
    """Every version of a member in the batch takes one value per Type-1 column: the latest
    delivered one (`overwrite`), or the latest non-NULL one, else the value it already had
    (`keep_last_known`)."""
    live = events.filter(~F.col("_deleted"))
    if null_policy == "overwrite":
        latest = Window.partitionBy(natural_key).orderBy(F.col("_effective").desc())
        latest_type1 = (
            live.withColumn("_r", F.row_number().over(latest))
            .filter("_r = 1")
            .select(natural_key, *[F.col(c).alias(f"_new_{c}") for c in type1_columns])
        )
    else:
        # The greatest (instant, value) pair among the non-NULL values: NULL structs are skipped.
        latest_type1 = live.groupBy(natural_key).agg(
            *[F.max(F.when(F.col(c).isNotNull(), F.struct("_effective", c))).getField(c).alias(f"_new_{c}")
              for c in type1_columns]
        )
        # A placeholder ("Unknown" of an inferred member) is not a known value.
        by_version = Window.partitionBy(natural_key).orderBy(F.col("version").desc())
        previous = (
            known.filter(~F.col("is_inferred"))
            .withColumn("_r", F.row_number().over(by_version))
            .filter("_r = 1")
            .select(natural_key, *[F.col(c).alias(f"_old_{c}") for c in type1_columns])
        )
        latest_type1 = latest_type1.join(previous, natural_key, "left").select(
            natural_key, *[F.coalesce(f"_new_{c}", f"_old_{c}").alias(f"_new_{c}") for c in type1_columns]
        )
    latest_type1 = latest_type1.withColumn("_has_new", F.lit(True))
    overwrite = {c: F.when(F.col("_has_new"), F.col(f"_new_{c}")).otherwise(F.col(c)).alias(c) for c in type1_columns}
    return merged.join(latest_type1, natural_key, "left").select(*[overwrite.get(c, F.col(c)) for c in columns])
