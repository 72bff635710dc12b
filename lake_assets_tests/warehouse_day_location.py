"""Code location of the concurrent-day test: the real assets, checks, resources and pools, one daily job
from the sources to `warehouse/fact_sales`, and no schedule or sensor (a daemon on the real location
would also start the file-drop sensor's runs). Loaded by `dagster-daemon run -f` and `dagster job
launch -f`; the pipeline config comes from the environment like the real location's."""

from dagster import AssetSelection, Definitions, define_asset_job, definitions, in_process_executor

from lake_assets.assets import build_all_assets
from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.quality import build_quality_checks
from lake_assets.config import load_config
from lake_assets.definitions import build_resources

JOB_NAME = "day_to_warehouse_facts"
SELECTION = "*warehouse/fact_sales"  # the same assets, as `dagster asset materialize --select` writes them


@definitions
def defs() -> Definitions:
    config = load_config()
    job = define_asset_job(
        JOB_NAME,
        selection=AssetSelection.assets(["warehouse", "fact_sales"]).upstream(),
        partitions_def=daily_partitions(config),
    )
    return Definitions(assets=build_all_assets(config), asset_checks=build_quality_checks(config),
                       resources=build_resources(config), jobs=[job], executor=in_process_executor)
