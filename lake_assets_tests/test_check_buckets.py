"""Hash buckets of the checks: equal keys land in one bucket whatever batch, slice, chunking or type
they arrive in; a spill gives back every row it was given, each in its key's bucket; distinct keys
spread over the buckets. The checks' streaming Parquet reader gives what Arrow's Dataset scan gives.
No Spark, no Dagster: small Arrow tables."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lake_assets.checks.buckets import Spill, bucket_count, bucket_of
from lake_assets.parquet_stream import stream_batches


def test_equal_keys_share_a_bucket_across_slices_chunks_and_nulls() -> None:
    ids = pa.array(["L1", None, "", "L22", "L1", "é", None, "L22"])
    whole = bucket_of([ids], 5)
    # The same values at a non-zero offset, and split into chunks, hash as they do whole.
    assert list(bucket_of([ids.slice(3)], 5)) == list(whole[3:])
    chunked = pa.chunked_array([ids.slice(0, 3), ids.slice(3)])
    assert list(bucket_of([chunked], 5)) == list(whole)
    assert whole[0] == whole[4] and whole[3] == whole[7] and whole[1] == whole[6]
    assert all(0 <= b < 5 for b in whole)
    # Several key columns, non-text types among them.
    days = pa.array([date(2024, 1, 1), date(2024, 1, 2)] * 4, pa.date32())
    numbers = pa.array([7, 8] * 4, pa.int64())
    both = bucket_of([days, numbers], 3)
    assert len(set(both[0::2])) == 1 and len(set(both[1::2])) == 1


def test_distinct_keys_spread_over_the_buckets() -> None:
    counts = Counter(bucket_of([pa.array([f"L{i:09d}" for i in range(20_000)])], 8).tolist())
    assert sorted(counts) == list(range(8))
    assert all(2_000 <= n <= 3_000 for n in counts.values()), counts
    assert (bucket_count(0), bucket_count(250_000), bucket_count(250_001), bucket_count(10, 3)) == (1, 1, 2, 4)


def test_a_spill_gives_back_every_row_in_its_keys_bucket(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.string()), ("n", pa.int64())])
    spill = Spill(tmp_path, "t", schema, ["id"], 4)
    rows = [(f"K{i % 37}", i) for i in range(300)]
    for start in range(0, 300, 64):  # several batches; a key's rows come in more than one
        part = rows[start:start + 64]
        spill.add(pa.record_batch([pa.array([r[0] for r in part]), pa.array([r[1] for r in part])], schema=schema))
    found: list[tuple[str, int]] = []
    for bucket in range(4):
        table = spill.read(bucket)
        keys = set(table.column("id").to_pylist())
        assert all(bucket_of([pa.array([k])], 4)[0] == bucket for k in keys)
        found += list(zip(table.column("id").to_pylist(), table.column("n").to_pylist(), strict=True))
    assert sorted(found) == sorted(rows) and spill.rows == 300
    assert list(tmp_path.iterdir()) == []  # each bucket's file is gone once read


def test_the_streaming_reader_gives_what_the_dataset_gives(tmp_path: Path) -> None:
    """Two files, the first without `rate` (a column configured later), read 2 rows at a time and
    filtered: the same rows, order and types as Arrow's own Dataset scan."""
    first = pa.table({"id": ["a", "b", "c"], "day": pa.array([1, 2, 1], pa.int32())})
    second = pa.table({"id": ["d", "e"], "day": pa.array([1, 3], pa.int32()), "rate": [0.5, 0.25]})
    pq.write_table(first, tmp_path / "1.parquet")
    pq.write_table(second, tmp_path / "2.parquet")
    schema = pa.unify_schemas([first.schema, second.schema])
    dataset = ds.dataset([str(tmp_path / "1.parquet"), str(tmp_path / "2.parquet")], schema=schema, format="parquet")
    wanted = ds.field("day") >= 1
    for columns, row_filter in [(None, None), (["id", "rate"], ds.field("day") == 1), (["rate"], wanted)]:
        streamed = pa.Table.from_batches(list(stream_batches(dataset, columns, row_filter, batch_rows=2)))
        assert streamed.equals(dataset.to_table(columns=columns, filter=row_filter)), (columns, row_filter)
    sizes = [b.num_rows for b in stream_batches(dataset, ["id"], ds.field("day") == 1, 2)]
    assert sum(sizes) == 3 and max(sizes) <= 2
