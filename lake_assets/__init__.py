"""lake_assets: a retail data lake as a Dagster asset graph.

`dagster ... -m lake_assets` finds `defs` here. It is lazy: importing `lake_assets.config` or any
other submodule does not load the pipeline config; loading the code location does.
"""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from lake_assets.config import load_config
    from lake_assets.definitions import build_definitions

    return build_definitions(load_config())
