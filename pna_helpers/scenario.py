"""What-if scenarios: change some OSM ways, re-run the engine, see what the change does.

>>> sc = run_scenario("outputs/results/helsinki-demo", "protected bike lane both ways",
...                   way_ids=[37142650])                            # doctest: +SKIP
>>> sc.score_changes()                                               # doctest: +SKIP

A change is a preset name (:data:`CHANGES`), a speed (``"speed limit 20 mph"``,
``"speed limit 30 km/h"``) or a dict of OSM tags (value ``None`` deletes the tag). It becomes
``Params.way_tag_edits`` (way id -> tags), which the engine applies when it imports the OSM
data; everything else about the run (inputs, parameters) is the baseline's, read from its
``run.json``. Ways are chosen by id, or by a boolean filter on the baseline's way attributes
(``where="functional_class == 'secondary' and speed_limit >= 30"``), or both (union).
:func:`find_island_connectors` proposes ways whose upgrade joins low-stress islands.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pna_engine import remote
from pna_engine.errors import InputError
from pna_helpers.paths import outputs_dir, slugify
from pna_helpers.results import SCORE_INFO, Results, load_results, require_block_column

_CLEAR_BIKE = {"cycleway": None, "cycleway:both": None, "cycleway:left": None,
               "cycleway:right": None, "cycleway:buffer": None, "cycleway:both:buffer": None,
               "cycleway:left:buffer": None, "cycleway:right:buffer": None,
               "cycleway:left:oneway": None, "cycleway:right:oneway": None}

#: Named changes -> OSM tag edits (BNA-METHOD.md §3.8 rules they trigger in brackets).
CHANGES: dict[str, dict[str, str | None]] = {
    # W10 / F15: cycleway=track -> track on both sides of a two-way road, with traffic only
    # on a one-way road (no contraflow: the network's directions do not change)
    "protected bike lane": {**_CLEAR_BIKE, "cycleway": "track"},
    # H9: cycleway=track and oneway:bicycle=no -> track in both directions (stress 1, §4.2)
    "protected bike lane both ways": {**_CLEAR_BIKE, "cycleway": "track", "oneway:bicycle": "no"},
    # H5: cycleway:both=lane -> lane both ways
    "bike lane both ways": {**_CLEAR_BIKE, "cycleway:both": "lane"},
    # H2: cycleway:both=buffered_lane
    "buffered bike lane both ways": {**_CLEAR_BIKE, "cycleway:both": "buffered_lane"},
    # H1: cycleway:both=shared_lane
    "sharrows both ways": {**_CLEAR_BIKE, "cycleway:both": "shared_lane"},
    "remove bike infrastructure": dict(_CLEAR_BIKE),
}

_SPEED_RE = re.compile(r"^\s*speed\s*limit\s*(\d+)\s*(mph|km/?h|kph)?\s*$", re.I)


def change_tags(change: str | dict[str, str | None]) -> dict[str, str | None]:
    """The OSM tag edits of a change (preset name, ``"speed limit N mph|km/h"`` or a dict).

    Parameters
    ----------
    change : str or dict of str to (str or None)
        A preset name of :data:`CHANGES` (case-insensitive), ``"speed limit N mph"`` /
        ``"speed limit N km/h"`` (N from 1 to 200; no unit means mph), or OSM tags with
        ``None`` for a tag to delete.

    Returns
    -------
    dict of str to (str or None)
        Tag -> new value (``None``: delete). A speed becomes ``maxspeed`` (``"20 mph"``, or a
        bare number for km/h).

    Raises
    ------
    InputError
        Unknown preset, speed out of range, or an empty dict.
    """
    if isinstance(change, dict):
        if not change:
            raise InputError("the change is an empty tag dict: give tags to set, e.g. "
                             "{'maxspeed': '20 mph'}")
        return {str(k): (None if v is None else str(v)) for k, v in change.items()}
    key = str(change).strip().lower()
    if key in CHANGES:
        return dict(CHANGES[key])
    m = _SPEED_RE.match(key)
    if m:
        n, unit = int(m.group(1)), (m.group(2) or "mph").lower()
        if not 1 <= n <= 200:
            raise InputError(f"speed {n} out of range in change {change!r}")
        # OSM: a bare number is km/h; mph needs the unit
        return {"maxspeed": f"{n} mph" if unit == "mph" else str(n)}
    raise InputError(f"unknown change {change!r}: use one of {', '.join(repr(c) for c in CHANGES)}, "
                     "'speed limit N mph' / 'speed limit N km/h', or a dict of OSM tags")


def select_ways(ways: Any, way_ids: list[int] | None = None, where: str | None = None) -> list[int]:
    """OSM way ids chosen by id and/or by a pandas ``query`` on the baseline way attributes.

    Parameters
    ----------
    ways : geopandas.GeoDataFrame
        The baseline's road segments (:attr:`~pna_helpers.results.Results.ways`).
    way_ids : list of int, optional
        OSM way ids (``osm_id``); every one must be in ``ways``.
    where : str, optional
        A :meth:`pandas.DataFrame.query` expression on the way columns, e.g.
        ``"functional_class == 'secondary' and speed_limit >= 30"``. Combined with
        ``way_ids`` as a union.

    Returns
    -------
    list of int
        The selected OSM way ids, sorted.

    Raises
    ------
    InputError
        A way id is not in ``ways``, ``where`` is not a valid query, or nothing is selected.
    """
    import pandas as pd

    ids: set[int] = set()
    known = set(pd.to_numeric(ways["osm_id"], errors="coerce").dropna().astype("int64"))
    if way_ids:
        asked = {int(w) for w in way_ids}
        missing = sorted(asked - known)
        if missing:
            raise InputError(f"way ids not in the baseline network: {missing[:10]}"
                             f"{' ...' if len(missing) > 10 else ''}; check the ids (OSM way ids "
                             "of neighborhood_ways.osm_id)")
        ids |= asked
    if where:
        try:
            sel = ways.drop(columns=ways.geometry.name).query(where)
        except Exception as exc:
            raise InputError(f"bad where filter {where!r}: {exc}; it is a pandas query on columns "
                             f"such as {', '.join(list(ways.columns)[:8])}") from exc
        ids |= set(pd.to_numeric(sel["osm_id"], errors="coerce").dropna().astype("int64"))
    if not ids:
        raise InputError("no ways selected: give way_ids or a where filter that matches ways")
    return sorted(ids)


def _low_stress_edges(ways: Any) -> Any:
    """Boolean per segment: usable on the low-stress network in at least one direction."""
    import numpy as np
    import pandas as pd

    ok = np.zeros(len(ways), dtype=bool)
    for d in ("ft", "tf"):
        seg = pd.to_numeric(ways[f"{d}_seg_stress"], errors="coerce").to_numpy(dtype=float)
        it = pd.to_numeric(ways[f"{d}_int_stress"], errors="coerce").to_numpy(dtype=float)
        ok |= (seg == 1) & ((it == 1) | np.isnan(it))
    return ok


def find_island_connectors(results: Any, max_ways: int = 10) -> Any:
    """Ways whose upgrade to low stress would join separate low-stress islands.

    The low-stress network is the graph of segments usable at stress 1 (segment and crossing
    stress) joined at their intersections; an island is one of its connected parts. A
    candidate is a way (with an OSM id) whose high-stress segments with low-stress crossings
    touch two or more islands; those segments are added, and ``islands_joined`` counts the
    islands that the addition actually merges with another (an island the way only touches,
    or a crossing that stays high stress, does not count). The gain is the number of newly
    connected pairs of low-stress segments. Only the first ``max(5 * max_ways, 50)``
    candidate ways, in the order of the ways table, are evaluated.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        The baseline: a :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results`.
    max_ways : int
        At most this many ways are returned (default 10).

    Returns
    -------
    pandas.DataFrame
        Columns ``osm_id, name, functional_class, islands_joined, gain``, best gain first;
        only ways merging two or more islands. Segments without an OSM way id are never
        proposed.

    Raises
    ------
    InputError
        The results cannot be loaded or have no road segments.
    """
    import numpy as np
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    res = load_results(results)
    w = res.ways
    fr = pd.to_numeric(w["intersection_from"], errors="coerce")
    to = pd.to_numeric(w["intersection_to"], errors="coerce")
    valid = (fr.notna() & to.notna()).to_numpy()
    w = w[valid]
    nodes, inv = np.unique(np.r_[fr[valid].to_numpy(), to[valid].to_numpy()], return_inverse=True)
    a, b = inv[: len(w)], inv[len(w):]
    n = len(nodes)
    low = _low_stress_edges(w)
    osm = pd.to_numeric(w["osm_id"], errors="coerce").to_numpy(dtype=float)
    # crossings low in some direction: these segments become low-stress with a track
    up_ok = np.zeros(len(w), dtype=bool)
    for d in ("ft", "tf"):
        it = pd.to_numeric(w[f"{d}_int_stress"], errors="coerce").to_numpy(dtype=float)
        up_ok |= (it == 1) | np.isnan(it)

    def comps(mask: Any) -> Any:
        g = coo_matrix((np.ones(mask.sum()), (a[mask], b[mask])), shape=(n, n))
        return connected_components(g, directed=False)[1]

    base_lab = comps(low)
    # an island: a part of the low-stress network with at least one segment
    on_island = np.bincount(base_lab[a[low]], minlength=n)[base_lab] > 0  # per node

    def pairs(lab: Any, mask: Any) -> float:
        s = np.bincount(lab[a[mask]], minlength=n).astype(float)
        return float((s * (s - 1) / 2).sum())

    base_pairs = pairs(base_lab, low)
    up = ~low & up_ok & ~np.isnan(osm)  # segments to upgrade; no way id: nothing to propose
    ends = pd.DataFrame({"way": np.r_[osm[up], osm[up]],
                         "node": np.r_[a[up], b[up]]})
    ends = ends[on_island[ends["node"].to_numpy()]]
    touched = ends.assign(island=base_lab[ends["node"].to_numpy()]) \
        .groupby("way")["island"].nunique()
    cand = [way for way in pd.unique(osm[up]) if touched.get(way, 0) >= 2]
    rows = []
    for way in cand[: max(5 * max_ways, 50)]:
        add = (osm == way) & up_ok
        mask = low | add
        lab = comps(mask)
        at = np.r_[a[add], b[add]]
        at = at[on_island[at]]  # the way's ends on an island
        # islands per new part: a part holding two or more islands merged them
        merged = pd.Series(base_lab[at]).groupby(lab[at]).nunique()
        joined = int(merged[merged >= 2].sum())
        gain = pairs(lab, mask) - base_pairs  # newly connected pairs of segments
        first = np.flatnonzero(osm == way)[0]
        rows.append({"osm_id": int(way), "name": w["name"].iloc[first],
                     "functional_class": w["functional_class"].iloc[first],
                     "islands_joined": joined, "gain": gain})
    df = pd.DataFrame(rows, columns=["osm_id", "name", "functional_class", "islands_joined",
                                     "gain"])
    df = df[df["islands_joined"] >= 2]
    return df.sort_values(["gain", "osm_id"], ascending=[False, True]).head(max_ways) \
        .reset_index(drop=True)


def _baseline_params(base: Results, inputs: dict[str, str] | None = None) -> dict[str, Any]:
    if not base.run or "parameters" not in base.run:
        raise InputError(f"{base.location} is not a PNA result with run.json: scenarios re-run the "
                         "engine with the baseline's inputs, so start from a PNA run")
    params = dict(base.run["parameters"])
    used = base.run.get("inputs") or {}
    params.update(inputs or {})
    for key in ("boundary", "osm", "population"):
        v = params.get(key)
        if not v or remote.is_remote(str(v)) or Path(v).exists():
            continue
        role = used.get(key) or {}
        if role.get("path") and Path(role["path"]).exists():
            params[key] = role["path"]
        else:
            raise InputError(f"the baseline's {key} input {v} is not on this machine (a run on "
                             f"AWS?): pass inputs={{'{key}': 'path or URL'}} to run_scenario")
    return params


def block_access_changes(baseline: Results, result: Results) -> Any:
    """Blocks of ``result`` with overall score and low-stress access in both result sets.

    Columns: ``geoid20, pop20, overall_before, overall_after, delta`` (overall score
    change), ``low_blocks_before/after/delta`` (blocks reachable on the low-stress
    network), ``pop_low_before/after/delta`` and ``access`` (``gained`` / ``lost`` /
    ``mixed`` / ``unchanged`` low-stress access).

    Parameters
    ----------
    baseline : Results
        The result set before the change.
    result : Results
        The result set after the change; blocks are matched on ``geoid20``.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per block of ``result``, with its geometry and the columns above.

    Raises
    ------
    InputError
        Either result set has no census blocks, its blocks lack a column used here
        (``geoid20``, ``pop20``, ``overall_score``, ``pop_low_stress``), or it has no
        connected block pairs file.
    """
    import numpy as np
    import pandas as pd

    for res in (baseline, result):
        for col in ("geoid20", "pop20", "overall_score", "pop_low_stress"):
            require_block_column(res, col, "block access changes",
                                 hint=f"compare results whose blocks have {col!r} (PNA runs "
                                      "have it)")
    nb, bb = result.blocks, baseline.blocks

    def low_reach(res: Results) -> Any:
        cp = res.connected_pairs()
        src = "source_blockid20" if "source_blockid20" in cp.columns else "source_blockid10"
        return cp.loc[cp["low_stress"], src].astype(str).value_counts()

    out = nb[["geoid20", "pop20", nb.geometry.name]].copy()
    before = bb.set_index("geoid20")
    out["overall_before"] = out["geoid20"].map(
        pd.to_numeric(before["overall_score"], errors="coerce"))
    out["overall_after"] = pd.to_numeric(nb["overall_score"], errors="coerce").to_numpy()
    out["delta"] = (out["overall_after"] - out["overall_before"]).round(3)
    lb, la = low_reach(baseline), low_reach(result)
    out["low_blocks_before"] = out["geoid20"].map(lb).fillna(0).astype(int)
    out["low_blocks_after"] = out["geoid20"].map(la).fillna(0).astype(int)
    out["low_blocks_delta"] = out["low_blocks_after"] - out["low_blocks_before"]
    out["pop_low_before"] = out["geoid20"].map(
        pd.to_numeric(before["pop_low_stress"], errors="coerce")).fillna(0)
    out["pop_low_after"] = pd.to_numeric(nb["pop_low_stress"], errors="coerce").fillna(0) \
        .to_numpy()
    out["pop_low_delta"] = out["pop_low_after"] - out["pop_low_before"]
    gained = (out["low_blocks_delta"] > 0) | (out["pop_low_delta"] > 0)
    lost = (out["low_blocks_delta"] < 0) | (out["pop_low_delta"] < 0)
    out["access"] = np.where(gained & ~lost, "gained",
                             np.where(lost & ~gained, "lost",
                                      np.where(gained & lost, "mixed", "unchanged")))
    return out


@dataclass
class ScenarioResult:
    """A scenario run: baseline, changed result, the edits and how long the run took."""

    baseline: Results
    result: Results
    edits: dict[int, dict[str, str | None]]
    change: Any
    seconds: float
    _blocks: Any = field(default=None, repr=False)

    def score_changes(self, all_scores: bool = True) -> Any:
        """Every city score before, after and the change (score points).

        Parameters
        ----------
        all_scores : bool
            Every score of the baseline, including sub-scores, population and mileage rows
            (default True); False: the overall and main category scores only.

        Returns
        -------
        pandas.DataFrame
            Indexed by score label, columns ``before``, ``after`` and ``change`` (rounded to
            4 decimals).
        """
        import pandas as pd

        b, a = self.baseline.scores(), self.result.scores()
        ids = [i for i in b.index if all_scores or SCORE_INFO.get(i, {}).get("main")]
        df = pd.DataFrame({"before": b.reindex(ids), "after": a.reindex(ids)})
        df["change"] = (df["after"] - df["before"]).round(4)
        df.index = [SCORE_INFO.get(i, {}).get("label", i) for i in ids]
        df.index.name = "score"
        return df

    def block_changes(self) -> Any:
        """Blocks with overall score and low-stress access before/after
        (:func:`block_access_changes`).

        Returns
        -------
        geopandas.GeoDataFrame
            Computed on the first call and cached.
        """
        if self._blocks is None:
            self._blocks = block_access_changes(self.baseline, self.result)
        return self._blocks

    def summary(self) -> Any:
        """Counts of blocks that gained / lost low-stress access.

        Returns
        -------
        pandas.Series
            Named ``blocks``, indexed by ``gained`` / ``lost`` / ``mixed`` / ``unchanged``
            (only the values that occur).
        """
        return self.block_changes()["access"].value_counts().rename("blocks")

    def headline(self) -> str:
        """The change in one line: ``protected bike lane on 1 way (0.4 km), overall score
        85.9 -> 86.3 (+0.4 points); engine re-run in 3.1 s``.

        Returns
        -------
        str
            The change, the number and length of the changed ways, the overall score before
            and after, and the run time.
        """
        ways = self.changed_ways()
        km = (float(ways.geometry.to_crs(ways.estimate_utm_crs()).length.sum()) / 1000
              if len(ways) else 0.0)
        what = self.change if isinstance(self.change, str) else ", ".join(
            f"{k}={v}" if v is not None else f"no {k}" for k, v in dict(self.change).items())
        n = len(self.edits)
        ch = self.score_changes(all_scores=False)
        size = f"{km:.1f} km" if km >= 1 else f"{km * 1000:.0f} m"
        line = f"{what} on {n} way{'s' if n != 1 else ''} ({size})"
        if "Overall" in ch.index:
            b, a = ch.loc["Overall", "before"], ch.loc["Overall", "after"]
            line += f", overall score {b:.1f} -> {a:.1f} ({a - b:+.1f} points)"
        return line + f"; engine re-run in {self.seconds:.1f} s"

    def access_sentence(self) -> str:
        """Blocks that gained / lost low-stress access, as a sentence.

        Returns
        -------
        str
            Blocks that gained (and the people living in them), lost and are unchanged;
            ``mixed`` blocks count in none of the three.
        """
        bc = self.block_changes()
        n = bc["access"].value_counts()
        gained, lost = int(n.get("gained", 0)), int(n.get("lost", 0))
        pop = bc.loc[bc["access"] == "gained", "pop20"].astype(float).sum()
        return (f"{gained} of {len(bc)} blocks gained low-stress access to more blocks "
                f"({pop:,.0f} people live in them), {lost} lost some, "
                f"{len(bc) - gained - lost} are unchanged.")

    def changed_ways(self) -> Any:
        """The edited ways as they are in the scenario result (with their new stress).

        Returns
        -------
        geopandas.GeoDataFrame
            The segments of the scenario result whose ``osm_id`` was edited.
        """
        w = self.result.ways
        import pandas as pd

        ids = pd.to_numeric(w["osm_id"], errors="coerce")
        return w[ids.isin(list(self.edits)).to_numpy()]

    def map(self) -> Any:
        """Blocks coloured by the change in low-stress reachable blocks, the changed ways in
        green, the new network stress as optional layers.

        Returns
        -------
        OfflineMap
            A :func:`~pna_helpers.maps.delta_map` of ``low_blocks_delta``.
        """
        from pna_helpers import maps

        return maps.delta_map(self.block_changes(), "low_blocks_delta",
                              "Change in blocks reachable on low stress (blocks)",
                              ways=self.result.ways, highlight=self.changed_ways(),
                              extra_fields=["delta", "pop_low_delta", "access"])


def run_scenario(baseline: Any, change: str | dict[str, str | None],
                 way_ids: list[int] | None = None, where: str | None = None,
                 name: str | None = None, workers: int | None = None,
                 inputs: dict[str, str] | None = None) -> ScenarioResult:
    """Apply ``change`` to the selected ways of ``baseline`` and re-run the engine in-process.

    Parameters
    ----------
    baseline : str, Path or Results
        A PNA result (it must have ``run.json``: the scenario reuses its inputs).
    change : str or dict
        Preset name (:data:`CHANGES`), ``"speed limit N mph"``/``"... km/h"`` or OSM tags.
    way_ids, where : optional
        The ways to change: OSM way ids and/or a pandas query on the baseline way attributes.
    name : str, optional
        Name of the scenario result, shown as ``<baseline name>: <name>`` (default: the
        change, or ``scenario`` for a dict of tags).
    workers : int, optional
        Connectivity worker processes (default: the baseline's setting).
    inputs : dict, optional
        Replacement input locations (``boundary``, ``osm``, ``population``) when the
        baseline's files are not on this machine (e.g. a run on AWS).

    Returns
    -------
    ScenarioResult

    Raises
    ------
    InputError
        Bad change or way selection, a baseline without ``run.json``, or baseline inputs that
        are not on this machine (pass ``inputs``).
    """
    from pna_engine import pipeline
    from pna_engine.params import Params, Quirks

    base = load_results(baseline)
    tags = change_tags(change)
    ids = select_ways(base.ways, way_ids, where)
    pdict = _baseline_params(base, inputs)
    edits: dict[int, dict[str, str | None]] = {
        int(k): v for k, v in (pdict.get("way_tag_edits") or {}).items()}
    for w in ids:
        edits[w] = {**edits.get(w, {}), **tags}
    key = hashlib.sha256(json.dumps([base.location, sorted(edits.items())], default=str)
                         .encode()).hexdigest()[:12]
    out = outputs_dir() / "scenarios" / f"{slugify(base.name, 40)}-{key}"
    pdict.update(output=str(out), way_tag_edits=edits,
                 quirks=Quirks(**(pdict.get("quirks") or {})))
    if workers is not None:
        pdict["workers"] = workers
    known = set(Params.__dataclass_fields__)
    params = Params(**{k: v for k, v in pdict.items() if k in known})
    t0 = time.perf_counter()
    pipeline.run(params)
    seconds = time.perf_counter() - t0
    label = name or (change if isinstance(change, str) else "scenario")
    result = load_results(out, name=f"{base.name}: {label}")
    return ScenarioResult(baseline=base, result=result,
                          edits={w: edits[w] for w in ids}, change=change, seconds=seconds)


