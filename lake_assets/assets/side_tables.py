"""A step's side table (the raw and processed quarantines, a token vault): stored whether or not the selection
took its asset.

Grain: one partition of one side table per call. Guarantee: when the function returns, the partition
is committed, whatever the selection: a selected output is yielded and stored by the lake IO manager
(or, in a step over a range of days, by `assets/day_range.py` with the IO manager's write) before the
step's code resumes; one the selection left out (`*warehouse/fact_sales`), or one with no
asset at all (a vault of a column tokenized only at run time), is stored by the same write the IO
manager makes (`io_managers.lake_store.store`), so no selection loses rejected rows or a token's way
back.
"""

from collections.abc import Generator, Sequence
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Output

from lake_assets.io_managers.lake_store import rows_stored, store
from lake_assets.resources.lake_storage import LakeStorage


def store_side_table(
    context: AssetExecutionContext, lake: LakeStorage, output_name: str | None, key_path: Sequence[str],
    frame: Any, day: str,
) -> Generator[Output, None, int]:
    """Commit `frame` (what the lake IO manager stores: a Spark DataFrame, an Arrow table or a
    `LakeWrite` of one partition) as partition `day` of `key_path`; returns the rows stored. Use with
    `rows = yield from store_side_table(...)` in the step's body. `output_name`: the step's output
    holding `key_path`, None when the table has no asset."""
    partition, run_id = day, context.run.run_id
    if output_name is not None and AssetKey(list(key_path)) in context.selected_asset_keys:
        yield Output(frame, output_name=output_name)
        return rows_stored(lake, key_path, partition, run_id)
    return store(lake, key_path, partition, frame, run_id).rows
