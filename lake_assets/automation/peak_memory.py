"""Peak memory of a run, recorded on the run as the tag `lake/peak_memory_bytes` after every step.

The daily job runs in one process (in-process executor) whose child is the local Spark JVM, so the
run's memory is that process tree's. The figure is the sum of the resident-memory high-water marks
(Linux `VmHWM`) of the run's process and its live child processes: an upper bound of the tree's peak
(the members need not peak at the same moment). Outside Linux there is no high-water mark to read
and the current resident size is used instead. Hooks after each step keep it current; the run
report reads the tag (run_report.py), so the metric costs no extra pass over the event log.
"""

from __future__ import annotations

from pathlib import Path

import psutil
from dagster import HookContext, failure_hook, success_hook

PEAK_MEMORY_TAG = "lake/peak_memory_bytes"

# Highest figure seen per run in this process: a child that exits (a finished subprocess) lowers the
# sum of the live processes, never the run's peak.
_PEAKS: dict[str, int] = {}


def _high_water_mark(pid: int) -> int:
    """Peak resident bytes of one process (Linux), else its current resident bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    return psutil.Process(pid).memory_info().rss


def process_tree_peak_bytes() -> int:
    """Sum of the high-water marks of this process and its live descendants."""
    me = psutil.Process()
    total = 0
    for pid in (me.pid, *(child.pid for child in me.children(recursive=True))):
        try:
            total += _high_water_mark(pid)
        except psutil.NoSuchProcess:  # exited between listing and reading
            continue
    return total


def _record(context: HookContext) -> None:
    peak = max(_PEAKS.get(context.run_id, 0), process_tree_peak_bytes())
    _PEAKS[context.run_id] = peak
    context.instance.add_run_tags(context.run_id, {PEAK_MEMORY_TAG: str(peak)})


@success_hook(name="record_peak_memory_after_step")
def record_peak_memory_after_step(context: HookContext) -> None:
    _record(context)


@failure_hook(name="record_peak_memory_after_failed_step")
def record_peak_memory_after_failed_step(context: HookContext) -> None:
    _record(context)


PEAK_MEMORY_HOOKS = {record_peak_memory_after_step, record_peak_memory_after_failed_step}
