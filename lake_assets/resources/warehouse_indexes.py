"""Building a PostgreSQL table's indexes after a large load into it, instead of during it.

A `COPY` into an indexed table updates every index row by row; into a bare table, then one sort per
index, is several times faster for a large load (the fact table has a primary key and five indexes).
Only a table that is empty when the load starts qualifies: the load holds an `ACCESS EXCLUSIVE` lock
from the moment it claims the table until it commits, so readers wait instead of reading, and an
empty table is the one case where they lose nothing by waiting (they would read no rows). A reader
already inside a transaction on the table is not waited for long: the load then keeps the indexes. Everything
happens in the load's transaction: if the load or an index build fails (a duplicate key is reported
when the primary key is built), the rollback restores the indexes and the empty table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Table, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, DropIndex

# Memory for each index build's sort in this transaction only; PostgreSQL's default (64 MB) spills a
# few million keys to disk.
INDEX_BUILD_MEMORY = "256MB"
# How long the load waits for other sessions' locks on the empty table before loading it the ordinary way.
LOCK_WAIT = "2s"
LOCK_NOT_AVAILABLE = "55P03"


def is_empty(conn: Connection, target: str) -> bool:
    return conn.exec_driver_sql(f"SELECT 1 FROM {target} LIMIT 1").first() is None


def claim_if_empty(conn: Connection, target: str) -> bool:
    """True when `target` is empty, with the table then locked against every other session until the
    transaction ends; False when it has rows, or when another session holds a lock on it for longer
    than `LOCK_WAIT` (a reader's open transaction): the load then goes the ordinary way, which readers
    do not block. Checked twice: cheaply without a lock, so a table with rows is never locked, and
    again under the lock, so a row committed between the two checks is seen."""
    if not is_empty(conn, target):
        return False
    try:
        # A savepoint: a lock that times out aborts only it, not the load's transaction.
        with conn.begin_nested():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            conn.exec_driver_sql(f"LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE")
            conn.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return is_empty(conn, target)


@contextmanager
def indexes_built_after(conn: Connection, table: Table, target: str) -> Iterator[None]:
    """Drop `table`'s declared indexes and its primary key, let the caller load, then build them again
    (same names, same definitions), all in `conn`'s transaction. Call only on a table claimed with
    `claim_if_empty`."""
    quote = conn.dialect.identifier_preparer.quote
    primary_key = inspect(conn).get_pk_constraint(table.name, schema=table.schema)
    primary_name, primary_columns = primary_key.get("name"), primary_key["constrained_columns"]
    indexes = sorted(table.indexes, key=lambda index: str(index.name))
    conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    for index in indexes:
        conn.execute(DropIndex(index, if_exists=True))
    if primary_name:
        conn.exec_driver_sql(f"ALTER TABLE {target} DROP CONSTRAINT {quote(primary_name)}")
    yield
    if primary_name:
        columns = ", ".join(quote(c) for c in primary_columns)
        conn.exec_driver_sql(f"ALTER TABLE {target} ADD CONSTRAINT {quote(primary_name)} PRIMARY KEY ({columns})")
    for index in indexes:
        conn.execute(CreateIndex(index))
