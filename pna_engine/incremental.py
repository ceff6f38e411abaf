"""Incremental re-scoring: the scores after some segments' stress changed, without a full run.

A :class:`Baseline` holds a finished run's state in memory: the routing network with each
link's stress, the connectivity search context, the connected pairs, the block score columns
and each destination's low-stress shed. :meth:`Baseline.rescore` takes new stress values for a
few segments (or OSM tag edits of a few ways, turned into stress values by the engine's own
feature and stress rules) and recomputes only what can change:

- the links touching a changed segment get a new link stress; the low-stress graph (the full
  graph's arcs with a low-stress link) changes where an arc appears or disappears;
- a block's low-stress search can change only if, on the *old* low-stress graph, it reaches
  the tail of a changed arc within D (a new path's first new arc starts at a vertex the old
  search reaches; an old path's removed arc too). One reverse bounded search from those tails
  finds these blocks; only they search again (:func:`pna_engine.connectivity.search_blocks`,
  the same code, tiles and link-zone rule as the full run). The full network does not change,
  so their connected pairs stay the same pairs: only the low-stress flags and costs move;
- their access counts and block scores, the sheds of the destinations they reach, then the
  city tables (score inputs, overall scores, stress miles) follow with the scores phase's own
  functions and arithmetic.

The result is identical to a full run (``tests/test_incremental.py`` checks every score and
pair against full runs on random upgrades and downgrades). Changes that alter the network's
shape (one-way flags, classes that prune segments) raise :class:`NotIncremental`.

>>> base = Baseline.from_params(params)                                  # doctest: +SKIP
>>> r = base.rescore(way_tag_edits={37142650: {"maxspeed": "20 mph"}})    # doctest: +SKIP
>>> r.overall_score, r.delta()                                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from pna_engine import connectivity as _conn
from pna_engine import features as _feat
from pna_engine import scores as _sc
from pna_engine import stress as _st
from pna_engine.errors import InputError

STRESS_COLUMNS = ("ft_seg_stress", "tf_seg_stress", "ft_int_stress", "tf_int_stress")
#: Feature columns a tag edit may change (their stress consequences are handled).
FEATURE_COLUMNS = ("functional_class", "speed_limit", "width_ft", "ft_bike_infra",
                   "ft_bike_infra_width", "tf_bike_infra", "tf_bike_infra_width", "ft_lanes",
                   "tf_lanes", "ft_cross_lanes", "tf_cross_lanes", "twltl_cross_lanes",
                   "ft_park", "tf_park")
#: Tags whose edit changes more than the features above (network shape, intersections).
SHAPE_TAGS = frozenset({"highway", "oneway", "junction", "area", "traffic_signals:direction",
                        "bicycle", "foot", "access", "footway", "name"})


class NotIncremental(InputError):
    """The change alters the network's shape (not only stress): run the engine in full."""


def _float(a: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float, na_value=np.nan)


@dataclass
class Rescore:
    """The result of :meth:`Baseline.rescore` (the baseline itself is unchanged).

    ``overall_scores`` / ``score_inputs`` are the export's city tables, ``overall_score`` the
    normalised city score (0-100), ``blocks`` the block indices whose searches were redone.
    """

    base: Baseline = field(repr=False)
    overall_score: float | None
    blocks: np.ndarray = field(repr=False)
    seconds: float = 0.0
    # internals (for commit and the full tables)
    _stress: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _features: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _links: np.ndarray | None = field(default=None, repr=False)
    _link_stress: np.ndarray | None = field(default=None, repr=False)
    _pair_pos: np.ndarray | None = field(default=None, repr=False)
    _low_cost: np.ndarray | None = field(default=None, repr=False)
    _low_stress: np.ndarray | None = field(default=None, repr=False)
    _trails_low: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _cols: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _dest: dict[str, tuple[np.ndarray, np.ndarray, Any]] = field(default_factory=dict,
                                                                 repr=False)
    _miles: tuple[float | None, float | None] | None = None
    _edits: dict[int, dict[str, str | None]] = field(default_factory=dict, repr=False)
    _tables: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, repr=False)

    @property
    def overall_scores(self) -> pd.DataFrame:
        """``neighborhood_overall_scores`` after the change (computed on first use)."""
        return self._city_tables()[1]

    @property
    def score_inputs(self) -> pd.DataFrame:
        """``neighborhood_score_inputs`` after the change (computed on first use)."""
        return self._city_tables()[0]

    def _city_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._tables is None:
            self._tables = self.base._city_tables(self)
        return self._tables

    @property
    def changed_segments(self) -> np.ndarray:
        """Row indices (in the ways table) of the segments whose stress changed."""
        return self._stress.get("rows", np.zeros(0, np.int64))

    def scores(self) -> pd.Series:
        """Every city score (``score_normalized`` by ``score_id``), as floats."""
        return scores_series(self.overall_scores)

    def delta(self) -> float:
        """Change of the overall score (points, normalised 0-100)."""
        a, b = self.overall_score, self.base.overall_score
        return float((a or 0.0) - (b or 0.0))

    def connectivity(self) -> _conn.Connectivity:
        """The full connected-pairs table after the change (a copy)."""
        c = self.base.conn
        low_cost, ls = c.low_cost.copy(), c.low_stress.copy()
        if self._pair_pos is not None:
            low_cost[self._pair_pos] = self._low_cost
            ls[self._pair_pos] = self._low_stress
        tl = self._trails_low if self._trails_low is not None else c.trails_low
        return _conn.Connectivity(source=c.source, target=c.target, low_stress=ls,
                                  low_cost=low_cost, high_cost=c.high_cost,
                                  reachable_blocks=c.reachable_blocks, n_blocks=c.n_blocks,
                                  trail_ids=c.trail_ids, trails_high=c.trails_high,
                                  trails_low=tl)

    def pairs_frame(self) -> pd.DataFrame:
        """The ``neighborhood_connected_census_blocks`` table after the change."""
        return self.connectivity().pairs_frame(self.base.block_ids)

    def block_columns(self) -> dict[str, np.ndarray]:
        """Every block result column (float arrays, NaN = NULL) after the change."""
        return dict(self._cols)

    def destination_sheds(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per category: (pop_low_stress, pop_high_stress) of every destination (NaN = NULL)."""
        out = {}
        for cat, d in self.base.dest.items():
            pl = self._dest[cat][0] if cat in self._dest else d["pl"]
            out[cat] = (pl, d["ph"])
        return out


def scores_series(overall_scores: pd.DataFrame) -> pd.Series:
    """Score id -> score of an ``overall_scores`` table (normalised, else the original value).

    Parameters
    ----------
    overall_scores
        The ``neighborhood_overall_scores`` table (``score_id``, ``score_normalized``,
        ``score_original``).

    Returns
    -------
    pandas.Series
        Float scores indexed by score id (NaN where there is none).
    """
    v = overall_scores.set_index("score_id")["score_normalized"]
    alt = overall_scores.set_index("score_id")["score_original"]
    v = v.where(v.notna(), alt)
    return pd.Series([None if x is None else float(x) for x in v], index=v.index, dtype=float)


class Baseline:
    """A finished run held in memory for incremental re-scoring (see the module docstring).

    Build it with :meth:`from_params` (runs the engine up to the scores phase in-process),
    :meth:`from_results` (a PNA results folder: its ``run.json`` parameters) or
    :meth:`from_state` (a :class:`~pna_engine.state.RunState` after ``scores``).
    """

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_params(cls, params: Any) -> Baseline:
        """Run the engine (no export) into a temporary folder and keep its state."""
        import dataclasses

        from pna_engine import pipeline

        tmp = Path(tempfile.mkdtemp(prefix="pna-baseline-"))
        try:
            p = dataclasses.replace(params, output=str(tmp))
            state = pipeline.run(p, stop_after="scores")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        base = cls.from_state(state)
        base.params = params
        return base

    @classmethod
    def from_results(cls, folder: str | Path, **overrides: Any) -> Baseline:
        """The baseline of a PNA results folder (re-run in memory from its ``run.json``
        parameters; ``overrides`` replace parameters, e.g. ``workers=1``)."""
        from pna_engine.params import Params, Quirks

        run = Path(folder) / "run.json"
        if not run.exists():
            raise InputError(f"{folder} has no run.json: incremental re-scoring starts from a "
                             "PNA results folder (pna-engine run --output FOLDER)")
        rec = json.loads(run.read_text())
        pdict = dict(rec.get("parameters") or {})
        used = rec.get("inputs") or {}
        for key in ("boundary", "osm", "population"):
            v = pdict.get(key)
            path = (used.get(key) or {}).get("path")
            if v and not Path(v).exists() and path and Path(path).exists():
                pdict[key] = path
        pdict["quirks"] = Quirks(**(pdict.get("quirks") or {}))
        pdict.update(overrides)
        known = set(Params.__dataclass_fields__)
        return cls.from_params(Params(**{k: v for k, v in pdict.items() if k in known}))

    @classmethod
    def from_state(cls, s: Any) -> Baseline:
        """Hold the state of a run that went through the scores phase."""
        self = cls.__new__(cls)
        self._init(s)
        return self

    def _init(self, s: Any) -> None:
        import scipy.sparse as sp
        import shapely

        self.params = s.params
        self.quirks = s.params.quirks
        net = s.network
        self.ways = s.ways
        self.n_seg = n = len(s.ways)
        self.road_id = s.ways["road_id"].to_numpy(dtype=np.int64)
        self.osm_id = pd.to_numeric(s.ways["osm_id"], errors="coerce").to_numpy(
            np.float64, na_value=np.nan)
        self.stress = {c: _float(s.ways[c]) for c in STRESS_COLUMNS}
        self.intersections = s.intersections
        self.crs = s.crs
        # ---- network: links, arcs, low-stress counts
        self.src, self.tgt = net.source, net.target
        self.source_ft, self.target_ft, self.crossing = net.source_ft, net.target_ft, \
            net.int_crossing
        self.link_stress = net.link_stress.copy()
        full = net.full
        self.full = full
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(full.indptr))
        self.arc_row = rows
        arc_key = rows * n + full.indices.astype(np.int64)
        self.arc_of_link = np.searchsorted(arc_key, self.src * n + self.tgt)
        self.low_count = np.bincount(self.arc_of_link[self.link_stress == 1],
                                     minlength=full.nnz).astype(np.int64)
        ids = sp.csr_matrix((np.arange(1, full.nnz + 1, dtype=np.float64), full.indices,
                             full.indptr), shape=full.shape)
        ft = ids.T.tocsr()
        ft.sort_indices()
        self.fullT_indptr, self.fullT_indices = ft.indptr, ft.indices
        self.fullT_arc = ft.data.astype(np.int64) - 1
        order = np.argsort(np.concatenate([self.src, self.tgt]), kind="stable")
        self.seg_link_idx = order % len(self.src) if len(self.src) else order
        cnt = np.bincount(np.concatenate([self.src, self.tgt]), minlength=n)
        self.seg_link_ptr = np.concatenate(([0], np.cumsum(cnt)))
        self.low = self._low_graph(self.low_count)
        # ---- connectivity context
        seg_trail, trail_ids = _conn._trail_segments(s, n)
        bnd = s.boundary.geometry.union_all()
        self.D = float(s.params.max_trip_distance)
        self.searching = _conn.prepare_context(s.blocks, s.ways, bnd, net, self.D, seg_trail)
        self.ctx = dict(_conn._CTX)
        _conn._CTX.clear()
        self.ctx["low"] = self.low
        if "low_rows" in self.ctx:
            self.ctx["low_rows"] = self.arc_row[self.low_count > 0]
        self.is_searching = np.zeros(len(s.blocks), bool)
        self.is_searching[self.searching] = True
        self.conn = s.connectivity
        nb = self.nb = len(s.blocks)
        self.pair_ptr = np.searchsorted(self.conn.source, np.arange(nb + 1))
        self.block_ids = s.blocks["geoid20"].to_numpy()
        # ---- scores state
        shapely.prepare(bnd)
        self.boundary = bnd
        self.in_boundary = shapely.intersects(bnd, np.asarray(s.blocks.geometry.values))
        self.pop = pd.to_numeric(s.blocks["pop20"], errors="coerce").to_numpy(
            float, na_value=np.nan)
        self.cols = {c: _float(s.blocks[c]) for c in self._block_col_names()}
        geoid = s.blocks["geoid20"].astype(str).to_numpy()
        self.jobs = None
        if s.jobs is not None:
            jm = pd.Series(pd.to_numeric(s.jobs["jobs"], errors="coerce").to_numpy(
                float, na_value=np.nan), index=s.jobs["blockid20"].astype(str).to_numpy())
            self.jobs = jm.groupby(level=0).sum().reindex(geoid).fillna(0.0).to_numpy(
                float, na_value=np.nan)
        block_index = {g: i for i, g in enumerate(geoid)}
        low_pairs = _sc._pair_matrix(self.conn, nb, low_only=True)
        self.dest: dict[str, dict[str, Any]] = {}
        for cat in _sc.DESTINATION_CATEGORIES:
            dest = s.destinations.get(cat) if s.destinations else None
            if dest is None or len(dest) == 0:
                continue
            inc = _sc._incidence(dest, block_index, nb)
            reach = (low_pairs @ inc).tocsr()
            reach.eliminate_zeros()
            t = (reach > 0).astype(float).T.tocsr()
            t.sort_indices()
            self.dest[cat] = {
                "inc": inc, "T": t,
                "inside": shapely.intersects(bnd, _sc._dest_points(dest)),
                "pl": _float(dest["pop_low_stress"]), "ph": _float(dest["pop_high_stress"]),
            }
        g = np.asarray(s.ways.geometry.values)
        self.seg_hit = shapely.intersects(bnd, g)
        inside = shapely.contains_properly(bnd, g)
        self.seg_len_in = np.full(n, np.nan)
        h = np.flatnonzero(self.seg_hit)
        ln = shapely.length(g[h])
        out = ~inside[h]
        ln[out] = shapely.length(shapely.intersection(g[h][out], bnd))
        self.seg_len_in[h] = ln
        self.overall_scores = s.scores.overall_scores
        self.score_inputs = s.scores.score_inputs
        self.overall_score = s.scores.overall_score
        # ---- tag -> stress state
        self._init_tags(s)

    @staticmethod
    def _block_col_names() -> list[str]:
        names = []
        for x in ["pop", "emp", *_sc.CATEGORIES]:
            names += [f"{x}_low_stress", f"{x}_high_stress", f"{x}_score"]
        return names + ["overall_score", "opportunity_score", "core_services_score",
                        "recreation_score"]

    def _init_tags(self, s: Any) -> None:
        from pna_engine.speeds import residential_default

        lines = s.osm.lines if s.osm is not None else None
        self.residential_default = residential_default(s.speeds)
        if lines is None:
            self.tags = None
            return
        lt = _feat.Tags(lines)
        drop = lt.eq("highway", "path") & lt.eq("bicycle", "no")
        attrs = pd.DataFrame(lines.loc[~drop].drop(columns="geometry")).drop_duplicates("osm_id")
        self.tags = self.ways[["osm_id"]].merge(attrs, on="osm_id", how="left")
        if "bicycle" in lines.columns:
            bike = lines.drop_duplicates("osm_id").set_index("osm_id")["bicycle"]
            b = bike.reindex(self.ways["osm_id"].to_numpy()).to_numpy(dtype=object)
            self.bicycle = np.array([None if (v is None or v != v) else v for v in b],
                                    dtype=object)
        else:
            self.bicycle = np.full(self.n_seg, None, dtype=object)
        self.attrs = pd.DataFrame(self.ways.drop(columns=self.ways.geometry.name))
        self.tag_arrays = {}
        for c in self.tags.columns:  # None for an absent tag, as the engine's tag frames
            if c != "osm_id":
                a = self.tags[c].to_numpy(dtype=object)
                self.tag_arrays[c] = np.where(pd.isna(a), None, a)
        t_all = _feat.Tags(_Frame(self.tag_arrays, self.n_seg))
        self.fc_pre = _feat.functional_class(t_all, _feat.width_ft(t_all))[0]
        self.attr_np = {
            "functional_class": self.attrs["functional_class"].to_numpy(dtype=object),
            "name": self.attrs["name"].to_numpy(dtype=object),
            "intersection_from": self.attrs["intersection_from"].to_numpy(np.int64, na_value=-1),
            "intersection_to": self.attrs["intersection_to"].to_numpy(np.int64, na_value=-1),
            "speed_limit": _float(self.attrs["speed_limit"]),
            "ft_lanes": _float(self.attrs["ft_lanes"]), "tf_lanes": _float(self.attrs["tf_lanes"]),
            "one_way": self.attrs["one_way"].to_numpy(dtype=object),
            "one_way_car": self.attrs["one_way_car"].to_numpy(dtype=object),
        }
        f = self.attrs["intersection_from"].to_numpy(dtype=np.int64, na_value=-1)
        t = self.attrs["intersection_to"].to_numpy(dtype=np.int64, na_value=-1)
        ends = np.concatenate([f, t])
        segs = np.concatenate([np.arange(self.n_seg), np.arange(self.n_seg)])
        ok = ends >= 0
        self.end_int, self.end_seg = ends[ok], segs[ok]
        o = np.argsort(self.end_int, kind="stable")
        self.end_int_sorted, self.end_seg_sorted = self.end_int[o], self.end_seg[o]

    # ------------------------------------------------------------------ graph helpers
    def _low_graph(self, count: np.ndarray) -> Any:
        import scipy.sparse as sp

        full = self.full
        keep = count > 0
        indptr = np.zeros(full.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.arc_row[keep], minlength=full.shape[0]), out=indptr[1:])
        m = sp.csr_matrix((full.data[keep], full.indices[keep], indptr), shape=full.shape)
        m.has_sorted_indices = True
        return m

    def _low_graph_T(self, count: np.ndarray) -> Any:
        import scipy.sparse as sp

        keep = count[self.fullT_arc] > 0
        n = self.full.shape[0]
        rows = np.repeat(np.arange(n), np.diff(self.fullT_indptr))
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=n), out=indptr[1:])
        return sp.csr_matrix((self.full.data[self.fullT_arc[keep]], self.fullT_indices[keep],
                              indptr), shape=(n, n))

    def rows_of(self, road_ids: Any) -> np.ndarray:
        """Rows of the ways table for segment ``road_id`` values."""
        order = np.argsort(self.road_id, kind="stable")
        ids = np.asarray(road_ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.road_id[order], ids), 0, max(self.n_seg - 1, 0))
        bad = self.road_id[order][pos] != ids
        if bad.any():
            raise InputError(f"road ids not in the baseline network: {ids[bad][:10].tolist()}")
        return order[pos]

    def way_rows(self, osm_ids: Any) -> np.ndarray:
        """Rows of the segments of OSM ways ``osm_ids``."""
        return np.flatnonzero(np.isin(self.osm_id, np.asarray(list(osm_ids), dtype=float)))

    def _neighbours(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` and every segment sharing an intersection with one of them."""
        ints = np.unique(self.end_int[np.isin(self.end_seg, rows)])
        lo = np.searchsorted(self.end_int_sorted, ints, "left")
        hi = np.searchsorted(self.end_int_sorted, ints, "right")
        idx = _conn._ranges(lo, hi - lo)
        return np.union1d(rows, self.end_seg_sorted[idx])

    # ------------------------------------------------------------------ tag edits
    def stress_for_edits(self, way_tag_edits: dict[int, dict[str, str | None]]
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """New stress of the segments a set of OSM tag edits changes, with the engine's
        feature and stress rules (the ways' own segments and, for crossings, the segments
        at their intersections).

        Returns (``{"rows": changed rows, column: new values}``, ``{"rows": edited rows,
        feature column: new values}``). Raises :class:`NotIncremental` when an edit changes
        the network's shape (a one-way flag, a class that prunes or clusters segments, a
        shape tag).
        """
        out = self.stress_for_edits_many([way_tag_edits])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def stress_for_edits_many(self, edit_sets: list[dict[int, dict[str, str | None]]]
                              ) -> list[Any]:
        """:meth:`stress_for_edits` of many independent edit sets at once (each against the
        baseline, not against each other): one feature and segment-stress pass over all
        their segments, and one crossing-stress pass per group of sets whose crossings do
        not interact. Each item is the ``(stress, features)`` pair or a
        :class:`NotIncremental` instance."""
        import scipy.sparse as sp

        if self.tags is None:
            raise NotIncremental("the baseline has no OSM tags in memory: run the engine")
        K = len(edit_sets)
        results: list[Any] = [None] * K
        sets = [{int(w): v for w, v in (e or {}).items()} for e in edit_sets]
        rows_k: list[np.ndarray] = []
        for k, e in enumerate(sets):
            shape = sorted({t for v in e.values() for t in v} & SHAPE_TAGS)
            if shape:
                results[k] = NotIncremental(
                    f"tag edits of {', '.join(shape)} change the network's shape: use a full "
                    "run (pna_helpers.scenario)")
            rows_k.append(self.way_rows(e) if not shape else np.zeros(0, np.int64))
        lens = np.array([len(r) for r in rows_k], dtype=np.int64)
        allrows = np.concatenate(rows_k) if K else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(K), lens)
        # edited tags of every candidate's segments (one frame, candidates one after another)
        cols = {c: a[allrows].copy() for c, a in self.tag_arrays.items()}
        osm = self.osm_id[allrows]
        start = np.concatenate(([0], np.cumsum(lens)))
        for k, e in enumerate(sets):
            seg = slice(start[k], start[k + 1])
            for wid, kv in e.items():
                m = np.flatnonzero(osm[seg] == wid) + start[k]
                for tag, v in kv.items():
                    if tag in cols:
                        cols[tag][m] = v
        feats = self._features(_Frame(cols, len(allrows)))
        ok_row = (_same_rows(feats["_fc_pre"], self.fc_pre[allrows])
                  & _same_rows(feats["_owc"], self.attr_np["one_way_car"][allrows])
                  & _same_rows(feats["one_way"], self.attr_np["one_way"][allrows]))
        bad = np.bincount(owner[~ok_row], minlength=K) > 0
        for k in np.flatnonzero(bad):
            if results[k] is None:
                results[k] = NotIncremental(
                    "the tag edits change a way's class or one-way flag (the network's "
                    "shape): use a full run (pna_helpers.scenario)")
        # segment stress of every edited segment (per row: one pass)
        seg_frame = pd.DataFrame({c: feats[c] for c in FEATURE_COLUMNS})
        seg_frame["one_way"] = feats["one_way"]
        ft, tf = _st.segment_stress(seg_frame, self.bicycle[allrows], self.residential_default)
        _st.one_way_reset(feats["one_way"], ft, tf)
        # crossing stress: candidates whose 2-hop neighbourhoods hold each other's segments
        # interact; a greedy colouring gives groups computed in one pass each
        live = [k for k in range(K) if results[k] is None and len(rows_k[k])]
        for k in range(K):
            if results[k] is None and not len(rows_k[k]):
                results[k] = ({"rows": np.zeros(0, np.int64)}, {"rows": np.zeros(0, np.int64)})
        if not live:
            return results
        S = self._seg_adjacency()
        C = sp.csr_matrix((np.ones(int(lens[live].sum())),
                           (np.repeat(np.arange(len(live)), lens[live]),
                            np.concatenate([rows_k[k] for k in live]))),
                          shape=(len(live), self.n_seg))
        N1 = (C @ S).tocsr()
        N2 = (N1 @ S).tocsr()
        conflict = (N2 @ C.T).tocsr()
        colour = np.full(len(live), -1)
        for i in range(len(live)):
            nbr = conflict.indices[conflict.indptr[i]:conflict.indptr[i + 1]]
            used = set(colour[nbr[nbr < i]].tolist())
            c = 0
            while c in used:
                c += 1
            colour[i] = c
        cand_pos = {k: np.arange(start[k], start[k + 1]) for k in live}
        for c in range(colour.max() + 1):
            group = np.flatnonzero(colour == c)
            sub_rows = np.unique(N2[group].indices)
            sub = {name: a[sub_rows].copy() for name, a in self.attr_np.items()}
            for i in group:
                k = live[i]
                pos = np.searchsorted(sub_rows, rows_k[k])
                for name in ("functional_class", "speed_limit", "ft_lanes", "tf_lanes"):
                    sub[name][pos] = feats[name][cand_pos[k]]
            fi, ti = _st.intersection_stress(pd.DataFrame(sub), self.intersections,
                                             self.quirks.crossing_name_sentinels)
            for i in group:
                k = live[i]
                near_rows = N1[i].indices
                near_rows.sort()
                near = np.searchsorted(sub_rows, near_rows)
                new = {col: self.stress[col][near_rows].copy() for col in STRESS_COLUMNS}
                pos = np.searchsorted(near_rows, rows_k[k])
                new["ft_seg_stress"][pos] = ft[cand_pos[k]]
                new["tf_seg_stress"][pos] = tf[cand_pos[k]]
                new["ft_int_stress"] = fi[near].astype(float)
                new["tf_int_stress"] = ti[near].astype(float)
                changed = np.zeros(len(near_rows), bool)
                for col in STRESS_COLUMNS:
                    a, b = new[col], self.stress[col][near_rows]
                    changed |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
                st = {"rows": near_rows[changed], **{col: new[col][changed]
                                                      for col in STRESS_COLUMNS}}
                fe = {"rows": rows_k[k], **{col: feats[col][cand_pos[k]]
                                             for col in FEATURE_COLUMNS}}
                results[k] = (st, fe)
        return results

    def _seg_adjacency(self) -> Any:
        """Segment x segment: 1 when they share an intersection (or are the same)."""
        import scipy.sparse as sp

        if not hasattr(self, "_adj"):
            ints, inv = np.unique(self.end_int, return_inverse=True)
            m = sp.csr_matrix((np.ones(len(inv)), (self.end_seg, inv)),
                              shape=(self.n_seg, len(ints)))
            adj = (m @ m.T).tocsr()
            adj = adj + sp.identity(self.n_seg, format="csr")
            adj.data[:] = 1.0
            self._adj = adj
        return self._adj

    def _features(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The feature columns of segments from their tags (features.compute_features's rules
        for one segment at a time; the class before adjustment and the car one-way too)."""
        t = _feat.Tags(frame)
        q = self.quirks
        owc = _feat.one_way_car(t)
        width = _feat.width_ft(t)
        fc_pre, _ = _feat.functional_class(t, width)
        speed = _feat.speed_limit(t)
        ln = _feat.lanes(t)
        ft_park, tf_park = _feat.parking(t, both_ignored=q.parking_both_ignored)
        ft_infra, tf_infra = _feat.bike_infra(t, owc, q)
        one_way = _feat.bike_one_way(owc, ft_infra, tf_infra, t)
        fc = _feat.class_adjustment(fc_pre.copy(), ft_infra, tf_infra, ln["ft_lanes"],
                                    ln["tf_lanes"], speed)
        return {
            "_fc_pre": fc_pre, "_owc": owc, "one_way": one_way, "functional_class": fc,
            "speed_limit": speed, "width_ft": _feat.round_half_even(width),
            "ft_bike_infra": ft_infra, "tf_bike_infra": tf_infra,
            "ft_bike_infra_width": _feat.infra_width(t, owc, ft_infra, "ft"),
            "tf_bike_infra_width": _feat.infra_width(t, owc, tf_infra, "tf"),
            "ft_lanes": ln["ft_lanes"], "tf_lanes": ln["tf_lanes"],
            "ft_cross_lanes": ln["ft_cross_lanes"], "tf_cross_lanes": ln["tf_cross_lanes"],
            "twltl_cross_lanes": ln["twltl_cross_lanes"], "ft_park": ft_park, "tf_park": tf_park,
        }

    def _stress_input(self, stress_changes: Any) -> dict[str, np.ndarray]:
        """``{"rows", columns...}`` from a DataFrame/dict keyed by road_id."""
        if isinstance(stress_changes, dict) and "rows" in stress_changes:
            return stress_changes
        df = pd.DataFrame(stress_changes).T if isinstance(stress_changes, dict) \
            else pd.DataFrame(stress_changes)
        rows = self.rows_of(df.index.to_numpy())
        out = {"rows": rows}
        for c in STRESS_COLUMNS:
            out[c] = _float(df[c]) if c in df.columns else self.stress[c][rows].copy()
            bad = ~np.isnan(out[c]) & ~np.isin(out[c], (1.0, 2.0, 3.0))
            if bad.any():
                raise InputError(f"{c} must be 1, 2, 3 or NULL, got {out[c][bad][:5].tolist()}")
        return out

    # ------------------------------------------------------------------ rescoring
    def rescore(self, stress_changes: Any = None, *,
                way_tag_edits: dict[int, dict[str, str | None]] | None = None) -> Rescore:
        """Scores and pairs after a change, without changing the baseline.

        Parameters
        ----------
        stress_changes : DataFrame or dict, optional
            New stress per segment, indexed by ``road_id``, columns among
            ``ft_seg_stress, tf_seg_stress, ft_int_stress, tf_int_stress`` (1/3, NaN = NULL).
        way_tag_edits : dict, optional
            OSM way id -> {tag: value or None}, as ``Params.way_tag_edits``: the segments'
            features and stress are recomputed with the engine's rules.

        Returns
        -------
        Rescore
        """
        import time

        t0 = time.perf_counter()
        features = None
        if isinstance(way_tag_edits, tuple):  # (edits, stress_for_edits result)
            way_tag_edits, (ch, features) = way_tag_edits
            if stress_changes is not None:
                ch = _merge_changes(ch, self._stress_input(stress_changes))
        elif way_tag_edits:
            ch, features = self.stress_for_edits(way_tag_edits)
            if stress_changes is not None:
                extra = self._stress_input(stress_changes)
                ch = _merge_changes(ch, extra)
        elif stress_changes is not None:
            ch = self._stress_input(stress_changes)
        else:
            ch = {"rows": np.zeros(0, np.int64)}
        r = self._rescore(ch)
        r._features = features
        r._edits = {int(k): dict(v) for k, v in (way_tag_edits or {}).items()}
        r.seconds = time.perf_counter() - t0
        return r

    def _rescore(self, ch: dict[str, np.ndarray]) -> Rescore:
        rows = np.asarray(ch["rows"], dtype=np.int64)
        stress = {c: self.stress[c].copy() for c in STRESS_COLUMNS}
        for c in STRESS_COLUMNS:
            if c in ch:
                stress[c][rows] = ch[c]
        # links touching a changed segment
        p, ix = self.seg_link_ptr, self.seg_link_idx
        links = np.unique(ix[_conn._ranges(p[rows], p[rows + 1] - p[rows])])
        ls = self._link_stress(links, stress)
        old_low = self.link_stress[links] == 1
        new_low = ls == 1
        diff = new_low != old_low
        count = self.low_count
        arcs = np.zeros(0, np.int64)
        if diff.any():
            count = count.copy()
            np.add.at(count, self.arc_of_link[links[diff]],
                      new_low[diff].astype(np.int64) - old_low[diff].astype(np.int64))
            a = np.unique(self.arc_of_link[links[diff]])
            arcs = a[(count[a] > 0) != (self.low_count[a] > 0)]
        blocks = self._affected_blocks(arcs)
        r = Rescore(base=self, overall_score=None, blocks=blocks)
        r._stress = {"rows": rows, **{c: stress[c][rows] for c in STRESS_COLUMNS}}
        r._links, r._link_stress = links, ls
        r._count = count  # type: ignore[attr-defined]
        miles = _sc.miles_from(stress["ft_seg_stress"], stress["tf_seg_stress"], self.seg_hit,
                               lambda sel: self.seg_len_in[sel])
        r._miles = miles
        if len(blocks) == 0:
            r._cols = self.cols
            r.overall_score = self.overall_score
            if miles == self._miles():
                r._tables = (self.score_inputs, self.overall_scores)
            return r
        self._search(r, blocks, count)
        r.overall_score = self._city_score(r._cols)
        return r

    def _city_score(self, cols: dict[str, np.ndarray]) -> float | None:
        """The normalised city overall score (as ``_overall_scores`` rounds it)."""
        city = _sc._city_overall(cols["overall_score"], self.pop,
                                 self.conn.reachable_blocks.astype(float))
        v = _sc.numeric4(city)
        return None if v is None else float(_sc.numeric4(v * 100))

    def _miles(self) -> tuple[float | None, float | None]:
        if not hasattr(self, "_miles_cache"):
            self._miles_cache = _sc.miles_from(self.stress["ft_seg_stress"],
                                               self.stress["tf_seg_stress"], self.seg_hit,
                                               lambda sel: self.seg_len_in[sel])
        return self._miles_cache

    def _link_stress(self, links: np.ndarray, st: dict[str, np.ndarray]) -> np.ndarray:
        """network.build_from_tables's link stress for ``links`` with segment stress ``st``."""
        s, t = self.src[links], self.tgt[links]
        sft, tft = self.source_ft[links], self.target_ft[links]
        a = np.where(sft, st["ft_seg_stress"][s], st["tf_seg_stress"][s])
        it = np.where(sft, st["ft_int_stress"][s], st["tf_int_stress"][s])
        it = np.where(self.crossing[links], it, 1.0)
        c = np.where(tft, st["tf_seg_stress"][t], st["ft_seg_stress"][t])
        return np.fmax(np.fmax(a, it), c)

    def _affected_blocks(self, arcs: np.ndarray) -> np.ndarray:
        """Searching blocks whose old low-stress search reaches a changed arc's tail within
        D (one reverse bounded search on the old low-stress graph)."""
        from scipy.sparse.csgraph import dijkstra

        if len(arcs) == 0:
            return np.zeros(0, np.int64)
        tails = np.unique(self.arc_row[arcs])
        if not hasattr(self, "_lowT"):
            self._lowT = self._low_graph_T(self.low_count)
        d = dijkstra(self._lowT, directed=True, indices=tails, min_only=True,
                     limit=float(np.floor(self.D)) + 0.5)
        hit = d[self.ctx["seed_idx"]] <= self.D
        b = np.unique(self.ctx["seed_block"][hit])
        return b[self.is_searching[b]]

    def _search(self, r: Rescore, blocks: np.ndarray, count: np.ndarray) -> None:
        ctx = dict(self.ctx)
        low = self._low_graph(count)
        ctx["low"] = low
        if "low_rows" in ctx:
            ctx["low_rows"] = self.arc_row[count > 0]
        res = _conn.search_blocks(ctx, blocks)
        pp = self.pair_ptr
        pos = _conn._ranges(pp[blocks], pp[blocks + 1] - pp[blocks])
        c = self.conn
        if not (np.array_equal(res["src"], c.source[pos])
                and np.array_equal(res["tgt"], c.target[pos])):
            raise RuntimeError("incremental search gave other full-network pairs than the "
                               "baseline (the network's shape changed?)")
        r._pair_pos, r._low_cost, r._low_stress = pos, res["low"], res["ls"]
        # trails reached on the low-stress network
        tb, tt = c.trails_low
        keep = ~np.isin(tb, blocks)
        bb = np.concatenate([tb[keep], res["tl_b"]])
        tt2 = np.concatenate([tt[keep], res["tl_t"]])
        o = np.lexsort((tt2, bb))
        r._trails_low = (bb[o], tt2[o])
        self._block_scores(r, blocks, pos, res)

    def _block_scores(self, r: Rescore, A: np.ndarray, pos: np.ndarray,
                      res: dict[str, np.ndarray]) -> None:
        """The scores phase's block columns for blocks ``A`` with their new pairs."""
        import scipy.sparse as sp

        nb = self.nb
        pp = self.pair_ptr
        cnt = pp[A + 1] - pp[A]
        src_local = np.repeat(np.arange(len(A)), cnt)

        def rows_matrix(flags: np.ndarray) -> Any:
            t = self.conn.target[pos][flags]
            indptr = np.zeros(len(A) + 1, dtype=np.int64)
            np.cumsum(np.bincount(src_local[flags], minlength=len(A)), out=indptr[1:])
            return sp.csr_matrix((np.ones(len(t)), t, indptr), shape=(len(A), nb))

        new_m = rows_matrix(res["ls"])
        old_m = rows_matrix(self.conn.low_stress[pos])
        cols = {k: v.copy() for k, v in self.cols.items()}
        inb = self.in_boundary[A]

        def only_b(a: np.ndarray) -> np.ndarray:
            return np.where(inb, a, np.nan)

        cols["pop_low_stress"][A] = only_b(_sc._pg_int(_sc._sum_over_targets(new_m, self.pop)))
        if self.jobs is not None:
            cols["emp_low_stress"][A] = only_b(
                _sc._pg_int(_sc._sum_over_targets(new_m, self.jobs)))
        for cat, d in self.dest.items():
            reach = (new_m @ d["inc"]).tocsr()
            reach.eliminate_zeros()
            cols[f"{cat}_low_stress"][A] = only_b(np.diff(reach.indptr).astype(float))
            old = (old_m @ d["inc"]).tocsr()
            old.eliminate_zeros()
            touched = np.union1d(reach.indices, old.indices)
            if len(touched) == 0:
                continue
            r._dest[cat] = self._sheds(d, A, reach, touched)
        tl = np.bincount(r._trails_low[0], minlength=nb).astype(float) \
            if len(r._trails_low[0]) else np.zeros(nb)
        cols["trails_low_stress"][A] = only_b(tl[A])
        sub = {k: v[A] for k, v in cols.items()}
        sub["pop_score"] = _sc.ratio_score(sub["pop_high_stress"], sub["pop_low_stress"])
        if self.jobs is not None:
            sub["emp_score"] = _sc.ratio_score(sub["emp_high_stress"], sub["emp_low_stress"])
        for cat, (f1, f2, f3) in _sc.CATEGORIES.items():
            sub[f"{cat}_score"] = _sc.destination_score(
                sub[f"{cat}_high_stress"], sub[f"{cat}_low_stress"], f1, f2, f3)
        overall = _sc.block_overall(sub, keep_job_weight=self.quirks.opportunity_keeps_job_weight)
        sub["overall_score"] = only_b(overall)
        sub["opportunity_score"] = only_b(_sc.category_score(sub, _sc.OPPORTUNITY_WEIGHTS))
        sub["core_services_score"] = only_b(_sc.category_score(sub, _sc.CORE_WEIGHTS))
        sub["recreation_score"] = only_b(_sc.category_score(sub, _sc.RECREATION_WEIGHTS))
        for k in cols:
            cols[k][A] = sub[k]
        r._cols = cols

    def _sheds(self, d: dict[str, Any], A: np.ndarray, reach: Any, touched: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, Any]:
        """New low-stress population sheds of the ``touched`` destinations."""
        import scipy.sparse as sp

        nb = self.nb
        t = d["T"][touched].tocoo()
        inA = np.zeros(nb, bool)
        inA[A] = True
        keep = ~inA[t.col]
        rc = reach.tocoo()
        rows = np.concatenate([t.row[keep], np.searchsorted(touched, rc.col)])
        colb = np.concatenate([t.col[keep], A[rc.row]])
        m = sp.csr_matrix((np.ones(len(rows)), (rows, colb)), shape=(len(touched), nb))
        m.sum_duplicates()
        m.sort_indices()
        m.data[:] = 1.0
        pl = _sc._pg_int(_sc._sum_over_targets(m, self.pop))
        new = d["pl"].copy()
        new[touched] = np.where(d["inside"][touched], pl, np.nan)
        return new, touched, m

    def _city_tables(self, r: Rescore) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The city tables (score inputs, overall scores) from the new block columns."""
        dests = {}
        dest_in = {}
        for cat, d in self.dest.items():
            pl = r._dest[cat][0] if cat in r._dest else d["pl"]
            dests[cat] = pd.DataFrame({"pop_low_stress": pl, "pop_high_stress": d["ph"]})
            dest_in[cat] = d["inside"]
        ns = SimpleNamespace(destinations=dests)
        cols = r._cols
        si = _sc._score_inputs(ns, cols, self.pop, self.in_boundary, dest_in, self.quirks)
        reachable = self.conn.reachable_blocks.astype(float)
        city = _sc._city_overall(cols["overall_score"], self.pop, reachable)
        ov = _sc._overall_scores(ns, si, cols, self.pop, self.in_boundary, city, miles=r._miles)
        return si, ov

    # ------------------------------------------------------------------ commit
    def commit(self, r: Rescore) -> None:
        """Make a rescore's change part of the baseline (planners: pick, then re-rank)."""
        if r.base is not self:
            raise ValueError("this rescore belongs to another baseline")
        rows = r._stress.get("rows", np.zeros(0, np.int64))
        for c in STRESS_COLUMNS:
            if len(rows):
                self.stress[c][rows] = r._stress[c]
        if r._features is not None and len(r._features["rows"]):
            fr = r._features["rows"]
            for c in FEATURE_COLUMNS:
                self.attrs[c] = _set_rows(self.attrs[c], fr, r._features[c])
                if c in self.attr_np:
                    self.attr_np[c] = self.attr_np[c].copy()
                    self.attr_np[c][fr] = r._features[c]
        if r._links is not None and len(r._links):
            self.link_stress[r._links] = r._link_stress
            count = getattr(r, "_count", self.low_count)
            if count is not self.low_count:
                self.low_count = count
                self.low = self._low_graph(count)
                self.ctx["low"] = self.low
                if "low_rows" in self.ctx:
                    self.ctx["low_rows"] = self.arc_row[count > 0]
                if hasattr(self, "_lowT"):
                    del self._lowT
        if r._pair_pos is not None:
            self.conn = r.connectivity()
            self.cols = r._cols
            for cat, (pl, touched, m) in r._dest.items():
                d = self.dest[cat]
                d["pl"] = pl
                d["T"] = _replace_rows(d["T"], touched, m)
        if hasattr(self, "_miles_cache"):
            del self._miles_cache
        self.overall_scores, self.score_inputs = r.overall_scores, r.score_inputs
        self.overall_score = r.overall_score
        if self.tags is not None and r._edits:  # later edits of the same ways build on these
            rows = self.way_rows(r._edits)
            for wid, kv in r._edits.items():
                m = rows[self.osm_id[rows] == wid]
                for tag, v in kv.items():
                    if tag in self.tag_arrays:
                        self.tag_arrays[tag] = self.tag_arrays[tag].copy()
                        self.tag_arrays[tag][m] = v


def _merge_changes(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rows = np.concatenate([a["rows"], b["rows"]])
    out = {"rows": rows}
    for c in STRESS_COLUMNS:
        out[c] = np.concatenate([a[c], b[c]])
    # later (b) wins: keep the last occurrence of each row
    _, last = np.unique(rows[::-1], return_index=True)
    keep = len(rows) - 1 - last
    return {k: v[keep] for k, v in out.items()}


def _replace_rows(m: Any, rows: np.ndarray, new: Any) -> Any:
    """CSR ``m`` with ``rows`` replaced by the rows of ``new`` (sorted indices kept)."""
    import scipy.sparse as sp

    c = m.tocoo()
    keep = ~np.isin(c.row, rows)
    nc = new.tocoo()
    r = np.concatenate([c.row[keep], rows[nc.row]])
    k = np.concatenate([c.col[keep], nc.col])
    out = sp.csr_matrix((np.ones(len(r)), (r, k)), shape=m.shape)
    out.sum_duplicates()
    out.sort_indices()
    out.data[:] = 1.0
    return out


def _set_rows(col: pd.Series, pos: np.ndarray, values: np.ndarray) -> Any:
    """A copy of a feature column with ``pos`` set to ``values``, in the column's dtype."""
    if not pd.api.types.is_numeric_dtype(col.dtype):  # object or pandas' str dtype
        out = col.to_numpy(dtype=object).copy()
        out[pos] = values
        return pd.array(out, dtype=col.dtype)
    arr = pd.to_numeric(col, errors="coerce").to_numpy(float, na_value=np.nan).copy()
    arr[pos] = _float(values)
    if str(col.dtype) == "Int64":
        return _feat._int_array(arr)
    return arr


class _Frame:
    """The little of a DataFrame that :class:`pna_engine.features.Tags` reads: columns of
    object arrays (cheap to slice for a few segments)."""

    def __init__(self, cols: dict[str, np.ndarray], n: int) -> None:
        self.cols, self.columns, self.n = cols, cols.keys(), n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: str) -> Any:
        return _Col(self.cols[key])


class _Col:
    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        return self.a if dtype is None else self.a.astype(dtype, copy=False)


def _same_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row: equal, NULLs (None/NaN) equal to each other."""
    na, nb = pd.isna(a), pd.isna(b)
    with np.errstate(invalid="ignore"):
        eq = np.asarray(a == b, dtype=bool)
    return (na & nb) | (~na & ~nb & eq)
