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

`line_counts` counts the rows and distinct lines met, for the fact's `sale_line_unique` check.
"""

from __future__ import annotations

from collections.abc import Collection

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lake_assets.assets.fact_partitions import FACT_KEY, SALE_DATE
from lake_assets.io_managers.spark_lake import read_file_columns
from lake_assets.resources.lake_storage import LakeStorage

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


def lines_meeting(spark: SparkSession, lake: LakeStorage, written: Collection[str]) -> DataFrame:
    """`sale_line_id` of every row in the sale dates `written`, plus every row of the other sale dates'
    files that may hold one of those lines: a line that appears twice in the table with a row in
    `written` appears twice here."""
    files = lake.partitions_files(FACT_KEY, sorted(written))
    if not files:
        return spark.range(0).select(F.lit(None).cast("string").alias(LINE))
    here = read_file_columns(spark, lake, files, [LINE])
    others = files_that_may_hold(spark, lake, here, outside=written)
    return here.unionByName(read_file_columns(spark, lake, others, [LINE])) if others else here


def line_counts(lines: DataFrame) -> dict[str, int]:
    """{"rows": rows of `lines`, "distinct_lines": distinct `sale_line_id`s among them}, exact.

    Distinct 64-bit hashes of the ids are counted first: shuffling them costs less than shuffling the
    ids, and when every row's hash is distinct so is every id. Only when two hashes meet (a repeated
    id, or a collision: about n²/2⁶⁵, one in a million at 5M lines) are the ids themselves counted."""
    line = F.col("sale_line_id")
    # A NULL id is no distinct line, as countDistinct has it (xxhash64 would hash NULL to its seed).
    hashed = F.when(line.isNotNull(), F.xxhash64(line))
    first = lines.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct(hashed).alias("distinct_hashes")).collect()[0]
    rows = int(first["rows"])
    if first["distinct_hashes"] == rows:
        return {"rows": rows, "distinct_lines": rows}
    return {"rows": rows, "distinct_lines": int(lines.agg(F.countDistinct("sale_line_id")).collect()[0][0])}
