"""Record batches of a lake Dataset read file by file with Parquet's streaming reader (pure pyarrow: the
checks and the warehouse loads read through it, so any room may import it).

Why not `Dataset.to_batches`: its Parquet scan decodes a whole row group of the selected columns
before slicing it into batches, so its memory follows the writer's row-group size (up to Spark's
128 MB compressed blocks, hundreds of MB decoded), and with it the day. `ParquetFile.iter_batches`
over a buffered stream decodes `batch_rows` rows at a time. Batches come in the Dataset's order
(files in order, rows in file order), the order `Dataset.take` counts rows in; every batch has the
Dataset's schema for the columns asked (a column a file lacks is null, as the Dataset gives it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

STREAM_BUFFER = 1 << 20  # bytes read from a file at a time


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if not len(schema):  # no column asked: the batch still counts its rows
        return batch.select([])
    columns = [batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type)
               for f in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def stream_batches(dataset: ds.Dataset, columns: Sequence[str] | None = None,
                   row_filter: ds.Expression | None = None, batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
    """`columns` (all when None) of the rows of `dataset` that `row_filter` selects, at most
    `batch_rows` rows a batch read at a time (empty batches left out)."""
    if not isinstance(dataset, ds.FileSystemDataset):  # an in-memory table: nothing to decode
        yield from dataset.to_batches(columns=columns, filter=row_filter, batch_size=batch_rows)
        return
    schema = dataset.schema
    wanted = pa.schema([schema.field(c) for c in (columns if columns is not None else schema.names)])
    # The filter's columns are read too: every column whose name occurs in the expression's text (a
    # superset at worst, which only costs reading a column more).
    text = str(row_filter) if row_filter is not None else ""
    read = pa.schema([f for f in schema if f.name in wanted.names or (text and f.name in text)])
    for path in dataset.files:
        with dataset.filesystem.open_input_file(path) as source:
            parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=STREAM_BUFFER)
            present = [n for n in read.names if n in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=present, use_threads=False):
                batch = _conform(batch, read)
                if row_filter is not None:
                    batch = batch.filter(row_filter)
                if batch.num_rows:
                    yield batch.select(wanted.names) if read.names != wanted.names else batch
