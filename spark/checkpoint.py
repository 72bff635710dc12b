"""A local checkpoint for state carried from day to day (a dimension merged one day after another).

`DataFrame.localCheckpoint()` cuts the lineage but keeps the optimizer's size estimate of the plan it
cut (Spark's `LogicalRDD.fromDataset` copies the plan's `Statistics`). Without column statistics
Spark estimates a join as the product of its sides' sizes, and a merge joins the state with rows
derived from the state itself, so each day's estimate is about the square of the last one's: its
`sizeInBytes` (a `BigInt`) doubles in bits every day. Over a range of days those numbers, computed
again for every plan that reads the state, grow to megabytes each (gigabytes of `int[]` on the driver
after ~25 days, and as much time multiplying them) for a few kilobytes of rows.

`local_checkpoint` materializes the rows the same way and then reads them as a new relation with no
inherited estimate (Spark's default for an RDD of unknown size), so the estimate is the same on every
day. Grain and rows unchanged; nothing is recomputed (the new relation reads the checkpointed blocks).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame


def local_checkpoint(df: DataFrame) -> DataFrame:
    """`df`'s rows materialized on the executors (`localCheckpoint()`), lineage and size estimate cut.

    On a Spark Connect session (no JVM in this process) it is `df.localCheckpoint()` as it is."""
    checkpointed = df.localCheckpoint()
    if not isinstance(checkpointed, ClassicDataFrame):
        return checkpointed
    jdf = checkpointed._jdf
    # SparkSession.createDataFrame(JavaRDD[Row], StructType): a relation over the checkpointed rows
    # that carries no statistics of the plan they came from.
    fresh = checkpointed.sparkSession._jsparkSession.createDataFrame(jdf.javaRDD(), jdf.schema())
    return ClassicDataFrame(fresh, checkpointed.sparkSession)
