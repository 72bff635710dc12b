"""Source database errors are classified: the asset's retry policy sees connection errors only.

A refused connection may pass on the next attempt (`SourceTemporarilyUnavailable`, retryable); a value
the database cannot compute or a value that is not text in the connection's encoding fails the same
way every time (`SourceUnavailable`, not retried). Real PostgreSQL and MariaDB servers, no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake_assets.config import DatabaseSourceConfig
from lake_assets.ingestion import DatabaseSource, DataIngestionPipeline, SourceTemporarilyUnavailable, SourceUnavailable
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import PG_ADMIN_URL, require_listening


def _extract(url: str, query: str, lake: Path) -> None:
    source = DatabaseSourceConfig.model_validate({
        "name": "shop_db", "kind": "database", "url": url, "connect_timeout_seconds": 3,
        "tables": [{"name": "lines", "query": query}],
    })
    DataIngestionPipeline(DatabaseSource(source, source.tables[0]), LakeStorage(url=str(lake))).run("2024-03-01")


@pytest.mark.parametrize("url", ["postgresql+psycopg2://etl:pw-0x1@127.0.0.1:1/shop",
                                 "mysql+pymysql://etl:pw-0x1@127.0.0.1:1/shop"], ids=["postgresql", "mariadb"])
def test_closed_port_is_retryable(url: str, tmp_path: Path) -> None:
    with pytest.raises(SourceTemporarilyUnavailable) as error:
        _extract(url, "SELECT 1 AS line_id", tmp_path / "lake")
    assert error.value.retryable
    assert "shop_db.lines" in str(error.value) and "127.0.0.1:1" in str(error.value)
    assert "pw-0x1" not in str(error.value)


def test_value_the_database_cannot_compute_is_not_retryable(tmp_path: Path) -> None:
    require_listening("PostgreSQL", 5432)
    with pytest.raises(SourceUnavailable) as error:
        _extract(PG_ADMIN_URL, "SELECT 1 / (n - 2) AS line_id FROM generate_series(1, 3) n", tmp_path / "lake")
    assert not error.value.retryable
    assert "shop_db.lines" in str(error.value) and "division by zero" in str(error.value)


def test_text_in_the_wrong_encoding_is_not_retryable(tmp_path: Path) -> None:
    """The connection declares SQL_ASCII, so the server sends 'é' as its UTF-8 bytes and the driver,
    decoding ASCII, cannot read them: a delivery problem no retry fixes."""
    require_listening("PostgreSQL", 5432)
    url = PG_ADMIN_URL + ("&" if "?" in PG_ADMIN_URL else "?") + "client_encoding=sql_ascii"
    with pytest.raises(SourceUnavailable) as error:
        _extract(url, "SELECT 1 AS line_id, chr(233) AS name", tmp_path / "lake")
    assert not error.value.retryable
    assert "not valid text in the connection's encoding" in str(error.value)
