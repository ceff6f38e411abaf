"""Scoring rules (BNA-METHOD.md §10, §11, §14.7, §14.8) with expected numbers from the spec."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from pna_engine import scores
from pna_engine.connectivity import NULL_COST, Connectivity, _trail_segments
from pna_engine.params import Params, Quirks
from pna_engine.scores import (
    CATEGORIES,
    block_overall,
    category_score,
    destination_score,
    numeric4,
    ratio_score,
)


# --------------------------------------------------------------------------- curves
def test_people_curve_breakpoints_and_worked_example():
    high = np.array([40000, 100, 100, 100, 100, 100, 100, 0, np.nan, 100])
    low = np.array([5000, 50, 20, 3, 0, 100, 75, 0, 5, np.nan])
    got = ratio_score(high, low)
    r = 5000 / 40000
    assert got[0] == pytest.approx(0.1 + 0.3 * (r - 0.03) / 0.17)  # §14.7: 0.26765
    assert got[0] == pytest.approx(0.26765, abs=1e-5)
    assert got[1:7].tolist() == [0.8, 0.4, 0.1, 0.0, 1.0, pytest.approx(0.8 + 0.2 * 0.25 / 0.5)]
    assert np.isnan(got[7]) and np.isnan(got[8]) and np.isnan(got[9])
    assert ratio_score([100], [1])[0] == pytest.approx(0.1 * 0.01 / 0.03)
    assert ratio_score([100], [35])[0] == pytest.approx(0.4 + 0.4 * 0.15 / 0.3)


def test_destination_breakpoints_14_8():
    cc = CATEGORIES["community_centers"]
    got = destination_score([6, 6, 6, 6], [1, 3, 4, 6], *cc)
    assert got.tolist() == pytest.approx([0.4, 0.7, 0.7 + 0.3 * 1 / 3, 1.0])
    assert destination_score([5], [2], *CATEGORIES["transit"])[0] == pytest.approx(0.7)
    assert destination_score([4], [3], *CATEGORIES["supermarkets"])[0] == pytest.approx(0.9)
    assert destination_score([4], [2], *CATEGORIES["supermarkets"])[0] == pytest.approx(0.8)
    # parks/schools: 0.3, 0.5, 0.7 then linear
    parks = CATEGORIES["parks"]
    assert destination_score([9, 9, 9, 9], [1, 2, 3, 6], *parks).tolist() == pytest.approx(
        [0.3, 0.5, 0.7, 0.7 + 0.3 * 3 / 6]
    )
    # trails (0.7, 0.2, 0): 0.7, 0.9, then 0.9 + 0.1 (L-2)/(H-2)
    assert destination_score([5, 5, 5], [1, 2, 3], *CATEGORIES["trails"]).tolist() == (
        pytest.approx([0.7, 0.9, 0.9 + 0.1 / 3])
    )
    # high 0 or NULL -> NULL; low 0 -> 0; first = 0 -> plain ratio
    out = destination_score([0, np.nan, 3], [0, 1, 0], 0.4, 0.2, 0.1)
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 0
    assert destination_score([4], [1], 0.0, 0.0, 0.0)[0] == 0.25


def test_curves_are_bit_identical_to_the_reference_sql():
    """The reference pastes the parameters into its SQL as NUMERIC literals: their sums and
    differences are exact decimals, and each segment divides before it multiplies. Written
    as float expressions the results differ in the last digit (e.g. 0.4 + 0.2 + 0.1 =
    0.7000000000000001), which shows in the exported block scores."""
    one = Decimal(1)

    def f(d: Decimal) -> float:
        return float(d)

    # access_population.sql, one value per segment of the curve (r = low / high)
    def pop_sql(high: int, low: int) -> float:
        r = low / high
        if r > 0.5:
            return 0.8 + f(one - Decimal("0.8")) * ((r - 0.5) / f(one - Decimal("0.5")))
        if r > 0.2:
            return 0.4 + f(Decimal("0.8") - Decimal("0.4")) * (
                (r - 0.2) / f(Decimal("0.5") - Decimal("0.2"))
            )
        if r > 0.03:
            return 0.1 + f(Decimal("0.4") - Decimal("0.1")) * (
                (r - 0.03) / f(Decimal("0.2") - Decimal("0.03"))
            )
        return 0.1 * (r / 0.03)

    cases = [(100, 1), (100, 4), (100, 23), (1518, 1200), (700, 480), (1000, 999)]
    got = ratio_score([h for h, _ in cases], [lo for _, lo in cases])
    assert got.tolist() == [pop_sql(h, lo) for h, lo in cases]  # exact, not approx
    # the written-out float formula of the spec table differs in the last digit here
    assert got[0] != 0.1 * (1 / 100) / 0.03 and got[2] != 0.4 + 0.4 * (0.23 - 0.2) / 0.3

    # access_<category>.sql: L = 3 of 6 community centres is exactly 0.7 (0.4 + 0.2 + 0.1
    # in NUMERIC), L = 4 is 0.7 + (0.3 * 1) / 3 with 0.3 = 1 - 0.4 - 0.2 - 0.1 exact
    cc = CATEGORIES["community_centers"]
    got = destination_score([6, 6], [3, 4], *cc)
    assert got.tolist() == [0.7, 0.7 + (0.3 * 1.0) / 3.0]
    assert 0.4 + 0.2 + 0.1 != 0.7  # why it matters
    # second = 0 (transit): 0.6 + ((1 - 0.6) * (L - 1)) / (H - 1) with 1 - 0.6 = 0.4 exact
    assert destination_score([7], [3], *CATEGORIES["transit"])[0] == 0.6 + (0.4 * 2.0) / 6.0
    # third = 0 (supermarkets): 0.6 + 0.2 = 0.8 exact, remainder 1 - 0.6 - 0.2 = 0.2 exact
    assert destination_score([5, 5], [2, 3], *CATEGORIES["supermarkets"]).tolist() == [
        0.8,
        0.8 + (0.2 * 1.0) / 3.0,
    ]


def test_block_overall_divides_by_the_exact_sum_of_present_weights():
    # access_overall.sql: the opportunity denominator 0.35 + 0.35 + 0.1 is a NUMERIC sum,
    # 0.8, whereas the float sum is 0.7999999999999999
    assert 0.35 + 0.35 + 0.1 != 0.8
    c = _cols(
        pop_score=0.5,
        schools_high_stress=2, schools_score=0.7,
        colleges_high_stress=1, colleges_score=0.7,
        doctors_high_stress=1, doctors_score=0.0,
        pharmacies_high_stress=1, pharmacies_score=1.0,
        supermarkets_high_stress=1, supermarkets_score=0.6,
    )  # fmt: skip
    opp = (0.35 * 0.0 + 0.35 * 0.7 + 0.1 * 0.7 + 0.2 * 0.0) / 0.8
    core = (0.2 * 0.0 + 0.1 * 0.0 + 0.2 * 0.0 + 0.1 * 1.0 + 0.25 * 0.6 + 0.15 * 0.0) / 0.55
    expected = 100 * (15 * 0.5 + 20 * opp + 20 * core + 15 * 0.0 + 15 * 0.0 + 15 * 0.0) / 55
    assert block_overall(c)[0] == expected  # exact


def _cols(**kw) -> dict[str, np.ndarray]:
    cols = {}
    for x in ["pop", "emp", *CATEGORIES]:
        for suffix in ("low_stress", "high_stress", "score"):
            cols[f"{x}_{suffix}"] = np.array([np.nan])
    for k, v in kw.items():
        cols[k] = np.array([v], dtype=float)
    return cols


def _example_14_7(emp_score=np.nan):
    return _cols(
        pop_score=0.26765,
        emp_score=emp_score,
        schools_high_stress=3,
        schools_score=0.3,
        supermarkets_high_stress=2,
        supermarkets_score=1.0,
        parks_high_stress=4,
        parks_score=0.5,
        retail_high_stress=5,
        retail_score=0.0,
        transit_high_stress=0,
    )


def test_block_overall_worked_example_14_7_and_b7():
    opp = (0.35 * 0 + 0.35 * 0.3) / (0.35 + 0.35)
    expected = 100 * (15 * 0.26765 + 20 * opp + 20 * 1 + 15 * 0 + 15 * 0.5) / (15 + 20 + 20 + 15 + 15)
    assert expected == pytest.approx(40.6056, abs=1e-4)
    assert block_overall(_example_14_7())[0] == pytest.approx(expected)
    # B7 switched off: the employment weight leaves the denominator when no jobs are reached
    opp_fixed = 0.35 * 0.3 / 0.35
    fixed = 100 * (15 * 0.26765 + 20 * opp_fixed + 20 + 15 * 0.5) / 85
    assert block_overall(_example_14_7(), keep_job_weight=False)[0] == pytest.approx(fixed)


def test_reweighting_when_categories_are_absent():
    # only people: the overall score is the people score
    assert block_overall(_cols(pop_score=0.6))[0] == pytest.approx(60.0)
    # employment access alone does not make opportunity present
    c = _cols(pop_score=0.6, emp_high_stress=100, emp_score=1.0)
    assert block_overall(c)[0] == pytest.approx(60.0)
    # transit present with score 0 pulls the score down: 100 * 15*0.6 / 30
    c = _cols(pop_score=0.6, transit_high_stress=2, transit_score=0.0)
    assert block_overall(c)[0] == pytest.approx(30.0)


def test_block_category_scores_drop_null_subscores():
    c = _example_14_7()
    # opportunity: only schools is not NULL -> 0.3 (employment drops out, unlike §10.5)
    assert category_score(c, scores.OPPORTUNITY_WEIGHTS)[0] == pytest.approx(0.3)
    assert category_score(c, scores.CORE_WEIGHTS)[0] == pytest.approx(1.0)
    assert np.isnan(category_score(_cols(), scores.RECREATION_WEIGHTS)[0])


def test_percentiles_use_postgresql_percentile_cont_arithmetic():
    # PERCENTILE_CONT(q): position q * (n - 1), then lo + frac * (hi - lo), NULLs ignored
    # (numpy's "linear" method computes the position and the interpolation otherwise)
    v = np.array([0.2, np.nan, 0.1])
    pos = 0.7 * (2 - 1)
    assert scores._percentile(v, 0.7) == 0.1 + (pos - 0) * (0.2 - 0.1)
    assert scores._percentile(v, 0.5) == 0.1 + 0.5 * (0.2 - 0.1)
    assert scores._percentile(np.array([0.4, 0.1, 0.3]), 0.5) == 0.3  # on a row: no lerp
    assert scores._percentile(np.array([np.nan]), 0.5) is None


def test_block_category_score_divides_by_the_exact_weight_sum():
    # category_scores.sql: the divisor is a NUMERIC sum of CASE weights: 0.35 + 0.1 = 0.45,
    # where the float sum would be 0.44999999999999996
    assert 0.35 + 0.1 != 0.45
    c = _cols(schools_score=0.3, colleges_score=0.7)
    got = category_score(c, scores.OPPORTUNITY_WEIGHTS)[0]
    assert got == (0.3 * 0.35 + 0.7 * 0.1) / 0.45  # exact


def test_numeric_16_4_rounds_half_away_from_zero():
    assert numeric4(0.00005) == Decimal("0.0001")
    assert numeric4(0.12345) == Decimal("0.1235")  # 15 significant digits first
    assert numeric4(-0.00005) == Decimal("-0.0001")
    assert numeric4(None) is None and numeric4(float("nan")) is None


def test_trail_thresholds_are_strict():
    ways = gpd.GeoDataFrame(
        {"road_id": [1, 2, 3, 4]}, geometry=[LineString([(i, 0), (i, 1)]) for i in range(4)]
    )
    paths = pd.DataFrame(
        {
            "path_id": [10, 11, 12, 13],
            "path_length": [4800.0, 4800.1, 6000.0, 6000.0],
            "bbox_length": [4000.0, 3300.1, 3300.0, 3500.0],
            "road_ids": [[1], [2], [3], [4]],
        }
    )
    seg_trail, trail_ids = _trail_segments(SimpleNamespace(paths=paths, ways=ways), 4)
    assert trail_ids.tolist() == [11, 13]
    assert seg_trail.tolist() == [-1, 0, -1, 1]


# --------------------------------------------------------------------------- whole phase
def _state(jobs: bool, quirks: Quirks | None = None) -> SimpleNamespace:
    """Three blocks A, B, C (pop 100, 200, 300) and hand-made pairs:

    A->A low, A->B low, A->C high only; B->B low, B->A low; C->C low.
    One school in block C.
    """
    blocks = gpd.GeoDataFrame(
        {"geoid20": ["A", "B", "C"], "pop20": [100, 200, 300]},
        geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10), box(20, 0, 30, 10)],
        crs=32635,
    )
    src = np.array([0, 0, 0, 1, 1, 2], dtype=np.int32)
    tgt = np.array([0, 1, 2, 1, 0, 2], dtype=np.int32)
    low = np.array([True, True, False, True, True, True])
    conn = Connectivity(
        source=src,
        target=tgt,
        low_stress=low,
        low_cost=np.where(low, 0, NULL_COST).astype(np.int32),
        high_cost=np.zeros(6, np.int32),
        reachable_blocks=np.bincount(src, minlength=3),
        n_blocks=3,
    )
    school = gpd.GeoDataFrame(
        {"id": [1], "blockid20": [["C"]]}, geometry=[Point(25, 5)], crs=32635
    )
    ways = gpd.GeoDataFrame(
        {
            "road_id": [1, 2],
            "ft_seg_stress": [1, 3],
            "tf_seg_stress": [1, None],
            "ft_bike_infra": ["lane", None],
            "tf_bike_infra": [None, None],
            "functional_class": ["residential", "path"],
            "xwalk": [None, None],
        },
        geometry=[LineString([(0, 5), (1609.34, 5)]), LineString([(0, 7), (30, 7)])],
        crs=32635,
    )
    return SimpleNamespace(
        params=Params(boundary="b", output="o", quirks=quirks or Quirks()),
        blocks=blocks,
        connectivity=conn,
        jobs=pd.DataFrame({"blockid20": ["A", "C"], "jobs": [10, 40]}) if jobs else None,
        destinations={"schools": school},
        boundary=gpd.GeoDataFrame(geometry=[box(-1, -1, 31, 11)], crs=32635),
        ways=ways,
        counts={},
    )


def test_compute_scores_on_hand_built_pairs():
    s = _state(jobs=True)
    out = scores.compute_scores(s)
    b = s.blocks.set_index("geoid20")
    assert b.pop_high_stress.tolist() == [600, 300, 300]
    assert b.pop_low_stress.tolist() == [300, 300, 300]
    assert b.pop_score.tolist() == pytest.approx([0.8, 1.0, 1.0])  # r = 0.5 -> 0.8
    # jobs: B has no jobs row -> 0 jobs; A reaches 10 + 0 + 40, low 10 + 0
    assert b.emp_high_stress.tolist() == [50, 10, 40]
    assert b.emp_low_stress.tolist() == [10, 10, 40]
    assert b.emp_score.tolist() == pytest.approx([0.4, 1.0, 1.0])  # r = 0.2 -> 0.4
    assert b.schools_high_stress.tolist() == [1, 0, 1]
    assert b.schools_low_stress.tolist() == [0, 0, 1]
    assert b.schools_score.iloc[0] == 0 and np.isnan(b.schools_score.iloc[1])
    opp_a = (0.35 * 0.4 + 0.35 * 0) / (0.35 + 0.35)
    over_a = 100 * (15 * 0.8 + 20 * opp_a) / 35
    assert b.overall_score.tolist() == pytest.approx([over_a, 100.0, 100.0])
    assert b.reachable_blocks.tolist() == [3, 2, 1]
    # population shed of the school: sources A and C (400) by any route, C (300) low stress
    sch = s.destinations["schools"]
    assert (sch.pop_high_stress.iloc[0], sch.pop_low_stress.iloc[0]) == (400, 300)
    assert sch.pop_score.iloc[0] == pytest.approx(0.75)
    # score inputs
    si = out.score_inputs.set_index("id")
    assert list(si.index) == list(range(1, 133))
    assert si.loc[5, "score"] == numeric4((100 * 0.8 + 200 + 300) / 600)
    assert si.loc[15, "score"] == numeric4(300 / 400)  # P_schools = 100 + 300
    assert si.loc[11, "score"] == Decimal("0.0000")  # B8: 1 // 2
    assert si.loc[16, "score"] == numeric4(0.75)
    r = np.array([300 / 600, 1.0, 1.0])  # per-block pop ratios low / high
    assert si.loc[1, "score"] == numeric4(np.percentile(r, 50))
    assert si.loc[3, "score"] == numeric4(np.percentile(r, 30))
    assert si.loc[4, "score"] == numeric4(900 / 1200)
    # overall scores
    ov = out.overall_scores.set_index("score_id")
    assert len(out.overall_scores) == 23
    city = (over_a / 100 * 100 + 200 + 300) / 600
    assert ov.loc["overall_score", "score_original"] == numeric4(city)
    assert ov.loc["overall_score", "score_normalized"] == numeric4(numeric4(city) * 100)
    assert ov.loc["population_total", "score_original"] == Decimal("600.0000")
    # opportunity: employment and k12 both available: (0.35 e + 0.35 k) / 0.7 of rounded rows
    e, k = ov.loc["opportunity_employment", "score_original"], ov.loc[
        "opportunity_k12_education", "score_original"
    ]
    assert ov.loc["opportunity", "score_original"] == numeric4(
        (Decimal("0.35") * e + Decimal("0.35") * k) / Decimal("0.7")
    )
    assert ov.loc["core_services", "score_original"] is None
    # miles: road 1 is low stress both ways (x2) for 1 mile, clipped to the boundary (31 m); road 2: 30 m x1
    assert float(ov.loc["total_miles_low_stress", "score_original"]) == pytest.approx(
        2 * 31 / 1609.34, abs=1e-4
    )
    assert float(ov.loc["total_miles_high_stress", "score_original"]) == pytest.approx(
        30 / 1609.34, abs=1e-4
    )
    mil = out.mileage.set_index("feature_type").total_mileage
    assert mil["lane"] == pytest.approx(1.0) and mil["path"] == pytest.approx(30 / 1609.34)


def test_fractional_population_sums_round_half_away_from_zero():
    """WorldPop populations are fractional and NUMERIC in the reference (shp2pgsql); their
    sums land in INTEGER columns (block totals, destination sheds, score_inputs' tmp_pop),
    and a NUMERIC rounds a tie away from zero: 300.5 -> 301, where a float would give 300."""
    s = _state(jobs=False)
    s.blocks["pop20"] = [100.25, 200.25, 300.0]
    out = scores.compute_scores(s)
    b = s.blocks.set_index("geoid20")
    # A reaches A, B, C (600.5) and A, B by low stress (300.5); B reaches B, A low (300.5)
    assert b.pop_high_stress.tolist() == [601, 301, 300]
    assert b.pop_low_stress.tolist() == [301, 301, 300]
    # the score reads the stored integers back: r = 301 / 601
    r = 301 / 601
    assert b.pop_score.iloc[0] == pytest.approx(0.8 + 0.2 * (r - 0.5) / 0.5)
    # school shed: sources A and C, 400.25 -> 400 either way; low: C alone
    sch = s.destinations["schools"]
    assert (sch.pop_high_stress.iloc[0], sch.pop_low_stress.iloc[0]) == (400, 300)
    # tmp_pop.overall = 600.5 -> 601 and tmp_pop.k12 (A and C reach the school) = 400.25 -> 400
    si = out.score_inputs.set_index("id")
    pops = np.array([100.25, 200.25, 300.0])
    pop_score = b.pop_score.to_numpy()
    assert si.loc[5, "score"] == numeric4(float(np.sum(pops * pop_score / 601)))
    sch_score = b.schools_score.to_numpy()
    assert si.loc[15, "score"] == numeric4(float(np.nansum(pops * sch_score / 400)))


def test_non_us_run_keeps_job_weight_b7():
    s = _state(jobs=False)
    scores.compute_scores(s)
    a = s.blocks.iloc[0]
    assert pd.isna(a.emp_high_stress) and np.isnan(a.emp_score)
    assert a.overall_score == pytest.approx(100 * (15 * 0.8 + 20 * 0.0) / 35)
    s = _state(jobs=False, quirks=Quirks.corrected())
    scores.compute_scores(s)
    # corrected: opportunity = schools only = 0 for A as well, C gets 1
    assert s.blocks.iloc[2].overall_score == pytest.approx(100.0)
    si = scores.compute_scores(_state(jobs=True, quirks=Quirks.corrected())).score_inputs
    assert si.set_index("id").loc[11, "score"] == numeric4(0.5)  # float division


def test_score_input_rows_follow_the_spec_layout():
    si = scores._load_template().set_index("id")
    assert list(si.index) == list(range(1, 133))
    flags = [c for c in si.columns if c.startswith("use_")]
    flagged = {c: si.index[si[c].eq(True)].tolist() for c in flags}
    # §11.1: the flagged (used) rows and their ids
    assert flagged == {
        "use_pop": [5], "use_emp": [10], "use_k12": [15], "use_tech": [24], "use_univ": [33],
        "use_doctor": [42], "use_dentist": [51], "use_hospital": [60], "use_pharmacy": [69],
        "use_retail": [78], "use_grocery": [87], "use_social_svcs": [96], "use_parks": [105],
        "use_trails": [114], "use_comm_ctrs": [119], "use_transit": [128],
    }  # fmt: skip
    assert si.loc[87, "score_name"] == "Average score of access to grocery stores"
    assert si.loc[83, "score_name"] == "Average score of low stress access to supermarkets"
    assert si.loc[92, "score_name"] == "Average score of low stress access to social services"
    assert si.loc[97, "score_name"] == "Average social_services bike shed access score"
    assert si.loc[1, "category"] == "People" and si.loc[132, "category"] == "Transit"
    # trails have no shed rows: 110-114 then community centers from 115
    assert si.loc[114, "score_name"] == "Average score of access to trails"
    assert si.loc[115, "score_name"] == "Average score of low stress access to community centers"


def test_mileage_counts_each_direction_and_paths_but_not_crossings():
    # §11.5: one entry per direction's bike infrastructure, one 'path' entry per path segment
    # that is not a crossing; full segment lengths in miles, no boundary clipping.
    ways = gpd.GeoDataFrame(
        {
            "road_id": [3, 1, 2, 4],
            "ft_bike_infra": ["lane", "lane", None, "sharrow"],
            "tf_bike_infra": ["lane", None, None, "unknown"],
            "functional_class": ["tertiary", "residential", "path", "path"],
            "xwalk": [None, None, None, 1],
        },
        geometry=[LineString([(0, 0), (1609.34, 0)]), LineString([(0, 0), (0, 804.67)]),
                  LineString([(0, 0), (3218.68, 0)]), LineString([(0, 0), (100, 0)])],
        crs=32635,
    )
    got = scores.compute_mileage(ways).set_index("feature_type")["total_mileage"].to_dict()
    assert got == pytest.approx({"lane": 2.5, "path": 2.0, "sharrow": 100 / 1609.34})
