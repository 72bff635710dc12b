"""The sources (`sources:`): file drops, databases and HTTP APIs, and the tables each delivers."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from lake_assets.config.base import IDENTIFIER, StrictModel, quoted_name, sqlalchemy_url
from lake_assets.config.mapping import MappedTable
from lake_assets.config.sql_scan import one_query
from lake_assets.config.tls import TlsConfig


class _TableBase(MappedTable):
    """What every source table shares. Without `entity` the table feeds no entity itself: it is only
    an input of derived tables (`derived[].sql`), and ingestion checks no required columns in it."""

    entity: str | None = None
    schema_drift: Literal["evolve", "fail"] = "evolve"


class _SourceBase(StrictModel):
    name: str

    @field_validator("name")
    @classmethod
    def _source_identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value


class FileTableConfig(_TableBase):
    """One file pattern of a file-drop source; `{date}` in the pattern is the partition day."""

    has_file_rows: ClassVar[bool] = True
    pattern: str
    format: Literal["csv", "json", "jsonl", "parquet"] = "csv"
    delimiter: str = ","
    quote_char: str = '"'
    encoding: str = "utf-8"
    header: bool = Field(default=True, description="CSV: the first line names the columns")
    column_names: list[str] = Field(default_factory=list, description="CSV without header: the column names")


class FileSourceConfig(_SourceBase):
    kind: Literal["file"]
    path: str = Field(description="Local directory or s3://bucket/prefix")
    tables: list[FileTableConfig]


class DatabaseIncrementalConfig(StrictModel):
    cursor: str = Field(description="Source column that only grows: an update timestamp or an increasing id")

    @field_validator("cursor")
    @classmethod
    def _cursor_name(cls, value: str) -> str:
        return quoted_name(value, "column")


class DatabaseTableConfig(_TableBase):
    """A table (`schema.table`) or a SQL query; full load, or incremental on a cursor column."""

    table: str | None = None
    query: str | None = None
    incremental: DatabaseIncrementalConfig | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> DatabaseTableConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        """`table` or `schema.table` (each part quoted when read); nothing else reaches the SQL."""
        if value is not None:
            parts = value.split(".")
            if len(parts) > 3:
                raise ValueError(f"{value!r}: at most catalog.schema.table")
            for part in parts:
                quoted_name(part, "name part")
        return value

    @field_validator("query")
    @classmethod
    def _one_select(cls, value: str | None) -> str | None:
        """The query is read as a sub-select: one SELECT (or WITH) and no second statement."""
        if value is not None:
            one_query(value, "SQL")
        return value


class DatabaseSourceConfig(_SourceBase):
    kind: Literal["database"]
    url: str = Field(description="SQLAlchemy URL; put the password in an environment variable")
    chunk_rows: int = Field(default=50_000, ge=1, description="rows fetched and written per chunk")
    connect_timeout_seconds: int = Field(default=10, ge=1)
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig(), description="TLS to the source database")
    tables: list[DatabaseTableConfig]

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return sqlalchemy_url(value)


class ApiAuthConfig(StrictModel):
    """Secrets are read from the named environment variable at request time, never stored here."""

    type: Literal["none", "bearer", "api_key"] = "none"
    token_env: str | None = Field(default=None, description="environment variable holding the token / key")
    header: str = "X-API-Key"
    query_param: str | None = Field(default=None, description="api_key: send as this query parameter instead")

    @model_validator(mode="after")
    def _token_named(self) -> ApiAuthConfig:
        if self.type != "none" and not self.token_env:
            raise ValueError(f"auth type {self.type!r} needs 'token_env'")
        return self


class PaginationConfig(StrictModel):
    """How to get from one page to the next; every style stops on what the pages say (see api_source.py)."""

    type: Literal["none", "page", "offset", "cursor", "link", "starting_after"] = "none"
    page_size: int = Field(default=100, ge=1)
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = "per_page"
    offset_param: str = "offset"
    limit_param: str = Field(default="limit", description="offset and starting_after: the page size parameter")
    cursor_param: str = Field(default="cursor", description="cursor: the parameter the next cursor is sent as")
    cursor_path: str = Field(default="next_cursor", description="dotted path of the next cursor in the body")
    total_path: str | None = Field(
        default=None, description="page/offset: dotted path of the total record count; reading stops on reaching it"
    )
    after_param: str = Field(default="starting_after", description="starting_after: parameter carrying the last id")
    last_id_path: str = Field(default="id", description="starting_after: dotted path of the id in a page's last record")
    has_more_path: str = Field(default="has_more", description="starting_after: dotted path of the more-follows flag")

    @model_validator(mode="after")
    def _options_of_the_type(self) -> PaginationConfig:
        if self.total_path is not None and self.type not in ("page", "offset"):
            raise ValueError(f"total_path applies to page and offset pagination, not to type {self.type!r}")
        for name in ("cursor_path", "last_id_path", "has_more_path", "total_path"):
            value = getattr(self, name)
            if value is not None and not _dotted_path(value):
                raise ValueError(f"{name} must be a dotted path like 'meta.next', got {value!r}")
        return self


def _dotted_path(value: str) -> bool:
    """`data`, `meta.next_cursor`, `lines.data`: non-empty steps separated by single dots."""
    return bool(value) and all(step.strip() for step in value.split("."))


class ApiIncrementalConfig(StrictModel):
    param: str = Field(description="query parameter sent with the high-water mark, e.g. updated_since")
    field: str = Field(description="record field the high-water mark is taken from, e.g. updated_at")


class ApiEndpointConfig(_TableBase):
    path: str
    params: dict[str, str] = Field(
        default_factory=dict, description="query parameters; numbers are sent as written, booleans as true/false"
    )
    records_path: str = Field(default="", description="dotted path of the record list in the body; '' = body")
    pagination: PaginationConfig = Field(default_factory=PaginationConfig)
    incremental: ApiIncrementalConfig | None = None
    explode: str | None = Field(
        default=None,
        description="dotted path of an array inside each record (e.g. lines.data): one row per element, "
        "with the record's own fields kept under parent_prefix",
    )
    parent_prefix: str = Field(default="parent.", min_length=1, description="explode: prefix of the parent's fields")

    @field_validator("explode")
    @classmethod
    def _explode_path(cls, value: str | None) -> str | None:
        if value is not None and not _dotted_path(value):
            raise ValueError(f"must be a dotted path to an array in each record like 'lines.data', got {value!r}")
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _params_as_text(cls, value: Any) -> Any:
        """YAML reads `limit: 100` as a number and `active: true` as a boolean; a query string is text."""
        if not isinstance(value, dict):
            return value  # pydantic names the expected mapping
        text: dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, bool):
                text[str(name)] = "true" if item else "false"
            elif isinstance(item, int | float | str):
                text[str(name)] = str(item)
            else:
                kind = "empty" if item is None else f"a {type(item).__name__}"
                raise ValueError(f"params.{name} must be text, a number or true/false, not {kind}")
        return text


class ApiSourceConfig(_SourceBase):
    kind: Literal["api"]
    base_url: str
    auth: ApiAuthConfig = Field(default_factory=ApiAuthConfig)
    timeout_seconds: float = Field(default=30, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=60, ge=0)
    tables: list[ApiEndpointConfig]


SourceConfig = Annotated[FileSourceConfig | DatabaseSourceConfig | ApiSourceConfig, Field(discriminator="kind")]
SourceKindConfig = FileSourceConfig | DatabaseSourceConfig | ApiSourceConfig
TableConfig = FileTableConfig | DatabaseTableConfig | ApiEndpointConfig
SOURCE_KINDS = ("file", "database", "api")
