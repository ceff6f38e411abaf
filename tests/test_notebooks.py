"""Every notebook runs headless under papermill (defaults: offline, local backend, Helsinki
demo; plus a second parameter set where it matters), the committed notebooks are clean and
documented, and ``pytest --nbval-lax`` passes on them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from resultsfactory import write_export

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
NAMES = ["stack", "run_analysis", "run_many", "monitor", "explore_results", "city_report",
         "compare", "scenario", "campaign", "plan", "osm_qa", "explain_change"]


def run_nb(name: str, out_dir: Path, **params: object) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>.ipynb`` with papermill; return the executed notebook."""
    out = out_dir / f"{name}.out.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=params,
                        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False,
                        execution_timeout=600)
    return nbformat.read(str(out), as_version=4)


def text_of(nb: nbformat.NotebookNode) -> str:
    """All text/plain, text/html and stream outputs of a notebook, joined."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            for mime in ("text/plain", "text/html", "text/markdown"):
                v = o.get("data", {}).get(mime)
                if v:
                    parts.append(v if isinstance(v, str) else "".join(v))
    return "\n".join(parts)


@pytest.fixture(scope="session")
def demo_engine():
    """One real engine run of the Helsinki demo, shared by the notebooks of this worker
    (results.demo_results caches it under PNA_OUTPUTS; the kernels inherit PNA_OUTPUTS)."""
    pytest.importorskip("pyrosm")
    from pna_helpers.results import demo_results

    return demo_results()


# --------------------------------------------------------------------------- static checks
@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean_and_documented(name: str) -> None:
    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for c in nb.cells:  # outputs cleared: no per-run ids or memory addresses in git
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None
    params = pm.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert params, "papermill finds the parameters"
    for p in params.values():  # papermill --help-notebook shows each with its explanation
        assert p["help"].strip(), f"parameter {p['name']} has no help comment"
        assert p["inferred_type_name"] != "None"
    # thin notebooks: a few cells calling pna_helpers
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) <= 10 and all(len(c.source.splitlines()) <= 30 for c in code)


# --------------------------------------------------------------------------- results notebooks
def test_explore_results_on_an_official_export(tmp_path: Path) -> None:
    export = write_export(tmp_path / "helsinki" / "24.05")
    nb = run_nb("explore_results", tmp_path, results=str(export), block_score="transit_score",
                show_destinations=False)
    text = text_of(nb)
    assert "helsinki: official results" in text
    assert "85.89" in text and "Blocks: Transit (0-100)" in text
    assert "Destinations: parks" not in text.split("Blocks: Transit")[0]


def test_compare_two_exports(tmp_path: Path) -> None:
    a = write_export(tmp_path / "a")
    b = write_export(tmp_path / "b", overall_scale=0.5, score_shift=-0.1)
    nb = run_nb("compare", tmp_path, results_list=[str(a), str(b)], names=["Before", "After"])
    text = text_of(nb)
    assert "Before" in text and "After" in text and "Change" in text
    assert "-10.00" in text  # overall 85.89 -> 75.89, a signed change in points
    assert "change: second minus first, in points" in text  # the table states its units
    assert "After minus Before: change in block overall score (points)" in text
    assert "overall_score" not in text  # the score's name, not the column's


def test_results_notebooks_on_the_demo(demo_engine, tmp_path: Path) -> None:
    text = text_of(run_nb("explore_results", tmp_path))
    assert "Helsinki demo: pna results" in text and "Low-stress network" in text
    text = text_of(run_nb("city_report", tmp_path))
    assert "Helsinki demo: Bicycle Network Analysis" in text and "methodology: reference" in text
    text = text_of(run_nb("compare", tmp_path))
    assert "Helsinki demo" in text and "Helsinki demo, next year" in text
    # the default pair differs (a demo whose two sets were equal showed only +0.00)
    assert "Helsinki demo, next year minus Helsinki demo: change in block overall score" in text
    cells = re.findall(r">([^<>]+)</td>", text.split("change: second minus first, in points")[1])
    overall = cells[cells.index("Overall"):cells.index("Overall") + 4]
    assert overall[1] == "85.89" and overall[3] not in ("+0.00", "0.00"), overall


def test_scenario_notebook(demo_engine, tmp_path: Path) -> None:
    nb = run_nb("scenario", tmp_path)
    text = text_of(nb)
    assert "engine re-run in" in text and "Change in blocks reachable on low stress" in text
    nb = run_nb("scenario", tmp_path, change="speed limit 15 mph",
                where="functional_class in ['secondary', 'primary']")
    assert "maxspeed" in text_of(nb)


def test_plan_and_osm_qa_notebooks(demo_engine, tmp_path: Path) -> None:
    """Offline on the demo: the plan table, its curve, its numbered map and the full-run
    check; the QA summary, ranked list and map."""
    nb = run_nb("plan", tmp_path, budget_km=1.0)
    text = text_of(nb)
    assert "candidate evaluations" in text and "identical" in text and "DIFFERENT" not in text
    assert "pna-plan-step" in text  # the numbered map
    assert any(o.get("data", {}).get("image/png") for c in nb.cells
               for o in c.get("outputs", []))  # the curve
    text = text_of(run_nb("osm_qa", tmp_path, top=10))
    assert "rest on a default" in text and "openstreetmap.org/way/" in text
    assert "Score range of a missing tag" in text


def test_explain_change_notebook(demo_engine, tmp_path: Path) -> None:
    """Defaults: the demo against its next year (edited OSM, population, boundary)."""
    report = tmp_path / "why.html"
    nb = run_nb("explain_change", tmp_path, top_ways=2, report=str(report))
    text = text_of(nb)
    assert "Overall score" in text and "from the network" in text
    assert "Network (OSM ways and tags)" in text and "Total change" in text
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outs)  # the waterfall
    assert any("leaflet" in str(o.get("data", {}).get("text/html", "")) for o in outs)  # map
    assert report.exists() and "Why the score changed" in report.read_text()


# --------------------------------------------------------------------------- ops notebooks
def test_ops_notebooks_local_backend(demo_engine, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNA_CONCURRENCY", "2")  # the kernels' local backend runs 2 jobs at once
    text = text_of(run_nb("stack", tmp_path))
    assert "local backend" in text
    text = text_of(run_nb("run_analysis", tmp_path, timeout_minutes=10))
    assert "SUCCEEDED" in text and "Overall" in text
    # the job's results load by job id, named after the job's place
    from pna_helpers import jobs
    from pna_helpers.results import load_results

    # the newest: other tests of this session may have run the demo in the same store
    job = max(jobs.get_client("local").list(place="Helsinki demo"), key=lambda j: j.created_at)
    res = load_results(job.job_id)
    assert res.name == "Helsinki demo" and res.folder.name == job.job_id
    assert load_results(res.folder).name == "Helsinki demo"
    # a place whose boundary has no roads: the job fails, the notebook shows reason and log
    empty = tmp_path / "nowhere.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
            [0.0, 0.0], [0.001, 0.0], [0.001, 0.001], [0.0, 0.001], [0.0, 0.0]]]}}]}))
    osm = demo_engine.run["parameters"]["osm"]
    assert Path(osm).exists()
    text = text_of(run_nb("run_analysis", tmp_path, place="Nowhere", boundary=str(empty),
                          osm=str(osm), country="Finland", timeout_minutes=10))
    assert "FAILED" in text and "last lines of the log" in text
    text = text_of(run_nb("run_many", tmp_path, timeout_minutes=20, poll_seconds=0.5))
    assert "2 succeeded, 0 failed" in text
    # a places file with a good and a bad place; the bad one is retried and fails again
    from pna_helpers import jobs

    demo = jobs.demo_request()
    places = tmp_path / "places.csv"
    places.write_text(
        "place,boundary,osm,population,country,city_speed_limit,offline\n"
        f"Demo again,{demo.boundary},{demo.osm},{demo.population},Finland,25,true\n"
        f"Nowhere else,{empty},{demo.osm},,Finland,,true\n")
    text = text_of(run_nb("run_many", tmp_path, places_file=str(places), retry_failed=True,
                          timeout_minutes=20, poll_seconds=0.5))
    assert "1 succeeded, 1 failed" in text and "- Nowhere else:" in text
    text = text_of(run_nb("monitor", tmp_path))
    assert "Nowhere" in text and "SUCCEEDED" in text and "FAILED" in text
    text = text_of(run_nb("monitor", tmp_path, status="FAILED", log_lines=5))
    assert "Nowhere" in text and "Helsinki demo 20 mph" not in text


def test_nbval_lax_on_committed_notebooks(demo_engine) -> None:
    """``pytest --nbval-lax notebooks/`` runs every committed notebook top to bottom."""
    env = dict(os.environ, PNA_CONCURRENCY="2")
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3",
         "-p", "no:cacheprovider", "-q", "-o", "addopts=", str(NOTEBOOKS)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert " passed" in p.stdout


def test_scenario_upgrade_joining_islands_raises_scores(demo_engine) -> None:
    """A protected bike lane on a high-stress way between two low-stress islands: the scores
    go up (never down), blocks gain low-stress access, none loses it; undoing it loses."""
    from pna_helpers import scenario

    cands = scenario.find_island_connectors(demo_engine)
    assert len(cands) > 0 and (cands["islands_joined"] >= 2).all()
    way = int(cands["osm_id"].iloc[0])
    sc = scenario.run_scenario(demo_engine, "protected bike lane", way_ids=[way])
    changed = sc.changed_ways()
    # §3.8 W10/F15 (cycleway=track) -> track (with traffic on one-way roads) -> stress 1 (§4.2)
    assert len(changed) and set(changed["ft_bike_infra"]) == {"track"}
    seg = changed[["ft_seg_stress", "tf_seg_stress"]].apply(lambda c: c.astype(float))
    assert ((seg == 1) | seg.isna()).all().all()
    ch = sc.score_changes(all_scores=False)
    assert ch.loc["Overall", "change"] > 0
    assert (ch["change"].fillna(0) >= 0).all()  # more low-stress access never lowers a score
    blocks = sc.block_changes()
    assert (blocks["access"] == "gained").any() and not (blocks["access"] == "lost").any()
    back = scenario.run_scenario(sc.result, "remove bike infrastructure", way_ids=[way])
    assert back.score_changes(all_scores=False).loc["Overall", "change"] < 0
    assert (back.block_changes()["access"] == "lost").any()


@pytest.mark.aws
def test_stack_notebook_on_aws(moto_url: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack notebook against a local AWS emulator (moto): create, scale, scale to zero.

    ``moto_url`` starts from an empty AWS with AWS's managed policies (moto's state lives in
    this process: a server of its own would inherit what other tests of the worker left)."""
    monkeypatch.setenv("PNA_RESULTS_BUCKET", "pna-nb-test")
    text = text_of(run_nb("stack", tmp_path, backend="aws", action="up"))
    assert "created" in text and "ENABLED" in text
    text = text_of(run_nb("stack", tmp_path, backend="aws", action="scale",
                          desired_vcpus=4, max_vcpus=8))
    assert "'desired_vcpus'" in text  # (moto does not apply the new sizes)
    text = text_of(run_nb("stack", tmp_path, backend="aws", action="zero"))
    assert "scaled to 0" in text


def test_scenario_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    from pna_engine.errors import InputError
    from pna_helpers import scenario
    from pna_helpers.results import load_results

    assert scenario.change_tags("speed limit 20 mph") == {"maxspeed": "20 mph"}
    assert scenario.change_tags("speed limit 30 km/h") == {"maxspeed": "30"}  # OSM: km/h bare
    tags = scenario.change_tags("protected bike lane both ways")
    assert tags["cycleway"] == "track" and tags["oneway:bicycle"] == "no"  # §3.8 H9
    with pytest.raises(InputError, match="unknown change"):
        scenario.change_tags("paint it green")
    official = load_results(write_export(tmp_path / "official"))
    with pytest.raises(InputError, match="not a PNA result with run.json"):
        scenario.run_scenario(official, "protected bike lane", way_ids=[101])
    ours = load_results(write_export(tmp_path / "ours", pna=True))
    with pytest.raises(InputError, match="not in the baseline network: \\[999\\]"):
        scenario.select_ways(ours.ways, [999])
    with pytest.raises(InputError, match="bad where filter"):
        scenario.select_ways(ours.ways, None, "no_such_column > 3")
    assert scenario.select_ways(ours.ways, None, "functional_class == 'secondary'") == [104, 105]
    with pytest.raises(InputError, match="boundary input b is not on this machine"):
        scenario.run_scenario(ours, "protected bike lane", way_ids=[102])
