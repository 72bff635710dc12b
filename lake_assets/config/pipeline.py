"""The whole pipeline configuration (`PipelineConfig`): every section, and the checks that need more
than one section (derived SQL against the sources, rules against declared extra columns...)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from lake_assets.config.base import StrictModel, require_known
from lake_assets.config.derived import (
    DERIVED_SOURCE,
    DerivedSourceConfig,
    DerivedTableConfig,
    sql_references,
    view_name,
)
from lake_assets.config.extras import EntitiesConfig
from lake_assets.config.lake import DEFAULT_RETENTION_DAYS, LAKE_LAYERS, LakeConfig, SparkConfig
from lake_assets.config.mapping import NUMERIC_TYPES
from lake_assets.config.masking import MaskingConfig
from lake_assets.config.notifications import MonitoringConfig, NotifyConfig
from lake_assets.config.quality import QualityConfig
from lake_assets.config.schedule import BackupConfig, MaintenanceConfig, RetriesConfig, ScheduleConfig, SensorConfig
from lake_assets.config.sources import SourceConfig, SourceKindConfig, TableConfig
from lake_assets.config.standardize import StandardizeConfig
from lake_assets.config.star_schema import SCD2_ENTITIES, StarSchemaConfig
from lake_assets.config.warehouse import WarehouseConfig
from lake_assets.entities import ENTITIES

_OWNER = re.compile(r"^(team:[\w.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")


class CodeLinksConfig(StrictModel):
    """Where the UI's "view source" links of the assets point (docs/orchestration.md#asset-metadata)."""

    git_url: str = Field(default="", description="repository URL (https://github.com/<org>/<repo>); empty: "
                         "links to the local files")
    git_branch: str = Field(default="main", description="branch (or tag) the links open")


class PipelineConfig(StrictModel):
    """The whole pipeline configuration, validated."""

    start_date: date = Field(description="First daily partition")
    lake: LakeConfig
    warehouse: WarehouseConfig
    spark: SparkConfig = Field(default_factory=SparkConfig)
    sources: list[SourceConfig]
    derived: list[DerivedTableConfig] = Field(
        default_factory=list, description="tables computed with Spark SQL from raw tables of the same day"
    )
    masking: MaskingConfig
    standardize: StandardizeConfig = Field(default_factory=lambda: StandardizeConfig())
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    sensor: SensorConfig = Field(default_factory=SensorConfig)
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    star_schema: StarSchemaConfig = Field(default_factory=lambda: StarSchemaConfig())
    entities: EntitiesConfig = Field(default_factory=lambda: EntitiesConfig())
    retention_days: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_RETENTION_DAYS),
        description="days a daily partition is kept, per lake layer; layers left out keep their default",
    )
    maintenance: MaintenanceConfig = Field(default_factory=lambda: MaintenanceConfig())
    backups: BackupConfig = Field(default_factory=lambda: BackupConfig())
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="check severities and declared column rules (docs/quality.md)"
    )
    owners: list[str] = Field(
        default_factory=list, description="owners of every asset, shown in the UI: e-mail addresses or team:<name>"
    )
    code_links: CodeLinksConfig = Field(default_factory=lambda: CodeLinksConfig())

    @field_validator("owners")
    @classmethod
    def _owner_form(cls, value: list[str]) -> list[str]:
        bad = [owner for owner in value if not _OWNER.match(owner)]
        if bad:
            raise ValueError(f"not an e-mail address or team:<name>: {bad}")
        return value

    @field_validator("retention_days")
    @classmethod
    def _known_layers(cls, value: dict[str, int]) -> dict[str, int]:
        require_known(value, LAKE_LAYERS, "lake layer(s)", "layers")
        short = sorted(layer for layer, days in value.items() if days < 1)
        if short:
            raise ValueError(f"layer(s) {short}: retention must be at least 1 day")
        return {**DEFAULT_RETENTION_DAYS, **value}

    @model_validator(mode="after")
    def _orphans_outlive_a_run(self) -> PipelineConfig:
        if self.maintenance.orphan_min_age_hours * 3600 <= self.schedule.max_runtime_seconds:
            raise ValueError(
                f"maintenance.orphan_min_age_hours ({self.maintenance.orphan_min_age_hours}) must exceed the "
                f"longest run (schedule.max_runtime_seconds = {self.schedule.max_runtime_seconds}): files a "
                "running write has staged but not committed yet look like orphans"
            )
        return self

    # Config key (`warehouse.url`, `sources[0].url`) -> the environment variables its text referenced.
    _env_references: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    def env_variables(self, key: str) -> list[str]:
        """The environment variables the YAML value at `key` referenced (`${NAME}`), in order; empty
        for a literal value or a config not read by `load_config`."""
        return list(self._env_references.get(key, []))

    def fingerprint(self) -> str:
        """Text that is equal for two configs exactly when they read the same: every value and which
        environment variables each came from."""
        references = json.dumps(self._env_references, sort_keys=True)
        return f"{self.model_dump_json()}\n{references}"

    @model_validator(mode="after")
    def _unique_sources(self) -> PipelineConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} appears twice")
            seen.add(source.name)
        return self

    @model_validator(mode="after")
    def _derived_tables(self) -> PipelineConfig:
        """Every derived table reads only tables that exist; names are unique; no table is ingested
        for nothing (a source table without `entity` must be an input of some derived table)."""
        problems: list[str] = []
        if self.derived and any(s.name == DERIVED_SOURCE for s in self.sources):
            problems.append(f"source name {DERIVED_SOURCE!r} is reserved for derived tables "
                            f"(raw/{DERIVED_SOURCE}/<name>); rename the source")
        views: dict[str, str] = {}
        for source in self.sources:
            for table in source.tables:
                name = view_name(source.name, table.name)
                if name.lower() in views:
                    problems.append(f"{source.name}.{table.name} and {views[name.lower()].replace('__', '.', 1)} "
                                    f"are both {name} in derived SQL; rename one")
                views[name.lower()] = name
        used: set[str] = set()
        for index, derived in enumerate(self.derived):
            where = f"derived[{index}] ({derived.name})"
            earlier = [t.name for t in self.derived[:index]]
            if derived.name in earlier:
                problems.append(f"{where}: name {derived.name!r} appears twice in derived")
            found, issues = sql_references(derived.sql, views)
            if issues:
                known = ", ".join(sorted(views.values())) or "none"
                problems.append(f"{where}.sql: {'; '.join(dict.fromkeys(issues))}. Tables it can read: {known} "
                                f"(of the derived tables, those listed before it)")
            used.update(n.lower() for n in found)
            views[view_name(DERIVED_SOURCE, derived.name).lower()] = view_name(DERIVED_SOURCE, derived.name)
        for source in self.sources:
            for table in source.tables:
                if table.entity is None and view_name(source.name, table.name).lower() not in used:
                    problems.append(
                        f"sources: {source.name}.{table.name}: 'entity' is missing; a table that feeds no entity "
                        f"must be read by a derived table (derived[].sql naming {view_name(source.name, table.name)})"
                    )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    @property
    def derived_source(self) -> DerivedSourceConfig:
        return DerivedSourceConfig(tables=list(self.derived))

    def derived_inputs(self, table: DerivedTableConfig) -> list[tuple[SourceKindConfig | DerivedSourceConfig, Any]]:
        """The (source, table) pairs a derived table's SQL reads, in order of first mention."""
        pairs: dict[str, tuple[SourceKindConfig | DerivedSourceConfig, Any]] = {
            view_name(s.name, t.name).lower(): (s, t) for s in self.sources for t in s.tables
        }
        for earlier in self.derived:
            if earlier.name == table.name:
                break
            pairs[view_name(DERIVED_SOURCE, earlier.name).lower()] = (self.derived_source, earlier)
        found, _ = sql_references(table.sql, {name: name for name in pairs})
        return [pairs[name] for name in found]

    def tables_for_entity(
        self, entity: str
    ) -> list[tuple[SourceKindConfig | DerivedSourceConfig, TableConfig | DerivedTableConfig]]:
        """Every (source, table) pair configured to feed `entity`, in config order; derived tables
        (`raw/derived/<name>`) come after the source tables.
        A table that feeds it through `also_feeds` appears as a view: the same name (the same raw asset),
        that entity, the feed's `columns`."""
        sources: list[SourceKindConfig | DerivedSourceConfig] = [*self.sources, self.derived_source]
        return [(s, view) for s in sources for t in s.tables for view in t.feeds() if view.entity == entity]

    @model_validator(mode="after")
    def _mapping_rules_name_declared_columns(self) -> PipelineConfig:
        """`also_feeds` columns and the value rules (`scale`, `timestamp_units`, `value_map`) name entity
        columns or extra columns declared under `entities:`, of a type the rule can change."""
        problems: list[str] = []
        tables: list[tuple[str, TableConfig | DerivedTableConfig]] = [
            (f"{s.name}.{t.name}", t) for s in self.sources for t in s.tables]
        tables += [(f"derived.{t.name}", t) for t in self.derived]
        for where, table in tables:
            if table.entity is None:
                continue
            fed = [table.entity, *(f.entity for f in table.also_feeds)]
            types: dict[str, set[str]] = {}
            for entity in fed:
                columns = {**ENTITIES[entity].columns, **self.entities.extra_columns(entity)}
                for column, kind in columns.items():
                    types.setdefault(column, set()).add(kind)
            for i, feed in enumerate(table.also_feeds):
                known = {*ENTITIES[feed.entity].columns, *self.entities.extra_columns(feed.entity)}
                unknown = sorted(set(feed.columns.values()) - known)
                if unknown:
                    problems.append(f"sources: {where}.also_feeds[{i}].columns: {unknown} are not columns of "
                                    f"{feed.entity}; its columns are {sorted(known)} (declare another one under "
                                    f"entities.{feed.entity})")
            entities = " or ".join(fed)
            for option, allowed in (("scale", NUMERIC_TYPES), ("timestamp_units", ("timestamp", "date")),
                                    ("value_map", None)):
                for column in getattr(table, option):
                    if column not in types:
                        problems.append(f"sources: {where}.{option}.{column}: not a column of {entities} "
                                        "(rules name the entity column a source column is mapped to)")
                    elif allowed and not any(t in allowed or t.startswith("decimal") for t in types[column]):
                        kinds = "a number" if option == "scale" else "a timestamp or date"
                        problems.append(f"sources: {where}.{option}.{column}: {column} is "
                                        f"{'/'.join(sorted(types[column]))}, not {kinds}")
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    @model_validator(mode="after")
    def _standardize_columns_exist(self) -> PipelineConfig:
        """Null rules and aggregations name entity columns or the entity's declared extra columns."""
        for entity in self.standardize.entities:
            columns = {*ENTITIES[entity].columns, *self.entities.extra_columns(entity)}
            unknown = self.standardize.unknown_columns(entity, columns)
            if unknown:
                raise ValueError(f"standardize.entities.{entity}: unknown column(s) {unknown}; {entity}'s columns "
                                 f"are {sorted(columns)} (declare another one under entities.{entity})")
        return self

    @model_validator(mode="after")
    def _type1_columns_known(self) -> PipelineConfig:
        """`type1_columns` name attributes of the dimension, declared extras included; an extra declared
        `scd: 2` cannot also be listed as Type 1."""
        for entity in self.star_schema.dimensions:
            extras = getattr(self.entities, entity).attributes
            where = f"star_schema.dimensions.{entity}.type1_columns"
            unknown = self.star_schema.unknown_type1_columns(entity, set(extras))
            if unknown:
                raise ValueError(f"{where}: {unknown} are not attributes of {entity} "
                                 f"(nor extra attributes declared under entities.{entity}.attributes)")
            versioned = [n for n in self.star_schema.dimension(entity).type1_columns
                         if n in extras and extras[n].scd == 2]
            if versioned:
                raise ValueError(f"{where}: {versioned} are declared scd: 2 under entities.{entity}.attributes; "
                                 "keep one of the two")
        return self

    @model_validator(mode="after")
    def _one_mask_per_extra(self) -> PipelineConfig:
        for entity, overrides in self.masking.entities.items():
            for column, technique in self.entities.mask_rules(entity).items():
                if column in overrides and overrides[column] != technique:
                    raise ValueError(
                        f"masking.entities.{entity}.{column} is {overrides[column]!r} but entities.{entity} "
                        f"declares mask {technique!r} for it; keep one of the two"
                    )
        return self

    def mask_rules_for(self, entity: str) -> dict[str, str]:
        """Column -> technique for one entity: the defaults (person-name columns redacted), overlaid with
        `masking.columns`, the entity's extra columns' `mask`, then `masking.entities[entity]`."""
        from lake_assets.entities import entity_schema
        from spark.pii_detection import default_mask_rules

        return {**default_mask_rules(entity_schema(self, entity).columns), **self.masking.columns,
                **self.entities.mask_rules(entity), **self.masking.entities.get(entity, {})}

    def type1_columns(self, entity: str) -> list[str]:
        """Type-1 (overwritten) columns of an SCD2 dimension: configured ones plus extras with scd: 1."""
        return list(dict.fromkeys([*self.star_schema.dimension(entity).type1_columns,
                                   *self.entities.type1_attributes(entity)]))

    def type2_attributes(self, entity: str) -> list[str] | None:
        """The Type-2 attributes of an SCD2 dimension's entity, extras included (None for other entities)."""
        from lake_assets.entities import entity_schema

        if entity not in SCD2_ENTITIES:
            return None
        schema = entity_schema(self, entity)
        skip = {*schema.key, schema.cursor, *self.type1_columns(entity)}
        return [c for c in schema.columns if c not in skip]
