"""The code location: one `Definitions` built from the pipeline config (`LAKE_CONFIG`)."""

from typing import Any

from dagster import Definitions, in_process_executor

from lake_assets.asset_metadata import describe_assets
from lake_assets.assets import build_all_assets
from lake_assets.assets.freshness import build_freshness_checks, build_freshness_sensor, build_schema_change_checks
from lake_assets.assets.quality import build_quality_checks
from lake_assets.automation import build_automation, monitoring_assets
from lake_assets.config import PipelineConfig
from lake_assets.io_managers import ParquetLakeIOManager, WarehouseIOManager
from lake_assets.resources import LakeStorage, WarehouseResource, build_spark_resource
from lake_assets.resources.tls import tls_fields
from lake_assets.resources.warehouse import warehouse_extras
from lake_assets.secrets import url_fields


def build_resources(config: PipelineConfig) -> dict[str, Any]:
    """The resources of the code location. URL passwords go in as their own fields, as `EnvVar`s when the
    config read them from the environment: the UI and run snapshots show the variable, not the value."""
    catalog = url_fields(config.lake.catalog.uri, config.env_variables("lake.catalog.uri"),
                         url_key="catalog_uri", password_key="catalog_password")
    lake = LakeStorage(url=config.lake.url, kms_key_id=config.lake.kms_key_id, **catalog)
    pyspark = build_spark_resource(config.spark)
    warehouse = WarehouseResource(
        **url_fields(config.warehouse.url, config.env_variables("warehouse.url")),
        schema_name=config.warehouse.schema_name, **warehouse_extras(config), **tls_fields(config.warehouse.tls),
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
    assets = build_all_assets(config)
    freshness = build_freshness_checks(config, assets)
    return Definitions(
        assets=describe_assets(config, [*assets, *monitoring_assets()]),
        # Standalone, so each can be re-run alone; the daily job (AssetSelection.all()) runs them too.
        asset_checks=[*build_quality_checks(config), *freshness, *build_schema_change_checks(config, assets)],
        resources=build_resources(config),
        jobs=jobs,
        schedules=schedules,
        sensors=[*sensors, build_freshness_sensor(freshness)],
        # One process per run: one SparkSession (~6 s to start) serves every step.
        executor=in_process_executor,
    )
