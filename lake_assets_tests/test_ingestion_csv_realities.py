"""FileSource on files shaped like real exports: byte-order marks, pandas index columns, CRLF,
Windows-1252, quoted newlines and delimiters, a row longer than the read block, empty and header-only
files, trailing delimiters, a wrong delimiter, a renamed required column and non-ASCII headers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import FileSourceConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.ingestion import DataIngestionPipeline, FileSource, IngestionError, file_source
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR

pytestmark = pytest.mark.services  # whole-graph runs

DAY = "2024-03-01"
COLUMNS = {"line_no": "sale_line_id", "sold": "sold_at", "qty": "quantity", "price": "unit_price"}
HEADER = ["LineNo", "Sold", "Qty", "Price"]


def table_config(drop: Path, **table: Any) -> FileSourceConfig:
    spec = {"name": "sales", "entity": "sale", "pattern": "sales_*.csv", "columns": COLUMNS, **table}
    return FileSourceConfig.model_validate({"name": "drop", "kind": "file", "path": str(drop), "tables": [spec]})


def read_file(config: FileSourceConfig, name: str) -> tuple[list[str], list[dict[str, Any]], list[dict[str, str]]]:
    """(header, rows without lineage, rejects) of one file, read through FileSource."""
    source = FileSource(config, config.tables[0])
    (file,) = [f for f in source.list_files() if Path(f.path).name == name]
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, str]] = []
    for chunk in source.read(file):
        lineage = [c for c in chunk.rows.column_names if c.startswith("_")]  # _source_file, _row_number
        rows.extend(chunk.rows.drop_columns(lineage).to_pylist())
        rejects.extend(chunk.rejects)
    header = source.header(file) if config.tables[0].format == "csv" else []
    return header, rows, rejects


def ingest(drop: Path, lake: LakeStorage, **table: Any) -> Any:
    config = table_config(drop, **table)
    return DataIngestionPipeline(FileSource(config, config.tables[0]), lake).run(DAY)


def test_utf8_bom_and_pandas_index_column(tmp_path: Path) -> None:
    # `df.to_csv("x.csv", encoding="utf-8-sig")`: a BOM, then the unnamed index column first.
    lines = [",LineNo,Sold,Qty,Price", "0,L1,2024-03-01 10:00,2,1.50", "1,L2,2024-03-01 11:00,1,2.00"]
    (tmp_path / "sales_1.csv").write_bytes("\r\n".join(lines).encode("utf-8-sig"))
    header, rows, rejects = read_file(table_config(tmp_path), "sales_1.csv")
    assert header == ["column_1", *HEADER]
    expected = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert rows == expected and rejects == []

    lake = LakeStorage(url=str(tmp_path / "lake"))
    result = ingest(tmp_path, lake)
    assert (result.rows, result.quarantined) == (2, 0)
    stored = lake.read_arrow(["raw", "drop", "sales"], DAY)
    assert [c for c in stored.column_names if not c.startswith("_")] == ["column_1", *HEADER]


def test_bom_in_json_and_json_lines(tmp_path: Path) -> None:
    records = [{"LineNo": "L1", "Sold": "2024-03-01", "Qty": 1, "Price": "2.00"}]
    (tmp_path / "sales_1.jsonl").write_bytes("\n".join(json.dumps(r) for r in records).encode("utf-8-sig"))
    (tmp_path / "sales_1.json").write_bytes(json.dumps(records).encode("utf-8-sig"))
    expected = [{k: str(v) for k, v in r.items()} for r in records]
    for fmt in ("jsonl", "json"):
        _, rows, rejects = read_file(table_config(tmp_path, pattern=f"sales_*.{fmt}", format=fmt), f"sales_1.{fmt}")
        assert (rows, rejects) == (expected, []), fmt


def test_crlf_quoted_newlines_and_delimiters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks put block boundaries inside quoted values, as 4 MiB blocks do in a large file.
    monkeypatch.setattr(file_source, "CSV_BLOCK_BYTES", 64)
    values = [
        ["L1", "2024-03-01 10:00", "1", "2.00", "Main St, 5\r\nFloor 2"],
        ["L2", "2024-03-01 10:05", "3", "1.00", 'the "big" one, boxed\nfragile'],
        ["L3", "2024-03-01 10:10", "2", "4.50", "plain"],
    ]

    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value

    text = "\r\n".join(",".join(quoted(v) for v in row) for row in [[*HEADER, "Note"], *values]) + "\r\n"
    (tmp_path / "sales_1.csv").write_bytes(text.encode("utf-8"))
    header, rows, rejects = read_file(table_config(tmp_path), "sales_1.csv")
    assert header == [*HEADER, "Note"]
    assert rows == [dict(zip(header, row, strict=True)) for row in values] and rejects == []


def test_windows_1252_file(tmp_path: Path) -> None:
    lines = ["LineNo;Sold;Qty;Price;Customer;Voucher", "L1;01/03/2024 10:00;1;2,00;Zoë Müller;€ 5 off – Café"]
    (tmp_path / "sales_1.csv").write_bytes("\r\n".join(lines).encode("cp1252"))
    config = table_config(tmp_path, delimiter=";", encoding="cp1252")
    header, rows, rejects = read_file(config, "sales_1.csv")
    assert rows == [dict(zip(lines[0].split(";"), lines[1].split(";"), strict=True))] and rejects == []
    assert rows[0]["Customer"] == "Zoë Müller" and header[-2:] == ["Customer", "Voucher"]


def test_a_row_longer_than_the_read_block_is_read_whole_and_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of 64 KiB stand for the 4 MiB default: a 300 KiB quoted note with line breaks is then a
    # row longer than a block, after rows (and a malformed row) already read with the small block.
    monkeypatch.setattr(file_source, "CSV_BLOCK_BYTES", 64 << 10)
    note = "Lieferung beschädigt;\r\n" * 12_000
    values = [[f"L{i}", "2024-03-01 10:00", str(i % 7), "2.50", ""] for i in range(1, 5_001)]
    values.insert(4_000, ["L-huge", "2024-03-01 11:00", "1", "9.99", note])
    values.append(["L-last", "2024-03-01 12:00", "2", "1.00", "ok"])
    lines = [",".join([*HEADER, "Note"])] + [",".join(f'"{v}"' for v in row) for row in values]
    lines.insert(1_000, "broken,row")
    (tmp_path / "sales_1.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert len(note.encode()) > 4 * (64 << 10)  # needs the block grown twice

    header, rows, rejects = read_file(table_config(tmp_path), "sales_1.csv")

    assert rows == [dict(zip(header, row, strict=True)) for row in values]
    assert [r["_raw"] for r in rejects] == ["broken,row"]


def test_a_row_longer_than_the_largest_block_fails_the_file_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_source, "CSV_BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(file_source, "CSV_MAX_BLOCK_BYTES", 64 << 10)
    rows = ["L1,2024-03-01,1,2.00", 'L2,2024-03-01,1,"' + "x" * (300 << 10) + '"']
    (tmp_path / "sales_1.csv").write_text("\n".join([",".join(HEADER), *rows]) + "\n")
    with pytest.raises(IngestionError, match=r"sales_1\.csv has a row longer than 0\.0625 MiB"):
        read_file(table_config(tmp_path), "sales_1.csv")


def test_trailing_delimiter_names_the_empty_last_column(tmp_path: Path) -> None:
    lines = ["LineNo,Sold,Qty,Price,", "L1,2024-03-01,1,2.00,", "L2,2024-03-01,1,3.00,"]
    (tmp_path / "sales_1.csv").write_text("\n".join(lines) + "\n")
    header, rows, rejects = read_file(table_config(tmp_path), "sales_1.csv")
    assert header == [*HEADER, "column_5"]
    assert rows == [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]] and rejects == []


def test_zero_byte_and_header_only_files_give_no_rows_and_are_reported(tmp_path: Path) -> None:
    (tmp_path / "sales_1.csv").write_bytes(b"")
    (tmp_path / "sales_2.csv").write_text(",".join(HEADER))  # header only, no final newline
    (tmp_path / "sales_3.csv").write_text(",".join(HEADER) + "\r\n")
    (tmp_path / "sales_4.csv").write_text(",".join(HEADER) + "\nL1,2024-03-01,1,2.00\n")
    config = table_config(tmp_path)
    source = FileSource(config, config.tables[0])
    for file in source.list_files():
        list(source.read(file))
    names = [f"sales_{i}.csv" for i in (1, 2, 3)]
    assert [Path(p).name for p in source.empty_files] == names

    lake = LakeStorage(url=str(tmp_path / "lake"))
    result = ingest(tmp_path, lake)
    assert (result.rows, result.quarantined) == (1, 0)


def test_empty_files_are_reported_in_the_raw_assets_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / "2024-01-01", drop / "2024-01-01")
    customers = drop / "2024-01-01" / "customers.csv"
    customers.write_text(customers.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    wanted = AssetKey(["raw", "shop_files", "customers"])
    result = materialize(
        [a for a in build_all_assets(config) if wanted in a.keys],
        resources=build_resources(config),
        partition_key="2024-01-01",
    )
    (metadata,) = [e.materialization.metadata for e in result.get_asset_materialization_events()
                   if e.materialization.asset_key == wanted]
    assert metadata["dagster/row_count"].value == 0
    assert metadata["empty_files"].value == str(customers)


def test_wrong_delimiter_is_named(tmp_path: Path) -> None:
    (tmp_path / "sales_1.csv").write_text(";".join(HEADER) + "\nL1;2024-03-01;1;2,00\n")
    lake = LakeStorage(url=str(tmp_path / "lake"))
    with pytest.raises(IngestionError) as failure:
        ingest(tmp_path, lake)
    assert not failure.value.retryable
    assert str(failure.value) == (
        f"source drop.sales: file {tmp_path / 'sales_1.csv'}: one column read with delimiter ','; "
        "the header contains ';' — wrong delimiter? set delimiter: ';'"
    )
    assert lake.commit_info(["raw", "drop", "sales"], DAY) is None

    # Tab-separated read as ';', without a header line: the configured names reveal it too.
    (tmp_path / "sales_1.csv").write_text("L1\t2024-03-01\t1\t2.00\n")
    with pytest.raises(IngestionError, match=r"delimiter ';'; the first line contains '\\t' .* set delimiter: \"\\t\""):
        ingest(tmp_path, lake, delimiter=";", header=False, column_names=HEADER)


def test_required_column_absent_from_a_file_fails_it(tmp_path: Path) -> None:
    (tmp_path / "sales_1.csv").write_text("LineNo,Sold,Qty,Price\nL1,2024-03-01,1,2.00\n")
    (tmp_path / "sales_2.csv").write_text("LineNo,SaleDate,Qty,Price\nL2,2024-03-01,1,2.00\n")  # renamed upstream
    lake = LakeStorage(url=str(tmp_path / "lake"))
    with pytest.raises(IngestionError) as failure:
        ingest(tmp_path, lake)
    message = str(failure.value)
    assert not failure.value.retryable
    assert message.startswith(f"source drop.sales: file {tmp_path / 'sales_2.csv'}: no column for required sold_at")
    assert "its columns: LineNo, SaleDate, Qty, Price" in message and "`sale_date: sold_at`" in message
    assert lake.commit_info(["raw", "drop", "sales"], DAY) is None

    # The same for the other formats, where the columns are only known from the records.
    (tmp_path / "sales_1.csv").unlink()
    (tmp_path / "sales_2.csv").unlink()
    (tmp_path / "sales_1.jsonl").write_text(json.dumps({"LineNo": "L1", "Qty": "1", "Price": "2"}) + "\n")
    with pytest.raises(IngestionError, match=r"sales_1\.jsonl: no column for required sold_at"):
        ingest(tmp_path, lake, pattern="sales_*.jsonl", format="jsonl")
    pq.write_table(pa.table({"LineNo": ["L1"], "Sold": ["2024-03-01"], "Qty": ["1"]}), tmp_path / "sales_1.parquet")
    with pytest.raises(IngestionError, match=r"sales_1\.parquet: no column for required unit_price"):
        ingest(tmp_path, lake, pattern="sales_*.parquet", format="parquet")


def test_non_ascii_header_mapped_to_a_required_column(tmp_path: Path) -> None:
    lines = ["Número de línea;Fecha;Cantidad;Precio", "L1;2024-03-01;1;2,00", "L2;2024-03-01;2;3,00"]
    (tmp_path / "sales_1.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    columns = {"número_de_línea": "sale_line_id", "fecha": "sold_at", "cantidad": "quantity", "precio": "unit_price"}
    lake = LakeStorage(url=str(tmp_path / "lake"))
    result = ingest(tmp_path, lake, delimiter=";", columns=columns)
    assert (result.rows, result.quarantined) == (2, 0)


def test_headers_colliding_after_snake_case_fail_naming_both(tmp_path: Path) -> None:
    (tmp_path / "sales_1.csv").write_text("LineNo,Sold,Qty,Price,Line No\nL1,2024-03-01,1,2.00,x\n")
    with pytest.raises(IngestionError, match=r"sales_1\.csv: .*'LineNo' and 'Line No' both become 'line_no'"):
        ingest(tmp_path, LakeStorage(url=str(tmp_path / "lake")))
