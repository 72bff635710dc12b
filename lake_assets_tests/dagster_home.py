"""A DAGSTER_HOME using deploy/postgres/dagster.yaml on a fresh PostgreSQL database (dropped after)."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from .conftest import PG_ADMIN_URL, REPO, require_listening


@contextmanager
def postgres_dagster_home(directory: Path, immediate_runs: bool = False) -> Iterator[tuple[Path, str]]:
    """Yield (DAGSTER_HOME, DAGSTER_PG_URL) for a new database; drop it (forcing connections off) after.

    `immediate_runs` swaps the queued coordinator for the default one, for tests that launch runs
    through the webserver without a daemon to dequeue them (the pool limits still apply).
    """
    require_listening("PostgreSQL", 5432)
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    home = directory / "dagster_home"
    home.mkdir(parents=True)
    instance_yaml = (REPO / "deploy" / "postgres" / "dagster.yaml").read_text(encoding="utf-8")
    if immediate_runs:
        queued = "  class: QueuedRunCoordinator\n"
        assert queued in instance_yaml
        instance_yaml = instance_yaml.replace(queued, "  class: DefaultRunCoordinator\n")
    (home / "dagster.yaml").write_text(instance_yaml, encoding="utf-8")
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
