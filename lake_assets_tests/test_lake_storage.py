"""The lake's Iceberg tables: atomic replace, crash keeps the previous snapshot, one winner among
concurrent writers, and metadata any Iceberg reader understands."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyiceberg.exceptions import CommitFailedException

from lake_assets.resources.lake_storage import S3_SPOOL_DIR, LakeDataNotFound, LakeStorage, LakeWriteConflict

from .conftest import lake_of_kind

pytestmark = pytest.mark.services  # catalogs on PostgreSQL and moto S3

KEY = ["raw", "src", "table"]
DAY = "2024-01-01"


def _referenced_files_exist(lake: LakeStorage, key: list[str]) -> None:
    table = lake.load_table(key)
    for task in table.scan().plan_files():
        info = lake.filesystem.get_file_info(lake._fs_path(task.file.file_path))
        assert info.type.name == "File", f"the table references a missing file {task.file.file_path}"


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_rewrite_replaces_and_crash_keeps_previous(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lake = lake_of_kind(kind, tmp_path, request)
    with pytest.raises(LakeDataNotFound, match="no committed data"):
        lake.read_arrow(KEY, DAY)

    first = lake.write_arrow(KEY, DAY, pa.table({"x": [1, 2, 3]}), state={"cursor": "a"})
    lake.write_arrow(KEY, "2024-01-02", pa.table({"x": [9]}))
    second = lake.write_arrow(KEY, DAY, pa.table({"x": [4, 5]}), state={"cursor": "b"})
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [4, 5]  # replaced, not appended
    assert lake.read_arrow(KEY, "2024-01-02").column("x").to_pylist() == [9]  # the other day untouched
    assert lake.commit_info(KEY, DAY).rows == 2
    assert lake.partition_state(KEY, DAY) == {"cursor": "b"}
    snapshot = lake.load_table(KEY).current_snapshot().snapshot_id
    assert second.snapshot_id is not None

    with pytest.raises(RuntimeError, match="crash"):
        with lake.staged_batch(KEY, DAY) as batch:
            (Path(batch.local_dir)).mkdir(parents=True, exist_ok=True)
            pq.write_table(batch.with_partition_column(pa.table({"x": [7]})), f"{batch.local_dir}/part-0.parquet")
            raise RuntimeError("crash")
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [4, 5]
    assert lake.load_table(KEY).current_snapshot().snapshot_id == snapshot  # nothing was committed
    assert lake.committed_partitions(KEY) == [DAY, "2024-01-02"]
    _referenced_files_exist(lake, KEY)
    # The previous snapshot still reads the replaced rows (time travel for audits).
    before = lake.load_table(KEY).scan(snapshot_id=first.snapshot_id, row_filter=f"ingest_date = '{DAY}'")
    assert sorted(before.to_arrow().column("x").to_pylist()) == [1, 2, 3]

    if kind == "s3":
        client = boto3.client("s3")
        objects = client.list_objects_v2(Bucket=lake.bucket, Prefix="prefix/")["Contents"]
        assert any(o["Key"].endswith(".metadata.json") for o in objects)
        for obj in objects:  # data files by explicit SSE, Iceberg metadata by the bucket default
            head = client.head_object(Bucket=lake.bucket, Key=obj["Key"])
            assert head["ServerSideEncryption"] == "AES256", obj["Key"]


def test_schema_evolves_and_any_iceberg_reader_sees_the_same_rows(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    day1 = pa.table({"sale_id": ["S1", "S2"], "amount": [1.5, 2.0]})
    day2 = pa.table({"sale_id": ["S3"], "amount": [3.0], "channel": ["web"]})  # a new column arrives
    lake.write_arrow(KEY, "2024-01-01", day1)
    lake.write_arrow(KEY, "2024-01-02", day2)
    lake.write_arrow(KEY, "2024-01-03", day1.slice(0, 0))  # an empty day is committed too

    assert lake.read_arrow(KEY, "2024-01-02").to_pylist() == day2.to_pylist()  # ingest_date stays hidden
    assert lake.read_arrow(KEY, "2024-01-03").num_rows == 0
    assert lake.committed_partitions(KEY) == ["2024-01-01", "2024-01-02", "2024-01-03"]

    # An independent reader: the catalog alone (no lake_assets code) through pyiceberg into DuckDB.
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("lake", uri=f"sqlite:///{tmp_path}/lake/catalog.db")
    arrow = catalog.load_table("raw.src__table").scan().to_arrow()
    con = duckdb.connect()
    con.register("t", arrow)
    rows = con.execute("SELECT ingest_date, sale_id, amount, channel FROM t ORDER BY sale_id").fetchall()
    expected = [
        (date(2024, 1, 1), r["sale_id"], r["amount"], None) for r in day1.to_pylist()
    ] + [(date(2024, 1, 2), "S3", 3.0, "web")]
    assert rows == expected


def _stage(lake: LakeStorage, day: str, values: list[int]) -> Any:
    """A write whose files are staged (the slow part) but not committed yet."""
    context = lake.staged_batch(KEY, day)
    batch = context.__enter__()
    Path(batch.local_dir).mkdir(parents=True, exist_ok=True)
    pq.write_table(batch.with_partition_column(pa.table({"x": values})), f"{batch.local_dir}/part-0.parquet")
    return context, batch


def _commit_together(batches: list[Any]) -> list[BaseException | None]:
    """Commit every staged batch from its own thread at the same moment."""
    start = threading.Barrier(len(batches))
    outcome: list[BaseException | None] = [None] * len(batches)

    def run(i: int) -> None:
        start.wait()
        try:
            batches[i].commit()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


@pytest.mark.parametrize("existing", [True, False], ids=["rewrite", "first-write"])
def test_two_writers_of_one_partition_one_wins_the_other_conflicts(tmp_path: Path, existing: bool) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    lake.write_arrow(KEY, DAY if existing else "2023-12-31", pa.table({"x": [0]}))
    writers = [LakeStorage(url=str(tmp_path / "lake")) for _ in range(2)]  # two processes' resources
    staged = [_stage(writers[0], DAY, [1, 1]), _stage(writers[1], DAY, [2, 2, 2])]
    outcome = _commit_together([batch for _, batch in staged])

    failed = [e for e in outcome if e is not None]
    assert len(failed) == 1, outcome
    assert isinstance(failed[0], LakeWriteConflict) and isinstance(failed[0], CommitFailedException)
    assert "raw/src/table partition 2024-01-01" in str(failed[0]) and "Run it again" in str(failed[0])
    winner = outcome.index(None)
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [[1, 1], [2, 2, 2]][winner]
    _referenced_files_exist(lake, KEY)


def test_two_writers_of_different_partitions_both_commit(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    lake.write_arrow(KEY, DAY, pa.table({"x": [0]}))
    writers = [LakeStorage(url=str(tmp_path / "lake")) for _ in range(3)]
    days = ["2024-01-02", "2024-01-03", "2024-01-04"]
    staged = [_stage(w, d, [i]) for i, (w, d) in enumerate(zip(writers, days, strict=True))]
    assert _commit_together([batch for _, batch in staged]) == [None, None, None]
    assert {d: lake.read_arrow(KEY, d).column("x").to_pylist() for d in days} == {
        "2024-01-02": [0], "2024-01-03": [1], "2024-01-04": [2]
    }
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [0]


def test_a_daily_table_whose_rows_carry_ingest_date_keeps_it(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    facts = pa.table({"sale_line_id": ["L1"], "ingest_date": [date(2024, 1, 1)], "quantity": [2]})
    lake.write_arrow(["curated", "fact"], DAY, facts)
    assert lake.read_arrow(["curated", "fact"], DAY).to_pylist() == facts.to_pylist()
    table = lake.load_table(["curated", "fact"])
    assert [(f.name, table.schema().find_column_name(f.source_id)) for f in table.spec().fields] == [
        ("ingest_date", "ingest_date")
    ]


def test_materialization_metadata_names_the_table_version(tmp_path: Path, spark: Any) -> None:
    from dagster import DailyPartitionsDefinition, asset, materialize
    from dagster_pyspark import LazyPySparkResource

    from lake_assets.io_managers import ParquetLakeIOManager

    @asset(key_prefix=["processed"], partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
    def sale() -> pa.Table:
        return pa.table({"sale_id": ["S1", "S2", "S3"], "amount": [1.0, 2.0, 3.0]})

    lake = LakeStorage(url=str(tmp_path / "lake"))
    io_manager = ParquetLakeIOManager(lake=lake, pyspark=LazyPySparkResource(spark_config={}))
    result = materialize([sale], resources={"io_manager": io_manager}, partition_key=DAY)
    [event] = result.asset_materializations_for_node("processed__sale")
    metadata = {k: v.value for k, v in event.metadata.items()}
    table = lake.load_table(["processed", "sale"])
    assert metadata["snapshot_id"] == str(table.current_snapshot().snapshot_id)
    assert metadata["iceberg_table"] == "processed.sale"
    assert metadata["dagster/row_count"] == 3
    assert [c.name for c in metadata["dagster/column_schema"].columns] == ["sale_id", "amount"]


def test_an_output_yielded_before_a_failure_is_stored_and_read_back_as_this_runs(
    tmp_path: Path, spark: Any
) -> None:
    """What the processed step relies on: Dagster hands a yielded output to the lake IO manager before the
    asset's code resumes, so its rows are committed (and countable) even when the step then fails."""
    from dagster import AssetOut, DailyPartitionsDefinition, Failure, Output, materialize, multi_asset
    from dagster_pyspark import LazyPySparkResource

    from lake_assets.io_managers import ParquetLakeIOManager
    from lake_assets.io_managers.lake_store import rows_stored

    lake = LakeStorage(url=str(tmp_path / "lake"))
    counted: list[int] = []

    @multi_asset(outs={"kept": AssetOut(key=["quarantine", "toy"]), "main": AssetOut(key=["processed", "toy"])},
                 partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
    def toy(context):  # noqa: ANN001, ANN202 - a Dagster compute function
        yield Output(pa.table({"reason": ["a", "b"]}), output_name="kept")
        counted.append(rows_stored(lake, ["quarantine", "toy"], context.partition_key, context.run.run_id))
        raise Failure("too many rejected rows")

    io_manager = ParquetLakeIOManager(lake=lake, pyspark=LazyPySparkResource(spark_config={}))
    result = materialize([toy], resources={"io_manager": io_manager}, partition_key=DAY, raise_on_error=False)
    assert not result.success
    assert counted == [2]
    assert lake.read_arrow(["quarantine", "toy"], DAY).column("reason").to_pylist() == ["a", "b"]
    assert lake.commit_info(["processed", "toy"], DAY) is None
    # A count left by another run is refused, never reported as this run's.
    with pytest.raises(LookupError, match="no commit of run other-run"):
        rows_stored(lake, ["quarantine", "toy"], DAY, "other-run")


def test_columns_widen_and_an_incompatible_type_is_refused_by_name(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    lake.write_arrow(KEY, "2024-01-01", pa.table({"qty": pa.array([1], pa.int32())}))
    lake.write_arrow(KEY, "2024-01-02", pa.table({"qty": pa.array([2**40], pa.int64())}))  # int -> long
    assert lake.read_arrow(KEY, "2024-01-02").column("qty").to_pylist() == [2**40]
    with pytest.raises(ValueError, match=r"raw/src/table partition 2024-01-03: the written columns do not fit"):
        lake.write_arrow(KEY, "2024-01-03", pa.table({"qty": ["two"]}))
    assert lake.committed_partitions(KEY) == ["2024-01-01", "2024-01-02"]


def test_an_empty_partition_reads_with_the_types_of_a_full_one(tmp_path: Path, spark: Any) -> None:
    """Raw stamps `_ingested_at` without a zone; an empty day must read back as the same Spark type,
    or a table written from it next changes the column's type and the commit is refused."""
    from datetime import datetime

    from lake_assets.io_managers.spark_lake import read_spark, write_spark

    lake = LakeStorage(url=str(tmp_path / "lake"))
    stamped = pa.schema([("id", pa.string()), ("_ingested_at", pa.timestamp("us"))])
    lake.write_arrow(KEY, DAY, pa.table({"id": ["a"], "_ingested_at": [datetime(2024, 1, 1, 2)]}, schema=stamped))
    lake.write_arrow(KEY, "2024-01-02", stamped.empty_table())
    full, empty = read_spark(spark, lake, KEY, DAY), read_spark(spark, lake, KEY, "2024-01-02")
    assert full.dtypes == empty.dtypes
    derived = ["processed", "src", "table"]
    write_spark(full, lake, derived, DAY)
    assert write_spark(empty, lake, derived, "2024-01-02").rows == 0


def _open_and_write(lake_url: str, catalog_uri: str, name: str, barrier: Any, errors: Any) -> None:
    lake = LakeStorage(url=lake_url, catalog_uri=catalog_uri)
    barrier.wait()
    try:
        lake.write_arrow(["raw", "src", name], DAY, pa.table({"id": [1, 2]}))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which asserts there were none
        errors.put(f"{name}: {type(error).__name__}: {error}")


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_processes_opening_a_new_catalog_at_once_all_commit(
    catalog: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The steps of a multi-process run all open the catalog of a new lake at the same moment.
    catalog_uri = request.getfixturevalue("postgres_catalog") if catalog == "postgresql" else ""
    lake_url = str(tmp_path / "lake")
    context = multiprocessing.get_context("fork")
    writers = 6
    barrier, errors = context.Barrier(writers), context.Queue()
    processes = [
        context.Process(target=_open_and_write, args=(lake_url, catalog_uri, f"t{i}", barrier, errors))
        for i in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert failures == []
    lake = LakeStorage(url=lake_url, catalog_uri=catalog_uri)
    assert sorted(t for _, t in lake.catalog.list_tables("raw")) == sorted(f"src__t{i}" for i in range(writers))


def _stage_by_date(batch: Any, rows: pa.Table) -> None:
    """One file per `sale_date` value, as `write_spark_partitions` stages them."""
    os.makedirs(batch.local_dir, exist_ok=True)
    for number, day in enumerate(sorted(set(rows.column("sale_date").to_pylist()))):
        one = rows.filter(pc.equal(rows.column("sale_date"), pa.scalar(day, pa.date32())))
        pq.write_table(one, f"{batch.local_dir}/part-{number}.parquet")


def test_several_partitions_of_a_data_column_replace_in_one_commit(tmp_path: Path) -> None:
    lake = LakeStorage(url=str(tmp_path / "lake"))
    key = ["curated", "facts"]

    def rows(lines: list[tuple[str, int]]) -> pa.Table:
        return pa.table({"line": [line for line, _ in lines],
                         "sale_date": pa.array([date(2024, 1, d) for _, d in lines], pa.date32())})

    with lake.staged_partitions(key, "sale_date") as batch:
        _stage_by_date(batch, rows([("a", 1), ("b", 1), ("c", 2), ("d", 3)]))
        first = batch.commit(state={"run_day": "2024-01-05"})
    assert sorted(first) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert len({info.snapshot_id for info in first.values()}) == 1  # one snapshot for the three dates
    # Date 1 rewritten, date 3 emptied (its only line moved to date 2); date 2 untouched by this commit.
    with lake.staged_partitions(key, "sale_date") as batch:
        _stage_by_date(batch, rows([("a", 1)]))
        second = batch.commit(replace=["2024-01-03"], state={"run_day": "2024-01-06"})
    assert {d: i.rows for d, i in second.items()} == {"2024-01-01": 1, "2024-01-03": 0}
    content = {d: sorted(lake.read_arrow(key, d).column("line").to_pylist()) for d in lake.committed_partitions(key)}
    assert content == {"2024-01-01": ["a"], "2024-01-02": ["c"], "2024-01-03": []}
    assert {d: i.state["run_day"] for d, i in lake.commits(key).items()} == {
        "2024-01-01": "2024-01-06", "2024-01-02": "2024-01-05", "2024-01-03": "2024-01-06"}
    both = lake.read_arrow_partitions(key, ["2024-01-01", "2024-01-02"])
    assert sorted(both.column("line").to_pylist()) == ["a", "c"]
    # A writer that staged date 2 while another committed it fails and publishes nothing.
    with lake.staged_partitions(key, "sale_date") as late, lake.staged_partitions(key, "sale_date") as early:
        _stage_by_date(early, rows([("x", 2)]))
        early.commit()
        _stage_by_date(late, rows([("y", 2), ("z", 4)]))
        with pytest.raises(LakeWriteConflict, match="2024-01-02"):
            late.commit()
    assert lake.committed_partitions(key) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert lake.read_arrow(key, "2024-01-02").column("line").to_pylist() == ["x"]


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_spool_is_outside_the_table_until_its_commit_and_loses_to_a_writer_that_committed_meanwhile(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    lake = lake_of_kind(kind, tmp_path, request)
    lake.write_arrow(KEY, DAY, pa.table({"x": [1]}))
    with lake.spool(KEY, DAY) as spool:
        pq.write_table(spool.with_partition_column(pa.table({"x": [2, 3]})), f"{spool.local_dir}/part-0.parquet")
        assert not Path(spool.local_dir).is_relative_to(Path(lake.dataset_dir(KEY[:1])))  # not in the raw layer
        lake.write_arrow(KEY, DAY, pa.table({"x": [4]}))  # another writer commits the partition meanwhile
        with pytest.raises(LakeWriteConflict, match=spool.batch_id):
            spool.commit()
        target = spool.target_dir
    assert not Path(spool.local_dir).exists()
    if kind == "local":
        assert not Path(target).exists()  # the moved files went with the failed commit
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [4]

    with lake.spool(KEY, DAY) as spool:
        pq.write_table(spool.with_partition_column(pa.table({"x": [5, 6]})), f"{spool.local_dir}/part-0.parquet")
        assert spool.commit().rows == 2
    assert not Path(spool.local_dir).exists()
    assert sorted(lake.read_arrow(KEY, DAY).column("x").to_pylist()) == [5, 6]
    _referenced_files_exist(lake, KEY)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_spool_left_by_a_killed_process_is_removed_by_a_later_spool_once_abandoned(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    lake = lake_of_kind(kind, tmp_path, request)
    # Local: inside the lake, never in a table's directory; S3: on local disk, outside the bucket.
    spool_root = Path(lake.spool_root)
    expected_root = tmp_path / "lake" / ".spool" if kind == "local" else Path(tempfile.gettempdir()) / S3_SPOOL_DIR
    assert spool_root == expected_root
    tag = uuid.uuid4().hex[:8]  # the S3 spool root is shared by every S3 lake of the machine
    abandoned, in_flight = spool_root / f"raw.s__t-old-{tag}", spool_root / f"raw.s__t-new-{tag}"
    for folder in (abandoned, in_flight):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86_400
    for path in (abandoned / "part-0.parquet", abandoned):
        os.utime(path, (two_days_ago, two_days_ago))
    # A spool whose directory is old but whose file is still being written is in flight.
    os.utime(in_flight, (two_days_ago, two_days_ago))
    with lake.spool(KEY, DAY) as spool:
        assert Path(spool.local_dir).parent == spool_root
    assert not abandoned.exists()
    assert (in_flight / "part-0.parquet").exists()
    shutil.rmtree(in_flight)
