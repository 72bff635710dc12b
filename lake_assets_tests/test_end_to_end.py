"""The whole graph on the sample data, in-process, on three storage/warehouse combinations:
local lake + SQLite, moto S3 (HTTP) + PostgreSQL, local lake + MariaDB.

Oracles come from the source files (helpers.py), not from the pipeline.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from lake_assets.config import PipelineConfig, load_config
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import S3Server, Warehouse
from .helpers import DAY, STAR_TABLES, assert_graph_correct, materialize_day


def run_graph(config: PipelineConfig, day: str = DAY) -> None:
    materialize_day(config, day)


def test_local_lake_and_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    config = load_config()
    run_graph(config)
    lake = LakeStorage(url=config.lake.url)
    first = assert_graph_correct(config, lake)

    # The same partition again: same data everywhere, no duplicates, SCD2 keys unchanged.
    dim_before = lake.read_arrow(["curated", "dim_customer"]).sort_by("customer_key")
    run_graph(config)
    second = assert_graph_correct(config, lake)
    for table in STAR_TABLES:
        assert first[table] == second[table], f"{table} changed on rerun"
    dim_after = lake.read_arrow(["curated", "dim_customer"]).sort_by("customer_key")
    scd2_columns = ["customer_key", "customer_id", "row_hash", "valid_from", "valid_to", "is_current"]
    assert dim_before.select(scd2_columns).to_pylist() == dim_after.select(scd2_columns).to_pylist()
    # An engine that is not lake_assets (the catalog alone, pyiceberg into DuckDB) reads the same facts
    # as the warehouse holds.
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("lake", uri=f"sqlite:///{tmp_path / 'lake' / 'catalog.db'}")
    con = catalog.load_table("curated.fact_sales").scan().to_duckdb("fact_sales")
    lake_facts = con.execute("SELECT sale_line_id, net_amount FROM fact_sales ORDER BY sale_line_id").fetchall()
    columns = second["_columns_fact_sales"][0]
    line, net = columns.index("sale_line_id"), columns.index("net_amount")
    assert [(i, Decimal(str(a))) for i, a in lake_facts] == [
        (r[line], Decimal(str(r[net]))) for r in sorted(second["fact_sales"], key=lambda r: r[line])
    ]

    # The rerun replaced the partition: its current files are exactly the last batch's.
    raw_sales = ["raw", "shop_files", "sales"]
    batches = {Path(f).parent.name for f in lake.committed_files(raw_sales, DAY)}
    assert batches == {f"batch-{lake.commit_info(raw_sales, DAY).batch_id}"}


def test_s3_lake_and_postgres(
    s3: S3Server, postgres_warehouse: Warehouse, postgres_catalog: str, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    import boto3

    bucket = s3.make_bucket()
    monkeypatch.setenv("LAKE_URL", f"s3://{bucket}/lake")
    monkeypatch.setenv("LAKE_CATALOG_URI", postgres_catalog)
    monkeypatch.setenv("WAREHOUSE_URL", postgres_warehouse.url)
    monkeypatch.setenv("WAREHOUSE_SCHEMA", postgres_warehouse.schema)
    config = load_config()
    run_graph(config)
    lake = LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri)
    first = assert_graph_correct(config, lake)

    client = boto3.client("s3", endpoint_url=s3.endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="lake/curated/")["Contents"]]
    assert any(k.endswith(".metadata.json") for k in keys)  # the Iceberg tables live in the bucket
    for key in keys:
        assert client.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256", key

    run_graph(config)
    second = assert_graph_correct(config, lake)
    assert first["fact_sales"] == second["fact_sales"]


def test_local_lake_and_mariadb(
    tmp_path: Path, mariadb_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", mariadb_warehouse.url)
    monkeypatch.setenv("WAREHOUSE_SCHEMA", mariadb_warehouse.schema)
    config = load_config()
    run_graph(config)
    lake = LakeStorage(url=config.lake.url)
    first = assert_graph_correct(config, lake)
    run_graph(config)
    second = assert_graph_correct(config, lake)
    assert first["fact_sales"] == second["fact_sales"]
    assert first["dim_customer"] == second["dim_customer"]
