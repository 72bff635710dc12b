"""The warehouse IO manager: writes an asset's Arrow table, or the rows of a lazy `pyarrow.dataset.Dataset`
(streamed in batches, never whole in memory), into the warehouse table of the same name.

Assets with a primary key (definition metadata `warehouse/primary_key`, the dimensions) are
upserted: staged, merged by key, vanished keys deleted. Other assets replace the whole table. Each is
one transaction, so BI users never see a half-loaded table. Partitioned assets are not stored here:
warehouse/fact_sales loads itself, by the sale dates its run wrote (see `assets/warehouse.py`). Data
errors raise `WarehouseDataRejected` (a `Failure` without retries).
"""


from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from lake_assets.resources.warehouse import WarehouseResource

PRIMARY_KEY_KEY = "warehouse/primary_key"


class WarehouseIOManager(ConfigurableIOManager):
    warehouse: ResourceDependency[WarehouseResource]

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not isinstance(obj, (pa.Table, ds.Dataset)):
            raise TypeError(f"{context.asset_key.to_user_string()}: the warehouse stores pyarrow Tables or Datasets")
        if context.has_asset_partitions:
            raise TypeError(f"{context.asset_key.to_user_string()}: partitioned assets load themselves (see "
                            "assets/warehouse.py); the warehouse IO manager stores whole tables")
        table = context.asset_key.path[-1]
        self.warehouse.ensure_schema()
        primary_key = (context.definition_metadata or {}).get(PRIMARY_KEY_KEY)
        if primary_key:
            rows = self.warehouse.upsert_rows(table, obj, [str(primary_key)])
            context.add_output_metadata(
                {"dagster/row_count": rows, "load": "upsert", "warehouse": self.warehouse.safe_url}
            )
            return
        rows = self.warehouse.replace_rows(table, obj)
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "table": f"{self.warehouse.schema_name + '.' if self.warehouse.schema_name else ''}{table}",
                "warehouse": self.warehouse.safe_url,
            }
        )

    def load_input(self, context: InputContext) -> pa.Table:
        table = context.asset_key.path[-1]
        with self.warehouse.connect_checked() as conn:
            result = conn.exec_driver_sql(f"SELECT * FROM {self.warehouse.qualified(table)}")
            columns = list(result.keys())
            rows = result.fetchall()
        return pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
