"""Per-run pipeline metrics as observations of one external asset, `monitoring/pipeline_runs`, so
the UI plots them over time (asset page -> Plots): duration, seconds per stage, rows per layer,
quarantined rows, checks passed/failed and the quality score (weighted by severity, see run_report.py)
of every finished run, overall and per asset (`quality_score_<layer>_<table>`).

Recorded by the notification sensors from the run's own event log (run_report.py), which keeps the
asset code of each layer free of monitoring concerns.
"""

from dagster import AssetKey, AssetObservation, AssetSpec, DagsterInstance, MetadataValue

from lake_assets.automation.run_report import RunReport

METRICS_KEY = AssetKey(["monitoring", "pipeline_runs"])

METRICS_SPEC = AssetSpec(
    key=METRICS_KEY,
    group_name="monitoring",
    description="One observation per finished run: duration, seconds per stage, rows per layer, quarantined "
    "rows, asset checks passed/failed and quality score (share of checks passed, an ERROR check weighing 2, a "
    "WARN one 1; per run and per asset). Plotted on the Plots tab.",
    kinds={"dagster"},
)


def metrics_of(report: RunReport) -> dict[str, object]:
    metadata: dict[str, object] = {
        "run_id": MetadataValue.dagster_run(report.run_id),
        "status": report.status,
        "partition": report.partition or "",
        "quarantined_rows": report.quarantined_rows,
        "checks_passed": len(report.checks_passed),
        "checks_failed": len(report.checks_failed),
    }
    if report.duration_seconds is not None:
        metadata["duration_seconds"] = report.duration_seconds
    if report.quality_score is not None:
        metadata["quality_score"] = report.quality_score
    metadata.update({f"quality_score_{asset.replace('/', '_')}": score
                     for asset, score in report.quality_score_per_asset.items()})
    metadata.update({f"rows_{layer}": rows for layer, rows in sorted(report.rows_per_layer.items())})
    metadata.update({f"seconds_{stage}": sec for stage, sec in report.seconds_per_stage.items()})
    return metadata


def record_run_metrics(instance: DagsterInstance, report: RunReport) -> None:
    instance.report_runless_asset_event(AssetObservation(asset_key=METRICS_KEY, metadata=metrics_of(report)))
