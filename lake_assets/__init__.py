"""lake_assets: a retail data lake as a Dagster asset graph.

`dagster ... -m lake_assets` finds `defs` here. It is lazy: importing `lake_assets.config` or any
other submodule does not load the pipeline config; loading the code location does.
"""

import gc
import os
import sys
from types import TracebackType
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from lake_assets.config import PipelineConfig

# The definitions last built in this process, and what they were built from: the config and the
# environment (resources read a few variables of their own). `dagster asset materialize` loads the code
# location twice, once to find the assets and once to run them; the second load reuses the first's
# definitions instead of building every asset again (a run's start ~0.9 s sooner on a slow 2-core
# machine, measured).
_last_built: tuple[str, dg.Definitions] | None = None


@dg.definitions
def defs() -> dg.Definitions:
    global _last_built
    from lake_assets.config import ConfigError, load_config
    from lake_assets.definitions import build_definitions

    try:
        config = load_config()
    except ConfigError:
        _report_config_errors_plainly()
        raise
    if _last_built is not None and _last_built[0] == _fingerprint(config):
        return _last_built[1]
    definitions = build_definitions(config)
    # Taken after the build: building sets defaults of its own (the Spark workers' Python).
    _last_built = (_fingerprint(config), definitions)
    # What the first load leaves (Dagster, Spark's and Arrow's modules, the definitions) lives as long as
    # the process: frozen out of the cyclic garbage collector, whose full passes during a run and at the
    # interpreter's exit would otherwise walk it again (a run's process ended ~0.6 s sooner, measured).
    # Once only: a process that loads the definitions again must be able to collect the old ones.
    if not gc.get_freeze_count():
        gc.freeze()
    return definitions


def _fingerprint(config: "PipelineConfig") -> str:
    return f"{config.fingerprint()}\n{sorted(os.environ.items())}"


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
