"""The warehouse: a SQLAlchemy engine (SQLite, PostgreSQL, MySQL/MariaDB) with bulk, atomic loads.

Guarantees:
* Every load is one transaction: readers see the old rows or the new rows, never half a load.
* Bulk paths only, never a row per round trip: PostgreSQL `COPY FROM STDIN (FORMAT csv)`, MySQL
  `LOAD DATA LOCAL INFILE` of a tab-separated file written by Arrow (falling back to multi-row
  `INSERT` batches when the server has `local_infile` off), SQLite `executemany`, each inside the
  load's one transaction.
* Table and column names come from the DDL in `sql/<dialect>/` and are quoted by the dialect; values
  are always bound or streamed, never formatted into SQL.
* Dimensions are upserted: bulk-loaded into a temporary staging table, then merged into the target
  (PostgreSQL/SQLite `INSERT ... ON CONFLICT DO UPDATE`, MySQL `ON DUPLICATE KEY UPDATE`), rows
  whose key vanished deleted, all in one transaction. Unchanged rows are not rewritten in PostgreSQL.
* `ensure_schema` creates missing tables and adds columns the DDL declares but an older table lacks.
* Errors name the warehouse by its URL with the password hidden.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from dagster import ConfigurableResource
from pydantic import PrivateAttr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
INSERT_BATCH_ROWS = 5_000


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be reached or refused the connection."""


class WarehouseLoadRejected(RuntimeError):
    """The warehouse refused some of the rows of a load; nothing of that load was kept."""


class WarehouseResource(ConfigurableResource):
    """A SQL warehouse addressed by a SQLAlchemy URL; `schema_name` qualifies every table."""

    url: str
    schema_name: str | None = None

    _engine: Any = PrivateAttr(default=None)

    # ------------------------------------------------------------------ basics
    @property
    def dialect(self) -> str:
        name = make_url(self.url).get_backend_name()
        return {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}.get(
            name, name
        )

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.dialect == "sqlite":
                database = make_url(self.url).database
                if database and database != ":memory:":
                    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            connect_args: dict[str, Any] = {}
            if self.dialect == "mysql":
                connect_args["connect_timeout"] = 10
                connect_args["local_infile"] = True
            elif self.dialect == "postgresql":
                connect_args["connect_timeout"] = 10
            self._engine = create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        return self._engine

    def connect_checked(self) -> Connection:
        try:
            return self.engine.connect()
        except OperationalError as exc:
            cause = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise WarehouseUnavailable(f"warehouse {self.safe_url} is unreachable: {cause}") from None

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
        """Statements of `sql/<dialect>/<name>` with `{schema}` replaced by the quoted schema prefix."""
        path = SQL_DIR / self.dialect / name
        if not path.is_file():
            raise FileNotFoundError(f"no DDL for dialect {self.dialect!r}: {path} is missing")
        body = path.read_text(encoding="utf-8").replace("{schema}", self._schema_prefix())
        body = re.sub(r"^\s*--.*$", "", body, flags=re.MULTILINE)
        return [stmt.strip() for stmt in body.split(";\n") if stmt.strip().rstrip(";").strip()]

    def run_sql_file(self, name: str) -> int:
        """Run one DDL file in one transaction (PostgreSQL, SQLite) and return the statement count."""
        statements = self.render_sql_file(name)
        with self.connect_checked() as conn, conn.begin():
            for stmt in statements:
                conn.exec_driver_sql(stmt.rstrip(";"))
        return len(statements)

    def ensure_schema(self) -> None:
        """Create the schema (MySQL: the database) and every star-schema table if missing, and add
        the columns `tables.sql` declares that an existing (older) table lacks."""
        if self.schema_name and self.dialect in ("postgresql", "mysql"):
            keyword = "SCHEMA" if self.dialect == "postgresql" else "DATABASE"
            quoted = self.engine.dialect.identifier_preparer.quote(self.schema_name)
            with self.connect_checked() as conn, conn.begin():
                conn.exec_driver_sql(f"CREATE {keyword} IF NOT EXISTS {quoted}")
        self.run_sql_file("tables.sql")
        self._add_missing_columns()

    def declared_columns(self) -> dict[str, dict[str, str]]:
        """{table: {column: its DDL definition}} parsed from `tables.sql` (one column per line)."""
        tables: dict[str, dict[str, str]] = {}
        for stmt in self.render_sql_file("tables.sql"):
            match = re.match(r"CREATE TABLE IF NOT EXISTS \S*?(\w+)\s*\((.*)\)", stmt, flags=re.S)
            if not match:
                continue
            columns = tables.setdefault(match.group(1), {})
            for line in match.group(2).splitlines():
                line = line.strip().rstrip(",")
                word = line.split(" ", 1)[0] if line else ""
                if word and word.upper() not in ("PRIMARY", "INDEX", "UNIQUE", "KEY", "CONSTRAINT", "FOREIGN"):
                    columns[word] = line
        return tables

    def _add_missing_columns(self) -> None:
        # The migration rule: new columns are only ever added, with a default, never changed or dropped.
        for table, columns in self.declared_columns().items():
            existing = set(self.table_columns(table))
            missing = [definition for name, definition in columns.items() if name not in existing]
            if missing:
                with self.connect_checked() as conn, conn.begin():
                    for definition in missing:
                        conn.exec_driver_sql(f"ALTER TABLE {self.qualified(table)} ADD COLUMN {definition}")

    # ------------------------------------------------------------------ loads
    def replace_rows(
        self,
        table: str,
        rows: pa.Table,
        where: tuple[str, Any] | None = None,
    ) -> int:
        """Replace the rows of `table` (all of them, or those where `column = value`) by `rows`.

        One transaction: delete, then bulk insert. Returns the number of rows inserted.
        """
        target = self.qualified(table)
        rows = _naive_utc_timestamps(rows)
        with self.connect_checked() as conn, conn.begin():
            if where is None:
                conn.exec_driver_sql(f"DELETE FROM {target}")
            else:
                column = self.engine.dialect.identifier_preparer.quote(where[0])
                conn.execute(text(f"DELETE FROM {target} WHERE {column} = :value"), {"value": where[1]})
            self._bulk_insert(conn, target, rows)
        return rows.num_rows

    def upsert_rows(self, table: str, rows: pa.Table, key: Sequence[str], delete_missing: bool = True) -> int:
        """Insert or update `rows` by primary key `key`; with `delete_missing`, delete the target rows
        whose key is not in `rows` (the table then equals `rows`). One transaction."""
        target = self.qualified(table)
        rows = _naive_utc_timestamps(rows)
        quote = self.engine.dialect.identifier_preparer.quote
        # MySQL temporary tables live in a database; PostgreSQL/SQLite ones in their temp schema.
        stage = self.qualified(f"stg_{table}") if self.dialect == "mysql" else quote(f"stg_{table}")
        cols = [quote(c) for c in rows.column_names]
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
            self._bulk_insert(conn, stage, rows)
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
        return rows.num_rows

    @staticmethod
    def _delete_vanished(conn: Connection, target: str, stage: str, keys: Sequence[str]) -> None:
        match = " AND ".join(f"s.{k} = {target}.{k}" for k in keys)
        conn.exec_driver_sql(f"DELETE FROM {target} WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})")

    def _bulk_insert(self, conn: Connection, target: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        # Empty batches (Spark's empty part files) go: Arrow's CSV writer emits uninitialised bytes for
        # a table whose first batch is empty, and an empty chunk would be a blank line in the MySQL file.
        rows = pa.Table.from_batches([b for b in rows.to_batches() if b.num_rows], schema=rows.schema)
        quote = self.engine.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c) for c in rows.column_names)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            if self.dialect == "postgresql":
                buffer = io.BytesIO()
                pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
                buffer.seek(0)
                cursor.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
            elif self.dialect == "mysql" and _local_infile_allowed(cursor):
                with tempfile.TemporaryDirectory(prefix="lake_load_") as tmp:
                    path = os.path.join(tmp, "rows.tsv")
                    _write_mysql_tsv(rows, path)
                    cursor.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET utf8mb4 ({columns})", (path,)
                    )
                    # LOAD DATA never fails on bad values, even in strict mode: it stores the column's
                    # implicit default (NULL in a NOT NULL column becomes '' or 0) and leaves a warning.
                    # A warning therefore fails the load, and the transaction rolls back.
                    problems = raw.show_warnings()
                    if problems:
                        shown = "; ".join(str(p[2]) for p in problems[:3])
                        raise WarehouseLoadRejected(
                            f"{target}: the warehouse rejected {len(problems)} value(s) of the load: {shown}"
                        )
            else:
                marker = "%s" if self.dialect == "mysql" else "?"
                placeholders = ", ".join([marker] * rows.num_columns)
                statement = f"INSERT INTO {target} ({columns}) VALUES ({placeholders})"
                for batch in rows.to_batches(max_chunksize=INSERT_BATCH_ROWS):
                    cursor.executemany(statement, list(_python_rows(batch, self.dialect)))
        finally:
            cursor.close()

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


def _write_mysql_tsv(rows: pa.Table, path: str) -> None:
    """LOAD DATA's default format, vectorized by Arrow: tab-separated, backslash escapes, NULL as \\N."""
    columns = []
    for column in rows.columns:
        if pa.types.is_boolean(column.type):
            column = pc.cast(column, pa.int8())
        text_column = pc.cast(column, pa.string())
        for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            text_column = pc.replace_substring(text_column, raw, escaped)
        columns.append(pc.fill_null(text_column, "\\N"))
    lines = pc.binary_join_element_wise(*columns, "\t")
    with open(path, "wb") as handle:
        for chunk in lines.chunks:
            handle.write(("\n".join(chunk.to_pylist()) + "\n").encode("utf-8"))


def _naive_utc_timestamps(table: pa.Table) -> pa.Table:
    """Warehouse TIMESTAMP/DATETIME columns hold UTC wall time without a zone (Spark writes UTC)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = table.column(i).cast(pa.timestamp(field.type.unit, tz="UTC")).cast(pa.timestamp(field.type.unit))
            table = table.set_column(i, field.name, naive)
    return table


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
