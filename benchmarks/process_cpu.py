"""CPU seconds of this process and its children (the Spark JVM, its workers): steadier than wall time
when the machine is shared, for before/after comparisons within one script."""

from __future__ import annotations

import psutil


def tree_cpu_seconds() -> float:
    """User + system CPU seconds so far of this process and every descendant still running."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            cpu = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += cpu.user + cpu.system
    return total
