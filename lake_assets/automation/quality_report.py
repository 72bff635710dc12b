"""lake-quality-report: the latest result of every asset check for one day, grouped by layer.

    lake-quality-report --partition 2024-01-01 [--format md|html] [--out FILE]

Reads the Dagster instance at DAGSTER_HOME (the newest evaluation of each check over the runs tagged
with the day, see quality_outcomes.py) and the asset graph of the pipeline config (LAKE_CONFIG) for
the checks that should exist. Grain: one row per check of the graph or evaluated that day; a check
of the graph with no evaluation that day is listed as not run. The day's quality score is the run
score of docs/quality.md over these latest outcomes (run_report.quality_score).

Exit code: 0 every check that ran passed; 1 a check failed or none ran; 2 a usage or configuration
error (bad arguments, DAGSTER_HOME or the config unusable, output not writable).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dagster import DagsterError, DagsterInstance

from lake_assets.automation.quality_outcomes import CheckOutcome, latest_check_outcomes
from lake_assets.automation.quality_report_render import render_html, render_markdown
from lake_assets.automation.run_report import quality_score
from lake_assets.config import ConfigError, PipelineConfig, load_config

LAYER_ORDER = ("raw", "processed", "masked", "curated", "warehouse")


def _layer_of(check_name: str) -> str:
    """"processed/sale:schema" -> "processed"."""
    return check_name.rsplit(":", 1)[0].split("/")[0]


@dataclass
class DayQuality:
    """What the report shows for one day: the latest outcomes and the planned checks without one."""

    day: str
    outcomes: list[CheckOutcome]
    not_run: list[str] = field(default_factory=list)  # "asset:check", sorted

    @property
    def score(self) -> float | None:
        return quality_score((o.passed, o.severity) for o in self.outcomes)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def layers(self) -> list[str]:
        """Layers with a check, in pipeline order (unknown prefixes after, alphabetically)."""
        present = {o.layer for o in self.outcomes} | {_layer_of(n) for n in self.not_run}
        return sorted(present, key=lambda x: (LAYER_ORDER.index(x) if x in LAYER_ORDER else len(LAYER_ORDER), x))

    def outcomes_of(self, layer: str) -> list[CheckOutcome]:
        return sorted((o for o in self.outcomes if o.layer == layer), key=lambda o: (o.asset, o.check))

    def not_run_of(self, layer: str) -> list[str]:
        return [n for n in self.not_run if _layer_of(n) == layer]

    @property
    def exit_code(self) -> int:
        return 1 if not self.outcomes or self.failed else 0


def planned_checks(config: PipelineConfig) -> set[str]:
    """Every asset check of the code location built from `config`, as "asset:check"."""
    from lake_assets.definitions import build_definitions  # the whole graph: only when reporting

    graph = build_definitions(config).resolve_asset_graph()
    return {f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys}


def day_quality(instance: DagsterInstance, day: str, planned: set[str]) -> DayQuality:
    outcomes = latest_check_outcomes(instance, day)
    return DayQuality(day=day, outcomes=list(outcomes.values()), not_run=sorted(planned - outcomes.keys()))


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lake-quality-report",
        description="The latest result of every asset check for one day, grouped by layer, with failing "
        "samples, the checks that did not run and the day's quality score. Reads the Dagster instance at "
        "DAGSTER_HOME and the pipeline config (LAKE_CONFIG). Exit 0: all passed; 1: a check failed or none "
        "ran; 2: usage or configuration error.",
    )
    parser.add_argument("--partition", required=True, type=_day, help="the day, YYYY-MM-DD")
    parser.add_argument("--format", choices=("md", "html"), default="md", help="Markdown (default) or HTML")
    parser.add_argument("--out", type=Path, help="write the report to this file (default: standard output)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return int(exc.code or 0)

    def fail(message: str) -> int:
        print(f"lake-quality-report: error: {message}", file=sys.stderr)
        return 2

    if not os.environ.get("DAGSTER_HOME"):
        return fail("DAGSTER_HOME is not set: point it at the Dagster instance the pipeline runs in")
    try:
        planned = planned_checks(load_config())
        with DagsterInstance.get() as instance:
            report = day_quality(instance, args.partition, planned)
    except ConfigError as exc:
        return fail(f"pipeline config: {exc}")
    except DagsterError as exc:
        return fail(f"Dagster instance at DAGSTER_HOME: {str(exc).splitlines()[0]}")
    text = render_html(report) if args.format == "html" else render_markdown(report)
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            return fail(f"cannot write {args.out}: {exc.strerror or exc}")
        score = "-" if report.score is None else f"{report.score:.2%}"
        print(f"{args.out}: {args.partition}: {len(report.outcomes) - len(report.failed)} checks passed, "
              f"{len(report.failed)} failed, {len(report.not_run)} not run; quality score {score}")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
