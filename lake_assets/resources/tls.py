"""TLS settings of a database connection mapped to what each driver takes.

One vocabulary (libpq's `sslmode`: disable, require, verify-ca, verify-full; a CA file; a client
certificate and key) for PostgreSQL (psycopg2) and MySQL/MariaDB (PyMySQL):

| sslmode      | psycopg2 (libpq)                 | PyMySQL `ssl=`                                   |
|--------------|----------------------------------|--------------------------------------------------|
| disable      | sslmode=disable                  | ssl_disabled=True                                |
| require      | sslmode=require                  | encrypted, verify_mode off, no host name check   |
| verify-ca    | sslmode=verify-ca, sslrootcert   | ca, verify_mode on, no host name check           |
| verify-full  | sslmode=verify-full, sslrootcert | ca, verify_mode on, host name (or IP SAN) check  |
| (unset)      | libpq's default (prefer)         | PyMySQL's default (TLS if offered)               |

`sslcert`/`sslkey` (PyMySQL `cert`/`key`) carry a client certificate in every mode but disable.
SQLite has no connection: no arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from lake_assets.config import TlsConfig

SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
# Words of a driver's error that mean the TLS handshake or certificate check failed.
TLS_ERROR_WORDS = ("ssl", "tls", "certificate", "handshake")


class TlsFields(TypedDict):
    """The `WarehouseResource` fields `tls_fields` fills, each a string ("" when not set)."""

    tls_sslmode: str
    tls_ca_file: str
    tls_cert_file: str
    tls_key_file: str


def tls_fields(tls: TlsConfig) -> TlsFields:
    """`WarehouseResource` fields of a `tls:` config section (empty strings: not set)."""
    return {"tls_sslmode": tls.sslmode or "", "tls_ca_file": tls.ca_file, "tls_cert_file": tls.cert_file,
            "tls_key_file": tls.key_file}


def tls_connect_args(dialect: str, sslmode: str = "", ca_file: str = "", cert_file: str = "",
                     key_file: str = "") -> dict[str, Any]:
    """`create_engine(connect_args=...)` entries for TLS; `dialect` is the URL's
    (`lake_assets.dialects.sql_dialect`: postgresql, mysql, sqlite). Empty when nothing is set."""
    if sslmode and sslmode not in SSL_MODES:
        raise ValueError(f"sslmode {sslmode!r}: expected one of {', '.join(SSL_MODES)}")
    if dialect == "postgresql":
        args = {"sslmode": sslmode, "sslrootcert": ca_file, "sslcert": cert_file, "sslkey": key_file}
        return {k: v for k, v in args.items() if v}
    if dialect == "mysql":
        if sslmode == "disable":
            return {"ssl_disabled": True}
        ssl: dict[str, Any] = {}
        if ca_file:
            ssl["ca"] = ca_file
        if cert_file:
            ssl["cert"] = cert_file
            ssl["key"] = key_file
        if sslmode:
            # PyMySQL sets check_hostname before verify_mode, so "off, off" is accepted by `ssl`.
            ssl["check_hostname"] = sslmode == "verify-full"
            ssl["verify_mode"] = sslmode in ("verify-ca", "verify-full")
        return {"ssl": ssl} if ssl else {}
    return {}


def is_tls_error(message: str) -> bool:
    """Whether a driver's connection error is about TLS (handshake, certificate, SSL support)."""
    lowered = message.lower()
    return any(word in lowered for word in TLS_ERROR_WORDS)
