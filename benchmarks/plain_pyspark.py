"""The Spark floor: the lake's stages for one generated day as one straight-line PySpark script.

    python -m benchmarks.plain_pyspark --input DAY_FOLDER --work DIR --pg-dsn DSN --schema S --key K

Same stages and the same work as the lake_assets graph, without orchestration, lake catalog, checks
or metadata: read the day's files → raw Parquet (all text, snake_case names) → typed, trimmed,
de-duplicated Parquet → keyed-hash / last-4 / token / redaction masking with built-in functions →
surrogate-keyed dimensions (customer and product with validity ranges, inferred members for sales of
customers not delivered yet) → as-of fact join → PostgreSQL `COPY` of facts and dimensions into fresh
tables of schema S, then 2 indexes on the fact table. Built-in Spark functions only, no Python UDFs.

Expects the shape `benchmarks.generate` writes (`customers.csv`, `products.jsonl`, `stores.csv`,
`sales_*.csv`, its headers and timestamp formats). Prints per-stage seconds and, as the last line, one
JSON object: `stages` (seconds, Spark start included as `spark_start`), `total`, `fact_rows` and
`gross_amount` (text, read back from PostgreSQL) so the caller can check the work equals the graph's.
Not a test: see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable

# The lake's session settings (lake_assets/resources/spark.py), so both sides run the same engine setup.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss'Z'", "dd/MM/yyyy HH:mm", "yyyy/MM/dd HH:mm:ss")
RENAMES = {
    "customer": {"cust_no": "customer_id", "e_mail": "email", "phone_number": "phone", "social_security": "ssn",
                 "street": "street_address", "zip": "postal_code", "customer_segment": "segment",
                 "last_modified": "updated_at"},
    "product": {"sku": "product_id", "title": "product_name", "price": "list_price", "modified_at": "updated_at"},
    "location": {"store_code": "location_id", "store": "store_name", "state": "region", "zip": "postal_code"},
    "sale": {"line_id": "sale_line_id", "order_no": "order_id", "sale_ts": "sold_at", "cust_no": "customer_id",
             "sku": "product_id", "store_code": "location_id", "qty": "quantity", "price": "unit_price",
             "discount_amt": "discount", "card": "card_number"},
}
DDL = {
    "fact_sales": "sale_line_id TEXT NOT NULL, order_id TEXT, date_key INTEGER NOT NULL, customer_key BIGINT NOT NULL,"
                  " product_key BIGINT NOT NULL, location_key BIGINT NOT NULL, sold_at TIMESTAMP NOT NULL,"
                  " quantity INTEGER NOT NULL, unit_price NUMERIC(12,2) NOT NULL, discount NUMERIC(12,2) NOT NULL,"
                  " gross_amount NUMERIC(14,2) NOT NULL, net_amount NUMERIC(14,2) NOT NULL, payment_token TEXT",
    "dim_customer": "customer_key BIGINT, customer_id TEXT, first_name TEXT, last_name TEXT, email TEXT, phone TEXT,"
                    " ssn TEXT, street_address TEXT, city TEXT, region TEXT, postal_code TEXT, country TEXT,"
                    " segment TEXT, valid_from TIMESTAMP, valid_to TIMESTAMP, is_inferred BOOLEAN",
    "dim_product": "product_key BIGINT, product_id TEXT, product_name TEXT, category TEXT, brand TEXT,"
                   " list_price NUMERIC(12,2), valid_from TIMESTAMP, valid_to TIMESTAMP, is_inferred BOOLEAN",
    "dim_location": "location_key BIGINT, location_id TEXT, store_name TEXT, city TEXT, region TEXT, country TEXT,"
                    " postal_code TEXT",
}


def snake(name: str) -> str:
    return re.sub(r"[\W_]+", "_", name).strip("_").lower()


def hmac_hex(column, key: bytes):
    """HMAC-SHA256 as lower-case hex from two `sha2` calls (RFC 2104), as the lake's masking does."""
    from pyspark.sql import functions as F

    key = key.ljust(64, b"\x00")
    ipad, opad = bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()
    inner = F.sha2(F.concat(F.unhex(F.lit(ipad)), column.cast("binary")), 256)
    return F.sha2(F.concat(F.unhex(F.lit(opad)), F.unhex(inner)), 256)


def run(args: argparse.Namespace) -> dict[str, object]:
    stages: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str, fn: Callable[[], object]) -> object:
        begin = time.perf_counter()
        result = fn()
        stages[name] = time.perf_counter() - begin
        print(f"{name:<14} {stages[name]:8.2f} s", file=sys.stderr, flush=True)
        return result

    def start_spark():
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(args.master).appName("plain_pyspark")
        for key, value in {**SPARK_CONF, "spark.sql.shuffle.partitions": str(args.shuffle_partitions)}.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()

    spark = stage("spark_start", start_spark)
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    work = args.work

    def path(layer: str, name: str) -> str:
        return os.path.join(work, layer, name)

    # ---- raw: every value as delivered text, snake_case names mapped to the entity's.
    def raw() -> None:
        sources = {
            "customer": spark.read.csv(os.path.join(args.input, "customers.csv"), header=True),
            "product": spark.read.json(os.path.join(args.input, "products.jsonl"), primitivesAsString=True),
            "location": spark.read.csv(os.path.join(args.input, "stores.csv"), header=True),
            "sale": spark.read.csv(sorted(glob.glob(os.path.join(args.input, "sales_*.csv"))), header=True),
        }
        for entity, frame in sources.items():
            names = {c: RENAMES[entity].get(snake(c), snake(c)) for c in frame.columns}
            frame.select([F.col(f"`{c}`").alias(n) for c, n in names.items()]).write.parquet(path("raw", entity))

    stage("raw", raw)

    # ---- processed: trimmed, typed, NULL tokens and blank discounts handled, one row per key (version).
    def text(c: str):
        value = F.trim(F.col(c))
        return F.when(value.isin("", "NULL", "null", "None", "N/A", "n/a", "NaN", "-"), None).otherwise(value)

    def timestamp(c: str):
        return F.coalesce(*[F.try_to_timestamp(text(c), F.lit(fmt)) for fmt in TIMESTAMP_FORMATS])

    def money(c: str, kind: str = "decimal(12,2)"):
        return F.regexp_replace(text(c), r"[$€£,\s]", "").try_cast(kind)

    def digits(c: str):
        only = F.regexp_replace(text(c), r"\D", "")
        return F.when(only == "", None).otherwise(only)

    def latest(frame, key: list[str], order: str):
        window = Window.partitionBy(*key).orderBy(F.col(order).desc_nulls_last())
        return frame.withColumn("_r", F.row_number().over(window)).filter("_r = 1").drop("_r")

    def processed() -> None:
        read = {entity: spark.read.parquet(path("raw", entity)) for entity in RENAMES}
        customer = read["customer"].select(
            text("customer_id").alias("customer_id"), text("first_name").alias("first_name"),
            text("last_name").alias("last_name"), F.lower(text("email")).alias("email"),
            digits("phone").alias("phone"), text("ssn").alias("ssn"), text("street_address").alias("street_address"),
            text("city").alias("city"), text("region").alias("region"), text("postal_code").alias("postal_code"),
            F.upper(text("country")).alias("country"), text("segment").alias("segment"),
            timestamp("updated_at").alias("updated_at"),
        ).filter("customer_id IS NOT NULL")
        product = read["product"].select(
            text("product_id").alias("product_id"), text("product_name").alias("product_name"),
            text("category").alias("category"), text("brand").alias("brand"),
            money("list_price").alias("list_price"), timestamp("updated_at").alias("updated_at"),
        ).filter("product_id IS NOT NULL")
        location = read["location"].select(
            *[text(c).alias(c) for c in ("location_id", "store_name", "city", "region")],
            F.upper(text("country")).alias("country"), text("postal_code").alias("postal_code"),
        ).filter("location_id IS NOT NULL")
        sale = read["sale"].select(
            text("sale_line_id").alias("sale_line_id"), text("order_id").alias("order_id"),
            timestamp("sold_at").alias("sold_at"), text("customer_id").alias("customer_id"),
            text("product_id").alias("product_id"), text("location_id").alias("location_id"),
            text("quantity").try_cast("int").alias("quantity"), money("unit_price").alias("unit_price"),
            F.coalesce(money("discount"), F.lit(0).cast("decimal(12,2)")).alias("discount"),
            digits("card_number").alias("card_number"),
        ).filter("sale_line_id IS NOT NULL AND sold_at IS NOT NULL AND quantity IS NOT NULL "
                 "AND unit_price IS NOT NULL")
        latest(customer, ["customer_id", "updated_at"], "updated_at").write.parquet(path("processed", "customer"))
        latest(product, ["product_id", "updated_at"], "updated_at").write.parquet(path("processed", "product"))
        latest(location, ["location_id"], "location_id").write.parquet(path("processed", "location"))
        latest(sale, ["sale_line_id"], "sold_at").write.parquet(path("processed", "sale"))

    stage("processed", processed)

    # ---- masked: keyed hash, last 4, card token, redaction, postal prefix.
    master = args.key.encode("utf-8")
    hash_key = hashlib.sha256(b"bench:hash:" + master).digest()
    token_key = hashlib.sha256(b"bench:token:" + master).digest()

    def last4(c: str):
        return F.regexp_replace(F.col(c), r"\d(?=(?:\D*\d){4})", "*")

    def token(c: str):
        body = F.translate(F.substring(hmac_hex(F.col(c), token_key), 1, 20), "0123456789", "ghijklmnop")
        return F.when(F.col(c).isNotNull(), F.concat(F.lit("tok_"), body, F.lit("_"), F.substring(F.col(c), -4, 4)))

    def masked() -> None:
        customer = spark.read.parquet(path("processed", "customer"))
        customer.select(
            *[F.col(c) for c in ("customer_id", "first_name", "last_name")],
            F.when(F.col("email").isNotNull(), hmac_hex(F.col("email"), hash_key)).alias("email"),
            last4("phone").alias("phone"), last4("ssn").alias("ssn"),
            F.when(F.col("street_address").isNotNull(), F.lit("[REDACTED]")).alias("street_address"),
            "city", "region", F.substring("postal_code", 1, 3).alias("postal_code"), "country", "segment",
            "updated_at",
        ).write.parquet(path("masked", "customer"))
        sale = spark.read.parquet(path("processed", "sale"))
        sale.withColumn("card_number", token("card_number")).write.parquet(path("masked", "sale"))
        for entity in ("product", "location"):
            spark.read.parquet(path("processed", entity)).write.parquet(path("masked", entity))

    stage("masked", masked)

    # ---- dimensions: surrogate keys, validity ranges per version, inferred members for unknown customers.
    def versions(frame, natural: str, key: str, attributes: list[str]):
        by_member = Window.partitionBy(natural).orderBy("updated_at")
        return frame.select(
            F.row_number().over(Window.orderBy(natural, "updated_at")).cast("bigint").alias(key),
            natural, *attributes,
            F.when(F.row_number().over(by_member) == 1, F.lit("1900-01-01 00:00:00").cast("timestamp"))
            .otherwise(F.col("updated_at")).alias("valid_from"),
            F.coalesce(F.lead("updated_at").over(by_member), F.lit("9999-12-31 00:00:00").cast("timestamp"))
            .alias("valid_to"),
            F.lit(False).alias("is_inferred"),
        )

    def dimensions() -> None:
        customer = spark.read.parquet(path("masked", "customer"))
        attributes = [c for c in customer.columns if c not in ("customer_id", "updated_at")]
        dim = versions(customer, "customer_id", "customer_key", attributes)
        sold = spark.read.parquet(path("masked", "sale")).select("customer_id").distinct()
        unknown = sold.join(customer.select("customer_id"), "customer_id", "left_anti")
        top = dim.agg(F.max("customer_key")).first()[0] or 0
        inferred = unknown.select(
            (F.lit(top) + F.row_number().over(Window.orderBy("customer_id"))).cast("bigint").alias("customer_key"),
            "customer_id", *[F.lit(None).cast("string").alias(c) for c in attributes],
            F.lit("1900-01-01 00:00:00").cast("timestamp").alias("valid_from"),
            F.lit("9999-12-31 00:00:00").cast("timestamp").alias("valid_to"), F.lit(True).alias("is_inferred"),
        )
        dim.unionByName(inferred).write.parquet(path("curated", "dim_customer"))
        product = spark.read.parquet(path("masked", "product"))
        versions(product, "product_id", "product_key", ["product_name", "category", "brand", "list_price"]) \
            .write.parquet(path("curated", "dim_product"))
        location = spark.read.parquet(path("masked", "location"))
        location.select(F.row_number().over(Window.orderBy("location_id")).cast("bigint").alias("location_key"),
                        *location.columns).write.parquet(path("curated", "dim_location"))

    stage("dimensions", dimensions)

    # ---- fact: dimension versions valid at sold_at (broadcast), money, one row per sale line.
    def as_of(facts, dim, natural: str, key: str):
        versions = F.broadcast(dim.select(F.col(natural).alias("_nk"), F.col(key).alias("_k"), "valid_from",
                                          "valid_to"))
        joined = facts.join(versions, (facts[natural] == versions["_nk"]) & (facts["sold_at"] >= versions["valid_from"])
                            & (facts["sold_at"] < versions["valid_to"]), "left")
        return joined.withColumn(key, F.coalesce("_k", F.lit(-1)).cast("bigint")).drop("_nk", "_k", "valid_from",
                                                                                      "valid_to")

    def fact() -> None:
        sales = spark.read.parquet(path("masked", "sale"))
        facts = as_of(sales, spark.read.parquet(path("curated", "dim_customer")), "customer_id", "customer_key")
        facts = as_of(facts, spark.read.parquet(path("curated", "dim_product")), "product_id", "product_key")
        stores = F.broadcast(spark.read.parquet(path("curated", "dim_location"))
                             .select(F.col("location_id").alias("_lid"), "location_key"))
        facts = facts.join(stores, facts["location_id"] == stores["_lid"], "left")
        gross = (F.col("quantity").cast("decimal(14,2)") * F.col("unit_price")).cast("decimal(14,2)")
        facts.select(
            "sale_line_id", "order_id", F.date_format("sold_at", "yyyyMMdd").cast("int").alias("date_key"),
            "customer_key", "product_key", F.coalesce("location_key", F.lit(-1)).cast("bigint").alias("location_key"),
            "sold_at", "quantity", "unit_price", "discount", gross.alias("gross_amount"),
            F.round(gross - F.col("discount"), 2).cast("decimal(14,2)").alias("net_amount"),
            F.col("card_number").alias("payment_token"),
        ).write.parquet(path("curated", "fact_sales"))

    stage("fact", fact)

    # ---- load: CSV parts written by Spark, each streamed through COPY; indexes after the data.
    def load() -> tuple[int, str]:
        import psycopg2

        for table in DDL:
            spark.read.parquet(path("curated", table)).write.csv(path("load", table), header=False,
                                                                 timestampFormat="yyyy-MM-dd HH:mm:ss")
        with psycopg2.connect(args.pg_dsn) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"')
            for table, columns in DDL.items():
                cur.execute(f'CREATE TABLE "{args.schema}".{table} ({columns})')
                for part in sorted(glob.glob(os.path.join(path("load", table), "part-*"))):
                    with open(part, encoding="utf-8") as handle:
                        cur.copy_expert(f'COPY "{args.schema}".{table} FROM STDIN WITH (FORMAT csv)', handle)
            cur.execute(f'ALTER TABLE "{args.schema}".fact_sales ADD PRIMARY KEY (sale_line_id)')
            cur.execute(f'CREATE INDEX ON "{args.schema}".fact_sales (date_key)')
            cur.execute(f'SELECT COUNT(*), SUM(gross_amount)::text FROM "{args.schema}".fact_sales')
            rows, gross = cur.fetchone()
        return int(rows), str(gross)

    rows, gross = stage("load", load)
    spark.stop()
    return {"stages": stages, "total": time.perf_counter() - started, "fact_rows": rows, "gross_amount": gross}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="one day's folder as benchmarks.generate writes it")
    parser.add_argument("--work", required=True, help="empty scratch folder for the Parquet layers")
    parser.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--schema", required=True, help="PostgreSQL schema to create the tables in (must not exist)")
    parser.add_argument("--key", required=True, help="masking secret")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
