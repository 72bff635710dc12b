"""DataIngestionPipeline: connect -> extract -> validate -> add metadata, for one source table and day.

It knows sources, not the lake layout: it returns the raw rows (as delivered, plus `_ingested_at`,
`_source`, `_batch_id`, `_source_file`) and the rejected rows; the raw asset stores both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from lake_assets.ingestion.file_source import Extract, FileSource


@dataclass
class IngestionResult:
    rows: pa.Table
    rejects: pa.Table
    origins: list[str]
    batch_id: str


class DataIngestionPipeline:
    def __init__(self, source: FileSource) -> None:
        self.source = source

    def run(self, day: str) -> IngestionResult:
        extract: Extract = self.source.extract(day)
        batch_id = uuid.uuid4().hex
        ingested_at = datetime.now(timezone.utc).replace(tzinfo=None)
        table = extract.table
        n = table.num_rows
        table = (
            table.append_column("_ingested_at", pa.array([ingested_at] * n, pa.timestamp("us")))
            .append_column("_source", pa.array([self.source.name] * n, pa.string()))
            .append_column("_batch_id", pa.array([batch_id] * n, pa.string()))
        )
        if "_source_file" in table.column_names:
            # keep the lineage column last, next to the other metadata
            origin = table.column("_source_file")
            table = table.drop_columns(["_source_file"]).append_column("_source_file", origin)
        rejects = pa.Table.from_pylist(
            extract.rejects,
            schema=pa.schema(
                [("_source_file", pa.string()), ("_line", pa.string()), ("_raw", pa.string()), ("_reject_reason", pa.string())]
            ),
        )
        return IngestionResult(rows=table, rejects=rejects, origins=extract.origins, batch_id=batch_id)
