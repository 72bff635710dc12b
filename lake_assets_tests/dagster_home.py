"""A DAGSTER_HOME using deploy/postgres/dagster.yaml on a fresh PostgreSQL database (dropped after)."""

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from .conftest import PG_ADMIN_URL, REPO, service_missing


@contextmanager
def postgres_dagster_home(directory: Path) -> Iterator[tuple[Path, str]]:
    """Yield (DAGSTER_HOME, DAGSTER_PG_URL) for a new database; drop it (forcing connections off) after."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(("127.0.0.1", 5432)) != 0:
            service_missing("PostgreSQL on 127.0.0.1:5432", "nothing listens there")
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    home = directory / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield home, url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def env_with(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DAGSTER_HOME=str(home), DAGSTER_PG_URL=url, **extra)
    return env
