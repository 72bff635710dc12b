"""Canonical entities: the column contract between the raw layer and the star schema.

Every source table is mapped (by renames in config) onto one of these entities. A column type here is
a Spark SQL type name; `key` is the natural key used for de-duplication; `cursor` orders versions of the
same key (the latest wins); `required` columns make a row unusable when they cannot be parsed, so such
rows go to quarantine instead of the processed layer.

The four entities are fixed; a configuration adds its own columns to them (`entities:` in the config:
dimension attributes, fact measures and degenerate dimensions). `entity_schema(config, name)` is the
entity with those extras appended, and every layer that needs an entity's columns takes it from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lake_assets.config import PipelineConfig


@dataclass(frozen=True)
class EntitySchema:
    name: str
    key: tuple[str, ...]
    cursor: str | None
    columns: dict[str, str]
    required: tuple[str, ...]
    lowercase: tuple[str, ...] = field(default_factory=tuple)
    uppercase: tuple[str, ...] = field(default_factory=tuple)
    digits_only: tuple[str, ...] = field(default_factory=tuple)
    # Keep distinct versions of one key (same key, different cursor) for SCD2 history; only exact
    # re-deliveries of one version are removed. When False, one row per key survives.
    keep_versions: bool = False
    # Columns added by the configuration (`entities.<name>`), in `columns` after the entity's own ones.
    extras: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dedup_key(self) -> tuple[str, ...]:
        return (*self.key, self.cursor) if self.keep_versions and self.cursor else self.key


CUSTOMER = EntitySchema(
    name="customer",
    key=("customer_id",),
    cursor="updated_at",
    columns={
        "customer_id": "string",
        "first_name": "string",
        "last_name": "string",
        "email": "string",
        "phone": "string",
        "ssn": "string",
        "street_address": "string",
        "city": "string",
        "region": "string",
        "postal_code": "string",
        "country": "string",
        "segment": "string",
        "updated_at": "timestamp",
    },
    required=("customer_id",),
    lowercase=("email",),
    uppercase=("country",),
    digits_only=("phone",),
    keep_versions=True,
)

PRODUCT = EntitySchema(
    name="product",
    key=("product_id",),
    cursor="updated_at",
    columns={
        "product_id": "string",
        "product_name": "string",
        "category": "string",
        "brand": "string",
        "list_price": "decimal(12,2)",
        "updated_at": "timestamp",
    },
    required=("product_id",),
    keep_versions=True,
)

LOCATION = EntitySchema(
    name="location",
    key=("location_id",),
    cursor=None,
    columns={
        "location_id": "string",
        "store_name": "string",
        "city": "string",
        "region": "string",
        "country": "string",
        "postal_code": "string",
    },
    required=("location_id",),
    uppercase=("country",),
)

SALE = EntitySchema(
    name="sale",
    key=("sale_line_id",),
    cursor="sold_at",
    columns={
        "sale_line_id": "string",
        "order_id": "string",
        "sold_at": "timestamp",
        "customer_id": "string",
        "product_id": "string",
        "location_id": "string",
        "quantity": "int",
        "unit_price": "decimal(12,2)",
        "discount": "decimal(12,2)",
        # A percentage discount as a rate (0.15 = 15 %), applied before the amount `discount`.
        "discount_rate": "decimal(9,6)",
        "card_number": "string",
    },
    required=("sale_line_id", "sold_at", "quantity", "unit_price"),
    digits_only=("card_number",),
)

ENTITIES: dict[str, EntitySchema] = {e.name: e for e in (CUSTOMER, PRODUCT, LOCATION, SALE)}
ENTITY_NAMES = frozenset(ENTITIES)


def entity_schema(config: PipelineConfig | None, name: str) -> EntitySchema:
    """The entity `name` with the extra columns the configuration declares for it (none without config)."""
    base = ENTITIES[name]
    if config is None:
        return base
    extras = config.entities.extra_columns(name)
    if not extras:
        return base
    return replace(base, columns={**base.columns, **extras}, extras=tuple(extras))


def entity_schemas(config: PipelineConfig | None) -> dict[str, EntitySchema]:
    """Every entity, with its configured extra columns, by name."""
    return {name: entity_schema(config, name) for name in ENTITIES}
