"""Resources own all I/O: the lake, the Spark session, the warehouse."""

from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.resources.spark import build_spark_resource
from lake_assets.resources.warehouse import WarehouseResource

__all__ = ["LakeStorage", "WarehouseResource", "build_spark_resource"]
