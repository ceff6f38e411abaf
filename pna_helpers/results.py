"""Load BNA results - PNA's own or an official BNA export - into (Geo)DataFrames.

A results location is any of:

* a local folder holding the export files (``neighborhood_overall_scores.csv``, ...);
* a ``.zip`` of such a folder (e.g. the reference tool's ``bundle.zip``; files may sit in a
  sub-folder of the archive);
* an ``s3://bucket/prefix`` URI (downloaded once into ``outputs/cache/s3/``);
* a PNA job id (its results location is asked from the jobs API).

Every table keeps the reference tool's column names (BNA-METHOD.md §12.3); geometries are in
EPSG:4326. PNA folders also hold ``status.json`` and ``run.json``: a folder whose run has not
succeeded is refused with a clear error. Official exports have neither file.

>>> res = load_results("outputs/results/helsinki-demo")      # doctest: +SKIP
>>> res.scores()["overall_score"]                            # doctest: +SKIP
85.89
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pna_engine import remote
from pna_engine.errors import InputError
from pna_engine.status import effective as effective_status
from pna_helpers.paths import outputs_dir

SCORES_FILE = "neighborhood_overall_scores.csv"

#: Destination categories with an export file ``neighborhood_<name>.geojson``.
DESTINATION_CATEGORIES: tuple[str, ...] = (
    "schools", "colleges", "universities", "doctors", "dentists", "hospitals", "pharmacies",
    "supermarkets", "social_services", "retail", "parks", "community_centers", "transit",
)

#: City-level scores (``score_id`` of ``neighborhood_overall_scores.csv``) with their label,
#: their main category and what they mean. Main categories have ``main=True``.
SCORE_INFO: dict[str, dict[str, Any]] = {
    "overall_score": dict(label="Overall", main=True, group="overall",
                          meaning="Population-weighted mean of the block scores: how well the "
                                  "low-stress network connects people to what they need (0-100)."),
    "people": dict(label="People", main=True, group="people",
                   meaning="Share of the people reachable by bike who are reachable on low-stress "
                           "streets."),
    "opportunity": dict(label="Opportunity", main=True, group="opportunity",
                        meaning="Low-stress access to jobs and education (schools, colleges, "
                                "universities)."),
    "opportunity_employment": dict(label="Employment", main=False, group="opportunity"),
    "opportunity_k12_education": dict(label="K-12 schools", main=False, group="opportunity"),
    "opportunity_technical_vocational_college": dict(label="Technical/vocational colleges",
                                                     main=False, group="opportunity"),
    "opportunity_higher_education": dict(label="Higher education", main=False,
                                         group="opportunity"),
    "core_services": dict(label="Core services", main=True, group="core_services",
                          meaning="Low-stress access to doctors, dentists, hospitals, pharmacies, "
                                  "grocery stores and social services."),
    "core_services_doctors": dict(label="Doctors", main=False, group="core_services"),
    "core_services_dentists": dict(label="Dentists", main=False, group="core_services"),
    "core_services_hospitals": dict(label="Hospitals", main=False, group="core_services"),
    "core_services_pharmacies": dict(label="Pharmacies", main=False, group="core_services"),
    "core_services_grocery": dict(label="Grocery", main=False, group="core_services"),
    "core_services_social_services": dict(label="Social services", main=False,
                                          group="core_services"),
    "retail": dict(label="Retail", main=True, group="retail",
                   meaning="Low-stress access to shops and commercial areas."),
    "recreation": dict(label="Recreation", main=True, group="recreation",
                       meaning="Low-stress access to parks, trails and community centres."),
    "recreation_parks": dict(label="Parks", main=False, group="recreation"),
    "recreation_trails": dict(label="Trails", main=False, group="recreation"),
    "recreation_community_centers": dict(label="Community centres", main=False,
                                         group="recreation"),
    "transit": dict(label="Transit", main=True, group="transit",
                    meaning="Low-stress access to transit stations."),
}
MAIN_SCORES: tuple[str, ...] = ("overall_score", "people", "opportunity", "core_services",
                                "retail", "recreation", "transit")

#: Block columns holding the block's 0-100 overall and 0-1 category scores.
BLOCK_SCORE_COLUMNS: dict[str, str] = {
    "overall_score": "Overall (0-100)",
    "pop_score": "People (0-1)",
    "opportunity_score": "Opportunity (0-1)",
    "core_services_score": "Core services (0-1)",
    "retail_score": "Retail (0-1)",
    "recreation_score": "Recreation (0-1)",
    "transit_score": "Transit (0-1)",
}

# Full column names in export order: used to undo the 10-character truncation of shapefiles.
_WAYS_COLUMNS = (
    "road_id", "osm_id", "tag_id", "name", "intersection_from", "intersection_to", "oneway",
    "tdg_id", "functional_class", "path_id", "speed_limit", "one_way_car", "one_way",
    "width_ft", "ft_bike_infra", "ft_bike_infra_width", "tf_bike_infra", "tf_bike_infra_width",
    "ft_lanes", "tf_lanes", "ft_cross_lanes", "tf_cross_lanes", "twltl_cross_lanes", "ft_park",
    "tf_park", "ft_seg_stress", "ft_int_stress", "tf_seg_stress", "tf_int_stress", "xwalk",
    "job_id",
)
_ACCESS = ("pop", "emp", "schools", "universities", "colleges", "doctors", "dentists",
           "hospitals", "pharmacies", "retail", "supermarkets", "social_services", "parks",
           "trails", "community_centers", "transit")
_BLOCKS_COLUMNS = (
    "gid", "geoid20", "blockid10", "pop20", "housing20", "aland20", "awater20", "col", "row",
    "road_ids",
    *(f"{a}_{s}" for a in _ACCESS for s in ("low_stress", "high_stress", "score")),
    "overall_score", "reachable_blocks", "opportunity_score", "core_services_score",
    "recreation_score", "job_id",
)


def require_block_column(blocks: Any, column: str, needed_for: str = "",
                         hint: str | None = None) -> None:
    """Raise one clear :class:`InputError` when the census blocks have no ``column``.

    Official BNA exports come in variants whose ``neighborhood_census_blocks`` lack some
    columns PNA writes; a function that needs one says which, instead of a ``KeyError``.

    Parameters
    ----------
    blocks : Results or geopandas.GeoDataFrame
        A result set (its :attr:`Results.blocks` are checked, and its name is in the message)
        or a blocks table.
    column : str
        The column needed, e.g. ``geoid20`` or ``overall_score``.
    needed_for : str, optional
        What needs it (``"the block score map"``), named in the message.
    hint : str, optional
        What to do instead; default: for a score column or an unknown name (a typo), the
        block score columns there to choose from; for another export column (``geoid20``,
        ``pop20``, ...), use results whose blocks have it.

    Raises
    ------
    InputError
        ``column`` is missing; the one-line message names it, where it is missing, the
        columns that are there (the first few) and what to do.
    """
    if isinstance(blocks, Results):
        where, table = f"the census blocks of {blocks.name}", blocks.blocks
    else:
        where, table = "the census blocks", blocks
    if column in table.columns:
        return
    geom = getattr(getattr(table, "geometry", None), "name", None)
    have = [str(c) for c in table.columns if c != geom]
    shown = ", ".join(have[:8]) + (f" and {len(have) - 8} more" if len(have) > 8 else "")
    why = f" (needed for {needed_for})" if needed_for else ""
    scores = [c for c in BLOCK_SCORE_COLUMNS if c in table.columns]
    # a score column (or a name no export has, a typo) is a choice: list the ones there
    choice = column in BLOCK_SCORE_COLUMNS or column not in _BLOCKS_COLUMNS
    todo = hint or (f"choose one of {', '.join(scores)}" if choice and scores else
                    f"use results whose neighborhood_census_blocks has {column!r} (a PNA run "
                    "has every block column)")
    raise InputError(f"{where} have no column {column!r}{why}; they have "
                     f"{shown or 'no columns'}; {todo}")


def _shapefile_names(full: tuple[str, ...]) -> dict[str, str]:
    """Map GDAL's truncated shapefile field names back to full names (keys upper case).

    GDAL cuts names to 10 characters and renames a clash: the reference export (PostGIS
    ogr2ogr) uses the first 7 characters + ``_NN`` (``INTERSECTI``, ``INTERSE_01``), current
    GDAL the first 8 + ``_N`` (``intersecti``, ``intersec_1``). Replaying both on the known
    export order inverts them.
    """
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for name in full:
        t = name[:10].upper()
        n = seen.get(t, 0)
        seen[t] = n + 1
        if n == 0:
            out.setdefault(t, name)
        else:
            out.setdefault(f"{name[:7].upper()}_{n:02d}", name)
            out.setdefault(f"{name[:8].upper()}_{n}", name)
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- locating
def _find_export_root(folder: Path) -> Path | None:
    """The folder holding ``neighborhood_overall_scores.csv``: ``folder`` or one below it."""
    if (folder / SCORES_FILE).exists():
        return folder
    hits = sorted(folder.rglob(SCORES_FILE), key=lambda p: len(p.parts))
    return hits[0].parent if hits else None


def _extract_zip(path: Path) -> Path:
    """Unpack an export archive once into ``outputs/cache/zips/<hash>``."""
    st = path.stat()
    dest = outputs_dir() / "cache" / "zips" / _sha(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}")
    marker = dest / ".complete"
    if not marker.exists():
        try:
            with zipfile.ZipFile(path) as zf:
                zf.extractall(dest)
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path} is not a readable zip archive ({exc}); give the export "
                             "folder or a valid .zip of it") from exc
        # nested zipped shapefiles of the original BNA (neighborhood_ways.zip, ...)
        for inner in dest.rglob("*.zip"):
            with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(inner) as zf:
                zf.extractall(inner.parent)
        marker.write_text("ok")
    return dest


def _download_s3(uri: str) -> Path:
    """Download every object under ``s3://bucket/prefix`` into ``outputs/cache/s3/``."""
    bucket, prefix = remote.split_s3(uri)
    prefix = prefix.strip("/")
    dest = outputs_dir() / "cache" / "s3" / bucket / (prefix or "_root")
    found = 0
    for rel, size in remote.list_files(uri):
        target = dest / rel
        found += 1
        if target.exists() and target.stat().st_size == size and rel != "status.json":
            continue
        remote.fetch(remote.join(uri, rel), target.parent, what="the result file")
    if not found:
        raise InputError(f"no results under {uri}: check the URI (the job may not have "
                         "uploaded anything yet)")
    return dest


def _resolve_job(job_id: str) -> tuple[str, str | None]:
    try:
        from pna_helpers import jobs
    except ImportError as exc:  # pragma: no cover - jobs API is part of the package
        raise InputError(f"{job_id!r} is neither a results folder nor a known job") from exc
    client = jobs.get_client()
    try:
        loc = client.results_location(job_id)
        place = client.get(job_id).place
    except Exception as exc:
        raise InputError(f"{job_id!r} is not a results folder, .zip, s3:// URI or job id of the "
                         f"{getattr(client, 'backend', 'default')} backend ({exc})") from exc
    if not loc:
        raise InputError(f"job {job_id} has no results location yet")
    return str(loc), place


def _check_status(root: Path) -> dict[str, Any] | None:
    status_path = root / "status.json"
    if not status_path.exists():
        return None
    try:
        status = json.loads(status_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{status_path} is unreadable ({exc}): the run may still be writing; "
                         "retry or re-run the analysis") from exc
    status = effective_status(status)  # a running run whose process died: interrupted
    state = status.get("state")
    if status.get("writer_dead"):
        raise InputError(f"results in {root} are incomplete - the run was {status['error']}")
    if state != "succeeded":
        detail = f" in phase {status.get('phase')}" if status.get("phase") else ""
        err = f": {status['error']}" if status.get("error") else ""
        todo = ("wait for it to finish" if state in ("running", "queued")
                else "re-run it (the run has ended; its log says why)")
        raise InputError(f"results in {root} are incomplete - the run is {state}{detail}{err}; "
                         f"{todo}")
    return status


# --------------------------------------------------------------------------- results
@dataclass
class Results:
    """One result set. Tables are read lazily on first use and cached.

    Attributes
    ----------
    location : str
        What the user gave (folder, zip, s3 URI or job id).
    folder : pathlib.Path
        Local folder holding the export files.
    source : str
        ``"pna"`` (has ``run.json``/``status.json``) or ``"official"`` (a BNA export).
    name : str
        Place name shown in tables, maps and reports.
    """

    location: str
    folder: Path
    source: str
    name: str
    run: dict[str, Any] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---- files
    def path(self, stem: str) -> Path | None:
        """The file of table ``stem`` (e.g. ``neighborhood_ways``) in the best format, or None.

        Parameters
        ----------
        stem : str
            File name without extension.

        Returns
        -------
        pathlib.Path or None
            The first of ``.geojson``, ``.csv``, ``.csv.gz``, ``.csv.zip``, ``.shp`` that
            exists in :attr:`folder`; None when there is none.
        """
        for ext in (".geojson", ".csv", ".csv.gz", ".csv.zip", ".shp"):
            p = self.folder / f"{stem}{ext}"
            if p.exists():
                return p
        return None

    def _read_geo(self, stem: str, full_names: tuple[str, ...] = ()) -> Any:
        import geopandas as gpd

        p = self.path(stem)
        if p is None:
            return None
        if stem in self._cache:
            return self._cache[stem]
        gdf = gpd.read_file(p)
        if p.suffix == ".shp":
            names = _shapefile_names(full_names) if full_names else {}
            gdf = gdf.rename(columns={c: names.get(c.upper(), c.lower()) for c in gdf.columns
                                      if c != "geometry"})
        if gdf.crs is None:
            gdf = gdf.set_crs(4326)
        elif gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        self._cache[stem] = gdf
        return gdf

    def _read_csv(self, stem: str) -> Any:
        import pandas as pd

        if stem in self._cache:
            return self._cache[stem]
        p = self.path(stem)
        if p is None:
            return None
        df = pd.read_csv(p)
        self._cache[stem] = df
        return df

    # ---- tables
    @property
    def overall_scores(self) -> Any:
        """``neighborhood_overall_scores.csv`` as read (id, score_id, score_original, ...).

        Returns
        -------
        pandas.DataFrame
            The file's rows unchanged (cached).
        """
        return self._read_csv("neighborhood_overall_scores")

    @property
    def score_inputs(self) -> Any:
        """``neighborhood_score_inputs.csv`` or None.

        Returns
        -------
        pandas.DataFrame or None
            The file as read (cached), or None when the export has none.
        """
        return self._read_csv("neighborhood_score_inputs")

    @property
    def mileage(self) -> Any:
        """``mileage.csv`` (feature_type, total_mileage) or None (original BNA).

        Returns
        -------
        pandas.DataFrame or None
            The file as read (cached), or None when the export has none.
        """
        return self._read_csv("mileage")

    @property
    def speed_limits(self) -> Any:
        """``residential_speed_limit.csv`` or None.

        Returns
        -------
        pandas.DataFrame or None
            The file as read (cached), or None when the export has none.
        """
        return self._read_csv("residential_speed_limit")

    @property
    def ways(self) -> Any:
        """Road segments with their stress attributes (GeoDataFrame, EPSG:4326).

        Shapefile field names cut to 10 characters are restored to the full export names.

        Returns
        -------
        geopandas.GeoDataFrame
            ``neighborhood_ways`` (cached).

        Raises
        ------
        InputError
            The export has no ``neighborhood_ways`` (.geojson or .shp).
        """
        gdf = self._read_geo("neighborhood_ways", _WAYS_COLUMNS)
        if gdf is None:
            raise InputError(f"{self.folder} has no neighborhood_ways (.geojson or .shp)")
        return gdf

    @property
    def blocks(self) -> Any:
        """Census blocks with access counts and scores (GeoDataFrame, EPSG:4326).

        ``geoid20`` is text; an export with only ``blockid10`` has it renamed to ``geoid20``.

        Returns
        -------
        geopandas.GeoDataFrame
            ``neighborhood_census_blocks`` (cached).

        Raises
        ------
        InputError
            The export has no ``neighborhood_census_blocks`` (.geojson or .shp).
        """
        gdf = self._read_geo("neighborhood_census_blocks", _BLOCKS_COLUMNS)
        if gdf is None:
            raise InputError(f"{self.folder} has no neighborhood_census_blocks (.geojson or .shp)")
        if "geoid20" not in gdf.columns and "blockid10" in gdf.columns:
            gdf = gdf.rename(columns={"blockid10": "geoid20"})
        if "geoid20" in gdf.columns:
            gdf["geoid20"] = gdf["geoid20"].astype(str)
        self._cache["neighborhood_census_blocks"] = gdf
        return gdf

    @property
    def intersections(self) -> Any:
        """``neighborhood_ways_intersections`` or None.

        Returns
        -------
        geopandas.GeoDataFrame or None
            The intersections in EPSG:4326 (cached), or None when the export has none.
        """
        return self._read_geo("neighborhood_ways_intersections")

    @property
    def boundary(self) -> Any:
        """The place boundary, or None when the export has no boundary file.

        Returns
        -------
        geopandas.GeoDataFrame or None
            ``neighborhood_boundary`` in EPSG:4326 (cached), or None.
        """
        return self._read_geo("neighborhood_boundary")

    def destinations(self, category: str) -> Any:
        """Destinations of one category (see :data:`DESTINATION_CATEGORIES`), or None.

        Parameters
        ----------
        category : str
            One of :data:`DESTINATION_CATEGORIES` (e.g. ``"schools"``, ``"parks"``).

        Returns
        -------
        geopandas.GeoDataFrame or None
            ``neighborhood_<category>`` in EPSG:4326 (cached), or None when the export has no
            such file.

        Raises
        ------
        InputError
            ``category`` is not a known destination category.
        """
        if category not in DESTINATION_CATEGORIES:
            raise InputError(f"unknown destination category {category!r}; one of "
                             f"{', '.join(DESTINATION_CATEGORIES)}")
        return self._read_geo(f"neighborhood_{category}")

    def all_destinations(self) -> dict[str, Any]:
        """Every non-empty destination table, by category.

        Returns
        -------
        dict of str to geopandas.GeoDataFrame
            Category -> destinations, in :data:`DESTINATION_CATEGORIES` order; categories
            with no file or no rows are left out.
        """
        out = {}
        for cat in DESTINATION_CATEGORIES:
            gdf = self.destinations(cat)
            if gdf is not None and len(gdf):
                out[cat] = gdf
        return out

    def connected_pairs(self) -> Any:
        """``neighborhood_connected_census_blocks`` (may be ``.csv.gz``); can be large.

        Read from disk on every call (not cached).

        Returns
        -------
        pandas.DataFrame
            One row per connected block pair; block ids as text, ``low_stress`` and
            ``high_stress`` as booleans.

        Raises
        ------
        InputError
            The export has no ``neighborhood_connected_census_blocks`` file.
        """
        import pandas as pd

        p = self.path("neighborhood_connected_census_blocks")
        if p is None:
            raise InputError(f"{self.folder} has no neighborhood_connected_census_blocks.csv")
        df = pd.read_csv(p, dtype={"source_blockid20": str, "target_blockid20": str,
                                   "source_blockid10": str, "target_blockid10": str})
        for col in ("low_stress", "high_stress"):
            if col in df.columns and df[col].dtype != bool:
                df[col] = df[col].astype(str).str.lower().isin(["t", "true", "1"])
        return df

    @property
    def iso3(self) -> str | None:
        """ISO 3166-1 alpha-3 code of the run's country, by the engine's rule
        (:func:`pna_engine.params.country_iso3`, as :attr:`Params.iso3`; a run.json without a
        country ran with the default, the United States).

        Returns
        -------
        str or None
            ``"USA"``, ``"FIN"``, ...; None for an export without run.json parameters (an
            official BNA export) or a country the engine does not know.
        """
        from pna_engine.params import DEFAULT_COUNTRY, country_iso3

        params = (self.run or {}).get("parameters")
        if not isinstance(params, dict):
            return None
        return country_iso3(str(params.get("country") or DEFAULT_COUNTRY))

    @property
    def is_us(self) -> bool | None:
        """Whether the run was in US mode (census blocks, LODES jobs), as :attr:`Params.is_us`.

        Returns
        -------
        bool or None
            None when the results do not say (no run.json parameters: an official export).
        """
        if not isinstance((self.run or {}).get("parameters"), dict):
            return None
        return self.iso3 == "USA"

    @property
    def methodology(self) -> str | None:
        """Methodology profile of a PNA run (``reference``, ``corrected`` or ``custom (...)``,
        from run.json); None for an export without run.json.

        Returns
        -------
        str or None
            The profile; for runs from before profiles existed, derived from their
            ``quirks`` switches.
        """
        run = self.run or {}
        if run.get("methodology"):
            return str(run["methodology"])
        if "parameters" in run:  # runs from before profiles existed: from the switches
            from pna_engine.params import methodology_label

            return methodology_label((run["parameters"] or {}).get("quirks"))
        return None

    # ---- summaries
    def scores(self) -> Any:
        """City scores: ``score_id`` -> ``score_normalized`` (0-100; miles for mileage rows,
        people for ``population_total``), as a float Series.

        Returns
        -------
        pandas.Series
            Indexed by ``score_id``, named after the place; ``score_original`` where
            ``score_normalized`` is missing.
        """
        df = self.overall_scores
        vals = df["score_normalized"].where(df["score_normalized"].notna(), df["score_original"])
        return vals.astype(float).set_axis(df["score_id"].astype(str)).rename(self.name)

    def summary(self) -> Any:
        """Main category scores with their meaning (a DataFrame for display).

        Returns
        -------
        pandas.DataFrame
            Indexed by ``category`` (label), columns ``score`` (2 decimals) and ``meaning``;
            population and low/high-stress miles follow when the export has them.
        """
        import pandas as pd

        s = self.scores()
        rows = []
        for sid in MAIN_SCORES:
            info = SCORE_INFO[sid]
            rows.append({"category": info["label"],
                         "score": round(float(s.get(sid, float("nan"))), 2),
                         "meaning": info.get("meaning", "")})
        for sid, label in (("population_total", "Population"),
                           ("total_miles_low_stress", "Low-stress miles"),
                           ("total_miles_high_stress", "High-stress miles")):
            if sid in s.index:
                v = float(self.overall_scores.loc[
                    self.overall_scores["score_id"] == sid, "score_original"].iloc[0])
                rows.append({"category": label, "score": round(v, 2),
                             "meaning": "total of the place"})
        return pd.DataFrame(rows).set_index("category")

    def mileage_by_stress(self) -> Any:
        """Network length (miles) by functional class and segment stress (``low``/``high``).

        Each direction counts half the segment length (a two-way road counts once), using
        the segment stress ``ft_seg_stress``/``tf_seg_stress`` as the mileage rows of §11.5.

        Returns
        -------
        pandas.DataFrame
            Columns ``functional_class``, ``stress`` and ``miles``; directions without a
            segment stress are left out.

        Raises
        ------
        InputError
            The export has no ``neighborhood_ways``.
        """
        import numpy as np
        import pandas as pd

        ways = self.ways
        if not len(ways):
            return pd.DataFrame(columns=["functional_class", "stress", "miles"])
        length_mi = ways.geometry.to_crs(ways.estimate_utm_crs()).length.to_numpy() / 1609.34
        parts = []
        for d in ("ft", "tf"):
            st = pd.to_numeric(ways[f"{d}_seg_stress"], errors="coerce").to_numpy(dtype=float)
            stress = np.where(st == 1, "low", np.where(st > 1, "high", ""))
            parts.append(pd.DataFrame({
                "functional_class": ways["functional_class"].astype(str).to_numpy(),
                "stress": stress, "miles": length_mi / 2}))
        df = pd.concat(parts)
        df = df[df["stress"] != ""]
        return df.groupby(["functional_class", "stress"], as_index=False)["miles"].sum()


def load_results(location: str | Path, name: str | None = None) -> Results:
    """Load a result set.

    Parameters
    ----------
    location : str or pathlib.Path
        Local export folder, ``.zip`` of one, ``s3://bucket/prefix`` or a PNA job id; a
        :class:`Results` is returned as it is.
    name : str, optional
        Place name to show; default: the place of the run (``run.json``), the city folder of
        the official layout, the ``name`` of an official export's boundary, else the folder name.

    Returns
    -------
    Results

    Raises
    ------
    InputError
        The location does not exist, is not a BNA export, or its run has not succeeded.
    """
    if isinstance(location, Results):
        return location
    loc = str(location)
    if remote.scheme_of(loc) == "s3":
        folder = _download_s3(loc)
    else:
        p = Path(loc).expanduser()
        if p.is_dir():
            folder = p
        elif p.is_file() and p.suffix.lower() == ".zip":
            folder = _extract_zip(p)
        elif p.exists():
            raise InputError(f"{p} is neither a results folder nor a .zip of one")
        elif "/" in loc or loc.endswith(".zip"):
            raise InputError(f"results location {loc} does not exist; give an export folder, "
                             "a .zip, an s3:// URI or a job id")
        else:
            job_loc, place = _resolve_job(loc)
            return load_results(job_loc, name=name or place)
    # status first: a running job has status.json but no scores yet
    status = _check_status(folder)
    root = _find_export_root(folder)
    if root is None:
        raise InputError(f"{loc} holds no {SCORES_FILE}: it is not a BNA results folder"
                         + (" (the run may not have exported yet)" if status else ""))
    if root != folder:
        status = _check_status(root) or status
    run = None
    if (root / "run.json").exists():
        with contextlib.suppress(OSError, ValueError):
            run = json.loads((root / "run.json").read_text())
    source = "pna" if (status is not None or run is not None) else "official"
    if name is None:
        name = _place_name(root, run)
    return Results(location=loc, folder=root, source=source, name=name, run=run)


@functools.lru_cache(maxsize=1)
def _yy_mm() -> re.Pattern[str]:
    return re.compile(r"^\d\d\.\d\d(\.\d+)?$")


def _place_name(root: Path, run: dict[str, Any] | None) -> str:
    if run:
        for key in ("place", "name"):
            if run.get(key):
                return str(run[key])
        params = run.get("parameters") or {}
        if params.get("place"):
            return str(params["place"])
    # official layout: <country>/<region>/<city>/<YY.MM>
    if _yy_mm().match(root.name):
        return root.parent.name
    # a local job's folder (outputs/results/<job id>): the place of that job
    if root.parent.name == "results" and root.parent.parent == outputs_dir():
        with contextlib.suppress(Exception):
            from pna_helpers import jobs

            return str(jobs.get_client("local").get(root.name).place)
    # an official export elsewhere: its boundary usually names the place; a folder name such
    # as "reference" or "export" does not
    return _boundary_name(root) or root.name


def _boundary_name(root: Path) -> str | None:
    """The one place name in the ``name`` attribute of the export's boundary, or None."""
    for ext in (".geojson", ".shp"):
        p = root / f"neighborhood_boundary{ext}"
        if not p.exists():
            continue
        try:
            import pyogrio

            df = pyogrio.read_dataframe(p, read_geometry=False)
        except Exception:  # an unreadable boundary: the folder name will do
            return None
        col = next((c for c in df.columns if str(c).lower() == "name"), None)
        if col is None:
            return None
        names = {str(v).strip() for v in df[col] if isinstance(v, str) and v.strip()}
        return names.pop() if len(names) == 1 else None
    return None


def demo_results(name: str | None = None, **overrides: Any) -> Results:
    """The Helsinki demo results, computed once (offline, seconds) and reused.

    The engine runs in-process on :func:`pna_engine.demo.prepare_demo_inputs` into
    ``outputs/demo-results/helsinki-demo[-<variant>]``. Keyword arguments override run
    parameters (e.g. ``city_speed_limit=20``) and make a separate variant.

    Parameters
    ----------
    name : str, optional
        Place name to show (default: the demo place, followed by the overrides).
    **overrides : Any
        Run parameters of :class:`pna_engine.params.Params` (not ``output`` or
        ``offline``: the demo sets them). Without overrides, the newest succeeded local job
        of the demo place on the same demo inputs (``pna demo``) is reused when there is one.

    Returns
    -------
    Results
        The demo result set (computed on the first call for each variant).

    Raises
    ------
    InputError
        An override is not a run parameter (a typo such as ``city_speed_limt``), is one the
        demo sets itself, or has a bad value.
    """
    import difflib

    from pna_engine import demo, pipeline
    from pna_engine.params import Params

    known = set(Params.__dataclass_fields__)
    for key in sorted(overrides):
        if key in ("output", "offline"):
            raise InputError(f"demo_results() sets {key!r} itself: leave it out (the demo runs "
                             "offline into outputs/demo-results/)")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise InputError(f"demo_results() got an unknown run parameter {key!r}"
                             + (f" (did you mean {close[0]!r}?)" if close else "")
                             + "; give fields of pna_engine.params.Params, e.g. "
                               "city_speed_limit=20")
    inputs = demo.prepare_demo_inputs(outputs_dir() / "demo-inputs")
    inputs = dict(inputs)
    place = str(inputs.pop("place", "Helsinki demo"))
    inputs.update(overrides)
    variant = "-".join(f"{k}-{v}" for k, v in sorted(overrides.items()))
    folder = outputs_dir() / "demo-results" / ("helsinki-demo" + (f"-{variant}" if variant else ""))
    label = name or (place + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
                              + ")" if overrides else ""))
    if not overrides:  # the newest successful `pna demo` job, if any, is the demo
        res = _latest_demo_job(place, inputs, label)
        if res is not None:
            return res
    with contextlib.suppress(InputError):
        res = load_results(folder, name=label)
        if res.run is not None:
            return res
    params = Params(output=str(folder), offline=True,
                    **{k: v for k, v in inputs.items() if k in known})
    pipeline.run(params)
    return load_results(folder, name=label)


def _latest_demo_job(place: str, inputs: dict[str, Any], label: str) -> Results | None:
    """Results of the newest succeeded local job of the demo place run on the demo inputs."""
    try:
        from pna_helpers import jobs

        client = jobs.get_client("local")
        for job in client.list(status="SUCCEEDED", place=place):
            res = load_results(client.results_location(job.job_id), name=label)
            params = (res.run or {}).get("parameters") or {}
            same = all(Path(str(params.get(k) or "")).name == Path(str(inputs.get(k) or "")).name
                       for k in ("boundary", "osm", "population"))
            if same and params.get("city_speed_limit") == inputs.get("city_speed_limit"):
                return res
    except Exception:  # no job store yet, a removed folder, ...: compute the demo instead
        return None
    return None


def results_or_demo(location: str | Path | None, name: str | None = None) -> Results:
    """:func:`load_results` of ``location``, or the Helsinki demo when it is empty.

    Parameters
    ----------
    location : str or pathlib.Path or None
        A location accepted by :func:`load_results`; None or blank text means
        :func:`demo_results`.
    name : str, optional
        Place name to show (default: from the results).

    Returns
    -------
    Results

    Raises
    ------
    InputError
        ``location`` cannot be loaded (see :func:`load_results`).
    """
    if location is None or str(location).strip() == "":
        return demo_results(name=name or None)
    return load_results(location, name=name or None)
