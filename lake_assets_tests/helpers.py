"""Independent oracles for the end-to-end tests: computed from the source files with the standard
library only, never with the pipeline's own code."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import create_engine, text

from lake_assets.config import PipelineConfig
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR

SALES_FIELDS = 10


def source_sales(sample_dir: Path, day: str) -> dict[str, tuple[int, Decimal, Decimal]]:
    """{line id: (qty, unit price, discount)} of a day's sales files: well-formed rows, de-duplicated."""
    lines: dict[str, tuple[int, Decimal, Decimal]] = {}
    for path in sorted((sample_dir / day).glob("sales_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if len(row) != SALES_FIELDS:
                    continue
                price = Decimal(row[7].replace("$", "").replace(",", "").strip())
                lines[row[0].strip()] = (int(row[6]), price, Decimal(row[8] or "0"))
    return lines


def malformed_sales_rows(sample_dir: Path, day: str) -> int:
    count = 0
    for path in sorted((sample_dir / day).glob("sales_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            count += sum(1 for row in reader if len(row) != SALES_FIELDS)
    return count


def expected_net_total(sample_dir: Path, day: str) -> Decimal:
    return sum(
        ((Decimal(q) * p).quantize(Decimal("0.01")) - d for q, p, d in source_sales(sample_dir, day).values()),
        Decimal("0"),
    )


PII_HEADER_WORDS = ("mail", "social", "ssn", "card")


def source_pii_values(drop: Path) -> set[str]:
    """Every e-mail, SSN and card number the CSV files under `drop` deliver, as the source wrote them.

    Columns are picked by header words the fixtures use (E-Mail, Social Security, Card, Email): the
    oracle is the input itself, independent of the pipeline's own PII scanner.
    """
    values: set[str] = set()
    for path in sorted(drop.rglob("*.csv")):
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        wanted = [i for i, name in enumerate(header) if any(w in name.lower() for w in PII_HEADER_WORDS)]
        for row in reader:
            values.update(row[i].strip() for i in wanted if i < len(row) and len(row[i].strip()) >= 6)
    return values


def leaked_pii(pii: set[str], rows: Iterable[Sequence[Any]]) -> set[str]:
    """The source PII values found in `rows`: verbatim (case-insensitive), or as a card's bare digits."""
    lowered = {value.lower() for value in pii}
    cards = {d for d in ("".join(c for c in value if c.isdigit()) for value in pii) if len(d) >= 13}
    found: set[str] = set()
    for row in rows:
        for value in row:
            if not isinstance(value, str):
                continue
            text = value.lower()
            found.update(v for v in lowered if v in text)
            compact = text.replace(" ", "").replace("-", "")
            found.update(d for d in cards if d in compact)
    return found


def leaked_pii_in_parquet_files(pii: set[str], files: list[str], filesystem) -> set[str]:
    found: set[str] = set()
    for path in files:
        table = pq.read_table(path, filesystem=filesystem)
        found |= leaked_pii(pii, zip(*[c.to_pylist() for c in table.columns], strict=True))
    return found


DAY = "2024-01-01"
STAR_TABLES = ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales")
FACT_TABLE = ["curated", "fact_sales"]  # partitioned by sale date; `ingest_date` is the run day that delivered a line
FK_COLUMNS = {
    "customer_key": "dim_customer",
    "product_key": "dim_product",
    "location_key": "dim_location",
    "date_key": "dim_date",
}


def warehouse_snapshot(config: PipelineConfig) -> dict[str, list[tuple]]:
    engine = create_engine(config.warehouse.url)
    prefix = (
        f"{config.warehouse.schema_name}."
        if config.warehouse.schema_name and "sqlite" not in config.warehouse.url
        else ""
    )
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
            orphans = conn.execute(
                text(
                    f"SELECT COUNT(*) FROM {prefix}fact_sales f LEFT JOIN {prefix}{dim} d ON d.{column} = f.{column} "
                    f"WHERE d.{column} IS NULL"
                )
            ).scalar()
            assert orphans == 0, f"{orphans} fact rows have no {dim} row"
        views = conn.execute(text(f"SELECT SUM(net_amount) FROM {prefix}v_sales_daily")).scalar()
        # SQLite sums NUMERIC as floating point: compare to the cent.
        snapshot["_view_total"] = [(Decimal(str(views)).quantize(Decimal("0.01")),)]
    engine.dispose()
    return snapshot


def assert_graph_correct(config: PipelineConfig, lake: LakeStorage) -> dict[str, list[tuple]]:
    sales = source_sales(SAMPLE_DIR, DAY)
    raw_rows = lake.commit_info(["raw", "shop_files", "sales"], DAY).rows
    quarantined = lake.commit_info(["quarantine", "raw", "shop_files", "sales"], DAY).rows
    assert quarantined == malformed_sales_rows(SAMPLE_DIR, DAY) > 0
    processed = lake.commit_info(["processed", "sale"], DAY).rows
    masked = lake.commit_info(["masked", "sale"], DAY).rows
    fact_files = lake.partitions_files(FACT_TABLE, list(lake.commits(FACT_TABLE)))  # every sale date
    delivered = pq.ParquetDataset(fact_files, filesystem=lake.filesystem, partitioning=None).read(["ingest_date"])
    fact = sum(str(day) == DAY for day in delivered.column("ingest_date").to_pylist())  # the day's run's lines
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

    # No source e-mail, SSN or full card number in the curated layer or in the warehouse.
    pii = source_pii_values(SAMPLE_DIR / DAY)
    assert len(pii) > 10  # the fixture does carry PII
    for table in STAR_TABLES:
        files = fact_files if table == "fact_sales" else lake.committed_files(["curated", table])
        assert leaked_pii_in_parquet_files(pii, files, lake.filesystem) == set(), f"PII in curated/{table}"
        assert leaked_pii(pii, snapshot[table]) == set(), table
    return snapshot


def materialize_day(config: PipelineConfig, day: str):  # noqa: ANN201 - dagster's ExecuteInProcessResult
    """The whole graph for one day, in-process; fails the test with the step errors or failed checks."""
    from dagster import materialize

    from lake_assets.assets import build_all_assets
    from lake_assets.assets.quality import build_quality_checks
    from lake_assets.definitions import build_resources

    # The daily job's graph: the assets and the standalone quality checks.
    result = materialize(
        [*build_all_assets(config), *build_quality_checks(config)], resources=build_resources(config),
        partition_key=day, raise_on_error=False,
    )
    failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert not failed_checks, [f"{e.asset_key.to_user_string()}:{e.check_name} {e.metadata}" for e in failed_checks]
    return result


def materialize_range(config: PipelineConfig, first: str, last: str, instance: Any = None):  # noqa: ANN201
    """The whole graph for the days `first`...`last` as ONE run (the daily job with a partition range,
    what a single-run backfill launches), in-process; fails the test with the step errors or failed
    checks. Returns dagster's ExecuteInProcessResult."""
    from dagster import AssetSelection, Definitions, define_asset_job

    from lake_assets.assets import build_all_assets
    from lake_assets.assets.partitions import RANGE_END_TAG, RANGE_START_TAG
    from lake_assets.assets.quality import build_quality_checks
    from lake_assets.definitions import build_resources

    job = define_asset_job("days_range", selection=AssetSelection.all())
    defs = Definitions(assets=[*build_all_assets(config), *build_quality_checks(config)],
                       resources=build_resources(config), jobs=[job])
    result = defs.resolve_job_def("days_range").execute_in_process(
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last}, raise_on_error=False, instance=instance)
    failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert not failed_checks, [f"{e.asset_key.to_user_string()}:{e.check_name} {e.metadata}" for e in failed_checks]
    return result


def query_rows(url: str, sql: str) -> list[dict]:
    """Rows of one warehouse query as dicts (a fresh engine, disposed afterwards)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def warehouse_rows(config: PipelineConfig, sql: str) -> list[dict]:
    """`query_rows` on the config's warehouse; `{p}` in `sql` is its schema prefix (none on SQLite)."""
    prefix = "" if config.warehouse.url.startswith("sqlite") else f"{config.warehouse.schema_name}."
    return query_rows(config.warehouse.url, sql.format(p=prefix))


def warehouse_for(backend: str, tmp_path: Path, request: Any) -> tuple[str, str]:
    """(URL, schema) of a fresh warehouse: a SQLite file, or the `postgres` / `mariadb` fixture's."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}", "analytics"
    server = request.getfixturevalue("postgres_warehouse" if backend == "postgres" else "mariadb_warehouse")
    return server.url, server.schema
