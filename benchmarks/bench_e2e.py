"""The whole graph end to end through the public CLI, a full day then an incremental day, against floors.

    python -m benchmarks.bench_e2e --rows 5000000 [500000 ...] [--record]

Per size N, in one run:
1. Generate (benchmarks/generate.py, in a child process) day 1: N sale lines, N/50 customers, N/500
   products, N/25,000 stores (at least 40 / 15 / 5), with PII, mixed-case spaced headers, 1% re-delivered
   duplicate lines and 5% blank discounts; day 2: 1% of the customers changed (plus the generator's new
   customers and 5% product changes) and N/100 new sale lines.
2. Write a pipeline YAML (the bundled sample config with this drop as its file source, a local lake in
   a temporary directory, a fresh PostgreSQL schema as warehouse) and run
   `dagster asset materialize -m lake_assets --select '*' --partition <day>` for day 1, then day 2, with
   `LAKE_CONFIG`, `LAKE_MASKING_KEY` and a temporary `DAGSTER_HOME`.
3. Per step: seconds between STEP_START and STEP_SUCCESS in that instance's event log, sale lines of
   the day per second, and the peak RSS of the driver process and of the JVM among the samples taken
   inside that window. Per run: wall seconds of the CLI process, peak RSS of its process tree's Python
   processes and of its JVM (psutil, sampled every 0.2 s), bytes per lake layer after the run.
4. The Spark floor: benchmarks/plain_pyspark.py on day 1 (same stages, no orchestration), with its
   own peak RSS; its fact row count and gross amount must equal the warehouse's for day 1.
5. The load ceiling: `psql \\copy` of the warehouse's day-1 fact rows (exported to CSV first, untimed)
   into an empty copy of `fact_sales` with the same indexes, against the warehouse/fact_sales step.
With `--spark-jobs`, Spark's event log is on and each step also shows its Spark jobs and the seconds
they ran (the rest of a step is driver-side: planning, Python, catalog commits, Dagster bookkeeping).
`--spark-conf KEY=VALUE` (repeatable) adds a Spark setting to the graph's pipeline config, not to the
plain script, to compare a setting against the default in back-to-back runs; a
`spark.driver.extraJavaOptions` given so is appended to the project's own JVM options.
The warehouse schemas are dropped and the temporary directory removed afterwards (`--keep` keeps the
directory). Prints a Markdown report; `--record` also appends it to benchmarks/RESULTS.md with the
machine and the load average at start and end. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PG_URL = os.environ.get("LAKE_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PG_DSN = os.environ.get("LAKE_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
MASKING_KEY = "bench-only-masking-key-0123456789"
LAYERS = ("raw", "processed", "masked", "curated", "quarantine", "vault")


# ------------------------------------------------------------------------------------------- input data
def generate_days(out: Path, rows: int, seed: int, start: date) -> None:
    """Day 1 in full, day 2 incremental; late customers of day 1 arrive in day 2's file, as in generate()."""
    from benchmarks.generate import RetailGenerator, write_day

    generator = RetailGenerator(seed, rows, customers=max(40, rows // 50), products=max(15, rows // 500),
                                stores=max(5, rows // 25_000), blank_discounts=0.05)
    first = generator.day(start, first=True)
    late = first.pop("late")
    write_day(out, start, first, malformed_every=0)
    del first
    second = generator.day(start + timedelta(days=1), first=False, rows=max(1, rows // 100), changed_share=0.01)
    second["customers"] = late + second["customers"]
    second.pop("late")
    write_day(out, start + timedelta(days=1), second, malformed_every=0)


def pipeline_yaml(drop: Path, lake: Path, schema: str, master: str) -> dict:
    """The bundled sample config, pointed at this drop, lake, warehouse schema and Spark master."""
    config = yaml.safe_load((REPO / "lake_assets" / "sample_config.yaml").read_text(encoding="utf-8"))
    config["lake"]["url"] = str(lake)
    config["warehouse"].update(url=PG_URL, schema=schema)
    config["spark"]["master"] = master
    (source,) = config["sources"]
    source["path"] = str(drop)
    return config


# ------------------------------------------------------------------------------------------- measuring
@dataclass
class Peaks:
    """Peak RSS (bytes) over a process tree: the root process alone, and summed per kind at each sample,
    JVMs and everything else (the root and any Python workers)."""

    root: int = 0
    python: int = 0
    jvm: int = 0
    # (epoch seconds, root RSS, JVM RSS) at every sample, to attribute the peaks to steps.
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def in_window(self, begin: float, end: float) -> tuple[int, int]:
        """(peak root RSS, peak JVM RSS) over the samples taken between `begin` and `end` (epoch seconds);
        (0, 0) when the window fell between two samples."""
        inside = [(root, jvm) for t, root, jvm in self.samples if begin <= t <= end]
        return (max((r for r, _ in inside), default=0), max((j for _, j in inside), default=0))


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.peaks, self._done = pid, interval, Peaks(), threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.root)
        except psutil.NoSuchProcess:
            return
        while not self._done.is_set():
            python = jvm = own = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            commands: dict[int, list[str]] = {}
            for proc in tree:
                try:
                    commands[proc.pid] = proc.cmdline()
                except psutil.NoSuchProcess:
                    continue
            for proc in tree:
                try:
                    if proc is not root and commands.get(proc.pid) == commands.get(proc.ppid()):
                        # Forked and not yet exec'd (the JVM starting a shell command for Hadoop's local
                        # file system): its pages are its parent's, shared, not memory of its own. It is
                        # named after the forking Java thread, so it is not recognised by name either.
                        continue
                    rss = proc.memory_info().rss
                    own = rss if proc is root else own
                    if "java" in proc.name() or "java" in os.path.basename((commands.get(proc.pid) or [""])[0]):
                        jvm += rss
                    else:
                        python += rss
                except psutil.NoSuchProcess:
                    continue
            peaks = self.peaks
            peaks.root, peaks.python, peaks.jvm = max(peaks.root, own), max(peaks.python, python), max(peaks.jvm, jvm)
            peaks.samples.append((time.time(), own, jvm))
            self._done.wait(self.interval)

    def stop(self) -> Peaks:
        self._done.set()
        self.join()
        return self.peaks


def run_sampled(command: list[str], env: dict[str, str], log: Path) -> tuple[float, Peaks, str]:
    """(wall seconds, peaks, stdout); the output goes to `log`; a non-zero exit raises with its tail."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        out, _ = proc.communicate()
        peaks = sampler.stop()
    wall = time.perf_counter() - started
    if proc.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {proc.returncode}; end of {log}:\n{tail}")
    return wall, peaks, out


def step_windows(dagster_home: Path, seen: set[str]) -> tuple[str, dict[str, tuple[float, float]], float]:
    """(run id, (STEP_START, STEP_SUCCESS) epoch seconds per step key in start order, RUN_START→RUN_SUCCESS
    seconds) of the newest run not in `seen`, from the instance's event log."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = [r for r in instance.get_runs() if r.run_id not in seen][:1]
        kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.RUN_START,
                 DagsterEventType.RUN_SUCCESS}
        events = instance.all_logs(run.run_id, of_type=kinds)
    starts: dict[str, float] = {}
    steps: dict[str, tuple[float, float]] = {}
    run_start = run_end = 0.0
    for event in sorted(events, key=lambda e: e.timestamp):
        kind = event.dagster_event_type
        if kind == DagsterEventType.STEP_START:
            starts[event.step_key] = event.timestamp
        elif kind == DagsterEventType.STEP_SUCCESS:
            steps[event.step_key] = (starts[event.step_key], event.timestamp)
        elif kind == DagsterEventType.RUN_START:
            run_start = event.timestamp
        elif kind == DagsterEventType.RUN_SUCCESS:
            run_end = event.timestamp
    missing = sorted(set(starts) - set(steps))
    if missing:
        raise RuntimeError(f"run {run.run_id}: steps started but never succeeded: {missing}")
    return run.run_id, {k: steps[k] for k in sorted(steps, key=starts.get)}, run_end - run_start


def spark_jobs(event_dir: Path, windows: dict[str, tuple[float, float]]) -> dict[str, tuple[int, float]]:
    """(Spark jobs, seconds the jobs ran) per step: jobs submitted inside the step's window, from Spark's
    event log (every application in `event_dir`, finished or not). Jobs of one step can overlap, so
    their seconds are the union of their intervals, never more than the step."""
    intervals: dict[int, list[float]] = {}
    for log in (p for p in event_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        with open(log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if '"SparkListenerJob' not in line[:40]:
                    continue
                event = json.loads(line)
                if event["Event"] == "SparkListenerJobStart":
                    intervals[hash((log.name, event["Job ID"]))] = [event["Submission Time"] / 1000, 0.0]
                elif event["Event"] == "SparkListenerJobEnd":
                    intervals.setdefault(hash((log.name, event["Job ID"])), [0.0, 0.0])[1] = (
                        event["Completion Time"] / 1000)
    result = {}
    for step, (begin, end) in windows.items():
        inside = sorted((a, b or end) for a, b in intervals.values() if begin <= a <= end)
        busy, reach = 0.0, begin
        for a, b in inside:
            busy += max(0.0, min(b, end) - max(a, reach))
            reach = max(reach, min(b, end))
        result[step] = (len(inside), busy)
    return result


def layer_bytes(lake: Path) -> dict[str, int]:
    sizes = {}
    for layer in LAYERS:
        sizes[layer] = sum(p.stat().st_size for p in (lake / layer).rglob("*") if p.is_file())
    return sizes


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------- warehouse
def sql(query: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall() if cur.description else []


def psql(command: str) -> None:
    dsn = dict(part.split("=", 1) for part in PG_DSN.split())
    subprocess.run(["psql", "-h", dsn["host"], "-p", dsn.get("port", "5432"), "-U", dsn["user"], "-d",
                    dsn["dbname"], "-v", "ON_ERROR_STOP=1", "-q", "-c", command], check=True, capture_output=True)


@dataclass
class DayRun:
    day: str
    sale_lines: int
    wall: float
    run_seconds: float
    steps: dict[str, float]
    peaks: Peaks
    # Per step: (peak RSS of the driver process, peak RSS of the JVM) sampled inside its window, bytes.
    step_rss: dict[str, tuple[int, int]]
    layers: dict[str, int]
    jobs: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass
class SizeResult:
    rows: int
    input_bytes: dict[str, int]
    days: list[DayRun] = field(default_factory=list)
    plain: dict | None = None
    plain_wall: float = 0.0
    plain_peaks: Peaks | None = None
    fact_rows: int = 0
    gross: str = ""
    copy_seconds: float | None = None


def bench_size(rows: int, args: argparse.Namespace) -> SizeResult:
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    schema = f"bench_e2e_{uuid.uuid4().hex[:8]}"
    plain_schema = schema + "_plain"
    day1, day2 = args.start, args.start + timedelta(days=1)
    try:
        drop, lake, home = tmp / "drop", tmp / "lake", tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
        print(f"[{rows:,} rows] generating into {drop}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "benchmarks.bench_e2e", "--generate-into", str(drop), "--rows",
                        str(rows), "--seed", str(args.seed), "--start", day1.isoformat()], cwd=REPO, check=True)
        config, events = tmp / "pipeline.yaml", tmp / "spark-events"
        pipeline = pipeline_yaml(drop, lake, schema, args.spark_master)
        pipeline["spark"]["conf"].update(dict(setting.split("=", 1) for setting in args.spark_conf))
        if args.spark_jobs:
            events.mkdir()
            # Plain JSON lines in one file per application (Spark 4 defaults to rolling zstd files).
            pipeline["spark"]["conf"].update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
                                              "spark.eventLog.compress": "false",
                                              "spark.eventLog.rolling.enabled": "false"})
        config.write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
        env = {**os.environ, "LAKE_CONFIG": str(config), "LAKE_MASKING_KEY": MASKING_KEY,
               "DAGSTER_HOME": str(home)}
        result = SizeResult(rows, {d.isoformat(): folder_bytes(drop / d.isoformat()) for d in (day1, day2)})
        seen: set[str] = set()
        dagster = str(Path(sys.executable).with_name("dagster"))
        for day, lines in ((day1, rows), (day2, max(1, rows // 100))):
            print(f"[{rows:,} rows] dagster asset materialize --partition {day}", file=sys.stderr, flush=True)
            wall, peaks, _ = run_sampled(
                [dagster, "asset", "materialize", "-m", "lake_assets", "--select", "*", "--partition", day.isoformat()],
                env, tmp / f"dagster-{day}.log")
            run_id, windows, run_seconds = step_windows(home, seen)
            seen.add(run_id)
            steps = {k: b - a for k, (a, b) in windows.items()}
            step_rss = {k: peaks.in_window(a, b) for k, (a, b) in windows.items()}
            jobs = spark_jobs(events, windows) if args.spark_jobs else {}
            result.days.append(DayRun(day.isoformat(), lines, wall, run_seconds, steps, peaks, step_rss,
                                      layer_bytes(lake), jobs))

        facts = f'"{schema}".fact_sales'
        ((result.fact_rows, result.gross),) = sql(
            f"SELECT COUNT(*), SUM(gross_amount)::text FROM {facts} WHERE ingest_date = '{day1}'")
        if not args.skip_plain:
            print(f"[{rows:,} rows] plain PySpark", file=sys.stderr, flush=True)
            wall, peaks, out = run_sampled(
                [sys.executable, "-m", "benchmarks.plain_pyspark", "--input", str(drop / day1.isoformat()),
                 "--work", str(tmp / "plain"), "--pg-dsn", PG_DSN, "--schema", plain_schema, "--key", MASKING_KEY,
                 "--master", args.spark_master], os.environ.copy(), tmp / "plain.log")
            result.plain, result.plain_wall, result.plain_peaks = json.loads(out.strip().splitlines()[-1]), wall, peaks
            # Equal work, or the comparison means nothing.
            assert (result.plain["fact_rows"], result.plain["gross_amount"]) == (result.fact_rows, result.gross), (
                f"plain PySpark: {result.plain['fact_rows']} fact rows, gross {result.plain['gross_amount']}; "
                f"lake_assets: {result.fact_rows} rows, gross {result.gross}")

        print(f"[{rows:,} rows] psql \\copy", file=sys.stderr, flush=True)
        csv_path = tmp / "fact_day1.csv"
        columns = [r[0] for r in sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            f"'{schema}' AND table_name = 'fact_sales' ORDER BY ordinal_position")]
        psql(f"\\copy (SELECT * FROM {facts} WHERE ingest_date = '{day1}') TO '{csv_path}' WITH (FORMAT csv)")
        sql(f'CREATE TABLE "{schema}".fact_ceiling (LIKE {facts} INCLUDING ALL)')
        started = time.perf_counter()
        psql(f"\\copy \"{schema}\".fact_ceiling ({', '.join(columns)}) FROM '{csv_path}' WITH (FORMAT csv)")
        result.copy_seconds = time.perf_counter() - started
        ((copied,),) = sql(f'SELECT COUNT(*) FROM "{schema}".fact_ceiling')
        assert copied == result.fact_rows, (copied, result.fact_rows)
        return result
    finally:
        for name in (schema, plain_schema):
            sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------- report
def mib(n: int | float) -> str:
    return f"{n / 2**20:,.0f}"


def size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


def rate(lines: int, seconds: float) -> str:
    return f"{lines / seconds:,.0f}" if seconds > 0 else "-"


def report(result: SizeResult) -> str:
    full, incremental = result.days[0], result.days[-1]
    lines = [f"### {result.rows:,} sale lines (day 1), {incremental.sale_lines:,} (day 2)", "",
             "Input CSV/JSONL: " + ", ".join(f"{d} {size(b)}" for d, b in result.input_bytes.items()), "",
             "| step | day 1 s | day 1 lines/s | day 2 s | day 2 lines/s | day 1 peak RSS MiB driver / JVM "
             "| day 2 peak RSS MiB driver / JVM |"
             + (" day 1 Spark jobs | day 1 s in jobs | day 2 Spark jobs | day 2 s in jobs |" if full.jobs else ""),
             "|---|---|---|---|---|---|---|" + ("---|" * 4 if full.jobs else "")]

    def jobs(d: DayRun, step: str | None) -> str:
        if not full.jobs:
            return ""
        n, busy = d.jobs.get(step, (0, 0.0)) if step else (sum(j[0] for j in d.jobs.values()),
                                                             sum(j[1] for j in d.jobs.values()))
        return f" {n} | {busy:.1f} |"

    def rss(d: DayRun, step: str) -> str:
        driver, jvm = d.step_rss.get(step, (0, 0))
        return f" {mib(driver)} / {mib(jvm)} |" if driver else " - |"

    for step in dict.fromkeys([*full.steps, *incremental.steps]):
        a, b = full.steps.get(step, 0.0), incremental.steps.get(step, 0.0)
        lines.append(f"| {step} | {a:.1f} | {rate(full.sale_lines, a)} | {b:.1f} | "
                     f"{rate(incremental.sale_lines, b)} |" + rss(full, step) + rss(incremental, step)
                     + jobs(full, step) + jobs(incremental, step))
    for label, value in (("sum of steps", lambda d: sum(d.steps.values())), ("run (RUN_START→RUN_SUCCESS)",
                         lambda d: d.run_seconds), ("**CLI process wall**", lambda d: d.wall)):
        tail = jobs(full, None) + jobs(incremental, None) if label == "sum of steps" else (
            " |" * 4 if full.jobs else "")
        peak = (f" {mib(full.peaks.root)} / {mib(full.peaks.jvm)} | {mib(incremental.peaks.root)} / "
                f"{mib(incremental.peaks.jvm)} |") if label.startswith("**") else " | |"
        lines.append(f"| {label} | {value(full):.1f} | {rate(full.sale_lines, value(full))} | "
                     f"{value(incremental):.1f} | {rate(incremental.sale_lines, value(incremental))} |" + peak + tail)
    lines += ["", "| run | peak RSS MiB: driver (Python) | all Python | JVM | " + " | ".join(LAYERS) + " |",
              "|---|---|---|---|" + "---|" * len(LAYERS)]
    for label, d in (("lake_assets day 1", full), ("lake_assets day 2", incremental)):
        lines.append(f"| {label} | {mib(d.peaks.root)} | {mib(d.peaks.python)} | {mib(d.peaks.jvm)} | "
                     + " | ".join(size(d.layers[x]) for x in LAYERS) + " |")
    if result.plain and result.plain_peaks:
        p = result.plain_peaks
        lines.append(f"| plain PySpark day 1 | {mib(p.root)} | {mib(p.python)} | {mib(p.jvm)} |" + " |" * len(LAYERS))
    lines += ["", "Peak RSS per step: the highest resident size of the driver (the `dagster` CLI process, which runs "
              "every step) and of the Spark JVM among the 0.2 s samples taken between the step's STEP_START and "
              "STEP_SUCCESS (`-`: no sample fell inside). Arrow hands freed memory back, so the driver's figure "
              "falls again after a step that read a lot: the step showing a high figure is the one that held it.",
              "", "Layer sizes: bytes of all files under `<lake>/<layer>/` after that day's run (cumulative, files of "
              "replaced snapshots included)."]
    fact_step = full.steps.get("warehouse__fact_sales")
    lines += ["", f"Day 1: {result.fact_rows:,} fact rows, gross amount {result.gross}."]
    if result.plain:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in result.plain["stages"].items())
        lines.append(f"Plain PySpark (same fact rows and gross amount, checked): {result.plain_wall:.1f} s wall "
                     f"({stages}).")
    if result.copy_seconds is not None:
        lines.append(f"`psql \\copy` of the day-1 fact rows into a table with the same indexes: "
                     f"{result.copy_seconds:.1f} s ({rate(result.fact_rows, result.copy_seconds)} rows/s).")
    lines += ["", "| target | measured | met |", "|---|---|---|"]

    def target(name: str, measured: float, limit: float, higher_is_better: bool = False, unit: str = "") -> None:
        met = measured >= limit if higher_is_better else measured <= limit
        lines.append(f"| {name} | {measured:.2f}{unit} | {'yes' if met else 'no'} |")

    if result.plain:
        target("full day ÷ plain PySpark ≤ 1.5", full.wall / result.plain_wall, 1.5)
    if result.rows >= 5_000_000:
        target("full day ≤ 120 s (5M lines)", full.wall, 120, unit=" s")
    target("incremental day ÷ full day ≤ 0.15", incremental.wall / full.wall, 0.15)
    if result.rows <= 1000:
        target("1,000-line day ≤ 25 s", full.wall, 25, unit=" s")
    if fact_step and result.copy_seconds:
        target("warehouse fact load ÷ `psql \\copy` speed ≥ 0.8", result.copy_seconds / fact_step, 0.8,
               higher_is_better=True)
    return "\n".join(lines)


def machine() -> str:
    return (f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {sys.version.split()[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000], help="sale lines of the full day (one run each)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1), help="the full day")
    parser.add_argument("--spark-master", default="local[*]", help="for the graph and the plain script alike")
    parser.add_argument("--skip-plain", action="store_true", help="no plain PySpark floor")
    parser.add_argument("--spark-jobs", action="store_true",
                        help="Spark event log on: per step, the Spark jobs and the seconds they ran")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for the graph's runs (not the plain script), to compare settings A/B")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (data, lake, logs)")
    parser.add_argument("--record", action="store_true", help="append the report to benchmarks/RESULTS.md")
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate_into:
        generate_days(args.generate_into, args.rows[0], args.seed, args.start)
        return
    load_start, started = os.getloadavg(), datetime.now()
    results = [bench_size(rows, args) for rows in args.rows]
    load_end = os.getloadavg()
    sections = [report(r) for r in results]
    if len(results) > 1:
        ordered = sorted(results, key=lambda r: r.rows)
        large = ordered[-1]
        # The target compares sizes ten times apart (5M ÷ 0.5M): that size when run, else the next smaller.
        small = next((r for r in ordered if r.rows * 10 == large.rows), ordered[-2])
        ratio = max(large.days[0].peaks.python + large.days[0].peaks.jvm, 1) / max(
            small.days[0].peaks.python + small.days[0].peaks.jvm, 1)
        sections.append(f"Peak RSS (Python + JVM) of the full day at {large.rows:,} ÷ at {small.rows:,}: "
                        f"{ratio:.2f} (target ≤ 1.3 for 5M ÷ 0.5M).")
    text = "\n\n".join([
        f"## End to end: `python -m benchmarks.bench_e2e --rows {' '.join(map(str, args.rows))}` — "
        f"{started:%Y-%m-%d %H:%M}",
        f"{machine()}; Spark `{args.spark_master}`; load average (1/5/15 min) at start "
        f"{'/'.join(f'{x:.1f}' for x in load_start)}, at end {'/'.join(f'{x:.1f}' for x in load_end)}.",
        *sections,
    ])
    print(text)
    if args.record:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write("\n" + text + "\n")
        print(f"appended to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
