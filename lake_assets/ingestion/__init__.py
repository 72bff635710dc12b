"""Sources and the ingestion pipeline: databases, REST APIs and file drops into raw Parquet partitions."""

from lake_assets.ingestion.api_source import APISource
from lake_assets.ingestion.database_source import DatabaseSource
from lake_assets.ingestion.errors import (
    IngestionError,
    SchemaDriftError,
    SourceTemporarilyUnavailable,
    SourceUnavailable,
)
from lake_assets.ingestion.file_source import FileSource, SourceFile
from lake_assets.ingestion.pipeline import (
    QUARANTINE_LAYER,
    DataIngestionPipeline,
    IngestionResult,
    RawDelivery,
    make_source,
    pending_files,
    quarantine_key,
    raw_key,
)

__all__ = [
    "QUARANTINE_LAYER",
    "APISource",
    "DataIngestionPipeline",
    "DatabaseSource",
    "FileSource",
    "IngestionError",
    "IngestionResult",
    "RawDelivery",
    "SchemaDriftError",
    "SourceFile",
    "SourceTemporarilyUnavailable",
    "SourceUnavailable",
    "make_source",
    "pending_files",
    "quarantine_key",
    "raw_key",
]
