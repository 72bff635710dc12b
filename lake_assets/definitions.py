"""The code location: one `Definitions` built from the pipeline config (`LAKE_CONFIG`)."""

from typing import Any

from dagster import Definitions, definitions, in_process_executor

from lake_assets.assets import build_all_assets
from lake_assets.automation import build_automation, monitoring_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.io_managers import ParquetLakeIOManager, WarehouseIOManager
from lake_assets.resources import LakeStorage, WarehouseResource, build_spark_resource
from lake_assets.resources.warehouse import warehouse_extras


def build_resources(config: PipelineConfig) -> dict[str, Any]:
    lake = LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri, kms_key_id=config.lake.kms_key_id)
    pyspark = build_spark_resource(config.spark)
    warehouse = WarehouseResource(
        url=config.warehouse.url, schema_name=config.warehouse.schema_name, **warehouse_extras(config)
    )
    return {
        "lake": lake,
        "pyspark": pyspark,
        "warehouse": warehouse,
        "io_manager": ParquetLakeIOManager(lake=lake, pyspark=pyspark),
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
    }


def build_definitions(config: PipelineConfig) -> Definitions:
    jobs, schedules, sensors = build_automation(config)
    return Definitions(
        assets=[*build_all_assets(config), *monitoring_assets()],
        resources=build_resources(config),
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        # One process per run: one SparkSession (~6 s to start) serves every step.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """Loaded by `dagster dev` / `-m lake_assets.definitions`; the config is read at load time."""
    return build_definitions(load_config())
