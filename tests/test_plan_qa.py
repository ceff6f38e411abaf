"""Improvement planner (pna plan) and OSM QA (pna qa) on the Helsinki demo: plans and QA
ranges agree with full engine runs, exports are what mapping tools read, bad input is one line."""

from __future__ import annotations

import dataclasses
import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pna_engine import pipeline
from pna_helpers import plan as plan_mod
from pna_helpers import qa as qa_mod

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    pytest.importorskip("pyrosm")
    from pna_helpers.results import demo_results

    return demo_results()


@pytest.fixture(scope="module")
def baseline(demo):
    return plan_mod.baseline_for(demo)[1]


def _pna(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pna_helpers.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_plan_is_greedy_within_budget_and_matches_one_full_run(demo, tmp_path):
    p = plan_mod.make_plan(demo, budget_km=2.0)
    t = p.table
    assert len(t) >= 1
    assert t["length_km"].sum() <= 2.0 + 1e-9
    assert ((t["gain"] > 0) | (t["low_stress_pairs_gained"] > 0)).all()
    assert (np.diff(np.r_[p.baseline_score, t["score"]]) >= 0).all()
    assert set(t["treatment"]) <= set(plan_mod.COST_PER_KM)
    # the cost is the per-km table times the length
    cost = [plan_mod.COST_PER_KM[tr] * km for tr, km in zip(t["treatment"], t["length_km"])]
    np.testing.assert_allclose(t["cost"], cost)
    check = p.verify(workers=1)
    assert check["match"], check
    assert p.final_score > p.baseline_score
    c = p.curve()
    assert len(c) == len(t) + 1 and c["score"].iloc[-1] == p.final_score
    out = p.to_geojson(tmp_path / "plan.geojson")
    gj = json.loads(out.read_text())
    steps = {f["properties"]["step"] for f in gj["features"]}
    assert steps == set(t["step"])
    f0 = gj["features"][0]
    assert f0["geometry"]["type"] in ("LineString", "MultiLineString")
    assert f0["properties"]["url"].startswith("https://www.openstreetmap.org/way/")
    import shapely.geometry

    lon, lat = shapely.geometry.shape(f0["geometry"]).representative_point().coords[0]
    assert 24 < lon < 26 and 59 < lat < 61  # WGS84 (Helsinki)


def test_plan_money_budget_filter_and_project_file(demo, baseline, tmp_path):
    cands = plan_mod.candidates(baseline, "functional_class == 'secondary'")
    assert len(cands) and set(cands["functional_class"]) == {"secondary"}
    budget = float(cands["cost"].min()) * 1.5
    p = plan_mod.make_plan(demo, budget_cost=budget,
                           candidates_spec="functional_class == 'secondary'")
    assert p.table["cost"].sum() <= budget
    assert set(p.table["functional_class"]) <= {"secondary"}
    # a user's projects: two ways as one project with its own cost
    ids = [int(x) for x in cands["osm_ids"].explode().head(2)]
    proj = tmp_path / "projects.geojson"
    proj.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": None, "properties": {
            "osm_id": ",".join(map(str, ids)), "treatment": "protected bike lane",
            "cost": 1234.0, "name": "Project <A>"}}]}))
    c2 = plan_mod.candidates(baseline, str(proj))
    assert len(c2) == 1 and c2["osm_ids"].iloc[0] == ids and c2["cost"].iloc[0] == 1234.0


def test_plan_cli(demo, tmp_path):
    loc = str(demo.folder)
    r = _pna("plan", loc, "--budget-km", "1", "--json", "-o", str(tmp_path / "p.geojson"),
             "--report", str(tmp_path / "p.html"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["target"] == "overall" and out["final_score"] >= out["baseline_score"]
    assert (tmp_path / "p.geojson").exists()
    html = (tmp_path / "p.html").read_text()
    assert "Improvement plan" in html and "leaflet" in html.lower() and "data:image/png" in html
    for args, word in ((["--budget-km", "-1"], "budget"), (["--target", "happiness"], "target"),
                       (["--candidates", "nope.geojson"], "nope.geojson"),
                       (["--candidates", "no_such_column > 3"], "filter"),
                       (["--cost", "protected bike lane"], "--cost")):
        r = _pna("plan", loc, *args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pna: error:") and word in lines[0]


def test_qa_ranks_missing_tags_and_matches_full_runs(demo, baseline, tmp_path):
    q = qa_mod.osm_qa(demo, baseline=baseline)
    s = q.summary
    assert 0 < s["segments_on_defaults"] <= s["segments"]
    assert 0 < s["mileage_on_defaults_share"] <= 1
    t = q.table
    assert len(t) and {"osm_id", "url", "tag", "default_used", "score_range"} <= set(t.columns)
    rng = t["score_range"].to_numpy(float)
    ok = ~np.isnan(rng)
    assert (np.diff(rng[ok]) <= 0).all()  # ranked by range
    assert (t["url"] == "https://www.openstreetmap.org/way/" + t["osm_id"].astype(str)).all()
    moving = int((rng[ok] >= qa_mod.MOVES_SCORE).sum())  # the headline counts what the table says
    assert q.headline.startswith(f"{moving:,} of the {ok.sum():,} missing tags tried move" if moving
                                 else f"None of the {ok.sum():,} missing tags tried moves")
    assert q.headline in html.unescape(q.report_section())
    # each alternative's score is the full engine run's with that tag value
    row = t[t["tag"] == "lanes"].iloc[0]
    val, score = row["alternatives"][-1], row["scores"][-1]
    full = pipeline.run(dataclasses.replace(
        baseline.params, output=str(tmp_path / "full"), workers=1,
        way_tag_edits={int(row["osm_id"]): {row["tag"]: val}}), stop_after="scores")
    assert full.scores.overall_score == score
    gj = json.loads(q.to_geojson(tmp_path / "qa.geojson").read_text())
    assert len(gj["features"]) == len(t)
    assert gj["features"][0]["properties"]["tag"] == t["tag"].iloc[0]
    csv = pd.read_csv(q.to_csv(tmp_path / "qa.csv"))
    assert list(csv["osm_id"]) == list(t["osm_id"])


def test_qa_and_plan_escape_names(demo, baseline):
    q = qa_mod.osm_qa(demo, baseline=baseline)
    evil = "<img src=x onerror=alert(1)>"
    q.table.loc[0, "name"] = evil
    q.table.loc[0, "default_used"] = evil
    html = q.report_section()
    assert evil not in html and "&lt;img" in html
    assert evil not in q.map().to_html()


def test_qa_cli(demo, tmp_path):
    r = _pna("qa", str(demo.folder), "--csv", str(tmp_path / "q.csv"), "--top", "5")
    assert r.returncode == 0, r.stderr
    assert "rest on a default" in r.stdout and "openstreetmap.org/way/" in r.stdout
    r = _pna("qa", str(tmp_path / "missing"))
    assert r.returncode == 2 and r.stderr.startswith("pna: error:")
