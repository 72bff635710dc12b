"""Fault: the API stalls on page 7 of 10 beyond the client's timeout, once. The page is asked for
again after the source's backoff and every record lands once; no other page is fetched twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake_assets.resources.lake_storage import LakeStorage

from .test_ingestion_api import api, api_source, ingest, raw_rows  # noqa: F401 - `api` is a fixture

pytestmark = pytest.mark.services  # a local HTTP API server


def test_page_7_of_10_timing_out_once_is_retried_and_every_record_lands_once(api, tmp_path: Path) -> None:  # noqa: F811
    state, url = api
    lake = LakeStorage(url=str(tmp_path / "lake"))
    # 10 records, one per page: pages 1..10. Faults are consumed one per request: six answered
    # normally, the seventh request (page 7) stalls past the 0.3 s timeout.
    config, _ = api_source(
        url, "page", timeout_seconds=0.3, max_retries=2, backoff_seconds=0.05,
        table={"pagination": {"type": "page", "page_size": 1, "page_param": "page", "size_param": "per_page"}},
    )
    state.faults = [("ok", "")] * 6 + [("stall", "0.8")]
    result, source = ingest(lake, config, "2024-03-01")

    pages = [int(query["page"][0]) for path, query in state.requests if path == "/v1/page"]
    assert pages == [1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10]  # page 7 twice, nothing else repeated
    assert source.stats.retries == 1 and source.stats.waits == [0.05]  # the first backoff step
    ids = [r["line_id"] for r in raw_rows(lake, "2024-03-01")]
    assert sorted(ids) == [f"L{i:05d}" for i in range(10)] and len(set(ids)) == 10
    assert result.rows == 10
