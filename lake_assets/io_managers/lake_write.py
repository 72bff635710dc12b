"""What an asset hands the lake IO manager when a plain value is not enough.

A bare DataFrame or Arrow table replaces the output's partition (or its unpartitioned table). A
`LakeWrite` adds what the write must carry besides the rows:

* `frame` may also be a `StagedBatch` from `LakeStorage.spool`: rows already written as Parquet files
  outside the lake (the raw ingestion streams its delivery there chunk by chunk, so it never passes
  through memory whole); the write adopts those files into the partition;
* `state`: the asset's own commit state, stored in the same commit as the rows (a dimension's
  `applied` days, the fact's `run_day`, a raw partition's cursor and file fingerprints), so the rows
  and the state that describes them can never disagree;
* `partition_column` + `replace`: a write of several partitions of a date column at once (the
  fact's sale dates), one atomic commit: every partition `frame` has rows in, plus the partitions in
  `replace` (emptied when `frame` has none of their rows). The asset's own Dagster partition (the run
  day) is then not a partition of the lake table;
* `observation`: figures Spark measures on the rows while it writes them (`DataFrame.observe`), added
  to the output's metadata once the rows are stored, so they cost no pass of their own (a `StagedBatch`
  that a Spark job staged carries the observation of that job). Metric names
  are the metadata keys; decimals become floats and an empty sum 0. Spark reports nothing when it
  found at run time that no row reaches the observation (the plan then skips it): see
  `spark.observations.observed_figures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, Observation

from lake_assets.resources.lake_storage import StagedBatch


@dataclass(frozen=True)
class LakeWrite:
    """One atomic lake write: the rows, the commit state, and (for a partition set) the date column."""

    frame: DataFrame | pa.Table | StagedBatch
    state: Mapping[str, Any] = field(default_factory=dict)
    partition_column: str | None = None
    replace: tuple[str, ...] = ()
    observation: Observation | None = None

    def __post_init__(self) -> None:
        if self.replace and self.partition_column is None:
            raise ValueError("LakeWrite: `replace` names partitions of a date column; set `partition_column`")
        if self.partition_column is not None and not isinstance(self.frame, DataFrame):
            raise TypeError("LakeWrite: a write of several partitions takes a Spark DataFrame")
        if self.observation is not None and isinstance(self.frame, pa.Table):
            raise TypeError("LakeWrite: an observation measures rows Spark writes (a DataFrame or a batch it staged)")
