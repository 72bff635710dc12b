"""The warehouse: a SQLAlchemy engine (SQLite, PostgreSQL, MySQL/MariaDB) with bulk, atomic loads.

Guarantees:
* Every load is one transaction: readers see the old rows or the new rows, never half a load.
* Bulk paths only, never a row per round trip: PostgreSQL `COPY FROM STDIN (FORMAT csv)`, MySQL
  `LOAD DATA LOCAL INFILE` of a tab-separated file written by Arrow (falling back to multi-row
  `INSERT` batches when the server has `local_infile` off), SQLite `executemany`, each inside the
  load's one transaction.
* Loads stream: the rows (an Arrow table, or a lazy `pyarrow.dataset.Dataset` over the lake's files)
  go to the warehouse in record batches of at most `load_batch_rows`, serialised one batch at a time
  (the COPY stream is fed as the server reads it; the MySQL file is written batch by batch), so a
  load never holds a second whole copy of its rows, and a Dataset is never whole in memory.
* Tables, columns and indexes are declared once (resources/warehouse_schema.py) and created per dialect
  by SQLAlchemy; names are quoted by the dialect; values are always bound or streamed, never formatted
  into SQL. Only the views and row-level security are dialect SQL (`lake_assets/sql/<dialect>/views.sql`).
* Migration: a declared column an existing table lacks is added by `ALTER TABLE ... ADD COLUMN` (columns
  are only ever added, never changed or dropped), a declared index it lacks is created.
* Extra columns of the config (`entities:`; `extra_columns` here, table -> column -> Spark type) are
  declared with the fixed ones, nullable; the views get them through `{customer_extra_columns}`,
  `{sale_measure_sums}` and `{sale_degenerate_columns}`.
* Dimensions are upserted: bulk-loaded into a temporary staging table, then merged into the target
  (PostgreSQL/SQLite `INSERT ... ON CONFLICT DO UPDATE`, MySQL `ON DUPLICATE KEY UPDATE`), rows
  whose key vanished deleted, all in one transaction. Unchanged rows are not rewritten in PostgreSQL.
* Keyed day loads (`replace_rows(..., where=(column, [days]), key=...)`, fact_sales by `date_key`):
  the rows of those days and every row whose key is among the loaded rows are deleted (days and keys
  staged in temporary tables, deleted by a join), then the rows bulk-inserted, in one transaction: a
  re-delivered line is one row, the latest load's.
* Rows with empty chunks or batches (an empty part file) load like any other: empty batches are
  skipped before serialising (Arrow's CSV writer emits NUL bytes for them).
* Errors are classified. Data errors (SQLSTATE class 22/23, the drivers' DataError/IntegrityError,
  MySQL check-constraint and value errors, `LOAD DATA` warnings, Arrow conversion errors) raise
  `WarehouseDataRejected`, a `dagster.Failure` with `allow_retries=False`, naming the table and,
  where the warehouse reports it, the column, the row of the load and that row's key. Connection
  and throttling errors propagate, so the asset's retry policy applies to them; a connection broken
  during a load (a restarted server, a terminated session) is `WarehouseConnectionLost` naming the
  table, the driver's cause and that nothing of the load was kept.
* Errors name the warehouse by its URL with the password hidden. The password may come as its own
  field (`password`, a Dagster `EnvVar` when the config read it from the environment), so the URL
  the UI shows holds none.
* TLS (`warehouse.tls`: sslmode, CA file, client certificate) goes to the driver as connect
  arguments (resources/tls.py); a refused handshake or certificate is `WarehouseUnavailable` naming
  the TLS settings (file names, never a secret).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
from dagster import ConfigurableResource, Failure
from pydantic import Field, PrivateAttr
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

from lake_assets.dialects import sql_dialect
from lake_assets.parquet_stream import stream_batches
from lake_assets.resources.tls import is_tls_error, tls_connect_args
from lake_assets.resources.warehouse_indexes import claim_if_empty, indexes_built_after
from lake_assets.resources.warehouse_schema import star_schema
from lake_assets.secrets import SECRET_FIELD, with_password

if TYPE_CHECKING:
    from lake_assets.config import PipelineConfig

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"  # views per dialect; package data of a non-editable install
INSERT_BATCH_ROWS = 5_000
# Rows per record batch of a streamed load: bounds the memory of a load whatever the table's size.
LOAD_BATCH_ROWS = 50_000
# From this many rows, building a table's indexes after a load into it (empty) beats maintaining them
# during it; below, the difference is milliseconds and not worth a table lock.
INDEX_REBUILD_ROWS = 100_000
# What a load takes: a table in memory, or a Dataset scanned in batches as the load goes.
LoadRows: TypeAlias = pa.Table | ds.Dataset
# Warehouse table of each entity's extra columns.
EXTRA_COLUMN_TABLES = {"customer": "dim_customer", "product": "dim_product", "location": "dim_location",
                       "sale": "fact_sales"}


def warehouse_extras(config: PipelineConfig) -> dict[str, Any]:
    """`WarehouseResource` settings for the config's extra columns: `extra_columns`, `sale_measures`."""
    extra = {table: config.entities.extra_columns(entity) for entity, table in EXTRA_COLUMN_TABLES.items()}
    measures = list(config.entities.sale.measures)
    return {"extra_columns": {t: c for t, c in extra.items() if c}, "sale_measures": measures}


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be reached or refused the connection."""


class WarehouseConnectionLost(WarehouseUnavailable):
    """The connection broke during a load (server restart, terminated backend, network cut): retryable."""


class WarehouseLoadRejected(RuntimeError):
    """MySQL `LOAD DATA` stored some values only with warnings (the load is rolled back)."""

    def __init__(self, target: str, warnings: Sequence[tuple[Any, ...]]) -> None:
        self.warnings = [str(w[2]) for w in warnings]
        shown = "; ".join(self.warnings[:3])
        super().__init__(f"{target}: the warehouse rejected {len(warnings)} value(s) of the load: {shown}")


class WarehouseDataRejected(Failure):
    """The rows of a load are not acceptable to the warehouse; nothing of that load was kept.

    Deterministic (the same rows fail the same way), hence `allow_retries=False`: a Dagster step
    fails at once instead of waiting out its retry policy. `column`, `row` (1-based, in the order
    the rows were handed to the load) and `key` are None when the warehouse does not tell them.
    """

    def __init__(
        self,
        table: str,
        cause: str,
        warehouse: str,
        column: str | None = None,
        row: int | None = None,
        key: str | None = None,
        also_rows: Sequence[int] = (),
    ) -> None:
        self.table, self.cause, self.column, self.row, self.key = table, cause, column, row, key
        where = [f"column {column}" if column else "column not reported"]
        if row is not None:
            where.append(f"row {row} of the load" + (f" ({key})" if key else ""))
            if also_rows:
                where.append("the same key in row " + ", ".join(str(r) for r in also_rows))
        super().__init__(
            description=(
                f"warehouse table {table}: the load was rejected: {cause} [{'; '.join(where)}]. Nothing of "
                f"this load was kept. A data error is not retried: correct the rows of curated/{table} (or "
                "their source) and run the day again."
            ),
            metadata={
                "table": table,
                "column": column or "",
                "row": row if row is not None else "",
                "key": key or "",
                "warehouse": warehouse,
            },
            allow_retries=False,
        )


class WarehouseResource(ConfigurableResource):
    """A SQL warehouse addressed by a SQLAlchemy URL; `schema_name` qualifies every table."""

    url: str = Field(description="SQLAlchemy URL; without its password when `password` is given")
    password: str | None = Field(
        default=None, description="the URL's password (replaces one in `url`)", json_schema_extra=SECRET_FIELD
    )
    schema_name: str | None = None
    extra_columns: dict[str, dict[str, str]] = {}
    sale_measures: list[str] = []
    tls_sslmode: str = Field(default="", description="disable, require, verify-ca, verify-full; empty: driver default")
    tls_ca_file: str = Field(default="", description="PEM CA file the server certificate must chain to")
    tls_cert_file: str = Field(default="", description="PEM client certificate")
    tls_key_file: str = Field(default="", description="PEM key of the client certificate")
    load_batch_rows: int = Field(default=LOAD_BATCH_ROWS, gt=0,
                                 description="rows per record batch streamed into a load (bounds its memory)")
    index_rebuild_rows: int = Field(
        default=INDEX_REBUILD_ROWS, gt=0,
        description="PostgreSQL: a load of at least this many rows into an empty table builds the table's "
        "indexes after its rows instead of updating them row by row",
    )

    _engine: Any = PrivateAttr(default=None)

    # ------------------------------------------------------------------ basics
    @property
    def sqlalchemy_url(self) -> URL:
        """The URL with the password: for connecting only, never for messages (see `safe_url`)."""
        return with_password(self.url, self.password)

    @property
    def dialect(self) -> str:
        return sql_dialect(self.sqlalchemy_url)

    @property
    def safe_url(self) -> str:
        return self.sqlalchemy_url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.dialect == "sqlite":
                database = self.sqlalchemy_url.database
                if database and database != ":memory:":
                    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            connect_args: dict[str, Any] = {}
            if self.dialect == "mysql":
                connect_args["connect_timeout"] = 10
                connect_args["local_infile"] = True
            elif self.dialect == "postgresql":
                connect_args["connect_timeout"] = 10
            connect_args.update(self.tls_connect_args)
            self._engine = create_engine(self.sqlalchemy_url, pool_pre_ping=True, connect_args=connect_args)
        return self._engine

    @property
    def tls_connect_args(self) -> dict[str, Any]:
        """The driver's TLS arguments of the `tls_*` fields (empty: the driver's defaults)."""
        return tls_connect_args(self.dialect, self.tls_sslmode, self.tls_ca_file,
                                self.tls_cert_file, self.tls_key_file)

    def connect_checked(self) -> Connection:
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise self.unavailable(exc) from None

    def unavailable(self, exc: OperationalError) -> WarehouseUnavailable:
        """The error of a failed connection: the URL without its password, the driver's cause, and for a
        refused TLS handshake or certificate the TLS settings (file names only)."""
        lines = str(exc.orig).strip().splitlines() if exc.orig else [str(exc)]
        tls = self.tls_sslmode and is_tls_error(" ".join(lines))
        cause = next((line for line in lines if is_tls_error(line)), lines[0]) if tls else lines[0]
        if self.password:
            cause = cause.replace(self.password, "***")
        if tls:
            return WarehouseUnavailable(
                f"warehouse {self.safe_url}: the TLS connection was refused (warehouse.tls: sslmode "
                f"{self.tls_sslmode}, ca_file {self.tls_ca_file or '-'}, cert_file {self.tls_cert_file or '-'}): "
                f"{cause}. Check that ca_file holds the CA that signed the server's certificate and that "
                "the certificate names the URL's host."
            )
        return WarehouseUnavailable(f"warehouse {self.safe_url} is unreachable: {cause}")

    def qualified(self, table: str) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        if self.schema_name and self.dialect != "sqlite":
            return f"{quote(self.schema_name)}.{quote(table)}"
        return quote(table)

    # ------------------------------------------------------------------ DDL
    def _schema_prefix(self) -> str:
        if self.schema_name and self.dialect != "sqlite":
            return self.engine.dialect.identifier_preparer.quote(self.schema_name) + "."
        return ""

    def render_sql_file(self, name: str) -> list[str]:
        """Statements of `lake_assets/sql/<dialect>/<name>` (the views) with `{schema}` replaced by the quoted
        schema prefix and `{customer_extra_columns}` / `{sale_measure_sums}` / `{sale_degenerate_columns}` by
        the extra columns (quoted; empty if none)."""
        path = SQL_DIR / self.dialect / name
        if not path.is_file():
            raise FileNotFoundError(f"no DDL for dialect {self.dialect!r}: {path} is missing")
        quote = self.engine.dialect.identifier_preparer.quote
        customer = "".join(f", {quote(c)}" for c in self.extra_columns.get("dim_customer", {}))
        measures = "".join(f", SUM(f.{quote(m)}) AS {quote(m)}" for m in self.sale_measures)
        degenerate = "".join(f", f.{quote(c)}" for c in self.extra_columns.get("fact_sales", {})
                             if c not in self.sale_measures)
        body = (
            path.read_text(encoding="utf-8")
            .replace("{schema}", self._schema_prefix())
            .replace("{customer_extra_columns}", customer)
            .replace("{sale_measure_sums}", measures)
            .replace("{sale_degenerate_columns}", degenerate)
        )
        body = re.sub(r"^\s*--.*$", "", body, flags=re.MULTILINE)
        return [stmt.strip() for stmt in body.split(";\n") if stmt.strip().rstrip(";").strip()]

    def run_sql_file(self, name: str) -> int:
        """Run one SQL file in one transaction (PostgreSQL, SQLite) and return the statement count."""
        statements = self.render_sql_file(name)
        with self.connect_checked() as conn, conn.begin():
            for stmt in statements:
                conn.exec_driver_sql(stmt.rstrip(";"))
        return len(statements)

    @property
    def _metadata_schema(self) -> str | None:
        return self.schema_name if self.dialect != "sqlite" else None

    def _metadata_name(self, table: str) -> str:
        """`table`'s key in `schema_metadata().tables`."""
        return f"{self._metadata_schema}.{table}" if self._metadata_schema else table

    def schema_metadata(self) -> MetaData:
        """The star-schema tables of this warehouse's dialect and schema, extra columns included."""
        return star_schema(self._metadata_schema, self.dialect, self.extra_columns)

    def ensure_schema(self) -> None:
        """Create the schema (MySQL: the database) and every star-schema table if missing, add the
        declared columns an existing (older) table lacks, then create the declared indexes it lacks."""
        if self.schema_name and self.dialect in ("postgresql", "mysql"):
            keyword = "SCHEMA" if self.dialect == "postgresql" else "DATABASE"
            quoted = self.engine.dialect.identifier_preparer.quote(self.schema_name)
            with self.connect_checked() as conn, conn.begin():
                # Looked up first: `CREATE SCHEMA IF NOT EXISTS` needs CREATE on the whole database even
                # when the schema exists, and a least-privileged pipeline login owns only its schema.
                if not inspect(conn).has_schema(self.schema_name):
                    conn.exec_driver_sql(f"CREATE {keyword} IF NOT EXISTS {quoted}")
        metadata = self.schema_metadata()
        with self.connect_checked() as conn, conn.begin():
            for table in metadata.sorted_tables:
                conn.execute(CreateTable(table, if_not_exists=True))
        self._add_missing_columns(metadata)
        self._create_missing_indexes(metadata)

    def declared_columns(self) -> dict[str, dict[str, str]]:
        """{table: {column: its DDL definition in this dialect}} of the star schema, extra columns included."""
        dialect = self.engine.dialect
        return {
            table.name: {column.name: str(CreateColumn(column).compile(dialect=dialect)) for column in table.columns}
            for table in self.schema_metadata().sorted_tables
        }

    def _add_missing_columns(self, metadata: MetaData) -> None:
        # The migration rule: new columns are only ever added, with a default, never changed or dropped.
        dialect = self.engine.dialect
        for table in metadata.sorted_tables:
            existing = set(self.table_columns(table.name))
            missing = [column for column in table.columns if column.name not in existing]
            if missing:
                with self.connect_checked() as conn, conn.begin():
                    for column in missing:
                        definition = CreateColumn(column).compile(dialect=dialect)
                        conn.exec_driver_sql(f"ALTER TABLE {self.qualified(table.name)} ADD COLUMN {definition}")

    def _create_missing_indexes(self, metadata: MetaData) -> None:
        with self.connect_checked() as conn, conn.begin():
            for table in metadata.sorted_tables:
                indexes = sorted(table.indexes, key=lambda index: str(index.name))
                if self.dialect == "mysql":
                    # MySQL 8 has no CREATE INDEX IF NOT EXISTS (MariaDB has).
                    existing = {i["name"] for i in inspect(conn).get_indexes(table.name, schema=table.schema)}
                    for index in indexes:
                        if index.name not in existing:
                            conn.execute(CreateIndex(index))
                else:
                    for index in indexes:
                        conn.execute(CreateIndex(index, if_not_exists=True))

    # ------------------------------------------------------------------ loads
    def replace_rows(
        self,
        table: str,
        rows: LoadRows,
        where: tuple[str, Any] | None = None,
        key: Sequence[str] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Replace the rows of `table` (all of them, or those where `column = value`, or where `column`
        is in `value` when it is a list) by `rows`.

        With `key`, also delete the rows of *any* `column` value whose key is among `rows`, so a
        key delivered again on a later day moves to that day instead of being stored twice.
        One transaction: delete, then bulk insert, both streamed in batches. Returns the number of
        rows inserted. PostgreSQL: a load of at least `index_rebuild_rows` rows into an empty table
        builds the table's indexes after the rows (`warehouse_indexes.py`). `before_commit` runs last
        inside the transaction: an error it raises rolls the whole load back.
        """
        target = self.qualified(table)
        with self._data_errors(table, rows, key):
            _check_storable(rows.schema)
            with self.connect_checked() as conn, conn.begin():
                inserted = self._replace(conn, table, target, rows, where, key)
                if before_commit is not None:
                    before_commit()
                return inserted

    def _replace(self, conn: Connection, table: str, target: str, rows: LoadRows, where: tuple[str, Any] | None,
                 key: Sequence[str] | None) -> int:
        """`replace_rows`' deletes and bulk insert, on `conn` in its transaction."""
        if (self.dialect == "postgresql" and _row_count(rows) >= self.index_rebuild_rows
                and claim_if_empty(conn, target)):
            # Nothing to delete in an empty table.
            with indexes_built_after(conn, self.schema_metadata().tables[self._metadata_name(table)], target):
                return self._bulk_insert(conn, target, rows)
        if where is None:
            conn.exec_driver_sql(f"DELETE FROM {target}")
        elif isinstance(where[1], list):
            self._delete_keys(conn, table, target, pa.table({where[0]: where[1]}), [where[0]])
        else:
            column = self.engine.dialect.identifier_preparer.quote(where[0])
            conn.execute(text(f"DELETE FROM {target} WHERE {column} = :value"), {"value": where[1]})
        if where is not None and key:
            self._delete_keys(conn, table, target, rows, list(key))
        return self._bulk_insert(conn, target, rows)

    def _delete_keys(self, conn: Connection, table: str, target: str, rows: LoadRows, key: list[str]) -> None:
        """Delete the rows of `target` whose `key` is among `rows`: keys bulk-loaded into a temporary
        table, deleted by a join (no IN list, whatever the number of keys)."""
        quote = self.engine.dialect.identifier_preparer.quote
        cols = [quote(c) for c in key]
        col_list = ", ".join(cols)
        name = f"stg_keys_{table}_{key[0]}"  # one per key column: a load may delete by two
        if self.dialect == "postgresql":
            stage = quote(name)
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {col_list} FROM {target} WHERE false"
            )
            self._bulk_insert(conn, stage, rows, key)
            conn.exec_driver_sql(f"ANALYZE {stage}")  # a temp table has no statistics until analysed
            match = " AND ".join(f"t.{c} = s.{c}" for c in cols)
            conn.exec_driver_sql(f"DELETE FROM {target} t USING {stage} s WHERE {match}")
        elif self.dialect == "mysql":
            stage = self.qualified(name)
            conn.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {stage}")
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} AS SELECT {col_list} FROM {target} WHERE 1 = 0")
            self._bulk_insert(conn, stage, rows, key)
            # No alias for the target: MySQL resolves a multi-table DELETE's alias in the default database.
            match = " AND ".join(f"{target}.{c} = s.{c}" for c in cols)
            conn.exec_driver_sql(f"DELETE {target} FROM {target} JOIN {stage} s ON {match}")
            conn.exec_driver_sql(f"DROP TEMPORARY TABLE {stage}")
        else:
            stage = quote(name)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{stage}")
            conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} AS SELECT {col_list} FROM {target} WHERE 0")
            self._bulk_insert(conn, stage, rows, key)
            # SQLite has no DELETE ... JOIN; a correlated EXISTS uses the target's primary-key index.
            match = " AND ".join(f"s.{c} = {target}.{c}" for c in cols)
            conn.exec_driver_sql(f"DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM temp.{stage} s WHERE {match})")
            conn.exec_driver_sql(f"DROP TABLE temp.{stage}")

    @contextmanager
    def _data_errors(self, table: str, rows: pa.Table, key: Sequence[str] | None) -> Iterator[None]:
        """Turn a data error of a load into `WarehouseDataRejected` and a connection lost mid-load into
        `WarehouseConnectionLost`; let every other error through."""
        try:
            yield
        except Exception as exc:
            if is_data_error(exc):
                raise _rejection(exc, table, rows, list(key or []), self.safe_url) from exc
            lost = connection_lost(exc)
            if lost is None:
                raise
            cause = (str(lost).strip().splitlines() or [type(lost).__name__])[0]
            if self.password:
                cause = cause.replace(self.password, "***")
            raise WarehouseConnectionLost(
                f"warehouse {self.safe_url}: the connection was lost while loading {table} ({cause}). The load "
                "is one transaction: none of it was kept (or, if the connection broke during the commit, all "
                "of it); loading the day again is safe either way, and the step's retry policy does so."
            ) from exc

    def upsert_rows(self, table: str, rows: LoadRows, key: Sequence[str], delete_missing: bool = True) -> int:
        """Insert or update `rows` by primary key `key`; with `delete_missing`, delete the target rows
        whose key is not in `rows` (the table then equals `rows`). One transaction; returns the rows
        staged."""
        with self._data_errors(table, rows, key):
            _check_storable(rows.schema)
            return self._upsert(table, rows, key, delete_missing)

    def _upsert(self, table: str, rows: LoadRows, key: Sequence[str], delete_missing: bool) -> int:
        target = self.qualified(table)
        quote = self.engine.dialect.identifier_preparer.quote
        # MySQL temporary tables live in a database; PostgreSQL/SQLite ones in their temp schema.
        stage = self.qualified(f"stg_{table}") if self.dialect == "mysql" else quote(f"stg_{table}")
        cols = [quote(c) for c in rows.schema.names]
        keys = [quote(k) for k in key]
        others = [c for c in cols if c not in keys]
        col_list = ", ".join(cols)
        with self.connect_checked() as conn, conn.begin():
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
            elif self.dialect == "mysql":
                conn.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {stage}")
                conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} LIKE {target}")
            else:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{stage}")
                conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} AS SELECT * FROM {target} WHERE 0")
            staged = self._bulk_insert(conn, stage, rows)
            if self.dialect == "mysql":
                updates = ", ".join(f"{c} = VALUES({c})" for c in others)
                conn.exec_driver_sql(
                    f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {stage} "
                    f"ON DUPLICATE KEY UPDATE {updates}"
                )
                if delete_missing:
                    self._delete_vanished(conn, target, stage, keys)
                conn.exec_driver_sql(f"DROP TEMPORARY TABLE {stage}")
            else:
                updates = ", ".join(f"{c} = excluded.{c}" for c in others)
                changed = ""
                if self.dialect == "postgresql":
                    # Skip rows that did not change: no dead tuples, no WAL for an unchanged dimension.
                    mine = ", ".join(f"{target}.{c}" for c in others)
                    theirs = ", ".join(f"excluded.{c}" for c in others)
                    changed = f" WHERE ({mine}) IS DISTINCT FROM ({theirs})"
                conn.exec_driver_sql(
                    f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {stage} WHERE true "
                    f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}{changed}"
                )
                if delete_missing:
                    self._delete_vanished(conn, target, stage, keys)
                if self.dialect == "sqlite":
                    conn.exec_driver_sql(f"DROP TABLE temp.{stage}")
        return staged

    @staticmethod
    def _delete_vanished(conn: Connection, target: str, stage: str, keys: Sequence[str]) -> None:
        match = " AND ".join(f"s.{k} = {target}.{k}" for k in keys)
        conn.exec_driver_sql(f"DELETE FROM {target} WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})")

    def _bulk_insert(self, conn: Connection, target: str, rows: LoadRows, columns: Sequence[str] | None = None) -> int:
        """Stream `rows` (only `columns`, if given) into `target` in batches; returns the rows inserted."""
        quote = self.engine.dialect.identifier_preparer.quote
        names = list(columns or rows.schema.names)
        column_list = ", ".join(quote(c) for c in names)
        inserted = 0

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal inserted
            for batch in _load_batches(rows, self.load_batch_rows, names):
                inserted += batch.num_rows
                yield batch

        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            if self.dialect == "postgresql":
                copy = f"COPY {target} ({column_list}) FROM STDIN WITH (FORMAT csv)"
                cursor.copy_expert(copy, _CsvStream(batches()))
            elif self.dialect == "mysql" and _local_infile_allowed(cursor):
                with tempfile.TemporaryDirectory(prefix="lake_load_") as tmp:
                    path = os.path.join(tmp, "rows.tsv")
                    _write_mysql_tsv(batches(), path)
                    cursor.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET utf8mb4 ({column_list})",
                        (path,),
                    )
                    # LOAD DATA never fails on bad values, even in strict mode: it stores the column's
                    # implicit default (NULL in a NOT NULL column becomes '' or 0) and leaves a warning.
                    # A warning therefore fails the load, and the transaction rolls back.
                    problems = raw.show_warnings()
                    if problems:
                        raise WarehouseLoadRejected(target, problems)
            else:
                marker = "%s" if self.dialect == "mysql" else "?"
                placeholders = ", ".join([marker] * len(names))
                statement = f"INSERT INTO {target} ({column_list}) VALUES ({placeholders})"
                for batch in batches():
                    # A multi-row INSERT statement of at most INSERT_BATCH_ROWS rows at a time.
                    for part in pa.Table.from_batches([batch]).to_batches(max_chunksize=INSERT_BATCH_ROWS):
                        cursor.executemany(statement, list(_python_rows(part, self.dialect)))
        finally:
            cursor.close()
        return inserted

    def fetch_all(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.connect_checked() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params or {})]

    def table_columns(self, table: str) -> Sequence[str]:
        with self.connect_checked() as conn:
            result = conn.exec_driver_sql(f"SELECT * FROM {self.qualified(table)} WHERE 1 = 0")
            return list(result.keys())


def _local_infile_allowed(cursor: Any) -> bool:
    cursor.execute("SELECT @@GLOBAL.local_infile")
    row = cursor.fetchone()
    return bool(row and int(row[0]))


def _write_mysql_tsv(batches: Iterable[pa.RecordBatch], path: str) -> None:
    """LOAD DATA's default format, vectorized by Arrow one batch at a time: tab-separated, backslash
    escapes, NULL as \\N."""
    with open(path, "wb") as handle:
        for batch in batches:
            columns = []
            for column in batch.columns:
                if pa.types.is_boolean(column.type):
                    column = pc.cast(column, pa.int8())
                text_column = pc.cast(column, pa.string())
                for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
                    text_column = pc.replace_substring(text_column, raw, escaped)
                columns.append(pc.fill_null(text_column, "\\N"))
            lines = pc.binary_join_element_wise(*columns, "\t")
            handle.write(("\n".join(lines.to_pylist()) + "\n").encode("utf-8"))


class _CsvStream(io.RawIOBase):
    """A readable file of the batches as CSV (no header), produced as the reader (COPY) asks for it:
    one batch's text in memory at a time."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        super().__init__()
        self._batches = iter(batches)
        self._text = b""
        self._offset = 0
        self._options = pacsv.WriteOptions(include_header=False, quoting_style="needed")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._offset >= len(self._text):
            batch = next(self._batches, None)
            if batch is None:
                return 0
            sink = io.BytesIO()
            pacsv.write_csv(batch, sink, self._options)
            self._text, self._offset = sink.getvalue(), 0
        size = min(len(buffer), len(self._text) - self._offset)
        buffer[:size] = self._text[self._offset:self._offset + size]
        self._offset += size
        return size


def _row_count(rows: LoadRows) -> int:
    """Rows of a load; a Parquet Dataset counts from its files' footers, without reading rows."""
    return rows.num_rows if isinstance(rows, pa.Table) else rows.count_rows()


def _check_storable(schema: pa.Schema) -> None:
    """A nested column (list, struct, map), which no warehouse column stores, is an `ArrowTypeError`."""
    for field in schema:
        if pa.types.is_nested(field.type):
            raise pa.ArrowTypeError(f"column {field.name} has type {field.type}, which no warehouse column stores")


def _load_batches(rows: LoadRows, batch_rows: int, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """`columns` of `rows` in record batches of at most `batch_rows`, as the bulk paths need them:
    no empty batch (Spark writes empty part files; Arrow's CSV writer emits NUL bytes for an empty
    batch and an empty TSV line would be a row of defaults), timestamps as naive UTC. A Dataset is
    read as the batches are consumed, one batch decoded at a time (not a whole Parquet row group), so
    memory stays bounded by `batch_rows`."""
    if isinstance(rows, pa.Table):
        source: Iterable[pa.RecordBatch] = rows.select(list(columns)).to_batches(max_chunksize=batch_rows)
    else:
        source = stream_batches(rows, list(columns), None, batch_rows)
    for batch in source:
        if batch.num_rows:
            yield _naive_utc_timestamps(batch)


def _naive_utc_timestamps(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Warehouse TIMESTAMP/DATETIME columns hold UTC wall time without a zone (Spark writes UTC)."""
    for i, field in enumerate(batch.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = batch.column(i).cast(pa.timestamp(field.type.unit, tz="UTC")).cast(pa.timestamp(field.type.unit))
            batch = batch.set_column(i, field.name, naive)
    return batch


def _python_rows(batch: pa.RecordBatch, dialect: str) -> Iterable[tuple[Any, ...]]:
    columns = [col.to_pylist() for col in batch.columns]
    if dialect == "sqlite":
        # sqlite3 binds neither Decimal nor (from 3.12) datetime by default.
        columns = [[_sqlite_value(v) for v in col] for col in columns]
    return zip(*columns, strict=True)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return value


# ---------------------------------------------------------------------- error classification
# MySQL/MariaDB errors about the data that PyMySQL does not map to DataError/IntegrityError.
MYSQL_DATA_ERRORS = {
    1048,  # column cannot be null
    1062,  # duplicate entry
    1263,  # NULL supplied to NOT NULL column
    1264,  # out of range
    1265,  # data truncated
    1292,  # incorrect date/time value
    1366,  # incorrect value for column
    1406,  # data too long
    1451, 1452,  # foreign key
    3819,  # MySQL: check constraint violated
    4025,  # MariaDB: check constraint failed
}
ARROW_DATA_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def is_data_error(exc: BaseException) -> bool:
    """True for errors the same rows would raise again (retrying cannot help); False for connection,
    throttling, lock and every other error, which keep the retry policy."""
    if isinstance(exc, (WarehouseLoadRejected, *ARROW_DATA_ERRORS)):
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    # DB-API 2: every driver's errors derive from its module's DataError / IntegrityError.
    if {c.__name__ for c in type(orig).__mro__} & {"DataError", "IntegrityError"}:
        return True
    # PostgreSQL: 21 cardinality (a key twice in one upsert), 22 data exception, 23 integrity violation.
    sqlstate = getattr(orig, "pgcode", None) or ""
    if sqlstate[:2] in ("21", "22", "23"):
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return type(orig).__module__.startswith("pymysql") and bool(args) and args[0] in MYSQL_DATA_ERRORS


# PostgreSQL SQLSTATEs of a session ended by the server: admin shutdown, crash shutdown, cannot connect
# now, and class 08 (connection exception). MySQL/MariaDB client errors: server has gone away, lost
# connection during query; server errors: connection killed (KILL), server shutdown in progress.
PG_CONNECTION_LOST = ("57P01", "57P02", "57P03")
MYSQL_CONNECTION_LOST = {2006, 2013, 1927, 1053}


def connection_lost(exc: BaseException) -> BaseException | None:
    """The driver error saying the session's connection broke, searched along the exception's causes
    and contexts (the rollback after a dropped COPY fails with "connection already closed"; the
    driver's original error, returned here, is its context); None when the connection did not break
    or the error is already classified (`WarehouseUnavailable`: the connect itself failed)."""
    found: BaseException | None = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, WarehouseUnavailable):
            return None
        seen.add(id(current))
        orig = current.orig if isinstance(current, DBAPIError) else current
        module = type(orig).__module__
        names = {c.__name__ for c in type(orig).__mro__}
        sqlstate = getattr(orig, "pgcode", None) or ""
        args: tuple[Any, ...] = getattr(orig, "args", ())
        if (module.startswith("psycopg2") and (
            sqlstate in PG_CONNECTION_LOST or sqlstate.startswith("08")
            or (not sqlstate and bool(names & {"OperationalError", "InterfaceError"}))
        )) or (module.startswith("pymysql") and bool(args) and args[0] in MYSQL_CONNECTION_LOST):
            found = orig
        current = current.__cause__ if current.__cause__ is not None else (
            None if current.__suppress_context__ else current.__context__
        )
    return found


def _rejection(exc: BaseException, table: str, rows: LoadRows, key: list[str], warehouse: str) -> WarehouseDataRejected:
    """Locate the offending column / row / key from what the driver reports. Never echoes a whole
    row: PostgreSQL's detail ("Failing row contains ...") and COPY context hold every value."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    column: str | None = None
    row: int | None = None
    value: str | None = None
    diag = getattr(orig, "diag", None)
    if diag is not None and getattr(orig, "pgcode", None):
        cause = diag.message_primary or str(orig).splitlines()[0]
        column = diag.column_name
        copy = re.search(r"COPY \S+, line (\d+)(?:, column (\w+))?", diag.context or "")
        if copy:
            row, column = int(copy.group(1)), column or copy.group(2)
        detail = re.match(r"Key \((.+?)\)=\((.*)\)", diag.message_detail or "")
        if detail:
            column, value = column or detail.group(1), detail.group(2)
        if getattr(orig, "pgcode", "").startswith("21") and len(key) == 1:  # the same key twice in one upsert
            column, cause = key[0], f"{cause} (a key occurs twice in the load)"
    else:
        message = orig.warnings[0] if isinstance(orig, WarehouseLoadRejected) else str(orig)
        if isinstance(orig, WarehouseLoadRejected) and len(orig.warnings) > 1:
            cause = f"{message} (and {len(orig.warnings) - 1} more)"
        else:
            args: tuple[Any, ...] = getattr(orig, "args", ())
            cause = str(args[1]) if len(args) == 2 and isinstance(args[0], int) else message.splitlines()[0]
        at_row = re.search(r"column (?:`[^`]*`\.)*[`']?(\w+)[`']? at row (\d+)", message)
        if at_row:
            column = at_row.group(1)
            # LOAD DATA numbers the lines of its file (our rows); multi-row INSERT numbers per statement.
            row = int(at_row.group(2)) if isinstance(orig, WarehouseLoadRejected) else None
        named = re.search(r"Column '(\w+)' cannot be null|constraint failed: \w+\.(\w+)", message)
        if named:
            column = named.group(1) or named.group(2)
        duplicate = re.search(r"Duplicate entry '(.*)' for key '?(\w+)", message)
        if duplicate:
            value = duplicate.group(1)
            if duplicate.group(2) == "PRIMARY" and len(key) == 1:
                column = key[0]
    if isinstance(orig, ARROW_DATA_ERRORS) and column is None:
        column = next((f.name for f in rows.schema if pa.types.is_nested(f.type)), None)
    # Only the columns that locate the row, read again from a Dataset: never the whole load in memory.
    rows = _columns(rows, [c for c in dict.fromkeys([column, *key]) if c is not None and c in rows.schema.names])
    also: list[int] = []
    if column in rows.column_names and any(w in cause.lower() for w in ("unique", "duplicate", "twice")):
        values = [str(v) for v in rows.column(column).to_pylist()]
        if row is None:
            row = _first_repeat(values, value)
        if row is not None and 0 < row <= len(values):
            also = [i for i, v in enumerate(values[: row - 1], start=1) if v == values[row - 1]]
    if row is None and column in rows.column_names and "null" in cause.lower():
        nulls = pc.indices_nonzero(pc.is_null(rows.column(column)))
        row = nulls[0].as_py() + 1 if len(nulls) else None
    if row is not None and key and all(k in rows.column_names for k in key) and 0 < row <= rows.num_rows:
        value = ", ".join(f"{k} = {rows.column(k)[row - 1].as_py()!r}" for k in key)
    elif value is not None and column:
        value = f"{column} = {value!r}"
    return WarehouseDataRejected(table, cause, warehouse, column, row, value, also)


def _columns(rows: LoadRows, columns: list[str]) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows.select(columns)
    return rows.to_table(columns=columns)


def _first_repeat(values: list[str], value: str | None) -> int | None:
    """1-based row of the first value seen before (of `value`, if given)."""
    seen: set[str] = set()
    for index, item in enumerate(values, start=1):
        if value is not None and item != value:
            continue
        if item in seen:
            return index
        seen.add(item)
    return None
