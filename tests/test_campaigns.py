"""Campaigns: places cut from a boundaries layer, the pre-submit estimate, failure grouping,
year-over-year flags, and the offline demo campaign end to end from the notebook (papermill)
and the CLI on the real local backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pna_engine.errors import InputError
from pna_helpers import campaigns
from pna_helpers.jobs.base import JobError

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- units
def test_failure_reasons_group_across_places() -> None:
    a = ("no census block of /data/a/pop.gpkg overlaps the boundary (282 blocks read); check "
         "that the population file covers the place")
    b = ("no census block of /other/place-b/blocks.zip overlaps the boundary (17 blocks read); "
         "check that the population file covers the place")
    c = "input s3://bucket/inputs/abc/city.osm.pbf does not exist"
    assert campaigns.normalise_reason(a) == campaigns.normalise_reason(b)
    assert campaigns.normalise_reason(a) != campaigns.normalise_reason(c)
    assert "<file>" in campaigns.normalise_reason(a) and "282" not in campaigns.normalise_reason(a)
    assert campaigns.normalise_reason(None) == "(no reason recorded)"


def test_eta_before_any_place_finishes_counts_down_then_says_unknown() -> None:
    """Before a place finishes the ETA is the pre-submit estimate less the time since
    submitting; past it, the ETA is unknown (it said '1 s' for ever)."""
    import datetime as dt
    from types import SimpleNamespace

    from pna_helpers.campaigns._core import Campaign

    def status(minutes_ago: float):
        now = dt.datetime.now(dt.UTC)
        fake = SimpleNamespace(
            places=[{}] * 4, name="c", job_vcpus=1, price=0.02, _parallel=lambda: 2,
            doc={"backend": "local", "submitted_at": (now - dt.timedelta(minutes=minutes_ago))
                 .isoformat(), "created_at": now.isoformat(),
                 "estimate": {"total_seconds": 4 * 600.0, "places": [{}] * 4}})
        counts = dict.fromkeys(("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING",
                                "SUCCEEDED", "FAILED"), 0)
        counts["RUNNING"] = 4
        return Campaign._finish_status(fake, counts, {}, 0.0, None, 0)

    early = status(5)  # 4 places x 10 min on 2 workers: 20 min in all, 15 min left
    assert early.eta_basis == "pre-submit estimate" and 890 < early.eta_s < 910
    late = status(30)
    assert late.eta_s is None and late.eta_basis.startswith("unknown: past the pre-submit")


def test_estimate_model_is_fitted_on_the_benchmarks() -> None:
    m = campaigns.fitted_model()
    assert m["r2"] > 0.95 and 0.3 < m["a"] < 1.5 and 0 < m["b"] < 0.01
    from pna_helpers.campaigns._estimate import estimate_place

    small = estimate_place({"blocks": 100})
    big = estimate_place({"blocks": 20_000})
    assert big["seconds"] > small["seconds"] > 0
    # without blocks the area, then the OSM size, stand in
    assert estimate_place({"area_km2": 100.0})["basis"] == "area"
    assert estimate_place({"osm_bytes": 10**6})["basis"] == "osm_bytes"
    aws = estimate_place({"blocks": 100}, backend="aws")
    assert aws["seconds"] > small["seconds"]


def _layer(tmp_path: Path, helsinki_pbf: Path) -> Path:
    """A census-places-like layer: two small polygons in Helsinki with GEOID/NAME/STUSPS."""
    import geopandas as gpd
    import shapely

    g = gpd.GeoDataFrame(
        {"GEOID": ["2567000", "2537000"], "NAME": ["Springfield <b>", "Lowell"],
         "STATEFP": ["25", "25"]},
        geometry=[shapely.box(24.935, 60.165, 24.945, 60.170),
                  shapely.box(24.950, 60.170, 24.955, 60.173)], crs=4326)
    p = tmp_path / "places.gpkg"
    g.to_file(p, driver="GPKG")
    return p


def test_places_from_a_boundaries_layer_cut_one_extract(tmp_path, helsinki_pbf) -> None:
    import osmium

    layer = _layer(tmp_path, helsinki_pbf)
    reqs = campaigns.places_from_boundaries(layer, helsinki_pbf, tmp_path / "cut",
                                            offline=True, max_trip_distance=200)
    assert [r.place for r in reqs] == ["Springfield <b>", "Lowell"]
    assert reqs[0].city_fips == "2567000" and reqs[0].state_fips == "25"
    assert reqs[0].state == "MA" and reqs[0].country == "United States"
    def highways(pbf: Path) -> list:
        return [(w.id, all(n.location.valid() for n in w.nodes))
                for w in osmium.FileProcessor(str(pbf)).with_locations()
                if w.is_way() and "highway" in w.tags]

    whole = dict(highways(helsinki_pbf))
    for r in reqs:
        cut = Path(r.osm)
        assert cut.exists() and cut.stat().st_size < helsinki_pbf.stat().st_size
        ways = highways(cut)
        assert 0 < len(ways) < len(whole) * 0.8
        # every kept way keeps all the nodes it has in the extract
        assert all(ok for wid, ok in ways if whole[wid])
    # a layer without names is one clear error
    import geopandas as gpd

    bad = gpd.read_file(layer).drop(columns=["NAME"])
    bad.to_file(tmp_path / "bad.gpkg", driver="GPKG")
    with pytest.raises(InputError, match="no name attribute"):
        campaigns.places_from_boundaries(tmp_path / "bad.gpkg", helsinki_pbf, tmp_path / "c2")


def _table(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def test_year_over_year_flags_and_links() -> None:
    old = _table(city=["A", "B", "C", "D"], state=["MA", "MA", "MA", "MA"],
                 census_fips_code=["2500001", "2500002", "2500003", "2500004"],
                 census_population=[1000, 1000, 1000, 1000],
                 bna_overall_score=[50.0, 50.0, 50.0, 50.0], bna_people=[40.0] * 4,
                 bna_total_low_stress_miles=[10.0] * 4, bna_total_high_stress_miles=[5.0] * 4)
    new = _table(place=["A", "B", "C", "D", "E"], state=["MA"] * 5,
                 census_fips_code=["2500001", "2500002", "2500003", "2500004", "2500005"],
                 population=[1000, 1300, 1000, 1000, 50],
                 bna_overall_score=[61.0, 52.0, 50.0, 50.5, 10.0],
                 bna_people=[40.0, 42.0, 40.0, 40.0, 1.0],
                 bna_total_low_stress_miles=[10.0, 10.0, 14.0, 12.5, 1.0],
                 bna_total_high_stress_miles=[5.0] * 5)
    from pna_helpers.campaigns._yoy import ALIASES

    cmp = campaigns.compare_tables(new, old.rename(columns=ALIASES))
    by = cmp.set_index("place")
    assert by.loc["A", "delta_bna_overall_score"] == 11.0
    assert "overall score moved +11.0 points" in by.loc["A", "flags"]
    assert "population changed +30 %" in by.loc["B", "flags"]
    assert "low-stress mileage changed +40 %" in by.loc["C", "flags"]
    assert not by.loc["D", "flagged"]  # +25 % mileage, +0.5 points: below the thresholds
    assert not by.loc["E", "matched"] and not by.loc["E", "flagged"]
    assert by.loc["B", "delta_bna_people"] == 2.0
    page = campaigns.comparison_html(cmp)
    assert "href='#place-a'" in page and "id='place-a'" in page
    hostile = campaigns.comparison_html(cmp.assign(place="<script>x</script>"))
    assert "<script>" not in hostile and "&lt;script&gt;x" in hostile


def test_campaign_names_and_duplicates(tmp_path, monkeypatch) -> None:
    from pna_helpers import jobs

    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path / "out"))
    client = jobs.get_client("local")
    with pytest.raises(JobError, match="bad campaign name"):
        campaigns.create("no spaces please", [], client)
    with pytest.raises(JobError, match="unknown campaign"):
        campaigns.load("nothing-here", client)
    assert campaigns.list_campaigns(client) == []


# --------------------------------------------------------------------------- the demo, end to end
def _pna(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PNA_CONCURRENCY="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pna_helpers.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory):
    """The campaign notebook, executed by papermill with its defaults: it creates the demo
    campaign and a second one with changed inputs, retries, reads and compares them."""
    pytest.importorskip("pyrosm")
    from test_notebooks import run_nb, text_of

    out = tmp_path_factory.mktemp("nb")
    os.environ["PNA_CONCURRENCY"] = "2"
    try:
        nb = run_nb("campaign", out, timeout_s=900.0)
    finally:
        os.environ.pop("PNA_CONCURRENCY", None)
    return nb, text_of(nb)


@pytest.mark.slow
def test_campaign_notebook_runs_the_demo(notebook_run) -> None:
    nb, text = notebook_run
    assert "Campaign demo-campaign" in text and "Failures by reason" in text
    assert "no census block of &lt;file&gt; overlaps the boundary" in text
    assert "retrying: Harbour islands (outside the demo data)" in text
    assert "Helsinki North-West" in text and "Overall (0-100)" in text  # the readable ranking
    assert "pna-map" in text and "overall score" in text  # the offline map of the places
    assert "Helsinki West</b>: <a href='#place-helsinki-west'>" in text
    assert "population changed +30 %" in text
    assert "Score distributions over 6 places" in text or any(
        "image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_campaign_cli_on_the_demo(notebook_run, tmp_path) -> None:
    p = _pna(["campaign", "submit", "--demo", "--name", "cli-demo"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "cli-demo"
    p = _pna(["campaign", "wait", "cli-demo", "--no-progress"])
    assert p.returncode == 1, "one place fails on purpose: wait exits 1"
    st = json.loads(_pna(["campaign", "status", "cli-demo", "--json"]).stdout)
    assert set(st["counts"]) == {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING",
                                 "SUCCEEDED", "FAILED"}
    assert st["counts"]["SUCCEEDED"] == 6 and st["counts"]["FAILED"] == 1
    assert st["eta_s"] == 0 and st["throughput_per_hour"] > 0
    assert st["vcpu_hours"] > 0 and st["cost"] == pytest.approx(st["vcpu_hours"] * 0.02, abs=1e-4)
    [group] = st["failures"]
    assert group["count"] == 1 and group["places"] == ["Harbour islands (outside the demo data)"]
    assert "overlaps the boundary" in group["log_excerpt"]
    # retry: only the failed place gets a new job
    from pna_helpers import jobs

    before = {p["place"]: p["job_id"] for p in campaigns.load("cli-demo").places}
    p = _pna(["campaign", "retry", "cli-demo"])
    assert p.returncode == 0 and p.stdout.strip() == "Harbour islands (outside the demo data)"
    after = {p["place"]: p["job_id"] for p in campaigns.load("cli-demo").places}
    changed = [k for k in before if before[k] != after[k]]
    assert changed == ["Harbour islands (outside the demo data)"]
    assert _pna(["campaign", "wait", "cli-demo", "--no-progress"]).returncode == 1
    assert len(jobs.get_client("local").list()) >= 7
    # results in three formats, one row per place
    for ext in ("csv", "parquet", "gpkg"):
        out = tmp_path / f"r.{ext}"
        p = _pna(["campaign", "results", "cli-demo", "-o", str(out)])
        assert p.returncode == 0, p.stderr
    df = pd.read_csv(tmp_path / "r.csv")
    assert len(df) == 7 and df["bna_overall_score"].notna().sum() == 6
    assert (df.dropna(subset=["bna_overall_score"])["engine_version"] != "").all()
    assert {"bna_people", "bna_transit", "population", "bna_total_low_stress_miles",
            "run_time_s", "blocks"} <= set(df.columns)
    pq = pd.read_parquet(tmp_path / "r.parquet")
    assert list(pq["place"]) == list(df["place"])
    import geopandas as gpd

    g = gpd.read_file(tmp_path / "r.gpkg")
    assert len(g) == 7 and g.crs.to_epsg() == 4326 and (g.to_crs(3067).area > 0).all()
    # year over year against the notebook's campaigns: same inputs -> no flag; changed -> flags
    p = _pna(["campaign", "compare", "cli-demo", "demo-campaign", "-o", str(tmp_path / "same.csv")])
    assert p.returncode == 0, p.stderr
    same = pd.read_csv(tmp_path / "same.csv")
    assert same["matched"].all() and not same["flagged"].any()
    assert (same["delta_bna_overall_score"].dropna() == 0).all()
    p = _pna(["campaign", "compare", "demo-campaign-changed", "cli-demo",
              "-o", str(tmp_path / "yoy.csv")])
    yoy = pd.read_csv(tmp_path / "yoy.csv").set_index("place")
    assert "population changed +30 %" in yoy.loc["Helsinki East", "flags"]
    assert "mileage changed" in yoy.loc["Helsinki West", "flags"]
    assert yoy.loc["Helsinki West", "view"] == "yoy.html#place-helsinki-west"
    assert "id='place-helsinki-west'" in (tmp_path / "yoy.html").read_text()
    # a published table with PeopleForBikes' column names
    pub = tmp_path / "city-ratings.csv"
    pd.DataFrame({"city": df["place"], "census_population": df["population"],
                  "bna_overall_score": df["bna_overall_score"] - 12}).to_csv(pub, index=False)
    p = _pna(["campaign", "compare", "cli-demo", str(pub), "-o", str(tmp_path / "pub.csv")])
    assert p.returncode == 0, p.stderr
    assert pd.read_csv(tmp_path / "pub.csv")["flagged"].sum() == 6
    items = json.loads(_pna(["campaign", "list", "--json"]).stdout)
    assert {"cli-demo", "demo-campaign", "demo-campaign-changed"} <= {i["name"] for i in items}
    # user errors: one line, exit 2
    for args in (["campaign", "status", "nope"], ["campaign", "submit", "--demo", "--name",
                                                  "cli-demo"],
                 ["campaign", "results", "cli-demo", "-o", str(tmp_path / "x.txt")]):
        p = _pna(args)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "pna: error:" in p.stderr


@pytest.mark.slow
def test_several_places_per_worker_process(tmp_path, monkeypatch) -> None:
    """places_per_worker=3: one supervisor imports the engine once and runs three queued jobs
    in forked children, each with its own log, status and outcome."""
    from pna_helpers import jobs
    from pna_helpers.jobs import AnalysisRequest

    pytest.importorskip("pyrosm")
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path / "out"))
    demo = jobs.demo_request()
    nowhere = tmp_path / "nowhere.geojson"
    nowhere.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
            [0.0, 0.0], [0.001, 0.0], [0.001, 0.001], [0.0, 0.001], [0.0, 0.0]]]}}]}))
    bad = AnalysisRequest(place="Nowhere", boundary=str(nowhere), osm=demo.osm,
                          country="Finland", offline=True)
    client = jobs.get_client("local", concurrency=1, places_per_worker=3)
    subs = client.submit_many([bad, demo, bad])
    done = client.wait([j.job_id for j in subs], timeout=300, progress=False)
    assert [j.status for j in done] == ["FAILED", "SUCCEEDED", "FAILED"]
    assert len({j.extra["pid"] for j in done}) == 1, "one worker process ran all three"
    assert all("forked worker" in client.logs(j.job_id) for j in done)
    assert "error" in client.logs(done[0].job_id) and done[0].reason
    from pna_helpers.results import load_results

    assert load_results(done[1].job_id).scores()["overall_score"] > 0
    with pytest.raises(Exception, match="failed|not succeeded|status"):
        load_results(done[0].job_id)


@pytest.mark.slow
def test_cancel_acts_on_one_campaign(tmp_path, monkeypatch) -> None:
    from pna_helpers import jobs

    pytest.importorskip("pyrosm")
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path / "out"))
    client = jobs.get_client("local", concurrency=1)
    demo = jobs.demo_request()
    other = client.submit(demo)  # not part of the campaign
    reqs = []
    for i in range(2):
        d = demo.to_dict()
        d["place"] = f"Demo {i}"
        reqs.append(jobs.AnalysisRequest.from_dict(d, check_files=False))
    camp = campaigns.create("to-cancel", reqs, client)
    assert camp.cancel() == 2
    st = camp.status()
    assert st.counts["FAILED"] == 2 and st.done == 2
    assert [g["reason"] for g in st.failures] == ["cancelled: campaign to-cancel cancelled"]
    assert client.get(other.job_id).status in ("STARTING", "RUNNING", "SUCCEEDED")
    assert camp.cancel() == 0
    if client.get(other.job_id).active:
        client.cancel([other.job_id])
