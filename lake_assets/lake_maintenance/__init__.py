"""Operations on the Iceberg lake outside the daily graph: retention, restore, S3 bucket setup.

Each module works on a `LakeStorage` and the pipeline config, and has a `main(argv)` for its command
(`lake-retention`, `lake-restore`, `lake-s3-setup`).
"""

from __future__ import annotations

from typing import Any

from lake_assets.config import PipelineConfig
from lake_assets.resources.lake_storage import LakeStorage


def lake_from_config(config: PipelineConfig) -> LakeStorage:
    """The lake the pipeline's `lake` resource opens (same URL, catalog and encryption)."""
    return LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri, kms_key_id=config.lake.kms_key_id)


def table_label(table: Any) -> str:
    """`namespace.table` of a pyiceberg table, as other engines name it."""
    return ".".join(table.name())


def parse_table_key(text: str) -> list[str]:
    """An asset key `<layer>/<a>/<b>` (or the Iceberg name `<layer>.<a>__<b>`) as a lake key path."""
    if "/" in text:
        parts = [p for p in text.strip("/").split("/") if p]
    else:
        namespace, _, name = text.partition(".")
        parts = [namespace, *name.split("__")] if name else [namespace]
    if len(parts) < 2:
        raise ValueError(f"table {text!r}: expected <layer>/<source>/<table> (e.g. raw/shop_files/sales) "
                         "or the Iceberg name <layer>.<name> (e.g. raw.shop_files__sales)")
    return parts
