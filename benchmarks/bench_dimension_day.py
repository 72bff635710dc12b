"""The customer dimension alone: a full day, then an incremental day, timed per step.

    python -m benchmarks.bench_dimension_day --members 100000 [--changed-share 0.01] [--repeat 2]

Writes synthetic masked days straight into a temporary local lake (no raw, processed or masked step):
day 1 delivers every member once, day 2 changes the city of `changed_share` of them, adds a tenth as
many new members, and sells to members old and new (some never delivered: inferred). Then it runs
`curated/dim_customer` through Dagster's `materialize` for day 1 and day 2 in one process (the Spark
session starts in day 1's step) and prints each step's seconds (as its STEP_SUCCESS reports them), the
CPU seconds of the process and the Spark JVM during the run, and the dimension's rows. `--repeat` runs
the pair again on fresh lakes in the same process (warm JVM). Relative figures only: run the variants
to compare back to back on the same machine and note the load.
Not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks.process_cpu import tree_cpu_seconds

CITIES = ("Boston", "Austin", "Denver", "Reno", "Omaha", "Salem", "Tulsa", "Toronto")


def _customers(ids: list[str], cities: list[str], updated: datetime, seed: int) -> pa.Table:
    rng = random.Random(seed)
    text = {c: [f"{c}-{rng.randrange(10**6)}" for _ in ids]
            for c in ("first_name", "last_name", "email", "phone", "ssn", "street_address", "postal_code")}
    return pa.table({
        "customer_id": ids, **text, "city": cities, "region": ["MA"] * len(ids), "country": ["US"] * len(ids),
        "segment": ["consumer"] * len(ids),
        "updated_at": pa.array([updated] * len(ids), pa.timestamp("us", tz="UTC")),
        "_ingested_at": pa.array([updated.replace(tzinfo=None)] * len(ids), pa.timestamp("us")),
        "_attr_hash": [hashlib.sha256(f"{i}|{c}".encode()).hexdigest() for i, c in zip(ids, cities, strict=True)],
    })


def _sales(customer_ids: list[str], day: str) -> pa.Table:
    return pa.table({"sale_line_id": [f"{day}-{n}" for n in range(len(customer_ids))], "customer_id": customer_ids})


def _step_seconds(result: Any) -> float:
    """Seconds of the run's steps, as their STEP_SUCCESS events report them."""
    successes = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    return sum(e.event_specific_data.duration_ms for e in successes) / 1000


def run_pair(members: int, changed_share: float, root: Path, seed: int) -> list[tuple[float, float, int]]:
    """Per day: (step seconds, CPU seconds of the run, rows of curated/dim_customer after it)."""
    os.environ["LAKE_URL"] = str(root / "lake")
    from dagster import materialize

    from lake_assets.assets import build_all_assets
    from lake_assets.config import load_config
    from lake_assets.definitions import build_resources
    from lake_assets.resources.lake_storage import LakeStorage

    config = load_config()
    lake = LakeStorage(url=config.lake.url)
    assets, resources = build_all_assets(config), build_resources(config)
    rng = random.Random(seed)
    ids = [f"C{n:08d}" for n in range(members)]
    day1 = datetime(2024, 1, 1, 9, tzinfo=timezone.utc)
    lake.write_arrow(["masked", "customer"], "2024-01-01",
                     _customers(ids, [rng.choice(CITIES) for _ in ids], day1, seed))
    lake.write_arrow(["masked", "sale"], "2024-01-01", _sales([rng.choice(ids) for _ in range(members)], "d1"))
    cpu = tree_cpu_seconds()
    first = materialize(assets, resources=resources, selection=["curated/dim_customer"])
    cpu1 = tree_cpu_seconds() - cpu
    rows1 = lake.read_arrow(["curated", "dim_customer"]).num_rows

    changed = rng.sample(ids, max(1, int(members * changed_share)))
    new = [f"N{n:08d}" for n in range(max(1, len(changed) // 10))]
    day2 = day1 + timedelta(days=1)
    lake.write_arrow(["masked", "customer"], "2024-01-02",
                     _customers(changed + new, [rng.choice(CITIES) + "2" for _ in changed + new], day2, seed + 1))
    sold = [rng.choice(ids) for _ in range(max(1, members // 100))] + [f"U{n:08d}" for n in range(10)]
    lake.write_arrow(["masked", "sale"], "2024-01-02", _sales(sold, "d2"))
    cpu = tree_cpu_seconds()
    second = materialize(assets, resources=resources, selection=["curated/dim_customer"])
    cpu2 = tree_cpu_seconds() - cpu
    rows2 = lake.read_arrow(["curated", "dim_customer"]).num_rows
    return [(_step_seconds(first), cpu1, rows1), (_step_seconds(second), cpu2, rows2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--changed-share", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("LAKE_MASKING_KEY", "bench-only-masking-key-0123456789")
    for attempt in range(args.repeat):
        root = Path(tempfile.mkdtemp(prefix="bench-dim-"))
        try:
            days = run_pair(args.members, args.changed_share, root, args.seed)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        load = "/".join(f"{v:.1f}" for v in os.getloadavg())
        shown = "; ".join(f"day {n} {wall:.1f} s, {cpu:.1f} CPU s ({rows:,} rows)"
                          for n, (wall, cpu, rows) in enumerate(days, start=1))
        print(f"pass {attempt + 1}: dim_customer {shown}; load {load}", flush=True)


if __name__ == "__main__":
    main()
