"""A "next year" of the Helsinki demo, with real edits written by pyosmium (not the scenario
shortcut): tag changes (protected bike lanes, a speed limit), a way removed, a new cycleway,
a new school; a changed population and a moved boundary.

It is what :mod:`pna_helpers.explain` is shown and tested on: ``explain(demo_results(),
next_year_results())`` finds each of these changes in its group. Everything is derived from
the demo's own inputs (offline, seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Tag edits of the demo's next year (OSM way id -> tags; None deletes).
_TRACK = {"cycleway": "track", "oneway:bicycle": "no"}
TAG_EDITS: dict[int, dict[str, str | None]] = {
    166171129: _TRACK, 29690379: _TRACK,   # Kaivokatu: protected bike lanes both ways
    17000885: _TRACK, 222072487: _TRACK,   # Mikonkatu
    35435008: _TRACK,                      # Kaisaniemenkatu
    22565684: {"maxspeed": "50"},          # Vuorikatu: 50 km/h, no longer a quiet street
}
REMOVED_WAYS = (76028714,)  # Puutarhakatu
#: A new school.
SCHOOL = {"lon": 24.9440, "lat": 60.1700, "tags": {"amenity": "school", "name": "Uusi koulu"}}
#: The new cycleway's name checks that text from OSM is escaped wherever it reaches HTML.
NEW_WAY_NAME = "Uusi <b>pyörätie</b> & co"


def _way_nodes(pbf: Path, way_ids: set[int]) -> dict[int, list[int]]:
    import osmium

    return {o.id: [n.ref for n in o.nodes] for o in osmium.FileProcessor(str(pbf), osmium.osm.WAY)
            if o.id in way_ids}


def edit_network_and_destinations(src: Path, dst: Path, network: bool = True,
                                  destinations: bool = True) -> Any:
    """The next year's OSM file: network edits and/or the new school.

    Parameters
    ----------
    src : Path
        The demo's OSM file (``.osm.pbf``).
    dst : Path
        The edited copy to write.
    network : bool, optional
        Apply :data:`TAG_EDITS`, remove :data:`REMOVED_WAYS` and add the new cycleway
        :data:`NEW_WAY_NAME` (default True).
    destinations : bool, optional
        Add the new school :data:`SCHOOL` (default True).

    Returns
    -------
    EditSummary
        What :func:`pna_helpers.osmedit.edit_osm` changed.
    """
    from pna_helpers.osmedit import edit_osm

    kw: dict[str, Any] = {}
    if network:
        nodes = _way_nodes(src, {22565684, 76028718})
        kw.update(set_tags=TAG_EDITS, remove_ways=REMOVED_WAYS,
                  add_ways=[{"nodes": [nodes[22565684][-1], nodes[76028718][0]],
                             "tags": {"highway": "cycleway", "name": NEW_WAY_NAME}}])
    if destinations:
        kw["add_nodes"] = [SCHOOL]
    return edit_osm(src, dst, **kw)


def next_year_inputs(base: dict[str, Any], folder: Path, *, network: bool = True,
                     destinations: bool = True, population: bool = True,
                     boundary: bool = True) -> dict[str, Any]:
    """Inputs of the demo's next year in ``folder`` (each change can be left out).

    Parameters
    ----------
    base : dict
        The demo's run arguments (:func:`pna_engine.demo.prepare_demo_inputs`): ``osm``,
        ``population`` and ``boundary`` paths, and the rest, copied as is.
    folder : Path
        Where the changed files are written (created if needed).
    network, destinations : bool, optional
        Edit the OSM file (see :func:`edit_network_and_destinations`); default True.
    population : bool, optional
        Change a fixed random fifth of the population cells (``POP20`` x 2 + 30); default True.
    boundary : bool, optional
        Move the boundary 120 m east and 60 m south; default True.

    Returns
    -------
    dict
        ``base`` with the changed inputs' paths.
    """
    import geopandas as gpd
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    out = dict(base)
    if network or destinations:
        osm = folder / "next-year.osm.pbf"
        edit_network_and_destinations(Path(base["osm"]), osm, network, destinations)
        out["osm"] = str(osm)
    if population:
        pop = gpd.read_file(base["population"])
        n = len(pop)
        rng = np.random.default_rng(7)
        pick = rng.choice(n, size=max(1, n // 5), replace=False)
        pop.loc[pop.index[pick], "POP20"] = pop["POP20"].iloc[pick].to_numpy() * 2 + 30
        path = folder / "next-year-population.gpkg"
        pop.to_file(path, driver="GPKG", layer="population")
        out["population"] = str(path)
    if boundary:
        bnd = gpd.read_file(base["boundary"])
        utm = bnd.estimate_utm_crs()
        moved = bnd.to_crs(utm)
        moved["geometry"] = moved.geometry.translate(xoff=120.0, yoff=-60.0)
        path = folder / "next-year-boundary.geojson"
        moved.to_crs(4326).to_file(path, driver="GeoJSON")
        out["boundary"] = str(path)
    return out


def run(inputs: dict[str, Any], output: Path, **params: Any) -> Path:
    """One engine run (export + run.json) of ``inputs`` into ``output``.

    Offline, one worker, unless ``inputs`` or ``params`` say otherwise (``params`` win).

    Parameters
    ----------
    inputs : dict
        Run arguments, e.g. from :func:`next_year_inputs`; keys that are not
        :class:`~pna_engine.params.Params` fields are ignored.
    output : Path
        The output folder.
    **params : Any
        More ``Params`` fields (e.g. ``place``), overriding ``inputs``.

    Returns
    -------
    Path
        ``output``.
    """
    from pna_engine import pipeline
    from pna_engine.params import Params

    args = {k: v for k, v in inputs.items() if k in Params.__dataclass_fields__}
    # one dict: ``offline``/``workers`` in ``inputs`` or ``params`` override the defaults
    # (never "got multiple values for keyword argument"); ``output`` is always the argument
    pipeline.run(Params(**{"offline": True, "workers": 1, **args, **params,
                           "output": str(output)}))
    return output


def next_year_results(name: str = "Helsinki demo, next year") -> Any:
    """Results of the demo's next year (computed once under ``outputs/demo-results``).

    A finished run in ``outputs/demo-results/helsinki-demo-next-year`` is reused; otherwise
    the inputs are made (:func:`next_year_inputs`, under ``outputs/demo-inputs/next-year``)
    and the engine is run (seconds to minutes).

    Parameters
    ----------
    name : str, optional
        The place name (of the run, and shown).

    Returns
    -------
    Results
        As :func:`pna_helpers.results.load_results`.
    """
    import contextlib

    from pna_engine import demo
    from pna_engine.errors import InputError
    from pna_helpers.paths import outputs_dir
    from pna_helpers.results import load_results

    folder = outputs_dir() / "demo-results" / "helsinki-demo-next-year"
    with contextlib.suppress(InputError):
        res = load_results(folder, name=name)
        if res.run is not None:
            return res
    base = demo.prepare_demo_inputs(outputs_dir() / "demo-inputs")
    inputs = next_year_inputs(base, outputs_dir() / "demo-inputs" / "next-year")
    run(inputs, folder, place=name)
    return load_results(folder, name=name)
