"""The daily partitioning shared by every partitioned asset, and helpers around it.

Every daily asset has `BackfillPolicy.single_run()` (`DAILY_BACKFILL_POLICY`): a backfill of N days
(UI, `dagster asset materialize --partition-range A...B`) is one run whose steps each handle every day
of the range, oldest first (`run_days`; `assets/day_range.py`). The schedule and the sensors still
launch one day per run.
"""


from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    BackfillPolicy,
    DailyPartitionsDefinition,
)

from lake_assets.config import PipelineConfig

PARTITION_TAG = "dagster/partition"
# Set instead of PARTITION_TAG on a run over a partition range (a single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

DAILY_BACKFILL_POLICY = BackfillPolicy.single_run()
"""One run per backfill: the fixed cost of a run (process, SparkSession, ~45 steps) is paid once for
the range, not once per day."""


def daily_partitions(config: PipelineConfig) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=config.start_date.isoformat(), timezone=config.schedule.timezone)


def run_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[str]:
    """The days a partitioned step handles, oldest first: the run's day, or every day of its range."""
    return sorted(context.partition_keys)  # daily keys are ISO dates: text order is day order


def run_partition(context: AssetExecutionContext) -> str | None:
    """The last day of the run an unpartitioned asset executes in (the run's day, or the end of its
    partition range in a single-run backfill); None outside a partitioned run."""
    tags = context.run.tags
    return tags.get(PARTITION_TAG) or tags.get(RANGE_END_TAG)
