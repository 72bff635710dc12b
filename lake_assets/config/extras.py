"""Columns of the configuration's own (`entities:`): dimension attributes, fact measures and degenerate
dimensions, their types, masking and SCD behaviour."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lake_assets.config.base import StrictModel
from lake_assets.config.masking import MaskTechnique
from lake_assets.config.star_schema import SCD2_ENTITIES
from lake_assets.entities import ENTITIES

_EXTRA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_EXTRA_TYPE = re.compile(r"^(string|int|bigint|double|date|timestamp|boolean|decimal\(\s*(\d+)\s*,\s*(\d+)\s*\))$")
_NUMERIC_TYPE = re.compile(r"^(int|bigint|double|decimal\(\d+,\d+\))$")
EXTRA_TYPES = "string, int, bigint, decimal(p,s), double, date, timestamp, boolean"
# Columns the star schema itself adds to each entity's table: an extra column may not take their names.
_STAR_COLUMNS = {
    "customer": ("customer_key", "version", "valid_from", "valid_to", "is_current", "is_deleted", "is_inferred",
                 "row_hash"),
    "product": ("product_key", "version", "valid_from", "valid_to", "is_current", "is_deleted", "is_inferred",
                "row_hash"),
    "location": ("location_key", "is_inferred"),
    "sale": ("date_key", "customer_key", "product_key", "location_key", "gross_amount", "net_amount",
             "payment_token", "ingest_date"),
}


def _extra_type(value: str) -> str:
    """A type of the closed list, normalized (`decimal(12, 2)` -> `decimal(12,2)`)."""
    match = _EXTRA_TYPE.match(str(value).strip().lower())
    if not match:
        raise ValueError(f"type {value!r} is not one of {EXTRA_TYPES}")
    if match.group(2) is None:
        return match.group(1)
    precision, scale = int(match.group(2)), int(match.group(3))
    if not 1 <= precision <= 38 or scale > precision:
        raise ValueError(f"type {value!r}: decimal(p,s) needs 1 <= p <= 38 and s <= p")
    return f"decimal({precision},{scale})"


class ExtraAttributeConfig(StrictModel):
    """A dimension attribute of the configuration's own: its type, masking and SCD behaviour."""

    type: str = Field(description=EXTRA_TYPES)
    mask: MaskTechnique | None = Field(default=None, description="a masking technique, or keep (required)")
    scd: Literal[1, 2] | None = Field(default=None, description="1: overwritten; 2: versioned (customer/product "
                                      "default 2; location is SCD1 only)")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _extra_type(value)

    @model_validator(mode="after")
    def _mask_given(self) -> ExtraAttributeConfig:
        if self.mask is None:
            raise ValueError("needs 'mask': a masking technique of masking.columns, or keep to load it as delivered")
        if self.type != "string" and self.mask != "keep":
            raise ValueError(f"mask {self.mask!r} turns values into text; a {self.type} column can only be 'keep'")
        return self


class ExtraFactColumnConfig(StrictModel):
    """A degenerate dimension of the fact (order status, payment method): its type and optional masking."""

    type: str = Field(description=EXTRA_TYPES)
    mask: MaskTechnique | None = Field(default=None, description="absent: scanned for PII like any column")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _extra_type(value)

    @model_validator(mode="after")
    def _text_mask(self) -> ExtraFactColumnConfig:
        if self.mask not in (None, "keep") and self.type != "string":
            raise ValueError(f"mask {self.mask!r} turns values into text; a {self.type} column can only be 'keep'")
        return self


class DimensionExtrasConfig(StrictModel):
    attributes: dict[str, ExtraAttributeConfig] = Field(default_factory=dict)


class SaleExtrasConfig(StrictModel):
    measures: dict[str, str] = Field(default_factory=dict, description="name -> numeric type; summed in the views")
    degenerate: dict[str, ExtraFactColumnConfig] = Field(
        default_factory=dict, description="name -> type, or {type, mask}; kept on the fact row"
    )

    @field_validator("measures")
    @classmethod
    def _numeric(cls, value: dict[str, str]) -> dict[str, str]:
        typed = {}
        for name, kind in value.items():
            typed[name] = _extra_type(kind)
            if not _NUMERIC_TYPE.match(typed[name]):
                raise ValueError(f"measure {name}: type {kind!r} is not a number (int, bigint, decimal(p,s), double)")
        return typed

    @field_validator("degenerate", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


class EntitiesConfig(StrictModel):
    """Columns of the configuration's own, per entity (see docs/reference.md, "Your own columns")."""

    customer: DimensionExtrasConfig = Field(default_factory=DimensionExtrasConfig)
    product: DimensionExtrasConfig = Field(default_factory=DimensionExtrasConfig)
    location: DimensionExtrasConfig = Field(default_factory=DimensionExtrasConfig)
    sale: SaleExtrasConfig = Field(default_factory=SaleExtrasConfig)

    @model_validator(mode="after")
    def _names(self) -> EntitiesConfig:
        for entity in ENTITIES:
            taken = {*ENTITIES[entity].columns, *_STAR_COLUMNS[entity]}
            for group, names in self._groups(entity).items():
                for name in names:
                    key = f"{entity}.{group}.{name}"
                    if not _EXTRA_NAME.match(name):
                        raise ValueError(f"{key}: a column name is lowercase letters, digits and underscores, "
                                         "starting with a letter, at most 63 characters")
                    if name in taken:
                        raise ValueError(f"{key}: {entity} already has a column {name!r}; map the source column "
                                         f"to it in sources[].tables[].columns, or choose another name")
                    taken.add(name)
        for name, attribute in self.location.attributes.items():
            if attribute.scd == 2:
                raise ValueError(f"location.attributes.{name}: scd 2 is not available, dim_location is SCD Type 1")
        return self

    def _groups(self, entity: str) -> dict[str, list[str]]:
        if entity == "sale":
            return {"measures": list(self.sale.measures), "degenerate": list(self.sale.degenerate)}
        return {"attributes": list(getattr(self, entity).attributes)}

    def extra_columns(self, entity: str) -> dict[str, str]:
        """Extra column -> Spark type of one entity, in config order (sale: measures, then degenerate)."""
        if entity == "sale":
            return {**self.sale.measures, **{n: c.type for n, c in self.sale.degenerate.items()}}
        return {n: a.type for n, a in getattr(self, entity).attributes.items()}

    def mask_rules(self, entity: str) -> dict[str, str]:
        """Extra column -> masking technique (degenerate columns without `mask` have none)."""
        if entity == "sale":
            return {n: c.mask for n, c in self.sale.degenerate.items() if c.mask}
        return {n: a.mask for n, a in getattr(self, entity).attributes.items() if a.mask}

    def type1_attributes(self, entity: str) -> list[str]:
        """Extra attributes of an SCD2 dimension that are overwritten (scd: 1) rather than versioned."""
        if entity not in SCD2_ENTITIES:
            return []
        return [n for n, a in getattr(self, entity).attributes.items() if a.scd == 1]
