"""Sources and the ingestion pipeline. Knows sources; knows nothing of the lake layout."""

from lake_assets.ingestion.file_source import FileSource, SourceUnavailable
from lake_assets.ingestion.pipeline import DataIngestionPipeline, IngestionResult

__all__ = ["DataIngestionPipeline", "FileSource", "IngestionResult", "SourceUnavailable"]
