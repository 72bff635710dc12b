"""Reading a Spark `Observation`: figures measured on the rows by the action that consumed them."""

from __future__ import annotations

from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import Observation


def observed_figures(observation: Observation) -> dict[str, Any] | None:
    """The metrics `observation` collected during the action that ran its frame; None when Spark
    collected none (its adaptive plan dropped the observation after finding no row reaches it)."""
    try:
        return observation.get
    except Py4JJavaError:
        return None
