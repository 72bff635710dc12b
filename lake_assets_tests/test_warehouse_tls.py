"""TLS to the warehouse and to database sources, against a PostgreSQL the test starts with `ssl=on`, a
server certificate of a CA made here (SAN 127.0.0.1 and localhost) and `pg_hba.conf` accepting TLS
connections only (`hostssl`), so every connection that works is encrypted.

verify-full with the right CA connects (and pg_dump backs up over it); with an unrelated CA the
driver, the source and pg_dump refuse with an error naming TLS/the certificate and no secret.
"""

from __future__ import annotations

import datetime as dt
import glob
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lake_assets.config import DatabaseSourceConfig, DatabaseTableConfig, TlsConfig
from lake_assets.dialects import sql_dialect
from lake_assets.ingestion.database_source import DatabaseSource
from lake_assets.ingestion.errors import SourceUnavailable
from lake_assets.lake_maintenance.warehouse_backup import backup_warehouse
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.tls import tls_connect_args
from lake_assets.resources.warehouse import WarehouseResource, WarehouseUnavailable

from . import warehouse_rows as rows
from .conftest import service_missing

PASSWORD = "tls-test-pw-8u3"  # carried in the URL (the server trusts loopback TLS): must never show


# --------------------------------------------------------------------------- certificates
def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------- the server
@dataclass(frozen=True)
class TlsServer:
    port: int
    ca_file: str  # the CA that signed the server certificate
    wrong_ca_file: str  # an unrelated CA

    def url(self) -> str:
        return f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[TlsServer]:
    """A throwaway PostgreSQL 15 with ssl=on, in a temp dir (owned by `postgres` when the tests run as root:
    PostgreSQL refuses to run as root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    initdb = found[-1]
    if not initdb or not os.path.exists(initdb) or not shutil.which("pg_dump"):
        service_missing("PostgreSQL server binaries (initdb, postgres, pg_dump)", "not installed")
    bindir = Path(initdb).parent
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            service_missing("a 'postgres' user to run a throwaway server as", "PostgreSQL refuses to run as root")
        prefix = ["runuser", "-u", "postgres", "--"]
    # Not under tmp_path: pytest's base temp dir is 0700 root, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="lake-pg-tls-"))
    ca_key, ca = _ca("lake test CA")
    _, wrong_ca = _ca("some other CA")
    cert_pem, key_pem = _server_cert(ca_key, ca)
    (root / "ca.pem").write_bytes(_pem(ca))
    (root / "wrong-ca.pem").write_bytes(_pem(wrong_ca))
    (root / "server.crt").write_bytes(cert_pem)
    (root / "server.key").write_bytes(key_pem)
    os.chmod(root / "server.key", 0o600)
    if owner is not None:
        for path in [root, *root.iterdir()]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
    subprocess.run([*prefix, initdb, "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync",
                    "--no-instructions"], check=True, capture_output=True)
    # TLS only: a plain-text TCP connection has no matching line and is refused.
    (root / "data" / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
    port = _free_port()
    server = subprocess.Popen(
        [*prefix, str(bindir / "postgres"), "-D", str(root / "data"), "-c", "ssl=on",
         "-c", f"ssl_cert_file={root / 'server.crt'}", "-c", f"ssl_key_file={root / 'server.key'}",
         "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
         "-c", "fsync=off", "-c", "shared_buffers=16MB"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                error = server.stderr.read().decode() if server.stderr else ""
                pytest.fail(f"the throwaway PostgreSQL did not start: {error[-2000:]}")
            time.sleep(0.1)
        yield TlsServer(port, str(root / "ca.pem"), str(root / "wrong-ca.pem"))
    finally:
        # SIGINT (fast shutdown) to the postmaster itself: runuser does not pass it on.
        pid_file = root / "data" / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        if server.stderr:
            server.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- tests
@pytest.mark.services  # the throwaway server
def test_verify_full_with_the_right_ca_connects_encrypted(tls_postgres: TlsServer, tmp_path: Path) -> None:
    warehouse = WarehouseResource(url=tls_postgres.url(), schema_name="dw", tls_sslmode="verify-full",
                                  tls_ca_file=tls_postgres.ca_file)
    [(ssl_on, version)] = warehouse.fetch_all("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert ssl_on is True and version.startswith("TLS")

    # The dump tools get the same settings (PGSSLMODE/PGSSLROOTCERT); the server accepts TLS only.
    rows.load_star(warehouse)
    result = backup_warehouse(LakeStorage(url=str(tmp_path / "lake")), warehouse, dt.date(2024, 3, 1), 30)
    assert result.manifest["tables"]["fact_sales"] == 4
    assert result.manifest["tables"]["dim_customer"] == rows.dim_customer().num_rows


@pytest.mark.services  # the throwaway server
def test_plain_text_is_refused_by_this_server(tls_postgres: TlsServer) -> None:
    """The control: without TLS the server refuses, so the connections above really were encrypted."""
    warehouse = WarehouseResource(url=tls_postgres.url(), tls_sslmode="disable")
    with pytest.raises(WarehouseUnavailable, match="no pg_hba.conf entry") as caught:
        warehouse.fetch_all("SELECT 1")
    assert PASSWORD not in str(caught.value)


@pytest.mark.services  # the throwaway server
def test_a_wrong_ca_is_refused_with_a_clear_error(tls_postgres: TlsServer, tmp_path: Path) -> None:
    warehouse = WarehouseResource(url=tls_postgres.url(), schema_name="dw", tls_sslmode="verify-full",
                                  tls_ca_file=tls_postgres.wrong_ca_file)
    with pytest.raises(WarehouseUnavailable) as caught:
        warehouse.fetch_all("SELECT 1")
    message = str(caught.value)
    assert "TLS connection was refused" in message and "certificate verify failed" in message
    assert tls_postgres.wrong_ca_file in message and PASSWORD not in message

    with pytest.raises(WarehouseUnavailable, match="TLS connection was refused") as dumped:
        backup_warehouse(LakeStorage(url=str(tmp_path / "lake")), warehouse, dt.date(2024, 3, 1), 30)
    assert PASSWORD not in str(dumped.value)
    assert not (tmp_path / "lake" / "backups" / "warehouse" / "2024-03-01").exists()


@pytest.mark.services  # the throwaway server
def test_pg_dump_checks_the_certificate_too(tls_postgres: TlsServer, tmp_path: Path) -> None:
    """pg_dump connects on its own (PGSSLMODE/PGSSLROOTCERT): a wrong CA fails the dump there as well."""
    from lake_assets.lake_maintenance.warehouse_dump import libpq_env

    warehouse = WarehouseResource(url=tls_postgres.url(), tls_sslmode="verify-full",
                                  tls_ca_file=tls_postgres.wrong_ca_file)
    env = libpq_env(warehouse)
    assert (env["PGSSLMODE"], env["PGSSLROOTCERT"], env["PGPASSWORD"]) == (
        "verify-full", tls_postgres.wrong_ca_file, PASSWORD)
    done = subprocess.run(["pg_dump", "--schema-only", "--no-password"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "certificate verify failed" in done.stderr


@pytest.mark.services  # the throwaway server
def test_database_source_tls(tls_postgres: TlsServer) -> None:
    table = DatabaseTableConfig(name="one", entity="customer", query="SELECT 1 AS customer_id")

    def source(ca_file: str) -> DatabaseSource:
        config = DatabaseSourceConfig(name="shop_db", kind="database", url=tls_postgres.url(), tables=[table],
                                      tls=TlsConfig(sslmode="verify-full", ca_file=ca_file))
        return DatabaseSource(config, table)

    with source(tls_postgres.ca_file).open(None) as (columns, chunks):
        assert columns == ["customer_id"]
        assert [c.rows.to_pylist() for c in chunks] == [[{"customer_id": "1"}]]
    # Deterministic: a certificate does not fix itself, the step fails without waiting out retries.
    with pytest.raises(SourceUnavailable, match="certificate verify failed") as caught:
        with source(tls_postgres.wrong_ca_file).open(None):
            pass
    assert PASSWORD not in str(caught.value)


def test_tls_settings_map_to_each_driver(tmp_path: Path) -> None:
    assert tls_connect_args("postgresql", "verify-full", "/ca.pem", "/c.pem", "/k.pem") == {
        "sslmode": "verify-full", "sslrootcert": "/ca.pem", "sslcert": "/c.pem", "sslkey": "/k.pem"}
    assert tls_connect_args("mysql", "verify-full", "/ca.pem") == {
        "ssl": {"ca": "/ca.pem", "check_hostname": True, "verify_mode": True}}
    mariadb = sql_dialect("mariadb+pymysql://db/x")  # MariaDB speaks MySQL's driver arguments
    assert tls_connect_args(mariadb, "verify-ca", "/ca.pem")["ssl"]["check_hostname"] is False
    assert tls_connect_args("mysql", "require") == {"ssl": {"check_hostname": False, "verify_mode": False}}
    assert tls_connect_args("mysql", "disable") == {"ssl_disabled": True}
    assert tls_connect_args("sqlite", "require") == {}
    assert tls_connect_args("postgresql") == {}
    # Config: verify modes need a CA; the files must exist; SQLite has no connection to encrypt.
    with pytest.raises(ValueError, match="verify-full needs ca_file"):
        TlsConfig(sslmode="verify-full")
    with pytest.raises(ValueError, match="ca_file: no such file"):
        TlsConfig(sslmode="verify-ca", ca_file=str(tmp_path / "missing.pem"))
    from lake_assets.config import WarehouseConfig

    with pytest.raises(ValueError, match="SQLite warehouse"):
        WarehouseConfig(url="sqlite:///x.db", tls={"sslmode": "require"})


def test_s3_clients_use_https_unless_the_endpoint_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 (uploads, listings) and Arrow (reads) speak HTTPS to S3; only an explicit http:// endpoint
    (MinIO, moto in the tests) turns it off."""
    from lake_assets.resources.s3 import s3_filesystem

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    lake = LakeStorage(url="s3://bucket/lake")
    assert lake.s3_client.meta.endpoint_url.startswith("https://")
    assert lake.filesystem.__reduce__()[1][0]["scheme"] == "https"
    assert s3_filesystem().__reduce__()[1][0]["scheme"] == "https"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    plain = LakeStorage(url="s3://bucket/lake")
    assert plain.filesystem.__reduce__()[1][0]["scheme"] == "http"
    assert plain.s3_client.meta.endpoint_url == "http://127.0.0.1:9000"
