"""A tokenizer for the SQL text a config holds (a source query, a derived table's Spark SQL), not a
parser: enough to tell one query from several (here) and to find the tables a derived query names
(derived.py). Spark or the source database reports anything else when the query runs."""

from __future__ import annotations

import re

SQL_TOKEN = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?P<string>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\")"
    r"|`(?P<quoted>(?:[^`]|``)*)`"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<dot>\.)|(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<semicolon>;)",
    re.DOTALL,
)


def one_query(value: str, dialect: str) -> str:
    """One query starting with SELECT or WITH; a ';' is allowed only at the very end."""
    words = [m for m in SQL_TOKEN.finditer(value) if not m.group("comment")]
    first = next((m.group("word") or "" for m in words), "").lower()
    if first not in ("select", "with") and not (words and words[0].group("open")):
        raise ValueError(f"must be one {dialect} query starting with SELECT or WITH")
    if any(m.group("semicolon") for m in words[:-1]):
        raise ValueError(f"must be one {dialect} query; remove the ';' between statements")
    return value
