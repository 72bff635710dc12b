"""Where sale lines live in curated/fact_sales, found without reading every sale date.

The fact is partitioned by sale date, and a line delivered again may carry another sale date than the
row it replaces, so the row can be in any partition. The table's manifests keep every data file's
lower and upper `sale_line_id`; a file can hold one of a set of lines only when one of them lies
between its bounds, and only such files are read (the `sale_line_id` column and what the caller asks
for). The answer is exact: a file is skipped only when none of the lines can be in it.

Cost: each line is compared with each file's bounds (a broadcast join of the lines with the list of
files, no data file opened), then the files that pass are read. Line ids that grow over time (order
and line numbers) put a day's new lines outside the bounds of every earlier sale date, so what is
read follows the day, not the history; with ids in no order every file passes and is read, which is
what a scan of every sale date would read.

For the fact's `sale_line_unique` check, `files_meeting` takes the files of the sale dates a write
touched and every other date's file whose bounds overlap the range of theirs (a coarser test than the
per-line one, from the manifests alone: it may read a file more, never one less), and `line_counts`
counts their rows and distinct lines on Arrow.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pyarrow as pa
import pyarrow.dataset as ds
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lake_assets.assets.fact_partitions import FACT_KEY, SALE_DATE
from lake_assets.checks.dimension_keys import dataset_key_figures
from lake_assets.io_managers.spark_lake import read_file_columns
from lake_assets.resources.lake_storage import FileBounds, LakeStorage

LINE = "sale_line_id"


def files_that_may_hold(spark: SparkSession, lake: LakeStorage, lines: DataFrame, outside: Collection[str] = ()
                        ) -> list[str]:
    """Sorted paths of the fact's current data files, in sale dates not in `outside`, whose
    `sale_line_id` bounds enclose at least one line of `lines` (a frame with a `sale_line_id` column)."""
    bounds = [b for b in lake.string_bounds(FACT_KEY, LINE) if b.partition not in outside]
    if not bounds:
        return []
    if all(b.lower is None and b.upper is None for b in bounds):
        return [b.path for b in bounds]
    files = spark.range(1).select(F.inline(F.array(*[
        F.struct(F.lit(b.path).alias("_path"), F.lit(b.lower).cast("string").alias("_lower"),
                 F.lit(b.upper).cast("string").alias("_upper")) for b in bounds])))
    line = F.col(LINE)
    inside = ((F.col("_lower").isNull() | (line >= F.col("_lower")))
              & (F.col("_upper").isNull() | (line <= F.col("_upper"))))
    hits = lines.select(LINE).join(F.broadcast(files), inside).select("_path").distinct()
    return sorted(r[0] for r in hits.collect())


def sale_dates_holding(spark: SparkSession, lake: LakeStorage, lines: DataFrame) -> DataFrame | None:
    """The sale dates (`sale_date`, possibly repeated) whose current rows include a line of `lines`;
    None when no data file can hold one."""
    files = files_that_may_hold(spark, lake, lines)
    if not files:
        return None
    rows = read_file_columns(spark, lake, files, [LINE, SALE_DATE])
    return rows.join(lines.select(LINE), LINE, "left_semi").select(SALE_DATE)


def files_meeting(lake: LakeStorage, written: Collection[str]) -> list[str]:
    """Sorted paths of the current files of the sale dates `written`, plus every other sale date's file
    whose `sale_line_id` bounds overlap the range of theirs (a file without bounds, on either side, is
    read): a line that appears twice in the table with a row in `written` has both rows in these files.
    A superset of the files holding those lines, found from the manifests alone (no data read)."""
    bounds = lake.string_bounds(FACT_KEY, LINE)
    here = [b for b in bounds if b.partition in written]
    if not here:
        return []
    lowers = [b.lower for b in here if b.lower is not None]
    uppers = [b.upper for b in here if b.upper is not None]
    low = min(lowers) if len(lowers) == len(here) else None
    high = max(uppers) if len(uppers) == len(here) else None

    def overlaps(b: FileBounds) -> bool:
        return (low is None or high is None or b.lower is None or b.upper is None
                or not (b.upper < low or b.lower > high))

    return sorted([b.path for b in here] + [b.path for b in bounds if b.partition not in written and overlaps(b)])


def line_counts(lake: LakeStorage, files: Sequence[str]) -> dict[str, int]:
    """{"rows": rows of `files`, "distinct_lines": distinct non-NULL `sale_line_id`s among them}, exact,
    from the one column read in batches and spilled to hash buckets by id (no Spark job; the driver
    holds one bucket at a time)."""
    if not files:
        return {"rows": 0, "distinct_lines": 0}
    dataset = ds.dataset(list(files), schema=pa.schema([pa.field(LINE, pa.string())]), format="parquet",
                         filesystem=lake.filesystem)
    figures = dataset_key_figures(dataset, LINE)
    return {"rows": figures.rows, "distinct_lines": figures.distinct_keys}
