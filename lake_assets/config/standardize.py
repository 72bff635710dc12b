"""Processed-layer rules (`standardize:`): null tokens and rules, timestamp formats, the quarantine
limit, and the aggregates of each entity."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lake_assets.config.base import IDENTIFIER, StrictModel
from lake_assets.entities import ENTITIES
from spark.metric_grammar import METRIC


def _metric_column(expression: str) -> str:
    """The column an aggregation metric reads (`sum(amount)` -> amount, `count(*)` -> *)."""
    match = METRIC.match(expression)
    if match is None:  # the aggregations validator rejects such an expression before anything reads it
        raise ValueError(f"not an aggregation metric: {expression!r}")
    return match.group(2)


class NullRuleConfig(StrictModel):
    """What a NULL (or null token) in one column means: keep it, reject the row, or use a default."""

    rule: Literal["keep", "reject", "default"] = "keep"
    value: str | None = Field(default=None, description="the default, as text (cast to the column type)")

    @model_validator(mode="after")
    def _default_needs_value(self) -> NullRuleConfig:
        if (self.rule == "default") != (self.value is not None):
            raise ValueError("'value' is required with rule: default and allowed only there")
        return self


class AggregationConfig(StrictModel):
    """An aggregate of one processed entity, e.g. daily sales per store: `metrics` are `fn(column)`."""

    name: str
    group_by: list[str] = Field(min_length=1)
    metrics: dict[str, str] = Field(min_length=1, description="output column -> fn(column)")

    @field_validator("name")
    @classmethod
    def _name_identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value

    @field_validator("metrics")
    @classmethod
    def _metric_syntax(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if not IDENTIFIER.match(name) or not METRIC.match(expression):
                raise ValueError(
                    f"metric {name}: {expression!r} is not '<sum|count|min|max|avg|count_distinct>(column)'"
                )
        return value


class EntityStandardizeConfig(StrictModel):
    nulls: dict[str, NullRuleConfig] = Field(default_factory=dict)
    timestamp_formats: list[str] | None = None
    aggregations: list[AggregationConfig] = Field(default_factory=list)


class StandardizeConfig(StrictModel):
    """Processed-layer rules; None/absent means the built-in defaults in spark/standardize.py.

    Timestamp formats add to the built-in ones: entity formats first, then these, then the defaults.
    """

    timestamp_formats: list[str] | None = Field(default=None, min_length=1)
    null_tokens: list[str] | None = Field(default=None, description="no value in every column")
    typed_null_tokens: list[str] | None = Field(
        default=None, description="also no value in id columns and number/date columns (default: NA)"
    )
    max_quarantine_share: float = Field(
        default=0.05, ge=0, le=1, description="fail the step when more of the input rows are quarantined"
    )
    entities: dict[str, EntityStandardizeConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _columns_exist(self) -> StandardizeConfig:
        for entity in self.entities:
            if entity not in ENTITIES:
                raise ValueError(f"unknown entity {entity!r}; expected one of {sorted(ENTITIES)}")
        # Column names are checked by PipelineConfig._standardize_columns_exist: extra columns declared
        # under `entities:` are columns too, and only the whole config knows them.
        return self

    def unknown_columns(self, entity: str, columns: set[str]) -> list[str]:
        """Columns the entity's null rules and aggregations name that are not among `columns`."""
        rules = self.entities.get(entity)
        if rules is None:
            return []
        used = set(rules.nulls)
        for agg in rules.aggregations:
            used |= set(agg.group_by) | {_metric_column(m) for m in agg.metrics.values()} - {"*"}
        return sorted(used - columns)
