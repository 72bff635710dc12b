"""The raw table reaches the lake only through the lake IO manager: the ingestion spools its delivery
outside the lake, the step yields the quarantine then the raw output, and a delivery whose every row
was rejected leaves the raw table as it was (no materialization, no commit, the previous day intact)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import PipelineConfig, load_config
from lake_assets.definitions import build_resources
from lake_assets.ingestion import DataIngestionPipeline, make_source
from lake_assets.io_managers.lake_store import store
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR

RAW = ["raw", "shop_files", "stores"]
QUARANTINE = ["quarantine", *RAW]
GOOD_DAY, BAD_DAY = "2024-01-01", "2024-01-02"


def _drop(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    """A drop with the sample stores of GOOD_DAY as delivered, and on BAD_DAY the same rows without
    their store code (a required column), so every row of BAD_DAY is rejected."""
    drop = tmp_path / "drop"
    (drop / GOOD_DAY).mkdir(parents=True)
    (drop / BAD_DAY).mkdir()
    shutil.copy(SAMPLE_DIR / GOOD_DAY / "stores.csv", drop / GOOD_DAY / "stores.csv")
    with open(drop / GOOD_DAY / "stores.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    with open(drop / BAD_DAY / "stores.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "Store_Code": ""} for r in rows)
    return drop, rows


def _sample_with_drop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[dict[str, str]], Path, PipelineConfig]:
    """(drop, its good rows, lake directory, the sample config reading that drop into that lake)."""
    drop, rows = _drop(tmp_path)
    lake_dir = tmp_path / "lake"
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(lake_dir))
    return drop, rows, lake_dir, load_config()


def test_a_delivery_whose_every_row_is_rejected_leaves_raw_unmaterialized_and_stores_its_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop, rows, lake_dir, config = _sample_with_drop(tmp_path, monkeypatch)
    assets = [a for a in build_all_assets(config) if AssetKey(RAW) in a.keys]
    instance = DagsterInstance.ephemeral()
    lake = LakeStorage(url=str(lake_dir))

    good = materialize(assets, resources=build_resources(config), partition_key=GOOD_DAY, instance=instance)
    (metadata,) = [e.materialization.metadata for e in good.get_asset_materialization_events()
                   if e.materialization.asset_key == AssetKey(RAW)]
    commit = lake.commit_info(RAW, GOOD_DAY)
    assert commit is not None and commit.rows == len(rows)
    assert commit.state["dagster_run_id"] == good.run_id  # stored by the IO manager, in this run
    assert list(commit.state["files"]) == [str(drop / GOOD_DAY / "stores.csv")]  # the ingestion's state, same commit
    assert metadata["dagster/row_count"].value == len(rows)
    assert metadata["quarantined_rows"].value == 0
    assert metadata["batch_id"].value == commit.batch_id
    assert metadata["snapshot_id"].value == str(commit.snapshot_id)
    assert metadata["path"].value == f"{lake_dir.resolve()}/raw/shop_files/stores/ingest_date={GOOD_DAY}"
    assert {c.name for c in metadata["dagster/column_schema"].value.columns} >= {"_batch_id", "_source_file"}

    bad = materialize(assets, resources=build_resources(config), partition_key=BAD_DAY, instance=instance,
                      raise_on_error=False)
    assert not bad.success
    assert "none was published" in str(bad.get_step_failure_events()[0].step_failure_data.error)
    keys = [e.materialization.asset_key for e in bad.get_asset_materialization_events()]
    assert keys == [AssetKey(QUARANTINE)]  # the quarantine only: no raw materialization for the day
    assert instance.get_materialized_partitions(AssetKey(RAW)) == {GOOD_DAY}
    assert lake.commit_info(RAW, BAD_DAY) is None
    assert not (lake_dir / "raw" / "shop_files" / "stores" / f"ingest_date={BAD_DAY}").exists()
    rejected = lake.read_arrow(QUARANTINE, BAD_DAY).to_pylist()
    assert len(rejected) == len(rows) and all("Store_Code" in r["_reject_reason"] for r in rejected)
    kept = lake.read_arrow(RAW, GOOD_DAY)
    assert kept.num_rows == len(rows) and kept.column("_batch_id").to_pylist() == [commit.batch_id] * len(rows)
    assert not any((lake_dir / ".spool").iterdir())  # the spools went, after success and after failure


def test_the_ingestion_writes_nothing_into_the_lake_and_the_store_moves_its_spool_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop, rows, lake_dir, config = _sample_with_drop(tmp_path, monkeypatch)
    source = next(s for s in config.sources if s.name == "shop_files")
    lake = LakeStorage(url=str(lake_dir))
    pipeline = DataIngestionPipeline(make_source(source, next(t for t in source.tables if t.name == "stores")), lake)

    with pipeline.deliver(GOOD_DAY) as delivery:
        spooled = sorted(lake_dir.rglob("*.parquet"))
        assert spooled and all((lake_dir / "raw") not in p.parents for p in spooled)
        assert lake.commit_info(RAW, GOOD_DAY) is None
        commit = store(lake, RAW, GOOD_DAY, delivery.raw, run_id=None)
        assert not any(p.exists() for p in spooled)  # moved into the table, not copied
    assert commit.rows == len(rows) and commit.state["quarantined_rows"] == 0
    committed = lake.committed_files(RAW, GOOD_DAY)
    assert [Path(f).name for f in committed] == [p.name for p in spooled]
    assert all(Path(f).is_relative_to(lake_dir.resolve() / "raw") for f in committed)
    assert not any((lake_dir / ".spool").iterdir())
