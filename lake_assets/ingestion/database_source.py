"""DatabaseSource: one table or SQL query of a PostgreSQL / MySQL / MariaDB database (any SQLAlchemy URL).

Full load (`SELECT *`) or incremental on a cursor column (`WHERE cursor >= :mark`, and `cursor <= :until`
when an older day is rerun inside the window a later partition bounds; see cursor.py).
PostgreSQL (psycopg2) results whose column types the server can render as the same text read
through `COPY (query) TO STDOUT` into Arrow (ingestion/postgres_copy.py); every other result is
streamed with a server-side cursor (`stream_results` + `yield_per`, i.e. a named cursor on psycopg2
and an unbuffered SSCursor on PyMySQL). Either way `chunk_rows` at a time, so memory does not grow
with the table. A query is wrapped as a sub-select, so a `sale` may come from a join of header and
line tables.

Errors name the source and the URL with the password hidden. Bad credentials, unknown databases,
missing tables, SQL errors and data errors (a value the database cannot compute or convert, such as a
division by zero or an invalid cast; a constraint; a value that is not text in the connection's
encoding) are deterministic (`SourceUnavailable`, not retried); refused connections, timeouts and
dropped connections are transient (`SourceTemporarilyUnavailable`, retried by the asset's policy).
A dropped connection is discarded, never reset or drained: nothing of it is left for a finalizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from lake_assets.config import DatabaseSourceConfig, DatabaseTableConfig
from lake_assets.dialects import sql_dialect
from lake_assets.ingestion.cursor import CursorState
from lake_assets.ingestion.errors import SourceTemporarilyUnavailable, SourceUnavailable
from lake_assets.ingestion.postgres_copy import copy_chunks, copy_select, cursor_parser
from lake_assets.ingestion.text import rows_as_text
from lake_assets.resources.tls import tls_connect_args
from lake_assets.resources.warehouse import is_data_error

# Driver messages that mean "this will fail again": credentials, names, permissions, SQL.
_DETERMINISTIC = (
    "password authentication failed",
    "authentication failed",
    "access denied",
    "does not exist",
    "unknown database",
    "no pg_hba.conf entry",
    "permission denied",
    "syntax error",
    "doesn't exist",
    "unknown column",
    "unknown table",
    "invalid input syntax",
    "certificate",  # TLS: verify failed, wrong host name, missing CA file (fixed by config, not by waiting)
)


@dataclass
class DatabaseChunk:
    rows: pa.Table  # every column as text
    cursor_values: list[Any] | None  # native cursor values, aligned with rows (incremental only)


class DatabaseSource:
    kind = "database"

    def __init__(self, source: DatabaseSourceConfig, table: DatabaseTableConfig) -> None:
        self.source = source
        self.table = table
        self.url: URL = make_url(source.url)

    @property
    def name(self) -> str:
        return f"{self.source.name}.{self.table.name}"

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def origin(self) -> str:
        """What `_source_query` records: the table name or the query text."""
        return f"table {self.table.table}" if self.table.table else self.table.query or ""

    def _engine(self) -> Engine:
        connect_args: dict[str, Any] = {}
        if sql_dialect(self.url) in ("postgresql", "mysql"):
            connect_args["connect_timeout"] = self.source.connect_timeout_seconds
        tls = self.source.tls
        connect_args.update(tls_connect_args(sql_dialect(self.url), tls.sslmode or "", tls.ca_file,
                                             tls.cert_file, tls.key_file))
        engine = create_engine(self.url, connect_args=connect_args, poolclass=NullPool)
        if engine.dialect.driver == "pymysql":
            event.listen(engine, "handle_error", _end_result_of_lost_connection)
        return engine

    def _sql(self, engine: Engine, since: bool, until: bool, pyformat: bool = False) -> str:
        """The extraction: `cursor >= :mark` from the run's start mark, `cursor <= :until` when a later
        partition bounds the window (rows past it are dropped by the tracker; this only saves reading them).
        `pyformat`: for the raw psycopg2 cursor (`%(mark)s`, a literal `%` doubled)."""
        quote = engine.dialect.identifier_preparer.quote
        if self.table.table:
            relation = ".".join(quote(part) for part in self.table.table.split("."))
            base = f"SELECT * FROM {relation}"
        else:
            base = f"SELECT * FROM ({self.table.query.rstrip().rstrip(';')}) src"  # type: ignore[union-attr]
        if pyformat:
            base = base.replace("%", "%%")
        mark, bound = ("%(mark)s", "%(until)s") if pyformat else (":mark", ":until")
        conditions: list[str] = []
        if self.table.incremental:
            cursor = quote(self.table.incremental.cursor)
            if since:
                conditions.append(f"src.{cursor} >= {mark}")
            if until:
                conditions.append(f"src.{cursor} <= {bound}")
        if conditions:
            if self.table.table:
                base = f"SELECT * FROM ({base}) src"
            base += " WHERE " + " AND ".join(conditions)
        return base

    def _fail(self, exc: Exception) -> Exception:
        orig = getattr(exc, "orig", None) or exc
        cause = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        if isinstance(orig, UnicodeError):
            cause = f"a value is not valid text in the connection's encoding ({cause})"
        if self.url.password:
            cause = cause.replace(str(self.url.password), "***")
        message = f"source {self.name} ({self.safe_url}): {cause}"
        lowered = cause.lower()
        deterministic = (
            isinstance(exc, ProgrammingError | UnicodeError)
            or is_data_error(exc)
            or any(m in lowered for m in _DETERMINISTIC)
        )
        if isinstance(exc, OperationalError | DBAPIError) and not deterministic:
            return SourceTemporarilyUnavailable(message)
        return SourceUnavailable(message)

    @contextmanager
    def open(
        self, previous: CursorState | None, until: CursorState | None = None
    ) -> Iterator[tuple[list[str], Iterator[DatabaseChunk]]]:
        """(column names, chunk iterator) of one extraction from mark `previous` up to `until` (both
        inclusive, None: unbounded); the connection closes with the block."""
        engine = self._engine()
        incremental = self.table.incremental is not None
        params: dict[str, Any] = {}
        if incremental and previous is not None:
            params["mark"] = previous.native()
        if incremental and until is not None:
            params["until"] = until.native()
        try:
            if engine.dialect.driver == "psycopg2":
                with self._copy(engine, params) as opened:
                    if opened is not None:
                        yield opened
                        return
            try:
                connection = engine.connect()
                sql = self._sql(engine, "mark" in params, "until" in params)
                result = connection.execution_options(stream_results=True, yield_per=self.source.chunk_rows).execute(
                    text(sql), params
                )
            except (SQLAlchemyError, UnicodeError) as exc:
                raise self._fail(exc) from None
            columns = list(result.keys())
            cursor_index = None
            if self.table.incremental:
                if self.table.incremental.cursor not in columns:
                    raise SourceUnavailable(
                        f"source {self.name}: cursor column {self.table.incremental.cursor!r} is not in the result "
                        f"({', '.join(columns)})"
                    )
                cursor_index = columns.index(self.table.incremental.cursor)
            try:
                yield columns, self._chunks(result, columns, cursor_index)
            finally:
                result.close()
                connection.close()
        finally:
            engine.dispose()

    @contextmanager
    def _copy(
        self, engine: Engine, params: dict[str, Any]
    ) -> Iterator[tuple[list[str], Iterator[DatabaseChunk]] | None]:
        """(column names, chunks) read through COPY, or None when the result has a column (or a cursor)
        type the server cannot render as the row path's text."""
        import psycopg2

        cursor_column = self.table.incremental.cursor if self.table.incremental else None
        try:
            connection = engine.raw_connection()
        except psycopg2.Error as exc:  # the pool hands the driver's error over unwrapped
            raise self._driver_error(exc, "connect") from None
        except (SQLAlchemyError, UnicodeError) as exc:
            raise self._fail(exc) from None
        try:
            raw = connection.cursor()
            sql = self._sql(engine, "mark" in params, "until" in params, pyformat=True)
            try:
                select = copy_select(raw, sql, params, cursor_column)
            except psycopg2.Error as exc:
                raise self._driver_error(exc, sql) from None
            if select is None:
                yield None
                return
            columns = [c[0] for c in raw.description]  # DB-API: the first item of a description is the name
            if cursor_column is not None and cursor_column not in columns:
                raise SourceUnavailable(
                    f"source {self.name}: cursor column {cursor_column!r} is not in the result ({', '.join(columns)})"
                )
            parse = cursor_parser(raw, cursor_column) if cursor_column is not None else None
            connection.commit()  # the describe ran in a transaction; COPY starts clean

            def chunks() -> Iterator[DatabaseChunk]:
                for table in copy_chunks(raw, select, columns, self.source.chunk_rows,
                                         lambda exc: self._driver_error(exc, select)):
                    values = None
                    if parse is not None:
                        values = [None if v is None else parse(v) for v in table.column(cursor_column).to_pylist()]
                    yield DatabaseChunk(table, values)

            yield columns, chunks()
        finally:
            if connection.dbapi_connection is not None and connection.dbapi_connection.closed:
                # Dropped by the server: discarded without the pool's rollback, which would fail (and log
                # it as an error) on the closed connection.
                connection.invalidate()
            else:
                connection.close()

    def _driver_error(self, exc: BaseException, statement: str) -> Exception:
        """A psycopg2 error as the row path reports it (wrapped by SQLAlchemy first, then classified)."""
        import psycopg2

        if isinstance(exc, psycopg2.Error):
            exc = DBAPIError.instance(statement, None, exc, psycopg2.Error)
        return self._fail(exc) if isinstance(exc, Exception) else RuntimeError(str(exc))

    def _chunks(self, result: Any, columns: list[str], cursor_index: int | None) -> Iterator[DatabaseChunk]:
        partitions = result.partitions(self.source.chunk_rows)
        while True:
            try:
                rows = next(partitions)
            except StopIteration:
                return
            except (SQLAlchemyError, UnicodeError) as exc:
                raise self._fail(exc) from None
            cursor_values = [row[cursor_index] for row in rows] if cursor_index is not None else None
            yield DatabaseChunk(rows_as_text(columns, rows), cursor_values)


def _end_result_of_lost_connection(context: ExceptionContext) -> None:
    """PyMySQL's unbuffered result (the `stream_results` cursor, an SSCursor) reads its remaining rows
    off the socket when the cursor is closed and again when either is garbage-collected (`SSCursor.close`
    is its `__del__`, `MySQLResult.__del__`). Once the connection is lost there is no socket: every one of
    those reads raises, the last ones at whatever moment the collector runs ("Exception ignored in ...";
    inside `ast.parse`, CPython 3.11 turns that into a SystemError, gh-106905). Nothing can arrive any
    more, so the result is marked finished and let go of the connection as soon as the error is seen
    (an error packet from a live server already ends it in the driver). Never raises: an exception here
    would replace the driver's error."""
    # The execution context's cursor: SQLAlchemy 2.1's `ExceptionContext.cursor` is declared but never set.
    cursor = getattr(context.execution_context, "cursor", None)
    connection = getattr(cursor, "connection", None)
    if connection is None or connection.open:
        return
    result = getattr(cursor, "_result", None)  # PyMySQL keeps the cursor's result only here
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False
        result.connection = None
