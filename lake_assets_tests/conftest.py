"""Shared fixtures: real services on loopback (PostgreSQL, MariaDB, moto S3 over HTTP) and one
SparkSession for the whole test session.

A missing service skips the tests that need it on a laptop, and fails them under CI (`CI=true`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

if TYPE_CHECKING:
    from lake_assets.resources.lake_storage import LakeStorage

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
TEST_MASKING_KEY = "test-masking-key-0123456789abcdef"
PG_ADMIN_URL = os.environ.get("LAKE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("LAKE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/")
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(what: str, why: str) -> None:
    """Skip locally, fail under CI: a CI run that silently skipped its services proves nothing."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must be running)")
    pytest.skip(message)


def _reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def require_listening(name: str, port: int, host: str = "127.0.0.1") -> None:
    """Skip locally (fail under CI) unless a server listens at host:port."""
    if not _reachable(host, port):
        service_missing(f"{name} on {host}:{port}", "nothing listens there")


# --------------------------------------------------------------------------- environment
# One JVM serves every in-process run of the test session, whichever test starts it (the `spark`
# fixture or a run's own Spark resource), a 30-day range run included: more heap than the default
# 1 GB, which is sized for one run's process. The CLI runs tests start inherit it.
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--driver-memory 2g pyspark-shell")

@pytest.fixture(autouse=True)
def _pipeline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the bundled config's defaults with a test masking key, no retry delay."""
    for name in ("LAKE_CONFIG", "LAKE_URL", "WAREHOUSE_URL", "WAREHOUSE_SCHEMA", "SAMPLE_DROP_PATH", "SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAKE_MASKING_KEY", TEST_MASKING_KEY)
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(SAMPLE_DIR))
    monkeypatch.setenv("LAKE_RETRY_MAX", "0")
    monkeypatch.setenv("LAKE_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("SPARK_SHUFFLE_PARTITIONS", "4")


# --------------------------------------------------------------------------- spark
@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session; Dagster's Spark resource reuses it (getOrCreate)."""
    from pyspark.sql import SparkSession

    from lake_assets.config import SparkConfig
    from lake_assets.resources.spark import spark_conf_for

    conf = spark_conf_for(
        SparkConfig(master="local[2]", conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"})
    )
    builder = SparkSession.builder.appName("lake_assets_tests")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


# --------------------------------------------------------------------------- databases
@dataclass(frozen=True)
class Warehouse:
    url: str
    schema: str


@pytest.fixture
def postgres_warehouse() -> Iterator[Warehouse]:
    """A fresh schema in the real PostgreSQL server, dropped afterwards."""
    require_listening("PostgreSQL", 5432)
    schema = f"lake_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_ADMIN_URL)
    yield Warehouse(url=PG_ADMIN_URL, schema=schema)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def postgres_catalog() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for an Iceberg SQL catalog, dropped afterwards."""
    require_listening("PostgreSQL", 5432)
    name = f"lake_catalog_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def mariadb_warehouse() -> Iterator[Warehouse]:
    """A fresh database in the real MariaDB server, dropped afterwards."""
    require_listening("MariaDB", 3306)
    schema = f"lake_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(MARIADB_ADMIN_URL)
    yield Warehouse(url=MARIADB_ADMIN_URL, schema=schema)
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{schema}`"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201 - a WarehouseResource
    """A WarehouseResource on each of the three dialects: a SQLite file, a fresh PostgreSQL schema, a
    fresh MariaDB database."""
    from lake_assets.resources.warehouse import WarehouseResource

    if request.param == "sqlite":
        return WarehouseResource(url=f"sqlite:///{tmp_path / 'wh.db'}")
    server = request.getfixturevalue("postgres_warehouse" if request.param == "postgresql" else "mariadb_warehouse")
    return WarehouseResource(url=server.url, schema_name=server.schema)


# --------------------------------------------------------------------------- S3 (moto over HTTP)
@dataclass(frozen=True)
class S3Server:
    endpoint: str
    make_bucket: Callable[[], str]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        service_missing("moto server", str(exc))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """AWS env pointed at the moto server; `make_bucket()` creates a versioned bucket, default-encrypted."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def make_bucket() -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
        client.create_bucket(Bucket=name)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        # The lake's precondition (docs/storage.md): the Iceberg metadata files pyiceberg writes carry
        # no per-object SSE header, so the bucket's default encryption covers them.
        client.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        return name

    return S3Server(endpoint=moto_server, make_bucket=make_bucket)


def lake_of_kind(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> LakeStorage:
    """A lake under `tmp_path` (`local`), or in a fresh moto bucket with its catalog on PostgreSQL (`s3`)."""
    from lake_assets.resources.lake_storage import LakeStorage

    if kind == "local":
        return LakeStorage(url=str(tmp_path / "lake"))
    s3: S3Server = request.getfixturevalue("s3")
    catalog: str = request.getfixturevalue("postgres_catalog")
    return LakeStorage(url=f"s3://{s3.make_bucket()}/prefix", catalog_uri=catalog)


# The fast tier (`pytest -m "not services"`) leaves out every test that needs a service or Spark:
# those using one of these fixtures, and modules that mark themselves (whole-graph runs, servers).
SERVICE_FIXTURES = frozenset(
    {"spark", "postgres_warehouse", "postgres_catalog", "mariadb_warehouse", "warehouse", "moto_server", "s3"}
)


# Parameters that make a test ask for a service fixture by name (`request.getfixturevalue`).
SERVICE_PARAMS = frozenset({"postgresql", "postgres", "mariadb", "postgres_warehouse", "mariadb_warehouse", "s3"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = {v for v in callspec.params.values() if isinstance(v, str)} if callspec else set()
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())) or SERVICE_PARAMS & params:
            item.add_marker(pytest.mark.services)
