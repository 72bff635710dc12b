"""The day's quality report as Markdown or as one self-contained HTML page (inline CSS, no scripts).

Layout in both: a summary (day, checks passed / failed / not run, quality score), then one table per
layer (asset, check, severity, result, the check's metadata), each failed check's failing-rows sample
as its own table (the checks mask PII in it before it is recorded), then the planned checks that did
not run that day. In HTML a failed row has a red background, a not-run row a yellow one.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report imports this module; only its type is needed here
    from lake_assets.automation.quality_outcomes import CheckOutcome
    from lake_assets.automation.quality_report import DayQuality

SAMPLE_KEY = "failing_rows_sample"
FAILED_BACKGROUND = "#f8d7da"
NOT_RUN_BACKGROUND = "#fff3cd"


def _text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def _details(outcome: CheckOutcome) -> list[str]:
    """The check's metadata as "key: value", the sample left out (it gets its own table)."""
    return [f"{key}: {_text(value)}" for key, value in sorted(outcome.metadata.items()) if key != SAMPLE_KEY]


def _sample(outcome: CheckOutcome) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of the failing-rows sample; empty when the check recorded none."""
    rows = outcome.metadata.get(SAMPLE_KEY)
    if not isinstance(rows, list) or not rows:
        return [], []
    columns: list[str] = []
    for row in rows:
        columns += [c for c in (row if isinstance(row, dict) else {}) if c not in columns]
    return columns, [[_text(row.get(c, "")) if isinstance(row, dict) else _text(row) for c in columns]
                     for row in rows]


def _summary(report: DayQuality) -> tuple[str, str]:
    score = "-" if report.score is None else f"{report.score:.2%}"
    passed = len(report.outcomes) - len(report.failed)
    counts = f"{passed} passed, {len(report.failed)} failed, {len(report.not_run)} not run"
    return counts, score


def _md(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: DayQuality) -> str:
    counts, score = _summary(report)
    lines = [f"# Data quality {report.day}", "", f"Checks: {counts}. Quality score: {score}.", ""]
    if not report.outcomes:
        lines += ["No asset check ran for this day in this Dagster instance.", ""]
    for layer in report.layers():
        lines += [f"## {layer}", ""]
        outcomes = report.outcomes_of(layer)
        if outcomes:
            lines += ["| asset | check | severity | result | details |", "|---|---|---|---|---|"]
            lines += [f"| {_md(o.asset)} | {_md(o.check)} | {o.severity} | {'passed' if o.passed else '**FAILED**'} "
                      f"| {_md('; '.join(_details(o)))} |" for o in outcomes]
            lines.append("")
        for outcome in (o for o in outcomes if not o.passed):
            columns, rows = _sample(outcome)
            if columns:
                lines += [f"Failing rows of `{outcome.name}`:", "", "| " + " | ".join(map(_md, columns)) + " |",
                          "|" + "---|" * len(columns)]
                lines += ["| " + " | ".join(map(_md, row)) + " |" for row in rows]
                lines.append("")
        not_run = report.not_run_of(layer)
        if not_run:
            lines += ["Not run this day: " + ", ".join(f"`{n}`" for n in not_run), ""]
    return "\n".join(lines)


STYLE = f"""
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #212529; background: #fff; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.25em; margin-top: 1.6em; border-bottom: 2px solid #dee2e6; }}
table {{ border-collapse: collapse; margin: 0.6em 0 1em; }}
th, td {{ border: 1px solid #ced4da; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }}
th {{ background: #e9ecef; }}
tr.failed td {{ background: {FAILED_BACKGROUND}; }}
tr.not-run td {{ background: {NOT_RUN_BACKGROUND}; }}
td.details {{ font-family: ui-monospace, monospace; font-size: 0.85em; white-space: pre-wrap; }}
table.sample {{ font-size: 0.85em; margin-left: 1.5em; }}
.summary {{ font-size: 1.1em; }}
"""


def _table(header: list[str], rows: list[tuple[str, list[str]]], css_class: str = "") -> list[str]:
    """An HTML table; each row is (its class, its already escaped cells)."""
    out = [f'<table class="{css_class}">' if css_class else "<table>",
           "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    out += [(f'<tr class="{cls}">' if cls else "<tr>") + "".join(cells) + "</tr>" for cls, cells in rows]
    return [*out, "</table>"]


def render_html(report: DayQuality) -> str:
    counts, score = _summary(report)
    body = [f"<h1>Data quality {escape(report.day)}</h1>",
            f'<p class="summary">Checks: {escape(counts)}. Quality score: <strong>{escape(score)}</strong>.</p>']
    if not report.outcomes:
        body.append("<p>No asset check ran for this day in this Dagster instance.</p>")
    for layer in report.layers():
        body.append(f"<h2>{escape(layer)}</h2>")
        rows = [("" if o.passed else "failed",
                 [f"<td>{escape(o.asset)}</td>", f"<td>{escape(o.check)}</td>", f"<td>{escape(o.severity)}</td>",
                  f"<td>{'passed' if o.passed else '<strong>FAILED</strong>'}</td>",
                  f'<td class="details">{escape(chr(10).join(_details(o)))}</td>'])
                for o in report.outcomes_of(layer)]
        rows += [("not-run", [f"<td>{escape(n.rsplit(':', 1)[0])}</td>", f"<td>{escape(n.rsplit(':', 1)[1])}</td>",
                              "<td></td>", "<td>not run</td>", "<td></td>"]) for n in report.not_run_of(layer)]
        body += _table(["asset", "check", "severity", "result", "details"], rows)
        for outcome in (o for o in report.outcomes_of(layer) if not o.passed):
            columns, sample = _sample(outcome)
            if columns:
                body.append(f"<p>Failing rows of <code>{escape(outcome.name)}</code>:</p>")
                body += _table(columns, [("", [f"<td>{escape(v)}</td>" for v in row]) for row in sample], "sample")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Data quality {escape(report.day)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
