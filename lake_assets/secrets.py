"""Secrets in the pipeline config: passing them to Dagster by environment-variable name, and hiding
URL passwords in text.

A resource config value is shown by the Dagster UI (resource details), stored in every run's job
snapshot and echoed by config errors. A value that came from an environment variable is therefore
handed to Dagster as `EnvVar(<name>)`: Dagster stores and shows the name and reads the value only
when the run builds the resource. SQLAlchemy URLs are split: the URL without its password, and the
password as its own field (`EnvVar` when the config took it from a variable; a literal password
written in the YAML stays a plain value, masked in the UI but stored in Dagster's job snapshots).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from dagster import EnvVar
    from pydantic.json_schema import JsonDict

# `scheme://user:password@`: SQLAlchemy's own URL grammar (the password runs to the '@').
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<password>[^@\s]*)@")
SECRET_FIELD: JsonDict = {"dagster__is_secret": True}  # pydantic `json_schema_extra`: Dagster's UI masks the value


def hide_url_passwords(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` replaced by `***`; works on URLs
    SQLAlchemy cannot parse too (an error about a malformed URL must not echo its password)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)


def safe_url(url: str | URL) -> str:
    """A URL for messages and metadata: parsed and rendered with the password hidden, or (unparsable)
    the text with every URL password hidden."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except Exception:  # noqa: BLE001 - any parse failure: fall back to the textual redaction
        return hide_url_passwords(str(url))
    return parsed.render_as_string(hide_password=True)


def without_password(url: URL) -> str:
    """The URL as text without its password (`URL.set` cannot unset a field)."""
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return bare.render_as_string(hide_password=False)


def with_password(url: str, password: str | None) -> URL:
    """The parsed URL, with `password` (when given) in place of any in the text."""
    parsed = make_url(url)
    return parsed.set(password=password) if password else parsed


def env_source(value: str, variables: list[str]) -> EnvVar | None:
    """`EnvVar(name)` for the first of `variables` (those the config key referenced) whose current
    value is exactly `value`; None when the value did not come whole from one of them."""
    from dagster import EnvVar  # here: the config module imports this file and stays free of Dagster

    for name in variables:
        if value and os.environ.get(name) == value:
            return EnvVar(name)
    return None


def url_fields(url: str, variables: list[str], url_key: str = "url", password_key: str = "password") -> dict[str, Any]:
    """Resource fields for a SQLAlchemy URL taken from a config key that referenced `variables`.

    * no password: the URL as is;
    * the whole URL from one variable: `EnvVar` of it (the UI shows the variable's name);
    * the password from one variable (`postgresql://etl:${PW}@db/dw`): the URL without it, and the
      password as `EnvVar` of that variable;
    * a literal password: the URL without it, and the password as a plain (UI-masked) value.
    """
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - validated at config load; let the resource report it
        return {url_key: url}
    if not parsed.password:
        return {url_key: url}
    whole = env_source(url, variables)
    if whole is not None:
        return {url_key: whole}
    password = str(parsed.password)
    return {url_key: without_password(parsed), password_key: env_source(password, variables) or password}
