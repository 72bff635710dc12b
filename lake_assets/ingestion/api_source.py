"""APISource: one REST/JSON endpoint, every page of it, with auth, timeouts and polite retries.

Pagination styles: `none`, `page` (page number + page size), `offset` (offset + limit), `cursor`
(the next cursor is read from the body at `cursor_path`), `link` (RFC 8288 `Link: <...>; rel="next"`).
Records are the list at `records_path` in the body. A page that says more follows but gives no way to
the next one fails instead of ending quietly: a `has_more`-style flag that is true without a next
cursor / next link, or a `cursor_path` absent from a body whose records fill `page_size`. The error
names the path and the keys the body does have. Page/offset pagination keeps going past a short page
while such a flag is true (servers that cap the page size below the one asked for).

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
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests

from lake_assets.config import ApiEndpointConfig, ApiSourceConfig
from lake_assets.ingestion.cursor import CursorState
from lake_assets.ingestion.errors import SourceTemporarilyUnavailable, SourceUnavailable

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
                        return response, response.json()
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

    # ------------------------------------------------------------------ pages
    def pages(self, previous: CursorState | None) -> Iterator[ApiPage]:
        pagination = self.table.pagination
        params: dict[str, Any] = dict(self.table.params)
        if self.table.incremental and previous is not None:
            params[self.table.incremental.param] = previous.value
        size = pagination.page_size
        url: str | None = self.url
        page_number, offset = pagination.first_page, 0
        next_cursor: Any = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            request_params = dict(params)
            if pagination.type == "page":
                request_params[pagination.page_param] = page_number
                if pagination.size_param:
                    request_params[pagination.size_param] = size
            elif pagination.type == "offset":
                request_params[pagination.offset_param] = offset
                request_params[pagination.limit_param] = size
            elif pagination.type == "cursor" and next_cursor is not None:
                request_params[pagination.cursor_param] = next_cursor
            elif pagination.type == "link" and url != self.url:
                request_params = {}  # the next link carries its own query
            assert url is not None
            response, body = self._get(url, request_params)
            shown = url.split("?", 1)[0]
            records = self._records(body, shown)
            yield ApiPage(records, shown)
            if pagination.type == "none":
                return
            flag = more_flag(body)
            if pagination.type in ("page", "offset"):
                if not records:
                    return
                if len(records) < size and flag is None:
                    return  # a short page ends the list, unless the server says more follows
                page_number += 1
                offset += len(records)
            elif pagination.type == "cursor":
                next_cursor = dotted(body, pagination.cursor_path)
                if next_cursor in (None, ""):
                    found = _present(body, pagination.cursor_path)
                    if flag is not None or (not found and len(records) >= size):
                        why = f"'{flag}' is true" if flag else f"the page is full ({len(records)} records)"
                        raise SourceUnavailable(
                            f"source {self.name}: {shown}: {why} but there is no next cursor at "
                            f"pagination.cursor_path '{pagination.cursor_path}'"
                            f"{'' if found else ' (no such key)'}; the body has: {body_keys(body)}. "
                            "Set cursor_path to where the body carries the next cursor."
                        )
                    return
                if not records:
                    return
                if str(next_cursor) in seen:
                    raise SourceUnavailable(f"source {self.name}: cursor {next_cursor!r} repeats; pagination loops")
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
