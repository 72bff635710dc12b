"""FileSource: file drops on local disk and on S3 (moto over HTTP), each file ingested once,
new files appearing between sensor ticks, CSV options, JSON Lines, Parquet, quarantine and drift."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_assets.config import FileSourceConfig
from lake_assets.ingestion import DataIngestionPipeline, FileSource, SourceUnavailable, pending_files
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import S3Server

HEADER = "Line_ID,Order_No,Sale_TS,Qty,Price\n"
COLUMNS = {
    "line_id": "sale_line_id",
    "order_no": "order_id",
    "sale_ts": "sold_at",
    "qty": "quantity",
    "price": "unit_price",
}


def csv_lines(first: int, count: int) -> str:
    return "".join(
        f"L{i:04d},O{i // 2:04d},2024-03-01 10:{i % 60:02d}:00,{i % 5 + 1},${i}.50\n"
        for i in range(first, first + count)
    )


def file_source(path: str, **table: Any) -> FileSourceConfig:
    return FileSourceConfig.model_validate(
        {
            "name": "drop",
            "kind": "file",
            "path": path,
            "tables": [
                {"name": "sales", "entity": "sale", "pattern": "incoming/sales_*.csv", "columns": COLUMNS, **table}
            ],
        }
    )


def ingest(lake: LakeStorage, config: FileSourceConfig, day: str) -> Any:
    return DataIngestionPipeline(FileSource(config, config.tables[0]), lake).run(day)


def line_ids(lake: LakeStorage, day: str) -> list[str]:
    return sorted(lake.read_arrow(["raw", "drop", "sales"], day).column("Line_ID").to_pylist())


def test_new_files_between_ticks_are_ingested_once(tmp_path: Path) -> None:
    drop, lake = tmp_path / "drop", LakeStorage(url=str(tmp_path / "lake"))
    (drop / "incoming").mkdir(parents=True)
    config = file_source(str(drop))
    table = config.tables[0]
    (drop / "incoming" / "sales_1.csv").write_text(HEADER + csv_lines(0, 3))
    pending = pending_files(lake, config, table)
    assert [Path(f.path).name for f in pending] == ["sales_1.csv"] and pending[0].day is None

    assert ingest(lake, config, "2024-03-01").rows == 3
    assert pending_files(lake, config, table) == []  # tick 2: nothing new

    (drop / "incoming" / "sales_2.csv").write_text(HEADER + csv_lines(3, 2))
    assert [Path(f.path).name for f in pending_files(lake, config, table)] == ["sales_2.csv"]
    result = ingest(lake, config, "2024-03-02")
    assert line_ids(lake, "2024-03-02") == ["L0003", "L0004"] and result.origins == [
        str(drop / "incoming" / "sales_2.csv")
    ]
    # Rerun of day 2: the partition is replaced, never appended; day 1's file is not taken again.
    ingest(lake, config, "2024-03-02")
    assert line_ids(lake, "2024-03-02") == ["L0003", "L0004"]
    assert line_ids(lake, "2024-03-01") == ["L0000", "L0001", "L0002"]

    # A re-delivered file with new content (size and mtime change) counts as new again.
    (drop / "incoming" / "sales_1.csv").write_text(HEADER + csv_lines(0, 4))
    assert [Path(f.path).name for f in pending_files(lake, config, table)] == ["sales_1.csv"]
    ingest(lake, config, "2024-03-03")
    assert line_ids(lake, "2024-03-03") == ["L0000", "L0001", "L0002", "L0003"]


def test_dated_pattern_late_file_for_a_day_reruns_that_day(tmp_path: Path) -> None:
    drop, lake = tmp_path / "drop", LakeStorage(url=str(tmp_path / "lake"))
    config = file_source(str(drop), pattern="{date}/sales_*.csv")
    table = config.tables[0]
    (drop / "2024-03-01").mkdir(parents=True)
    (drop / "2024-03-01" / "sales_a.csv").write_text(HEADER + csv_lines(0, 2))
    assert [(Path(f.path).name, f.day) for f in pending_files(lake, config, table)] == [("sales_a.csv", "2024-03-01")]
    ingest(lake, config, "2024-03-01")
    (drop / "2024-03-01" / "sales_b.csv").write_text(HEADER + csv_lines(2, 2))
    (drop / "2024-03-02").mkdir()
    (drop / "2024-03-02" / "sales_a.csv").write_text(HEADER + csv_lines(10, 1))
    pending = pending_files(lake, config, table)
    assert [(Path(f.path).name, f.day) for f in pending] == [
        ("sales_b.csv", "2024-03-01"),
        ("sales_a.csv", "2024-03-02"),
    ]
    assert [f.day for f in pending_files(lake, config, table, day="2024-03-02")] == ["2024-03-02"]
    ingest(lake, config, "2024-03-01")  # the sensor's run for the late file's day
    assert line_ids(lake, "2024-03-01") == ["L0000", "L0001", "L0002", "L0003"]  # both files, no duplicates
    with pytest.raises(SourceUnavailable, match=r"drop\.sales: no file matches .*2024-03-05/sales_\*\.csv"):
        ingest(lake, config, "2024-03-05")


def test_csv_options_quarantine_and_union_of_headers(tmp_path: Path) -> None:
    drop, lake = tmp_path / "drop", LakeStorage(url=str(tmp_path / "lake"))
    (drop / "incoming").mkdir(parents=True)
    rows = [
        "L1;O1;01/03/2024 10:00;2;1,50;Zoë",
        "L2;O1;2024-03-01;x2;1,50;Zoë",  # unparsable number
        ";O2;2024-03-01;1;2,00;André",  # missing key
        "L4;O2;2024-03-01;1",  # wrong number of fields
        "L5;O3;not a date;1;2,00;Łukasz",  # unparsable date
        "L6;O3;Mar 2 2024;3;2,00;Björn",
    ]
    (drop / "incoming" / "sales_1.csv").write_bytes("\n".join(rows).encode("utf-8"))
    names = ["Line_ID", "Order_No", "Sale_TS", "Qty", "Price", "Customer"]
    # Second file: latin-1 is not the table encoding; use UTF-8 but another header with a new column.
    config = file_source(str(drop), delimiter=";", header=False, column_names=names)
    result = ingest(lake, config, "2024-03-01")
    raw = lake.read_arrow(["raw", "drop", "sales"], "2024-03-01").to_pylist()
    assert [r["Line_ID"] for r in raw] == ["L1", "L6"] and raw[0]["Customer"] == "Zoë"
    rejects = lake.read_arrow(["quarantine", "raw", "drop", "sales"], "2024-03-01").to_pylist()
    reasons = sorted(r["_reject_reason"] for r in rejects)
    assert result.quarantined == 4 and reasons == [
        "expected 6 fields, got 4",
        "missing Line_ID (sale_line_id)",
        "unparsable datetime in Sale_TS (sold_at)",
        "unparsable number in Qty (quantity)",
    ]
    assert all(r["_source_file"].endswith("sales_1.csv") for r in rejects)

    latin = drop / "latin"
    latin.mkdir()
    (latin / "sales_1.csv").write_bytes(
        (HEADER.strip() + ",Store\n" + "L7,O1,2024-03-01,1,1.00,Café\n").encode("latin-1")
    )
    (latin / "sales_2.csv").write_bytes((HEADER + "L8,O1,2024-03-01,1,1.00\n").encode("latin-1"))
    latin_config = file_source(str(drop), pattern="latin/sales_*.csv", encoding="latin-1")
    ingest(lake, latin_config, "2024-03-02")
    merged = {r["Line_ID"]: r for r in lake.read_arrow(["raw", "drop", "sales"], "2024-03-02").to_pylist()}
    assert merged["L7"]["Store"] == "Café" and merged["L8"]["Store"] is None  # union of both headers


def test_json_lines_and_parquet_and_schema_drift(tmp_path: Path) -> None:
    drop, lake = tmp_path / "drop", LakeStorage(url=str(tmp_path / "lake"))
    (drop / "incoming").mkdir(parents=True)
    lines = [
        json.dumps({"line_id": "L1", "sale_ts": "2024-03-01", "qty": 2, "price": 1.5}),
        "{broken",
        json.dumps({"line_id": "L2", "sale_ts": "2024-03-01", "qty": 1, "price": 2, "coupon": "X"}),
    ]
    (drop / "incoming" / "sales_1.jsonl").write_text("\n".join(lines) + "\n")
    config = file_source(str(drop), pattern="incoming/sales_*.jsonl", format="jsonl")
    result = ingest(lake, config, "2024-03-01")
    raw = lake.read_arrow(["raw", "drop", "sales"], "2024-03-01").to_pylist()
    assert [(r["line_id"], r["qty"], r["coupon"]) for r in raw] == [("L1", "2", None), ("L2", "1", "X")]
    assert result.quarantined == 1

    # Parquet with native types arrives as text; the missing `coupon` column is reported as drift.
    typed = pa.table(
        {
            "line_id": ["L3"],
            "sale_ts": pa.array([pa.scalar(1709287200, pa.timestamp("s"))]),
            "qty": pa.array([4], pa.int32()),
            "price": pa.array([3.25]),
        }
    )
    pq.write_table(typed, drop / "incoming" / "sales_2.parquet")
    parquet_config = file_source(str(drop), pattern="incoming/sales_*.parquet", format="parquet")
    drift = ingest(lake, parquet_config, "2024-03-02")
    assert drift.missing_columns == ["coupon"] and drift.new_columns == []
    row = lake.read_arrow(["raw", "drop", "sales"], "2024-03-02").to_pylist()[0]
    assert (row["sale_ts"], row["qty"], row["price"]) == ("2024-03-01 10:00:00", "4", "3.25")


def test_s3_prefix_drop_tracked_by_etag(s3: S3Server, tmp_path: Path) -> None:
    import boto3

    bucket = s3.make_bucket()
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.put_object(Bucket=bucket, Key="exports/shop/incoming/sales_1.csv", Body=(HEADER + csv_lines(0, 3)).encode())
    client.put_object(Bucket=bucket, Key="exports/shop/incoming/readme.txt", Body=b"not data")
    config = file_source(f"s3://{bucket}/exports/shop")
    table = config.tables[0]
    lake = LakeStorage(url=f"s3://{bucket}/lake", catalog_uri=f"sqlite:///{tmp_path}/catalog.db")
    pending = pending_files(lake, config, table)
    assert [f.path for f in pending] == [f"s3://{bucket}/exports/shop/incoming/sales_1.csv"]
    assert pending[0].fingerprint.startswith(f"{pending[0].size}:")
    ingest(lake, config, "2024-03-01")
    assert line_ids(lake, "2024-03-01") == ["L0000", "L0001", "L0002"]
    assert pending_files(lake, config, table) == []
    client.put_object(Bucket=bucket, Key="exports/shop/incoming/sales_2.csv", Body=(HEADER + csv_lines(5, 1)).encode())
    assert [f.path.rsplit("/", 1)[1] for f in pending_files(lake, config, table)] == ["sales_2.csv"]
    ingest(lake, config, "2024-03-02")
    assert line_ids(lake, "2024-03-02") == ["L0005"]
    with pytest.raises(SourceUnavailable, match=r"drop\.sales: cannot list s3://no-such-bucket-x"):
        ingest(lake, file_source("s3://no-such-bucket-x/p"), "2024-03-03")
