"""SCD2 behaviour of the dimensions and the fiscal calendar (`star_schema:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lake_assets.config.base import StrictModel
from lake_assets.entities import ENTITIES


class DimensionConfig(StrictModel):
    """SCD2 behaviour of one dimension (see docs/star_schema.md)."""

    type1_columns: list[str] = Field(default_factory=list, description="overwritten on every version")
    delete_policy: Literal["ignore", "close", "mark_deleted"] = "close"
    delete_detection: Literal["none", "snapshot"] = Field(
        default="none", description="snapshot: each day's delivery is complete; absent members are deleted"
    )
    type1_null_policy: Literal["keep_last_known", "overwrite"] = Field(
        default="keep_last_known",
        description="keep_last_known: a NULL never replaces a known Type-1 value; overwrite: the latest wins",
    )
    late_changes: Literal["apply", "ignore"] = Field(
        default="apply",
        description="a change dated at or before its member's latest version (a late record, a correction of "
        "history): apply splices it into history at its effective time and the fact resolves the affected "
        "sale dates again; ignore leaves history as it is. Either way what is not applied is counted and "
        "fails the WARN check no_late_changes_ignored",
    )


SCD2_ENTITIES = ("customer", "product")


class StarSchemaConfig(StrictModel):
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    dimensions: dict[Literal["customer", "product"], DimensionConfig] = Field(default_factory=dict)

    def dimension(self, entity: str) -> DimensionConfig:
        return self.dimensions.get(entity, DimensionConfig())  # type: ignore[call-overload]

    def unknown_type1_columns(self, entity: str, extras: set[str]) -> list[str]:
        """`type1_columns` of one dimension that are neither its entity's attributes nor in `extras`
        (the extra attributes declared under `entities:`; checked by PipelineConfig, which knows them)."""
        schema = ENTITIES[entity]
        attributes = (set(schema.columns) - set(schema.key) - {schema.cursor}) | extras
        return sorted(set(self.dimension(entity).type1_columns) - attributes)
