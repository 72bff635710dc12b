"""The asset graph of the sample config, compared with a reviewed snapshot.

A change to keys, groups, dependencies, checks or partitioning shows up as a diff of
`asset_graph.snapshot.json`. After an intended change, regenerate it with
`LAKE_UPDATE_GRAPH_SNAPSHOT=1 python -m pytest lake_assets_tests/test_asset_graph_snapshot.py` and
review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lake_assets.config import load_config
from lake_assets.definitions import build_definitions

SNAPSHOT = Path(__file__).with_name("asset_graph.snapshot.json")


def _graph_summary() -> dict[str, Any]:
    defs = build_definitions(load_config())
    graph = defs.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": type(partitions).__name__ if partitions is not None else None,
            "checks": sorted(
                check.name + (" (blocking)" if graph.get_check_spec(check).blocking else "")
                for check in node.check_keys
            ),
        }
    return {
        "assets": assets,
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_the_asset_graph_equals_its_reviewed_snapshot() -> None:
    summary = _graph_summary()
    if os.environ.get("LAKE_UPDATE_GRAPH_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert summary == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_group_names_are_the_key_prefixes() -> None:
    for key, asset in _graph_summary()["assets"].items():
        assert asset["group"] == key.split("/", 1)[0], key


def test_no_asset_reads_the_token_vault() -> None:
    """The vault's card numbers (encrypted) reach no later layer: only `detokenize` reads them."""
    assets = _graph_summary()["assets"]
    vaults = [key for key in assets if key.startswith("vault/")]
    assert vaults  # the sample config tokenizes card numbers
    assert [(key, dep) for key, a in assets.items() for dep in a["deps"] if dep.startswith("vault/")] == []
