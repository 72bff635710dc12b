"""Moving data between the lake's Iceberg tables and Spark / Arrow.

Local lake: Spark writes the Parquet data files itself into the table's fresh batch directory, the
driver commits them to the catalog (see LakeStorage), and reads are `spark.read.parquet` of the files
the catalog plans for the partition. S3 lake: data crosses through Arrow (`createDataFrame(arrow)` /
`toArrow()`) on the driver, because the hadoop-aws jars that `s3a://` needs are not part of the pyspark
wheel; on a cluster too (see docs/storage.md). On a cluster the local lake must be storage shared by
every node: executors write and read its files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructField, StructType

from lake_assets.resources.lake_storage import PARTITION_COLUMN, CommitInfo, LakeStorage


def read_spark(spark: SparkSession, lake: LakeStorage, key_path: Sequence[str], partition: str | None) -> DataFrame:
    """The partition's (or unpartitioned table's) current rows; raises `LakeDataNotFound` if never written."""
    if lake.is_s3:
        return spark.createDataFrame(lake.read_arrow(key_path, partition))
    files = lake.committed_files(key_path, partition)
    if not files:
        return _empty_frame(spark, lake.read_arrow(key_path, partition).schema)
    df = _read_parquet(spark, lake, files)
    table = lake.load_table(key_path)
    hidden = [c for c in lake.hidden_columns(table) if c in df.columns] if table is not None else []
    return df.drop(*hidden) if hidden else df


def read_columns(
    spark: SparkSession, lake: LakeStorage, key_path: Sequence[str], partitions: Sequence[str], columns: list[str]
) -> DataFrame:
    """Only `columns` of the given committed partitions, in one scan (not one read per partition). With no
    rows the columns are typed as the table declares them (text before the table has any partition)."""
    files = lake.partitions_files(key_path, partitions)  # one scan plan, however many partitions
    if not files:
        schema = lake.read_schema(key_path, partitions[0]) if partitions else pa.schema([])
        fields = [schema.field(c) if c in schema.names else pa.field(c, pa.string()) for c in columns]
        return _empty_frame(spark, pa.schema(fields))
    return read_file_columns(spark, lake, files, columns)


def read_file_columns(spark: SparkSession, lake: LakeStorage, files: Sequence[str], columns: list[str]) -> DataFrame:
    """Only `columns` of the given data files (paths as `LakeStorage` lists them; at least one), in one
    scan."""
    if not files:
        raise ValueError("read_file_columns: no file to read")
    if lake.is_s3:
        table = pq.ParquetDataset(list(files), filesystem=lake.filesystem, partitioning=None).read(columns=columns)
        return spark.createDataFrame(table)
    return _read_parquet(spark, lake, list(files)).select(*columns)


def _read_parquet(spark: SparkSession, lake: LakeStorage, files: list[str]) -> DataFrame:
    """`spark.read.parquet(*files)` with the schema of the first file's footer, read here on the driver:
    left to infer it, Spark runs a job per read only to read that one footer. Same types as Spark's
    inference (every column nullable, zoned timestamps TIMESTAMP, others TIMESTAMP_NTZ); a type the
    Arrow conversion does not know leaves the inference to Spark."""
    arrow = pq.read_schema(files[0], filesystem=lake.filesystem)
    try:
        fields = from_arrow_schema(arrow, prefer_timestamp_ntz=True).fields
    except (TypeError, ValueError):
        return spark.read.parquet(*files)
    schema = StructType([StructField(f.name, f.dataType, nullable=True) for f in fields])
    return spark.read.schema(schema).parquet(*files)


def read_partitions(
    spark: SparkSession, lake: LakeStorage, key_path: Sequence[str], partitions: Sequence[str]
) -> DataFrame | None:
    """Every column of several committed partitions, in one scan; None when they hold no file. Files
    written before a column was added read with it NULL (schemas merged)."""
    files = lake.partitions_files(key_path, partitions)
    if not files:
        return None
    if lake.is_s3:
        return spark.createDataFrame(lake.read_arrow_partitions(key_path, partitions))
    table = lake.load_table(key_path)
    df = spark.read.option("mergeSchema", "true").parquet(*files)
    hidden = [c for c in lake.hidden_columns(table) if c in df.columns] if table is not None else []
    return df.drop(*hidden) if hidden else df


def _empty_frame(spark: SparkSession, schema: pa.Schema) -> DataFrame:
    """No rows, with the Spark types `spark.read.parquet` gives the same columns: a timestamp without a
    zone is TIMESTAMP_NTZ there (createDataFrame would make it a zoned TIMESTAMP, and the next write of
    a table built from it would change the column's type). Built on the JVM side: `createDataFrame([])`
    would start Python worker processes for nothing."""
    fields = from_arrow_schema(schema, prefer_timestamp_ntz=True).fields
    return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in fields])


def read_spark_if_exists(
    spark: SparkSession, lake: LakeStorage, key_path: Sequence[str], partition: str | None = None
) -> DataFrame | None:
    if lake.commit_info(key_path, partition) is None:
        return None
    return read_spark(spark, lake, key_path, partition)


def write_spark(
    df: DataFrame,
    lake: LakeStorage,
    key_path: Sequence[str],
    partition: str | None,
    state: dict[str, Any] | None = None,
) -> CommitInfo:
    """Replace a partition (or an unpartitioned table) with `df`, atomically (see LakeStorage)."""
    if lake.is_s3:
        return lake.write_arrow(key_path, partition, df.toArrow(), state)
    with lake.staged_batch(key_path, partition) as batch:
        if partition is not None and PARTITION_COLUMN not in df.columns:
            df = df.withColumn(PARTITION_COLUMN, F.lit(partition).cast("date"))
            batch.added_partition_column = True
        df.write.mode("overwrite").parquet(batch.local_dir)
        return batch.commit(state=state)


def write_spark_partitions(
    df: DataFrame,
    lake: LakeStorage,
    key_path: Sequence[str],
    column: str,
    replace: Sequence[str] = (),
    state: dict[str, Any] | None = None,
) -> dict[str, CommitInfo]:
    """Replace, in one atomic commit, every partition of the date column `column` that `df` has rows
    in, plus the partitions `replace` (emptied when `df` has none of their rows). Returns
    {partition: commit}. Written without a shuffle: each task of `df` writes one data file per date
    it holds rows of, so a date has at most as many files as `df` has tasks (one per input split of
    about `spark.sql.files.maxPartitionBytes`, 128 MB by default), written in parallel."""
    with lake.staged_partitions(key_path, column) as batch:
        if lake.is_s3:
            table = df.toArrow()
            for number, value in enumerate(pc.unique(table.column(column)).to_pylist()):
                one = table.filter(pc.equal(table.column(column), value))
                pq.write_table(one, f"{batch.local_dir}/part-{number:05d}.parquet", compression="snappy")
        else:
            # Spark leaves the partitionBy column out of the files, and the catalog places a file by the
            # column's statistics: partition by a copy so the files keep `column`. No shuffle by date
            # before the write: it would send every row through the shuffle once more (about a third of
            # the write's time at 3M lines) only to merge the few files each date gets from the input's tasks.
            spread = "_lake_partition"
            df.withColumn(spread, F.col(column)).write.mode("overwrite").partitionBy(spread).parquet(batch.local_dir)
        return batch.commit(replace, state)
