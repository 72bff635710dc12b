"""The UI end to end: dagster-webserver on a free port with workspace.yaml and the repository's
dagster.yaml (PostgreSQL), a two-day backfill of the daily job launched through GraphQL, then the asset graph page
opened in headless Chromium (Debian `chromium`): a screenshot and the rendered DOM."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from .chromium import browse
from .conftest import REPO
from .dagster_home import env_with, postgres_dagster_home

pytestmark = pytest.mark.services  # a Dagster webserver on PostgreSQL and Chromium

WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
STORES = ["raw", "shop_files", "stores"]

BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PythonError { message }
  }
}"""
TAGS = """query Tags($runId: ID!) { runOrError(runId: $runId) { ... on Run { tags { key value } } } }"""
STATUS = """query Status($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(base: str, query: str, variables: dict) -> dict:
    payload = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"{base}/graphql", data=payload, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def _wait_until_up(base: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def _wait_for_run(base: str, run_id: str, timeout: float = 180) -> str:
    status, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _graphql(base, STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    return status


def test_materialize_through_graphql_and_screenshot_the_asset_graph(tmp_path: Path) -> None:
    with postgres_dagster_home(tmp_path, immediate_runs=True) as (home, url):  # no daemon here
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "webserver.log"
        env = env_with(home, url, LAKE_URL=str(tmp_path / "lake"),
                       WAREHOUSE_URL=f"sqlite:///{tmp_path / 'warehouse.db'}", DAGSTER_UI_URL=base)
        with open(log, "w") as log_file:
            server = subprocess.Popen(
                [WEBSERVER, "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
                cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            _wait_until_up(base, server, log)
            # A backfill over a date range of the daily job (restricted to one asset to stay fast),
            # submitted synchronously: one run per day, each for its own partition.
            backfill = _graphql(base, BACKFILL, {"params": {
                "selector": {"partitionSetName": "daily_lake_job_partition_set",
                             "repositorySelector": {"repositoryLocationName": "lake_assets",
                                                    "repositoryName": "__repository__"}},
                "partitionNames": ["2024-01-01", "2024-01-02"],
                "assetSelection": [{"path": STORES}],
                "forceSynchronousSubmission": True,
            }})["launchPartitionBackfill"]
            assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
            assert len(backfill["launchedRunIds"]) == 2
            runs = backfill["launchedRunIds"]
            assert [_wait_for_run(base, r) for r in runs] == ["SUCCESS"] * 2, log.read_text()[-3000:]
            tags = [_graphql(base, TAGS, {"runId": r})["runOrError"]["tags"] for r in runs]
            assert sorted(t["value"] for run_tags in tags for t in run_tags if t["key"] == "dagster/partition") == [
                "2024-01-01", "2024-01-02"]
            # Each run worker recorded its peak memory (a Python process with Dagster loaded: well over 50 MiB).
            peaks = [int(t["value"]) for run_tags in tags for t in run_tags if t["key"] == "lake/peak_memory_bytes"]
            assert len(peaks) == 2 and min(peaks) > 50 * 2**20, peaks
            days = {p.name for p in (tmp_path / "lake" / "raw" / "shop_files" / "stores").iterdir()}
            assert {f"ingest_date={d}" for d in ("2024-01-01", "2024-01-02")} <= days, days
            assert len(list((tmp_path / "lake" / "raw" / "shop_files" / "stores").rglob("*.parquet"))) >= 2

            graph_url = f"{base}/locations/lake_assets/asset-groups/raw/lineage"
            screenshot = tmp_path / "asset_graph.png"
            shot = browse(graph_url, tmp_path, f"--screenshot={screenshot}")
            assert screenshot.exists(), shot.stderr[-2000:]
            with Image.open(screenshot) as image:
                pixels = image.convert("RGB")
                colors = pixels.getcolors(maxcolors=1 << 20) or []
            background = max(colors)[0] if colors else 0
            drawn = pixels.width * pixels.height - background
            # Not a blank or error page: many colours, and a real share of pixels off the background.
            assert len(colors) > 50 and drawn > 0.02 * pixels.width * pixels.height, (len(colors), drawn)
            keep = os.environ.get("LAKE_UI_SCREENSHOT")
            if keep:
                shutil.copy(screenshot, keep)

            dom = browse(graph_url, tmp_path, "--dump-dom").stdout
            # The graph rendered the group's assets (names come from the live code location).
            for table in ("customers", "products", "stores", "sales"):
                assert table in dom, table
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
