"""Block access and scores, city score inputs, overall scores and mileage (BNA-METHOD.md §10-§11).

Inputs are the connected block pairs of the connectivity phase (compact arrays), the blocks'
population (``pop20``), jobs (US only), the destinations of every category (each with a
``blockid20`` list) and the trails reachability. Everything is computed with numpy and scipy
sparse products (pairs x block->destination incidence), never per-row Python loops over pairs.

Block results go onto ``s.blocks`` with the reference column names (§12.3); city tables are
returned in :class:`Scores`. City-level numbers are rounded like the reference's
``NUMERIC(16,4)`` columns (half away from zero) before they are reused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: Destination categories in the reference's block column order, with the scoring
#: parameters (first, second, third destination worth) of §10.2.
CATEGORIES: dict[str, tuple[float, float, float]] = {
    "schools": (0.3, 0.2, 0.2),
    "universities": (0.7, 0.0, 0.0),
    "colleges": (0.7, 0.0, 0.0),
    "doctors": (0.4, 0.2, 0.1),
    "dentists": (0.4, 0.2, 0.1),
    "hospitals": (0.7, 0.0, 0.0),
    "pharmacies": (0.4, 0.2, 0.1),
    "retail": (0.4, 0.2, 0.1),
    "supermarkets": (0.6, 0.2, 0.0),
    "social_services": (0.7, 0.0, 0.0),
    "parks": (0.3, 0.2, 0.2),
    "trails": (0.7, 0.2, 0.0),
    "community_centers": (0.4, 0.2, 0.1),
    "transit": (0.6, 0.0, 0.0),
}
#: Categories that are destination tables (trails come from the path clusters).
DESTINATION_CATEGORIES = tuple(c for c in CATEGORIES if c != "trails")

#: Category weights of the block overall score (§10.5), total 100.
W_PEOPLE, W_OPPORTUNITY, W_CORE, W_RETAIL, W_RECREATION, W_TRANSIT = 15, 20, 20, 15, 15, 15
OPPORTUNITY_WEIGHTS = {"emp": 0.35, "schools": 0.35, "colleges": 0.1, "universities": 0.2}
CORE_WEIGHTS = {
    "doctors": 0.2,
    "dentists": 0.1,
    "hospitals": 0.2,
    "pharmacies": 0.1,
    "supermarkets": 0.25,
    "social_services": 0.15,
}
RECREATION_WEIGHTS = {"parks": 0.4, "trails": 0.35, "community_centers": 0.25}
METERS_PER_MILE = 1609.34
MILEAGE_TYPES = ("sharrow", "buffered_lane", "lane", "track", "path")

#: First id of each destination category's rows in score_inputs (§11.1).
SCORE_INPUT_START = {
    "schools": 11,
    "colleges": 20,
    "universities": 29,
    "doctors": 38,
    "dentists": 47,
    "hospitals": 56,
    "pharmacies": 65,
    "retail": 74,
    "supermarkets": 83,
    "social_services": 92,
    "parks": 101,
    "trails": 110,
    "community_centers": 115,
    "transit": 124,
}

#: Rows of neighborhood_overall_scores fed by a flagged score_inputs row.
OVERALL_SUBSCORES = {
    "people": "use_pop",
    "opportunity_employment": "use_emp",
    "opportunity_k12_education": "use_k12",
    "opportunity_technical_vocational_college": "use_tech",
    "opportunity_higher_education": "use_univ",
    "core_services_doctors": "use_doctor",
    "core_services_dentists": "use_dentist",
    "core_services_hospitals": "use_hospital",
    "core_services_pharmacies": "use_pharmacy",
    "core_services_grocery": "use_grocery",
    "core_services_social_services": "use_social_svcs",
    "retail": "use_retail",
    "recreation_parks": "use_parks",
    "recreation_trails": "use_trails",
    "recreation_community_centers": "use_comm_ctrs",
    "transit": "use_transit",
}


@dataclass
class Scores:
    """City-level results of the scores phase (block results are on ``s.blocks``)."""

    score_inputs: pd.DataFrame
    overall_scores: pd.DataFrame
    mileage: pd.DataFrame
    overall_score: float | None  # 0-100 (normalised), None if not computable


# --------------------------------------------------------------------------- numeric helpers
def numeric4(x: Any) -> Decimal | None:
    """Round like PostgreSQL storing a float into ``NUMERIC(16,4)`` (15 significant digits,
    then 4 decimals half away from zero). None/NaN -> None."""
    if x is None:
        return None
    if isinstance(x, Decimal):
        return x.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    xf = float(x)
    if np.isnan(xf):
        return None
    return Decimal(f"{xf:.15g}").quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _pg_int(x: np.ndarray) -> np.ndarray:
    """A population or jobs sum stored into an INTEGER column (``pop_low_stress``,
    ``tmp_pop.k12``...), rounded as PostgreSQL rounds a NUMERIC: half away from zero.

    The reference's sums are NUMERIC: ``shp2pgsql`` loads a fractional ``POP20`` (WorldPop,
    written as a decimal DBF field) as NUMERIC and an integer one as an integer type, and
    SUM over either is NUMERIC or exact; a NUMERIC -> INTEGER assignment rounds ties away from
    zero (only a FLOAT would round them to even). NaN (NULL) stays NaN.
    """
    x = np.asarray(x, dtype=float)
    t = np.trunc(x)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t)


def _lit(x: float | int | str) -> Decimal:
    """A parameter as the reference's SQL sees it: the Python value pasted into the script as
    text (``str(0.7)`` -> ``0.7``), which PostgreSQL reads as an exact NUMERIC literal."""
    return Decimal(str(x))


def _f(d: Decimal) -> float:
    """NUMERIC -> double precision (correctly rounded), as when a NUMERIC meets a FLOAT."""
    return float(d)


#: People / jobs curve parameters (``core/compute.py``), as NUMERIC literals.
_MAX, _STEP1, _SCORE1, _STEP2, _SCORE2, _STEP3, _SCORE3 = map(
    _lit, (1, "0.03", "0.1", "0.2", "0.4", "0.5", "0.8")
)


def ratio_score(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """People / jobs score (§10.1): piecewise-linear in r = low / high.

    The arithmetic follows ``access_population.sql`` operation by operation, so the float
    result is bit-identical: the differences of parameters (``:max_score - :score3``,
    ``1 - :step3``...) are exact NUMERIC values, and each segment is
    ``score_k + (score_k+1 - score_k) * ((r - step_k) / (step_k+1 - step_k))`` (the division
    first), below the first step ``score1 * (r / step1)``.

    Parameters
    ----------
    high, low : float arrays (NaN = NULL)

    Returns
    -------
    float array, NaN where the score is NULL.
    """
    high = np.asarray(high, dtype=float)
    low = np.asarray(low, dtype=float)
    s1, s2, s3 = _f(_STEP1), _f(_STEP2), _f(_STEP3)
    v1, v2, v3 = _f(_SCORE1), _f(_SCORE2), _f(_SCORE3)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = low / high
        out = np.select(
            [
                np.isnan(high) | (high == 0),
                low == 0,
                low == high,
                r == s3,
                r == s2,
                r == s1,
                r > s3,
                r > s2,
                r > s1,
                r < s1,
            ],
            [
                np.nan,
                0.0,
                _f(_MAX),
                v3,
                v2,
                v1,
                v3 + _f(_MAX - _SCORE3) * ((r - s3) / _f(1 - _STEP3)),
                v2 + _f(_SCORE3 - _SCORE2) * ((r - s2) / _f(_STEP3 - _STEP2)),
                v1 + _f(_SCORE2 - _SCORE1) * ((r - s1) / _f(_STEP2 - _STEP1)),
                v1 * (r / s1),
            ],
            default=np.nan,
        )
    return out


def destination_score(
    high: np.ndarray, low: np.ndarray, first: float, second: float, third: float
) -> np.ndarray:
    """Destination score (§10.2) for counts ``high``/``low`` with the category parameters.

    The arithmetic follows ``access_<category>.sql``: sums and differences of the parameters
    (``:first + :second``, ``:max_score - :first - :second``) are exact NUMERIC values, then
    ``base + (rest * (low - k)) / (high - k)`` in floats.

    Returns a float array, NaN where the score is NULL (high NULL or 0).
    """
    h = np.asarray(high, dtype=float)
    lo = np.asarray(low, dtype=float)
    f1, f2, f3 = _lit(first), _lit(second), _lit(third)
    with np.errstate(divide="ignore", invalid="ignore"):
        if f1 == 0:
            rest = lo / h
        elif f2 == 0:
            rest = _f(f1) + (_f(_MAX - f1) * (lo - 1)) / (h - 1)
        elif f3 == 0:
            rest = np.select(
                [lo == 1, lo == 2],
                [_f(f1), _f(f1 + f2)],
                default=_f(f1 + f2) + (_f(_MAX - f1 - f2) * (lo - 2)) / (h - 2),
            )
        else:
            rest = np.select(
                [lo == 1, lo == 2, lo == 3],
                [_f(f1), _f(f1 + f2), _f(f1 + f2 + f3)],
                default=_f(f1 + f2 + f3) + (_f(_MAX - f1 - f2 - f3) * (lo - 3)) / (h - 3),
            )
        return np.select(
            [np.isnan(h) | (h == 0), lo == 0, lo == h], [np.nan, 0.0, _f(_MAX)], default=rest
        )


def _z(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(a, dtype=float), nan=0.0)


def _weight_sum(terms: list[tuple[Any, float]]) -> np.ndarray:
    """Sum of the weights whose condition holds, as the reference's NUMERIC ``CASE WHEN ...
    THEN 0.35 ELSE 0 END + ...`` (exact decimal sum), then converted to a float.

    Summing the weights as floats would give e.g. 0.35 + 0.1 = 0.44999999999999996 instead
    of 0.45, and scores differing from the reference's in the last digit.
    """
    exps = [_lit(w).as_tuple().exponent for _, w in terms]
    scale = 10 ** max(0, -min(int(e) for e in exps))
    total: Any = 0
    for cond, w in terms:
        total = total + int(_lit(w) * scale) * np.asarray(cond, dtype=np.int64)
    return np.asarray(total, dtype=float) / scale


def block_overall(cols: dict[str, np.ndarray], keep_job_weight: bool = True) -> np.ndarray:
    """Block overall score 0-100 (§10.5) from ``<x>_score`` / ``<x>_high_stress`` arrays.

    ``keep_job_weight`` is quirk B7: the 0.35 employment weight stays in the opportunity
    denominator even without jobs. Switched off, it counts only where ``emp_high_stress > 0``.
    The operations follow ``access_overall.sql``: weighted sums of the scores in floats,
    divided by the exact (NUMERIC) sum of the present weights.
    """
    sc = {k: _z(v) for k, v in cols.items()}

    def hi(x: str) -> np.ndarray:
        return sc[f"{x}_high_stress"]

    def s(x: str) -> np.ndarray:
        return sc[f"{x}_score"]

    def present_weights(weights: dict[str, float], always: tuple[str, ...] = ()) -> np.ndarray:
        return _weight_sum(
            [(np.ones_like(hi(k), dtype=bool) if k in always else hi(k) > 0, w)
             for k, w in weights.items()]
        )

    opp_present = (hi("schools") + hi("colleges") + hi("universities")) > 0
    opp_den = present_weights(OPPORTUNITY_WEIGHTS, ("emp",) if keep_job_weight else ())
    opp_num = sum(w * s(k) for k, w in OPPORTUNITY_WEIGHTS.items())
    with np.errstate(divide="ignore", invalid="ignore"):
        opp = np.where(
            opp_present & (opp_den > 0), opp_num / np.where(opp_den > 0, opp_den, 1), 0.0
        )
    core_present = sum(hi(k) for k in CORE_WEIGHTS) > 0
    core_den = present_weights(CORE_WEIGHTS)
    core_num = sum(w * s(k) for k, w in CORE_WEIGHTS.items())
    core = np.where(core_present, core_num / np.where(core_den > 0, core_den, 1), 0.0)
    rec_present = sum(hi(k) for k in RECREATION_WEIGHTS) > 0
    rec_den = present_weights(RECREATION_WEIGHTS)
    rec_num = sum(w * s(k) for k, w in RECREATION_WEIGHTS.items())
    rec = np.where(rec_present, rec_num / np.where(rec_den > 0, rec_den, 1), 0.0)
    retail_present = hi("retail") > 0
    transit_present = hi("transit") > 0
    num = (
        W_PEOPLE * s("pop")
        + W_OPPORTUNITY * opp
        + W_CORE * core
        + W_RETAIL * s("retail")
        + W_RECREATION * rec
        + W_TRANSIT * s("transit")
    )
    den = (
        W_PEOPLE
        + W_OPPORTUNITY * opp_present
        + W_CORE * core_present
        + W_RETAIL * retail_present
        + W_RECREATION * rec_present
        + W_TRANSIT * transit_present
    )
    return 100.0 * num / den


def category_score(cols: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Block category score (§10.6): weighted mean of the non-NULL sub-scores, NaN if none.

    As ``category_scores.sql``: float sum of ``COALESCE(score, 0) * w`` divided by the exact
    (NUMERIC) sum of the weights of the non-NULL scores.
    """
    num = 0.0
    terms = []
    for k, w in weights.items():
        v = np.asarray(cols[f"{k}_score"], dtype=float)
        ok = ~np.isnan(v)
        num = num + np.where(ok, v * w, 0.0)
        terms.append((ok, w))
    den = _weight_sum(terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


# --------------------------------------------------------------------------- access
def _pair_matrix(conn: Any, nb: int, low_only: bool):
    """Sparse (source block x target block) 0/1 matrix of the connected pairs."""
    import scipy.sparse as sp

    keep = conn.low_stress if low_only else np.ones(len(conn.source), dtype=bool)
    src = conn.source[keep]
    tgt = conn.target[keep]
    if len(src) and (src[1:] >= src[:-1]).all():  # pairs come grouped by source: CSR directly
        indptr = np.zeros(nb + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=nb), out=indptr[1:])
        return sp.csr_matrix((np.ones(len(src), dtype=np.float64), tgt, indptr), shape=(nb, nb))
    return sp.csr_matrix((np.ones(len(src), dtype=np.float64), (src, tgt)), shape=(nb, nb))


def _sum_over_targets(pairs: Any, values: np.ndarray) -> np.ndarray:
    """SUM(values[target]) per source; NULL (NaN) when no non-NULL value was summed."""
    v = np.asarray(values, dtype=float)
    ok = ~np.isnan(v)
    total = pairs @ np.where(ok, v, 0.0)
    n = pairs @ ok.astype(float)
    return np.where(n > 0, total, np.nan)


def _incidence(dest: Any, block_index: dict[str, int], nb: int):
    """Sparse (block x destination) 0/1 incidence from the destinations' ``blockid20`` lists."""
    import scipy.sparse as sp

    rows: list[int] = []
    cols: list[int] = []
    for j, ids in enumerate(dest["blockid20"].tolist()):
        if ids is None or isinstance(ids, float):
            continue
        for g in ids:
            k = block_index.get(str(g))
            if k is not None:
                rows.append(k)
                cols.append(j)
    m = sp.csr_matrix(
        (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(nb, len(dest)),
    )
    m.data[:] = 1.0
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _dest_points(dest: Any) -> np.ndarray:
    """``geom_pt`` of each destination (column if present, else the geometry's centroid)."""
    import shapely

    if "geom_pt" in dest.columns:
        pts = np.asarray(dest["geom_pt"].values)
        if len(pts) and isinstance(pts[0], str):
            pts = shapely.from_wkt(pts)
        return pts
    g = np.asarray(dest.geometry.values)
    return shapely.centroid(g)


def _percentile(values: np.ndarray, q: float) -> float | None:
    """``PERCENTILE_CONT(q)`` over the non-NULL values, with PostgreSQL's arithmetic:
    position ``q * (n - 1)``, then ``lo + (position - floor) * (hi - lo)``."""
    v = np.sort(values[~np.isnan(values)])
    if len(v) == 0:
        return None
    pos = q * (len(v) - 1)
    first, second = int(np.floor(pos)), int(np.ceil(pos))
    lo, hi = float(v[first]), float(v[second])
    if second == first:
        return lo
    return lo + (pos - first) * (hi - lo)


def _ratio(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """low::FLOAT / NULLIF(high, 0) (NaN = NULL)."""
    low = np.asarray(low, dtype=float)
    high = np.asarray(high, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isnan(high) | (high == 0), np.nan, low / np.where(high == 0, 1, high))


def _sum_or_null(v: np.ndarray) -> float | None:
    v = np.asarray(v, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.sum()) if len(v) else None


# --------------------------------------------------------------------------- phase
def compute_scores(s: RunState) -> Scores:
    """Pipeline phase ``scores`` (§10, §11).

    Fills the block result columns on ``s.blocks``, the shed columns (``pop_low_stress``,
    ``pop_high_stress``, ``pop_score``) on each ``s.destinations[category]``, and returns the
    city tables.

    Parameters
    ----------
    s : RunState
        Uses ``s.blocks`` (geoid20, pop20, road_ids), ``s.connectivity``, ``s.jobs`` (or None),
        ``s.destinations``, ``s.boundary``, ``s.ways`` and ``s.params.quirks``.

    Returns
    -------
    Scores
    """
    import shapely

    quirks = s.params.quirks
    blocks = s.blocks.copy()
    conn = s.connectivity
    nb = len(blocks)
    boundary = s.boundary.geometry.union_all()
    shapely.prepare(boundary)
    in_boundary = shapely.intersects(boundary, np.asarray(blocks.geometry.values))
    geoid = blocks["geoid20"].astype(str).to_numpy()
    block_index = {g: i for i, g in enumerate(geoid)}
    pop = pd.to_numeric(blocks["pop20"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    high_pairs = _pair_matrix(conn, nb, low_only=False)
    low_pairs = _pair_matrix(conn, nb, low_only=True)
    cols: dict[str, np.ndarray] = {}

    def only_boundary(a: np.ndarray) -> np.ndarray:
        return np.where(in_boundary, a, np.nan)

    # people and jobs (§10.1)
    cols["pop_low_stress"] = only_boundary(_pg_int(_sum_over_targets(low_pairs, pop)))
    cols["pop_high_stress"] = only_boundary(_pg_int(_sum_over_targets(high_pairs, pop)))
    cols["pop_score"] = ratio_score(cols["pop_high_stress"], cols["pop_low_stress"])
    if s.jobs is not None:
        jobs_map = pd.Series(
            pd.to_numeric(s.jobs["jobs"], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
            index=s.jobs["blockid20"].astype(str).to_numpy(),
        )
        jobs_map = jobs_map.groupby(level=0).sum()
        # blocks without a jobs row have 0 jobs (not NULL), as in the reference
        jobs = jobs_map.reindex(geoid).fillna(0.0).to_numpy(dtype=float, na_value=np.nan)
        cols["emp_low_stress"] = only_boundary(_pg_int(_sum_over_targets(low_pairs, jobs)))
        cols["emp_high_stress"] = only_boundary(_pg_int(_sum_over_targets(high_pairs, jobs)))
        cols["emp_score"] = ratio_score(cols["emp_high_stress"], cols["emp_low_stress"])
    else:
        for c in ("emp_low_stress", "emp_high_stress", "emp_score"):
            cols[c] = np.full(nb, np.nan)

    # destinations (§10.2) and population sheds (§10.4)
    dest_points_in: dict[str, np.ndarray] = {}
    for cat in DESTINATION_CATEGORIES:
        dest = s.destinations.get(cat) if s.destinations else None
        if dest is None or len(dest) == 0:
            hi_cnt = np.zeros(nb)
            lo_cnt = np.zeros(nb)
        else:
            inc = _incidence(dest, block_index, nb)
            reach_hi = (high_pairs @ inc).tocsr()
            reach_lo = (low_pairs @ inc).tocsr()
            reach_hi.eliminate_zeros()
            reach_lo.eliminate_zeros()
            hi_cnt = np.diff(reach_hi.indptr).astype(float)
            lo_cnt = np.diff(reach_lo.indptr).astype(float)
            # sheds: population of distinct source blocks reaching the destination
            pts = _dest_points(dest)
            inside = shapely.intersects(boundary, pts)
            dest_points_in[cat] = inside
            hi_b = (reach_hi > 0).astype(float).T.tocsr()
            lo_b = (reach_lo > 0).astype(float).T.tocsr()
            ph = _pg_int(_sum_over_targets(hi_b, pop))
            pl = _pg_int(_sum_over_targets(lo_b, pop))
            ph = np.where(inside, ph, np.nan)
            pl = np.where(inside, pl, np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                pscore = np.where(np.isnan(ph), np.nan, np.where(ph == 0, 0.0, pl / ph))
            dest = dest.copy()
            dest["pop_low_stress"] = pd.array(
                np.where(np.isnan(pl), None, pl).tolist(), dtype="Int64"
            )
            dest["pop_high_stress"] = pd.array(
                np.where(np.isnan(ph), None, ph).tolist(), dtype="Int64"
            )
            dest["pop_score"] = pscore
            s.destinations[cat] = dest
        cols[f"{cat}_low_stress"] = only_boundary(lo_cnt)
        cols[f"{cat}_high_stress"] = only_boundary(hi_cnt)

    # trails (§10.3): reachable trail segments per block, straight from the searches
    th = (
        np.bincount(conn.trails_high[0], minlength=nb).astype(float)
        if len(conn.trails_high[0])
        else np.zeros(nb)
    )
    tl = (
        np.bincount(conn.trails_low[0], minlength=nb).astype(float)
        if len(conn.trails_low[0])
        else np.zeros(nb)
    )
    cols["trails_low_stress"] = only_boundary(tl)
    cols["trails_high_stress"] = only_boundary(th)

    for cat, (f1, f2, f3) in CATEGORIES.items():
        cols[f"{cat}_score"] = destination_score(
            cols[f"{cat}_high_stress"], cols[f"{cat}_low_stress"], f1, f2, f3
        )

    overall = block_overall(cols, keep_job_weight=quirks.opportunity_keeps_job_weight)
    cols["overall_score"] = only_boundary(overall)
    reachable = conn.reachable_blocks.astype(float)
    cols["opportunity_score"] = only_boundary(category_score(cols, OPPORTUNITY_WEIGHTS))
    cols["core_services_score"] = only_boundary(category_score(cols, CORE_WEIGHTS))
    cols["recreation_score"] = only_boundary(category_score(cols, RECREATION_WEIGHTS))

    # write block columns in the reference order
    order = ["pop", "emp"] + list(CATEGORIES)
    for x in order:
        for suffix in ("low_stress", "high_stress"):
            a = cols[f"{x}_{suffix}"]
            blocks[f"{x}_{suffix}"] = pd.array(
                np.where(np.isnan(a), None, a).tolist(), dtype="Int64"
            )
        blocks[f"{x}_score"] = cols[f"{x}_score"]
    blocks["overall_score"] = cols["overall_score"]
    blocks["reachable_blocks"] = pd.array(reachable.astype(np.int64), dtype="Int64")
    for c in ("opportunity_score", "core_services_score", "recreation_score"):
        blocks[c] = cols[c]
    s.blocks = blocks

    score_inputs = _score_inputs(s, cols, pop, in_boundary, dest_points_in, quirks)
    city_overall = _city_overall(cols["overall_score"], pop, reachable)
    overall_scores = _overall_scores(s, score_inputs, cols, pop, in_boundary, city_overall)
    mileage = compute_mileage(s.ways)
    norm = overall_scores.loc[overall_scores.score_id == "overall_score", "score_normalized"]
    ov = norm.iloc[0] if len(norm) else None
    return Scores(
        score_inputs=score_inputs,
        overall_scores=overall_scores,
        mileage=mileage,
        overall_score=float(ov) if ov is not None and not pd.isna(ov) else None,
    )


# --------------------------------------------------------------------------- city tables
def _load_template() -> pd.DataFrame:
    """The 132 score_inputs rows without scores (a copy of the cached table)."""
    return _template().copy()


@functools.lru_cache(maxsize=1)
def _template() -> pd.DataFrame:
    path = resources.files("pna_engine") / "data" / "score_inputs_template.csv"
    with resources.as_file(path) as p:
        t = pd.read_csv(p, dtype=str, keep_default_na=False)
    t["id"] = t["id"].astype(int)
    for c in [c for c in t.columns if c.startswith("use_")]:  # true or NULL, as the reference
        t[c] = pd.Series([True if v == "t" else None for v in t[c]], dtype=object)
    return t


def _score_inputs(
    s: Any,
    cols: dict[str, np.ndarray],
    pop: np.ndarray,
    in_boundary: np.ndarray,
    dest_in: dict[str, np.ndarray],
    quirks: Any,
) -> pd.DataFrame:
    """The 132 rows of ``neighborhood_score_inputs`` (§11.1)."""
    b = in_boundary
    popb = pop[b]
    p_all = _pg_int(np.array([np.nansum(popb)]))[0] if b.any() else np.nan
    values: dict[int, Any] = {}

    def weighted(score: np.ndarray, divisor: float) -> float | None:
        sc = score[b]
        if len(sc) == 0:
            return None
        if not divisor:  # tmp_pop total 0 -> every term 0
            return 0.0
        terms = popb * sc / divisor
        return _sum_or_null(terms)

    def avg_ratio_float(low: np.ndarray, high: np.ndarray) -> float | None:
        sh = _sum_or_null(high[b])
        if sh is None:
            return None
        if sh == 0:
            return 0.0
        sl = _sum_or_null(low[b])
        return None if sl is None else sl / sh

    def avg_ratio_int(low: np.ndarray, high: np.ndarray) -> float | None:
        sh = _sum_or_null(high[b])
        if sh is None:
            return None
        if sh == 0:
            return 0.0
        sl = _sum_or_null(low[b])
        if sl is None:
            return None
        if quirks.score_inputs_integer_division:
            return float(int(sl / sh))  # counts are >= 0: truncation = floor
        return sl / sh

    for start, x in ((1, "pop"), (6, "emp")):
        r = _ratio(cols[f"{x}_low_stress"], cols[f"{x}_high_stress"])[b]
        values[start] = _percentile(r, 0.5)
        values[start + 1] = _percentile(r, 0.7)
        values[start + 2] = _percentile(r, 0.3)
        values[start + 3] = avg_ratio_float(cols[f"{x}_low_stress"], cols[f"{x}_high_stress"])
        values[start + 4] = weighted(cols[f"{x}_score"], p_all)

    for cat, start in SCORE_INPUT_START.items():
        lo, hi = cols[f"{cat}_low_stress"], cols[f"{cat}_high_stress"]
        r = _ratio(lo, hi)[b]
        p_x = np.nansum(np.where(np.nan_to_num(hi[b]) > 0, popb, 0.0))
        values[start] = avg_ratio_int(lo, hi)
        values[start + 1] = _percentile(r, 0.5)
        values[start + 2] = _percentile(r, 0.7)
        values[start + 3] = _percentile(r, 0.3)
        values[start + 4] = weighted(cols[f"{cat}_score"], _pg_int(np.array([p_x]))[0])
        if cat == "trails":
            continue
        dest = s.destinations.get(cat) if s.destinations else None
        if dest is None or len(dest) == 0 or cat not in dest_in:
            for k in range(5, 9):
                values[start + k] = None
            continue
        inside = dest_in[cat]
        pl = pd.to_numeric(dest["pop_low_stress"], errors="coerce").to_numpy(
            float, na_value=np.nan
        )[inside]
        ph = pd.to_numeric(dest["pop_high_stress"], errors="coerce").to_numpy(
            float, na_value=np.nan
        )[inside]
        sh = _sum_or_null(ph)
        if sh is None:
            values[start + 5] = None
        elif sh == 0:
            values[start + 5] = 0.0
        else:
            sl = _sum_or_null(pl)
            values[start + 5] = None if sl is None else sl / sh
        rr = _ratio(pl, ph)
        values[start + 6] = _percentile(rr, 0.5)
        values[start + 7] = _percentile(rr, 0.7)
        values[start + 8] = _percentile(rr, 0.3)

    t = _load_template()
    t.insert(3, "score", [numeric4(values.get(i)) for i in t["id"]])
    return t


def _city_overall(overall: np.ndarray, pop: np.ndarray, reachable: np.ndarray) -> float | None:
    """bsa city overall score (§11.4): population-weighted mean of block scores (0-1)."""
    ok = reachable > 0
    den = np.nansum(np.where(ok, pop, 0.0))
    if not ok.any() or den == 0:
        return None
    use = ok & (np.nan_to_num(pop) > 0) & ~np.isnan(overall)
    return float(np.sum(overall[use] / 100.0 * pop[use]) / den)


def _overall_scores(
    s: Any,
    si: pd.DataFrame,
    cols: dict[str, np.ndarray],
    pop: np.ndarray,
    in_boundary: np.ndarray,
    city_overall: float | None,
    miles: tuple[float | None, float | None] | None = None,
) -> pd.DataFrame:
    """The 23 rows of ``neighborhood_overall_scores`` (§11.2, §11.3); ``miles`` (low, high)
    when the caller knows them (incremental re-scoring), else :func:`total_miles`."""
    zero = Decimal(0)
    sub: dict[str, tuple[Decimal, str]] = {}
    for sid, flag in OVERALL_SUBSCORES.items():
        row = si[si[flag].eq(True)].iloc[0]
        val = row["score"] if row["score"] is not None else zero
        sub[sid] = (numeric4(val), row["human_explanation"])

    def any_high(x: str) -> bool:
        return bool(np.any(np.nan_to_num(cols[f"{x}_high_stress"]) > 0))

    def category(parts: dict[str, tuple[str, str]]) -> Decimal | None:
        present = [any_high(col) for col, _ in parts.values()]
        if not any(present):
            return None
        num = sum(Decimal(w) * sub[sid][0] for sid, (_, w) in parts.items())
        den = sum(Decimal(w) for (_, w), p in zip(parts.values(), present) if p)
        return numeric4(num / den)

    opportunity = category(
        {
            "opportunity_employment": ("emp", "0.35"),
            "opportunity_k12_education": ("schools", "0.35"),
            "opportunity_technical_vocational_college": ("colleges", "0.1"),
            "opportunity_higher_education": ("universities", "0.2"),
        }
    )
    core = category(
        {
            "core_services_doctors": ("doctors", "0.2"),
            "core_services_dentists": ("dentists", "0.1"),
            "core_services_hospitals": ("hospitals", "0.2"),
            "core_services_pharmacies": ("pharmacies", "0.1"),
            "core_services_grocery": ("supermarkets", "0.25"),
            "core_services_social_services": ("social_services", "0.15"),
        }
    )
    recreation = category(
        {
            "recreation_parks": ("parks", "0.4"),
            "recreation_trails": ("trails", "0.35"),
            "recreation_community_centers": ("community_centers", "0.25"),
        }
    )
    rows: list[tuple[str, Decimal | None, str | None]] = []
    for sid in (
        "people",
        "opportunity_employment",
        "opportunity_k12_education",
        "opportunity_technical_vocational_college",
        "opportunity_higher_education",
    ):
        rows.append((sid, *sub[sid]))
    rows.append(("opportunity", opportunity, None))
    for sid in (
        "core_services_doctors",
        "core_services_dentists",
        "core_services_hospitals",
        "core_services_pharmacies",
        "core_services_grocery",
        "core_services_social_services",
    ):
        rows.append((sid, *sub[sid]))
    rows.append(("core_services", core, None))
    rows.append(("retail", *sub["retail"]))
    for sid in ("recreation_parks", "recreation_trails", "recreation_community_centers"):
        rows.append((sid, *sub[sid]))
    rows.append(("recreation", recreation, None))
    rows.append(("transit", *sub["transit"]))
    rows.append(("overall_score", numeric4(city_overall), None))
    normalized = [None if v is None else numeric4(v * 100) for _, v, _ in rows]
    pop_total = np.nansum(pop[in_boundary]) if in_boundary.any() else None
    rows.append(("population_total", numeric4(pop_total), "Total population of boundary"))
    normalized.append(None)
    low_mi, high_mi = miles or total_miles(s.ways, s.boundary.geometry.union_all())
    for sid, v, text in (
        ("total_miles_low_stress", low_mi, "Total low-stress miles"),
        ("total_miles_high_stress", high_mi, "Total high-stress miles"),
    ):
        d = numeric4(v)
        rows.append((sid, d, text))
        normalized.append(None if d is None else d.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    return pd.DataFrame(
        {
            "id": np.arange(1, len(rows) + 1),
            "score_id": [r[0] for r in rows],
            "score_original": [r[1] for r in rows],
            "score_normalized": normalized,
            "human_explanation": [r[2] for r in rows],
        }
    )


def total_miles(ways: Any, boundary: Any) -> tuple[float | None, float | None]:
    """Low- and high-stress miles inside the boundary (§11.5, bsa multiplier rule)."""
    import shapely

    g = np.asarray(ways.geometry.values)
    ft = pd.to_numeric(ways["ft_seg_stress"], errors="coerce").to_numpy(float, na_value=np.nan)
    tf = pd.to_numeric(ways["tf_seg_stress"], errors="coerce").to_numpy(float, na_value=np.nan)
    shapely.prepare(boundary)
    hit = shapely.intersects(boundary, g)
    # a segment strictly inside the boundary is its own intersection: clip only the others
    # (GEOS overlay of every segment with a detailed boundary dominated big cities)
    inside = shapely.contains_properly(boundary, g)

    def lengths(sel: np.ndarray) -> np.ndarray:
        gs, ins = g[sel], inside[sel]
        length = shapely.length(gs)
        length[~ins] = shapely.length(shapely.intersection(gs[~ins], boundary))
        return length

    return miles_from(ft, tf, hit, lengths)


def miles_from(ft: np.ndarray, tf: np.ndarray, hit: np.ndarray,
               lengths: Any) -> tuple[float | None, float | None]:
    """:func:`total_miles` from the seg stress arrays, the segments touching the boundary and
    ``lengths(selection)`` (their lengths inside it)."""
    total = np.nan_to_num(ft) + np.nan_to_num(tf)
    out = []
    for level, mult in ((1, {2: 2, 4: 1, 1: 1}), (3, {6: 2, 4: 1, 3: 1})):
        sel = hit & ((ft == level) | (tf == level))
        if not sel.any():
            out.append(None)
            continue
        length = lengths(sel)
        m = np.zeros(sel.sum())
        for k, v in mult.items():
            m[total[sel] == k] = v
        out.append(float(np.sum(length * m)) / METERS_PER_MILE)
    return out[0], out[1]


def compute_mileage(ways: Any) -> pd.DataFrame:
    """bsa "measure" table ``mileage`` (feature_type, total_mileage), §11.5."""
    import shapely

    # The reference sums ST_Length(geom) / 1609.34 row by row in table (road_id) order,
    # ft before tf within a row; float addition is not associative, so the same order and a
    # plain sequential sum (np.cumsum, not pairwise np.sum or compensated sums) give the
    # same last digit.
    if "road_id" in ways.columns:
        ways = ways.iloc[np.argsort(ways["road_id"].to_numpy(), kind="stable")]
    miles = shapely.length(np.asarray(ways.geometry.values)) / METERS_PER_MILE
    n = len(ways)
    none = np.full(n, None, dtype=object)
    cols = []
    for col in ("ft_bike_infra", "tf_bike_infra"):
        cols.append(ways[col].astype(object).to_numpy() if col in ways.columns else none)
    if "functional_class" in ways.columns:
        xw = ways["xwalk"].to_numpy() if "xwalk" in ways.columns else none
        is_path = (ways["functional_class"].astype(object).to_numpy() == "path") & pd.isna(xw)
        cols.append(np.where(is_path, "path", None))
    else:
        cols.append(none)
    kinds = np.column_stack(cols).ravel()  # row-major: row 1 ft, tf, path; row 2 ...
    values = np.repeat(miles, len(cols))
    types, totals = [], []
    for t in sorted(MILEAGE_TYPES):
        sel = values[kinds == t]
        if len(sel):
            types.append(t)
            totals.append(float(np.cumsum(sel)[-1]))
    out = pd.Series(totals, index=pd.Index(types, dtype=object))
    return pd.DataFrame({"feature_type": out.index.astype(str), "total_mileage": out.to_numpy()})
