"""A campaign's results as one table, one row per place, and its views (ranking, score
distributions, map of places coloured by overall score).

Columns follow PeopleForBikes' published city-ratings tables (``city-ratings-v*.csv``):
``bna_<score id>`` for every score of ``neighborhood_overall_scores.csv`` (``bna_people``,
``bna_opportunity_employment``, ..., ``bna_overall_score``), ``bna_total_low_stress_miles``,
``bna_total_high_stress_miles``, ``census_fips_code`` and ``population``; plus the place, its
job, status and failure reason, the engine's counts (``blocks``, ``ways``, ...), run time and
engine version. Places that did not succeed keep their row with empty scores.
"""

from __future__ import annotations

import html as _html
import io
import json
from pathlib import Path
from typing import Any

from pna_engine.atomic import atomic_path
from pna_engine.errors import InputError

#: Score ids of the export -> table column (PeopleForBikes' names).
#: Fill opacity of the places on the campaign map (the legend's swatches use it too).
PLACE_OPACITY = 0.75

MILEAGE_COLUMNS = {"total_miles_low_stress": "bna_total_low_stress_miles",
                   "total_miles_high_stress": "bna_total_high_stress_miles"}
COUNT_KEYS = ("blocks", "ways", "intersections", "network_links", "connected_pairs",
              "low_stress_pairs")


def score_columns() -> list[str]:
    """``bna_<score id>`` of every city score, in the export's order."""
    from pna_helpers.results import SCORE_INFO

    return [f"bna_{sid}" for sid in SCORE_INFO]


def _read(location: str, name: str, client: Any) -> bytes | None:
    """One file of a results location (local folder or ``s3://`` prefix), or None."""
    from pna_engine.remote import scheme_of, split_s3

    if scheme_of(location) == "s3":
        bucket, prefix = split_s3(location)
        try:
            return client.aws.call("s3", "get_object", Bucket=bucket,
                                   Key=prefix.rstrip("/") + "/" + name)["Body"].read()
        except Exception:
            return None
    p = Path(location) / name
    try:
        return p.read_bytes()
    except OSError:
        return None


def place_row(place: dict[str, Any], job: dict[str, Any], client: Any) -> dict[str, Any]:
    """The table row of one place from its job and (if it succeeded) its results."""
    import pandas as pd

    req = place.get("request") or {}
    row: dict[str, Any] = {
        "place": place["place"], "state": req.get("state"), "country": req.get("country"),
        "census_fips_code": req.get("city_fips"), "job_id": place.get("job_id"),
        "status": job.get("status"), "reason": job.get("reason"),
        "attempts": len(place.get("attempts") or []),
    }
    for c in score_columns():
        row[c] = None
    row.update({c: None for c in MILEAGE_COLUMNS.values()})
    row.update(population=None, run_time_s=None, engine_version=None,
               **{c: None for c in COUNT_KEYS}, results=job.get("results_uri"))
    if job.get("status") != "SUCCEEDED" or not job.get("results_uri"):
        return row
    loc = str(job["results_uri"])
    scores = _read(loc, "neighborhood_overall_scores.csv", client)
    if scores is not None:
        df = pd.read_csv(io.BytesIO(scores))
        for _, r in df.iterrows():
            sid = str(r["score_id"])
            if sid in MILEAGE_COLUMNS:
                row[MILEAGE_COLUMNS[sid]] = float(r["score_original"])
            elif sid == "population_total":
                row["population"] = float(r["score_original"])
            else:
                v = r["score_normalized"]
                row[f"bna_{sid}"] = None if pd.isna(v) else float(v)
    run = _read(loc, "run.json", client)
    if run is not None:
        info = json.loads(run)
        row["engine_version"] = info.get("engine_version")
        row["run_time_s"] = (info.get("timings_s") or {}).get("total")
        counts = info.get("counts") or {}
        for c in COUNT_KEYS:
            row[c] = counts.get(c)
        if row["population"] is None:
            row["population"] = counts.get("population")
    return row


def results_table(campaign: Any) -> Any:
    """A DataFrame, one row per place (see the module docstring), ranked by overall score."""
    import pandas as pd

    rows = campaign.rows()
    out = [place_row(p, rows.get(p["job_id"]) or {}, campaign.client)
           for p in campaign.places]
    df = pd.DataFrame(out)
    df["rank"] = df["bna_overall_score"].rank(ascending=False, method="min").astype("Int64")
    return df


def place_geometries(campaign: Any, table: Any) -> Any:
    """Place polygons (EPSG:4326) for the table: the run's ``neighborhood_boundary.geojson``,
    else the request's boundary file."""
    import geopandas as gpd
    import shapely

    geoms = []
    for p, (_, r) in zip(campaign.places, table.iterrows()):
        g = None
        data = _read(str(r["results"]), "neighborhood_boundary.geojson", campaign.client) \
            if isinstance(r.get("results"), str) and r.get("status") == "SUCCEEDED" else None
        try:
            if data is not None:
                g = gpd.read_file(io.BytesIO(data)).to_crs(4326).geometry.union_all()
            else:
                b = (p.get("request") or {}).get("boundary")
                if b and not str(b).startswith(("s3://", "http")) and Path(b).exists():
                    gb = gpd.read_file(b)
                    g = (gb.set_crs(4326) if gb.crs is None else gb).to_crs(4326) \
                        .geometry.union_all()
        except Exception:
            g = None
        geoms.append(g if g is not None else shapely.Polygon())
    return gpd.GeoDataFrame(table.copy(), geometry=geoms, crs=4326)


def write_table(campaign: Any, out: str | Path, table: Any = None) -> Path:
    """Write the results table as ``.csv``, ``.parquet`` or ``.gpkg`` (place polygons),
    atomically."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".gpkg"):
        raise InputError(f"results file {out}: use a .csv, .parquet or .gpkg name")
    df = results_table(campaign) if table is None else table
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            gdf = place_geometries(campaign, df)
            gdf.to_file(tmp, driver="GPKG", layer="places")
    return out


# --------------------------------------------------------------------------- views
def ranking(table: Any, top: int | None = None) -> Any:
    """Places by overall score, best first (failed places last, without a rank)."""
    cols = ["rank", "place", "bna_overall_score", "bna_people", "bna_opportunity",
            "bna_core_services", "bna_retail", "bna_recreation", "bna_transit", "population",
            "status"]
    df = table.sort_values(["bna_overall_score", "place"], ascending=[False, True],
                           na_position="last")[[c for c in cols if c in table.columns]]
    return df.head(top) if top else df


def score_distributions(table: Any) -> Any:
    """Box plots of the overall and main category scores over the places (a Figure)."""
    from pna_helpers.charts import _plt

    plt = _plt()
    cols = [c for c in ("bna_overall_score", "bna_people", "bna_opportunity",
                        "bna_core_services", "bna_retail", "bna_recreation", "bna_transit")
            if c in table.columns]
    data = [table[c].dropna().astype(float).to_numpy() for c in cols]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(cols) + 1),
                  [c.removeprefix("bna_").replace("_", " ") for c in cols], rotation=20)
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(-2, 102)
    n = int(table["bna_overall_score"].notna().sum())
    ax.set_title(f"Score distributions over {n} places")
    fig.tight_layout()
    return fig


def ranking_chart(table: Any, top: int = 30) -> Any:
    """Horizontal bars of the best ``top`` places by overall score (a Figure)."""
    from pna_helpers.charts import _plt

    plt = _plt()
    df = ranking(table).dropna(subset=["bna_overall_score"]).head(top)
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(3, len(df)) + 1))
    ax.barh(df["place"].astype(str)[::-1], df["bna_overall_score"][::-1], color="#31a354")
    ax.set_xlim(0, 100)
    ax.set_xlabel("overall BNA score")
    ax.set_title("Ranking by overall score")
    fig.tight_layout()
    return fig


def places_map(campaign: Any, table: Any = None) -> Any:
    """An offline map of the places coloured by overall score (grey: no score), with a
    legend; tooltips show the (escaped) place name, status and main scores."""
    import folium

    from pna_helpers import maps

    df = results_table(campaign) if table is None else table
    gdf = place_geometries(campaign, df)
    gdf = gdf[~gdf.geometry.is_empty]
    m = maps.new_map(gdf)
    show = ["name", "status", "overall", "people", "population"]
    props = gdf.assign(
        name=gdf["place"].astype(str).map(_html.escape),
        status=gdf["status"].astype(str).map(_html.escape),
        overall=gdf["bna_overall_score"].map(lambda v: "-" if v != v or v is None
                                             else f"{float(v):.1f}"),
        people=gdf["bna_people"].map(lambda v: "-" if v != v or v is None
                                     else f"{float(v):.1f}"),
        population=gdf["population"].map(lambda v: "-" if v != v or v is None
                                         else f"{float(v):,.0f}"),
        color=gdf["bna_overall_score"].map(lambda v: maps._score_color(
            None if v is None or v != v else float(v))))
    data = maps.compact_geojson(props, [*show, "color"], tolerance_m=2)
    folium.GeoJson(
        data, name=f"Places ({len(gdf)})",
        style_function=lambda f: {"fillColor": f["properties"]["color"], "color": "#333",
                                  "weight": 1.5, "fillOpacity": PLACE_OPACITY},
        tooltip=folium.GeoJsonTooltip(fields=show, aliases=["Place", "Status", "Overall",
                                                            "People", "Population"]),
    ).add_to(m)
    maps.add_legend(m, f"{campaign.name}: overall score", maps.score_legend_items(
        opacity=PLACE_OPACITY))
    folium.LayerControl(collapsed=False).add_to(m)
    return m
