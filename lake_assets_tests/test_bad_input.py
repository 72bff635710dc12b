"""Bad input gives a clear error naming the thing, and leaves no half-written partition or table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import load_config
from lake_assets.definitions import build_resources
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseDataRejected, WarehouseResource, WarehouseUnavailable

from .conftest import SAMPLE_DIR, Warehouse

DAY = "2024-01-01"


def _select(config, *keys: str):
    wanted = {AssetKey(k.split("/")) for k in keys}
    return [a for a in build_all_assets(config) if set(a.keys) & wanted]


def _failure_messages(result) -> str:
    return "\n".join(str(e.event_specific_data.error.to_string()) for e in result.all_events if e.is_step_failure)


def test_missing_input_file_names_file_and_commits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / DAY, drop / DAY)
    (drop / DAY / "customers.csv").unlink()
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    result = materialize(
        _select(config, "raw/shop_files/customers", "raw/shop_files/sales"),
        resources=build_resources(config),
        partition_key=DAY,
        raise_on_error=False,
    )
    assert not result.success
    message = _failure_messages(result)
    assert "shop_files.customers" in message and "customers.csv" in message and DAY in message
    lake = LakeStorage(url=config.lake.url)
    assert lake.commit_info(["raw", "shop_files", "customers"], DAY) is None
    partition_dir = Path(lake.dataset_dir(["raw", "shop_files", "customers"], DAY))
    assert not partition_dir.exists() or not any(partition_dir.iterdir())
    # The other source of the same run is unaffected.
    assert lake.commit_info(["raw", "shop_files", "sales"], DAY).rows > 0


def test_unreachable_warehouse_names_it_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql+psycopg2://loader:s3cret-pw@127.0.0.1:1/analytics")
    config = load_config()
    result = materialize(
        _select(config, "curated/dim_date", "warehouse/dim_date"),
        resources=build_resources(config),
        raise_on_error=False,
    )
    assert not result.success
    message = _failure_messages(result)
    assert "warehouse postgresql+psycopg2://loader:***@127.0.0.1:1/analytics is unreachable" in message
    assert "s3cret-pw" not in message


def test_unparsable_rows_are_quarantined_and_good_rows_continue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    drop = tmp_path / "drop" / DAY
    drop.mkdir(parents=True)
    header = "Line_ID,Order_No,Sale_TS,Cust_No,SKU,Store_Code,Qty,Price,Discount_Amt,Card\n"
    (drop / "sales_001.csv").write_text(
        header
        + "L1,O1,2024-01-01 10:00:00,C1,P1,S1,2,10.00,0,4111111111111111\n"
        + "L2,O1,not a date,C1,P1,S1,1,5.00,0,4111111111111111\n"  # unparsable timestamp
        + "L3,O2,2024-01-01 11:00:00,C2,P2,S1,1,5.00,0,4111111111111111,EXTRA\n"  # wrong field count
        + "L4,O3,2024-01-01 12:00:00,C2,P2,S1,many,5.00,0,4111111111111111\n"  # unparsable quantity
        # Enough good lines that the bad ones stay under standardize.max_quarantine_share (5%).
        + "".join(f"L{i},O{i},2024-01-01 13:00:00,C3,P3,S1,1,2.00,0,4111111111111111\n" for i in range(5, 45)),
        encoding="utf-8",
    )
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(tmp_path / "drop"))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    result = materialize(
        _select(config, "raw/shop_files/sales", "processed/sale"),
        resources=build_resources(config),
        partition_key=DAY,
    )
    assert result.success
    lake = LakeStorage(url=config.lake.url)
    # Each bad row is quarantined exactly once, at the first layer that can tell it is bad, with a
    # reason naming the problem; the good row flows on.
    rejects = lake.read_arrow(["quarantine", "raw", "shop_files", "sales"], DAY).to_pylist()
    if lake.commit_info(["quarantine", "processed", "sale"], DAY) is not None:
        rejects += lake.read_arrow(["quarantine", "processed", "sale"], DAY).to_pylist()
    reasons = {}
    for row in rejects:
        line_id = row.get("sale_line_id") or _line_id_of_raw(row.get("_raw") or "")
        assert line_id not in reasons, f"{line_id} quarantined twice"
        reasons[line_id] = row["_reject_reason"]
    assert sorted(reasons) == ["L2", "L3", "L4"]
    assert "expected 10 fields, got 11" in reasons["L3"]
    assert "sold_at" in reasons["L2"] and "quantity" in reasons["L4"]
    raw_line_numbers = {r.get("_line") for r in rejects if (r.get("_raw") or "").startswith("L3,")}
    assert raw_line_numbers == {"4"}
    good = lake.read_arrow(["processed", "sale"], DAY)
    assert sorted(good.column("sale_line_id").to_pylist()) == sorted(["L1", *(f"L{i}" for i in range(5, 45))])


def _line_id_of_raw(raw: str) -> str:
    """The sale line id of a quarantined raw record: a JSON object or the CSV text as delivered."""
    if raw.startswith("{"):
        return json.loads(raw)["Line_ID"]
    return raw.split(",")[0]


def _dim_date_rows(n: int, *, broken: bool = False) -> pa.Table:
    import datetime as dt

    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    return pa.table(
        {
            "date_key": [int(d.strftime("%Y%m%d")) for d in days],
            "full_date": days,
            "day_of_month": [d.day for d in days],
            "day_of_week": [d.isoweekday() for d in days],
            # A NULL in a NOT NULL column makes the database reject the load part-way.
            "day_name": [None if broken and i == n - 1 else d.strftime("%A") for i, d in enumerate(days)],
            "iso_week": [d.isocalendar()[1] for d in days],
            "iso_year": [d.isocalendar()[0] for d in days],
            "month": [d.month for d in days],
            "month_name": [d.strftime("%B") for d in days],
            "quarter": [(d.month - 1) // 3 + 1 for d in days],
            "year": [d.year for d in days],
            "is_weekend": [d.isoweekday() >= 6 for d in days],
            "fiscal_year": [d.year for d in days],
            "fiscal_quarter": [(d.month - 1) // 3 + 1 for d in days],
        }
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_failed_load_leaves_previous_table_intact(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    else:
        fixture: Warehouse = request.getfixturevalue(
            f"{'postgres' if backend == 'postgresql' else 'mariadb'}_warehouse"
        )
        warehouse = WarehouseResource(url=fixture.url, schema_name=fixture.schema)
    warehouse.ensure_schema()
    assert warehouse.replace_rows("dim_date", _dim_date_rows(10)) == 10
    with pytest.raises(WarehouseDataRejected, match="dim_date.*day_name"):
        warehouse.replace_rows("dim_date", _dim_date_rows(20, broken=True))
    rows = warehouse.fetch_all(f"SELECT COUNT(*), MAX(date_key) FROM {warehouse.qualified('dim_date')}")
    assert rows == [(10, 20240110)]


def test_unreachable_warehouse_error_type() -> None:
    warehouse = WarehouseResource(url="mysql+pymysql://root:pw-here@127.0.0.1:1/")
    with pytest.raises(WarehouseUnavailable) as error:
        warehouse.ensure_schema()
    assert "127.0.0.1:1" in str(error.value) and "pw-here" not in str(error.value)
