"""API shapes against a real local HTTP server: every pagination style stops on what the last page
says (the server counts the requests), line items exploded into rows with their parent's fields,
numbers kept as the exact text the API sent, and 429s counted across the new styles."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lake_assets.config import ApiSourceConfig
from lake_assets.ingestion import APISource, DataIngestionPipeline, SourceUnavailable
from lake_assets.ingestion.text import records_as_text
from lake_assets.resources.lake_storage import LakeStorage
from spark.naming import to_snake_case

from .api_server import ApiState, charge_record, sale_record, serve_api

pytestmark = pytest.mark.services  # a local HTTP API server


@pytest.fixture
def api() -> Iterator[tuple[ApiState, str]]:
    state = ApiState(records=[sale_record(i, f"2024-03-01T10:00:{i:02d}") for i in range(12)])
    # 23 charges with 0..3 line items each (a charge without lines has no line rows).
    state.charges = [charge_record(n, lines=n % 4) for n in range(23)]
    with serve_api(state) as url:
        yield state, url


def source(url: str, path: str, records_path: str, pagination: dict[str, Any], **table: Any) -> APISource:
    config = ApiSourceConfig.model_validate(
        {
            "name": "pay_api",
            "kind": "api",
            "base_url": url,
            "backoff_seconds": 0,
            "max_retries": 2,
            "timeout_seconds": 5,
            "tables": [
                {
                    "name": "charges",
                    "entity": "sale",
                    "path": path,
                    "records_path": records_path,
                    "pagination": pagination,
                    **table,
                }
            ],
        }
    )
    return APISource(config, config.tables[0])


def read_all(api_source: APISource) -> list[dict[str, Any]]:
    return [record for page in api_source.pages(None) for record in page.records]


def newest_first(charges: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in sorted(charges, key=lambda c: (c["created"], c["id"]), reverse=True)]


STARTING_AFTER = {"type": "starting_after", "page_size": 5}


@pytest.mark.parametrize("charges", [23, 20])  # a short last page, and a full one
def test_starting_after_reads_every_charge_once_and_stops_when_has_more_is_false(api, charges: int) -> None:
    state, url = api
    state.charges = state.charges[:charges]
    records = read_all(source(url, "/v1/charges", "data", STARTING_AFTER))
    oracle = newest_first(state.charges)
    assert [r["id"] for r in records] == oracle
    sent = [query.get("starting_after", [None])[0] for _, query in state.requests]
    assert len(state.requests) == math.ceil(charges / 5)  # no request after the page with has_more false
    assert sent == [None, *oracle[4:-1:5]][: len(state.requests)]  # the last id of each previous page
    assert {query["limit"][0] for _, query in state.requests} == {"5"}


def test_starting_after_without_a_way_on_fails_naming_the_path(api) -> None:
    state, url = api
    wrong_id = {**STARTING_AFTER, "last_id_path": "charge_id"}
    with pytest.raises(SourceUnavailable, match=r"pay_api\.charges: .*last_id_path 'charge_id'.*amount, .*id"):
        read_all(source(url, "/v1/charges", "data", wrong_id))
    wrong_flag = {**STARTING_AFTER, "has_more_path": "more"}
    with pytest.raises(SourceUnavailable, match=r"no 'more' flag .*data, has_more, object, url"):
        read_all(source(url, "/v1/charges", "data", wrong_flag))


def test_page_tokens_are_the_cursor_style_and_a_full_last_page_without_a_token_ends_the_list(api) -> None:
    state, url = api
    state.records = state.records[:10]  # two full pages of 5; the second has no next_page_token
    tokens = {"type": "cursor", "cursor_param": "page_token", "cursor_path": "next_page_token", "page_size": 5}
    records = read_all(source(url, "/v1/tokens", "records", tokens, params={"page_size": 5}))
    assert [r["line_id"] for r in records] == [f"L{i:05d}" for i in range(10)]
    assert len(state.requests) == 2
    assert "page_token" not in state.requests[0][1] and state.requests[1][1]["page_token"][0]


@pytest.mark.parametrize("cap", [None, 3])  # the server honours limit 4, or silently answers 3
def test_offset_with_total_stops_at_the_total(api, cap: int | None) -> None:
    state, url = api
    state.max_page_size = cap
    offsets = {"type": "offset", "page_size": 4, "total_path": "total"}
    records = read_all(source(url, "/v1/offset", "results", offsets))
    assert sorted(r["line_id"] for r in records) == [f"L{i:05d}" for i in range(12)]
    assert len(state.requests) == math.ceil(12 / (cap or 4))  # 12 of 12 read: no empty page asked for
    assert [q["offset"][0] for _, q in state.requests] == [str(i) for i in range(0, 12, cap or 4)]


def test_link_body_cursor_and_page_flags_stop_on_the_last_page(api) -> None:
    state, url = api
    state.records = state.records[:8]  # a multiple of the page size: the last page is full
    read_all(source(url, "/v1/link", "", {"type": "link"}))
    assert len(state.requests) == 2  # pages of 4; the second has no rel="next"
    state.requests.clear()
    state.records = state.records[:6]
    cursor = {"type": "cursor", "cursor_param": "cursor", "cursor_path": "meta.next_cursor", "page_size": 3}
    read_all(source(url, "/v1/cursor", "items", cursor))
    assert len(state.requests) == 2  # pages of 3; the second says next_cursor null
    state.requests.clear()
    state.records = state.records[:4]
    page = {"type": "page", "page_size": 2, "size_param": "per_page"}
    assert len(read_all(source(url, "/v1/page", "data.items", page))) == 4
    assert len(state.requests) == 2  # the second full page says has_more false


def test_exploded_line_items_carry_their_parent_fields(api) -> None:
    state, url = api
    api_source = source(url, "/v1/charges", "data", STARTING_AFTER, explode="lines.data")
    rows = read_all(api_source)
    charges = {c["id"]: c for c in state.charges}
    oracle = sorted((c["id"], line["id"]) for c in state.charges for line in c["lines"]["data"])
    assert len(oracle) == 33  # 23 charges with n % 4 lines
    assert sorted((r["parent.id"], r["id"]) for r in rows) == oracle

    table = records_as_text(rows)  # what the pipeline writes to raw for these records
    by_line = {r["id"]: r for r in table.to_pylist()}
    line = by_line["il_00071"]  # charge 7, its second line
    charge = charges["ch_3N000007"]
    assert (line["amount"], line["quantity"], line["object"]) == ("1998", "2", "line_item")
    assert json.loads(line["price"]) == {"id": "price_1", "product": "prod_001", "unit_amount": 999}
    assert (line["parent.amount"], line["parent.created"]) == (str(charge["amount"]), str(charge["created"]))
    assert line["parent.livemode"] == "false" and line["parent.status"] == "succeeded"
    assert json.loads(line["parent.customer"]) == charge["customer"]  # nested parent objects as JSON text
    assert "Köln" in line["parent.customer"]
    rest = {k: v for k, v in charge["lines"].items() if k != "data"}
    assert json.loads(line["parent.lines"]) == rest  # the list's own fields, without the lines again
    assert [to_snake_case(c) for c in ("parent.amount", "parent.customer", "id")] == [
        "parent_amount",
        "parent_customer",
        "id",
    ]

    prefixed = source(url, "/v1/charges", "data", STARTING_AFTER, explode="lines.data", parent_prefix="charge_")
    assert {r["charge_id"] for r in read_all(prefixed)} == {c for c, _ in oracle}


def test_a_truncated_embedded_list_is_not_exploded_quietly(api) -> None:
    state, url = api
    state.charges[5]["lines"]["has_more"] = True  # the API embedded only the first lines
    with pytest.raises(SourceUnavailable, match=r"'ch_3N000005'.*'lines' is truncated \('lines\.has_more' is true"):
        read_all(source(url, "/v1/charges", "data", STARTING_AFTER, explode="lines.data"))
    # The array is at lines.data; `lines` itself is the list object around it.
    with pytest.raises(SourceUnavailable, match=r"'ch_3N000022'.*explode 'lines' holds a JSON object, not an array"):
        read_all(source(url, "/v1/charges", "data", STARTING_AFTER, explode="lines"))


def test_numbers_reach_raw_as_the_exact_text_the_api_sent(api, tmp_path: Path) -> None:
    state, url = api
    fraction = "0.1000000000000000055511151231257827"
    state.customers = [
        {
            "id": f"cus_{n:04d}",
            "object": "customer",
            "created": 1_700_000_000 + n,  # Unix seconds
            "updated_ms": 1_700_000_000_123 + n,  # Unix milliseconds
            "balance": 2**70 + n,  # beyond a double's 53 bits
            "credit": Decimal("19.90"),
            "rate": Decimal(fraction),
            "tiny": Decimal("1E-7"),
            "address": {"country": "DE", "geo": {"lat": Decimal("52.520008000000001")}, "unit": 7},
        }
        for n in range(7)
    ]
    api_source = source(url, "/v1/customers", "data", STARTING_AFTER, entity="customer", columns={"id": "customer_id"})
    lake = LakeStorage(url=str(tmp_path / "lake"))
    result = DataIngestionPipeline(api_source, lake).run("2024-03-01")
    assert result.rows == 7 and result.quarantined == 0 and api_source.stats.requests == 2
    rows = {r["id"]: r for r in lake.read_arrow(["raw", "pay_api", "charges"], "2024-03-01").to_pylist()}
    row = rows["cus_0003"]
    assert (row["created"], row["updated_ms"], row["balance"]) == ("1700000003", "1700000000126", str(2**70 + 3))
    assert (row["credit"], row["rate"], row["tiny"]) == ("19.90", fraction, "0.0000001")
    assert row["address"] == '{"country": "DE", "geo": {"lat": 52.520008000000001}, "unit": 7}'


def test_429_while_paging_after_the_last_id_is_retried_and_counted(api) -> None:
    state, url = api
    state.faults = [("stall", "0"), ("429", "0"), ("500", "")]  # the second page is throttled, then fails once
    api_source = source(url, "/v1/charges", "data", STARTING_AFTER)
    assert [r["id"] for r in read_all(api_source)] == newest_first(state.charges)
    assert (api_source.stats.throttled, api_source.stats.retries) == (1, 2)
    assert api_source.stats.requests == len(state.requests) == 5 + 2


def test_pagination_and_explode_options_are_checked_at_load_time() -> None:
    from pydantic import ValidationError

    def table(**options: Any) -> dict[str, Any]:
        return {
            "name": "pay_api",
            "kind": "api",
            "base_url": "http://x",
            "tables": [{"name": "t", "entity": "sale", "path": "/v1/charges", **options}],
        }

    with pytest.raises(ValidationError, match="total_path applies to page and offset pagination, not to type 'cursor'"):
        ApiSourceConfig.model_validate(table(pagination={"type": "cursor", "total_path": "total"}))
    with pytest.raises(ValidationError, match=r"last_id_path must be a dotted path .* got 'data\.\.id'"):
        ApiSourceConfig.model_validate(table(pagination={"type": "starting_after", "last_id_path": "data..id"}))
    with pytest.raises(ValidationError, match=r"explode\n.*dotted path to an array .* got 'lines\.'"):
        ApiSourceConfig.model_validate(table(explode="lines."))
