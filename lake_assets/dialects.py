"""Which SQL dialect a SQLAlchemy URL speaks: `postgresql`, `mysql` (MariaDB included: one driver, one
SQL) or `sqlite`; any other backend keeps SQLAlchemy's name for it. The one place the pipeline tells
the warehouse's and the source databases' dialects apart."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def sql_dialect(url: str | URL) -> str:
    """The dialect of `url` (a string or a parsed URL); raises SQLAlchemy's ArgumentError for no URL."""
    name = make_url(url).get_backend_name()
    return "mysql" if name == "mariadb" else name
