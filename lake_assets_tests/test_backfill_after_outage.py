"""A backfill after an outage: thirty days of drops land, then ONE run over the range (the daily job
with a partition range, what a single-run backfill launches; in-process, on a fresh instance). Every
day is ingested, standardized, masked and loaded exactly once, the customer dimension applies the
days oldest first (a customer changed on days 5 and 20 has those versions after the first, effective
at their times), and the warehouse's facts per day equal the delivered files' lines, quantities and
net amounts. Tiny days (outage_drops.py); the oracles are read from the files with the standard
library. The run uses the pipeline's own Spark settings: the dimensions' day-to-day state must not
grow with the days (`spark/checkpoint.py`), so no larger driver heap is configured here."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pytest
from dagster import AssetKey, DagsterInstance

from lake_assets.config import load_config
from lake_assets.io_managers.lake_store import RUN_ID_STATE
from lake_assets.resources.lake_storage import LakeStorage

from .helpers import materialize_range, warehouse_rows
from .outage_drops import CHANGED_CUSTOMER, FIRST_SEGMENT, SEGMENT_CHANGES, change_times, sales_by_day, write_drops

pytestmark = pytest.mark.services  # a whole-graph run over thirty days: the slow tier

FIRST_DAY = date(2024, 1, 1)  # the bundled config's start_date
DAYS = 30
DAILY_TABLES = [["raw", "shop_files", t] for t in ("customers", "products", "stores", "sales")] + [
    [layer, entity] for layer in ("processed", "masked") for entity in ("customer", "product", "location", "sale")]


@pytest.mark.slow
def test_days_after_an_outage_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drops = tmp_path / "drops"
    days = write_drops(drops, FIRST_DAY, DAYS)
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drops))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    config = load_config()

    with DagsterInstance.ephemeral() as instance:
        result = materialize_range(config, days[0], days[-1], instance=instance)
        run_id = result.run_id
        # One run; Dagster recorded one materialization per day of every daily asset.
        assert len(instance.get_runs()) == 1
        materialized: dict[str, list[str]] = {}
        for event in result.get_asset_materialization_events():
            if event.partition and event.asset_key:
                materialized.setdefault(event.asset_key.to_user_string(), []).append(event.partition)
    for key in DAILY_TABLES:
        assert sorted(materialized["/".join(key)]) == days, key
    assert sorted(materialized["curated/fact_sales"]) == days

    # The lake: every day's partition once, committed by this run.
    lake = LakeStorage(url=config.lake.url)
    for key in DAILY_TABLES:
        commits = lake.commits(key)
        assert sorted(commits) == days, key
        assert {c.state.get(RUN_ID_STATE) for c in commits.values()} == {run_id}, key

    # The dimension applied every day's masked commit, and its history is in day order.
    masked = {day: c.batch_id for day, c in lake.commits(["masked", "customer"]).items()}
    assert lake.partition_state(["curated", "dim_customer"])["applied"]["changes"] == masked
    versions = sorted((r["valid_from"], r["segment"]) for r in
                      lake.read_arrow(["curated", "dim_customer"], None).to_pylist()
                      if r["customer_id"] == CHANGED_CUSTOMER)
    changed_on = [n for n in sorted(SEGMENT_CHANGES) if n <= DAYS]
    assert [segment for _, segment in versions] == [FIRST_SEGMENT, *(SEGMENT_CHANGES[n] for n in changed_on)]
    assert [valid_from.replace(tzinfo=None) for valid_from, _ in versions[1:]] == change_times(FIRST_DAY)[
        :len(changed_on)]

    # Each sale line once in the lake's fact.
    lines = lake.read_arrow_partitions(["curated", "fact_sales"], lake.committed_partitions(["curated",
                                                                                            "fact_sales"]))
    assert lines.num_rows == pc.count_distinct(lines.column("sale_line_id")).as_py()

    # The warehouse per day equals the files per day.
    loaded = {str(r["day"])[:10]: (r["lines"], r["quantity"], Decimal(str(r["net"])).quantize(Decimal("0.01")))
              for r in warehouse_rows(config, "SELECT ingest_date AS day, COUNT(*) AS lines, SUM(quantity) AS "
                                      "quantity, SUM(net_amount) AS net FROM {p}fact_sales GROUP BY ingest_date")}
    assert loaded == sales_by_day(drops, days)
    assert AssetKey(["curated", "dim_customer"]) in {e.asset_key for e in result.get_asset_materialization_events()
                                                     if e.asset_key is not None}
