"""ChunkWriter: streams chunks of one batch into one Parquet file (a row group per chunk).

Memory holds one chunk at a time. If a later chunk brings columns the file does not have yet (JSON
records, CSV files with different headers), the file written so far is re-streamed into a new file
with the widened schema, one row group at a time, so memory stays flat either way. Data columns keep
their first-seen order; `_`-prefixed lineage columns stay last. `prepare` adds what the lake needs in
the file but the caller does not see (a daily table's `ingest_date`); `schema` is the caller's.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq


def _ordered(fields: list[pa.Field]) -> pa.Schema:
    data = [f for f in fields if not f.name.startswith("_")]
    lineage = [f for f in fields if f.name.startswith("_")]
    return pa.schema(data + lineage)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns, in order; absent columns as nulls."""
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


class ChunkWriter:
    def __init__(self, directory: str, prepare: Callable[[pa.Table], pa.Table] | None = None) -> None:
        self.directory = directory
        self._prepare = prepare or (lambda table: table)
        self.rows = 0
        self._part = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._path: str | None = None

    @property
    def schema(self) -> pa.Schema | None:
        return self._schema

    def _open(self, schema: pa.Schema) -> None:
        os.makedirs(self.directory, exist_ok=True)
        self._path = f"{self.directory}/part-{self._part:05d}.parquet"
        self._part += 1
        self._schema = schema
        file_schema = self._prepare(schema.empty_table()).schema
        self._writer = pq.ParquetWriter(self._path, file_schema, compression="snappy")

    def write(self, table: pa.Table) -> None:
        if self._schema is None:
            self._open(_ordered(list(table.schema)))
        elif not set(table.column_names) <= set(self._schema.names):
            self._widen(table.schema)
        assert self._writer is not None and self._schema is not None
        if table.num_rows:
            self._writer.write_table(self._prepare(conform(table, self._schema)))
            self.rows += table.num_rows

    def _widen(self, incoming: pa.Schema) -> None:
        assert self._writer is not None and self._schema is not None and self._path is not None
        known = set(self._schema.names)
        merged = _ordered(list(self._schema) + [f for f in incoming if f.name not in known])
        self._writer.close()
        old = self._path
        self._open(merged)
        assert self._writer is not None
        for batch in pq.ParquetFile(old).iter_batches():
            self._writer.write_table(self._prepare(conform(pa.Table.from_batches([batch]), merged)))
        os.remove(old)

    def close(self, empty_schema: pa.Schema) -> None:
        """Finish the file; a batch without rows still gets one (empty) file with `empty_schema`."""
        if self._writer is None:
            self._open(_ordered(list(empty_schema)))
        assert self._writer is not None
        self._writer.close()
