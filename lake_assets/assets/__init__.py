"""The asset graph, one module per layer: raw (and derived raw tables) -> processed -> masked -> curated
-> warehouse."""

from dagster import AssetsDefinition

from lake_assets.assets.curated import build_curated_assets
from lake_assets.assets.derived import build_derived_assets
from lake_assets.assets.masked import build_masked_assets
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY
from lake_assets.assets.processed import build_processed_assets
from lake_assets.assets.raw import build_raw_assets
from lake_assets.assets.warehouse import build_warehouse_assets
from lake_assets.config import PipelineConfig


def build_all_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    built = [
        *build_raw_assets(config),
        *build_derived_assets(config),
        *build_processed_assets(config),
        *build_masked_assets(config),
        *build_curated_assets(config),
        *build_warehouse_assets(config),
    ]
    # The daily assets declare the policy themselves. The unpartitioned ones (dimensions, warehouse
    # tables, BI views) run once in any run, but `dagster asset materialize --partition-range` accepts a
    # selection only when every selected asset has a single-run policy.
    return [a if a.backfill_policy is not None else a.with_attributes(backfill_policy=DAILY_BACKFILL_POLICY)
            for a in built]
