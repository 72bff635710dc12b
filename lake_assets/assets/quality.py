"""Standalone asset checks of the lake tables, re-runnable without re-materializing their asset.

* `schema` on every processed, masked and curated table: the built-in column rules
  (`lake_assets/checks/layer_rules.py`: types, non-null and unique keys, ranges, mask shapes).
* `declared_columns` on each table with rules in `quality.tables` (not-null, unique, accepted values,
  range, regex).

Grain: one evaluation per table per partition (the day for daily tables, the whole table for the
dimensions); a run over several days judges each day and records one evaluation for the range, failed
when a day failed, naming it (`assets/day_range.py`). Each validates every row of the committed
partition, read from its files one record batch of `quality.schema_batch_rows` rows at a time into
pandas (uniqueness over the key columns of the whole partition, the only columns read whole), and
reports the failing-row counts
per column and rule and at most five failing rows, PII columns shown as `***`. Severity comes from
`quality.checks.<name>.severity` (and `quality.tables.<table>.severity`); an `error` check is
blocking, so its asset's downstream assets do not run in the same run when it fails.
"""

import warnings
from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from lake_assets.assets.day_range import each_day_check
from lake_assets.assets.fact_partitions import FACT_KEY, delivered_dataset, delivered_filter
from lake_assets.assets.partitions import daily_partitions
from lake_assets.assets.reconciliation import build_reconciliation_checks
from lake_assets.checks.declared_rules import declared_rules
from lake_assets.checks.layer_rules import built_in_rules
from lake_assets.checks.table_rules import Outcome, TableRules, validate
from lake_assets.config import PipelineConfig
from lake_assets.resources.lake_storage import LakeDataNotFound, LakeStorage

SCHEMA_CHECK = "schema"
DECLARED_CHECK = "declared_columns"
_DESCRIPTIONS = {
    SCHEMA_CHECK: "Built-in column rules (types, non-null and unique keys, ranges, mask shapes), every row",
    DECLARED_CHECK: "Column rules declared in quality.tables (not-null, unique, accepted values, range, regex)",
}


def _metadata(outcome: Outcome, partition: str | None, severity: str) -> dict[str, str | int | MetadataValue]:
    metadata: dict[str, str | int | MetadataValue] = {
        "partition": partition or "whole table",
        "rows_checked": outcome.rows,
        "failures": outcome.summary(),
        "severity": severity,
    }
    if outcome.sample:
        metadata["failing_rows_sample"] = MetadataValue.json(outcome.sample)
    return metadata


def _table_check(config: PipelineConfig, table: str, name: str, rules: TableRules) -> AssetChecksDefinition:
    key = table.split("/")
    partitioned = not (key[0] == "curated" and key[1] != "fact_sales")
    severity = config.quality.severity(name, table)
    described = f"{_DESCRIPTIONS[name]}; {severity}{' (blocking)' if severity == 'error' else ''}."

    # A daily table's check is evaluated per day; partitions on checks are a Dagster preview feature,
    # chosen deliberately (docs/quality.md), so its warning is not repeated on every code-location load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return asset_check(
            asset=AssetKey(key),
            name=name,
            blocking=severity == "error",
            description=described,
            partitions_def=daily_partitions(config) if partitioned else None,
        )(_check_function(key, partitioned, rules, severity, config.quality.schema_batch_rows))


def _check_function(
    key: list[str], partitioned: bool, rules: TableRules, severity: str, batch_rows: int
) -> Callable[[AssetCheckExecutionContext, LakeStorage], AssetCheckResult]:
    dagster_severity = AssetCheckSeverity.ERROR if severity == "error" else AssetCheckSeverity.WARN

    def _check(context: AssetCheckExecutionContext, lake: LakeStorage) -> AssetCheckResult:
        if partitioned:
            return each_day_check(context, lambda day: _judge(lake, day))
        return _judge(lake, None)

    def _judge(lake: LakeStorage, partition: str | None) -> AssetCheckResult:
        try:
            # curated/fact_sales is partitioned by sale date: its run day's rows are those it delivered.
            if key == FACT_KEY and partition:
                data, row_filter = delivered_dataset(lake, partition), delivered_filter(partition)
            else:
                data, row_filter = lake.read_dataset(key, partition), None
        except LakeDataNotFound as exc:
            return AssetCheckResult(passed=False, severity=dagster_severity,
                                    metadata={"partition": partition or "whole table", "error": str(exc)})
        outcome = validate(data, rules, batch_rows=batch_rows, row_filter=row_filter)
        return AssetCheckResult(passed=outcome.passed, severity=dagster_severity,
                                metadata=_metadata(outcome, partition, severity))

    return _check


def build_quality_checks(config: PipelineConfig) -> list[AssetChecksDefinition]:
    """Every standalone check: `schema` on each processed/masked/curated table, the declared checks,
    the reconciliations and row counts (`lake_assets/assets/reconciliation.py`)."""
    built_in, declared = built_in_rules(config), declared_rules(config.quality)
    return [
        *(_table_check(config, table, SCHEMA_CHECK, rules) for table, rules in built_in.items()),
        *(_table_check(config, table, DECLARED_CHECK, rules) for table, rules in declared.items()),
        *build_reconciliation_checks(config),
    ]
