"""The daily partitioning shared by every partitioned asset, and helpers around it."""


from dagster import AssetExecutionContext, DailyPartitionsDefinition

from lake_assets.config import PipelineConfig

PARTITION_TAG = "dagster/partition"


def daily_partitions(config: PipelineConfig) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=config.start_date.isoformat(), timezone=config.schedule.timezone)


def run_partition(context: AssetExecutionContext) -> str | None:
    """The partition of the run an unpartitioned asset executes in (None outside a partitioned run)."""
    return context.run.tags.get(PARTITION_TAG)
