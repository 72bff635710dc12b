"""Configurable aggregates of a processed entity (e.g. daily sales per store), built-in functions only.

Grain: one row per distinct `group_by` tuple (NULL is a group of its own). Metrics are given as
`fn(column)` text from config; only the functions in `FUNCTIONS` are allowed, so a config file cannot
inject arbitrary SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark.metric_grammar import METRIC

FUNCTIONS: dict[str, Callable[[Column], Column]] = {
    "sum": F.sum,
    "count": F.count,
    "min": F.min,
    "max": F.max,
    "avg": F.avg,
    "count_distinct": F.count_distinct,
}


def metric_column(expression: str) -> Column:
    """`sum(quantity)` -> F.sum(col('quantity')); `count(*)` counts rows. ValueError otherwise."""
    match = METRIC.match(expression)
    if not match:
        raise ValueError(f"metric {expression!r} is not one of {sorted(FUNCTIONS)} applied to one column")
    function, column = match.groups()
    if column == "*":
        if function != "count":
            raise ValueError(f"metric {expression!r}: only count(*) may use '*'")
        return F.count(F.lit(1))
    return FUNCTIONS[function](F.col(column))


def aggregate(df: DataFrame, group_by: Sequence[str], metrics: Mapping[str, str]) -> DataFrame:
    """Group `df` by `group_by` and compute each `name: fn(column)` metric."""
    missing = sorted({c for c in group_by if c not in df.columns})
    if missing:
        raise ValueError(f"group_by column(s) {missing} not in {df.columns}")
    return df.groupBy(*group_by).agg(*[metric_column(expr).alias(name) for name, expr in metrics.items()])
