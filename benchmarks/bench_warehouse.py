"""Warehouse load throughput and the SCD2 incremental cost, in one run.

    python -m benchmarks.bench_warehouse --rows 1000000 --customers 1000000

Part 1, fact rows per second into a fresh table (one transaction each), as ratios in one run:
* PostgreSQL: `WarehouseResource.replace_rows` (COPY FROM STDIN) vs pandas `to_sql` (baseline,
  default method: SQLAlchemy executemany) vs `psql \\copy` of the same rows from a CSV file (ceiling).
* MariaDB: `replace_rows` (PyMySQL multi-row INSERT batches) vs pandas `to_sql` (baseline) vs the
  `mariadb` client's `LOAD DATA LOCAL INFILE` of the same CSV (ceiling).
Timings of the ceilings include client start-up; the CSV is written before the clock starts.

Part 2, the SCD2 dimension build (Spark, local[2]): first full build of `--customers` members vs one
incremental day in which 1% of them change (previous state + the day's changes only).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import create_engine, text

from lake_assets.resources.warehouse import WarehouseResource

PG_URL = os.environ.get("LAKE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MARIADB_URL = os.environ.get("LAKE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/")


def fact_rows(n: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    qty = rng.integers(1, 10, n, dtype=np.int32)
    price_cents = rng.integers(100, 50_000, n)
    discount_cents = (price_cents * rng.integers(0, 3, n)) // 10
    gross = qty.astype(np.int64) * price_cents
    start = datetime(2024, 1, 1)
    seconds = rng.integers(0, 86_400, n)
    d2, d4 = pa.decimal128(12, 2), pa.decimal128(14, 2)

    def money(cents: np.ndarray, kind: pa.DataType) -> pa.Array:
        return pa.array([Decimal(int(c)).scaleb(-2) for c in cents], kind)

    return pa.table({
        "sale_line_id": pa.array([f"L{i:010d}" for i in range(n)]),
        "order_id": pa.array([f"O{i // 3:09d}" for i in range(n)]),
        "ingest_date": pa.array([date(2024, 1, 1)] * n, pa.date32()),
        "date_key": pa.array(np.full(n, 20240101, dtype=np.int32)),
        "customer_key": pa.array(rng.integers(1, 100_000, n)),
        "product_key": pa.array(rng.integers(1, 5_000, n)),
        "location_key": pa.array(rng.integers(1, 50, n)),
        "sold_at": pa.array(np.datetime64(start) + seconds.astype("timedelta64[s]")).cast(pa.timestamp("us")),
        "quantity": pa.array(qty),
        "unit_price": money(price_cents, d2),
        "discount": money(discount_cents, d2),
        "gross_amount": money(gross, d4),
        "net_amount": money(gross - discount_cents, d4),
        "payment_token": pa.array(["tok_" + "ab" * 12] * n),
        "_source": pa.array(["bench"] * n),
        "_batch_id": pa.array(["b1"] * n),
    })


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _count(wh: WarehouseResource, table: str) -> int:
    return int(wh.fetch_all(f"SELECT COUNT(*) FROM {wh.qualified(table)}")[0][0])


def _empty(wh: WarehouseResource) -> None:
    # TRUNCATE, not DELETE: every contender starts from an empty table without dead rows.
    with wh.connect_checked() as conn, conn.begin():
        conn.exec_driver_sql(f"TRUNCATE TABLE {wh.qualified('fact_sales')}")


def bench_dialect(name: str, url: str, rows: pa.Table, csv_path: str) -> dict[str, float]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    wh = WarehouseResource(url=url, schema_name=schema)
    wh.ensure_schema()
    results: dict[str, float] = {}
    n = rows.num_rows
    try:
        results["pipeline"] = n / _timed(lambda: wh.replace_rows("fact_sales", rows))
        assert _count(wh, "fact_sales") == n

        frame = rows.to_pandas()
        _empty(wh)
        engine = create_engine(url if name == "postgresql" else url.rstrip("/") + f"/{schema}")

        def pandas_load() -> None:
            with engine.begin() as conn:
                frame.to_sql("fact_sales", conn, schema=schema if name == "postgresql" else None,
                             if_exists="append", index=False)

        results["pandas_to_sql"] = n / _timed(pandas_load)
        engine.dispose()
        assert _count(wh, "fact_sales") == n

        _empty(wh)
        columns = ", ".join(rows.column_names)
        if name == "postgresql":
            command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c",
                       f"\\copy {schema}.fact_sales ({columns}) FROM '{csv_path}' WITH (FORMAT csv)"]
        else:
            command = ["mariadb", "-h", "127.0.0.1", "-u", "root", "--local-infile=1", schema, "-e",
                       f"LOAD DATA LOCAL INFILE '{csv_path}' INTO TABLE fact_sales FIELDS TERMINATED BY ',' "
                       f"OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' ({columns})"]
        results["client_bulk"] = n / _timed(lambda: subprocess.run(command, check=True, capture_output=True))
        assert _count(wh, "fact_sales") == n
    finally:
        with create_engine(url).begin() as conn:
            keyword = "SCHEMA" if name == "postgresql" else "DATABASE"
            conn.execute(text(f"DROP {keyword} IF EXISTS {schema}" + (" CASCADE" if name == "postgresql" else "")))
    return results


def bench_scd2(members: int) -> tuple[float, float, int]:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from spark.scd2 import empty_scd2_dimension, scd2_merge

    spark = (SparkSession.builder.master("local[2]").appName("bench_warehouse")
             .config("spark.sql.shuffle.partitions", "8").config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "4g").getOrCreate())
    attrs = {"city": "string", "region": "string", "segment": "string", "email": "string"}
    day1 = spark.range(members).select(
        F.format_string("C%09d", "id").alias("customer_id"),
        F.concat(F.lit("city"), (F.col("id") % 500).cast("string")).alias("city"),
        F.concat(F.lit("R"), (F.col("id") % 50).cast("string")).alias("region"),
        F.lit("vip").alias("segment"),
        F.sha2(F.col("id").cast("string"), 256).alias("email"),
        F.lit(datetime(2023, 12, 31)).cast("timestamp").alias("updated_at"),
    )
    kwargs = dict(key_col="customer_key", natural_key="customer_id", attributes=attrs, effective_col="updated_at",
                  type1_columns=["email"], delete_policy="close")
    empty = empty_scd2_dimension(spark, "customer_key", "customer_id", attrs)
    start = time.perf_counter()
    state = scd2_merge(empty, day1, **kwargs).localCheckpoint()  # materializes the dimension
    full = time.perf_counter() - start
    path = tempfile.mkdtemp(prefix="bench_scd2_")
    state.write.parquet(f"{path}/dim")
    previous = spark.read.parquet(f"{path}/dim")
    changes = day1.filter(F.col("customer_id").substr(-2, 2) == "07").select(
        "customer_id", F.lit("Moved").alias("city"), "region", "segment", "email",
        F.lit(datetime(2024, 1, 2, 9)).cast("timestamp").alias("updated_at"),
    )
    changed = changes.count()
    start = time.perf_counter()
    scd2_merge(previous, changes, **kwargs).write.parquet(f"{path}/dim2")
    incremental = time.perf_counter() - start
    spark.stop()
    return full, incremental, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--skip-scd2", action="store_true")
    args = parser.parse_args()

    rows = fact_rows(args.rows)
    csv_path = os.path.join(tempfile.mkdtemp(prefix="bench_wh_"), "fact_sales.csv")
    pacsv.write_csv(rows, csv_path, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    print(f"fact rows: {args.rows:,}  ({os.path.getsize(csv_path) / 1e6:.0f} MB as CSV)", flush=True)
    for name, url in (("postgresql", PG_URL), ("mariadb", MARIADB_URL)):
        r = bench_dialect(name, url, rows, csv_path)
        print(f"{name:10s} pipeline {r['pipeline']:>10,.0f} rows/s | pandas to_sql {r['pandas_to_sql']:>10,.0f} "
              f"rows/s | client bulk {r['client_bulk']:>10,.0f} rows/s | pipeline/pandas "
              f"{r['pipeline'] / r['pandas_to_sql']:.1f}x | pipeline/ceiling {r['pipeline'] / r['client_bulk']:.2f}",
              flush=True)
    if not args.skip_scd2:
        full, incremental, changed = bench_scd2(args.customers)
        print(f"scd2 dim_customer: first full build of {args.customers:,} members {full:.1f} s | incremental day "
              f"with {changed:,} changes (1%) {incremental:.1f} s | ratio {incremental / full:.2f}")


if __name__ == "__main__":
    main()
