"""Standardize + mask throughput: the built-in Spark path vs the same masking in Python UDFs.

    python -m benchmarks.bench_standardize_mask --rows 1000000 [--rows 5000000] [--master local[2]]

For each size N it synthesizes N raw-like customer rows and N raw-like sale rows in Spark (strings as
delivered: mixed date formats, currency symbols, spaced card numbers, 1% exact re-deliveries), caches
them, and times, end to end to a `noop` sink (every row computed, nothing written):

* standardize: cast_to_schema -> split_rejects -> deduplicate_latest -> add_audit_columns (the
  processed asset's code path), once, into a cache;
* mask built-in: apply_masking (HMAC from `sha2`, regex last4, tokens) - the masked asset's code;
* mask UDF: the same masking with every technique in a Python UDF (`hmac`, `re`) - the baseline the
  built-in path must beat.

Before timing, both paths are checked to produce identical masked values on a sample. Prints one
line per (entity, N) and a table of standardize+mask rows/s for both paths with their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import time
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lake_assets.config import SparkConfig
from lake_assets.entities import CUSTOMER, SALE, EntitySchema
from lake_assets.resources.spark import spark_conf_for
from spark.masking import REDACTED, apply_masking, derive_key
from spark.standardize import add_audit_columns, cast_to_schema, deduplicate_latest, split_rejects

SECRET = "benchmark-secret-not-for-production-0001"
HASH_KEY, TOKEN_KEY = derive_key(SECRET, "hash"), derive_key(SECRET, "token")
RULES = {"email": "hmac_sha256", "phone": "last4", "ssn": "last4", "card_number": "tokenize",
         "street_address": "redact", "postal_code": "postal_prefix"}


def _pick(options: list[str], seed: Column) -> Column:
    return F.element_at(F.array(*[F.lit(o) for o in options]), (F.abs(seed) % len(options) + 1).cast("int"))


def _mixed_timestamp(seconds: Column, seed: Column) -> Column:
    """The same instant in one of four delivered formats, chosen by `seed`."""
    ts = F.timestamp_seconds(seconds)
    formats = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss'Z'", "dd/MM/yyyy HH:mm", "yyyy/MM/dd HH:mm:ss"]
    return F.element_at(F.array(*[F.date_format(ts, f) for f in formats]), (F.abs(seed) % 4 + 1).cast("int"))


def raw_customers(spark: SparkSession, n: int) -> DataFrame:
    base = spark.range(n).withColumn("h", F.xxhash64("id"))
    raw = base.select(
        F.format_string("C%09d", "id").alias("customer_id"),
        _pick(["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Fatima"], F.col("h")).alias("first_name"),
        _pick(["Smith", "García", "Müller", "Okafor", "O'Neil"], F.xxhash64("id", F.lit(7))).alias("last_name"),
        F.format_string(" User%d@Example.com ", "id").alias("email"),
        F.format_string("+1 (%03d) %03d-%04d", F.abs(F.col("h")) % 900 + 100, F.abs(F.xxhash64("id", F.lit(3))) % 1000,
                        F.abs(F.xxhash64("id", F.lit(11))) % 10000).alias("phone"),
        F.format_string("%03d-%02d-%04d", F.abs(F.col("h")) % 899 + 1, F.abs(F.xxhash64("id", F.lit(5))) % 99 + 1,
                        F.abs(F.xxhash64("id", F.lit(13))) % 9999 + 1).alias("ssn"),
        F.format_string("%d Oak Ave", F.abs(F.col("h")) % 9000).alias("street_address"),
        _pick(["Boston", "Austin", "Toronto"], F.xxhash64("id", F.lit(17))).alias("city"),
        _pick(["MA", "TX", "ON"], F.xxhash64("id", F.lit(17))).alias("region"),
        F.format_string("%05d", F.abs(F.col("h")) % 100000).alias("postal_code"),
        _pick(["us", "US", "ca "], F.xxhash64("id", F.lit(19))).alias("country"),
        _pick(["consumer", "corporate", "vip"], F.xxhash64("id", F.lit(23))).alias("segment"),
        _mixed_timestamp(F.lit(1_700_000_000) + F.col("id") % 86_400, F.xxhash64("id", F.lit(29))).alias("updated_at"),
        F.lit("bench").alias("_source"),
        F.lit("2024-01-01 02:00:00").cast("timestamp").alias("_ingested_at"),
        F.lit("customers.csv").alias("_source_file"),
    )
    return raw.unionByName(raw.sample(fraction=0.01, seed=1))  # exact re-deliveries


def raw_sales(spark: SparkSession, n: int) -> DataFrame:
    base = spark.range(n).withColumn("h", F.xxhash64("id"))
    card = F.format_string("4%015d", F.abs(F.col("h")) % 1_000_000_000_000_000)
    raw = base.select(
        F.format_string("L%010d", "id").alias("sale_line_id"),
        F.format_string("O%09d", (F.col("id") / 3).cast("long")).alias("order_id"),
        _mixed_timestamp(F.lit(1_704_067_200) + F.col("id") % 86_400, F.col("h")).alias("sold_at"),
        F.format_string("C%09d", F.abs(F.col("h")) % 100_000).alias("customer_id"),
        F.format_string("P%05d", F.abs(F.col("h")) % 500).alias("product_id"),
        F.format_string("S%03d", F.abs(F.col("h")) % 20).alias("location_id"),
        (F.abs(F.col("h")) % 5 + 1).cast("string").alias("quantity"),
        F.format_string("$%d.%02d", F.abs(F.col("h")) % 500, F.abs(F.col("h")) % 100).alias("unit_price"),
        F.lit("0.00").alias("discount"),
        F.when(F.col("id") % 2 == 0, F.regexp_replace(card, r"(\d{4})(?=\d)", "$1 ")).otherwise(card)
        .alias("card_number"),
        F.lit("bench").alias("_source"),
        F.lit("2024-01-01 02:00:00").cast("timestamp").alias("_ingested_at"),
        F.lit("sales_001.csv").alias("_source_file"),
    )
    return raw.unionByName(raw.sample(fraction=0.01, seed=1))


def standardize(raw: DataFrame, entity: EntitySchema) -> DataFrame:
    # Persisted as in the processed asset (which also writes the rejects from it): without it the
    # typed projection is inlined into the dedup sort and its generated code grows past Janino's limits.
    typed = cast_to_schema(raw, entity.columns, lowercase=entity.lowercase, uppercase=entity.uppercase,
                           digits_only=entity.digits_only).persist()
    good, _ = split_rejects(typed, entity.required)
    order = [c for c in (entity.cursor, "_ingested_at") if c]
    return add_audit_columns(deduplicate_latest(good, entity.dedup_key, order, ["_source_file"]),
                             list(entity.columns), "bench")


# ---------------------------------------------------------------- the Python UDF baseline
def _py_hmac(value: str | None) -> str | None:
    return None if value is None else hmac.new(HASH_KEY, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _py_last4(value: str | None) -> str | None:
    return None if value is None else re.sub(r"\d(?=(?:\D*\d){4})", "*", value)


_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def _py_token(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    if not digits:
        return None
    body = hmac.new(TOKEN_KEY, digits.encode(), hashlib.sha256).hexdigest()[:20].translate(_TO_LETTERS)
    return f"tok_{body}" + (f"_{digits[-4:]}" if len(digits) >= 12 else "")


def _py_redact(value: str | None) -> str | None:
    return None if value is None else REDACTED


def _py_prefix(value: str | None) -> str | None:
    return None if value is None else value.strip()[:3]


UDFS: dict[str, Callable[[str | None], str | None]] = {
    "hmac_sha256": _py_hmac, "last4": _py_last4, "tokenize": _py_token, "redact": _py_redact,
    "postal_prefix": _py_prefix,
}


def mask_with_udfs(df: DataFrame) -> DataFrame:
    udfs = {name: F.udf(fn, "string") for name, fn in UDFS.items()}
    out = []
    for name in df.columns:
        if name in RULES:
            out.append(udfs[RULES[name]](F.col(name)).alias(name))
        elif name == "_row_hash":
            out.append(udfs["hmac_sha256"](F.col(name)).alias(name))
        else:
            out.append(F.col(name))
    return df.select(*out, F.lit("bench").alias("_mask_key_id"))


def mask_builtin(df: DataFrame) -> DataFrame:
    rules = {c: t for c, t in RULES.items() if c in df.columns}
    return apply_masking(df, rules, hash_key=HASH_KEY, token_key=TOKEN_KEY, key_id="bench")


def _check_same(raw: DataFrame, entity: EntitySchema) -> None:
    sample = standardize(raw.limit(2000), entity).cache()
    columns = [c for c in sample.columns if c in RULES or c == "_row_hash"]
    key = entity.key[0]
    a = {r[key]: tuple(r[c] for c in columns) for r in mask_builtin(sample).select(key, *columns).collect()}
    b = {r[key]: tuple(r[c] for c in columns) for r in mask_with_udfs(sample).select(key, *columns).collect()}
    assert a == b and a, f"built-in and UDF masking disagree for {entity.name}"
    sample.unpersist()


def _time(df: DataFrame) -> float:
    start = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def run(spark: SparkSession, sizes: list[int], repeats: int) -> list[tuple[str, int, float, float, float]]:
    """Per (entity, N): seconds to standardize, to mask built-in, to mask with UDFs (best of `repeats`).

    Standardization runs once into a cache (it is the same code on both paths); each masking path then
    reads that cache, so `standardize + mask` = t_standardize + t_mask.
    """
    results = []
    for n in sizes:
        for entity, make in ((CUSTOMER, raw_customers), (SALE, raw_sales)):
            raw = make(spark, n).cache()
            rows = raw.count()
            _check_same(raw, entity)
            std = standardize(raw, entity).cache()
            start = time.perf_counter()
            std.count()
            t_std = time.perf_counter() - start
            t_builtin = min(_time(mask_builtin(std)) for _ in range(repeats))
            t_udf = min(_time(mask_with_udfs(std)) for _ in range(repeats))
            results.append((entity.name, rows, t_std, t_builtin, t_udf))
            print(f"{entity.name:9s} rows={rows:>10,d} standardize {t_std:7.2f} s  mask built-in {t_builtin:7.2f} s  "
                  f"mask UDF {t_udf:7.2f} s", flush=True)
            std.unpersist()
            raw.unpersist()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="rows per entity (repeatable)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--repeats", type=int, default=1, help="best of R timings per path")
    args = parser.parse_args(argv)
    conf = spark_conf_for(SparkConfig(master=args.master, conf={"spark.ui.enabled": "false",
                                                                 "spark.sql.shuffle.partitions": "8"}))
    builder = SparkSession.builder.appName("bench_standardize_mask").config("spark.driver.memory", args.driver_memory)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    results = run(spark, args.rows or [200_000], args.repeats)
    print("\nentity      rows        std+mask built-in rows/s  std+mask UDF rows/s  ratio   mask-only ratio")
    for entity, rows, t_std, t_builtin, t_udf in results:
        builtin, udf = rows / (t_std + t_builtin), rows / (t_std + t_udf)
        print(f"{entity:9s} {rows:>10,d} {builtin:>24,.0f} {udf:>20,.0f} {builtin / udf:>6.2f}x "
              f"{t_udf / t_builtin:>12.2f}x")
    spark.stop()


if __name__ == "__main__":
    main()
