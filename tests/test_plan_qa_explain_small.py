"""Fast checks of pna plan / pna qa / pna explain rules that need no engine run: the plan's
chart axis and closed figures, the verify tolerance, qa --json --top, explain's table rounding,
its cached scores and its report path, nextyear.run's keywords.

The engine (or the whole analysis) is replaced only where the rule under test does not
depend on it; the slow end-to-end versions are in test_plan_qa.py and test_explain.py.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pna_engine.errors import InputError
from pna_helpers import cli, explain, nextyear, plan, qa


def _plan(params=None) -> plan.Plan:
    steps = pd.DataFrame({
        "step": [1, 2], "osm_ids": [[11], [12, 13]], "name": ["Main <st>", None],
        "functional_class": ["secondary", "residential"],
        "treatment": ["protected bike lane", "speed limit 20 mph"],
        "length_km": [0.5, 0.25], "cost": [500_000.0, 7_500.0], "gain": [1.5, 0.25],
        "low_stress_pairs_gained": [10, 3], "score": [41.5, 41.75],
        "edits": [{11: {"cycleway": "track"}}, {12: {"maxspeed": "20 mph"}}]})
    steps["cumulative_km"] = steps["length_km"].cumsum()
    steps["cumulative_cost"] = steps["cost"].cumsum()
    return plan.Plan(results="somewhere", target="overall", baseline_score=40.0, table=steps,
                     budget={"km": 1.0}, evaluated=5, skipped=[], seconds=0.1, params=params)


# --------------------------------------------------------------------------- plan
def test_plan_chart_axis_is_checked_and_the_report_leaves_no_figure_open():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = _plan()
    with pytest.raises(InputError) as ei:
        p.chart(by="miles")
    assert str(ei.value) == "plan chart: by='miles' is not an axis; use one of 'cost', 'km'"
    fig = p.chart(by="km")
    assert fig.axes[0].get_xlabel() == "km treated"
    plt.close(fig)
    before = set(plt.get_fignums())
    html = p.report_section()
    assert "data:image/png;base64," in html and "Main &lt;st&gt;" in html
    assert set(plt.get_fignums()) == before  # the chart drawn into the page is closed


@dataclasses.dataclass
class _Params:
    output: str = ""
    way_tag_edits: dict = dataclasses.field(default_factory=dict)
    workers: int = 1


@pytest.mark.parametrize("full,match", [(41.75, True), (41.75004, True), (41.74996, True),
                                        (41.75006, False), (41.7, False)])
def test_plan_verify_matches_within_half_of_the_4th_decimal(monkeypatch, full, match):
    from pna_engine import pipeline

    seen = {}

    def fake_run(params, stop_after=None):  # the full run's score, as the engine reports it
        seen.update(edits=params.way_tag_edits, stop_after=stop_after)
        return SimpleNamespace(scores=SimpleNamespace(overall_score=full))

    monkeypatch.setattr(pipeline, "run", fake_run)
    check = _plan(params=_Params()).verify()
    assert seen == {"edits": {11: {"cycleway": "track"}, 12: {"maxspeed": "20 mph"}},
                    "stop_after": "scores"}
    assert check["match"] is match and check["plan"] == 41.75 and check["full_run"] == full
    assert check["difference"] == pytest.approx(full - 41.75)
    assert check["tolerance"] == plan.VERIFY_TOLERANCE == 0.00005


# --------------------------------------------------------------------------- qa
def _qa(n: int) -> qa.QA:
    t = pd.DataFrame({"osm_id": range(100, 100 + n), "name": [f"way {i}" for i in range(n)],
                      "tag": ["maxspeed"] * n, "default_used": ["30 mph"] * n,
                      "score_range": np.linspace(2.0, 0.1, n), "note": [None] * n})
    t["url"] = "https://www.openstreetmap.org/way/" + t["osm_id"].astype(str)
    summary = {"segments_on_defaults_share": 0.5, "mileage_on_defaults_share": 0.25}
    return qa.QA(results="r", baseline_score=40.0, table=t, summary=summary, evaluated=n,
                 seconds=0.5)


def test_qa_json_honours_top_and_has_every_row_without_it(monkeypatch, capsys):
    monkeypatch.setattr(qa, "osm_qa", lambda *a, **k: _qa(30))
    assert cli.main(["qa", "r", "--json", "--top", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)["tags_to_check"]
    assert [r["osm_id"] for r in rows] == [100, 101, 102]
    assert cli.main(["qa", "r", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tags_to_check"]) == 30
    assert cli.main(["qa", "r", "--json", "--top", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["tags_to_check"] == []
    assert cli.main(["qa", "r"]) == 0  # the printed list: 20 rows by default
    assert capsys.readouterr().out.count("openstreetmap.org/way/") == qa.TOP_PRINTED
    assert cli.main(["qa", "r", "--top", "4"]) == 0
    assert capsys.readouterr().out.count("openstreetmap.org/way/") == 4
    assert cli.main(["qa", "r", "--top", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pna: error: --top must be 0 or more rows, got -1") and "\n" not in err


def test_qa_headline_says_what_moves_the_score_or_that_nothing_does(capsys):
    q = _qa(4)  # ranges 2.0, 1.37, 0.73, 0.1: all move the score
    assert q.headline == ("4 of the 4 missing tags tried move the overall score (40.00); the "
                          "largest, maxspeed on way 0, by up to 2.00 points.")
    q.table["score_range"] = [0.0, 0.004, np.nan, 0.0]  # 0.004 shows as 0.00: does not move
    assert q.headline.startswith("None of the 3 missing tags tried moves the overall score "
                                 "(40.00)") and "ordered by length" in q.headline
    q.table["score_range"] = np.nan
    assert q.headline == "No missing tag could be re-scored: nothing to rank."
    q.table["score_range"] = [0.0, 0.5, 0.0, 0.0]
    q.table.loc[1, "name"] = None
    assert "1 of the 4" in q.headline and "maxspeed on way 101, by up to 0.50" in q.headline
    assert q.to_dict()["headline"] == q.headline


# --------------------------------------------------------------------------- explain
def _explanation() -> explain.Explanation:
    ids = list(explain.MAIN_SCORES)
    contrib = pd.DataFrame({sid: [0.123456, -0.0004449] for sid in ids},
                           index=["network", "population"])
    scores = pd.DataFrame({"a": 40.0, "b": 40.123, "change": 0.1230111}, index=ids)
    return explain.Explanation(a=SimpleNamespace(name="A"), b=SimpleNamespace(name="B"),
                               scores=scores, contributions=contrib)


def test_explanation_table_is_rounded_the_same_with_or_without_a_score():
    ex = _explanation()
    whole, one = ex.table(), ex.table("overall_score")
    assert list(one.columns) == ["Overall"]
    assert one["Overall"].tolist() == [0.123, -0.0, 0.123]
    assert one["Overall"].tolist() == whole["Overall"].tolist()


def test_run_scores_hands_out_a_copy_of_the_cached_scores(monkeypatch):
    p = {"place": "cached", "boundary": None, "city_speed_limit": 30}
    monkeypatch.setitem(explain._RUNS, explain._run_key(p), np.array([40.0, 1.0]))
    got = explain.run_scores(p)
    got[0] = -1.0  # a caller changing its array ...
    assert explain.run_scores(p)[0] == 40.0  # ... does not change what the cache answers


def test_explain_cli_prints_the_report_path_once(monkeypatch, capsys, tmp_path):
    out = tmp_path / "why.html"
    ex = _explanation()
    monkeypatch.setattr(explain, "explain", lambda *a, **k: ex)
    monkeypatch.setattr(explain.Explanation, "report",
                        lambda self, path: (out.write_text("<html>"), out)[1])
    monkeypatch.setattr(explain.Explanation, "summary", lambda self, score="": "summary")
    assert cli.main(["explain", "A", "B", "-o", str(out)]) == 0
    o, e = capsys.readouterr()
    assert (o + e).count("report:") == 1 and o.rstrip().endswith(f"report: {out}")
    monkeypatch.setattr(explain.Explanation, "to_dict", lambda self: {"total_change": 0.1})
    assert cli.main(["explain", "A", "B", "-o", str(out), "--json"]) == 0
    o, e = capsys.readouterr()
    assert json.loads(o) == {"total_change": 0.1}  # stdout: the JSON alone
    assert e.count("report:") == 1 and f"report: {out}" in e


def test_nextyear_run_takes_workers_and_offline_from_its_caller(monkeypatch, tmp_path):
    from pna_engine import pipeline

    runs = []
    monkeypatch.setattr(pipeline, "run", lambda params: runs.append(params))
    b = tmp_path / "b.geojson"
    b.write_text('{"type": "FeatureCollection", "features": []}')
    inputs = {"place": "P", "boundary": str(b), "country": "Finland", "workers": 3,
              "offline": False, "output": "ignored", "not_a_param": 1}
    assert nextyear.run(inputs, tmp_path / "out", workers=2) == tmp_path / "out"
    assert nextyear.run({"place": "P", "boundary": str(b)}, tmp_path / "o2") == tmp_path / "o2"
    first, second = runs
    assert (first.workers, first.offline, first.output) == (2, False, str(tmp_path / "out"))
    assert (second.workers, second.offline) == (1, True)


def test_standalone_pages_escape_their_title_and_keep_their_body():
    from pna_helpers import _html

    doc = _html.page('<img src=x onerror=alert(1)> & "Köln"', "<p>safe body</p>", style="p{}")
    assert doc.startswith("<!doctype html>") and "<meta charset='utf-8'>" in doc
    assert "<title>&lt;img src=x onerror=alert(1)&gt; &amp; &quot;Köln&quot;</title>" in doc
    assert "<body><p>safe body</p></body>" in doc and _html.PAGE_STYLE + "p{}" in doc
