"""pna explain on the Helsinki demo and its "next year" (pyosmium-edited OSM: bike lanes, a
speed limit, a way removed, a new cycleway, a new school; changed population; moved boundary).

Properties: the contributions add up to the change (overall and every category); swapping A
and B negates them; an edit confined to one group is attributed to that group alone. Plus the
methodology split quirk by quirk, the details (segment causes with the OSM tag diff,
destinations, leave-one-out ways), the outputs-only mode, the CLI and the HTML report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pna_helpers import nextyear
from pna_helpers.explain import GROUPS, explain
from pna_helpers.results import MAIN_SCORES

pytest.importorskip("pyrosm")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Demo inputs, the demo run (A), its next year (B) and two one-group variants."""
    from pna_engine.demo import prepare_demo_inputs

    root = tmp_path_factory.mktemp("explain")
    base = prepare_demo_inputs(root / "inputs")
    out = {"base": base, "root": root}
    out["A"] = nextyear.run(base, root / "A", place="Helsinki demo 2025")
    ny = nextyear.next_year_inputs(base, root / "next")
    out["B"] = nextyear.run(ny, root / "B", place="Helsinki demo 2026")
    school = nextyear.next_year_inputs(base, root / "school", network=False, population=False,
                                       boundary=False)
    out["school"] = nextyear.run(school, root / "school-run", place="Helsinki demo + school")
    net = nextyear.next_year_inputs(base, root / "net", destinations=False, population=False,
                                    boundary=False)
    out["net"] = nextyear.run(net, root / "net-run", place="Helsinki demo, network edits")
    return out


@pytest.fixture(scope="module")
def full(demo):
    return explain(demo["A"], demo["B"], top_ways=3, workers=1)


def test_contributions_add_up_to_the_change(full) -> None:
    assert set(full.differing) == {"network", "destinations", "population", "boundary"}
    c = full.contributions
    assert list(c.columns) == list(MAIN_SCORES)
    assert "engine" not in c.index and "unexplained" not in c.index  # same engine, inputs known
    for sid in MAIN_SCORES:
        assert c[sid].sum() == pytest.approx(full.scores.loc[sid, "change"], abs=1e-9), sid
    # each edited group moved the overall score (bike lanes up; all are real effects)
    assert c.loc["network", "overall_score"] > 1.0
    for g in ("destinations", "population", "boundary"):
        assert abs(c.loc[g, "overall_score"]) > 0.05, g
    assert c.loc["methodology"].abs().max() == 0.0
    d = full.to_dict()
    assert d["total_change"] == pytest.approx(sum(d["contributions"].values()), abs=1e-5)
    for sid, part in d["categories"].items():
        assert part["total_change"] == pytest.approx(sum(part["contributions"].values()),
                                                     abs=1e-5), sid


def test_swapping_a_and_b_negates(full, demo) -> None:
    back = explain(demo["B"], demo["A"], top_ways=0, workers=1)
    assert back.runs == 0  # the same coalitions: every engine run reused
    np.testing.assert_allclose(back.contributions.loc[list(GROUPS)].to_numpy(),
                               -full.contributions.loc[list(GROUPS)].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(back.scores["change"], -full.scores["change"], atol=1e-9)


def test_destinations_edit_goes_to_destinations_only(demo) -> None:
    """The new school is in a new OSM file, so the file changes for the network as well:
    swapping the network alone must change nothing."""
    ex = explain(demo["A"], demo["school"], top_ways=0, workers=1)
    assert set(ex.differing) == {"network", "destinations"}
    total = ex.scores["change"]
    assert abs(total["overall_score"]) > 0.05
    np.testing.assert_allclose(ex.contributions.loc["destinations"], total, atol=1e-9)
    assert ex.contributions.loc[["network", "population", "boundary", "methodology"]] \
        .abs().to_numpy().max() == 0.0
    schools = ex.destinations.set_index("category").loc["schools"]
    assert (schools["added"], schools["removed"]) == (1, 0)
    assert "+1 schools" in ex.summary()


def test_network_edit_goes_to_network_only(demo, full) -> None:
    ex = explain(demo["A"], demo["net"], top_ways=3, workers=1)
    assert set(ex.differing) == {"network", "destinations"}
    total = ex.scores["change"]
    assert total["overall_score"] > 1.0
    np.testing.assert_allclose(ex.contributions.loc["network"], total, atol=1e-9)
    assert ex.contributions.loc[["destinations", "population", "boundary"]].abs() \
        .to_numpy().max() == 0.0
    seg = ex.segments.set_index("osm_id")
    # each edit found with its cause and the OSM tag diff
    mik = seg.loc[[17000885]]
    assert set(mik["cause"]) == {"bike infrastructure"}
    assert "+cycleway=track" in mik["tag_diff"].iloc[0]
    vuo = seg.loc[[22565684]]
    assert set(vuo["cause"]) == {"speed"} and "maxspeed" in vuo["tag_diff"].iloc[0]
    assert set(seg.loc[list(nextyear.REMOVED_WAYS), "cause"]) == {"removed way"}
    new = ex.segments[ex.segments["cause"] == "new way"]
    assert list(new["name"]) == [nextyear.NEW_WAY_NAME]
    assert "clipped (boundary)" not in set(ex.segments["cause"])  # same boundary
    # leave-one-out: the ways that matter are ranked by their own effect
    top = ex.top_ways
    assert len(top) == 3 and top["overall_points"].abs().iloc[0] > 0.5
    assert top["overall_points"].abs().is_monotonic_decreasing
    assert "network" in ex.summary() and "bike infrastructure" in ex.summary()
    # blocks whose low-stress reach changed
    assert (ex.blocks["access"] == "gained").any()


def test_methodology_split_by_quirk(demo) -> None:
    root = demo["root"]
    corr = nextyear.run(demo["base"], root / "corrected", place="Helsinki demo corrected",
                        methodology="corrected")
    assert json.loads((corr / "run.json").read_text())["methodology"] == "corrected"
    ex = explain(demo["A"], corr, top_ways=0, workers=1)
    assert ex.differing == ["methodology"]
    total = ex.scores["change"]
    assert total["overall_score"] > 1.0
    np.testing.assert_allclose(ex.contributions.loc["methodology"], total, atol=1e-9)
    q = ex.quirks
    np.testing.assert_allclose(q.sum().to_numpy(), total.to_numpy(), atol=1e-9)
    # non-US demo without jobs: B7 (the 0.35 job weight kept) is what moves the score
    b7 = [i for i in q.index if "(B7)" in i and "+" not in i]
    assert b7 and q.loc[b7[0], "overall_score"] == pytest.approx(total["overall_score"], abs=0.01)


def test_official_export_outputs_only(demo, tmp_path: Path) -> None:
    other = tmp_path / "official"
    shutil.copytree(demo["B"], other)
    (other / "run.json").unlink()
    (other / "status.json").unlink()
    ex = explain(demo["A"], other, workers=1)
    assert list(ex.contributions.index) == ["unexplained"]
    assert ex.contributions.loc["unexplained", "overall_score"] == \
        pytest.approx(ex.scores.loc["overall_score", "change"])
    assert any("no run.json" in u for u in ex.unavailable)
    assert len(ex.segments) and ex.destinations["added"].sum() >= 1  # outputs still compared


def test_cli_json_report_and_bad_input(demo, full, tmp_path: Path, capsys) -> None:
    from pna_helpers.cli import main

    report = tmp_path / "why.html"
    rc = main(["explain", str(demo["A"]), str(demo["B"]), "--json", "--top-ways", "3",
               "--workers", "1", "-o", str(report), "--quiet"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["total_change"] == pytest.approx(full.total_change, abs=1e-6)
    assert set(d["contributions"]) == set(GROUPS)
    assert set(d["categories"]) == set(MAIN_SCORES) - {"overall_score"}
    page = report.read_text()
    assert "Why the score changed" in page and "<svg" in page and "srcdoc=" in page
    # the new way's name comes from OSM: escaped in the tables and (twice) in the map
    assert nextyear.NEW_WAY_NAME not in page
    assert "Uusi &lt;b&gt;pyörätie&lt;/b&gt; &amp; co" in page
    rc = main(["explain", str(demo["A"]), str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("pna: error:")


def test_map_draws_causes_offline_in_a_browser(full, tmp_path: Path) -> None:
    from test_browser import CHROMIUM, chromium, script_errors

    if CHROMIUM is None:
        pytest.skip("headless Chromium not found")
    import re

    from pna_helpers import maps
    from pna_helpers.explain import BLOCK_OPACITY, CAUSE_COLORS

    page = maps.save_map(full.map(), tmp_path / "explain-map.html")
    dom, err = chromium(page, tmp_path, "--dump-dom")
    strokes = re.findall(r'<path[^>]*stroke="([^"]+)"[^>]*leaflet-interactive', dom) + \
        re.findall(r'<path[^>]*leaflet-interactive[^>]*stroke="([^"]+)"', dom)
    assert CAUSE_COLORS["bike infrastructure"] in strokes and CAUSE_COLORS["new way"] in strokes
    assert "segment: bike infrastructure" in dom and "block: no change" in dom  # the legend
    # block swatches are as see-through as the blocks they explain (opaque read a class darker)
    assert re.search(rf'opacity:{BLOCK_OPACITY:g};[^>]*></span>block: no change', dom)
    assert f'fill-opacity="{BLOCK_OPACITY:g}"' in dom
    assert not script_errors(err), script_errors(err)
