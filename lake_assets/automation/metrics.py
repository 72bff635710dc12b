"""Per-run pipeline metrics as observations of one external asset, `monitoring/pipeline_runs`, so
the UI plots them over time (asset page -> Plots): duration, seconds per stage, rows per layer,
quarantined rows, checks passed/failed and the quality score (weighted by severity, see run_report.py)
of every finished run, overall and per asset (`quality_score_<layer>_<table>`), the run's peak memory
(peak_memory.py), and the lake's size after the run: bytes per layer and, with a configured price,
the estimated monthly storage cost.

Recorded by the notification sensors from the run's own event log (run_report.py), which keeps the
asset code of each layer free of monitoring concerns.
"""

from pathlib import Path

from dagster import AssetKey, AssetObservation, AssetSpec, DagsterInstance, MetadataValue

from lake_assets.automation.run_report import RunReport
from lake_assets.resources.lake_storage import LakeStorage

METRICS_KEY = AssetKey(["monitoring", "pipeline_runs"])
GIB = 1024**3

METRICS_SPEC = AssetSpec(
    key=METRICS_KEY,
    group_name="monitoring",
    description="One observation per finished run: duration, seconds per stage, rows per layer, quarantined "
    "rows, asset checks passed/failed and quality score (share of checks passed, an ERROR check weighing 2, a "
    "WARN one 1; per run and per asset), peak memory, lake bytes per layer and the estimated monthly storage "
    "cost. Plotted on the Plots tab.",
    kinds={"dagster"},
)


def lake_bytes_per_layer(lake: LakeStorage) -> dict[str, int]:
    """{namespace: bytes} of the data files in each lake table's current snapshot (Iceberg's
    `total-files-size`), summed per namespace (raw, processed, masked, curated, quarantine, vault...).
    Files kept only by older snapshots (time travel until retention expires them) are not counted:
    this is the size of the lake as it reads now, read from table metadata, not by listing files."""
    if not lake.is_s3 and not lake.catalog_uri and not Path(lake.dataset_dir([])).is_dir():
        return {}  # a local lake never written: nothing stored (and opening its catalog would create it)
    catalog = lake.catalog
    sizes: dict[str, int] = {}
    for namespace in catalog.list_namespaces():
        layer = ".".join(namespace)
        total = 0
        for identifier in catalog.list_tables(namespace):
            snapshot = catalog.load_table(identifier).current_snapshot()
            if snapshot is not None and snapshot.summary is not None:
                total += int(snapshot.summary.get("total-files-size") or 0)
        sizes[layer] = total
    return sizes


def storage_cost_per_month(bytes_per_layer: dict[str, int], price_per_gb_month: float | None) -> float | None:
    """Estimated monthly cost of the lake's bytes at `price_per_gb_month` per GiB; None without a price."""
    if price_per_gb_month is None:
        return None
    return round(sum(bytes_per_layer.values()) / GIB * price_per_gb_month, 6)


def metrics_of(report: RunReport) -> dict[str, str | int | float | MetadataValue]:
    metadata: dict[str, str | int | float | MetadataValue] = {
        "run_id": MetadataValue.dagster_run(report.run_id),
        "status": report.status,
        "partition": report.partition or "",
        "quarantined_rows": report.quarantined_rows,
        "checks_passed": len(report.checks_passed),
        "checks_failed": len(report.checks_failed),
    }
    if report.duration_seconds is not None:
        metadata["duration_seconds"] = report.duration_seconds
    if report.peak_memory_bytes is not None:
        metadata["peak_memory_bytes"] = report.peak_memory_bytes
    if report.quality_score is not None:
        metadata["quality_score"] = report.quality_score
    metadata.update({f"quality_score_{asset.replace('/', '_')}": score
                     for asset, score in report.quality_score_per_asset.items()})
    metadata.update({f"rows_{layer}": rows for layer, rows in sorted(report.rows_per_layer.items())})
    metadata.update({f"seconds_{stage}": sec for stage, sec in report.seconds_per_stage.items()})
    if report.lake_bytes_per_layer:
        metadata.update({f"bytes_{layer}": n for layer, n in sorted(report.lake_bytes_per_layer.items())})
        metadata["bytes_total"] = sum(report.lake_bytes_per_layer.values())
    if report.storage_cost_per_month is not None:
        metadata["storage_cost_per_month"] = report.storage_cost_per_month
    return metadata


def record_run_metrics(instance: DagsterInstance, report: RunReport) -> None:
    instance.report_runless_asset_event(AssetObservation(asset_key=METRICS_KEY, metadata=metrics_of(report)))
