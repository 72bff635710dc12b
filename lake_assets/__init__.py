"""lake_assets: a retail data lake as a Dagster asset graph.

`dagster ... -m lake_assets` finds `defs` here. It is lazy: importing `lake_assets.config` or any
other submodule does not load the pipeline config; loading the code location does.
"""

import gc
import sys
from types import TracebackType

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from lake_assets.config import ConfigError, load_config
    from lake_assets.definitions import build_definitions

    try:
        config = load_config()
    except ConfigError:
        _report_config_errors_plainly()
        raise
    definitions = build_definitions(config)
    # What the first load leaves (Dagster, Spark's and Arrow's modules, the definitions) lives as long as
    # the process: frozen out of the cyclic garbage collector, whose full passes during a run and at the
    # interpreter's exit would otherwise walk it again (a run's process ended ~0.6 s sooner, measured).
    # Once only: a process that loads the definitions again must be able to collect the old ones.
    if not gc.get_freeze_count():
        gc.freeze()
    return definitions


def _report_config_errors_plainly() -> None:
    """A config error that ends a command (`dagster asset materialize ...`) prints its message alone.

    The message names the file and every bad key; the 40 lines of Dagster's loading stack above it
    would bury that. Only an uncaught error at the top of the process goes through `sys.excepthook`:
    the webserver and code servers catch loading errors and show them their own way.
    """
    from lake_assets.config import ConfigError

    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if isinstance(error, ConfigError):
            print(f"lake_assets: {error}", file=sys.stderr)
        else:
            previous(kind, error, trace)

    sys.excepthook = hook
