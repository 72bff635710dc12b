"""The whole graph on the sample data, in-process, on three storage/warehouse combinations:
local lake + SQLite, moto S3 (HTTP) + PostgreSQL, local lake + MariaDB.

Oracles come from the source files (helpers.py), not from the pipeline.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from dagster import materialize
from sqlalchemy import create_engine, text

from lake_assets.assets import build_all_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR, S3Server, Warehouse
from .helpers import expected_net_total, malformed_sales_rows, pii_in_parquet_files, pii_in_rows, source_sales

DAY = "2024-01-01"
STAR_TABLES = ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales")
FK_COLUMNS = {"customer_key": "dim_customer", "product_key": "dim_product", "location_key": "dim_location",
              "date_key": "dim_date"}


def run_graph(config: PipelineConfig, day: str = DAY) -> None:
    result = materialize(build_all_assets(config), resources=build_resources(config), partition_key=day)
    assert result.success
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert not failed_checks, [f"{e.asset_key.to_user_string()}:{e.check_name} {e.metadata}" for e in failed_checks]


def warehouse_snapshot(config: PipelineConfig) -> dict[str, list[tuple]]:
    engine = create_engine(config.warehouse.url)
    prefix = f"{config.warehouse.schema_name}." if config.warehouse.schema_name and "sqlite" not in config.warehouse.url else ""
    snapshot = {}
    with engine.connect() as conn:
        for table in STAR_TABLES:
            key = "sale_line_id" if table == "fact_sales" else table.replace("dim_", "") + "_key"
            result = conn.execute(text(f"SELECT * FROM {prefix}{table} ORDER BY {key}"))
            # Audit columns (_batch_id ...) legitimately change per run; business columns must not.
            business = [i for i, c in enumerate(result.keys()) if not c.startswith("_")]
            snapshot[table] = [tuple(r[i] for i in business) for r in result.fetchall()]
        columns = conn.execute(text(f"SELECT * FROM {prefix}fact_sales")).keys()
        snapshot["_columns_fact_sales"] = [tuple(c for c in columns if not c.startswith("_"))]
        for column, dim in FK_COLUMNS.items():
            orphans = conn.execute(text(
                f"SELECT COUNT(*) FROM {prefix}fact_sales f LEFT JOIN {prefix}{dim} d ON d.{column} = f.{column} "
                f"WHERE d.{column} IS NULL"
            )).scalar()
            assert orphans == 0, f"{orphans} fact rows have no {dim} row"
        views = conn.execute(text(f"SELECT SUM(net_amount) FROM {prefix}v_sales_daily")).scalar()
        # SQLite sums NUMERIC as floating point: compare to the cent.
        snapshot["_view_total"] = [(Decimal(str(views)).quantize(Decimal("0.01")),)]
    engine.dispose()
    return snapshot


def assert_graph_correct(config: PipelineConfig, lake: LakeStorage) -> dict[str, list[tuple]]:
    sales = source_sales(SAMPLE_DIR, DAY)
    raw_rows = lake.read_manifest(["raw", "shop_files", "sales"], DAY).rows
    quarantined = lake.read_manifest(["quarantine", "raw", "shop_files", "sales"], DAY).rows
    assert quarantined == malformed_sales_rows(SAMPLE_DIR, DAY) > 0
    processed = lake.read_manifest(["processed", "sale"], DAY).rows
    masked = lake.read_manifest(["masked", "sale"], DAY).rows
    fact = lake.read_manifest(["curated", "fact_sales"], DAY).rows
    # raw keeps re-delivered lines; processed removes exactly those; nothing is lost after that.
    assert raw_rows > len(sales)
    assert processed == masked == fact == len(sales)

    snapshot = warehouse_snapshot(config)
    assert len(snapshot["fact_sales"]) == fact
    columns = snapshot["_columns_fact_sales"][0]
    net = columns.index("net_amount")
    warehouse_total = sum((Decimal(str(r[net])) for r in snapshot["fact_sales"]), Decimal("0"))
    assert warehouse_total == expected_net_total(SAMPLE_DIR, DAY)
    assert snapshot["_view_total"][0][0] == warehouse_total

    # No e-mail, SSN or full card number in the curated layer or in the warehouse.
    for table in STAR_TABLES:
        partition = DAY if table == "fact_sales" else None
        files = lake.committed_files(["curated", table], partition)
        assert pii_in_parquet_files(files, lake.filesystem) == {}, f"PII in curated/{table}"
        assert pii_in_rows([f"c{i}" for i in range(len(snapshot[table][0]))], snapshot[table]) == {}, table
    return snapshot


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
    # Exactly one committed batch per partition remains on disk after the rewrite.
    partition_dir = Path(lake.dataset_dir(["raw", "shop_files", "sales"], DAY))
    assert len([p for p in partition_dir.iterdir() if p.name.startswith("batch-")]) == 1


def test_s3_lake_and_postgres(
    s3: S3Server, postgres_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    import boto3

    bucket = s3.make_bucket()
    monkeypatch.setenv("LAKE_URL", f"s3://{bucket}/lake")
    monkeypatch.setenv("WAREHOUSE_URL", postgres_warehouse.url)
    monkeypatch.setenv("WAREHOUSE_SCHEMA", postgres_warehouse.schema)
    config = load_config()
    run_graph(config)
    lake = LakeStorage(url=config.lake.url)
    first = assert_graph_correct(config, lake)

    client = boto3.client("s3", endpoint_url=s3.endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="lake/curated/")["Contents"]]
    assert any(k.endswith("_manifest.json") for k in keys)
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
