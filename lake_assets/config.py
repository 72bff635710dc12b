"""Pipeline configuration: one YAML file, `${VAR}` / `${VAR:-default}` interpolation, typed objects.

The file comes from `LAKE_CONFIG` (default: the bundled `sample_config.yaml`). Every error names the
file, the key path and what was expected, and is raised at load time, before any asset runs.
Secrets (masking key, passwords, tokens) are only ever read from the environment through
interpolation; the config never stores a default for them.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lake_assets.entities import ENTITY_NAMES

BUNDLED_CONFIG = Path(__file__).with_name("sample_config.yaml")
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC = re.compile(r"^\s*(sum|count|min|max|avg|count_distinct)\(\s*([A-Za-z_][A-Za-z0-9_]*|\*)\s*\)\s*$")


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


class LakeConfig(_Strict):
    url: str = Field(description="Local directory or s3://bucket/prefix")
    catalog: CatalogConfig = Field(default_factory=lambda: CatalogConfig())

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


class WarehouseConfig(_Strict):
    url: str = Field(description="SQLAlchemy URL: sqlite:///, postgresql+psycopg2://, mysql+pymysql://")
    schema_name: str | None = Field(default=None, alias="schema")
    row_level_security: RowLevelSecurityConfig = Field(default_factory=lambda: RowLevelSecurityConfig())

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schema_name")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(f"must be a plain SQL identifier, got {value!r}")
        return value


class SparkConfig(_Strict):
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


class _TableBase(_Strict):
    """What every source table shares: its asset name, the entity it feeds and how to map it."""

    name: str
    entity: str
    columns: dict[str, str] = Field(default_factory=dict, description="source column -> entity column")
    key: list[str] = Field(
        default_factory=list, description="source columns identifying a record; default: the entity key via `columns`"
    )
    schema_drift: Literal["evolve", "fail"] = "evolve"

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str) -> str:
        if value not in ENTITY_NAMES:
            raise ValueError(f"must be one of {sorted(ENTITY_NAMES)}, got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _table_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value


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


class DatabaseSourceConfig(_SourceBase):
    kind: Literal["database"]
    url: str = Field(description="SQLAlchemy URL; put the password in an environment variable")
    chunk_rows: int = Field(default=50_000, ge=1, description="rows fetched and written per chunk")
    connect_timeout_seconds: int = Field(default=10, ge=1)
    tables: list[DatabaseTableConfig]

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("is not a SQLAlchemy URL (dialect+driver://user:password@host:port/database)") from None
        return value


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
    type: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_size: int = Field(default=100, ge=1)
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = "per_page"
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str = Field(default="next_cursor", description="dotted path of the next cursor in the body")


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
            if not _IDENTIFIER.match(name) or not _METRIC.match(expression):
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

        for entity, rules in self.entities.items():
            if entity not in ENTITIES:
                raise ValueError(f"unknown entity {entity!r}; expected one of {sorted(ENTITIES)}")
            columns = set(ENTITIES[entity].columns)
            used = set(rules.nulls)
            for agg in rules.aggregations:
                used |= set(agg.group_by) | {_METRIC.match(m).group(2) for m in agg.metrics.values()} - {"*"}
            unknown = sorted(used - columns)
            if unknown:
                raise ValueError(f"{entity}: unknown column(s) {unknown}; entity columns are {sorted(columns)}")
        return self


class ScheduleConfig(_Strict):
    """When the daily job runs (issue 6); the Airflow export uses the same values."""

    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    max_runtime_seconds: int = Field(default=3 * 3600, gt=0, description="runs longer than this are stopped")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # Dagster's own parser: what it accepts is exactly what the schedule will run.
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError("must be a 5-field cron expression such as '0 2 * * *'")
        return value

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


class RetriesConfig(_Strict):
    max: int = Field(default=2, ge=0)
    delay_seconds: float = Field(default=300, ge=0)


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

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad}")
        return value


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

    def type2_attributes(self, entity: str) -> list[str] | None:
        """The Type-2 attributes of an SCD2 dimension's entity (None for other entities), in entity order."""
        from lake_assets.entities import ENTITIES

        if entity not in SCD2_ENTITIES:
            return None
        schema = ENTITIES[entity]
        skip = {*schema.key, schema.cursor, *self.dimension(entity).type1_columns}
        return [c for c in schema.columns if c not in skip]

    @model_validator(mode="after")
    def _known_type1_columns(self) -> StarSchemaConfig:
        from lake_assets.entities import ENTITIES

        for entity, dim in self.dimensions.items():
            schema = ENTITIES[entity]
            attributes = set(schema.columns) - set(schema.key) - {schema.cursor}
            unknown = sorted(set(dim.type1_columns) - attributes)
            if unknown:
                raise ValueError(f"dimensions.{entity}.type1_columns: {unknown} are not attributes of {entity}")
        return self


class PipelineConfig(_Strict):
    """The whole pipeline configuration, validated."""

    start_date: date = Field(description="First daily partition")
    lake: LakeConfig
    warehouse: WarehouseConfig
    spark: SparkConfig = Field(default_factory=SparkConfig)
    sources: list[SourceConfig]
    masking: MaskingConfig
    standardize: StandardizeConfig = Field(default_factory=lambda: StandardizeConfig())
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    sensor: SensorConfig = Field(default_factory=SensorConfig)
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    star_schema: StarSchemaConfig = Field(default_factory=lambda: StarSchemaConfig())
    retention_days: dict[Literal["raw", "processed", "masked", "curated"], int] = Field(
        default_factory=lambda: {"raw": 90, "processed": 180, "masked": 180, "curated": 365}
    )

    @model_validator(mode="after")
    def _unique_sources(self) -> PipelineConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} appears twice")
            seen.add(source.name)
        return self

    def tables_for_entity(self, entity: str) -> list[tuple[SourceKindConfig, TableConfig]]:
        """Every (source, table) pair configured to feed `entity`, in config order."""
        return [(s, t) for s in self.sources for t in s.tables if t.entity == entity]


def _interpolate(node: Any, path: str, file: Path) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string, naming the key of a missing variable."""
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), file) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", file) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

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
        if problem["type"] == "extra_forbidden":
            lines.append(f"  key '{key}': unknown key")
        elif problem["type"] == "missing":
            lines.append(f"  key '{key}': required key is missing")
        else:
            lines.append(f"  key '{key}': {problem['msg']} (got {problem.get('input')!r})")
    return "\n".join(lines)


def _redact_secrets(message: str, raw: dict[str, Any]) -> str:
    """Validation errors echo inputs; never echo the masking key."""
    secret = (raw.get("masking") or {}).get("key") if isinstance(raw.get("masking"), dict) else None
    if isinstance(secret, str) and secret:
        message = message.replace(secret, "***")
    return message


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
    resolved = _interpolate(raw, "", file)
    try:
        return PipelineConfig.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(_redact_secrets(_format_validation_error(file, exc), resolved)) from None
