"""The warehouse's star-schema tables and indexes, declared once for every dialect.

Grain: dim_customer / dim_product one row per member version (SCD2); dim_location one row per store
(SCD1); dim_date one row per calendar day; fact_sales one row per sale line; bi_region_access one row
per (BI role, store region) a role may see (PostgreSQL and MySQL only: SQLite has no roles).

Guarantees:
* One declaration, rendered per dialect by SQLAlchemy. Types differ only where a dialect needs its own:
  MySQL indexes and keys need bounded `VARCHAR`s and keeps microseconds only in `DATETIME(6)`; SQLite
  stores dates, timestamps and booleans as TEXT / INTEGER (what its drivers bind) and keeps integer
  dimension keys as `INTEGER PRIMARY KEY` (the rowid).
* `star_schema(...)` adds the config's extra columns (`entities:`) to their tables, nullable, typed by
  `extra_column_type` from the closed list of extra-column types.
* Columns are one per line, in the order of the table; a new column needs a default if NOT NULL
  (existing tables get it by `ALTER TABLE ... ADD COLUMN`, resources/warehouse.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

MYSQL = ("mysql", "mariadb")
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
# Tables SQLite does not get: row-level security needs database roles.
SERVER_ONLY_TABLES = ("bi_region_access",)


def _text(mysql_length: int) -> TypeEngine[Any]:
    """TEXT; a VARCHAR in MySQL, where keys and indexes need a bounded length."""
    return Text().with_variant(String(mysql_length), *MYSQL)


def _hash() -> TypeEngine[Any]:
    return Text().with_variant(CHAR(64), *MYSQL)


def _timestamp() -> TypeEngine[Any]:
    return DateTime().with_variant(mysql.DATETIME(fsp=6), *MYSQL).with_variant(Text(), "sqlite")


def _date() -> TypeEngine[Any]:
    return Date().with_variant(Text(), "sqlite")


def _flag() -> TypeEngine[Any]:
    return Boolean().with_variant(Integer(), "sqlite")


def _key() -> TypeEngine[Any]:
    """A dimension's surrogate key; SQLite's INTEGER PRIMARY KEY is the rowid."""
    return BigInteger().with_variant(Integer(), "sqlite")


def _small() -> TypeEngine[Any]:
    return SmallInteger().with_variant(Integer(), "sqlite")


def _money(precision: int, scale: int) -> TypeEngine[Any]:
    return Numeric(precision, scale).with_variant(Numeric(), "sqlite")


def extra_column_type(spark_type: str) -> TypeEngine[Any]:
    """The warehouse type of an extra column, for a Spark type of the closed list (config.EXTRA_TYPES)."""
    decimal = _DECIMAL.match(spark_type)
    if decimal:
        return Numeric(int(decimal.group(1)), int(decimal.group(2)))
    if spark_type == "timestamp":
        return DateTime().with_variant(mysql.DATETIME(fsp=6), *MYSQL)  # the fixed tables keep microseconds too
    kinds: dict[str, TypeEngine[Any]] = {
        "string": Text(), "int": Integer(), "bigint": BigInteger(), "double": Double(), "date": Date(),
        "boolean": Boolean(),
    }
    return kinds[spark_type]


def _pk(name: str, kind: TypeEngine[Any]) -> Column[Any]:
    # Keys come with the rows: no SERIAL / AUTO_INCREMENT.
    return Column(name, kind, primary_key=True, autoincrement=False)


def _required(name: str, kind: TypeEngine[Any], default: Any = None) -> Column[Any]:
    return Column(name, kind, nullable=False, server_default=default)


def _scd2_columns() -> list[Column[Any]]:
    return [
        _required("version", Integer()),
        _required("valid_from", _timestamp()),
        _required("valid_to", _timestamp()),
        _required("is_current", _flag()),
        _required("is_deleted", _flag(), false()),
        _required("is_inferred", _flag(), false()),
        _required("row_hash", _hash()),
    ]


def star_schema(schema: str | None, dialect: str, extra_columns: dict[str, dict[str, str]]) -> MetaData:
    """The tables of `dialect` (sqlite, postgresql, mysql) in `schema` (None: the connection's default),
    with `extra_columns` (table -> column -> Spark type) appended to their tables."""
    metadata = MetaData(schema=schema)
    options: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
    Table(
        "dim_customer", metadata,
        _pk("customer_key", _key()),
        _required("customer_id", _text(191)),
        Column("first_name", _text(255)),
        Column("last_name", _text(255)),
        Column("email", _text(255)),
        Column("phone", _text(64)),
        Column("ssn", _text(64)),
        Column("street_address", _text(255)),
        Column("city", _text(255)),
        Column("region", _text(255)),
        Column("postal_code", _text(32)),
        Column("country", _text(64)),
        Column("segment", _text(64)),
        *_scd2_columns(),
        Index("ix_dim_customer_id", "customer_id", "valid_from"),
        **options,
    )
    Table(
        "dim_product", metadata,
        _pk("product_key", _key()),
        _required("product_id", _text(191)),
        Column("product_name", _text(255)),
        Column("category", _text(255)),
        Column("brand", _text(255)),
        Column("list_price", _money(12, 2)),
        *_scd2_columns(),
        Index("ix_dim_product_id", "product_id", "valid_from"),
        **options,
    )
    Table(
        "dim_location", metadata,
        _pk("location_key", _key()),
        _required("location_id", _text(191)),
        Column("store_name", _text(255)),
        Column("city", _text(255)),
        Column("region", _text(255)),
        Column("country", _text(64)),
        Column("postal_code", _text(32)),
        _required("is_inferred", _flag(), false()),
        **options,
    )
    Table(
        "dim_date", metadata,
        _pk("date_key", Integer()),
        _required("full_date", _date()),
        _required("day_of_month", _small()),
        _required("day_of_week", _small()),
        _required("day_name", _text(16)),
        _required("iso_week", _small()),
        _required("iso_year", _small()),
        _required("month", _small()),
        _required("month_name", _text(16)),
        _required("quarter", _small()),
        _required("year", _small()),
        _required("is_weekend", _flag()),
        _required("fiscal_year", _small()),
        _required("fiscal_quarter", _small()),
        _required("fiscal_month", _small(), text("1")),
        **options,
    )
    Table(
        "fact_sales", metadata,
        _pk("sale_line_id", _text(191)),
        Column("order_id", _text(191)),
        _required("ingest_date", _date()),
        _required("date_key", Integer()),
        _required("customer_key", BigInteger()),
        _required("product_key", BigInteger()),
        _required("location_key", BigInteger()),
        _required("sold_at", _timestamp()),
        _required("quantity", Integer()),
        _required("unit_price", _money(12, 2)),
        _required("discount", _money(12, 2)),
        _required("discount_rate", _money(9, 6), text("0")),
        _required("gross_amount", _money(14, 2)),
        _required("net_amount", _money(14, 2)),
        Column("payment_token", _text(64)),
        Column("_source", _text(255)),
        Column("_batch_id", _text(64)),
        Index("ix_fact_sales_ingest_date", "ingest_date"),
        Index("ix_fact_sales_date", "date_key"),
        Index("ix_fact_sales_customer", "customer_key"),
        Index("ix_fact_sales_product", "product_key"),
        Index("ix_fact_sales_location", "location_key"),
        **options,
    )
    if dialect != "sqlite":
        Table(
            "bi_region_access", metadata,
            Column("grantee", _text(191), nullable=False),
            Column("region", _text(191), nullable=False),
            PrimaryKeyConstraint("grantee", "region"),
            **options,
        )
    for name, columns in extra_columns.items():
        table = metadata.tables[f"{schema}.{name}" if schema else name]
        for column, spark_type in columns.items():
            if column not in table.c:
                table.append_column(Column(column, extra_column_type(spark_type)))
    return metadata
