"""Hash buckets of Arrow record batches spilled to local files, so a check that must compare every
key of a day (uniqueness, a join of two layers) holds one bucket at a time, not the day.

Grain: one `Spill` per stream of batches; bucket `b` holds every row whose key columns hash to `b`,
so equal keys always meet in the same bucket (whatever batch or side they came from, as long as the
sides use the same bucket count). The number of buckets is chosen from the row count
(`bucket_count`), which is what keeps the memory of a comparison flat as the day grows.

The hash is a polynomial over each key's text (non-text keys cast to text first) with a 64-bit mix,
computed with numpy over Arrow's buffers: no Python object per value. It only spreads keys; a
collision costs balance, never correctness.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Rows per bucket a comparison aims at: its peak memory is bounded by this, not by the day.
BUCKET_ROWS = 250_000
_BASE = np.uint64(0x100000001B3)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT = np.uint64(33)


def bucket_count(rows: int, bucket_rows: int = BUCKET_ROWS) -> int:
    """Buckets for `rows` rows so that each holds about `bucket_rows` (at least one)."""
    return max(1, -(-rows // bucket_rows))


@lru_cache(maxsize=8)
def _powers(length: int) -> np.ndarray:
    """_BASE ** (p + 1) for each position p < `length`, wrapping at 2**64."""
    return np.cumprod(np.full(max(length, 1), _BASE, dtype=np.uint64), dtype=np.uint64)


def _text_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One uint64 per value, equal for equal values; nulls all hash alike."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    count = len(values)
    if count == 0:
        return np.empty(0, np.uint64)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, count=count + 1, offset=values.offset * 4).astype(np.int64)
    relative = offsets - offsets[0]
    lengths = np.diff(offsets)
    data = (np.frombuffer(data_buffer, np.uint8)[offsets[0]:offsets[-1]] if data_buffer is not None
            else np.empty(0, np.uint8))
    position = np.arange(len(data), dtype=np.int64) - np.repeat(relative[:-1], lengths)
    weighted = data.astype(np.uint64) * _powers(int(lengths.max(initial=0)))[position]
    sums = np.concatenate((np.zeros(1, np.uint64), np.cumsum(weighted, dtype=np.uint64)))
    hashes = sums[relative[1:]] - sums[relative[:-1]] + lengths.astype(np.uint64)
    if values.null_count:
        hashes[values.is_null().to_numpy(zero_copy_only=False)] = 0
    return hashes


def bucket_of(columns: Sequence[pa.Array | pa.ChunkedArray], buckets: int) -> np.ndarray:
    """The bucket (0 .. buckets - 1) of each row whose key is `columns` (equal keys, equal bucket)."""
    rows = len(columns[0])
    if buckets == 1:
        return np.zeros(rows, np.int64)
    hashes = np.zeros(rows, np.uint64)
    for column in columns:
        hashes = hashes * _BASE ^ _text_hashes(column)
    hashes ^= hashes >> _SHIFT
    hashes *= _MIX
    hashes ^= hashes >> _SHIFT
    return (hashes % np.uint64(buckets)).astype(np.int64)


class Spill:
    """Rows of one schema split into `buckets` Arrow IPC files under `directory`, by the hash of the
    `key` columns. `add` each batch, then `read` each bucket once all batches are in."""

    def __init__(self, directory: str | os.PathLike[str], name: str, schema: pa.Schema, key: Sequence[str],
                 buckets: int) -> None:
        self._paths = [Path(directory) / f"{name}-{b}.arrow" for b in range(buckets)]
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self.schema, self.key, self.buckets, self.rows = schema, list(key), buckets, 0

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Appends `batch` (cast to the spill's schema, columns by name) to the buckets of its rows."""
        table = pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch
        if not table.num_rows:
            return
        table = table.select(self.schema.names).cast(self.schema)
        buckets = bucket_of([table.column(k) for k in self.key], self.buckets)
        if self.buckets > 1:
            order = np.argsort(buckets, kind="stable")
            table = table.take(pa.array(order))
            buckets = buckets[order]
        bounds = np.searchsorted(buckets, np.arange(self.buckets + 1))
        for bucket in range(self.buckets):
            start, stop = int(bounds[bucket]), int(bounds[bucket + 1])
            if stop > start:
                self._writer(bucket).write_table(table.slice(start, stop - start))
        self.rows += table.num_rows

    def _writer(self, bucket: int) -> pa.ipc.RecordBatchStreamWriter:
        if bucket not in self._writers:
            self._writers[bucket] = pa.ipc.new_stream(str(self._paths[bucket]), self.schema)
        return self._writers[bucket]

    def read(self, bucket: int) -> pa.Table:
        """Every row added to `bucket` (an empty table of the schema when none was)."""
        writer = self._writers.pop(bucket, None)
        if writer is None:
            return self.schema.empty_table()
        writer.close()
        with pa.OSFile(str(self._paths[bucket])) as source:
            table = pa.ipc.open_stream(source).read_all()
        self._paths[bucket].unlink()
        return table

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
