"""Code location of the queued-backfill test: the real assets, resources and pools, plus a small daily
job (one source's chain and its SCD2 dimension) so that several daily runs fit the suite's budget.
Loaded by `dagster job backfill -f` and `dagster-daemon run -f` in that test; the pipeline config
comes from the environment like the real location's."""

from dagster import AssetSelection, Definitions, define_asset_job, definitions, in_process_executor

from lake_assets.assets import build_all_assets
from lake_assets.assets.partitions import daily_partitions
from lake_assets.config import load_config
from lake_assets.definitions import build_resources

JOB_NAME = "customer_dimension_days"

@definitions
def defs() -> Definitions:
    config = load_config()
    job = define_asset_job(
        JOB_NAME,
        # processed/customer comes with its quarantine: one step writes both.
        selection=(AssetSelection.assets(["curated", "dim_customer"])
                   | AssetSelection.assets(["masked", "customer"]).upstream()).required_multi_asset_neighbors(),
        partitions_def=daily_partitions(config),
    )
    return Definitions(assets=build_all_assets(config), resources=build_resources(config), jobs=[job],
                       executor=in_process_executor)
