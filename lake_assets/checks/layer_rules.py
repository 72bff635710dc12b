"""The built-in column rules of the lake tables (the `schema` check of each), from the entity contract.

* `processed/<entity>`: every entity column has its contract type; required columns are never null;
  one row per `dedup_key` (key, plus `updated_at` for entities that keep versions).
* `masked/<entity>`: the same, plus the shape each masking technique leaves (`hmac_sha256` -> 64 hex
  characters, `last4` -> at most four digits, `tokenize` -> `tok_<letters>[_<4 digits>]`, `redact` ->
  `[REDACTED]`), so a value
  that slipped through unmasked fails here, before curated.
* `curated/*`: types, non-null and unique surrogate keys, non-null natural keys and SCD2 columns;
  `fact_sales`: `date_key` a real `yyyymmdd` day, prices and discounts not negative, a discount
  rate between 0 and 1; `dim_date`: calendar ranges.

Quantities may be negative (returns, cancellations) and are not ranged here; declare a range in
`quality.tables` where a source never sends returns.
"""

from __future__ import annotations

import re

import pyarrow as pa

from lake_assets.checks.table_rules import ColumnRule, TableRules
from lake_assets.config import PipelineConfig
from lake_assets.entities import EntitySchema, entity_schemas

_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_SIMPLE = {
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
# What each technique leaves, as a full-match regex (absent: no fixed shape, e.g. postal prefixes).
MASK_SHAPES = {
    "hmac_sha256": "[0-9a-f]{64}",
    "sha256": "[0-9a-f]{64}",
    "md5": "[0-9a-f]{32}",
    "last4": r"\D*(?:\d\D*){0,4}",
    "tokenize": "tok_[a-p]+(?:_[0-9]{4})?",
    "redact": r"\[REDACTED\]",
}
# Columns whose values never leave the lake in a check's sample, whatever the layer.
PII_COLUMNS = frozenset({"email", "phone", "ssn", "card_number", "payment_token", "street_address",
                         "first_name", "last_name", "postal_code"})
SCD2_COLUMNS = {"version": pa.int32(), "valid_from": pa.timestamp("us", tz="UTC"),
                "valid_to": pa.timestamp("us", tz="UTC"), "is_current": pa.bool_()}
FIRST_DAY, LAST_DAY = 19000101, 99991231


def arrow_type(spark_type: str) -> pa.DataType:
    """The Arrow type the lake stores for a contract type name (`decimal(12,2)` -> decimal128(12, 2))."""
    match = _DECIMAL.fullmatch(spark_type.strip())
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    return _SIMPLE[spark_type.strip()]


def _entity_rules(schema: EntitySchema, masks: dict[str, str] | None) -> TableRules:
    columns = {
        name: ColumnRule(
            dtype=arrow_type(spark_type),
            not_null=name in schema.required,
            required=name not in schema.extras,
            regex=MASK_SHAPES.get((masks or {}).get(name, "")),
        )
        for name, spark_type in schema.columns.items()
    }
    if schema.name == "sale":
        columns["unit_price"] = ColumnRule(dtype=pa.decimal128(12, 2), not_null=True, min=0)
        columns["discount"] = ColumnRule(dtype=pa.decimal128(12, 2), min=0)
        columns["discount_rate"] = ColumnRule(dtype=pa.decimal128(9, 6), min=0, max=1)
    return TableRules(columns=columns, unique_together=schema.dedup_key, pii_columns=PII_COLUMNS)


def _dimension(key: str, natural_key: str, scd2: bool) -> TableRules:
    columns = {
        key: ColumnRule(dtype=pa.int64(), not_null=True, unique=True),
        natural_key: ColumnRule(dtype=pa.string(), not_null=True),
        "is_inferred": ColumnRule(dtype=pa.bool_(), not_null=True),
    }
    if scd2:
        columns |= {name: ColumnRule(dtype=kind, not_null=True) for name, kind in SCD2_COLUMNS.items()}
        columns["version"] = ColumnRule(dtype=pa.int32(), not_null=True, min=0)
    return TableRules(columns=columns, pii_columns=PII_COLUMNS)


def _fact_sales() -> TableRules:
    money = pa.decimal128(12, 2)
    return TableRules(
        columns={
            "sale_line_id": ColumnRule(dtype=pa.string(), not_null=True, unique=True),
            "date_key": ColumnRule(dtype=pa.int32(), not_null=True, min=FIRST_DAY, max=LAST_DAY),
            **{k: ColumnRule(dtype=pa.int64(), not_null=True) for k in ("customer_key", "product_key", "location_key")},
            "quantity": ColumnRule(dtype=pa.int32(), not_null=True),
            "unit_price": ColumnRule(dtype=money, not_null=True, min=0),
            "discount": ColumnRule(dtype=money, not_null=True, min=0),
            "discount_rate": ColumnRule(dtype=pa.decimal128(9, 6), not_null=True, min=0, max=1),
            "gross_amount": ColumnRule(dtype=pa.decimal128(14, 2), not_null=True),
            "net_amount": ColumnRule(dtype=pa.decimal128(14, 2), not_null=True),
        },
        pii_columns=PII_COLUMNS,
    )


def _dim_date() -> TableRules:
    def day_part(low: int, high: int) -> ColumnRule:
        return ColumnRule(dtype=pa.int32(), not_null=True, min=low, max=high)

    return TableRules(columns={
        "date_key": ColumnRule(dtype=pa.int32(), not_null=True, unique=True, min=FIRST_DAY, max=LAST_DAY),
        "full_date": ColumnRule(dtype=pa.date32(), not_null=True, unique=True),
        "day_of_month": day_part(1, 31),
        "day_of_week": day_part(1, 7),
        "month": day_part(1, 12),
        "quarter": day_part(1, 4),
        "iso_week": day_part(1, 53),
        "fiscal_month": day_part(1, 12),
        "fiscal_quarter": day_part(1, 4),
    })


def built_in_rules(config: PipelineConfig) -> dict[str, TableRules]:
    """Layer table (`processed/sale`) -> its built-in rules."""
    rules: dict[str, TableRules] = {}
    for name, schema in entity_schemas(config).items():
        rules[f"processed/{name}"] = _entity_rules(schema, None)
        rules[f"masked/{name}"] = _entity_rules(schema, config.mask_rules_for(name))
    rules["curated/dim_customer"] = _dimension("customer_key", "customer_id", scd2=True)
    rules["curated/dim_product"] = _dimension("product_key", "product_id", scd2=True)
    rules["curated/dim_location"] = _dimension("location_key", "location_id", scd2=False)
    rules["curated/dim_date"] = _dim_date()
    rules["curated/fact_sales"] = _fact_sales()
    return rules
