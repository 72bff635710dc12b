"""The warehouse (`warehouse:`): its URL and schema, TLS, and the row-level security of its BI roles."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator, model_validator

from lake_assets.config.base import IDENTIFIER, StrictModel, sqlalchemy_url
from lake_assets.config.tls import TlsConfig
from lake_assets.dialects import sql_dialect


class RowLevelSecurityConfig(StrictModel):
    """BI roles (PostgreSQL roles / MySQL users) and the location regions each may see ("*" = all)."""

    enabled: bool = False
    roles: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _role_identifiers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role in value:
            if not IDENTIFIER.match(role):
                raise ValueError(f"role names must be plain SQL identifiers, got {role!r}")
        return value


class WarehouseConfig(StrictModel):
    url: str = Field(description="SQLAlchemy URL: sqlite:///, postgresql+psycopg2://, mysql+pymysql://")
    schema_name: str | None = Field(default=None, alias="schema")
    row_level_security: RowLevelSecurityConfig = Field(default_factory=lambda: RowLevelSecurityConfig())
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig(), description="TLS to a PostgreSQL/MySQL warehouse")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _tls_needs_a_server(self) -> WarehouseConfig:
        if self.tls.enabled and sql_dialect(self.url) == "sqlite":
            raise ValueError("tls: a SQLite warehouse is a local file, there is no connection to encrypt; remove tls")
        return self

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return sqlalchemy_url(value)

    @field_validator("schema_name")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not IDENTIFIER.match(value):
            raise ValueError(f"must be a plain SQL identifier, got {value!r}")
        return value
