"""Reports: papermill + nbconvert into one self-contained HTML; `pna report` (one and --many)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from resultsfactory import DX, DY, X0, Y0, write_export
from shapely.geometry import box

from pna_engine.errors import InputError
from pna_helpers import display, reports
from pna_helpers.results import load_results

REPO = Path(__file__).resolve().parent.parent


def test_render_report_self_contained(tmp_path: Path) -> None:
    export = write_export(tmp_path / "town", pna=True)
    out = reports.render_report(export, tmp_path / "out" / "town.html", name="Test Town")
    html = out.read_text()
    assert "Test Town: Bicycle Network Analysis" in html
    assert "85.89" in html and "Population-weighted mean" in html  # scores with their meaning
    for section in ("Network stress", "Block scores", "Network mileage by stress"):
        assert section in html
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64', html)) >= 4  # charts inline
    assert html.count("leaflet.js (offline copy)") == 2  # two maps, each self-contained
    assert not re.search(r'<script[^>]+src="https?://', html)
    # no code and no template notes in the report
    assert "results_or_demo" not in html and "import " not in html
    assert "City report (template)" not in html
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic write left nothing behind


def test_incomplete_results_fail_before_running(tmp_path: Path) -> None:
    running = write_export(tmp_path / "running", pna=True, status="running")
    with pytest.raises(InputError, match="incomplete"):
        reports.render_report(running, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def _town(folder: Path, country: str | None = None, population: bool = True) -> Path:
    """A PNA export whose run.json names ``country`` (None: no country, the default)."""
    export = write_export(folder, pna=True)
    params = {"boundary": "b"} | ({"country": country} if country is not None else {})
    run = json.loads((export / "run.json").read_text()) | {"parameters": params}
    (export / "run.json").write_text(json.dumps(run))
    if not population:
        scores = export / "neighborhood_overall_scores.csv"
        scores.write_text("".join(ln for ln in scores.read_text().splitlines(keepends=True)
                                  if "population_total" not in ln))
    return export


def test_header_score_population_and_block_word(tmp_path: Path) -> None:
    res = load_results(_town(tmp_path / "town"))
    header = reports.header_html(res)
    # the overall score reads exactly as in the scores table (one formatter)
    table = display.scores(res).data.set_index("Score")["Value"]
    assert table["Overall"] == display.score_text(85.89) == "85.89 / 100"
    assert "<b>Overall score: 85.89 / 100</b>" in header
    assert "population 230 in 4 census blocks" in header  # no country: the default, US
    assert display.score_text(float("nan")) == display.score_text(None) == "n/a"
    # population unknown: n/a, not nan or 0
    header = reports.header_html(load_results(_town(tmp_path / "nopop", population=False)))
    assert "population n/a in 4 census blocks" in header
    assert "nan" not in header
    # the blocks counted are the boundary's (the export also holds the buffer's)
    small = _town(tmp_path / "small")
    gpd.GeoDataFrame({"id": [1]}, geometry=[box(X0 + 0.001, Y0 + 0.001, X0 + 0.002,
                                                Y0 + 2 * DY - 0.001)], crs=4326) \
        .to_file(small / "neighborhood_boundary.geojson", driver="GeoJSON")
    assert DX > 0.002 and "in 2 census blocks" in reports.header_html(load_results(small))


@pytest.mark.parametrize(("country", "word", "employment_na"), [
    ("United States of America", "census blocks", False), ("USA", "census blocks", False),
    ("us", "census blocks", False), ("Finland", "blocks", True), ("FI", "blocks", True)])
def test_us_mode_follows_the_engine(tmp_path: Path, country: str, word: str,
                                    employment_na: bool) -> None:
    from pna_engine.params import Params

    assert Params(boundary="b", output="o", country=country).is_us == (word == "census blocks")
    res = load_results(_town(tmp_path / "town", country))
    assert reports.block_word(res) == word
    assert (f"in 4 {word}") in reports.header_html(res)
    assert ("opportunity_employment" in display.not_applicable(res)) == employment_na


def test_official_export_block_word_from_its_ids(tmp_path: Path) -> None:
    us = load_results(write_export(tmp_path / "us"))  # 15-digit GEOID20s, no run.json
    assert us.is_us is None and reports.block_word(us) == "census blocks"
    assert "opportunity_employment" not in display.not_applicable(us)
    other = write_export(tmp_path / "other")
    path = other / "neighborhood_census_blocks.geojson"
    blocks = gpd.read_file(path)
    blocks["geoid20"] = ["FI-1", "FI-2", "FI-3", "FI-4"]
    blocks.to_file(path, driver="GeoJSON")
    assert reports.block_word(load_results(other)) == "blocks"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pna_helpers.reports", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_cli_many_with_index_and_one_bad_place(tmp_path: Path) -> None:
    good = write_export(tmp_path / "good-town")
    lst = tmp_path / "places.txt"
    lst.write_text(f"# result sets\n{good}\n{tmp_path / 'missing-town'}\n")
    p = _cli("--many", str(lst), "-o", str(tmp_path / "reports"))
    assert p.returncode == 1, p.stderr  # one place failed: not a success
    errors = [ln for ln in p.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith("pna: error: 1 of 2 reports failed: ")
    assert str(tmp_path / "missing-town") in errors[0] and "does not exist" in errors[0]
    assert str(good) not in errors[0]
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "1 of 2 places rendered" in index
    # the columns state their units; the overall score reads as in the report
    assert "<th>overall score (0-100)</th><th>population (people)</th>" in index
    assert "<td class=n>85.89</td><td class=n>230</td>" in index
    assert 'href="good-town.html"' in index
    assert "does not exist" in index  # the bad one is listed with its error
    assert (tmp_path / "reports" / "good-town.html").stat().st_size > 100_000
    assert "reports" in p.stderr and "2/2" in p.stderr  # progress bar


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    p = _cli(str(tmp_path / "nothing-here"), "-o", str(tmp_path / "x.html"))
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pna: error:")  # one prefix per program
    assert "does not exist" in lines[0]
    # the same subcommand through the `pna` command
    p = subprocess.run([sys.executable, "-m", "pna_helpers.cli", "report", "--help"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "--many" in p.stdout


def test_cli_one_report_with_relative_paths_and_quiet_stderr(tmp_path: Path) -> None:
    # a user in their project folder: `pna report outputs/results/ID -o report.html`
    write_export(tmp_path / "results" / "town", pna=True)
    p = _cli(str(Path("results") / "town"), "-o", "town.html", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"report: {Path('town.html')}"
    assert "85.89" in (tmp_path / "town.html").read_text()
    assert "WARNING" not in p.stderr  # no kernel chatter in a user's terminal
