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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lake_assets.entities import ENTITY_NAMES

BUNDLED_CONFIG = Path(__file__).with_name("sample_config.yaml")
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(ValueError):
    """Raised for any invalid pipeline configuration; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(_Strict):
    url: str = Field(description="Local directory or s3://bucket/prefix")


class WarehouseConfig(_Strict):
    url: str = Field(description="SQLAlchemy URL: sqlite:///, postgresql+psycopg2://, mysql+pymysql://")
    schema_name: str | None = Field(default=None, alias="schema")

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


class FileTableConfig(_Strict):
    """One file pattern of a file-drop source; `{date}` in the pattern is the partition day."""

    name: str
    entity: str
    pattern: str
    format: Literal["csv", "json", "jsonl", "parquet"] = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"
    columns: dict[str, str] = Field(default_factory=dict, description="source column -> entity column")

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


class FileSourceConfig(_Strict):
    name: str
    kind: Literal["file"]
    path: str
    tables: list[FileTableConfig]

    @field_validator("name")
    @classmethod
    def _source_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value


SourceConfig = FileSourceConfig

MaskTechnique = Literal["hmac_sha256", "sha256", "md5", "last4", "tokenize", "redact", "postal_prefix", "keep"]


class MaskingConfig(_Strict):
    key: str = Field(description="Secret for keyed hashing and the token vault; from the environment")
    key_id: str = "k1"
    columns: dict[str, MaskTechnique]
    on_unknown_pii: Literal["fail", "mask"] = "fail"

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("must be at least 16 characters (set LAKE_MASKING_KEY to a long random secret)")
        return value


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


class PipelineConfig(_Strict):
    """The whole pipeline configuration, validated."""

    start_date: date = Field(description="First daily partition")
    lake: LakeConfig
    warehouse: WarehouseConfig
    spark: SparkConfig = Field(default_factory=SparkConfig)
    sources: list[SourceConfig]
    masking: MaskingConfig
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
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

    def tables_for_entity(self, entity: str) -> list[tuple[FileSourceConfig, FileTableConfig]]:
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


def _format_validation_error(file: Path, error: ValidationError) -> str:
    lines = [f"{file}: invalid pipeline config"]
    for problem in error.errors():
        key = ".".join(str(p) for p in problem["loc"]) or "<root>"
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
