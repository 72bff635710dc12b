"""APISource against a real local HTTP server: every pagination style, auth, 429/500/timeouts,
incremental `updated_since` with boundary rows, quarantine of bad records."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lake_assets.config import ApiSourceConfig, ConfigError, load_config
from lake_assets.ingestion import (
    APISource,
    DataIngestionPipeline,
    IngestionError,
    SourceTemporarilyUnavailable,
    SourceUnavailable,
)
from lake_assets.resources.lake_storage import LakeStorage

from .api_server import ApiState, sale_record, serve_api

pytestmark = pytest.mark.services  # a local HTTP API server

TOKEN = "s3cr3t-token-value"
COLUMNS = {
    "line_id": "sale_line_id",
    "order_no": "order_id",
    "sold": "sold_at",
    "qty": "quantity",
    "price": "unit_price",
}
PAGINATION = {
    "page": (
        "/v1/page",
        "data.items",
        {"type": "page", "page_size": 4, "page_param": "page", "size_param": "per_page"},
    ),
    "offset": ("/v1/offset", "results", {"type": "offset", "page_size": 4}),
    "cursor": ("/v1/cursor", "items", {"type": "cursor", "cursor_param": "cursor", "cursor_path": "meta.next_cursor"}),
    "link": ("/v1/link", "", {"type": "link"}),
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ApiState, str]]:
    state = ApiState(records=[sale_record(i, f"2024-03-01T10:00:{i:02d}") for i in range(10)], token=TOKEN)
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    with serve_api(state) as url:
        yield state, url


def api_source(url: str, style: str = "page", **overrides: Any) -> tuple[ApiSourceConfig, Any]:
    path, records_path, pagination = PAGINATION[style]
    table = {
        "name": "sales",
        "entity": "sale",
        "path": path,
        "records_path": records_path,
        "pagination": pagination,
        "columns": COLUMNS,
    }
    table.update(overrides.pop("table", {}))
    config = ApiSourceConfig.model_validate(
        {
            "name": "shop_api",
            "kind": "api",
            "base_url": url,
            "backoff_seconds": 0.01,
            "max_retries": 3,
            "timeout_seconds": 2,
            "auth": {"type": "bearer", "token_env": "SHOP_API_TOKEN"},
            "tables": [table],
            **overrides,
        }
    )
    return config, config.tables[0]


def ingest(lake: LakeStorage, config: ApiSourceConfig, day: str) -> tuple[Any, APISource]:
    source = APISource(config, config.tables[0])
    return DataIngestionPipeline(source, lake).run(day), source


def raw_rows(lake: LakeStorage, day: str) -> list[dict[str, Any]]:
    return lake.read_arrow(["raw", "shop_api", "sales"], day).to_pylist()


@pytest.mark.parametrize("style", sorted(PAGINATION))
def test_every_pagination_style_delivers_each_record_once(api, tmp_path: Path, style: str) -> None:
    state, url = api
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config, _ = api_source(url, style)
    result, source = ingest(lake, config, "2024-03-01")
    rows = raw_rows(lake, "2024-03-01")
    assert sorted(r["line_id"] for r in rows) == [f"L{i:05d}" for i in range(10)]
    assert result.rows == 10 and result.quarantined == 0
    assert source.stats.requests >= 3  # really paginated (page size 3 or 4 over 10 records)
    first = next(r for r in rows if r["line_id"] == "L00001")
    assert (first["qty"], first["price"], first["tags"]) == ("2", "9.5", '["a", "b"]')  # as delivered, as text
    assert first["_source_url"] == f"{url}{PAGINATION[style][0]}" and first["_source"] == "shop_api.sales"


def test_incremental_updated_since_gets_new_and_changed_rows_and_keeps_boundary_rows(api, tmp_path: Path) -> None:
    state, url = api
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config, _ = api_source(url, "page", table={"incremental": {"param": "updated_since", "field": "updated_at"}})
    first, _ = ingest(lake, config, "2024-03-01")
    assert first.rows == 10 and first.cursor["value"] == "2024-03-01T10:00:09"

    # One row updated, one new row, and one new row on exactly the boundary timestamp.
    state.records[3] = sale_record(3, "2024-03-02T08:00:00", qty=7)
    state.records.append(sale_record(10, "2024-03-02T09:00:00"))
    state.records.append(sale_record(11, "2024-03-01T10:00:09"))
    state.requests.clear()
    second, _ = ingest(lake, config, "2024-03-02")
    rows = raw_rows(lake, "2024-03-02")
    assert sorted(r["line_id"] for r in rows) == ["L00003", "L00010", "L00011"]
    assert next(r for r in rows if r["line_id"] == "L00003")["qty"] == "7"
    assert second.boundary_duplicates_skipped == 1  # L00009 re-read at the boundary, not re-delivered
    assert state.requests[0][1]["updated_since"] == ["2024-03-01T10:00:09"]
    assert second.cursor["value"] == "2024-03-02T09:00:00"

    # Nothing changed: an empty partition that carries the mark forward.
    third, _ = ingest(lake, config, "2024-03-03")
    assert third.rows == 0 and third.cursor == second.cursor
    # Rerunning day 2 starts again from day 1's mark: same rows, replaced, not appended.
    ingest(lake, config, "2024-03-02")
    assert sorted(r["line_id"] for r in raw_rows(lake, "2024-03-02")) == ["L00003", "L00010", "L00011"]


def test_429_with_retry_after_and_500_are_retried(api, tmp_path: Path) -> None:
    state, url = api
    state.faults = [("429", "1"), ("500", "")]
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config, _ = api_source(url, "offset")
    started = time.monotonic()
    result, source = ingest(lake, config, "2024-03-01")
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 honoured
    assert source.stats.retries == 2 and source.stats.waits[0] == 1.0 and source.stats.waits[1] < 1.0
    assert result.rows == 10
    metadata = result.metadata()  # what the raw asset reports
    assert (metadata["http_retries"], metadata["http_429_responses"]) == (2, 1)
    assert metadata["http_requests"] == len(state.requests) == 5  # 3 pages of 4 + the two retried answers


def test_timeouts_are_retried_then_give_up_as_transient(api, tmp_path: Path) -> None:
    state, url = api
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config, _ = api_source(url, "page", timeout_seconds=0.3, max_retries=1)
    state.faults = [("stall", "0.8")]
    result, _ = ingest(lake, config, "2024-03-01")  # one timeout, then success
    assert result.rows == 10
    state.faults = [("stall", "0.8"), ("stall", "0.8")]
    with pytest.raises(SourceTemporarilyUnavailable, match=r"shop_api\.sales: timed out .* after 2 attempts") as err:
        ingest(lake, config, "2024-03-02")
    assert err.value.retryable
    assert lake.commit_info(["raw", "shop_api", "sales"], "2024-03-02") is None  # nothing committed


def test_401_fails_at_once_and_never_shows_the_token(api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state, url = api
    monkeypatch.setenv("SHOP_API_TOKEN", "wrong-token-123")
    config, _ = api_source(url, "page")
    with pytest.raises(SourceUnavailable, match=r"source shop_api\.sales: .*/v1/page answered 401") as err:
        ingest(LakeStorage(url=str(tmp_path / "lake")), config, "2024-03-01")
    assert "wrong-token-123" not in str(err.value) and not err.value.retryable
    assert len(state.requests) == 1  # no retries on a deterministic failure


def test_api_key_in_query_with_link_pagination(api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state, url = api
    state.token, state.api_key = None, "key-abc-999"
    monkeypatch.setenv("SHOP_API_KEY", "key-abc-999")
    config, _ = api_source(url, "link", auth={"type": "api_key", "token_env": "SHOP_API_KEY", "query_param": "api_key"})
    result, _ = ingest(LakeStorage(url=str(tmp_path / "lake")), config, "2024-03-01")
    assert result.rows == 10 and len(state.requests) == 3
    monkeypatch.setenv("SHOP_API_KEY", "key-wrong-000")
    with pytest.raises(SourceUnavailable, match="401") as err:
        ingest(LakeStorage(url=str(tmp_path / "lake2")), config, "2024-03-01")
    assert "key-wrong-000" not in str(err.value)


def test_bad_records_are_quarantined_with_reasons(api, tmp_path: Path) -> None:
    state, url = api
    state.records.append({**sale_record(20, "2024-03-01T11:00:00"), "line_id": None})
    state.records.append(sale_record(21, "2024-03-01T11:00:01", qty="lots"))
    state.records.append({**sale_record(22, "2024-03-01T11:00:02"), "sold": "yesterday"})
    lake = LakeStorage(url=str(tmp_path / "lake"))
    config, _ = api_source(url, "page")
    result, _ = ingest(lake, config, "2024-03-01")
    assert result.rows == 10 and result.quarantined == 3
    reasons = sorted(
        r["_reject_reason"]
        for r in lake.read_arrow(["quarantine", "raw", "shop_api", "sales"], "2024-03-01").to_pylist()
    )
    assert reasons == [
        "missing line_id (sale_line_id)",
        "unparsable datetime in sold (sold_at)",
        "unparsable number in qty (quantity)",
    ]


def test_a_page_that_says_more_follows_but_gives_no_way_on_fails(api, tmp_path: Path) -> None:
    state, url = api
    lake = LakeStorage(url=str(tmp_path / "lake"))
    # The next cursor is at meta.next_cursor; a wrong path on a full page (3 of page_size 3) is an error.
    wrong_path = {"type": "cursor", "cursor_param": "cursor", "cursor_path": "meta.next", "page_size": 3}
    config, _ = api_source(url, "cursor", table={"pagination": wrong_path})
    with pytest.raises(SourceUnavailable, match=r"shop_api\.sales: .*'meta\.next'.*meta\.next_cursor") as err:
        ingest(lake, config, "2024-03-01")
    assert "items" in str(err.value) and not err.value.retryable
    assert lake.commit_info(["raw", "shop_api", "sales"], "2024-03-01") is None
    # Stripe-style lists carry no cursor at all, only `has_more`: cursor_path cannot find one.
    stripe = {"type": "cursor", "cursor_param": "starting_after", "cursor_path": "next_cursor"}
    config, _ = api_source(url, "cursor", table={"path": "/v1/stripe", "records_path": "data", "pagination": stripe})
    with pytest.raises(SourceUnavailable, match=r"has_more.*'next_cursor'.*data, has_more, object"):
        ingest(lake, config, "2024-03-01")


def test_a_server_that_caps_the_page_size_is_still_read_to_the_end(api, tmp_path: Path) -> None:
    state, url = api
    state.max_page_size = 3  # asked for 4 per page, answers 3 and says has_more
    config, _ = api_source(url, "page")
    result, _ = ingest(LakeStorage(url=str(tmp_path / "lake")), config, "2024-03-01")
    assert result.rows == 10 and [q["page"] for _, q in state.requests] == [["1"], ["2"], ["3"], ["4"]]


def test_a_delivery_that_is_entirely_quarantined_fails_and_keeps_the_mark(api, tmp_path: Path) -> None:
    state, url = api
    # Order times in a day-first format no reader accepts; the ISO copy is in `sold_iso`.
    for record in state.records:
        record["sold_iso"], record["sold"] = record["sold"], "01.03.2024 10:00"
    lake = LakeStorage(url=str(tmp_path / "lake"))
    incremental = {"incremental": {"param": "updated_since", "field": "updated_at"}}
    config, _ = api_source(url, "page", table=incremental)
    with pytest.raises(IngestionError, match=r"shop_api\.sales: all 10 delivered rows were quarantined") as err:
        ingest(lake, config, "2024-03-01")
    assert "unparsable datetime in sold (sold_at) (10)" in str(err.value) and not err.value.retryable
    assert lake.commit_info(["quarantine", "raw", "shop_api", "sales"], "2024-03-01").rows == 10
    assert lake.commit_info(["raw", "shop_api", "sales"], "2024-03-01") is None  # no mark was stored

    # The mapping is fixed: the next day reads the same ten rows again, from the beginning.
    fixed_columns = {**{k: v for k, v in COLUMNS.items() if k != "sold"}, "sold_iso": "sold_at"}
    config, _ = api_source(url, "page", table={**incremental, "columns": fixed_columns})
    state.requests.clear()
    second, _ = ingest(lake, config, "2024-03-02")
    assert second.rows == 10 and second.quarantined == 0
    assert "updated_since" not in state.requests[0][1]


def test_unreachable_host_is_retried_then_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config, _ = api_source(f"http://127.0.0.1:{port}", "page", max_retries=2)
    with pytest.raises(SourceTemporarilyUnavailable, match=r"connection failed .* after 3 attempts") as err:
        ingest(LakeStorage(url=str(tmp_path / "lake")), config, "2024-03-01")
    assert err.value.retryable


def test_params_take_numbers_and_booleans_and_reject_anything_else_in_one_line(api, tmp_path: Path) -> None:
    state, url = api
    config, table = api_source(url, "page", table={"params": {"limit": 100, "active": True, "status": "done"}})
    assert table.params == {"limit": "100", "active": "true", "status": "done"}
    ingest(LakeStorage(url=str(tmp_path / "lake")), config, "2024-03-01")
    assert (state.requests[0][1]["limit"], state.requests[0][1]["active"]) == (["100"], ["true"])

    yaml_file = tmp_path / "lake.yaml"
    yaml_file.write_text(
        "start_date: '2024-01-01'\nlake: {url: lake}\nwarehouse: {url: 'sqlite://'}\n"
        "masking: {key: a-long-enough-test-masking-key, columns: {email: hmac_sha256}}\n"
        "sources:\n  - name: shop_api\n    kind: api\n    base_url: http://127.0.0.1:1\n    tables:\n"
        "      - {name: sales, entity: sale, path: /v1/page, params: {limit: [1, 2]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(yaml_file)
    problems = str(err.value).splitlines()[1:]
    assert len(problems) == 1 and "sources.0.tables.0.params" in problems[0]
    assert "params.limit must be text, a number or true/false, not a list" in problems[0]
