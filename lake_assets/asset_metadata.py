"""What the UI shows about every asset, applied in one pass over the built assets.

Per asset (the asset decorators set none of these; `describe_assets` adds them to the finished graph):
* `owners`: the config's `owners` list (default none).
* tags `layer` (the key's first part) and `pii`: `true` on the layers that hold delivered values before
  masking (raw, processed, the quarantine of their rejected rows) and on the token vault (card numbers,
  encrypted), `false` elsewhere (masked, curated and warehouse hold masked values only; unknown PII
  fails or is masked, `masking.on_unknown_pii`).
* `dagster/table_name` on each warehouse table: `schema.table` as loaded (SQLite: the table alone).
* `code_version`: the package version plus a hash of the config the asset's computation reads (its
  source table's mapping, its entity's standardize/masking rules, the star-schema settings), so the
  UI marks an asset changed when its code or its part of the config changed, and only then.
* code references: the file and line of the asset's function, linked to `code_links.git_url` at
  `code_links.git_branch` when the config names a repository.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dagster import (
    AnchorBasedFilePathMapping,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    link_code_references_to_git,
    map_asset_specs,
    with_source_code_references,
)

from lake_assets.config import DERIVED_SOURCE, PipelineConfig
from lake_assets.dialects import sql_dialect

TABLE_NAME_KEY = "dagster/table_name"
PII_LAYERS = ("raw", "processed", "quarantine", "vault")
PACKAGE_ROOT = Path(__file__).resolve().parent


def package_version() -> str:
    try:
        return version("lake_assets")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def warehouse_table_name(config: PipelineConfig, table: str) -> str:
    """The table as the warehouse names it: `schema.table`; SQLite has no schemas (warehouse.py)."""
    schema = config.warehouse.schema_name
    if schema and sql_dialect(config.warehouse.url) != "sqlite":
        return f"{schema}.{table}"
    return table


def config_slice(config: PipelineConfig, key: Sequence[str]) -> Any:
    """The part of the config the asset at `key` reads; None for an asset no config changes."""
    layer, rest = key[0], list(key[1:])
    if layer == "quarantine":  # quarantine/processed/<entity>: the rows its layer's step rejected
        return config_slice(config, rest)
    if layer == "vault":  # vault/<entity>/<column>: written by masked/<entity> with its rules and key id
        return config_slice(config, ["masked", rest[0]])
    entities = config.entities.model_dump(mode="json")
    if layer == "raw":
        source_name, table_name = rest
        if source_name == DERIVED_SOURCE:
            return [t.model_dump(mode="json") for t in config.derived if t.name == table_name]
        return [t.model_dump(mode="json") for s in config.sources if s.name == source_name
                for t in s.tables if t.name == table_name]
    if layer == "processed":
        entity = rest[-1] if rest[0] != "agg" else None
        return {
            "feeds": [t.model_dump(mode="json") for _, t in config.tables_for_entity(entity)] if entity else None,
            "standardize": config.standardize.model_dump(mode="json"),
            "entities": entities,
        }
    if layer == "masked":
        entity = rest[0]
        return {
            "rules": config.masking.rules_for(entity),
            "extras": config.entities.mask_rules(entity),
            "on_unknown_pii": config.masking.on_unknown_pii,
            "key_id": config.masking.key_id,  # never the key itself
        }
    if layer == "curated":
        return {"star_schema": config.star_schema.model_dump(mode="json"), "entities": entities}
    if layer == "warehouse":
        return {"entities": entities, "row_level_security": config.warehouse.row_level_security.model_dump(mode="json")}
    return None


def code_version(config: PipelineConfig, key: Sequence[str]) -> str:
    """`<package version>+<12 hex digits of the asset's config slice>`; the version alone for an asset no
    config changes."""
    part = config_slice(config, key)
    if part is None:
        return package_version()
    text = json.dumps(part, sort_keys=True, default=str)
    return f"{package_version()}+{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def _described(config: PipelineConfig, spec: AssetSpec) -> AssetSpec:
    path = spec.key.path
    layer = path[0]
    tags = {"layer": layer, "pii": "true" if layer in PII_LAYERS else "false"}
    if layer == "warehouse" and path[1] != "bi_views":
        spec = spec.merge_attributes(metadata={TABLE_NAME_KEY: warehouse_table_name(config, path[1])})
    return spec.merge_attributes(tags=tags, owners=list(config.owners)).replace_attributes(
        code_version=code_version(config, path)
    )


def describe_assets(
    config: PipelineConfig, assets: Sequence[AssetsDefinition | AssetSpec]
) -> Sequence[AssetsDefinition | AssetSpec]:
    """`assets` with owners, tags, table names, code versions and code references (module docstring)."""
    described = map_asset_specs(lambda spec: _described(config, spec), assets)
    with warnings.catch_warnings():
        # Code references are a beta Dagster API; the warning would print on every code-location load.
        warnings.simplefilter("ignore", BetaWarning)
        referenced = with_source_code_references(described)
        if config.code_links.git_url:
            referenced = link_code_references_to_git(
                referenced,
                git_url=config.code_links.git_url,
                git_branch=config.code_links.git_branch,
                file_path_mapping=AnchorBasedFilePathMapping(
                    local_file_anchor=PACKAGE_ROOT / "__init__.py",
                    file_anchor_path_in_repository="lake_assets/__init__.py",
                ),
            )
    return referenced  # type: ignore[return-value]
