"""Dump and restore the warehouse with each database's own tools.

* PostgreSQL: `pg_dump --format=custom --schema=<schema>` (the warehouse schema only: tables, views,
  materialized views, indexes, RLS policies, grants), restored by `pg_restore` in ONE transaction
  (`--single-transaction --exit-on-error`): the target gets all of it or nothing. Objects are owned by
  the login that restores (`--no-owner`). The row counts of the manifest are taken in the very
  snapshot the dump reads (`pg_export_snapshot()` + `pg_dump --snapshot`), so they are exact.
* MySQL/MariaDB: `mariadb-dump`/`mysqldump --single-transaction` of the warehouse database (tables,
  views, routines, triggers), without `CREATE DATABASE`, so it restores into any database name;
  gzip-compressed; restored by `mariadb`/`mysql`. DDL commits on its own in MySQL: a failed restore
  leaves a partial database (run it again with --force). Row counts come from a consistent-snapshot
  transaction just before the dump's own, so a load committing in between makes them differ
  (`exact` False).
* SQLite: a copy by SQLite's online backup API (consistent while writers run); restored the same
  way, replacing the target file's content. Counts are read from the copy (exact).

Credentials never reach a command line or a log: PostgreSQL tools get them as PG* environment
variables of the child process only (PGPASSWORD), MySQL tools from a temporary option file
(`--defaults-extra-file`, mode 0600, deleted afterwards). TLS settings (`warehouse.tls`) go the same
ways (PGSSLMODE/PGSSLROOTCERT/…, `ssl-ca`/`ssl-verify-server-cert`/… in the option file). Tool
errors are shown with every URL password hidden.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from lake_assets.resources.warehouse import WarehouseResource
from lake_assets.secrets import hide_url_passwords

DUMP_FILES = {"postgresql": "warehouse.pgdump", "mysql": "warehouse.sql.gz", "sqlite": "warehouse.sqlite3"}
COPY_CHUNK = 1 << 20
# libpq connection parameters a URL's query may carry, as the environment variables the tools read.
_LIBPQ_QUERY_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
                    "sslkey": "PGSSLKEY", "host": "PGHOST", "application_name": "PGAPPNAME"}


class WarehouseDumpError(RuntimeError):
    """A dump or restore tool failed, is missing, or the restore target is not acceptable."""


@dataclass(frozen=True)
class DumpResult:
    file: Path
    tool: str  # the tool and its version, e.g. "pg_dump (PostgreSQL) 15.20"
    tables: dict[str, int]  # base table -> rows at the dump
    exact: bool  # whether `tables` counts the very snapshot the dump holds


def dump_file_name(dialect: str) -> str:
    return DUMP_FILES[dialect]


def warehouse_schema(warehouse: WarehouseResource) -> str:
    """The schema (PostgreSQL) or database (MySQL) that holds the warehouse's tables; '' for SQLite."""
    if warehouse.dialect == "sqlite":
        return ""
    if warehouse.schema_name:
        return warehouse.schema_name
    if warehouse.dialect == "postgresql":
        return "public"
    database = warehouse.sqlalchemy_url.database
    if not database:
        raise WarehouseDumpError(f"warehouse {warehouse.safe_url}: name the database (warehouse.schema or the URL's)")
    return database


# ---------------------------------------------------------------------- tools and credentials
def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise WarehouseDumpError(f"{' / '.join(names)} not found on PATH: install the database's client tools "
                             "(PostgreSQL: postgresql-client; MySQL/MariaDB: mariadb-client or mysql-client)")


def _version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else Path(tool).name


def libpq_env(warehouse: WarehouseResource, url: URL | None = None) -> dict[str, str]:
    """The environment of a PostgreSQL tool: this process's, plus the URL's host, port, user, database,
    password and the TLS settings as PG* variables (never arguments, which `ps` shows to every user)."""
    url = url or warehouse.sqlalchemy_url
    env = dict(os.environ)
    values = {"PGHOST": url.host, "PGPORT": str(url.port) if url.port else None, "PGUSER": url.username,
              "PGDATABASE": url.database, "PGPASSWORD": url.password, "PGCONNECT_TIMEOUT": "10",
              "PGSSLMODE": warehouse.tls_sslmode, "PGSSLROOTCERT": warehouse.tls_ca_file,
              "PGSSLCERT": warehouse.tls_cert_file, "PGSSLKEY": warehouse.tls_key_file}
    for key, variable in _LIBPQ_QUERY_ENV.items():
        value = url.query.get(key)
        if isinstance(value, str) and not values.get(variable):
            values[variable] = value
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def _option_value(value: str) -> str:
    """A value for a MySQL option file: double-quoted (a `#` would start a comment), escapes for the
    characters the file format interprets."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def mysql_option_text(warehouse: WarehouseResource, url: URL | None = None) -> str:
    """The `[client]` section of the temporary option file: login, password and TLS.

    MariaDB's client checks the server's certificate and host name together
    (`ssl-verify-server-cert`), so verify-ca is as strict as verify-full for the dump tools."""
    url = url or warehouse.sqlalchemy_url
    lines = ["[client]"]
    for key, value in (("host", url.host), ("port", url.port), ("user", url.username), ("password", url.password)):
        if value:
            lines.append(f"{key}={_option_value(str(value))}")
    mode = warehouse.tls_sslmode
    if mode == "disable":
        lines.append("skip-ssl")
    elif mode or warehouse.tls_ca_file or warehouse.tls_cert_file:
        lines.append("ssl")
    for key, value in (("ssl-ca", warehouse.tls_ca_file), ("ssl-cert", warehouse.tls_cert_file),
                       ("ssl-key", warehouse.tls_key_file)):
        if value and mode != "disable":
            lines.append(f"{key}={_option_value(value)}")
    if mode in ("verify-ca", "verify-full"):
        lines.append("ssl-verify-server-cert")
    return "\n".join(lines) + "\n"


@contextmanager
def mysql_option_file(warehouse: WarehouseResource, url: URL | None = None) -> Iterator[str]:
    """A 0600 option file holding the login, removed when the block ends (also on error)."""
    fd, path = tempfile.mkstemp(prefix="lake-mysql-", suffix=".cnf")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(mysql_option_text(warehouse, url))
        yield path
    finally:
        os.unlink(path)


def _run(argv: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(argv, capture_output=True, check=False, **kwargs)
    if done.returncode != 0:
        message = hide_url_passwords(done.stderr.decode("utf-8", "replace").strip())
        raise WarehouseDumpError(f"{what} failed (exit {done.returncode}): {message}")
    return done


# ---------------------------------------------------------------------- engines and counts
def _engine(warehouse: WarehouseResource, url: URL | None = None) -> Engine:
    args = dict(warehouse.tls_connect_args)
    if warehouse.dialect in ("postgresql", "mysql"):
        args["connect_timeout"] = 10
    return create_engine(url or warehouse.sqlalchemy_url, poolclass=NullPool, connect_args=args)


@contextmanager
def _connected(warehouse: WarehouseResource, engine: Engine) -> Iterator[Connection]:
    """A connection; a failed connect is the warehouse's `WarehouseUnavailable` (no password, TLS named)."""
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise warehouse.unavailable(exc) from None
    with conn:
        yield conn


def _count(conn: Any, quote: Any, schema: str, tables: list[str]) -> dict[str, int]:
    prefix = f"{quote(schema)}." if schema else ""
    return {t: int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {prefix}{quote(t)}").scalar_one()) for t in tables}


def relations(warehouse: WarehouseResource, url: URL | None = None) -> list[str]:
    """Tables, views and materialized views in the warehouse's schema (database, file); [] if it is missing."""
    schema = warehouse_schema(warehouse)
    if warehouse.dialect == "sqlite":
        with sqlite3.connect(_sqlite_path(url or warehouse.sqlalchemy_url)) as conn:
            return sorted(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"))
    engine = _engine(warehouse, url)
    try:
        with _connected(warehouse, engine) as conn:
            if warehouse.dialect == "postgresql":
                sql = ("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')")
            else:
                sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
            return sorted(r[0] for r in conn.execute(text(sql), {"s": schema}))
    finally:
        engine.dispose()


def table_counts(warehouse: WarehouseResource, url: URL | None = None) -> dict[str, int]:
    """Rows of every base table of the warehouse's schema (database, file)."""
    if warehouse.dialect == "sqlite":
        return _sqlite_counts(_sqlite_path(url or warehouse.sqlalchemy_url))
    schema = warehouse_schema(warehouse)
    engine = _engine(warehouse, url)
    try:
        with _connected(warehouse, engine) as conn:
            names = inspect(conn).get_table_names(schema=schema)
            return _count(conn, engine.dialect.identifier_preparer.quote, schema, sorted(names))
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- dump
def dump(warehouse: WarehouseResource, directory: Path) -> DumpResult:
    """Dump the warehouse into `directory` (file name: `dump_file_name(dialect)`)."""
    out = directory / dump_file_name(warehouse.dialect)
    if warehouse.dialect == "postgresql":
        return _dump_postgresql(warehouse, out)
    if warehouse.dialect == "mysql":
        return _dump_mysql(warehouse, out)
    if warehouse.dialect == "sqlite":
        return _dump_sqlite(warehouse, out)
    raise WarehouseDumpError(f"warehouse {warehouse.safe_url}: no backup for dialect {warehouse.dialect!r}")


def _dump_postgresql(warehouse: WarehouseResource, out: Path) -> DumpResult:
    tool = _tool("pg_dump")
    schema = warehouse_schema(warehouse)
    engine = _engine(warehouse)
    try:
        with _connected(warehouse, engine) as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                names = sorted(inspect(conn).get_table_names(schema=schema))
                if not names:
                    raise WarehouseDumpError(f"warehouse {warehouse.safe_url}: schema {schema!r} holds no table")
                counts = _count(conn, engine.dialect.identifier_preparer.quote, schema, names)
                # The transaction stays open while pg_dump runs: its exported snapshot lives as long.
                _run([tool, "--format=custom", f"--schema={schema}", f"--snapshot={snapshot}", "--no-password",
                      f"--file={out}"], "pg_dump", env=libpq_env(warehouse))
    finally:
        engine.dispose()
    return DumpResult(out, _version(tool), counts, exact=True)


def _dump_mysql(warehouse: WarehouseResource, out: Path) -> DumpResult:
    tool = _tool("mariadb-dump", "mysqldump")
    database = warehouse_schema(warehouse)
    engine = _engine(warehouse)
    try:
        with _connected(warehouse, engine) as conn:
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            names = sorted(inspect(conn).get_table_names(schema=database))
            if not names:
                raise WarehouseDumpError(f"warehouse {warehouse.safe_url}: database {database!r} holds no table")
            counts = _count(conn, engine.dialect.identifier_preparer.quote, database, names)
            conn.rollback()
    finally:
        engine.dispose()
    with mysql_option_file(warehouse) as options, tempfile.TemporaryFile() as errors:
        # --defaults-extra-file must come first; no --databases: no CREATE DATABASE/USE in the dump.
        argv = [tool, f"--defaults-extra-file={options}", "--single-transaction", "--routines", "--triggers",
                "--hex-blob", "--no-tablespaces", "--default-character-set=utf8mb4", database]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors) as process, \
                gzip.open(out, "wb") as target:
            assert process.stdout is not None
            shutil.copyfileobj(process.stdout, target, COPY_CHUNK)
        if process.returncode != 0:
            errors.seek(0)
            message = hide_url_passwords(errors.read().decode("utf-8", "replace").strip())
            raise WarehouseDumpError(f"{Path(tool).name} failed (exit {process.returncode}): {message}")
    return DumpResult(out, _version(tool), counts, exact=False)


def _sqlite_path(url: URL) -> str:
    database = url.database
    if not database or database == ":memory:":
        raise WarehouseDumpError("a SQLite warehouse must be a file to back up or restore (sqlite:///path)")
    return str(Path(database).expanduser())


def _sqlite_counts(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        names = sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
        # Names come from the file itself; quoted with embedded quotes doubled, as SQLite requires.
        return {n: int(conn.execute('SELECT COUNT(*) FROM "{}"'.format(n.replace('"', '""'))).fetchone()[0])
                for n in names}


def _dump_sqlite(warehouse: WarehouseResource, out: Path) -> DumpResult:
    path = _sqlite_path(warehouse.sqlalchemy_url)
    if not Path(path).is_file():
        raise WarehouseDumpError(f"warehouse {warehouse.safe_url}: no such file {path}")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(out)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    tool = f"sqlite3 backup API (SQLite {sqlite3.sqlite_version})"
    return DumpResult(out, tool, _sqlite_counts(str(out)), exact=True)


# ---------------------------------------------------------------------- restore
def restore(warehouse: WarehouseResource, dump_file: Path, schema: str, force: bool = False,
            privileges: bool = True) -> None:
    """Restore `dump_file` (made by `dump` of a warehouse of the same dialect, schema `schema`) into
    the warehouse. Refuses when the target already holds tables or views, unless `force`: then the
    dumped objects replace those of the same name."""
    existing = relations(warehouse) if warehouse.dialect != "sqlite" or _sqlite_exists(warehouse) else []
    target = warehouse_schema(warehouse) or _sqlite_path(warehouse.sqlalchemy_url)
    if existing and not force:
        shown = ", ".join(existing[:6]) + (f" and {len(existing) - 6} more" if len(existing) > 6 else "")
        raise WarehouseDumpError(
            f"warehouse {warehouse.safe_url}: {target} is not empty ({shown}); a restore goes into an empty "
            "schema/database. Drop it first, restore elsewhere (--target-url), or pass --force to replace "
            "the dumped objects."
        )
    if warehouse.dialect == "postgresql":
        if target != schema:
            raise WarehouseDumpError(f"the dump holds schema {schema!r}; pg_restore cannot rename it, so "
                                     f"warehouse.schema must be {schema!r} (it is {target!r})")
        _restore_postgresql(warehouse, dump_file, schema, force, privileges)
    elif warehouse.dialect == "mysql":
        _restore_mysql(warehouse, dump_file, target)
    elif warehouse.dialect == "sqlite":
        path = Path(_sqlite_path(warehouse.sqlalchemy_url))
        path.parent.mkdir(parents=True, exist_ok=True)
        source, dest = sqlite3.connect(f"file:{dump_file}?mode=ro", uri=True), sqlite3.connect(path)
        try:
            source.backup(dest)  # replaces the whole target database, atomically for its readers
        finally:
            dest.close()
            source.close()
    else:
        raise WarehouseDumpError(f"no restore for dialect {warehouse.dialect!r}")


def _sqlite_exists(warehouse: WarehouseResource) -> bool:
    return Path(_sqlite_path(warehouse.sqlalchemy_url)).is_file()


def _restore_postgresql(warehouse: WarehouseResource, dump_file: Path, schema: str, force: bool,
                        privileges: bool) -> None:
    tool = _tool("pg_restore")
    env = libpq_env(warehouse)
    argv = [tool, "--no-password", "--no-owner", "--single-transaction", "--exit-on-error",
            f"--dbname={warehouse.sqlalchemy_url.database or 'postgres'}"]
    if not privileges:
        argv.append("--no-privileges")
    if force:
        argv += ["--clean", "--if-exists"]
    with tempfile.TemporaryDirectory(prefix="lake-restore-") as tmp:
        engine = _engine(warehouse)
        try:
            with _connected(warehouse, engine) as conn:
                exists = inspect(conn).has_schema(schema)
        finally:
            engine.dispose()
        if exists:
            # The schema stays (its owner and grants too, and a login owning only its schema may restore
            # into it): every entry of the dump except the schema's own CREATE.
            listing = _run([tool, "--list", str(dump_file)], "pg_restore --list").stdout.decode("utf-8")
            own = re.compile(rf"^\d+; \d+ \d+ SCHEMA - {re.escape(schema)} ")
            kept = Path(tmp) / "entries.list"
            kept.write_text("".join(line for line in listing.splitlines(keepends=True) if not own.match(line)))
            argv.append(f"--use-list={kept}")
        _run([*argv, str(dump_file)], "pg_restore", env=env)


def _restore_mysql(warehouse: WarehouseResource, dump_file: Path, database: str) -> None:
    tool = _tool("mariadb", "mysql")
    server = warehouse.sqlalchemy_url.set(database="")
    engine = _engine(warehouse, server)
    try:
        with _connected(warehouse, engine) as conn, conn.begin():
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {engine.dialect.identifier_preparer.quote(database)}")
    finally:
        engine.dispose()
    with mysql_option_file(warehouse, server) as options, tempfile.TemporaryFile() as errors:
        argv = [tool, f"--defaults-extra-file={options}", "--default-character-set=utf8mb4", f"--database={database}"]
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=errors) as process, gzip.open(dump_file) as source:
            assert process.stdin is not None
            try:
                shutil.copyfileobj(source, process.stdin, COPY_CHUNK)
            except BrokenPipeError:
                pass  # the client stopped on an error: its exit status and message follow
            finally:
                process.stdin.close()
        if process.returncode != 0:
            errors.seek(0)
            message = hide_url_passwords(errors.read().decode("utf-8", "replace").strip())
            raise WarehouseDumpError(f"{Path(tool).name} failed (exit {process.returncode}), the database "
                                     f"{database} may be partly restored (rerun with --force): {message}")
