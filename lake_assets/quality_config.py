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
```
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lake_assets.entities import ENTITY_NAMES

Severity = Literal["error", "warn"]
STAR_TABLES = ("dim_customer", "dim_product", "dim_location", "dim_date", "fact_sales")
CHECKABLE_TABLES = (
    *(f"{layer}/{entity}" for layer in ("processed", "masked") for entity in sorted(ENTITY_NAMES)),
    *(f"curated/{table}" for table in STAR_TABLES),
)
# Default severity of each configurable check; ERROR checks are blocking.
CHECK_DEFAULTS: dict[str, Severity] = {"schema": "error", "declared_columns": "error"}


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


class QualityConfig(_Strict):
    checks: dict[str, CheckSettings] = Field(default_factory=dict)
    tables: dict[str, TableQuality] = Field(default_factory=dict)

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: dict[str, CheckSettings]) -> dict[str, CheckSettings]:
        unknown = sorted(set(value) - set(CHECK_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; configurable: {', '.join(CHECK_DEFAULTS)}")
        return value

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, TableQuality]) -> dict[str, TableQuality]:
        unknown = sorted(set(value) - set(CHECKABLE_TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; checkable: {', '.join(CHECKABLE_TABLES)}")
        return value

    def severity(self, check: str, table: str | None = None) -> Severity:
        """The configured severity of `check` (on `table`, for declared rules), else its default."""
        declared = self.tables.get(table) if table and check == "declared_columns" else None
        if declared and declared.severity:
            return declared.severity
        settings = self.checks.get(check)
        return settings.severity if settings and settings.severity else CHECK_DEFAULTS[check]
