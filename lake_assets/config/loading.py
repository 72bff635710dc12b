"""Reading the config file: `${VAR}` / `${VAR:-default}` interpolation, validation, error messages.

The file comes from `LAKE_CONFIG` (default: the bundled `sample_config.yaml`). Every error names the
file, the key path and what was expected, and is raised at load time, before any asset runs; it never
echoes a URL's password, the masking key or the SMTP password. Which variables each key referenced is
kept (`PipelineConfig.env_variables`), so resources receive secrets as Dagster `EnvVar`s
(lake_assets/secrets.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lake_assets.config.base import ConfigError
from lake_assets.config.pipeline import PipelineConfig
from lake_assets.config.sources import SOURCE_KINDS
from lake_assets.secrets import hide_url_passwords

BUNDLED_CONFIG = Path(__file__).parent.with_name("sample_config.yaml")

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
        if not (i == 2 and loc[0] == "sources" and isinstance(loc[1], int) and p in SOURCE_KINDS)
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
