"""Pipeline configuration: one YAML file, `${VAR}` / `${VAR:-default}` interpolation, typed objects.

The file comes from `LAKE_CONFIG` (default: the bundled `sample_config.yaml`). Every error names the
file, the key path and what was expected, and is raised at load time, before any asset runs.
Secrets (masking key, passwords, tokens) are read from the environment through interpolation; the
config never stores a default for them. Which variables each key referenced is kept
(`PipelineConfig.env_variables`), so resources receive secrets as Dagster `EnvVar`s (lake_assets/secrets.py),
and config errors never echo a URL's password, the masking key or the SMTP password.
"""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from lake_assets.cron import checked_cron
from lake_assets.entities import ENTITIES, ENTITY_NAMES
from lake_assets.quality_config import QualityConfig
from lake_assets.secrets import hide_url_passwords
from spark.metric_grammar import METRIC

BUNDLED_CONFIG = Path(__file__).with_name("sample_config.yaml")
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A name the pipeline quotes before it reaches SQL (a source database's table or cursor column): letters
# of any script, digits, '_', '$', '-' and inner spaces, at most 63 characters (PostgreSQL's limit).
# Quotes, backticks, ';', dots inside a part and control characters are refused rather than escaped.
_QUOTED_NAME = re.compile(r"^(?! )[\w$\- ]{1,63}(?<! )$")
QUOTED_NAME_RULE = ("letters (accents and other scripts too), digits, '_', '$', '-' and inner spaces, "
                    "at most 63 characters")


def _metric_column(expression: str) -> str:
    """The column an aggregation metric reads (`sum(amount)` -> amount, `count(*)` -> *)."""
    match = METRIC.match(expression)
    if match is None:  # the aggregations validator rejects such an expression before anything reads it
        raise ValueError(f"not an aggregation metric: {expression!r}")
    return match.group(2)


def _sqlalchemy_url(value: str) -> str:
    """A parseable SQLAlchemy URL; the error never repeats the value (it may hold a password)."""
    from sqlalchemy.engine import make_url

    try:
        make_url(value)
    except Exception as exc:  # noqa: BLE001 - ArgumentError, or ValueError for a bad port
        problem = "its port is not a number" if isinstance(exc, ValueError) else "it cannot be parsed"
        raise ValueError(f"is not a SQLAlchemy URL (dialect+driver://user:password@host:port/database): "
                         f"{problem}") from None
    return value


def _quoted_name(value: str, what: str) -> str:
    if not _QUOTED_NAME.match(value):
        raise ValueError(f"{what} {value!r} is not a name this pipeline accepts: {QUOTED_NAME_RULE}")
    return value


class ConfigError(ValueError):
    """Raised for any invalid pipeline configuration; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogConfig(_Strict):
    """The Iceberg SQL catalog that indexes the lake's tables."""

    uri: str = Field(
        default="",
        description="SQLAlchemy URL (sqlite:///…, postgresql+psycopg2://…); empty: sqlite:///<lake>/catalog.db",
    )

    @field_validator("uri")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return _sqlalchemy_url(value) if value else value


class LakeConfig(_Strict):
    url: str = Field(description="Local directory or s3://bucket/prefix")
    catalog: CatalogConfig = Field(default_factory=lambda: CatalogConfig())
    kms_key_id: str = Field(
        default="",
        description="S3 lakes: a KMS key (id or ARN) for SSE-KMS on the bucket and every upload; "
        "empty: SSE-S3 (AES256)",
    )

    @model_validator(mode="after")
    def _s3_needs_a_catalog(self) -> LakeConfig:
        if self.url.startswith("s3://") and not self.catalog.uri:
            raise ValueError(
                "lake.catalog.uri is required for an s3:// lake (a SQLite catalog file cannot live in S3); "
                "set it to a database URL such as postgresql+psycopg2://user@host/db"
            )
        return self


class RowLevelSecurityConfig(_Strict):
    """BI roles (PostgreSQL roles / MySQL users) and the location regions each may see ("*" = all)."""

    enabled: bool = False
    roles: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _role_identifiers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role in value:
            if not _IDENTIFIER.match(role):
                raise ValueError(f"role names must be plain SQL identifiers, got {role!r}")
        return value


class TlsConfig(_Strict):
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


class WarehouseConfig(_Strict):
    url: str = Field(description="SQLAlchemy URL: sqlite:///, postgresql+psycopg2://, mysql+pymysql://")
    schema_name: str | None = Field(default=None, alias="schema")
    row_level_security: RowLevelSecurityConfig = Field(default_factory=lambda: RowLevelSecurityConfig())
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig(), description="TLS to a PostgreSQL/MySQL warehouse")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _tls_needs_a_server(self) -> WarehouseConfig:
        if self.tls.enabled and self.url.startswith("sqlite"):
            raise ValueError("tls: a SQLite warehouse is a local file, there is no connection to encrypt; remove tls")
        return self

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return _sqlalchemy_url(value)

    @field_validator("schema_name")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(f"must be a plain SQL identifier, got {value!r}")
        return value


class SparkConfig(_Strict):
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


GENERATED_FILE_ROW = "file_row"


class GeneratedKeyConfig(_Strict):
    """An entity column built from several source columns (a composite natural key)."""

    from_: list[str] = Field(alias="from", min_length=1, description="source columns, joined in this order")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("source column names must not be blank")
        return value


class AlsoFeedsConfig(_Strict):
    """Another entity whose attributes the same source rows carry (e.g. the product of a sale line)."""

    entity: str
    columns: dict[str, str] = Field(min_length=1, description="source column (or nested path) -> entity column")

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str) -> str:
        if value not in ENTITY_NAMES:
            raise ValueError(f"must be one of {sorted(ENTITY_NAMES)}, got {value!r}")
        return value


class _MappedTable(_Strict):
    """A table feeding the processed layer (a source table or a derived one): its asset name, the entity
    it feeds and how to map it.

    Mapping rules (applied by the processed layer, see spark/mapping_rules.py and docs/reference.md):
    `generate` builds entity columns the export does not have (a composite key, or file + row number),
    `scale` / `value_map` / `timestamp_units` rewrite values of entity columns before they are typed,
    a `columns` key with a dot (`product.id`) reads a field of a nested JSON object, and `also_feeds`
    lets the same rows feed further entities.
    """

    name: str
    entity: str | None
    columns: dict[str, str] = Field(
        default_factory=dict, description="source column (or nested path `object.field`) -> entity column"
    )
    key: list[str] = Field(
        default_factory=list,
        description="source columns identifying a record; default: the `from` columns of a generated entity "
        "key, else the entity key via `columns`",
    )
    generate: dict[str, GeneratedKeyConfig | Literal["file_row"]] = Field(
        default_factory=dict, description="entity column -> {from: [source columns]} or file_row"
    )
    scale: dict[str, Decimal] = Field(default_factory=dict, description="entity column -> factor, e.g. 0.01")
    value_map: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="entity column -> {delivered value: value}"
    )
    timestamp_units: dict[str, Literal["seconds", "milliseconds"]] = Field(
        default_factory=dict, description="entity column -> unit of a Unix timestamp"
    )
    also_feeds: list[AlsoFeedsConfig] = Field(default_factory=list)

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str | None) -> str | None:
        if value is not None and value not in ENTITY_NAMES:
            raise ValueError(f"must be one of {sorted(ENTITY_NAMES)}, got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _table_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value

    @field_validator("scale", mode="before")
    @classmethod
    def _exact_factors(cls, value: Any) -> Any:
        """YAML reads 0.01 as a float; its shortest text is the decimal the user wrote."""
        if not isinstance(value, dict):
            return value
        factors: dict[str, Any] = {}
        for column, factor in value.items():
            if isinstance(factor, bool) or not isinstance(factor, int | float | str | Decimal):
                raise ValueError(f"scale.{column} must be a number such as 0.01, got {factor!r}")
            try:
                exact = Decimal(str(factor).strip())
            except InvalidOperation:
                raise ValueError(f"scale.{column} must be a number such as 0.01, got {factor!r}") from None
            if not exact.is_finite() or exact <= 0:
                raise ValueError(f"scale.{column} must be a positive number, got {factor!r}")
            factors[column] = exact
        return factors

    @field_validator("value_map", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        """YAML reads `1: 01` or `yes: Y` as numbers/booleans; values are compared and written as text."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for column, pairs in value.items():
            if not isinstance(pairs, dict) or not pairs:
                raise ValueError(f"value_map.{column} must map delivered values to values")
            texts = {}
            for old, new in pairs.items():
                if new is None or old is None:
                    raise ValueError(f"value_map.{column}: {old!r}: {new!r}: both sides must be values")
                texts[_yaml_text(old).strip()] = _yaml_text(new)
            out[column] = texts
        return out

    @model_validator(mode="before")
    @classmethod
    def _key_defaults_to_generated_parts(cls, data: Any) -> Any:
        """A generated entity key's `from` columns identify a record, for ingestion too, unless `key` says
        otherwise: one meaning of `key`, no second list to keep in step."""
        if not isinstance(data, dict) or data.get("key") or not isinstance(data.get("generate"), dict):
            return data
        entity = ENTITIES.get(data.get("entity", ""))
        for column, rule in data["generate"].items():
            if entity is not None and column in entity.key and isinstance(rule, dict) and rule.get("from"):
                return {**data, "key": list(rule["from"])}
        return data

    @model_validator(mode="after")
    def _mapping_rules_name_entity_columns(self) -> _MappedTable:
        if self.entity is None:
            rules = [o for o in ("generate", "scale", "value_map", "timestamp_units", "also_feeds") if getattr(self, o)]
            if rules:
                raise ValueError(f"{', '.join(rules)}: mapping rules need an 'entity' to map to")
            return self
        main = ENTITIES[self.entity]
        feeds = {self.entity: main.columns}
        for i, feed in enumerate(self.also_feeds):
            if feed.entity in feeds:
                raise ValueError(f"also_feeds[{i}].entity: {feed.entity!r} is already fed by this table")
            feeds[feed.entity] = ENTITIES[feed.entity].columns
            # Names outside the entity's columns may be extra columns declared under `entities:`:
            # PipelineConfig._mapping_rules_name_declared_columns checks them against those.
            unmapped = [c for c in ENTITIES[feed.entity].key if c not in feed.columns.values()]
            if unmapped:
                raise ValueError(
                    f"also_feeds[{i}].columns: nothing maps to {feed.entity}'s key {unmapped}; "
                    "map the source column that holds it"
                )
        types: dict[str, set[str]] = {}
        for columns in feeds.values():
            for column, spark_type in columns.items():
                types.setdefault(column, set()).add(spark_type)
        for column, rule in self.generate.items():
            if column not in main.columns:
                raise ValueError(f"generate.{column}: not a column of {self.entity}; its columns are "
                                 f"{list(main.columns)}")
            if column in self.columns.values():
                raise ValueError(f"generate.{column}: also mapped from a source column in `columns`; keep one")
            if rule == GENERATED_FILE_ROW and not isinstance(self, FileTableConfig):
                raise ValueError(f"generate.{column}: file_row needs a file source (a file and its row numbers)")
        for option, allowed in (("scale", _NUMERIC), ("timestamp_units", ("timestamp", "date")), ("value_map", None)):
            for column in getattr(self, option):
                if column not in types:
                    continue  # perhaps a declared extra column: checked by PipelineConfig
                if allowed and not any(t in allowed or t.startswith("decimal") for t in types[column]):
                    kinds = "a number" if option == "scale" else "a timestamp or date"
                    raise ValueError(f"{option}.{column}: {column} is {'/'.join(sorted(types[column]))}, "
                                     f"not {kinds}")
        for source in [*self.columns, *(k for f in self.also_feeds for k in f.columns)]:
            if "." in source and any(not part.strip() for part in source.split(".")):
                raise ValueError(f"columns: {source!r}: a nested path is object.field[.field...] without "
                                 "empty parts")
        return self

    def feeds(self) -> list[Self]:
        """This table as it feeds each entity: itself, then one view per `also_feeds` entry (same name,
        hence the same raw asset; that entity and its `columns`; no generated keys)."""
        views = [
            self.model_copy(update={"entity": feed.entity, "columns": dict(feed.columns), "generate": {},
                                    "also_feeds": []})
            for feed in self.also_feeds
        ]
        return [self, *views]

    def derived_columns(self) -> set[str]:
        """Entity columns of this table's entity built by a mapping rule rather than read from one
        delivered column: generated keys and nested paths."""
        return set(self.generate) | {target for source, target in self.columns.items() if "." in source}


_NUMERIC = ("int", "bigint", "smallint", "long", "double", "float")


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _TableBase(_MappedTable):
    """What every source table shares. Without `entity` the table feeds no entity itself: it is only
    an input of derived tables (`derived[].sql`), and ingestion checks no required columns in it."""

    entity: str | None = None
    schema_drift: Literal["evolve", "fail"] = "evolve"


class _SourceBase(_Strict):
    name: str

    @field_validator("name")
    @classmethod
    def _source_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value


class FileTableConfig(_TableBase):
    """One file pattern of a file-drop source; `{date}` in the pattern is the partition day."""

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


class DatabaseIncrementalConfig(_Strict):
    cursor: str = Field(description="Source column that only grows: an update timestamp or an increasing id")

    @field_validator("cursor")
    @classmethod
    def _cursor_name(cls, value: str) -> str:
        return _quoted_name(value, "column")


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
                _quoted_name(part, "name part")
        return value

    @field_validator("query")
    @classmethod
    def _one_select(cls, value: str | None) -> str | None:
        """The query is read as a sub-select: one SELECT (or WITH) and no second statement."""
        if value is not None:
            _one_query(value, "SQL")
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
        return _sqlalchemy_url(value)


class ApiAuthConfig(_Strict):
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


class PaginationConfig(_Strict):
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


class ApiIncrementalConfig(_Strict):
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
_SOURCE_KINDS = ("file", "database", "api")

DERIVED_SOURCE: Final = "derived"
# Functions whose argument syntax has a FROM that is no table: EXTRACT(YEAR FROM ts), TRIM(BOTH FROM s)...
_FROM_FUNCTIONS = frozenset({"extract", "trim", "substring", "substr", "position", "overlay"})
_SQL_TOKEN = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?P<string>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\")"
    r"|`(?P<quoted>(?:[^`]|``)*)`"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<dot>\.)|(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<semicolon>;)",
    re.DOTALL,
)


def _one_query(value: str, dialect: str) -> str:
    """One query starting with SELECT or WITH; a ';' is allowed only at the very end."""
    words = [m for m in _SQL_TOKEN.finditer(value) if not m.group("comment")]
    first = next((m.group("word") or "" for m in words), "").lower()
    if first not in ("select", "with") and not (words and words[0].group("open")):
        raise ValueError(f"must be one {dialect} query starting with SELECT or WITH")
    if any(m.group("semicolon") for m in words[:-1]):
        raise ValueError(f"must be one {dialect} query; remove the ';' between statements")
    return value


def view_name(source_name: str, table_name: str) -> str:
    """The name a table has in derived SQL: `<source>__<table>` (a plain identifier Spark SQL parses)."""
    return f"{source_name}__{table_name}"


class DerivedTableConfig(_MappedTable):
    """A table computed with Spark SQL from other raw tables of the same day: `raw/derived/<name>`.

    `sql` is one SELECT (or WITH ... SELECT) naming its inputs `<source>__<table>` (or
    `derived__<name>` for a derived table listed before it); `columns` renames its output columns to
    entity columns exactly as a source table's `columns` do.
    """

    entity: str  # type: ignore[assignment]  # a derived table always feeds an entity
    sql: str = Field(min_length=1, description="Spark SQL over `<source>__<table>` views of the same day")
    description: str = ""

    @field_validator("sql")
    @classmethod
    def _one_select(cls, value: str) -> str:
        return _one_query(value, "Spark SQL")


class DerivedSourceConfig(_Strict):
    """The derived tables seen as one pseudo-source, so they feed entities exactly like source tables."""

    name: Literal["derived"] = DERIVED_SOURCE
    kind: Literal["derived"] = "derived"
    tables: list[DerivedTableConfig] = Field(default_factory=list)


# What feeds an entity: a source, or the derived tables' pseudo-source (PipelineConfig.tables_for_entity).
FeedSourceConfig = SourceKindConfig | DerivedSourceConfig


def sql_references(sql: str, views: dict[str, str]) -> tuple[list[str], list[str]]:
    """(views the SQL reads, problems) for one derived table's `sql`.

    `views` maps lower-cased view names to their spelling. A `<prefix>__<rest>` word whose prefix is a
    source (or `derived`) must be a known view; a name after FROM or JOIN must be a view or a CTE of
    the query. Comments, string literals and qualified names (`o.order__id`) are skipped. Anything
    this scan cannot see (a misspelt column, a syntax error) Spark reports when the asset runs.
    """
    prefixes = {name.split("__", 1)[0] for name in views} | {DERIVED_SOURCE}
    tokens = [m for m in _SQL_TOKEN.finditer(sql) if not (m.group("comment") or m.group("string"))]
    found: dict[str, str] = {}
    problems: list[str] = []
    ctes: set[str] = set()
    stack: list[str] = []  # what each open parenthesis belongs to: a function name or ""
    previous: re.Match[str] | None = None
    for index, token in enumerate(tokens):
        if token.group("open"):
            stack.append((previous.group("word") or "").lower() if previous and previous.group("word") else "")
        elif token.group("close") and stack:
            stack.pop()
        word = token.group("word") or (token.group("quoted") or "").replace("``", "`") or None
        if word is None:
            previous = token
            continue
        lowered = word.lower()
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        qualified = previous is not None and previous.group("dot") is not None
        if after is not None and (after.group("word") or "").lower() == "as" and index + 2 < len(tokens) \
                and tokens[index + 2].group("open") and previous is not None \
                and ((previous.group("word") or "").lower() == "with" or previous.group("comma")):
            ctes.add(lowered)  # `WITH name AS (` / `, name AS (`
        if not qualified and lowered in views:
            found.setdefault(views[lowered], word)
        elif not qualified and "__" in lowered and lowered.split("__", 1)[0] in prefixes:
            problems.append(f"unknown table {word}")
        if (previous is not None and (previous.group("word") or "").lower() in ("from", "join")
                and not qualified and lowered not in views and lowered not in ctes
                and not (stack and stack[-1] in _FROM_FUNCTIONS)
                and lowered not in ("values", "lateral")
                and not (after is not None and (after.group("open") or after.group("dot")))
                and f"unknown table {word}" not in problems):
            problems.append(f"unknown table {word}")
        previous = token
    if not found and not problems:
        problems.append("reads no table; name its inputs <source>__<table>")
    return list(found), problems

MaskTechnique = Literal["hmac_sha256", "sha256", "md5", "last4", "tokenize", "redact", "postal_prefix", "keep"]


class MaskingConfig(_Strict):
    key: str = Field(description="Secret for keyed hashing and the token vault; from the environment")
    key_id: str = "k1"
    columns: dict[str, MaskTechnique]
    on_unknown_pii: Literal["fail", "mask"] = "fail"
    # Per-entity overrides of `columns` (e.g. customer postal_code: postal_prefix, store zip kept).
    entities: dict[str, dict[str, MaskTechnique]] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("must be at least 16 characters (set LAKE_MASKING_KEY to a long random secret)")
        return value

    @field_validator("key_id")
    @classmethod
    def _key_id_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", value):
            raise ValueError("must be 1-32 letters, digits, '_', '.' or '-' (it is stored with every row)")
        return value

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = sorted(set(value) - ENTITY_NAMES)
        if unknown:
            raise ValueError(f"unknown entities {unknown}; expected some of {sorted(ENTITY_NAMES)}")
        return value

    def rules_for(self, entity: str) -> dict[str, str]:
        """Column -> technique for one entity: global `columns` overlaid with `entities[entity]`."""
        return {**self.columns, **self.entities.get(entity, {})}


class NullRuleConfig(_Strict):
    """What a NULL (or null token) in one column means: keep it, reject the row, or use a default."""

    rule: Literal["keep", "reject", "default"] = "keep"
    value: str | None = Field(default=None, description="the default, as text (cast to the column type)")

    @model_validator(mode="after")
    def _default_needs_value(self) -> NullRuleConfig:
        if (self.rule == "default") != (self.value is not None):
            raise ValueError("'value' is required with rule: default and allowed only there")
        return self


class AggregationConfig(_Strict):
    """An aggregate of one processed entity, e.g. daily sales per store: `metrics` are `fn(column)`."""

    name: str
    group_by: list[str] = Field(min_length=1)
    metrics: dict[str, str] = Field(min_length=1, description="output column -> fn(column)")

    @field_validator("name")
    @classmethod
    def _name_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value

    @field_validator("metrics")
    @classmethod
    def _metric_syntax(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if not _IDENTIFIER.match(name) or not METRIC.match(expression):
                raise ValueError(
                    f"metric {name}: {expression!r} is not '<sum|count|min|max|avg|count_distinct>(column)'"
                )
        return value


class EntityStandardizeConfig(_Strict):
    nulls: dict[str, NullRuleConfig] = Field(default_factory=dict)
    timestamp_formats: list[str] | None = None
    aggregations: list[AggregationConfig] = Field(default_factory=list)


class StandardizeConfig(_Strict):
    """Processed-layer rules; None/absent means the built-in defaults in spark/standardize.py.

    Timestamp formats add to the built-in ones: entity formats first, then these, then the defaults.
    """

    timestamp_formats: list[str] | None = Field(default=None, min_length=1)
    null_tokens: list[str] | None = Field(default=None, description="no value in every column")
    typed_null_tokens: list[str] | None = Field(
        default=None, description="also no value in id columns and number/date columns (default: NA)"
    )
    max_quarantine_share: float = Field(
        default=0.05, ge=0, le=1, description="fail the step when more of the input rows are quarantined"
    )
    entities: dict[str, EntityStandardizeConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _columns_exist(self) -> StandardizeConfig:
        from lake_assets.entities import ENTITIES

        for entity in self.entities:
            if entity not in ENTITIES:
                raise ValueError(f"unknown entity {entity!r}; expected one of {sorted(ENTITIES)}")
        # Column names are checked by PipelineConfig._standardize_columns_exist: extra columns declared
        # under `entities:` are columns too, and only the whole config knows them.
        return self

    def unknown_columns(self, entity: str, columns: set[str]) -> list[str]:
        """Columns the entity's null rules and aggregations name that are not among `columns`."""
        rules = self.entities.get(entity)
        if rules is None:
            return []
        used = set(rules.nulls)
        for agg in rules.aggregations:
            used |= set(agg.group_by) | {_metric_column(m) for m in agg.metrics.values()} - {"*"}
        return sorted(used - columns)


class ScheduleConfig(_Strict):
    """When the daily job runs; the Airflow export uses the same values."""

    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    max_runtime_seconds: int = Field(default=3 * 3600, gt=0, description="runs longer than this are stopped")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return checked_cron(value, "0 2 * * *")

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None
        return value


class SensorConfig(_Strict):
    """The file-drop sensor (see docs/orchestration.md)."""

    ingest_existing_on_first_tick: bool = Field(
        default=False,
        description="first tick: launch the days of files already in the drop that the lake does not hold yet "
        "(default: only record them as seen; the schedule and backfills own history)",
    )


LAKE_LAYERS = ("raw", "processed", "masked", "curated", "quarantine", "vault")
# Days a daily partition is kept, per layer. Quarantine holds rejected raw rows (PII included) and is
# kept only long enough to investigate and replay them; the vault maps tokens to encrypted values and
# is kept as long as raw, after which the tokens of older days can no longer be detokenized.
DEFAULT_RETENTION_DAYS = {"raw": 90, "processed": 180, "masked": 180, "curated": 365, "quarantine": 30, "vault": 90}


class MaintenanceConfig(_Strict):
    """The daily `lake_retention` job: partition retention, snapshot expiry, orphan-file removal."""

    cron: str = Field(default="30 3 * * *", description="when the job runs, in schedule.timezone")
    snapshot_retention_days: int = Field(
        default=7, ge=1, description="snapshots older than this are expired (the current one always stays); "
        "it bounds how far back lake-restore and time travel reach"
    )
    orphan_min_age_hours: int = Field(
        default=24, ge=1, description="unreferenced files younger than this are kept: they may belong to a "
        "write still in flight"
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return ScheduleConfig._valid_cron(value)


class BackupConfig(_Strict):
    """The daily `warehouse_backup` job: a dump of the warehouse into `<lake>/backups/warehouse/<day>/`."""

    cron: str = Field(default="0 4 * * *", description="when the job runs, in schedule.timezone")
    retention_days: int = Field(
        default=30, ge=1, description="dumps of days older than this are deleted by the job (the newest always stays)"
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return ScheduleConfig._valid_cron(value)


class RetriesConfig(_Strict):
    """Retries of the steps a later attempt may fix (connection and throttling errors; data errors fail
    at once). See lake_assets/assets/retry.py."""

    max: int = Field(default=2, ge=0)
    delay_seconds: float = Field(default=300, ge=0, description="the first delay; the base of the backoff")
    backoff: Literal["exponential", "linear", "constant"] = Field(
        default="exponential", description="exponential: delay, 3 x delay, 7 x delay...; linear: delay x attempt"
    )
    jitter: Literal["plus_minus", "full", "none"] = Field(
        default="plus_minus", description="plus_minus: ± delay_seconds at random; full: 0 to the delay"
    )


class SmtpConfig(_Strict):
    """SMTP delivery; every value comes from LAKE_SMTP_* variables through interpolation."""

    host: str = ""
    port: int = Field(default=25, gt=0, lt=65536)
    user: str = ""
    password: str = ""
    sender: str = Field(default="lake-assets@localhost", alias="from")
    starttls: bool = False
    timeout_seconds: float = Field(default=10, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NotifyConfig(_Strict):
    """Where run notifications go: e-mail recipients (through `smtp`) and an optional webhook."""

    email: list[str] = Field(default_factory=list)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    webhook_url: str = ""
    on_completion: bool = True
    ui_base_url: str = "http://127.0.0.1:3000"
    quality_score_min: float | None = Field(
        default=None, ge=0, le=1,
        description="alert when a finished run's quality score is below this share (unset: no score alert)",
    )

    peak_memory_max_mb: int | None = Field(
        default=None, gt=0, description="alert when a run's peak memory is over this many MiB (unset: no alert)",
    )

    @field_validator("quality_score_min", "peak_memory_max_mb", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # An unset environment variable interpolates to "": no threshold.
        return None if value == "" else value

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad}")
        return value


class MonitoringConfig(_Strict):
    """Per-run metrics settings (docs/orchestration.md, "Metrics in the UI")."""

    storage_price_per_gb_month: float | None = Field(
        default=None, ge=0,
        description="price of one GiB of lake storage per month, for the estimated monthly cost (unset: none)",
    )

    @field_validator("storage_price_per_gb_month", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value


class DimensionConfig(_Strict):
    """SCD2 behaviour of one dimension (see docs/star_schema.md)."""

    type1_columns: list[str] = Field(default_factory=list, description="overwritten on every version")
    delete_policy: Literal["ignore", "close", "mark_deleted"] = "close"
    delete_detection: Literal["none", "snapshot"] = Field(
        default="none", description="snapshot: each day's delivery is complete; absent members are deleted"
    )
    type1_null_policy: Literal["keep_last_known", "overwrite"] = Field(
        default="keep_last_known",
        description="keep_last_known: a NULL never replaces a known Type-1 value; overwrite: the latest wins",
    )


SCD2_ENTITIES = ("customer", "product")


class StarSchemaConfig(_Strict):
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    dimensions: dict[Literal["customer", "product"], DimensionConfig] = Field(default_factory=dict)

    def dimension(self, entity: str) -> DimensionConfig:
        return self.dimensions.get(entity, DimensionConfig())  # type: ignore[call-overload]

    def unknown_type1_columns(self, entity: str, extras: set[str]) -> list[str]:
        """`type1_columns` of one dimension that are neither its entity's attributes nor in `extras`
        (the extra attributes declared under `entities:`; checked by PipelineConfig, which knows them)."""
        from lake_assets.entities import ENTITIES

        schema = ENTITIES[entity]
        attributes = (set(schema.columns) - set(schema.key) - {schema.cursor}) | extras
        return sorted(set(self.dimension(entity).type1_columns) - attributes)


_EXTRA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_EXTRA_TYPE = re.compile(r"^(string|int|bigint|double|date|timestamp|boolean|decimal\(\s*(\d+)\s*,\s*(\d+)\s*\))$")
_NUMERIC_TYPE = re.compile(r"^(int|bigint|double|decimal\(\d+,\d+\))$")
EXTRA_TYPES = "string, int, bigint, decimal(p,s), double, date, timestamp, boolean"
# Columns the star schema itself adds to each entity's table: an extra column may not take their names.
_STAR_COLUMNS = {
    "customer": ("customer_key", "version", "valid_from", "valid_to", "is_current", "is_deleted", "is_inferred",
                 "row_hash"),
    "product": ("product_key", "version", "valid_from", "valid_to", "is_current", "is_deleted", "is_inferred",
                "row_hash"),
    "location": ("location_key", "is_inferred"),
    "sale": ("date_key", "customer_key", "product_key", "location_key", "gross_amount", "net_amount",
             "payment_token", "ingest_date"),
}


def _extra_type(value: str) -> str:
    """A type of the closed list, normalized (`decimal(12, 2)` -> `decimal(12,2)`)."""
    match = _EXTRA_TYPE.match(str(value).strip().lower())
    if not match:
        raise ValueError(f"type {value!r} is not one of {EXTRA_TYPES}")
    if match.group(2) is None:
        return match.group(1)
    precision, scale = int(match.group(2)), int(match.group(3))
    if not 1 <= precision <= 38 or scale > precision:
        raise ValueError(f"type {value!r}: decimal(p,s) needs 1 <= p <= 38 and s <= p")
    return f"decimal({precision},{scale})"


class ExtraAttributeConfig(_Strict):
    """A dimension attribute of the configuration's own: its type, masking and SCD behaviour."""

    type: str = Field(description=EXTRA_TYPES)
    mask: MaskTechnique | None = Field(default=None, description="a masking technique, or keep (required)")
    scd: Literal[1, 2] | None = Field(default=None, description="1: overwritten; 2: versioned (customer/product "
                                      "default 2; location is SCD1 only)")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _extra_type(value)

    @model_validator(mode="after")
    def _mask_given(self) -> ExtraAttributeConfig:
        if self.mask is None:
            raise ValueError("needs 'mask': a masking technique of masking.columns, or keep to load it as delivered")
        if self.type != "string" and self.mask != "keep":
            raise ValueError(f"mask {self.mask!r} turns values into text; a {self.type} column can only be 'keep'")
        return self


class ExtraFactColumnConfig(_Strict):
    """A degenerate dimension of the fact (order status, payment method): its type and optional masking."""

    type: str = Field(description=EXTRA_TYPES)
    mask: MaskTechnique | None = Field(default=None, description="absent: scanned for PII like any column")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _extra_type(value)

    @model_validator(mode="after")
    def _text_mask(self) -> ExtraFactColumnConfig:
        if self.mask not in (None, "keep") and self.type != "string":
            raise ValueError(f"mask {self.mask!r} turns values into text; a {self.type} column can only be 'keep'")
        return self


class DimensionExtrasConfig(_Strict):
    attributes: dict[str, ExtraAttributeConfig] = Field(default_factory=dict)


class SaleExtrasConfig(_Strict):
    measures: dict[str, str] = Field(default_factory=dict, description="name -> numeric type; summed in the views")
    degenerate: dict[str, ExtraFactColumnConfig] = Field(
        default_factory=dict, description="name -> type, or {type, mask}; kept on the fact row"
    )

    @field_validator("measures")
    @classmethod
    def _numeric(cls, value: dict[str, str]) -> dict[str, str]:
        typed = {}
        for name, kind in value.items():
            typed[name] = _extra_type(kind)
            if not _NUMERIC_TYPE.match(typed[name]):
                raise ValueError(f"measure {name}: type {kind!r} is not a number (int, bigint, decimal(p,s), double)")
        return typed

    @field_validator("degenerate", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


class EntitiesConfig(_Strict):
    """Columns of the configuration's own, per entity (see docs/reference.md, "Your own columns")."""

    customer: DimensionExtrasConfig = Field(default_factory=DimensionExtrasConfig)
    product: DimensionExtrasConfig = Field(default_factory=DimensionExtrasConfig)
    location: DimensionExtrasConfig = Field(default_factory=DimensionExtrasConfig)
    sale: SaleExtrasConfig = Field(default_factory=SaleExtrasConfig)

    @model_validator(mode="after")
    def _names(self) -> EntitiesConfig:
        from lake_assets.entities import ENTITIES

        for entity in ENTITIES:
            taken = {*ENTITIES[entity].columns, *_STAR_COLUMNS[entity]}
            for group, names in self._groups(entity).items():
                for name in names:
                    key = f"{entity}.{group}.{name}"
                    if not _EXTRA_NAME.match(name):
                        raise ValueError(f"{key}: a column name is lowercase letters, digits and underscores, "
                                         "starting with a letter, at most 63 characters")
                    if name in taken:
                        raise ValueError(f"{key}: {entity} already has a column {name!r}; map the source column "
                                         f"to it in sources[].tables[].columns, or choose another name")
                    taken.add(name)
        for name, attribute in self.location.attributes.items():
            if attribute.scd == 2:
                raise ValueError(f"location.attributes.{name}: scd 2 is not available, dim_location is SCD Type 1")
        return self

    def _groups(self, entity: str) -> dict[str, list[str]]:
        if entity == "sale":
            return {"measures": list(self.sale.measures), "degenerate": list(self.sale.degenerate)}
        return {"attributes": list(getattr(self, entity).attributes)}

    def extra_columns(self, entity: str) -> dict[str, str]:
        """Extra column -> Spark type of one entity, in config order (sale: measures, then degenerate)."""
        if entity == "sale":
            return {**self.sale.measures, **{n: c.type for n, c in self.sale.degenerate.items()}}
        return {n: a.type for n, a in getattr(self, entity).attributes.items()}

    def mask_rules(self, entity: str) -> dict[str, str]:
        """Extra column -> masking technique (degenerate columns without `mask` have none)."""
        if entity == "sale":
            return {n: c.mask for n, c in self.sale.degenerate.items() if c.mask}
        return {n: a.mask for n, a in getattr(self, entity).attributes.items() if a.mask}

    def type1_attributes(self, entity: str) -> list[str]:
        """Extra attributes of an SCD2 dimension that are overwritten (scd: 1) rather than versioned."""
        if entity not in SCD2_ENTITIES:
            return []
        return [n for n, a in getattr(self, entity).attributes.items() if a.scd == 1]


_OWNER = re.compile(r"^(team:[\w.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")


class CodeLinksConfig(_Strict):
    """Where the UI's "view source" links of the assets point (docs/orchestration.md#asset-metadata)."""

    git_url: str = Field(default="", description="repository URL (https://github.com/<org>/<repo>); empty: "
                         "links to the local files")
    git_branch: str = Field(default="main", description="branch (or tag) the links open")


class PipelineConfig(_Strict):
    """The whole pipeline configuration, validated."""

    start_date: date = Field(description="First daily partition")
    lake: LakeConfig
    warehouse: WarehouseConfig
    spark: SparkConfig = Field(default_factory=SparkConfig)
    sources: list[SourceConfig]
    derived: list[DerivedTableConfig] = Field(
        default_factory=list, description="tables computed with Spark SQL from raw tables of the same day"
    )
    masking: MaskingConfig
    standardize: StandardizeConfig = Field(default_factory=lambda: StandardizeConfig())
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    sensor: SensorConfig = Field(default_factory=SensorConfig)
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    star_schema: StarSchemaConfig = Field(default_factory=lambda: StarSchemaConfig())
    entities: EntitiesConfig = Field(default_factory=lambda: EntitiesConfig())
    retention_days: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_RETENTION_DAYS),
        description="days a daily partition is kept, per lake layer; layers left out keep their default",
    )
    maintenance: MaintenanceConfig = Field(default_factory=lambda: MaintenanceConfig())
    backups: BackupConfig = Field(default_factory=lambda: BackupConfig())
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="check severities and declared column rules (docs/quality.md)"
    )
    owners: list[str] = Field(
        default_factory=list, description="owners of every asset, shown in the UI: e-mail addresses or team:<name>"
    )
    code_links: CodeLinksConfig = Field(default_factory=lambda: CodeLinksConfig())

    @field_validator("owners")
    @classmethod
    def _owner_form(cls, value: list[str]) -> list[str]:
        bad = [owner for owner in value if not _OWNER.match(owner)]
        if bad:
            raise ValueError(f"not an e-mail address or team:<name>: {bad}")
        return value

    @field_validator("retention_days")
    @classmethod
    def _known_layers(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(LAKE_LAYERS))
        if unknown:
            raise ValueError(f"unknown lake layer(s) {unknown}; the layers are {', '.join(LAKE_LAYERS)}")
        short = sorted(layer for layer, days in value.items() if days < 1)
        if short:
            raise ValueError(f"layer(s) {short}: retention must be at least 1 day")
        return {**DEFAULT_RETENTION_DAYS, **value}

    @model_validator(mode="after")
    def _orphans_outlive_a_run(self) -> PipelineConfig:
        if self.maintenance.orphan_min_age_hours * 3600 <= self.schedule.max_runtime_seconds:
            raise ValueError(
                f"maintenance.orphan_min_age_hours ({self.maintenance.orphan_min_age_hours}) must exceed the "
                f"longest run (schedule.max_runtime_seconds = {self.schedule.max_runtime_seconds}): files a "
                "running write has staged but not committed yet look like orphans"
            )
        return self

    # Config key (`warehouse.url`, `sources[0].url`) -> the environment variables its text referenced.
    _env_references: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    def env_variables(self, key: str) -> list[str]:
        """The environment variables the YAML value at `key` referenced (`${NAME}`), in order; empty
        for a literal value or a config not read by `load_config`."""
        return list(self._env_references.get(key, []))

    @model_validator(mode="after")
    def _unique_sources(self) -> PipelineConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} appears twice")
            seen.add(source.name)
        return self

    @model_validator(mode="after")
    def _derived_tables(self) -> PipelineConfig:
        """Every derived table reads only tables that exist; names are unique; no table is ingested
        for nothing (a source table without `entity` must be an input of some derived table)."""
        problems: list[str] = []
        if self.derived and any(s.name == DERIVED_SOURCE for s in self.sources):
            problems.append(f"source name {DERIVED_SOURCE!r} is reserved for derived tables "
                            f"(raw/{DERIVED_SOURCE}/<name>); rename the source")
        views: dict[str, str] = {}
        for source in self.sources:
            for table in source.tables:
                name = view_name(source.name, table.name)
                if name.lower() in views:
                    problems.append(f"{source.name}.{table.name} and {views[name.lower()].replace('__', '.', 1)} "
                                    f"are both {name} in derived SQL; rename one")
                views[name.lower()] = name
        used: set[str] = set()
        for index, derived in enumerate(self.derived):
            where = f"derived[{index}] ({derived.name})"
            earlier = [t.name for t in self.derived[:index]]
            if derived.name in earlier:
                problems.append(f"{where}: name {derived.name!r} appears twice in derived")
            found, issues = sql_references(derived.sql, views)
            if issues:
                known = ", ".join(sorted(views.values())) or "none"
                problems.append(f"{where}.sql: {'; '.join(dict.fromkeys(issues))}. Tables it can read: {known} "
                                f"(of the derived tables, those listed before it)")
            used.update(n.lower() for n in found)
            views[view_name(DERIVED_SOURCE, derived.name).lower()] = view_name(DERIVED_SOURCE, derived.name)
        for source in self.sources:
            for table in source.tables:
                if table.entity is None and view_name(source.name, table.name).lower() not in used:
                    problems.append(
                        f"sources: {source.name}.{table.name}: 'entity' is missing; a table that feeds no entity "
                        f"must be read by a derived table (derived[].sql naming {view_name(source.name, table.name)})"
                    )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    @property
    def derived_source(self) -> DerivedSourceConfig:
        return DerivedSourceConfig(tables=list(self.derived))

    def derived_inputs(self, table: DerivedTableConfig) -> list[tuple[SourceKindConfig | DerivedSourceConfig, Any]]:
        """The (source, table) pairs a derived table's SQL reads, in order of first mention."""
        pairs: dict[str, tuple[SourceKindConfig | DerivedSourceConfig, Any]] = {
            view_name(s.name, t.name).lower(): (s, t) for s in self.sources for t in s.tables
        }
        for earlier in self.derived:
            if earlier.name == table.name:
                break
            pairs[view_name(DERIVED_SOURCE, earlier.name).lower()] = (self.derived_source, earlier)
        found, _ = sql_references(table.sql, {name: name for name in pairs})
        return [pairs[name] for name in found]

    def tables_for_entity(
        self, entity: str
    ) -> list[tuple[SourceKindConfig | DerivedSourceConfig, TableConfig | DerivedTableConfig]]:
        """Every (source, table) pair configured to feed `entity`, in config order; derived tables
        (`raw/derived/<name>`) come after the source tables.
        A table that feeds it through `also_feeds` appears as a view: the same name (the same raw asset),
        that entity, the feed's `columns`."""
        sources: list[SourceKindConfig | DerivedSourceConfig] = [*self.sources, self.derived_source]
        return [(s, view) for s in sources for t in s.tables for view in t.feeds() if view.entity == entity]

    @model_validator(mode="after")
    def _mapping_rules_name_declared_columns(self) -> PipelineConfig:
        """`also_feeds` columns and the value rules (`scale`, `timestamp_units`, `value_map`) name entity
        columns or extra columns declared under `entities:`, of a type the rule can change."""
        from lake_assets.entities import ENTITIES

        problems: list[str] = []
        tables: list[tuple[str, TableConfig | DerivedTableConfig]] = [
            (f"{s.name}.{t.name}", t) for s in self.sources for t in s.tables]
        tables += [(f"derived.{t.name}", t) for t in self.derived]
        for where, table in tables:
            if table.entity is None:
                continue
            fed = [table.entity, *(f.entity for f in table.also_feeds)]
            types: dict[str, set[str]] = {}
            for entity in fed:
                columns = {**ENTITIES[entity].columns, **self.entities.extra_columns(entity)}
                for column, kind in columns.items():
                    types.setdefault(column, set()).add(kind)
            for i, feed in enumerate(table.also_feeds):
                known = {*ENTITIES[feed.entity].columns, *self.entities.extra_columns(feed.entity)}
                unknown = sorted(set(feed.columns.values()) - known)
                if unknown:
                    problems.append(f"sources: {where}.also_feeds[{i}].columns: {unknown} are not columns of "
                                    f"{feed.entity}; its columns are {sorted(known)} (declare another one under "
                                    f"entities.{feed.entity})")
            entities = " or ".join(fed)
            for option, allowed in (("scale", _NUMERIC), ("timestamp_units", ("timestamp", "date")),
                                    ("value_map", None)):
                for column in getattr(table, option):
                    if column not in types:
                        problems.append(f"sources: {where}.{option}.{column}: not a column of {entities} "
                                        "(rules name the entity column a source column is mapped to)")
                    elif allowed and not any(t in allowed or t.startswith("decimal") for t in types[column]):
                        kinds = "a number" if option == "scale" else "a timestamp or date"
                        problems.append(f"sources: {where}.{option}.{column}: {column} is "
                                        f"{'/'.join(sorted(types[column]))}, not {kinds}")
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    @model_validator(mode="after")
    def _standardize_columns_exist(self) -> PipelineConfig:
        """Null rules and aggregations name entity columns or the entity's declared extra columns."""
        from lake_assets.entities import ENTITIES

        for entity in self.standardize.entities:
            columns = {*ENTITIES[entity].columns, *self.entities.extra_columns(entity)}
            unknown = self.standardize.unknown_columns(entity, columns)
            if unknown:
                raise ValueError(f"standardize.entities.{entity}: unknown column(s) {unknown}; {entity}'s columns "
                                 f"are {sorted(columns)} (declare another one under entities.{entity})")
        return self

    @model_validator(mode="after")
    def _type1_columns_known(self) -> PipelineConfig:
        """`type1_columns` name attributes of the dimension, declared extras included; an extra declared
        `scd: 2` cannot also be listed as Type 1."""
        for entity in self.star_schema.dimensions:
            extras = getattr(self.entities, entity).attributes
            where = f"star_schema.dimensions.{entity}.type1_columns"
            unknown = self.star_schema.unknown_type1_columns(entity, set(extras))
            if unknown:
                raise ValueError(f"{where}: {unknown} are not attributes of {entity} "
                                 f"(nor extra attributes declared under entities.{entity}.attributes)")
            versioned = [n for n in self.star_schema.dimension(entity).type1_columns
                         if n in extras and extras[n].scd == 2]
            if versioned:
                raise ValueError(f"{where}: {versioned} are declared scd: 2 under entities.{entity}.attributes; "
                                 "keep one of the two")
        return self

    @model_validator(mode="after")
    def _one_mask_per_extra(self) -> PipelineConfig:
        for entity, overrides in self.masking.entities.items():
            for column, technique in self.entities.mask_rules(entity).items():
                if column in overrides and overrides[column] != technique:
                    raise ValueError(
                        f"masking.entities.{entity}.{column} is {overrides[column]!r} but entities.{entity} "
                        f"declares mask {technique!r} for it; keep one of the two"
                    )
        return self

    def mask_rules_for(self, entity: str) -> dict[str, str]:
        """Column -> technique for one entity: the defaults (person-name columns redacted), overlaid with
        `masking.columns`, the entity's extra columns' `mask`, then `masking.entities[entity]`."""
        from lake_assets.entities import entity_schema
        from spark.pii_detection import default_mask_rules

        return {**default_mask_rules(entity_schema(self, entity).columns), **self.masking.columns,
                **self.entities.mask_rules(entity), **self.masking.entities.get(entity, {})}

    def type1_columns(self, entity: str) -> list[str]:
        """Type-1 (overwritten) columns of an SCD2 dimension: configured ones plus extras with scd: 1."""
        return list(dict.fromkeys([*self.star_schema.dimension(entity).type1_columns,
                                   *self.entities.type1_attributes(entity)]))

    def type2_attributes(self, entity: str) -> list[str] | None:
        """The Type-2 attributes of an SCD2 dimension's entity, extras included (None for other entities)."""
        from lake_assets.entities import entity_schema

        if entity not in SCD2_ENTITIES:
            return None
        schema = entity_schema(self, entity)
        skip = {*schema.key, schema.cursor, *self.type1_columns(entity)}
        return [c for c in schema.columns if c not in skip]


def _interpolate(node: Any, path: str, file: Path, references: dict[str, list[str]] | None = None) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string, naming the key of a missing variable;
    record in `references` the variables each key's string named."""
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), file, references) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", file, references) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    if references is not None and _ENV_PATTERN.search(node):
        references[path] = [m.group(1) for m in _ENV_PATTERN.finditer(node)]

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is not None and value != "":
            return value
        if default is not None:
            return default
        raise ConfigError(f"{file}: key '{path}': environment variable {name} is not set (and has no default)")

    return _ENV_PATTERN.sub(substitute, node)


def _key_path(loc: tuple[int | str, ...]) -> str:
    """Dotted key path; drops the union tag pydantic inserts after `sources.N` (`file`, `database`, `api`)."""
    parts = [
        str(p) for i, p in enumerate(loc)
        if not (i == 2 and loc[0] == "sources" and isinstance(loc[1], int) and p in _SOURCE_KINDS)
    ]
    return ".".join(parts)


def _format_validation_error(file: Path, error: ValidationError) -> str:
    lines = [f"{file}: invalid pipeline config"]
    for problem in error.errors():
        key = _key_path(problem["loc"]) or "<root>"
        if not problem["loc"] and problem["type"] == "value_error":
            # A check across sections: the message names its keys; echoing the whole config helps nobody.
            lines.append(f"  {problem['msg'].removeprefix('Value error, ')}")
        elif problem["type"] == "extra_forbidden":
            lines.append(f"  key '{key}': unknown key")
        elif problem["type"] == "missing":
            lines.append(f"  key '{key}': required key is missing")
        elif key in _SECRET_KEYS:
            lines.append(f"  key '{key}': {problem['msg']} (value not shown: it is a secret)")
        else:
            lines.append(f"  key '{key}': {problem['msg']} (got {problem.get('input')!r})")
    return "\n".join(lines)


# Where the config holds secrets in clear (after interpolation): an error never shows these values.
_SECRET_PATHS = (("masking", "key"), ("notify", "smtp", "password"))
_SECRET_KEYS = frozenset(".".join(path) for path in _SECRET_PATHS)


def _redact_secrets(message: str, raw: dict[str, Any]) -> str:
    """Validation errors echo inputs (a whole section, for a check across keys): never the masking key,
    the SMTP password or the password of any URL, parseable or not."""
    secrets: list[str] = []
    for path in _SECRET_PATHS:
        node: Any = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            secrets.append(node)
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "***")
    return hide_url_passwords(message)


def load_config(path: str | os.PathLike[str] | None = None) -> PipelineConfig:
    """Load, interpolate and validate the pipeline config.

    Relative paths inside the config (lake url, file-drop paths, sqlite files) are taken relative to
    the current directory, as a user typing them in a shell would expect.
    """
    file = Path(path or os.environ.get("LAKE_CONFIG") or BUNDLED_CONFIG)
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found (set LAKE_CONFIG to an existing YAML file)")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    references: dict[str, list[str]] = {}
    resolved = _interpolate(raw, "", file, references)
    try:
        config = PipelineConfig.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(_redact_secrets(_format_validation_error(file, exc), resolved)) from None
    config._env_references = references
    return config
