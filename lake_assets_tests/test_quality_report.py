"""lake-quality-report on a real Dagster instance (SQLite storage in a DAGSTER_HOME): the standalone checks
of processed/sale run alone on two committed days, one with a quantity planted to fail its declared
range (an ERROR check) and one good; the report of each day, in Markdown and in HTML (looked at in
headless Chromium), and the exit codes. No Spark: the days are small Arrow tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from PIL import Image

from lake_assets.automation.quality_report import main as report
from lake_assets.automation.quality_report_render import FAILED_BACKGROUND, NOT_RUN_BACKGROUND
from lake_assets.config import BUNDLED_CONFIG, load_config
from lake_assets.resources.lake_storage import LakeStorage

from .check_runs import run_checks_alone, sales_partition
from .chromium import browse
from .conftest import TEST_MASKING_KEY

BAD_DAY, GOOD_DAY, EMPTY_DAY = "2024-01-01", "2024-01-02", "2024-01-03"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with the config (`pipeline.yaml`) and DAGSTER_HOME (`dagster_home`) in which the checks of
    both days ran."""
    base = tmp_path_factory.mktemp("quality_report")
    raw = yaml.safe_load(BUNDLED_CONFIG.read_text())
    raw["quality"] = {"checks": {"schema": {"severity": "warn"}},
                      "tables": {"processed/sale": {"columns": {"quantity": {"min": 1, "max": 5}}}}}
    (base / "pipeline.yaml").write_text(yaml.safe_dump(raw))
    dagster_home = base / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")  # SQLite storage there
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKE_MASKING_KEY", TEST_MASKING_KEY)
        patch.setenv("LAKE_CONFIG", str(base / "pipeline.yaml"))
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        config = load_config()
        lake = LakeStorage(url=str(base / "lake"))
        lake.write_arrow(["processed", "sale"], BAD_DAY, sales_partition(3, quantity=[2, 9, 5]))
        lake.write_arrow(["processed", "sale"], GOOD_DAY, sales_partition(3))
        with DagsterInstance.get() as instance:
            bad = run_checks_alone(config, lake, "processed/sale", instance, day=BAD_DAY)
            good = run_checks_alone(config, lake, "processed/sale", instance, day=GOOD_DAY)
        assert (bad["schema"].passed, bad["declared_columns"].passed) == (True, False)
        assert (good["schema"].passed, good["declared_columns"].passed) == (True, True)
        yield base


@pytest.fixture(autouse=True)
def _report_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_CONFIG", str(home / "pipeline.yaml"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))


def test_markdown_report_of_a_day_with_a_failed_check(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert report(["--partition", BAD_DAY]) == 1
    text = capsys.readouterr().out
    # WARN `schema` passed (weight 1), ERROR `declared_columns` failed (weight 2): 1 / 3.
    assert "Quality score: 33.33%." in text
    processed = text.split("## processed\n")[1].split("\n## ")[0]
    assert "| processed/sale | schema | WARN | passed |" in processed
    assert "| processed/sale | declared_columns | ERROR | **FAILED** |" in processed
    assert "failures: quantity: max: 1" in processed
    # The failing row is the one planted (line L1, quantity 9); its card number is masked by the check.
    sample = processed.split("Failing rows of `processed/sale:declared_columns`:")[1]
    header, _, row = sample.strip().splitlines()[:3]
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | "), strict=True))
    assert (cells["sale_line_id"], cells["quantity"], cells["card_number"]) == ("L1", "9", "***")
    # Checks of the graph that did not run that day are listed under their layer.
    assert "`curated/fact_sales:reconciles_with_masked`" in text.split("## curated\n")[1].split("\n## ")[0]
    assert "`warehouse/fact_sales:reconciles_with_curated`" in text.split("## warehouse\n")[1]
    assert "`processed/sale:schema`" not in text
    assert "Checks: 1 passed, 1 failed," in text


def test_exit_codes_and_usage_errors(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "good.md"
    assert report(["--partition", GOOD_DAY, "--out", str(out)]) == 0
    assert "2 checks passed, 0 failed" in capsys.readouterr().out
    assert "Quality score: 100.00%." in out.read_text()
    assert report(["--partition", EMPTY_DAY]) == 1
    assert "No asset check ran for this day" in capsys.readouterr().out

    def usage_error(*args: str) -> str:
        assert report(list(args)) == 2
        return capsys.readouterr().err

    assert "--partition" in usage_error()
    assert "not a day (YYYY-MM-DD): '2024-13-01'" in usage_error("--partition", "2024-13-01")
    assert "invalid choice: 'pdf'" in usage_error("--partition", GOOD_DAY, "--format", "pdf")
    assert "cannot write" in usage_error("--partition", GOOD_DAY, "--out", str(tmp_path / "no" / "such.md"))
    monkeypatch.setenv("LAKE_CONFIG", str(tmp_path / "missing.yaml"))
    assert "pipeline config:" in usage_error("--partition", GOOD_DAY)
    monkeypatch.setenv("LAKE_CONFIG", str(home / "pipeline.yaml"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "nowhere"))
    assert "Dagster instance at DAGSTER_HOME:" in usage_error("--partition", GOOD_DAY)
    monkeypatch.delenv("DAGSTER_HOME")
    err = usage_error("--partition", GOOD_DAY)
    assert "DAGSTER_HOME is not set" in err and "Traceback" not in err


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@pytest.mark.services  # headless Chromium
def test_html_report_renders_with_the_failed_row_highlighted(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "quality.html"
    assert report(["--partition", BAD_DAY, "--format", "html", "--out", str(page)]) == 1
    html = page.read_text()
    assert "<script" not in html and "<link" not in html  # self-contained
    failed_rows = [r for r in html.split("<tr") if r.startswith(' class="failed"')]
    assert len(failed_rows) == 1 and "declared_columns" in failed_rows[0]

    screenshot = tmp_path / "quality.png"
    shot = browse(page.as_uri(), tmp_path, f"--screenshot={screenshot}")
    assert screenshot.exists(), shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        rgb = image.convert("RGB")
        counts = {colour: n for n, colour in rgb.getcolors(maxcolors=rgb.width * rgb.height)}
    # The failed row's red and the not-run rows' yellow are on screen; the page is not blank.
    assert counts.get(_rgb(FAILED_BACKGROUND), 0) > 2000
    assert counts.get(_rgb(NOT_RUN_BACKGROUND), 0) > 2000
    assert sum(n for p, n in counts.items() if max(p) < 100) > 2000  # dark text
