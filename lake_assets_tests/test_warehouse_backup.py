"""Warehouse backups: dump, drop, restore, the rows and totals that were inserted come back; retention of
old dumps; an S3 lake; the Dagster job; no password on a command line.

Oracles are the rows the tests insert (lake_assets_tests/warehouse_rows.py), never the code's own counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lake_assets.lake_maintenance.warehouse_backup import (
    backup_warehouse,
    backups_root,
    list_backups,
    main,
    prune_backups,
)
from lake_assets.lake_maintenance.warehouse_dump import WarehouseDumpError, mysql_option_file, mysql_option_text
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.warehouse import WarehouseResource

from . import warehouse_rows as rows
from .conftest import MARIADB_ADMIN_URL

# What load_star inserts, counted from the same input tables.
FACTS = [rows.fact_sales(1, [("L1", 1, 1, 2), ("L2", 2, 2, 3)]), rows.fact_sales(2, [("L3", 3, 1, 1), ("L4", 4, 2, 5)])]
EXPECTED_ROWS = {
    "dim_customer": rows.dim_customer().num_rows,
    "dim_product": rows.dim_product().num_rows,
    "dim_location": rows.dim_location().num_rows,
    "dim_date": rows.dim_date().num_rows,
    "fact_sales": sum(f.num_rows for f in FACTS),
}
EXPECTED_NET = sum((sum(f.column("net_amount").to_pylist(), Decimal(0)) for f in FACTS), Decimal(0))
ODD_PASSWORD = 'p#w"d \\x\'q;$'  # a comment sign, quotes, a backslash, a space: the option file must keep it


def _snapshot(warehouse: WarehouseResource) -> tuple[dict[str, int], Decimal, list[tuple]]:
    counts = {t: warehouse.fetch_all(f"SELECT COUNT(*) FROM {warehouse.qualified(t)}")[0][0] for t in EXPECTED_ROWS}
    net = warehouse.fetch_all(f"SELECT SUM(net_amount) FROM {warehouse.qualified('fact_sales')}")[0][0]
    by_day = warehouse.fetch_all(f"SELECT date_key, SUM(quantity) FROM {warehouse.qualified('fact_sales')} "
                                 "GROUP BY date_key ORDER BY date_key")
    return counts, Decimal(str(net)), [(int(d), int(q)) for d, q in by_day]


def _drop(warehouse: WarehouseResource) -> None:
    if warehouse.dialect == "sqlite":
        Path(warehouse.sqlalchemy_url.database).unlink()
        return
    keyword = "SCHEMA" if warehouse.dialect == "postgresql" else "DATABASE"
    cascade = " CASCADE" if warehouse.dialect == "postgresql" else ""
    quoted = warehouse.engine.dialect.identifier_preparer.quote(warehouse.schema_name)
    with warehouse.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP {keyword} {quoted}{cascade}")
    warehouse.engine.dispose()


@pytest.fixture
def backup_login(warehouse: WarehouseResource, request: pytest.FixtureRequest):  # noqa: ANN201
    """The warehouse as the backup sees it: MariaDB through a login whose password needs quoting in an
    option file; PostgreSQL with a password in the URL (the server trusts loopback, so it is only carried)."""
    if warehouse.dialect == "sqlite":
        yield warehouse
        return
    if warehouse.dialect == "postgresql":
        yield WarehouseResource(url=str(warehouse.url).replace("postgres@", "postgres:pg-secret-4711@"),
                                schema_name=warehouse.schema_name)
        return
    user = f"bk_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB_ADMIN_URL)
    with admin.begin() as conn:
        # '%%': PyMySQL formats the statement with its parameters.
        conn.execute(text(f"CREATE USER '{user}'@'%%' IDENTIFIED BY :pw"), {"pw": ODD_PASSWORD})
        conn.execute(text(f"GRANT ALL ON `{warehouse.schema_name}`.* TO '{user}'@'%%'"), {})
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_ADMIN_URL).set(username=user, password=ODD_PASSWORD)
    yield WarehouseResource(url=url.render_as_string(hide_password=False), schema_name=warehouse.schema_name)
    with admin.begin() as conn:
        conn.execute(text(f"DROP USER '{user}'@'%%'"), {})
    admin.dispose()


def test_backup_drop_restore_gives_back_the_rows(backup_login: WarehouseResource, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    warehouse = backup_login
    rows.load_star(warehouse)
    warehouse.run_sql_file("views.sql")
    before = _snapshot(warehouse)
    assert before[0] == EXPECTED_ROWS and before[1] == EXPECTED_NET  # the oracle: what was inserted
    view_before = warehouse.fetch_all(f"SELECT * FROM {warehouse.qualified('v_sales_daily')} ORDER BY 1, 2")

    argv_seen: list[list[str]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def spy_run(argv, *args, **kwargs):  # noqa: ANN001, ANN202 - records each tool's command line
        argv_seen.append(list(argv))
        return real_run(argv, *args, **kwargs)

    class SpyPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, argv, *args, **kwargs) -> None:  # noqa: ANN001
            argv_seen.append(list(argv))
            super().__init__(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy_run)
    monkeypatch.setattr(subprocess, "Popen", SpyPopen)

    lake = LakeStorage(url=str(tmp_path / "lake"))
    result = backup_warehouse(lake, warehouse, date(2024, 3, 1), retention_days=30)
    day_dir = Path(backups_root(lake)) / "2024-03-01"
    manifest = json.loads((day_dir / "manifest.json").read_text())
    assert manifest["dialect"] == warehouse.dialect and (day_dir / manifest["file"]).stat().st_size > 0
    assert {t: manifest["tables"][t] for t in EXPECTED_ROWS} == EXPECTED_ROWS
    assert result.location == str(day_dir)

    _drop(warehouse)
    # The restore command against the bundled config, pointed at this lake and warehouse.
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.sqlalchemy_url.render_as_string(hide_password=False))
    if warehouse.schema_name:
        monkeypatch.setenv("WAREHOUSE_SCHEMA", warehouse.schema_name)
    target = []
    if warehouse.dialect == "postgresql":  # --target-url naming its password by variable (kept off argv)
        monkeypatch.setenv("BK_PASSWORD", warehouse.sqlalchemy_url.password)
        monkeypatch.setenv("WAREHOUSE_URL", "sqlite:///unused.db")
        target = ["--target-url", str(warehouse.url).replace(":pg-secret-4711@", ":${BK_PASSWORD}@")]
        assert "${BK_PASSWORD}" in target[1]
    assert main(["--backup", "2024-03-01", *target]) == 0, capsys.readouterr().err
    restored = WarehouseResource(url=warehouse.url, password=warehouse.password, schema_name=warehouse.schema_name)
    assert _snapshot(restored) == before
    assert restored.fetch_all(f"SELECT * FROM {restored.qualified('v_sales_daily')} ORDER BY 1, 2") == view_before

    # A second restore finds the tables and refuses; --force replaces them.
    assert main(["--backup", "2024-03-01", *target]) == 1
    err = capsys.readouterr().err
    assert "is not empty" in err and "fact_sales" in err
    assert main(["--backup", "2024-03-01", "--force", *target]) == 0
    assert _snapshot(restored) == before

    password = warehouse.sqlalchemy_url.password
    tool_runs = [a for a in argv_seen if "--version" not in a]
    assert tool_runs or warehouse.dialect == "sqlite"
    if password:
        assert not [a for a in argv_seen if any(password in part for part in a)]
        assert password not in (day_dir / "manifest.json").read_text()
        out = capsys.readouterr()
        assert password not in out.out + out.err


def test_restore_refuses_a_missing_or_damaged_backup(tmp_path: Path) -> None:
    source = WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    rows.load_star(source)
    lake = LakeStorage(url=str(tmp_path / "lake"))
    backup_warehouse(lake, source, date(2024, 3, 1), retention_days=30)
    from lake_assets.lake_maintenance.warehouse_backup import restore_backup

    target = WarehouseResource(url=f"sqlite:///{tmp_path / 'restored.db'}")
    with pytest.raises(WarehouseDumpError, match="no manifest.json.*Backups in .*: 2024-03-01"):
        restore_backup(lake, target, "2024-03-02")
    dump_file = Path(backups_root(lake)) / "2024-03-01" / "warehouse.sqlite3"
    dump_file.write_bytes(dump_file.read_bytes()[:-1] + b"\x01")
    with pytest.raises(WarehouseDumpError, match="does not match the SHA-256"):
        restore_backup(lake, target, "2024-03-01")
    assert not (tmp_path / "restored.db").exists()


def test_retention_deletes_old_dumps_but_never_the_newest(tmp_path: Path) -> None:
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    rows.load_star(warehouse)
    lake = LakeStorage(url=str(tmp_path / "lake"))
    (Path(backups_root(lake)) / "notes").mkdir(parents=True)  # not a day: never touched
    for day in ("2024-01-01", "2024-01-10", "2024-01-11", "2024-02-01"):
        assert backup_warehouse(lake, warehouse, date.fromisoformat(day), retention_days=365).deleted == []
    # 2024-02-10 with 30 days: the cut-off is 2024-01-11; days before it go.
    result = backup_warehouse(lake, warehouse, date(2024, 2, 10), retention_days=30)
    assert result.deleted == ["2024-01-01", "2024-01-10"]
    assert list_backups(lake) == ["2024-01-11", "2024-02-01", "2024-02-10"]
    assert (Path(backups_root(lake)) / "notes").is_dir()

    # A failed dump deletes nothing.
    broken = WarehouseResource(url=f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(WarehouseDumpError, match="no such file"):
        backup_warehouse(lake, broken, date(2025, 1, 1), retention_days=1)
    assert list_backups(lake) == ["2024-01-11", "2024-02-01", "2024-02-10"]
    # Long after the last backup, retention keeps the newest one.
    assert prune_backups(lake, date(2025, 1, 1), 30) == ["2024-01-11", "2024-02-01"]
    assert list_backups(lake) == ["2024-02-10"]


def test_backup_to_an_s3_lake_is_encrypted_pruned_and_restorable(s3, tmp_path: Path) -> None:  # noqa: ANN001
    import boto3

    bucket = s3.make_bucket()
    lake = LakeStorage(url=f"s3://{bucket}/lake")
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    rows.load_star(warehouse)
    backup_warehouse(lake, warehouse, date(2024, 1, 1), retention_days=7)
    backup_warehouse(lake, warehouse, date(2024, 1, 20), retention_days=7)
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="lake/backups/")["Contents"]
    # Arrow leaves an empty directory marker (`…/warehouse/`) when it deletes a directory's last child.
    keys = sorted(o["Key"] for o in listed if not o["Key"].endswith("/"))
    assert keys == ["lake/backups/warehouse/2024-01-20/manifest.json",
                    "lake/backups/warehouse/2024-01-20/warehouse.sqlite3"]
    head = client.head_object(Bucket=bucket, Key="lake/backups/warehouse/2024-01-20/warehouse.sqlite3")
    assert head["ServerSideEncryption"] == "AES256"

    from lake_assets.lake_maintenance.warehouse_backup import restore_backup

    target = WarehouseResource(url=f"sqlite:///{tmp_path / 'restored.db'}")
    restore_backup(lake, target, f"s3://{bucket}/lake/backups/warehouse/2024-01-20")
    assert _snapshot(target)[:2] == (EXPECTED_ROWS, EXPECTED_NET)


def test_backup_job_files_the_day_and_reports_the_tables(tmp_path: Path) -> None:
    from lake_assets.automation.backup_job import BACKUP_OP, build_backup_job
    from lake_assets.config import load_config

    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    rows.load_star(warehouse)
    lake = LakeStorage(url=str(tmp_path / "lake"))
    job = build_backup_job(load_config())
    result = job.execute_in_process(
        resources={"lake": lake, "warehouse": warehouse},
        run_config={"ops": {BACKUP_OP: {"config": {"today": "2024-05-06"}}}},
    )
    assert result.success
    assert list_backups(lake) == ["2024-05-06"]
    [materialization] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = materialization.event_specific_data.metadata
    assert metadata["rows"].value == sum(EXPECTED_ROWS.values())
    assert metadata["day"].value == "2024-05-06"


def test_the_mysql_option_file_is_private_and_the_only_place_of_the_password() -> None:
    warehouse = WarehouseResource(url="mysql+pymysql://etl@db.example:3307/dw", password=ODD_PASSWORD,
                                  tls_sslmode="verify-full", tls_ca_file="/etc/ssl/ca.pem")
    with mysql_option_file(warehouse) as path:
        assert os.stat(path).st_mode & 0o777 == 0o600
        content = Path(path).read_text()
    assert not os.path.exists(path)
    assert 'password="p#w\\"d \\\\x\'q;$"' in content
    assert {"ssl", "ssl-verify-server-cert", 'ssl-ca="/etc/ssl/ca.pem"', 'port="3307"'} <= set(content.splitlines())
    assert "skip-ssl" in mysql_option_text(WarehouseResource(url="mysql+pymysql://etl@db/dw", tls_sslmode="disable"))
