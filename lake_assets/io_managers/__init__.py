"""IO managers: the Parquet lake (Spark + Arrow) and the SQL warehouse."""

from lake_assets.io_managers.lake_write import LakeWrite
from lake_assets.io_managers.parquet_lake import ParquetLakeIOManager
from lake_assets.io_managers.warehouse import WarehouseIOManager

__all__ = ["LakeWrite", "ParquetLakeIOManager", "WarehouseIOManager"]
