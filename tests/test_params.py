"""The one parameter schema (``pna_engine.params``): the command lines, job requests, places
files and the run notebook are derived from it; bad values are one-line errors (exit 2)."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pna_engine.cli import build_parser, main
from pna_engine.errors import InputError
from pna_engine.params import (
    DEFAULT_COUNTRY,
    ParamError,
    Params,
    field_default,
    option_name,
    request_fields,
    run_fields,
)
from pna_helpers import jobs
from pna_helpers.jobs.request import PLACE_COLUMNS

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- derived from one place
def _options(parser) -> set[str]:
    sub = next(a for a in parser._actions if a.dest == "command")
    return {o for a in sub.choices["run"]._actions for o in a.option_strings}


def test_engine_options_are_the_schema():
    opts = _options(build_parser()) - {"-h", "--help", "--quiet"}
    assert opts == {option_name(f.name) for f in run_fields()}


def test_request_submit_and_places_columns_are_the_schema():
    names = [f.name for f in request_fields()]
    assert names[:2] == ["place", "boundary"]
    assert [f.name for f in dataclasses.fields(jobs.AnalysisRequest)] == names
    assert tuple(names) == PLACE_COLUMNS
    # the request carries what `pna-engine run` accepts (except where the job writes)
    assert {f.name for f in run_fields()} - set(names) == {"output"}
    from pna_helpers.cli import build_parser as pna_parser

    sub = next(a for a in pna_parser()._actions if a.dest == "command")
    submit = {o for a in sub.choices["submit"]._actions for o in a.option_strings}
    assert {option_name(n) for n in names} <= submit


def test_run_notebook_parameters_match_the_schema():
    nb = json.loads((REPO / "notebooks" / "run_analysis.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    params = {}
    for node in ast.parse("".join(cell["source"])).body:
        params[node.target.id] = ast.literal_eval(node.value)
    fields = {f.name: f for f in request_fields()}
    notebook_only = {"backend", "timeout_minutes"}
    assert set(params) - notebook_only <= set(fields), set(params) - set(fields)
    for name, value in params.items():
        if name in fields:
            default = field_default(fields[name])
            # the notebook writes "nothing" as "" or 0; the engine as None
            assert value == default or (default is None and not value), (name, value, default)
    assert params["country"] == DEFAULT_COUNTRY


def test_from_dict_unknown_and_missing_fields():
    with pytest.raises(InputError, match="unknown parameter.*colour"):
        Params.from_dict({"boundary": "b", "output": "o", "colour": "red"})
    with pytest.raises(ParamError, match="--output is required"):
        Params.from_dict({"boundary": "b"})
    p = Params.from_dict({"boundary": "b", "output": "o", "max_trip_distance": "1500",
                          "offline": "yes", "quirks": {"single_pass_orphans": False}})
    assert (p.max_trip_distance, p.offline, p.quirks.single_pass_orphans) == (1500.0, True, False)


# --------------------------------------------------------------------------- issue 10's rules
def _engine(tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    b = tmp_path / "b.geojson"
    b.write_text("{}")
    return subprocess.run([sys.executable, "-m", "pna_engine", "run", "--boundary", str(b),
                           "--output", str(tmp_path / "out"), "--offline", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("extra, needle", [
    (("--max-trip-distance", "inf"), "--max-trip-distance must be a finite positive"),
    (("--max-trip-distance", "nan"), "--max-trip-distance must be a finite positive"),
    (("--city-fips", "12"), "--city-fips must be exactly 7 digits"),
    (("--state-fips", "6"), "--state-fips must be exactly 2 digits"),
    (("--state", "MA", "--city-fips", "0667000"), "--city-fips 0667000 is not in MA (25)"),
    (("--state", "MA", "--state-fips", "06"), "--state-fips 06 is not the FIPS code of MA"),
    (("--state-fips", "25", "--city-fips", "0667000"), "--city-fips 0667000 is not in state 25"),
    (("--city-speed-limit", "fast"), "--city-speed-limit must be a speed in mph"),
    (("--workers", "1.5"), "--workers must be a whole number"),
    (("--lodes-year", "19"), "--lodes-year must be a year"),
    (("--place", "Two\nlines"), "--place must be one line of text, without the '\\n' in 'Two\\nlines'"),
])
def test_engine_refuses_bad_values_one_line_exit_2(tmp_path, extra, needle):
    r = _engine(tmp_path, *extra)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pna-engine: error:"), err
    assert needle in err
    assert not (tmp_path / "out").exists()


def test_engine_refuses_an_input_that_is_a_folder_before_any_work(tmp_path):
    folder = tmp_path / "city"
    folder.mkdir()
    r = _engine(tmp_path, "--population", str(folder))
    assert r.returncode == 2 and r.stderr.strip() == (
        f"pna-engine: error: --population {folder} is a folder, not a file: give the file in it")
    assert not (tmp_path / "out").exists()


def test_infinite_distance_refused_in_process(tmp_path, capsys):
    b = tmp_path / "b.geojson"
    b.write_text("{}")
    assert main(["run", "--boundary", str(b), "--output", str(tmp_path / "o"),
                 "--max-trip-distance", "inf"]) == 2
    assert "finite" in capsys.readouterr().err
    with pytest.raises(ParamError, match="finite"):
        Params(boundary="b", output="o", max_trip_distance=float("inf"))


def test_submit_refuses_short_fips_instead_of_padding(tmp_path, boundary):
    env = dict(os.environ, PNA_OUTPUTS=str(tmp_path / "o"), PNA_BACKEND="local")
    r = subprocess.run([sys.executable, "-m", "pna_helpers.cli", "submit", "--place", "X",
                        "--boundary", str(boundary), "--city-fips", "12"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "'city_fips': must be exactly 7 digits" in err, err
    with pytest.raises(InputError, match="'state_fips': must be exactly 2 digits"):
        jobs.AnalysisRequest(place="P", boundary=str(boundary), state_fips=6)


@pytest.mark.parametrize("row, needle", [
    ("A,city.geojson,maybe", "row 2, column 'offline': must be true or false"),
    (",city.geojson,true", "row 2, column 'place': the place name is empty; give every row"),
    ("A,,", "row 2, column 'boundary': is required; fill that cell in"),
])
def test_places_file_strict_values_and_missing_fields(tmp_path, boundary, row, needle):
    csv = tmp_path / "places.csv"
    csv.write_text(f"place,boundary,offline\n{row}\n")
    with pytest.raises(InputError) as ei:
        jobs.read_places(csv)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg, msg


def test_places_file_booleans(tmp_path, boundary):
    csv = tmp_path / "places.csv"
    csv.write_text("place,boundary,offline,workers\nA,city.geojson,Yes,2\nB,city.geojson,0,\n")
    a, b = jobs.read_places(csv)
    assert (a.offline, a.workers, b.offline, b.workers) == (True, 2, False, None)
