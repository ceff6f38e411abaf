"""Tables for reading (pna_helpers.display): human column names with units, sensible rounding,
every row shown, outside text escaped, and never typeset as LaTeX maths by a notebook."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pna_helpers import _html as esc
from pna_helpers import display
from pna_helpers.explain import Explanation


def _cells(styler) -> list[list[str]]:
    """The table's body cells as displayed text (tags stripped, entities kept)."""
    html = styler.to_html()
    body = html.split("<tbody>")[1]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _headers(styler) -> list[str]:
    head = styler.to_html().split("<tbody>")[0]
    return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]


@pytest.fixture(scope="module")
def demo():
    pytest.importorskip("pyrosm")
    from pna_helpers.results import demo_results

    return demo_results()


@pytest.fixture(scope="module")
def demo_plan(demo):
    from pna_helpers import plan

    return plan.make_plan(demo, budget_km=1.0)


def test_plan_table_reads_step_by_step(demo_plan) -> None:
    p, t = demo_plan, demo_plan.table
    assert len(t) >= 2
    s = display.plan(p)
    assert _headers(s) == [
        "Step", "OSM ways", "Street", "Road class", "Treatment", "Length (km)", "Cost",
        "Score gain (points)", "Pairs newly connected on low stress",
        "Overall score after (0-100)", "Length so far (km)", "Cost so far"]
    rows = _cells(s)
    assert len(rows) == len(t)  # every step, nothing truncated
    for r, (_, step) in zip(rows, t.iterrows()):
        assert r[0] == str(step["step"])
        assert r[1] == ", ".join(str(i) for i in step["osm_ids"])
        assert r[5] == f"{step['length_km']:.3f}"
        assert r[6] == f"${step['cost']:,.0f}"
        assert r[7] == f"{step['gain']:+.2f}"
        assert r[9] == f"{step['score']:.2f}"
        assert r[11] == f"${step['cumulative_cost']:,.0f}"
    assert float(rows[-1][9]) == pytest.approx(p.final_score, abs=0.005)
    # costs in another currency; a currency symbol is text, not HTML
    assert _cells(display.plan(p, currency="€"))[0][6].startswith("€")
    assert "&lt;b&gt;" in display.plan(p, currency="<b>").to_html()


def test_tables_are_never_typeset_as_maths(demo_plan) -> None:
    """Two costs in one table ("$14,102 ... $9,180") would be a LaTeX formula in JupyterLab:
    the table carries the classes MathJax 2 and 3 skip."""
    html = display.plan(demo_plan).to_html()
    assert html.count("$") >= 2
    table = re.search(r"<table[^>]*>", html).group(0)
    assert "mathjax_ignore" in table and "tex2jax_ignore" in table
    assert esc.NO_MATH_CLASS in esc.no_math("costs $1 and $2")
    assert esc.dollar("12.30") == '<span class="pna-dollar">$</span>12.30'


def test_osm_qa_table_ranks_with_links_and_units(demo) -> None:
    from pna_helpers import qa

    q = qa.osm_qa(demo)
    t = q.table
    s = display.osm_qa(q, top=10)
    assert _headers(s) == [
        "Rank", "OSM way", "Street", "Road class", "Missing tag", "Default used",
        "Values tried", "Overall score with each value (0-100)", "Score range (points)",
        "Segments", "Length (m)", "Note"]
    rows = _cells(s)
    assert [r[0] for r in rows] == [str(i) for i in range(1, 11)]
    html = s.to_html()
    links = re.findall(r'href="https://www\.openstreetmap\.org/way/(\d+)"', html)
    assert links == [str(i) for i in t["osm_id"].head(10)]
    for r, (_, row) in zip(rows, t.head(10).iterrows()):
        assert r[4] == row["tag"] and r[6] == ", ".join(row["alternatives"])
        assert r[7] == ", ".join(f"{v:.2f}" for v in row["scores"])
        assert r[8] == f"{row['score_range']:.2f}"
        assert r[10] == f"{row['length_km'] * 1000:,.0f}"
    assert len(_cells(display.osm_qa(q, top=None))) == len(t)  # all rows when asked


def _explanation() -> Explanation:
    sids = ["overall_score", "people"]
    contrib = pd.DataFrame({"overall_score": [3.5719, -0.0012, 0.0], "people": [2.81, 0.18, 0.0]},
                           index=["network", "destinations", "methodology"])
    scores = pd.DataFrame({"a": [85.89, 50.0], "b": [89.4607, 52.99]}, index=sids)
    scores["change"] = scores["b"] - scores["a"]
    ex = Explanation(a=None, b=None, scores=scores, contributions=contrib)
    ex.top_ways = pd.DataFrame({
        "osm_id": [166171129], "name": ["Kaivokatu"], "cause": ["bike infrastructure"],
        "tag_diff": ["+cycleway=track"], "segments": [1], "length_m": [9.2],
        "overall_points": [3.0249]})
    ex.destinations = pd.DataFrame({"category": ["dentists", "parks"], "a": [1, 2], "b": [0, 2],
                                    "added": [0, 0], "removed": [1, 0]})
    ex.segments = pd.DataFrame({
        "osm_id": [90000000002.0, 76028714.0], "name": ["Uusi <b>pyörätie</b> & co", None],
        "functional_class": ["path", "residential"], "cause": ["new way", "removed way"],
        "stress_a": ["-", "ft 1/1, tf -/1"], "stress_b": ["ft 1/1, tf 1/1", "-"],
        "low_a": [False, True], "low_b": [True, False], "length_m": [34.51, 46.66],
        "tag_diff": ["new: highway=cycleway", "removed"]})
    return ex


def test_contributions_two_decimals_and_total_last() -> None:
    s = display.contributions(_explanation())
    assert _headers(s) == ["Contribution", "Overall (points)", "People (points)"]
    rows = _cells(s)
    assert rows[0] == ["Network (OSM ways and tags)", "+3.57", "+2.81"]
    assert rows[1] == ["Destinations", "0.00", "+0.18"]  # -0.0012 rounds to 0.00, not -0.00
    assert rows[-1] == ["Total change", "+3.57", "+2.99"]
    assert all(re.fullmatch(r"[+-]?\d+\.\d\d", v) for r in rows for v in r[1:])


def test_explain_details_titles_units_and_escaping() -> None:
    parts = dict(display.explain_details(_explanation()))
    assert list(parts) == ["Ways by their own contribution (leave-one-out; 1 re-scored)",
                           "Destinations added and removed", "Segments whose stress changed (2)"]
    ways = _cells(parts["Ways by their own contribution (leave-one-out; 1 re-scored)"])
    assert ways == [["166171129", "Kaivokatu", "bike infrastructure", "+cycleway=track", "1", "9",
                     "+3.02"]]
    dest = _cells(parts["Destinations added and removed"])
    assert dest == [["dentists", "1", "0", "0", "1"]]  # only kinds that changed
    seg = parts["Segments whose stress changed (2)"]
    html = seg.to_html()
    assert "Uusi &lt;b&gt;pyörätie&lt;/b&gt; &amp; co" in html and "<b>pyörätie" not in html
    assert _cells(seg)[1][:2] == ["76028714", ""]
    assert "openstreetmap.org/way/76028714" in html
    # a way an edit added is not on openstreetmap.org: no link to a page that does not exist
    assert _cells(seg)[0][0] == "90000000002 (new)" and "way/90000000002" not in html
    assert np.isclose(float(_cells(seg)[0][6]), 34.5)


def _campaign_table() -> pd.DataFrame:
    return pd.DataFrame({
        "place": ["Low", "High", "Broken <i>"], "status": ["SUCCEEDED", "SUCCEEDED", "FAILED"],
        "bna_overall_score": [81.004, 100.0, np.nan], "bna_people": [90.37, 100.0, np.nan],
        "bna_opportunity": [np.nan, 100.0, np.nan], "bna_core_services": [75.8, 99.26, np.nan],
        "bna_retail": [93.91, 0.0, np.nan], "bna_recreation": [55.83, 100.0, np.nan],
        "bna_transit": [90.83, 0.0, np.nan], "population": [480.0, 1860.0, np.nan],
        "rank": pd.array([2, 1, pd.NA], dtype="Int64")})


def test_campaign_ranking_best_first_with_units() -> None:
    s = display.campaign_ranking(_campaign_table())
    assert _headers(s) == ["Rank", "Place", "Overall (0-100)", "People (0-100)",
                           "Opportunity (0-100)", "Core services (0-100)", "Retail (0-100)",
                           "Recreation (0-100)", "Transit (0-100)", "Population", "Status"]
    rows = _cells(s)
    assert [r[:3] for r in rows] == [["1", "High", "100.00"], ["2", "Low", "81.00"],
                                     ["", "Broken &lt;i&gt;", "n/a"]]
    assert rows[1][4] == "n/a" and rows[0][9] == "1,860" and rows[2][10] == "FAILED"


def test_campaign_failures_whole_log_and_places() -> None:
    from types import SimpleNamespace

    log = "line one\n" + "x" * 300 + "\nlast line with $HOME and $PATH"
    st = SimpleNamespace(failures=[{"reason": "no census block", "count": 2,
                                    "places": ["A", "B <b>"], "log_excerpt": log}])
    s = display.campaign_failures(st)
    html = s.to_html()
    assert _cells(s) == [["no census block", "2", "A, B &lt;b&gt;", log]]
    assert "x" * 300 in html and "..." not in html  # nothing truncated
    assert re.search(r"td\.col3 \{[^}]*pre-wrap", html) and "mathjax_ignore" in html  # log lines kept


def test_campaign_dashboard_costs_stay_text() -> None:
    """Two dollar amounts in one paragraph of the dashboard: each "$" in its own element,
    inside a block MathJax skips; tiny costs keep their digits (not "$0.0000")."""
    from pna_helpers.campaigns import CampaignStatus, money, status_html

    st = CampaignStatus(name="c $x$", backend="local", places=2,
                        counts={"SUCCEEDED": 2, "FAILED": 0}, done=2, succeeded=2,
                        vcpu_hours=0.0095, cost=0.00019, price_per_vcpu_hour=0.02,
                        estimate={"total_seconds": 3, "cost": 0.00004})
    html = status_html(st)
    assert esc.NO_MATH_CLASS in html.split(">")[0]
    text = re.sub(r"<[^>]+>", "", html)
    assert "$0.00019 at $0.02/vCPU-h" in text and "$0.000040" in text
    assert not re.search(r"\$[\d.]+[^<]*\$", re.sub(r'<span class="pna-dollar">\$</span>', "",
                                                      html))  # no "$...$" left in one text
    assert [money(v) for v in (0, 0.00004, 0.5, 12.3456)] == ["0.00", "0.000040", "0.50",
                                                              "12.35"]


def test_a_kind_no_block_reaches_is_na_not_zero(tmp_path) -> None:
    """An official export has no destination counts: trails (no path long enough to be one)
    and jobs (no jobs data) read n/a, not 0, when no block reaches any even on the whole
    network; a kind that some block reaches keeps its score, even 0."""
    import geopandas as gpd
    from resultsfactory import write_export

    from pna_helpers.results import load_results

    folder = write_export(tmp_path / "place")
    path = folder / "neighborhood_census_blocks.geojson"
    blocks = gpd.read_file(path)
    blocks["trails_high_stress"] = 0
    blocks["emp_high_stress"] = 0
    blocks["parks_high_stress"] = [0, 2, 0, 1]
    blocks.to_file(path, driver="GeoJSON")
    res = load_results(folder)  # trails, employment: 0.00 in the score file
    na = display.not_applicable(res)
    assert {"recreation_trails", "opportunity_employment"} <= na
    assert "recreation_parks" not in na and "recreation" not in na
    shown = {r[1]: r[2] for r in _cells(display.all_scores(res))}
    assert shown["Trails"] == "n/a" and shown["Employment"] == "n/a"
    assert shown["Parks"] == "90.38"
    # every opportunity sub-score is n/a (no schools file, no colleges ...): so is opportunity
    assert "opportunity" in na and shown["Opportunity"] == "n/a"


def test_compare_table_reads_with_units_and_na(tmp_path) -> None:
    """Two places side by side: n/a (not 0) where a kind does not exist in a place, signed
    changes in points, population and centreline miles in their own units (the score file's
    total_miles_* count each direction), no raw score ids, the units in the caption."""
    import geopandas as gpd
    from resultsfactory import write_export

    from pna_helpers import compare
    from pna_helpers.results import load_results

    a = write_export(tmp_path / "a")
    b = write_export(tmp_path / "b", score_shift=-0.1)
    (b / "neighborhood_parks.geojson").unlink()  # no park in B: parks n/a there
    blocks = gpd.read_file(b / "neighborhood_census_blocks.geojson")
    blocks["trails_high_stress"] = 0
    blocks.to_file(b / "neighborhood_census_blocks.geojson", driver="GeoJSON")
    ra, rb = load_results(a, name="A <b>"), load_results(b, name="B")
    table = compare.scores_table([ra, rb], all_scores=True)
    assert pd.isna(table.loc["Parks", "B"]) and table.loc["Parks", "A <b>"] == pytest.approx(90.38)
    assert pd.isna(table.loc["Parks", "difference"])
    assert not any("_" in str(i) for i in table.index)  # no population_total, total_miles_*
    miles = ra.mileage_by_stress().groupby("stress")["miles"].sum()
    assert table.loc["Low-stress roads (centreline mi)", "A <b>"] == pytest.approx(miles["low"],
                                                                                  abs=0.01)
    styler = display.compare_scores(table)
    assert _headers(styler)[:4] == ["Score", "A &lt;b&gt;", "B", "Change"]
    shown = {r[0]: r[1:] for r in _cells(styler)}
    assert shown["Overall"] == ["85.89", "75.89", "-10.00"]
    assert shown["Parks"] == ["90.38", "n/a", "n/a"]
    assert shown["Trails"][1] == "n/a"
    assert shown["Population (people)"] == ["230", "230", "+0"]
    assert shown["Low-stress roads (centreline mi)"][0] == f"{miles['low']:.1f}"
    caption = re.search(r"<caption>(.*?)</caption>", styler.to_html(), re.S).group(1)
    assert "0-100" in caption and "points" in caption and "centreline miles" in caption
