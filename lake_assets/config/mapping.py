"""How a table feeds an entity: column renames, generated keys, value rules and `also_feeds`, shared
by source tables (sources.py) and derived tables (derived.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from lake_assets.config.base import IDENTIFIER, StrictModel
from lake_assets.entities import ENTITIES, ENTITY_NAMES

GENERATED_FILE_ROW = "file_row"


class GeneratedKeyConfig(StrictModel):
    """An entity column built from several source columns (a composite natural key)."""

    from_: list[str] = Field(alias="from", min_length=1, description="source columns, joined in this order")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("source column names must not be blank")
        return value


class AlsoFeedsConfig(StrictModel):
    """Another entity whose attributes the same source rows carry (e.g. the product of a sale line)."""

    entity: str
    columns: dict[str, str] = Field(min_length=1, description="source column (or nested path) -> entity column")

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str) -> str:
        if value not in ENTITY_NAMES:
            raise ValueError(f"must be one of {sorted(ENTITY_NAMES)}, got {value!r}")
        return value


class MappedTable(StrictModel):
    """A table feeding the processed layer (a source table or a derived one): its asset name, the entity
    it feeds and how to map it.

    Mapping rules (applied by the processed layer, see spark/mapping_rules.py and docs/reference.md):
    `generate` builds entity columns the export does not have (a composite key, or file + row number),
    `decimal_separator` / `scale` / `value_map` / `timestamp_units` rewrite values of entity columns
    before they are typed, a `columns` key with a dot (`product.id`) reads a field of a nested JSON
    object, and `also_feeds` lets the same rows feed further entities.
    """

    # Whether rows come from a file with row numbers (the `file_row` generated key needs them).
    has_file_rows: ClassVar[bool] = False

    name: str
    entity: str | None
    columns: dict[str, str] = Field(
        default_factory=dict, description="source column (or nested path `object.field`) -> entity column"
    )
    key: list[str] = Field(
        default_factory=list,
        description="source columns identifying a record; default: the `from` columns of a generated entity "
        "key, else the entity key via `columns`",
    )
    generate: dict[str, GeneratedKeyConfig | Literal["file_row"]] = Field(
        default_factory=dict, description="entity column -> {from: [source columns]} or file_row"
    )
    scale: dict[str, Decimal] = Field(default_factory=dict, description="entity column -> factor, e.g. 0.01")
    value_map: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="entity column -> {delivered value: value}"
    )
    timestamp_units: dict[str, Literal["seconds", "milliseconds"]] = Field(
        default_factory=dict, description="entity column -> unit of a Unix timestamp"
    )
    decimal_separator: Literal[".", ","] = Field(
        default=".", description="the decimal mark of the table's numbers: `,` for `2,50` and `1.234,50`"
    )
    also_feeds: list[AlsoFeedsConfig] = Field(default_factory=list)

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str | None) -> str | None:
        if value is not None and value not in ENTITY_NAMES:
            raise ValueError(f"must be one of {sorted(ENTITY_NAMES)}, got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _table_identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value

    @field_validator("scale", mode="before")
    @classmethod
    def _exact_factors(cls, value: Any) -> Any:
        """YAML reads 0.01 as a float; its shortest text is the decimal the user wrote."""
        if not isinstance(value, dict):
            return value
        factors: dict[str, Any] = {}
        for column, factor in value.items():
            if isinstance(factor, bool) or not isinstance(factor, int | float | str | Decimal):
                raise ValueError(f"scale.{column} must be a number such as 0.01, got {factor!r}")
            try:
                exact = Decimal(str(factor).strip())
            except InvalidOperation:
                raise ValueError(f"scale.{column} must be a number such as 0.01, got {factor!r}") from None
            if not exact.is_finite() or exact <= 0:
                raise ValueError(f"scale.{column} must be a positive number, got {factor!r}")
            factors[column] = exact
        return factors

    @field_validator("value_map", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        """YAML reads `1: 01` or `yes: Y` as numbers/booleans; values are compared and written as text."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for column, pairs in value.items():
            if not isinstance(pairs, dict) or not pairs:
                raise ValueError(f"value_map.{column} must map delivered values to values")
            texts = {}
            for old, new in pairs.items():
                if new is None or old is None:
                    raise ValueError(f"value_map.{column}: {old!r}: {new!r}: both sides must be values")
                texts[_yaml_text(old).strip()] = _yaml_text(new)
            out[column] = texts
        return out

    @model_validator(mode="before")
    @classmethod
    def _key_defaults_to_generated_parts(cls, data: Any) -> Any:
        """A generated entity key's `from` columns identify a record, for ingestion too, unless `key` says
        otherwise: one meaning of `key`, no second list to keep in step."""
        if not isinstance(data, dict) or data.get("key") or not isinstance(data.get("generate"), dict):
            return data
        entity = ENTITIES.get(data.get("entity", ""))
        for column, rule in data["generate"].items():
            if entity is not None and column in entity.key and isinstance(rule, dict) and rule.get("from"):
                return {**data, "key": list(rule["from"])}
        return data

    @model_validator(mode="after")
    def _mapping_rules_name_entity_columns(self) -> MappedTable:
        if self.entity is None:
            rules = [o for o in ("generate", "scale", "value_map", "timestamp_units", "also_feeds") if getattr(self, o)]
            if rules:
                raise ValueError(f"{', '.join(rules)}: mapping rules need an 'entity' to map to")
            return self
        main = ENTITIES[self.entity]
        feeds = {self.entity: main.columns}
        for i, feed in enumerate(self.also_feeds):
            if feed.entity in feeds:
                raise ValueError(f"also_feeds[{i}].entity: {feed.entity!r} is already fed by this table")
            feeds[feed.entity] = ENTITIES[feed.entity].columns
            # Names outside the entity's columns may be extra columns declared under `entities:`:
            # PipelineConfig._mapping_rules_name_declared_columns checks them against those.
            unmapped = [c for c in ENTITIES[feed.entity].key if c not in feed.columns.values()]
            if unmapped:
                raise ValueError(
                    f"also_feeds[{i}].columns: nothing maps to {feed.entity}'s key {unmapped}; "
                    "map the source column that holds it"
                )
        types: dict[str, set[str]] = {}
        for columns in feeds.values():
            for column, spark_type in columns.items():
                types.setdefault(column, set()).add(spark_type)
        for column, rule in self.generate.items():
            if column not in main.columns:
                raise ValueError(f"generate.{column}: not a column of {self.entity}; its columns are "
                                 f"{list(main.columns)}")
            if column in self.columns.values():
                raise ValueError(f"generate.{column}: also mapped from a source column in `columns`; keep one")
            if rule == GENERATED_FILE_ROW and not self.has_file_rows:
                raise ValueError(f"generate.{column}: file_row needs a file source (a file and its row numbers)")
        for option, allowed in (("scale", NUMERIC_TYPES), ("timestamp_units", ("timestamp", "date")),
                                ("value_map", None)):
            for column in getattr(self, option):
                if column not in types:
                    continue  # perhaps a declared extra column: checked by PipelineConfig
                if allowed and not any(t in allowed or t.startswith("decimal") for t in types[column]):
                    kinds = "a number" if option == "scale" else "a timestamp or date"
                    raise ValueError(f"{option}.{column}: {column} is {'/'.join(sorted(types[column]))}, "
                                     f"not {kinds}")
        for source in [*self.columns, *(k for f in self.also_feeds for k in f.columns)]:
            if "." in source and any(not part.strip() for part in source.split(".")):
                raise ValueError(f"columns: {source!r}: a nested path is object.field[.field...] without "
                                 "empty parts")
        return self

    def feeds(self) -> list[Self]:
        """This table as it feeds each entity: itself, then one view per `also_feeds` entry (same name,
        hence the same raw asset; that entity and its `columns`; no generated keys)."""
        views = [
            self.model_copy(update={"entity": feed.entity, "columns": dict(feed.columns), "generate": {},
                                    "also_feeds": []})
            for feed in self.also_feeds
        ]
        return [self, *views]

    def derived_columns(self) -> set[str]:
        """Entity columns of this table's entity built by a mapping rule rather than read from one
        delivered column: generated keys and nested paths."""
        return set(self.generate) | {target for source, target in self.columns.items() if "." in source}


NUMERIC_TYPES = ("int", "bigint", "smallint", "long", "double", "float")


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
