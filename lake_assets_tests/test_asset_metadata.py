"""Owners, tags, warehouse table names, code versions and code references of the built graph.

The expectations come from the config the test writes (owners, sources, schema) and from the list of
warehouse tables a BI user queries, not from lake_assets' metadata module.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey

from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_definitions

WAREHOUSE_TABLES = ["dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales"]


def _config(**changes: Any) -> PipelineConfig:
    data = load_config().model_dump(mode="json", by_alias=True)
    data.update(changes)
    return PipelineConfig.model_validate(data)


def _nodes(config: PipelineConfig) -> dict[AssetKey, Any]:
    graph = build_definitions(config).resolve_asset_graph()
    return {key: graph.get(key) for key in graph.get_all_asset_keys()}


def test_owners_layer_and_pii_tags_follow_the_config() -> None:
    config = _config(owners=["team:retail-data", "ana@example.com"])
    holds_pii = {AssetKey([*layer, s.name, t.name]) for s in config.sources for t in s.tables
                 for layer in (["raw"], ["quarantine", "raw"])}  # rejected rows are delivered rows too
    holds_pii |= {AssetKey([*layer, t.entity]) for s in config.sources for t in s.tables
                  for layer in (["processed"], ["quarantine", "processed"])}
    holds_pii |= {AssetKey(["vault", "sale", "card_number"])}  # the sample config tokenizes card numbers
    nodes = _nodes(config)
    assert holds_pii <= set(nodes)
    for key, node in nodes.items():
        assert node.owners == ["team:retail-data", "ana@example.com"], key
        assert node.tags["layer"] == key.path[0], key
        assert node.tags["pii"] == ("true" if key in holds_pii else "false"), key


def test_owners_default_to_none_and_must_be_addresses_or_teams() -> None:
    assert all(node.owners == [] for node in _nodes(load_config()).values())
    with pytest.raises(ValueError, match="not an e-mail address or team:<name>: \\['bob'\\]"):
        _config(owners=["bob"])


def test_warehouse_assets_name_their_table_as_loaded() -> None:
    sqlite = _nodes(load_config())
    postgres = _nodes(_config(warehouse={"url": "postgresql://lake@db.example/dw", "schema": "sales_mart"}))
    for table in WAREHOUSE_TABLES:
        key = AssetKey(["warehouse", table])
        assert sqlite[key].metadata["dagster/table_name"] == table  # SQLite has no schemas
        assert postgres[key].metadata["dagster/table_name"] == f"sales_mart.{table}"
    assert "dagster/table_name" not in postgres[AssetKey(["warehouse", "bi_views"])].metadata


def test_code_versions_change_with_the_config_an_asset_reads_only() -> None:
    base = load_config()
    data = base.model_dump(mode="json", by_alias=True)
    sales = next(t for t in data["sources"][0]["tables"] if t["name"] == "sales")
    sales["columns"]["qty"] = "quantity_renamed_by_test"
    sales["columns"]["quantity_src"] = "quantity"
    data["masking"]["entities"]["customer"]["postal_code"] = "redact"
    before, after = _nodes(base), _nodes(PipelineConfig.model_validate(data))
    changed = {key for key in before if before[key].code_version != after[key].code_version}
    assert AssetKey(["raw", "shop_files", "sales"]) in changed
    assert AssetKey(["processed", "sale"]) in changed
    assert AssetKey(["quarantine", "processed", "sale"]) in changed  # rejected by the sale mapping's rules
    assert AssetKey(["masked", "customer"]) in changed
    for unchanged in (["raw", "shop_files", "customers"], ["processed", "customer"], ["masked", "sale"],
                      ["vault", "sale", "card_number"], ["curated", "fact_sales"], ["warehouse", "fact_sales"]):
        assert AssetKey(unchanged) not in changed, unchanged
    assert all(node.code_version.startswith(version("lake_assets")) for node in before.values())


def test_code_references_open_the_asset_function_locally_or_in_git() -> None:
    local = _nodes(load_config())[AssetKey(["warehouse", "fact_sales"])]
    reference = local.metadata["dagster/code_references"].code_references[0]
    line = Path(reference.file_path).read_text(encoding="utf-8").splitlines()[reference.line_number - 1]
    assert Path(reference.file_path).name == "warehouse.py" and "@asset" in line

    linked = _nodes(_config(code_links={"git_url": "https://github.com/acme/lake", "git_branch": "prod"}))
    url = linked[AssetKey(["raw", "shop_files", "sales"])].metadata["dagster/code_references"].code_references[0].url
    assert re.fullmatch(r"https://github.com/acme/lake/tree/prod/lake_assets/assets/raw.py#L\d+", url), url
