"""The hand-over of spliced periods from the SCD2 dimensions to the fact (`assets/late_splices.py`),
on a real (local) lake with the commit states written by hand: no Spark."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from lake_assets.assets.late_splices import next_splices, re_resolution, sale_date_ranges
from lake_assets.resources.lake_storage import LakeStorage


def test_sale_date_ranges_merge_overlapping_and_adjacent_dates() -> None:
    d = date
    windows = [(d(2024, 1, 5), d(2024, 1, 6)), (d(1900, 1, 1), d(2024, 1, 1)), (d(2024, 1, 2), d(2024, 1, 2)),
               (d(2024, 1, 6), d(2024, 1, 8))]
    assert sale_date_ranges(windows) == [("1900-01-01", "2024-01-02"), ("2024-01-05", "2024-01-08")]


def test_a_dimension_commit_drops_what_the_fact_acknowledged_and_numbers_on() -> None:
    first = next_splices({}, [("2024-01-02", "2024-01-02")], done=0)
    assert first == {"last": 1, "pending": [{"id": 1, "first": "2024-01-02", "last": "2024-01-02"}]}
    second = next_splices({"splices": first}, [("2024-01-05", "2024-01-06")], done=0)
    assert [e["id"] for e in second["pending"]] == [1, 2]
    # The fact did 1; a commit without splices keeps only 2 and the counter.
    assert next_splices({"splices": second}, [], done=1) == {
        "last": 2, "pending": [{"id": 2, "first": "2024-01-05", "last": "2024-01-06"}]}


def _lake(tmp_path: Path, fact_run_days: dict[str, str], acknowledged: int) -> LakeStorage:
    """Customer splices 1 (2 Jan) and 2 (5..6 Jan) pending; fact sale dates committed by `fact_run_days`,
    each recording `acknowledged` as the last customer splice it handled."""
    lake = LakeStorage(url=str(tmp_path / "lake"))
    splices = next_splices({"splices": next_splices({}, [("2024-01-02", "2024-01-02")], 0)},
                           [("2024-01-05", "2024-01-06")], 0)
    lake.write_arrow(["curated", "dim_customer"], None, pa.table({"customer_key": [1]}), {"splices": splices})
    for sale_date, run_day in fact_run_days.items():
        rows = pa.table({"sale_date": pa.array([date.fromisoformat(sale_date)], pa.date32())})
        lake.write_arrow(["curated", "fact_sales"], sale_date, rows,
                         {"run_day": run_day, "re_resolved": {"dim_customer": acknowledged}})
    return lake


def _states(lake: LakeStorage) -> dict:
    return {d: info.state for d, info in lake.commits(["curated", "fact_sales"]).items()}


def test_the_fact_takes_on_the_committed_dates_of_unacknowledged_splices(tmp_path: Path) -> None:
    lake = _lake(tmp_path, {"2024-01-01": "2024-01-01", "2024-01-02": "2024-01-02", "2024-01-06": "2024-01-06"},
                 acknowledged=1)
    redo = re_resolution(lake, "2024-01-07", _states(lake))
    # Splice 1 is done: only 2's range, and of it only the date the fact has.
    assert (redo.dates, redo.done["dim_customer"], redo.waiting) == (["2024-01-06"], 2, [])


def test_a_date_a_later_run_day_wrote_makes_the_whole_lot_wait(tmp_path: Path) -> None:
    lake = _lake(tmp_path, {"2024-01-02": "2024-01-02", "2024-01-05": "2024-01-09"}, acknowledged=0)
    redo = re_resolution(lake, "2024-01-07", _states(lake))
    assert (redo.dates, redo.done["dim_customer"], redo.waiting) == ([], 0, ["2024-01-05"])
    later = re_resolution(lake, "2024-01-09", _states(lake))
    assert (later.dates, later.done["dim_customer"]) == (["2024-01-02", "2024-01-05"], 2)
