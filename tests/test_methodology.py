"""Methodology profiles are selectable everywhere a run is requested (engine CLI, job
requests, places files, campaigns) and recorded in run.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pna_engine.errors import InputError
from pna_engine.params import Params, Quirks, methodology_label, parse_quirk_options
from pna_helpers import jobs


def test_profiles_and_overrides() -> None:
    assert Params(boundary="b", output="o").quirks == Quirks()
    p = Params(boundary="b", output="o", methodology="corrected")
    assert p.quirks == Quirks.corrected() and p.methodology_label == "corrected"
    p = Params(boundary="b", output="o", methodology="corrected", quirks="B7=on")
    assert p.quirks.opportunity_keeps_job_weight and not p.quirks.parking_both_ignored
    assert p.methodology_label == "custom (corrected, kept: B7)"
    p = Params(boundary="b", output="o", quirks={"parking_both_ignored": "off"})
    assert methodology_label(p.quirks) == "custom (reference, corrected: B2)"
    assert parse_quirk_options(["B2=off;uturn_is_rightmost=on"]) == {
        "parking_both_ignored": False, "uturn_is_rightmost": True}
    with pytest.raises(InputError, match="--methodology must be one of reference, corrected"):
        Params(boundary="b", output="o", methodology="fixed")
    with pytest.raises(InputError, match="unknown quirk 'B99'"):
        Params(boundary="b", output="o", quirks="B99=off")
    with pytest.raises(InputError, match="expected on .* or off"):
        Params(boundary="b", output="o", quirks="B2=maybe")


def test_engine_cli_records_the_methodology(tmp_path: Path) -> None:
    pytest.importorskip("pyrosm")
    from pna_engine.demo import prepare_demo_inputs

    inp = prepare_demo_inputs(tmp_path / "in")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pna_engine", "run", "--boundary", inp["boundary"], "--osm",
           inp["osm"], "--population", inp["population"], "--country", "Finland", "--offline",
           "--workers", "1", "--output", str(out), "--quiet", "--quirks", "B7=off"]
    subprocess.run(cmd, check=True)
    run = json.loads((out / "run.json").read_text())
    assert run["methodology"] == "custom (reference, corrected: B7)"
    assert run["parameters"]["quirks"]["opportunity_keeps_job_weight"] is False
    r = subprocess.run(cmd[:-2] + ["--methodology", "fixed"], capture_output=True, text=True)
    assert r.returncode == 2 and "--methodology" in r.stderr


def test_requests_places_and_campaigns_carry_it(tmp_path: Path) -> None:
    demo = jobs.demo_request()
    (tmp_path / "places.csv").write_text(
        "place,boundary,osm,population,country,methodology,quirks\n"
        f"A,{demo.boundary},{demo.osm},{demo.population},Finland,corrected,B7=on\n"
        f"B,{demo.boundary},{demo.osm},{demo.population},Finland,,\n")
    a, b = jobs.read_places(tmp_path / "places.csv")
    assert a.methodology == "corrected" and a.quirks.opportunity_keeps_job_weight
    assert not a.quirks.parking_both_ignored
    assert b.methodology == "reference" and b.quirks == Quirks()
    # the container gets it through the request JSON
    params = jobs.AnalysisRequest.from_dict(json.loads(a.to_json()), check_files=False) \
        .to_params(str(tmp_path / "o"))
    assert params.methodology_label == "custom (corrected, kept: B7)"
    (tmp_path / "bad.csv").write_text(
        f"place,boundary,methodology\nC,{demo.boundary},newest\n")
    with pytest.raises(InputError, match="methodology"):
        jobs.read_places(tmp_path / "bad.csv")
    # a campaign applies one profile to every place
    from pna_helpers.campaigns._cli import with_methodology

    both = with_methodology([a, b], "corrected", [])
    assert all(r.methodology == "corrected" and r.quirks == Quirks.corrected() for r in both)
