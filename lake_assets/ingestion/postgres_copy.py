"""PostgreSQL extraction through `COPY (query) TO STDOUT`: rows as CSV text straight into Arrow.

The row path (a server-side cursor, one Python object per value, then `rows_as_text`) spends most
of its time building Python objects. Here the server renders each column as the text the row path
would produce (see ingestion/text.py), psycopg2 streams the COPY output from a background thread
through a bounded queue, and pyarrow's CSV reader turns it into string columns: memory stays flat
(at most `QUEUE_BLOCKS` blocks of `BLOCK_BYTES` in flight, plus one chunk). A row of `BLOCK_BYTES` or
more (a long text value) is held whole and parsed on its own, in its place among the others.

Only columns of the types in `_RENDER` take this path; a result with any other type (floats, times,
arrays, JSON, bpchar, ...) keeps the row path, whose Python rendering is the definition of the text.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

BLOCK_BYTES = 1 << 20
QUEUE_BLOCKS = 4

# PostgreSQL type OID -> SQL rendering `{c}` as the row path's text (`rows_as_text` of what psycopg2
# returns): integers and numerics as PostgreSQL prints them (numeric keeps its scale), booleans
# `true`/`false`, dates ISO, timestamps `YYYY-MM-DD HH:MM:SS[.ffffff]` (zoned ones in UTC).
_TIMESTAMP = r"regexp_replace(to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US'), '\.0+$', '')"
_RENDER: dict[int, str] = {
    16: "{c}::text",  # bool
    20: "{c}::text", 21: "{c}::text", 23: "{c}::text",  # int8, int2, int4
    1700: "{c}::text",  # numeric
    25: "{c}", 1043: "{c}", 19: "{c}::text",  # text, varchar, name
    2950: "{c}::text",  # uuid (psycopg2 returns it as text)
    1082: "to_char({c}, 'YYYY-MM-DD')",  # date
    1114: _TIMESTAMP,  # timestamp
    1184: _TIMESTAMP.replace("{c}", "({c} AT TIME ZONE 'UTC')"),  # timestamptz
}
# Cursor column types whose text parses back into the value psycopg2 would return.
_NATIVE: dict[int, Callable[[str], Any]] = {
    20: int, 21: int, 23: int, 1700: Decimal, 25: str, 1043: str,
    1082: date.fromisoformat, 1114: datetime.fromisoformat,
}


def copy_select(raw_cursor: Any, sql: str, params: dict[str, Any], cursor_column: str | None) -> str | None:
    """The `SELECT` to COPY for `sql` (psycopg2 `%(name)s` parameters already bound), or None when a
    column's type (or the cursor column's) has no rendering here, or the connection's client encoding
    is not UTF-8 (Arrow reads UTF-8; the row path reports text the driver cannot decode). Runs `sql`
    with `LIMIT 0` to learn the result's types."""
    if raw_cursor.connection.encoding != "UTF8":
        return None
    raw_cursor.execute(f"SELECT * FROM ({sql}) d LIMIT 0", params)
    described = [(column.name, column.type_code) for column in raw_cursor.description]
    if any(oid not in _RENDER for _, oid in described):
        return None
    if cursor_column is not None and dict(described).get(cursor_column) not in _NATIVE:
        return None
    quote = _quote_identifier
    parts = [_RENDER[oid].format(c=f"d.{quote(name)}") + f" AS {quote(name)}" for name, oid in described]
    return raw_cursor.mogrify(f"SELECT {', '.join(parts)} FROM ({sql}) d", params).decode()


def cursor_parser(raw_cursor: Any, column: str) -> Callable[[str], Any]:
    """Text of the cursor column -> the value psycopg2 would return (after `copy_select` described it)."""
    oid = dict((c.name, c.type_code) for c in raw_cursor.description)[column]
    return _NATIVE[oid]


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class _LongRow:
    """One row of at least `BLOCK_BYTES`: parsed on its own (pyarrow's streaming reader cannot take a
    row longer than its block)."""

    data: bytes


class _Blocks(io.RawIOBase):
    """Both ends of the COPY stream: psycopg2 `write`s rows (in the COPY thread; each write is one
    row), gathered into blocks put on a bounded queue; pyarrow's CSV reader `read`s the blocks. A long
    row goes on the queue alone and ends the reader's current segment (`long_row` then holds it);
    `None` on the queue ends the stream."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: queue.Queue[bytes | _LongRow | None] = queue.Queue(maxsize=QUEUE_BLOCKS)
        self.pending = bytearray()
        self.current = b""
        self.offset = 0
        self.long_row: bytes | None = None
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    # ---- writer side (COPY thread)
    def write(self, data: Any) -> int:
        if len(data) >= BLOCK_BYTES:
            if self.pending:
                self._put(bytes(self.pending))
                self.pending.clear()
            self._put(_LongRow(bytes(data)))
            return len(data)
        self.pending += data
        if len(self.pending) >= BLOCK_BYTES:
            self._put(bytes(self.pending))
            self.pending.clear()
        return len(data)

    def _put(self, block: bytes | _LongRow | None) -> None:
        while not self.stopped.is_set():
            try:
                self.blocks.put(block, timeout=0.1)
                return
            except queue.Full:
                continue
        raise RuntimeError("the reader stopped")  # ends copy_expert when the consumer went away

    def finish(self, error: BaseException | None) -> None:
        self.error = error
        try:
            if error is None and self.pending:
                self._put(bytes(self.pending))
            self._put(None)
        except RuntimeError:
            pass  # the consumer went away: nobody reads the end

    # ---- reader side (pyarrow)
    def readable(self) -> bool:
        return True

    def next_block(self) -> bool:
        """Takes the next item off the queue: True for a block of rows (now `current`); False at the
        end of a segment (a long row, now in `long_row`) or of the stream."""
        item = self.blocks.get()
        if item is None:
            self.blocks.put(None)  # stays at the end for any further read
            return False
        if isinstance(item, _LongRow):
            self.long_row = item.data
            return False
        self.current, self.offset = item, 0
        return True

    def readinto(self, buffer: Any) -> int:
        while self.offset >= len(self.current):
            if not self.next_block():
                return 0
        size = min(len(buffer), len(self.current) - self.offset)
        buffer[:size] = self.current[self.offset:self.offset + size]
        self.offset += size
        return size


def copy_chunks(
    raw_cursor: Any, select: str, columns: Sequence[str], chunk_rows: int,
    on_error: Callable[[BaseException], Exception],
) -> Iterator[pa.Table]:
    """All-string tables of at most `chunk_rows` rows of `COPY (select) TO STDOUT (FORMAT csv)`: NULL is
    NULL, an empty text stays "". A driver error (also one in the middle of the stream) is raised as
    `on_error(error)`."""
    stream = _Blocks()

    def run() -> None:
        try:
            raw_cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", stream)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            stream.finish(exc if not stream.stopped.is_set() else None)
            return
        stream.finish(None)

    worker = threading.Thread(target=run, name="postgres-copy", daemon=True)
    worker.start()
    try:
        held: list[pa.RecordBatch] = []
        held_rows = 0
        for batch in _batches(stream, columns):
            if stream.error is not None:
                break  # the stream ended early: its last rows may be cut; raised below
            held.append(batch)
            held_rows += batch.num_rows
            while held_rows >= chunk_rows:
                table = pa.Table.from_batches(held)
                yield table.slice(0, chunk_rows).combine_chunks()
                rest = table.slice(chunk_rows)
                held, held_rows = rest.to_batches(), rest.num_rows
        if stream.error is not None:
            raise on_error(stream.error)
        if held_rows:
            yield pa.Table.from_batches(held).combine_chunks()
    except BaseException:
        if stream.error is not None:
            raise on_error(stream.error) from None
        raise
    finally:
        stream.stopped.set()
        worker.join()


def _batches(stream: _Blocks, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """Every row of the stream as string batches, in order: each segment between long rows through
    pyarrow's streaming reader, each long row parsed alone with a block that holds it."""
    options = {
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns}, strings_can_be_null=True, null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    }
    while True:
        # pyarrow's CSV reader rejects empty input: a segment is opened only once it has a block.
        if stream.next_block():
            yield from pacsv.open_csv(
                pa.PythonFile(stream, mode="r"),
                read_options=pacsv.ReadOptions(column_names=list(columns), block_size=BLOCK_BYTES, use_threads=False),
                **options,
            )
        if stream.long_row is None:
            return
        row, stream.long_row = stream.long_row, None
        yield from pacsv.read_csv(
            pa.BufferReader(row),
            read_options=pacsv.ReadOptions(column_names=list(columns), block_size=len(row) + 1, use_threads=False),
            **options,
        ).to_batches()
