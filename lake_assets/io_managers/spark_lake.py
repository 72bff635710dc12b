"""Moving data between the lake and Spark / Arrow.

Local lake: Spark reads and writes Parquet natively (the files named by the manifest).
S3 lake: data crosses through Arrow (`createDataFrame(arrow)` / `toArrow()`), because the hadoop-aws
jars that `s3a://` needs are not part of the pyspark wheel. On a cluster that has them, point Spark
at `s3a://` directly (see docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from lake_assets.resources.lake_storage import LakeStorage, Manifest


def read_spark(spark: SparkSession, lake: LakeStorage, key_path: Sequence[str], partition: str | None) -> DataFrame:
    files = lake.committed_files(key_path, partition)
    if lake.is_s3:
        return spark.createDataFrame(lake.read_arrow(key_path, partition))
    return spark.read.parquet(*files)


def read_spark_if_exists(
    spark: SparkSession, lake: LakeStorage, key_path: Sequence[str], partition: str | None = None
) -> DataFrame | None:
    if lake.read_manifest(key_path, partition) is None:
        return None
    return read_spark(spark, lake, key_path, partition)


def write_spark(
    df: DataFrame,
    lake: LakeStorage,
    key_path: Sequence[str],
    partition: str | None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Replace a dataset/partition with `df`, atomically (see LakeStorage)."""
    if lake.is_s3:
        return lake.write_arrow(key_path, partition, df.toArrow(), extra)
    with lake.staged_batch(key_path, partition) as batch:
        df.write.mode("overwrite").parquet(batch.local_dir)
        rows = sum(
            pq.read_metadata(f"{batch.local_dir}/{name}").num_rows
            for name in _parquet_names(batch.local_dir)
        )
        return batch.commit(rows=rows, extra=extra)


def _parquet_names(directory: str) -> list[str]:
    import os

    return sorted(n for n in os.listdir(directory) if n.endswith(".parquet"))
