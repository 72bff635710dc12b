"""APISource: one REST/JSON endpoint, every page of it, with auth, timeouts and polite retries.

Records are the list at `records_path` in the body. Pagination styles, each stopping on what the
page says (no request after the last page when the API tells which one is last):

* `none`: one request.
* `page` (page number + page size) and `offset` (offset + limit): stop on an empty page; with
  `total_path`, when the records read reach the total the body states; otherwise on a short page or
  a `has_more`-style flag that is false.
* `cursor`: the next cursor is read from the body at `cursor_path` and sent as `cursor_param`; stop
  when it is null, empty or absent. Page tokens (`next_page_token` -> `page_token`) are this style.
* `starting_after`: the id at `last_id_path` of the page's last record is sent as `after_param`;
  stop when the flag at `has_more_path` is false (Stripe-style lists carry no cursor).
* `link`: follow RFC 8288 `Link: <...>; rel="next"`; stop when there is none.

A page that says more follows but gives no way to the next one fails instead of ending quietly: a
`has_more`-style flag that is true without a next cursor / next link, a `cursor_path` absent from a
full page when no earlier page carried it, a `has_more_path` absent, or a last record without an id.
The error names the path and the keys the body does have. Page/offset pagination keeps going past a
short page while such a flag is true or the total is not reached (servers that cap the page size).

Records: `explode` turns each element of an array inside a record (`lines.data`) into one row, the
record's own fields kept under `parent_prefix`. Numbers stay the text the API sent: bodies are parsed
with Decimal for fractions (ints are exact in Python at any size) and nested values are written back
as JSON text with those digits, so `1999`, `1700000000` and `0.1000000000000000055` are not rounded.

Auth: bearer token or API key (header or query parameter), read from the environment variable named
in config at request time.

Retries: 429, 5xx, connection errors and timeouts are retried up to `max_retries` times with
exponential backoff (`backoff_seconds * 2**attempt`, capped), honouring `Retry-After` (seconds or an
HTTP date). 401/403/404 and other 4xx fail at once (`SourceUnavailable`); exhausted retries raise
`SourceTemporarilyUnavailable`. No message contains the token (it is never part of a logged URL).
Requests, retries and 429 answers are counted in `APISource.stats` (reported in the raw asset's metadata).

Incremental: the previous high-water mark is sent as `incremental.param`; the mark is the maximum
of `incremental.field` over the published records (see cursor.py for boundaries and quarantine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests

from lake_assets.config import ApiEndpointConfig, ApiSourceConfig
from lake_assets.ingestion.cursor import CursorState
from lake_assets.ingestion.errors import SourceTemporarilyUnavailable, SourceUnavailable
from lake_assets.ingestion.text import json_text

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_PAGES = 1_000_000


def dotted(body: Any, path: str) -> Any:
    """`data.items` of a JSON body; '' is the body itself; None when a step is missing."""
    node = body
    for step in [p for p in path.split(".") if p]:
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    return node


_MORE_FLAGS = ("has_more", "hasMore", "has_next", "hasNext", "has_next_page", "hasNextPage", "more")


def _present(body: Any, path: str) -> bool:
    """Whether every step of a dotted path exists in the body (a present null counts as present)."""
    node = body
    for step in [p for p in path.split(".") if p]:
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return False
    return True


def more_flag(body: Any) -> str | None:
    """The dotted name of a `has_more`-style flag that is true, at the top of the body or one level down."""
    if not isinstance(body, dict):
        return None
    for name in _MORE_FLAGS:
        if body.get(name) is True:
            return name
    for key, value in body.items():
        if isinstance(value, dict):
            for name in _MORE_FLAGS:
                if value.get(name) is True:
                    return f"{key}.{name}"
    return None


def no_more(body: Any) -> bool:
    """Whether a `has_more`-style flag is present and false (at the top of the body or one level down)."""
    if not isinstance(body, dict):
        return False
    for node in (body, *[v for v in body.values() if isinstance(v, dict)]):
        if any(node.get(name) is False for name in _MORE_FLAGS):
            return True
    return False


def exact_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record's nested values as exact JSON text; scalars stay Python values (a fractional number stays
    a Decimal, so an incremental mark on it compares as a number; raw text renders it with all digits)."""
    return {k: json_text(v) if isinstance(v, (dict, list)) else v for k, v in record.items()}


def _without(record: dict[str, Any], steps: list[str]) -> dict[str, Any]:
    """A copy of `record` without the value at the dotted `steps`; objects left empty by that go too."""
    head, rest = steps[0], steps[1:]
    copy = dict(record)
    if not rest:
        copy.pop(head, None)
    elif isinstance(copy.get(head), dict):
        inner = _without(copy[head], rest)
        if inner:
            copy[head] = inner
        else:
            copy.pop(head)
    return copy


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, Decimal)):
        return "number"
    names: dict[type, str] = {dict: "object", list: "array", str: "string"}
    return names.get(type(value), type(value).__name__)


def _record_id(record: dict[str, Any]) -> str:
    """How an error names a record: its scalar `id`, or that it has none."""
    value = record.get("id")
    return repr(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else "(without an id)"


def body_keys(body: Any, limit: int = 30) -> str:
    """The dotted keys of a JSON body, two levels deep, for error messages (values are never shown)."""
    if not isinstance(body, dict):
        return f"<a JSON {type(body).__name__}, no keys>"
    keys: list[str] = []
    for key, value in body.items():
        keys.append(str(key))
        if isinstance(value, dict):
            keys.extend(f"{key}.{sub}" for sub in value)
    return ", ".join(sorted(keys)[:limit]) + (" ..." if len(keys) > limit else "")


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass
class ApiPage:
    records: list[Any]
    url: str  # without query string (it may carry an API key)
    retries: int = 0


@dataclass
class ApiStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers (each one is also a retry, or the final failure)
    waits: list[float] = field(default_factory=list)


class APISource:
    kind = "api"

    def __init__(
        self,
        source: ApiSourceConfig,
        table: ApiEndpointConfig,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.table = table
        self.session = session or requests.Session()
        self.sleep = sleep
        self.stats = ApiStats()

    @property
    def name(self) -> str:
        return f"{self.source.name}.{self.table.name}"

    @property
    def url(self) -> str:
        return urljoin(self.source.base_url.rstrip("/") + "/", self.table.path.lstrip("/"))

    @property
    def origin(self) -> str:
        return self.url

    # ------------------------------------------------------------------ auth
    def _secret(self) -> str:
        auth = self.source.auth
        value = os.environ.get(auth.token_env or "")
        if not value:
            raise SourceUnavailable(f"source {self.name}: environment variable {auth.token_env} (the token) is not set")
        return value

    def _auth(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        auth = self.source.auth
        if auth.type == "bearer":
            headers["Authorization"] = f"Bearer {self._secret()}"
        elif auth.type == "api_key":
            if auth.query_param:
                params[auth.query_param] = self._secret()
            else:
                headers[auth.header] = self._secret()

    # ------------------------------------------------------------------ one request, with retries
    def _get(self, url: str, params: dict[str, Any]) -> Any:
        headers = {"Accept": "application/json"}
        params = dict(params)
        self._auth(headers, params)
        shown = url.split("?", 1)[0]
        attempts = self.source.max_retries + 1
        for attempt in range(attempts):
            retry_after: float | None = None
            self.stats.requests += 1
            try:
                response = self.session.get(url, params=params, headers=headers, timeout=self.source.timeout_seconds)
            except requests.Timeout:
                cause = f"timed out after {self.source.timeout_seconds:g}s"
            except requests.ConnectionError as exc:
                cause = f"connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                if status in (401, 403):
                    raise SourceUnavailable(
                        f"source {self.name}: {shown} answered {status} {response.reason} "
                        f"(check the credentials in ${self.source.auth.token_env or 'auth'})"
                    )
                if status == 429:
                    self.stats.throttled += 1
                if status in _RETRY_STATUS:
                    cause = f"{shown} answered {status} {response.reason}"
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                elif status >= 400:
                    raise SourceUnavailable(f"source {self.name}: {shown} answered {status} {response.reason}")
                else:
                    try:
                        return response, response.json(parse_float=Decimal)
                    except ValueError:
                        raise SourceUnavailable(f"source {self.name}: {shown} did not return JSON") from None
            if attempt == attempts - 1:
                raise SourceTemporarilyUnavailable(f"source {self.name}: {cause}; gave up after {attempts} attempts")
            backoff = min(self.source.max_backoff_seconds, self.source.backoff_seconds * 2**attempt)
            wait = retry_after if retry_after is not None else backoff
            self.stats.retries += 1
            self.stats.waits.append(wait)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _records(self, body: Any, shown: str) -> list[Any]:
        records = dotted(body, self.table.records_path)
        if records is None and self.table.records_path and isinstance(body, dict):
            return []  # e.g. an empty last page that omits the list
        if not isinstance(records, list):
            raise SourceUnavailable(
                f"source {self.name}: {shown}: no record list at '{self.table.records_path or '<body>'}'"
            )
        return records

    # ------------------------------------------------------------------ records
    def _rows(self, records: list[Any], shown: str) -> list[Any]:
        """The page's records as raw rows: exploded when configured, nested values as exact JSON text."""
        rows: list[Any] = []
        for record in records:
            if isinstance(record, dict) and self.table.explode:
                rows.extend(self._explode(record, shown))
            else:
                rows.append(record)  # a non-object record is quarantined by the pipeline
        return [exact_record(r) if isinstance(r, dict) else r for r in rows]

    def _explode(self, record: dict[str, Any], shown: str) -> list[dict[str, Any]]:
        """One row per element of the array at `explode`, each with the record's other fields under the prefix.

        A record whose array is absent, null or empty has no rows (a charge without lines has no lines).
        """
        path = self.table.explode or ""
        steps = path.split(".")
        holder = dotted(record, ".".join(steps[:-1]))
        items = holder.get(steps[-1]) if isinstance(holder, dict) else None
        if items is None:
            return []
        where = f"source {self.name}: {shown}: record {_record_id(record)}"
        if not isinstance(items, list):
            raise SourceUnavailable(
                f"{where}: explode '{path}' holds a JSON {_json_kind(items)}, not an array; "
                f"the record has: {body_keys(record)}. Set explode to the path of the array to split into rows."
            )
        truncated = more_flag(holder) if holder is not record else None
        if truncated is not None:
            embedded = ".".join(steps[:-1])
            raise SourceUnavailable(
                f"{where}: the embedded list '{embedded}' is truncated ('{embedded}.{truncated}' is true), so "
                f"exploding '{path}' would lose elements. Read those elements from their own endpoint instead."
            )
        prefix = self.table.parent_prefix
        parent = {f"{prefix}{key}": value for key, value in _without(record, steps).items()}
        rows: list[dict[str, Any]] = []
        for item in items:
            element = item if isinstance(item, dict) else {"value": item}
            clash = sorted(parent.keys() & element.keys())
            if clash:
                raise SourceUnavailable(
                    f"{where}: an element of '{path}' has the field {clash[0]!r}, which is also a parent field "
                    f"under parent_prefix {prefix!r}; choose another parent_prefix."
                )
            rows.append({**element, **parent})
        return rows

    # ------------------------------------------------------------------ pages
    def pages(self, previous: CursorState | None) -> Iterator[ApiPage]:
        """Every page, in order. The stop is read from each page (see the module docstring per style),
        so no request is made after the last page unless the API gives no way to know it was the last."""
        pagination = self.table.pagination
        kind = pagination.type
        params: dict[str, Any] = dict(self.table.params)
        if self.table.incremental and previous is not None:
            params[self.table.incremental.param] = previous.value
        size = pagination.page_size
        url: str | None = self.url
        page_number, offset = pagination.first_page, 0
        next_cursor: Any = None
        cursor_seen = False  # the cursor path carried a cursor on an earlier page: its absence is the end
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            request_params = dict(params)
            if kind == "page":
                request_params[pagination.page_param] = page_number
                if pagination.size_param:
                    request_params[pagination.size_param] = size
            elif kind == "offset":
                request_params[pagination.offset_param] = offset
                request_params[pagination.limit_param] = size
            elif kind == "cursor" and next_cursor is not None:
                request_params[pagination.cursor_param] = next_cursor
            elif kind == "starting_after":
                request_params[pagination.limit_param] = size
                if next_cursor is not None:
                    request_params[pagination.after_param] = next_cursor
            elif kind == "link" and url != self.url:
                request_params = {}  # the next link carries its own query
            assert url is not None
            response, body = self._get(url, request_params)
            shown = url.split("?", 1)[0]
            records = self._records(body, shown)
            yield ApiPage(self._rows(records, shown), shown)
            if kind == "none":
                return
            flag = more_flag(body)
            if kind in ("page", "offset"):
                if not records:
                    return
                page_number += 1
                offset += len(records)
                if pagination.total_path:
                    if offset >= self._total(body, shown):
                        return
                elif flag is None and (len(records) < size or no_more(body)):
                    return  # a short page, or a more-flag that is false, ends the list
            elif kind == "cursor":
                next_cursor = dotted(body, pagination.cursor_path)
                if next_cursor in (None, ""):
                    found = _present(body, pagination.cursor_path)
                    if flag is not None or (not found and not cursor_seen and len(records) >= size):
                        why = f"'{flag}' is true" if flag else f"the page is full ({len(records)} records)"
                        raise SourceUnavailable(
                            f"source {self.name}: {shown}: {why} but there is no next cursor at "
                            f"pagination.cursor_path '{pagination.cursor_path}'"
                            f"{'' if found else ' (no such key)'}; the body has: {body_keys(body)}. "
                            "Set cursor_path to where the body carries the next cursor."
                        )
                    return
                cursor_seen = True
                if not records:
                    return
                if str(next_cursor) in seen:
                    raise SourceUnavailable(f"source {self.name}: cursor {next_cursor!r} repeats; pagination loops")
                seen.add(str(next_cursor))
            elif kind == "starting_after":
                if not self._has_more(body, shown, bool(records)):
                    return
                last_id = dotted(records[-1], pagination.last_id_path)
                if last_id in (None, "") or isinstance(last_id, (dict, list)):
                    raise SourceUnavailable(
                        f"source {self.name}: {shown}: '{pagination.has_more_path}' is true but the page's last "
                        f"record has no id at pagination.last_id_path '{pagination.last_id_path}'; the record "
                        f"has: {body_keys(records[-1])}. Set last_id_path to the field the API pages after."
                    )
                next_cursor = format(last_id, "f") if isinstance(last_id, Decimal) else last_id
                if str(next_cursor) in seen:
                    raise SourceUnavailable(
                        f"source {self.name}: the last id {next_cursor!r} repeats; pagination loops"
                    )
                seen.add(str(next_cursor))
            else:  # link
                link = response.links.get("next", {}).get("url")
                if not link:
                    if flag is not None:
                        raise SourceUnavailable(
                            f"source {self.name}: {shown}: '{flag}' is true but the response has no "
                            f'Link header with rel="next"; the body has: {body_keys(body)}. '
                            "Use the pagination type that matches this API (page, offset or cursor)."
                        )
                    return
                url = urljoin(url, link)
                if url in seen:
                    raise SourceUnavailable(f"source {self.name}: next link repeats; pagination loops")
                seen.add(url)
        raise SourceUnavailable(f"source {self.name}: more than {MAX_PAGES} pages")

    def _total(self, body: Any, shown: str) -> int:
        """The total record count at `total_path` (a whole number, as JSON number or digits)."""
        path = self.table.pagination.total_path or ""
        total = dotted(body, path)
        if isinstance(total, bool) or not isinstance(total, (int, Decimal, str)) or not str(total).isdigit():
            found = "no such key" if not _present(body, path) else f"a JSON {_json_kind(total)}"
            raise SourceUnavailable(
                f"source {self.name}: {shown}: pagination.total_path '{path}' is {found}, not a record count; "
                f"the body has: {body_keys(body)}. Set total_path to where the body carries the total."
            )
        return int(str(total))

    def _has_more(self, body: Any, shown: str, any_records: bool) -> bool:
        """starting_after: the flag at `has_more_path`; true on an empty page is an error (nothing to page after)."""
        path = self.table.pagination.has_more_path
        more = dotted(body, path)
        if more is None or more is False:
            if more is None and any_records and not _present(body, path):
                raise SourceUnavailable(
                    f"source {self.name}: {shown}: no '{path}' flag (pagination.has_more_path) in the body, so "
                    f"the end of the list cannot be told; the body has: {body_keys(body)}. "
                    "Set has_more_path to where the body says whether more records follow."
                )
            return False
        if more is not True:
            raise SourceUnavailable(
                f"source {self.name}: {shown}: pagination.has_more_path '{path}' is a JSON {_json_kind(more)}, "
                "not true/false; set has_more_path to the more-follows flag."
            )
        if not any_records:
            raise SourceUnavailable(
                f"source {self.name}: {shown}: '{path}' is true but the page has no records, so there is no "
                "last id to continue after."
            )
        return True
