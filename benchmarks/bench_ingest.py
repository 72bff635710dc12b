"""Ingestion throughput and peak memory: an N-row PostgreSQL table and an N-row CSV file into raw.

    python -m benchmarks.bench_ingest --rows 500000 5000000 [--pg-url URL] [--chunk-rows 50000]

Each measurement runs in a fresh child process so its peak RSS (`VmHWM` from /proc/self/status) is
its own; the report also gives the RSS after imports, so `peak - base` is what the ingestion itself
used. Memory must not grow with N: the pipeline streams (server-side cursor / CSV blocks) into one
Parquet file, a row group per chunk. The PostgreSQL table is an order-lines table loaded
incrementally on a distinct `updated_at` (first run = full read, with cursor tracking and validation).
Not a test: numbers depend on the machine; see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

PG_URL = os.environ.get("LAKE_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _child(kind: str, rows: int, lake_dir: str, pg_url: str, schema: str, csv_path: str, chunk_rows: int) -> None:
    from lake_assets.config import DatabaseSourceConfig, FileSourceConfig
    from lake_assets.ingestion import DataIngestionPipeline, make_source
    from lake_assets.resources.lake_storage import LakeStorage

    columns = {"line_id": "sale_line_id", "order_id": "order_id", "sold_at": "sold_at", "qty": "quantity"}
    if kind == "pg":
        source = DatabaseSourceConfig.model_validate(
            {
                "name": "bench",
                "kind": "database",
                "url": pg_url,
                "chunk_rows": chunk_rows,
                "tables": [
                    {
                        "name": "lines",
                        "entity": "sale",
                        "table": f"{schema}.order_lines",
                        "columns": columns,
                        "incremental": {"cursor": "updated_at"},
                    }
                ],
            }
        )
    else:
        folder, name = os.path.split(csv_path)
        source = FileSourceConfig.model_validate(
            {
                "name": "bench",
                "kind": "file",
                "path": folder,
                "tables": [{"name": "lines", "entity": "sale", "pattern": name, "columns": columns}],
            }
        )
    base = _status_kib("VmRSS")
    started = time.perf_counter()
    result = DataIngestionPipeline(make_source(source, source.tables[0]), LakeStorage(url=lake_dir)).run("2024-03-01")
    seconds = time.perf_counter() - started
    assert result.rows == rows, (result.rows, rows)
    print(
        json.dumps(
            {
                "rows": result.rows,
                "seconds": seconds,
                "base_kib": base,
                "peak_kib": _status_kib("VmHWM"),
                "quarantined": result.quarantined,
            }
        )
    )


def _seed_pg(pg_url: str, rows: int) -> str:
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(
            text(
                f"CREATE TABLE {schema}.order_lines AS SELECT g::bigint AS line_id, (g / 3)::bigint AS order_id, "
                "TIMESTAMP '2024-03-01' + (g % 86400) * INTERVAL '1 second' AS sold_at, "
                "(g % 5000)::int AS customer_id, (g % 700)::int AS product_id, (g % 7 + 1)::int AS qty, "
                "((g % 9000) / 100.0 + 1)::numeric(10,2) AS unit_price, "
                "TIMESTAMP '2024-01-01' + g * INTERVAL '1 second' AS updated_at "
                f"FROM generate_series(1, {rows}) g"
            )
        )
    engine.dispose()
    return schema


def _drop_pg(pg_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def _write_csv(path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    step = 500_000
    with open(path, "wb") as handle:
        for start in range(0, rows, step):
            ids = pa.array(range(start + 1, min(rows, start + step) + 1), pa.int64())
            table = pa.table(
                {
                    "Line_ID": ids,
                    "Order_ID": pc.divide(ids, 3),
                    "Sold_At": pc.add(
                        pa.scalar(1709251200, pa.timestamp("s")),
                        pc.cast(pc.multiply(pc.bit_wise_and(ids, 65535), 1), pa.duration("s")),
                    ),
                    "Customer_ID": pc.bit_wise_and(ids, 4095),
                    "Qty": pc.add(pc.bit_wise_and(ids, 7), 1),
                    "Unit_Price": pc.divide(pc.cast(pc.bit_wise_and(ids, 8191), pa.float64()), 100.0),
                }
            )
            options = pacsv.WriteOptions(include_header=start == 0)
            pacsv.write_csv(table, handle, write_options=options)


def _measure(kind: str, rows: int, args: argparse.Namespace, schema: str, csv_path: str) -> dict:
    lake_dir = tempfile.mkdtemp(prefix="bench-lake-")
    try:
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_ingest",
                "--child",
                kind,
                "--rows",
                str(rows),
                "--lake",
                lake_dir,
                "--pg-url",
                args.pg_url,
                "--schema",
                schema,
                "--csv",
                csv_path,
                "--chunk-rows",
                str(args.chunk_rows),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])
    finally:
        shutil.rmtree(lake_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000])
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--kinds", nargs="+", default=["pg", "csv"], choices=["pg", "csv"])
    parser.add_argument("--child", choices=["pg", "csv"])
    parser.add_argument("--lake")
    parser.add_argument("--schema", default="")
    parser.add_argument("--csv", default="")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows[0], args.lake, args.pg_url, args.schema, args.csv, args.chunk_rows)
        return
    print(f"{'source':<6} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'base MiB':>9} {'peak MiB':>9} {'peak-base':>9}")
    for rows in args.rows:
        for kind in args.kinds:
            schema, csv_path, tmp = "", "", tempfile.mkdtemp(prefix="bench-csv-")
            try:
                if kind == "pg":
                    schema = _seed_pg(args.pg_url, rows)
                else:
                    csv_path = os.path.join(tmp, "lines.csv")
                    _write_csv(csv_path, rows)
                m = _measure(kind, rows, args, schema, csv_path)
            finally:
                if schema:
                    _drop_pg(args.pg_url, schema)
                shutil.rmtree(tmp, ignore_errors=True)
            base, peak = m["base_kib"] / 1024, m["peak_kib"] / 1024
            print(
                f"{kind:<6} {rows:>10} {m['seconds']:>8.1f} {rows / m['seconds']:>10,.0f} {base:>9.0f} {peak:>9.0f} "
                f"{peak - base:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
