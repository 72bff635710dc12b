"""The `quality:` section of the pipeline config: check severities and declared per-column rules.

```yaml
quality:
  checks:                       # per check name, for every asset that has that check
    schema: {severity: warn}    # error (default: blocks downstream assets) or warn (reports only)
  tables:                       # declared rules, checked by `declared_columns` on that table
    processed/customer:
      severity: warn            # overrides quality.checks.declared_columns for this table
      columns:
        segment: {accepted_values: [consumer, corporate, home_office]}
        email: {not_null: true, unique: true}
    curated/fact_sales:
      columns:
        quantity: {min: -1000, max: 1000}
  row_count:                    # the `row_count` check (warn by default)
    tables: [processed/sale, curated/fact_sales]
    min_rows: 1
    tolerance: 0.5              # at most 50 % change from the previous committed day; unset: not compared
    upstream_tolerance: 0.5     # at most 50 % off the same day of the layer upstream; unset: not compared
  freshness:                    # Dagster's last-update freshness checks, one per layer (evaluated by a sensor)
    severity: warn
    deadline_cron: "0 6 * * *"  # by when each day's update is due (schedule.timezone)
    max_age_hours: {raw: 24, processed: 24, masked: 24, curated: 24, warehouse: 24}
  schema_change: {severity: warn}   # Dagster's column-schema change checks on the raw assets
  schema_batch_rows: 100000     # rows validated at a time by `schema` and `declared_columns`
```
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lake_assets.config.base import require_known
from lake_assets.cron import checked_cron
from lake_assets.entities import ENTITY_NAMES

Severity = Literal["error", "warn"]
STAR_TABLES = ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales")
CHECKABLE_TABLES = (
    *(f"{layer}/{entity}" for layer in ("processed", "masked") for entity in sorted(ENTITY_NAMES)),
    *(f"curated/{table}" for table in STAR_TABLES),
)
# Default severity of each configurable check; ERROR checks are blocking.
CHECK_DEFAULTS: dict[str, Severity] = {
    "schema": "error",
    "declared_columns": "error",
    "reconciles_with_masked": "error",
    "reconciles_with_curated": "error",
    "row_count": "warn",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSettings(_Strict):
    severity: Severity | None = Field(default=None, description="error (blocking) or warn")


class ColumnQuality(_Strict):
    not_null: bool = False
    unique: bool = False
    accepted_values: list[str | int | Decimal | bool] | None = Field(default=None, min_length=1)
    min: Decimal | None = Field(default=None, description="inclusive lower bound")
    max: Decimal | None = Field(default=None, description="inclusive upper bound")
    regex: str | None = Field(default=None, description="must match the whole value")

    @model_validator(mode="after")
    def _something_to_check(self) -> ColumnQuality:
        if not (self.not_null or self.unique or self.accepted_values or self.regex
                or self.min is not None or self.max is not None):
            raise ValueError("declares no rule (not_null, unique, accepted_values, min, max, regex)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class TableQuality(_Strict):
    severity: Severity | None = None
    columns: dict[str, ColumnQuality] = Field(min_length=1)


class RowCountQuality(_Strict):
    tables: list[str] = Field(
        default_factory=lambda: ["processed/sale", "curated/fact_sales"],
        description="daily tables whose row count is checked",
    )
    min_rows: int = Field(default=1, ge=0, description="fewer rows in a day fail the check")
    tolerance: float | None = Field(
        default=None, gt=0, description="largest relative change from the previous committed day (0.5 = 50 %)"
    )
    upstream_tolerance: float | None = Field(
        default=None, gt=0,
        description="largest relative difference from the same day of the layer upstream (0.5 = 50 %)",
    )

    @field_validator("tables")
    @classmethod
    def _daily_tables(cls, value: list[str]) -> list[str]:
        daily = [t for t in CHECKABLE_TABLES if not t.startswith("curated/dim_")]
        require_known(value, daily, "or undated table(s)", "daily tables")
        return value


FRESHNESS_LAYERS = ("raw", "processed", "masked", "curated", "warehouse")


def _day_of_hours() -> dict[str, float]:
    return dict.fromkeys(FRESHNESS_LAYERS, 24.0)


class FreshnessQuality(_Strict):
    """Defaults fit the daily 02:00 run (at most 3 h): by 06:00 every layer was updated in the last 24 h."""

    severity: Severity = "warn"
    deadline_cron: str | None = Field(
        default="0 6 * * *",
        description="when each update is due, in schedule.timezone; unset: the time the check is evaluated",
    )
    max_age_hours: dict[str, float] = Field(
        default_factory=_day_of_hours,
        description="per layer: the last update must be at most this old at the deadline",
    )

    @field_validator("deadline_cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else checked_cron(value, "0 6 * * *")

    @field_validator("max_age_hours")
    @classmethod
    def _known_layers(cls, value: dict[str, float]) -> dict[str, float]:
        require_known(value, FRESHNESS_LAYERS, "layer(s)", "layers")
        if any(hours <= 0 for hours in value.values()):
            raise ValueError("max_age_hours must be positive")
        # A layer left out keeps its default.
        return _day_of_hours() | value


class SchemaChangeQuality(_Strict):
    severity: Severity = "warn"


class QualityConfig(_Strict):
    checks: dict[str, CheckSettings] = Field(default_factory=dict)
    tables: dict[str, TableQuality] = Field(default_factory=dict)
    row_count: RowCountQuality = Field(default_factory=RowCountQuality)
    freshness: FreshnessQuality = Field(default_factory=FreshnessQuality)
    schema_change: SchemaChangeQuality = Field(default_factory=SchemaChangeQuality)
    schema_batch_rows: int = Field(
        default=100_000, ge=1, description="rows the column-rule checks hold in pandas at a time"
    )

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: dict[str, CheckSettings]) -> dict[str, CheckSettings]:
        require_known(value, CHECK_DEFAULTS, "check(s)", "configurable")
        return value

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, TableQuality]) -> dict[str, TableQuality]:
        require_known(value, CHECKABLE_TABLES, "table(s)", "checkable")
        return value

    def severity(self, check: str, table: str | None = None) -> Severity:
        """The configured severity of `check` (on `table`, for declared rules), else its default."""
        declared = self.tables.get(table) if table and check == "declared_columns" else None
        if declared and declared.severity:
            return declared.severity
        settings = self.checks.get(check)
        return settings.severity if settings and settings.severity else CHECK_DEFAULTS[check]
