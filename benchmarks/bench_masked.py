"""One sale step alone (masked by default, or processed, or the fact), timed as the graph runs it
(STEP_START to STEP_SUCCESS).

    python -m benchmarks.bench_masked prepare --dir DIR --rows 1000000
    python -m benchmarks.bench_masked time --dir DIR [--step masked|processed|fact] [--repeats 3] [--spark-jobs]

`prepare` generates one day (`benchmarks/bench_e2e.py`'s day 1: N sale lines with PII, 1% re-delivered
lines) into DIR, writes a pipeline YAML (the bundled sample config, a local lake in DIR) and
materializes the raw and processed sale tables once. `time` then materializes `masked/sale` and its
vault for that day `--repeats` times in one process (one Spark session, `--master`, default
`local[2]`) and prints the step's seconds per run, and with `--spark-jobs` the Spark jobs each run
submitted and the seconds they ran. `--step processed` times `processed/sale` and its quarantine
instead, from the same raw partition; `--step fact` times `curated/fact_sales`, once the masked tables
and the dimensions of the day are in DIR's lake (a `bench_e2e --keep` directory has them). Run `time`
from two checkouts against the same DIR, interleaved, to compare them (A/B): the step's input is the
same for both. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import yaml

from benchmarks.bench_e2e import MASKING_KEY, generate_days, pipeline_yaml
from benchmarks.process_cpu import tree_cpu_seconds

DAY = date(2024, 1, 1)
PREPARED = ("raw/shop_files/sales", "processed/sale")
# Step -> the assets it materializes.
TIMED = {"masked": ("masked/sale", "vault/sale/card_number"),
         "processed": ("processed/sale", "quarantine/processed/sale"),
         "fact": ("curated/fact_sales",)}


def _environment(folder: Path) -> None:
    os.environ.update(LAKE_CONFIG=str(folder / "pipeline.yaml"), LAKE_MASKING_KEY=MASKING_KEY)


def _materialize(keys: tuple[str, ...]) -> tuple[float, str]:
    """(seconds of the step that ran `keys`' last asset, run id) of one in-process run of `keys`."""
    from dagster import AssetKey, AssetSelection, DagsterEventType, DagsterInstance, materialize

    from lake_assets.assets import build_all_assets
    from lake_assets.config import load_config
    from lake_assets.definitions import build_resources

    config = load_config()
    instance = DagsterInstance.ephemeral()
    result = materialize(build_all_assets(config), selection=AssetSelection.assets(*[AssetKey(k.split("/")) for k
                                                                                      in keys]),
                         resources=build_resources(config), partition_key=DAY.isoformat(), instance=instance)
    starts, ends = {}, {}
    for event in instance.all_logs(result.run_id, of_type={DagsterEventType.STEP_START,
                                                           DagsterEventType.STEP_SUCCESS}):
        (starts if event.dagster_event_type == DagsterEventType.STEP_START else ends)[event.step_key] = event.timestamp
    last = max(ends, key=ends.get)
    return ends[last] - starts[last], result.run_id


def prepare(args: argparse.Namespace) -> None:
    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    drop = folder / "drop"
    if not drop.exists():
        generate_days(drop, args.rows, 42, DAY)
    pipeline = pipeline_yaml(drop, folder / "lake", "bench_masked_unused", args.master)
    events = folder / "spark-events"
    events.mkdir(exist_ok=True)
    pipeline["spark"]["conf"].update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
                                      "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false",
                                      "spark.ui.enabled": "false"})
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    _environment(folder)
    seconds, _ = _materialize(PREPARED)
    print(f"prepared {folder} ({args.rows:,} rows; processed/sale in {seconds:.1f} s)")


def _jobs_since(events: Path, since: float) -> tuple[int, float, list[str]]:
    """(jobs, seconds they ran, their descriptions) submitted after `since` (epoch seconds)."""
    jobs: dict[tuple[str, int], list] = {}
    for log in (p for p in events.iterdir() if p.is_file() and not p.name.startswith(".")):
        with open(log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if '"SparkListenerJob' not in line[:40]:
                    continue
                event = json.loads(line)
                key = (log.name, event["Job ID"])
                if event["Event"] == "SparkListenerJobStart" and event["Submission Time"] / 1000 >= since:
                    stages = event.get("Stage Infos") or [{}]
                    jobs[key] = [event["Submission Time"] / 1000, 0.0, stages[-1].get("Stage Name", "?")]
                elif event["Event"] == "SparkListenerJobEnd" and key in jobs:
                    jobs[key][1] = event["Completion Time"] / 1000
    spans = sorted(jobs.values())
    return len(spans), sum(b - a for a, b, _ in spans), [f"{b - a:6.2f} s {site}" for a, b, site in spans]


def time_step(args: argparse.Namespace) -> None:
    _environment(args.dir)
    for number in range(args.repeats):
        started, cpu = time.time(), tree_cpu_seconds()
        seconds, _ = _materialize(TIMED[args.step])
        line = (f"run {number + 1}: {args.step} {seconds:6.2f} s, "
                f"CPU {tree_cpu_seconds() - cpu:6.1f} s (whole run)")
        if args.spark_jobs:
            count, busy, detail = _jobs_since(args.dir / "spark-events", started)
            line += f"  ({count} Spark jobs, {busy:.2f} s)\n    " + "\n    ".join(detail)
        print(line, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("prepare", "time"))
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step", choices=tuple(TIMED), default="masked", help="the sale step to time")
    parser.add_argument("--spark-jobs", action="store_true", help="list each run's Spark jobs (event log)")
    args = parser.parse_args(argv)
    (prepare if args.command == "prepare" else time_step)(args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
