"""TLS of a database connection (`tls:` of the warehouse and of database sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lake_assets.config.base import StrictModel


class TlsConfig(StrictModel):
    """TLS of a database connection (the warehouse, a database source), libpq's modes on every driver.

    `disable`: plain text; `require`: encrypted, the server's certificate not checked; `verify-ca`: its
    certificate must chain to `ca_file`; `verify-full`: that, and its name (or IP address) must match
    the host of the URL. Unset: the driver's default (libpq and PyMySQL try TLS and fall back to plain
    text). `cert_file`/`key_file`: a client certificate, for servers that authenticate by certificate.
    Relative paths are taken from the current directory.
    """

    sslmode: Literal["disable", "require", "verify-ca", "verify-full"] | None = None
    ca_file: str = Field(default="", description="PEM file of the CA(s) the server's certificate must chain to")
    cert_file: str = Field(default="", description="PEM client certificate (with key_file)")
    key_file: str = Field(default="", description="PEM private key of cert_file (not passphrase-protected)")

    @field_validator("sslmode", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # `${WAREHOUSE_SSLMODE:-}` left empty: the driver's default

    @model_validator(mode="after")
    def _consistent(self) -> TlsConfig:
        if self.sslmode in ("verify-ca", "verify-full") and not self.ca_file:
            raise ValueError(f"sslmode {self.sslmode} needs ca_file (the CA the server's certificate must chain to)")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together (a client certificate and its key)")
        if self.sslmode == "disable" and (self.ca_file or self.cert_file):
            raise ValueError("sslmode disable uses no certificate; remove ca_file/cert_file/key_file or pick a mode")
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path and not Path(path).expanduser().is_file():
                raise ValueError(f"{key}: no such file {path!r}")
        return self

    @property
    def enabled(self) -> bool:
        """Whether any TLS setting is given (otherwise the driver's defaults apply)."""
        return self.sslmode is not None or bool(self.ca_file or self.cert_file)
