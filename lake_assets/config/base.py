"""What every config section shares: the strict model base, the error type, and the rules for
names and URLs that several sections accept (SQL identifiers, quoted source names, SQLAlchemy URLs)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A name the pipeline quotes before it reaches SQL (a source database's table or cursor column): letters
# of any script, digits, '_', '$', '-' and inner spaces, at most 63 characters (PostgreSQL's limit).
# Quotes, backticks, ';', dots inside a part and control characters are refused rather than escaped.
_QUOTED_NAME = re.compile(r"^(?! )[\w$\- ]{1,63}(?<! )$")
QUOTED_NAME_RULE = ("letters (accents and other scripts too), digits, '_', '$', '-' and inner spaces, "
                    "at most 63 characters")


def sqlalchemy_url(value: str) -> str:
    """A parseable SQLAlchemy URL; the error never repeats the value (it may hold a password)."""
    from sqlalchemy.engine import make_url

    try:
        make_url(value)
    except Exception as exc:  # noqa: BLE001 - ArgumentError, or ValueError for a bad port
        problem = "its port is not a number" if isinstance(exc, ValueError) else "it cannot be parsed"
        raise ValueError(f"is not a SQLAlchemy URL (dialect+driver://user:password@host:port/database): "
                         f"{problem}") from None
    return value


def require_known(names: Iterable[str], known: Iterable[str], what: str, listed_as: str) -> None:
    """Refuse names outside `known`: "unknown <what> [...]; <listed_as>: a, b, c"."""
    choices = list(known)
    unknown = sorted(set(names) - set(choices))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; {listed_as}: {', '.join(choices)}")


def quoted_name(value: str, what: str) -> str:
    if not _QUOTED_NAME.match(value):
        raise ValueError(f"{what} {value!r} is not a name this pipeline accepts: {QUOTED_NAME_RULE}")
    return value


class ConfigError(ValueError):
    """Raised for any invalid pipeline configuration; the message names file and key."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
