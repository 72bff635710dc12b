"""A real local HTTP/JSON API (http.server in a thread on 127.0.0.1:<free port>) for ingestion tests.

It serves one list of sale-line records six ways (page number, offset + total, cursor in body, page
token, Link header, and Stripe-style `starting_after=<last id>` with only a `has_more` flag), filters by
`updated_since`, serves payments-style lists (`/v1/charges`, `/v1/customers`: newest first,
`starting_after` + `limit` + `has_more`, nested objects, amounts in cents, Unix `created`, charges with
an embedded `lines` list),
may cap the page size it was asked for (as many real APIs do, silently), checks a bearer token or an
API key, and can be told to answer the next requests with 429 (+ Retry-After), 500, or to stall
past the client's timeout. It records every request it saw (path and query) so tests can assert on what the client sent.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class ApiState:
    records: list[dict[str, Any]] = field(default_factory=list)
    token: str | None = None  # bearer token required when set
    api_key: str | None = None  # X-API-Key header or api_key query parameter required when set
    faults: list[tuple[str, str]] = field(default_factory=list)  # (kind, arg) consumed one per request
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    max_page_size: int | None = None  # larger per_page / limit requests get this many records
    charges: list[dict[str, Any]] = field(default_factory=list)  # /v1/charges, Stripe-shaped
    customers: list[dict[str, Any]] = field(default_factory=list)  # /v1/customers, Stripe-shaped
    lock: threading.Lock = field(default_factory=threading.Lock)

    def visible(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        since = query.get("updated_since", [None])[0]
        rows = sorted(self.records, key=lambda r: (r["updated_at"], r["line_id"]))
        return [r for r in rows if since is None or r["updated_at"] >= since]


def _dumps(body: Any) -> str:
    """JSON text; a Decimal is written as the bare number it spells (`19.90`, `0.1000000000000000055`),
    the way an API serialises its own exact numbers."""

    def marked(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\u0000{value}\u0000"
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(body, default=marked)
    return re.sub(r'"\\u0000([-+0-9.eE]+)\\u0000"', r"\1", text)


def _handler(state: ApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            payload = _dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            url = urlparse(self.path)
            query = parse_qs(url.query)
            with state.lock:
                state.requests.append((url.path, query))
                fault = state.faults.pop(0) if state.faults else None
            if fault is not None:
                kind, arg = fault
                if kind == "429":
                    return self._send(429, {"error": "slow down"}, {"Retry-After": arg})
                if kind == "500":
                    return self._send(500, {"error": "boom"})
                if kind == "stall":
                    time.sleep(float(arg))
            if state.token and self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._send(401, {"error": "unauthorized"})
            if state.api_key and state.api_key not in (self.headers.get("X-API-Key"), query.get("api_key", [None])[0]):
                return self._send(401, {"error": "bad key"})
            rows = state.visible(query)

            def capped(size: int) -> int:
                return min(size, state.max_page_size) if state.max_page_size else size

            if url.path == "/v1/page":
                page, size = int(query["page"][0]), capped(int(query["per_page"][0]))
                body = {"data": {"items": rows[(page - 1) * size : page * size]}, "page": page}
                return self._send(200, {**body, "has_more": page * size < len(rows)})
            if url.path == "/v1/offset":
                offset, limit = int(query["offset"][0]), capped(int(query["limit"][0]))
                return self._send(200, {"results": rows[offset : offset + limit], "total": len(rows)})
            if url.path == "/v1/cursor":
                start = int(query.get("cursor", ["0"])[0])
                chunk = rows[start : start + 3]
                following = start + 3 if start + 3 < len(rows) else None
                return self._send(
                    200, {"items": chunk, "meta": {"next_cursor": None if following is None else str(following)}}
                )
            if url.path == "/v1/tokens":  # page tokens: opaque, absent on the last page
                token = query.get("page_token", [None])[0]
                start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
                size = int(query.get("page_size", ["5"])[0])
                body = {"records": rows[start : start + size]}
                if start + size < len(rows):
                    body["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
                return self._send(200, body)
            if url.path in ("/v1/charges", "/v1/customers"):
                objects = state.charges if url.path == "/v1/charges" else state.customers
                return self._send(*_stripe_list(url.path, objects, query, capped))
            if url.path == "/v1/link":
                page = int(query.get("page", ["1"])[0])
                chunk = rows[(page - 1) * 4 : page * 4]
                headers = {}
                if page * 4 < len(rows):
                    rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k not in ("page", "api_key"))
                    headers["Link"] = f'</v1/link?page={page + 1}{"&" + rest if rest else ""}>; rel="next"'
                return self._send(200, chunk, headers)
            if url.path == "/v1/stripe":
                after = query.get("starting_after", [None])[0]
                ids = [r["line_id"] for r in rows]
                start = ids.index(after) + 1 if after in ids else 0
                limit = capped(int(query.get("limit", ["5"])[0]))
                chunk = rows[start : start + limit]
                return self._send(200, {"object": "list", "data": chunk, "has_more": start + limit < len(rows)})
            return self._send(404, {"error": "no such endpoint"})

    return Handler


def _stripe_list(
    path: str, objects: list[dict[str, Any]], query: dict[str, list[str]], capped: Any
) -> tuple[int, dict[str, Any]]:
    """A Stripe list: newest first, `limit` (default 10, at most 100), `starting_after=<id>`, `has_more`."""
    ordered = sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)
    after = query.get("starting_after", [None])[0]
    ids = [o["id"] for o in ordered]
    if after is not None and after not in ids:
        return 400, {"error": {"type": "invalid_request_error", "message": f"No such object: '{after}'"}}
    start = ids.index(after) + 1 if after is not None else 0
    limit = capped(min(100, int(query.get("limit", ["10"])[0])))
    chunk = ordered[start : start + limit]
    return 200, {"object": "list", "url": path, "has_more": start + limit < len(ordered), "data": chunk}


@contextmanager
def serve_api(state: ApiState) -> Iterator[str]:
    """Serve `state` on a free loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sale_record(n: int, updated_at: str, qty: Any = 2) -> dict[str, Any]:
    return {
        "line_id": f"L{n:05d}",
        "order_no": f"O{n // 3:05d}",
        "sold": "2024-03-01 10:00:00",
        "qty": qty,
        "price": 9.5,
        "updated_at": updated_at,
        "tags": ["a", "b"],
    }


def charge_record(n: int, lines: int, created: int = 1_700_000_000) -> dict[str, Any]:
    """A payments-API charge: amounts in cents, Unix seconds, a nested customer, `lines` items embedded."""
    items = [
        {
            "id": f"il_{n:04d}{i}",
            "object": "line_item",
            "amount": (i + 1) * 999,
            "currency": "eur",
            "quantity": i + 1,
            "description": f"Item {i}",
            "price": {"id": f"price_{i}", "product": f"prod_{i:03d}", "unit_amount": 999},
        }
        for i in range(lines)
    ]
    return {
        "id": f"ch_3N{n:06d}",
        "object": "charge",
        "amount": sum(item["amount"] for item in items) or 1999,
        "amount_refunded": 0,
        "currency": "eur",
        "created": created + n * 61,
        "livemode": False,
        "paid": True,
        "status": "succeeded",
        "customer": {"id": f"cus_{n % 4:04d}", "object": "customer", "address": {"country": "DE", "city": "Köln"}},
        "metadata": {"order_id": f"O{n:05d}"},
        "lines": {
            "object": "list",
            "data": items,
            "has_more": False,
            "total_count": lines,
            "url": f"/v1/charges/ch_3N{n:06d}/lines",
        },
    }
