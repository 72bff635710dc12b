"""Dagster's own freshness and column-schema change checks on the lake and warehouse assets.

* `freshness_check` (one multi-asset check per layer: raw, processed, masked, curated, warehouse):
  every asset of the layer was updated (any partition) at most `quality.freshness.max_age_hours[layer]`
  before the latest `deadline_cron` tick (in `schedule.timezone`); with no deadline, before the
  moment of evaluation. Evaluated by the `freshness_checks_sensor`, so a day whose run never came is
  reported without any run.
* `column_schema_change` on every raw asset: compares the `dagster/column_schema` metadata of its two
  latest materializations, so a delivered column that appears, disappears or changes type is reported.

Severity from `quality.freshness.severity` and `quality.schema_change.severity` (warn by default);
neither is blocking: a late or reshaped delivery is worth a look, not a stop.

Dagster marks these freshness builders superseded by `FreshnessPolicy`; they are used on purpose: a
policy is judged by the daemon as asset health, not as an asset check, so it would not appear in the
Checks tab, the run report, the quality score or `lake-quality-report`. The warnings are silenced here.
"""

import warnings
from collections.abc import Sequence
from datetime import timedelta

from dagster import (
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetsDefinition,
    BetaWarning,
    DefaultSensorStatus,
    SensorDefinition,
    SupersessionWarning,
    build_column_schema_change_checks,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
)

from lake_assets.config import FRESHNESS_LAYERS, PipelineConfig, Severity

FRESHNESS_SENSOR_NAME = "freshness_checks_sensor"


def _severity(severity: Severity) -> AssetCheckSeverity:
    return AssetCheckSeverity.ERROR if severity == "error" else AssetCheckSeverity.WARN


def _keys(assets: Sequence[AssetsDefinition], layer: str) -> list[AssetKey]:
    return sorted({key for a in assets for key in a.keys if key.path[0] == layer}, key=lambda k: k.to_user_string())


def build_freshness_checks(config: PipelineConfig, assets: Sequence[AssetsDefinition]) -> list[AssetChecksDefinition]:
    """One last-update freshness check per layer that has assets."""
    settings = config.quality.freshness
    checks: list[AssetChecksDefinition] = []
    for layer in FRESHNESS_LAYERS:
        keys = _keys(assets, layer)
        if keys:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SupersessionWarning)
                checks.extend(build_last_update_freshness_checks(
                    assets=keys, lower_bound_delta=timedelta(hours=settings.max_age_hours[layer]),
                    deadline_cron=settings.deadline_cron, timezone=config.schedule.timezone,
                    severity=_severity(settings.severity),
                ))
    return checks


def build_freshness_sensor(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    """Evaluates the freshness checks when one may have changed state (Dagster's own sensor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_sensor_for_freshness_checks(
            freshness_checks=checks, name=FRESHNESS_SENSOR_NAME, default_status=DefaultSensorStatus.RUNNING
        )


def build_schema_change_checks(
    config: PipelineConfig, assets: Sequence[AssetsDefinition]
) -> list[AssetChecksDefinition]:
    """`column_schema_change` on every raw asset (they record `dagster/column_schema` when materialized)."""
    keys = _keys(assets, "raw")
    if not keys:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return list(build_column_schema_change_checks(
            assets=keys, severity=_severity(config.quality.schema_change.severity)))
