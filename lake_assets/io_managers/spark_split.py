"""One Spark job staging two lake tables: the usable rows of a frame and its rejected rows, each into a
spool of its own (`LakeStorage.spool`), committed later by the lake IO manager.

Grain: one partition of each table per call. Why one job: the processed step types a day once; the
usable rows are de-duplicated and the rejected ones go to the quarantine. Written as two jobs, the typed
rows would have to be cached (at 5M lines the cache cost as much as the typing) or typed twice.

Guarantees: `usable` gets every row whose `reason` is empty, with every column but `reason`; `rejected`
gets every other row, without the `usable_only` columns, with `reason` (never NULL) before
`ingest_date`. Each spool holds at least one file (an empty one when its side has no row), so a commit
replaces the partition even when a day has nothing to quarantine. Nothing is visible in the lake until
the spools are committed. Local lake: the job writes both sides under the spool root, in the lake's
filesystem (on a cluster, storage every node shares), and the usable rows' files move into their spool
by rename; the rejected rows (bounded by `standardize.max_quarantine_share`) are rewritten by a second,
small job. S3 lake: the rows cross through Arrow on the driver, as every S3 write does (see
`spark_lake.py`).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake_assets.io_managers.spark_lake import read_file_columns
from lake_assets.resources.lake_storage import PARTITION_COLUMN, LakeStorage, StagedBatch

# The side of each row, as a Spark `partitionBy` column: it names the directories, never a file column.
_SIDE = "_split_usable"


def write_spark_split(
    df: DataFrame, lake: LakeStorage, usable: StagedBatch, rejected: StagedBatch, reason: str,
    usable_only: Sequence[str], carrier: str,
) -> None:
    """Stage `df`'s usable rows into `usable` and its rejected rows into `rejected` (see the module
    docstring). `carrier`, one of the `usable_only` string columns, carries a rejected row's reason
    through the write: the files of one job share one schema, and the usable side must not gain a
    column that is always empty."""
    if carrier not in usable_only:
        raise ValueError(f"write_spark_split: the carrier {carrier!r} must be one of the usable-only columns")
    if usable.partition != rejected.partition:
        raise ValueError("write_spark_split: both sides must stage the same partition")
    is_usable = F.col(reason) == ""
    marked = (df.withColumn(carrier, F.when(is_usable, F.col(carrier)).otherwise(F.col(reason)))
              .withColumn(_SIDE, is_usable).drop(reason))
    if usable.partition is not None and PARTITION_COLUMN not in marked.columns:
        marked = marked.withColumn(PARTITION_COLUMN, F.lit(usable.partition).cast("date"))
        usable.added_partition_column = rejected.added_partition_column = True
    kept_columns = [c for c in marked.columns if c != _SIDE]
    # The rejected side: the shared columns, then the reason and the partition column (written anew, so
    # both keep the NOT NULL the lake's earlier writes gave them).
    shared = [c for c in kept_columns if c not in usable_only and c != PARTITION_COLUMN]
    if lake.is_s3:
        _split_in_arrow(marked.toArrow(), usable, rejected, kept_columns, shared, reason, carrier)
        return
    staging = tempfile.mkdtemp(prefix="split-", dir=lake.spool_root)
    try:
        marked.write.mode("overwrite").partitionBy(_SIDE).parquet(staging)
        usable_files = glob.glob(f"{staging}/{_SIDE}=true/*.parquet")
        for path in usable_files:
            os.replace(path, f"{usable.local_dir}/{os.path.basename(path)}")
        if not usable_files:
            marked.limit(0).select(*kept_columns).write.mode("append").parquet(usable.local_dir)
        rejected_files = sorted(glob.glob(f"{staging}/{_SIDE}=false/*.parquet"))
        rows = read_file_columns(df.sparkSession, lake, rejected_files, [*shared, carrier]) if rejected_files \
            else marked.limit(0)
        rows = rows.select(*shared, F.coalesce(F.col(carrier), F.lit("")).alias(reason))
        if rejected.partition is not None:
            rows = rows.withColumn(PARTITION_COLUMN, F.lit(rejected.partition).cast("date"))
        rows.write.mode("append").parquet(rejected.local_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _split_in_arrow(
    table: pa.Table, usable: StagedBatch, rejected: StagedBatch, kept_columns: list[str], shared: list[str],
    reason: str, carrier: str,
) -> None:
    is_usable = table.column(_SIDE)
    pq.write_table(table.filter(is_usable).select(kept_columns), f"{usable.local_dir}/part-00000.parquet",
                   compression="snappy")
    bad = table.filter(pc.invert(is_usable))
    columns = [*[bad.column(c) for c in shared], pc.fill_null(bad.column(carrier), "")]
    fields = [*[bad.schema.field(c) for c in shared], pa.field(reason, pa.string(), nullable=False)]
    out = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    pq.write_table(rejected.with_partition_column(out), f"{rejected.local_dir}/part-00000.parquet",
                   compression="snappy")
