"""Incremental re-scoring (pna_engine.incremental) against full runs.

Random sets of upgrades and downgrades (segment stress set to 1 or 3, whole ways and single
segments) and tag edits are applied on the demo, a small synthetic city and, when
``/work/shared`` is there, Liechtenstein; every connected pair, every block column, every
destination shed and both city tables must be identical to the full run's.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pna_engine import demo, pipeline
from pna_engine.features import _int_array
from pna_engine.incremental import STRESS_COLUMNS, Baseline, NotIncremental
from pna_engine.params import Params

REPO = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared/data")


def _demo_params(folder: Path) -> Params:
    inp = demo.prepare_demo_inputs(folder)
    return Params(boundary=inp["boundary"], osm=inp["osm"], population=inp["population"],
                  country=inp["country"], city_speed_limit=inp["city_speed_limit"],
                  output=str(folder / "out"), offline=True, workers=1)


def _synthetic_params(folder: Path) -> Params:
    spec = importlib.util.spec_from_file_location("synthetic_city",
                                                  REPO / "benchmarks" / "synthetic_city.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("synthetic_city", mod)
    spec.loader.exec_module(mod)
    city = mod.generate(folder, population=6000, seed=11)
    from pna_engine.cli import build_parser, params_from_args

    ns = build_parser().parse_args(["run", *city.args(), "--output", str(folder / "out")])
    p = params_from_args(ns)
    return dataclasses.replace(p, offline=True, workers=1)


def _liechtenstein_params(folder: Path) -> Params:
    d = SHARED / "liechtenstein"
    return Params(boundary=str(d / "liechtenstein-liechtenstein.shp"),
                  osm=str(SHARED / "liechtenstein.osm.pbf"), population=str(d / "population.zip"),
                  country="liechtenstein", city_speed_limit=30, output=str(folder / "out"),
                  offline=True, workers=2)


CASES = {"demo": _demo_params, "synthetic": _synthetic_params,
         "liechtenstein": _liechtenstein_params}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory, helsinki_pbf):
    if request.param == "liechtenstein" and not (SHARED / "liechtenstein").exists():
        pytest.skip("/work/shared/data/liechtenstein is not on this machine")
    params = CASES[request.param](tmp_path_factory.mktemp(request.param))
    after_stress = pipeline.run(params, stop_after="stress")
    return request.param, params, after_stress, Baseline.from_params(params)


def _full_from_stress(after_stress, stress: dict[str, np.ndarray]):
    """A full run of every phase after ``stress`` with the given segment stress."""
    s = copy.copy(after_stress)
    s.ways = after_stress.ways.copy()
    for c in STRESS_COLUMNS:
        s.ways[c] = _int_array(stress[c])
    s.destinations, s.counts, s.notes = {}, {}, []
    for name in ("network", "blocks", "connectivity", "destinations", "scores"):
        pipeline.PHASE_FUNCTIONS[name](s)
    return s


def _num(a) -> np.ndarray:
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float, na_value=np.nan)


def assert_same_as_full(r, full) -> None:
    fc, ic = full.connectivity, r.connectivity()
    for a in ("source", "target", "low_stress", "low_cost", "high_cost", "reachable_blocks"):
        np.testing.assert_array_equal(getattr(fc, a), getattr(ic, a), err_msg=a)
    for x, y in zip(fc.trails_low, ic.trails_low):
        np.testing.assert_array_equal(x, y)
    cols = r.block_columns()
    for c, v in cols.items():
        np.testing.assert_array_equal(v, _num(full.blocks[c]), err_msg=c)
    for cat, (pl, ph) in r.destination_sheds().items():
        np.testing.assert_array_equal(pl, _num(full.destinations[cat]["pop_low_stress"]), cat)
        np.testing.assert_array_equal(ph, _num(full.destinations[cat]["pop_high_stress"]), cat)
    pd.testing.assert_frame_equal(r.score_inputs, full.scores.score_inputs)
    pd.testing.assert_frame_equal(r.overall_scores, full.scores.overall_scores)
    assert r.overall_score == full.scores.overall_score


def _random_changes(base: Baseline, rng: np.random.Generator) -> pd.DataFrame:
    """Whole ways and single segments set to stress 1 (upgrade) or 3 (downgrade)."""
    ways = base.osm_id[~np.isnan(base.osm_id)]
    picked = rng.choice(np.unique(ways), size=int(rng.integers(1, 8)), replace=False)
    rows = [base.way_rows([w]) for w in picked]
    rows.append(rng.choice(base.n_seg, size=int(rng.integers(1, 6)), replace=False))
    data = {c: [] for c in STRESS_COLUMNS}
    idx = []
    for rr in rows:
        level = float(rng.choice([1.0, 3.0]))
        for c in STRESS_COLUMNS:
            data[c] += [level if rng.random() < 0.8 else float(rng.choice([1.0, 3.0]))] * len(rr)
        idx += base.road_id[rr].tolist()
    df = pd.DataFrame(data, index=idx)
    return df[~df.index.duplicated(keep="last")]


def test_random_upgrades_and_downgrades_match_full_runs(case):
    name, params, after_stress, base = case
    rng = np.random.default_rng(2026)
    trials = {"demo": 6, "synthetic": 4, "liechtenstein": 3}[name]
    moved = 0
    for _ in range(trials):
        ch = _random_changes(base, rng)
        r = base.rescore(ch)
        stress = {c: base.stress[c].copy() for c in STRESS_COLUMNS}
        rows = base.rows_of(ch.index)
        for c in STRESS_COLUMNS:
            stress[c][rows] = ch[c].to_numpy()
        full = _full_from_stress(after_stress, stress)
        assert_same_as_full(r, full)
        moved += not full.scores.overall_scores.equals(base.overall_scores)
    assert moved > 0  # the changes did move some scores


def test_committed_changes_and_tag_edits_match_a_full_run(case):
    """Two committed tag-edit sets then a stress change: the same as one full run with all."""
    name, params, after_stress, base0 = case
    base = Baseline.from_params(params)
    w = base.attrs
    st = pd.to_numeric(w["ft_seg_stress"], errors="coerce")
    cand = w[(st == 3) & w["functional_class"].isin(
        ["residential", "tertiary", "secondary", "primary", "unclassified"])]
    ids = pd.unique(cand["osm_id"].astype("int64"))[:6].tolist()
    assert len(ids) >= 2
    clear = {k: None for k in ("cycleway", "cycleway:both", "cycleway:left", "cycleway:right",
                               "cycleway:left:oneway", "cycleway:right:oneway")}
    edits = {ids[0]: {**clear, "cycleway": "track"}, ids[1]: {"maxspeed": "20 mph"}}
    more = {i: {"maxspeed": "15 mph", "lanes": "2"} for i in ids[2:]}
    r1 = base.rescore(way_tag_edits=edits)
    base.commit(r1)
    r2 = base.rescore(way_tag_edits=more)
    base.commit(r2)
    full = pipeline.run(dataclasses.replace(params, way_tag_edits={**edits, **more}),
                        stop_after="scores")
    for c in STRESS_COLUMNS:
        np.testing.assert_array_equal(base.stress[c], _num(full.ways[c]), err_msg=c)
    r3 = base.rescore(None)
    assert_same_as_full(r3, full)
    assert r2.overall_score == full.scores.overall_score


def test_shape_changes_are_refused(case):
    name, params, after_stress, base = case
    wid = int(base.osm_id[~np.isnan(base.osm_id)][0])
    with pytest.raises(NotIncremental, match="shape"):
        base.rescore(way_tag_edits={wid: {"highway": "motorway"}})
