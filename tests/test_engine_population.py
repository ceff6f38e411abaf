"""Census blocks / population (BNA-METHOD §2.5) and LODES jobs (§2.6).

Every input is a real file written by the test (zipped shapefile, shapefile, GeoPackage,
GeoTIFF, CSV); expected values are worked out from the spec.
"""

from __future__ import annotations

import gzip
import math
import types
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from httpfolder import http_folder  # noqa: F401

from pna_engine import jobsdata, population
from pna_engine.errors import InputError
from pna_engine.params import Params, country_iso3

UTM = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0  # central Helsinki, UTM 35N


def _boundary() -> gpd.GeoDataFrame:
    """A 1000 m x 1000 m square boundary."""
    return gpd.GeoDataFrame({"name": ["square"]},
                            geometry=[shapely.box(X0, Y0, X0 + 1000, Y0 + 1000)], crs=UTM)


def _state(tmp_path: Path, **kw) -> types.SimpleNamespace:
    kw.setdefault("country", "finland")
    params = Params(boundary="unused", output=str(tmp_path / "out"),
                    cache_dir=str(tmp_path / "cache"), **kw)
    b = _boundary()
    return types.SimpleNamespace(params=params, boundary=b, crs=b.crs, inputs={}, counts={},
                                 notes=[], blocks=None)


def _blocks_2020(crs: str = "EPSG:4269") -> gpd.GeoDataFrame:
    """Blocks around the boundary's east edge (x = X0 + 1000) and one water block.

    inside   fully inside                     -> kept
    half     exactly 50 % inside              -> kept (>= 50 %)
    less     49 % inside                      -> dropped
    touch    shares only the edge (0 % area)  -> dropped
    far      outside                          -> dropped
    water    inside, ALAND20 = 0              -> dropped in US runs only
    """
    e = X0 + 1000
    geoms = [
        shapely.box(X0 + 100, Y0 + 100, X0 + 300, Y0 + 300),
        shapely.box(e - 100, Y0 + 400, e + 100, Y0 + 600),
        shapely.box(e - 98, Y0 + 700, e + 102, Y0 + 900),
        shapely.box(e, Y0 + 100, e + 200, Y0 + 300),
        shapely.box(e + 500, Y0, e + 700, Y0 + 200),
        shapely.box(X0 + 500, Y0 + 500, X0 + 700, Y0 + 700),
    ]
    return gpd.GeoDataFrame(
        {"GEOID20": ["250010001001000", "250010001001001", "250010001001002",
                     "250010001001003", "250010001001004", "250010001001005"],
         "POP20": [10, 20, 30, 40, 50, 0],
         "ALAND20": [40000, 40000, 40000, 40000, 40000, 0],
         "HOUSING20": [5, 6, 7, 8, 9, 0]},
        geometry=geoms, crs=UTM,
    ).to_crs(crs)  # TIGER files are NAD83


def _write_zip_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    folder = path.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    gdf.to_file(folder / f"{path.stem}.shp")
    with zipfile.ZipFile(path, "w") as z:
        for p in folder.iterdir():
            z.write(p, p.name)
    return path


# --------------------------------------------------------------------------- selection
def test_tiger2020_zip_fifty_percent_rule_and_water_blocks_us(tmp_path):
    # written in the output CRS so that "exactly 50 %" survives without reprojection noise
    z = _write_zip_shapefile(_blocks_2020(UTM), tmp_path / "tl_2020_25_tabblock20.zip")
    s = _state(tmp_path, population=str(z), country="United States")
    blocks = population.load_blocks(s)
    # inside + exactly-half are kept; 49 %, edge-only, far and water (US) are dropped
    assert blocks["geoid20"].tolist() == ["250010001001000", "250010001001001"]
    assert {"geoid20", "pop20", "aland20", "housing20"} <= set(blocks.columns)
    assert blocks.crs == s.crs
    assert set(shapely.get_type_id(blocks.geometry.values)) == {6}  # MultiPolygon
    assert s.counts == {"blocks": 2, "population": 30.0}
    assert s.inputs["population"] == str(z)
    assert blocks.geometry.iloc[0].area == pytest.approx(200 * 200)


def test_nad83_blocks_are_reprojected(tmp_path):
    path = tmp_path / "blocks.gpkg"
    _blocks_2020("EPSG:4269").to_file(path, driver="GPKG")
    blocks = population.load_blocks(_state(tmp_path, population=str(path), country="US"))
    assert blocks["geoid20"].iloc[0] == "250010001001000"
    assert blocks.geometry.iloc[0].area == pytest.approx(200 * 200, rel=1e-6)
    minx, miny, _, _ = blocks.geometry.iloc[0].bounds
    assert minx == pytest.approx(X0 + 100, abs=0.01) and miny == pytest.approx(Y0 + 100, abs=0.01)


def test_water_blocks_are_kept_outside_the_us(tmp_path):
    path = tmp_path / "blocks.gpkg"
    _blocks_2020(UTM).to_file(path, driver="GPKG")
    s = _state(tmp_path, population=str(path), country="Finland")
    blocks = population.load_blocks(s)
    assert blocks["geoid20"].tolist() == ["250010001001000", "250010001001001",
                                          "250010001001005"]


def test_tiger2010_fields_are_renamed(tmp_path):
    g = _blocks_2020(UTM).rename(columns={"GEOID20": "BLOCKID10", "POP20": "POP10"})
    g = g.drop(columns=["ALAND20"])
    path = tmp_path / "tabblock2010_25_pophu.shp"
    g.to_file(path)
    s = _state(tmp_path, population=str(path), country="US")
    blocks = population.load_blocks(s)
    # no aland20 in 2010 files: the zero-population water block stays, population 30 remains
    assert blocks["geoid20"].tolist() == ["250010001001000", "250010001001001",
                                          "250010001001005"]
    assert blocks["pop20"].tolist() == [10.0, 20.0, 0.0]
    assert "blockid10" not in blocks.columns and "pop10" not in blocks.columns


def test_numeric_block_ids_get_their_leading_zeros_back(tmp_path):
    g = _blocks_2020(UTM)
    g["GEOID20"] = [10010001001000 + i for i in range(len(g))]  # Alabama: state FIPS 01
    path = tmp_path / "numeric.gpkg"
    g.to_file(path, driver="GPKG")
    blocks = population.load_blocks(_state(tmp_path, population=str(path)))
    assert blocks["geoid20"].iloc[0] == "010010001001000"


def test_missing_fields_error_names_found_and_expected(tmp_path):
    g = _blocks_2020().rename(columns={"GEOID20": "BLOCK", "POP20": "PEOPLE"})
    path = tmp_path / "bad.gpkg"
    g.to_file(path, driver="GPKG")
    s = _state(tmp_path, population=str(path))
    with pytest.raises(InputError) as e:
        population.load_blocks(s)
    msg = str(e.value)
    assert "block" in msg and "people" in msg  # found
    assert "GEOID20" in msg and "POP20" in msg and "BLOCKID10" in msg  # expected
    assert "\n" not in msg


def test_zero_population_is_an_error(tmp_path):
    g = _blocks_2020()
    g["POP20"] = 0
    path = tmp_path / "zero.gpkg"
    g.to_file(path, driver="GPKG")
    with pytest.raises(InputError, match="population of 0"):
        population.load_blocks(_state(tmp_path, population=str(path)))


def test_population_below_one_is_an_error(tmp_path):
    """The reference checks int(SUM(pop20)) == 0: fractional WorldPop-like values summing to
    0.7 stop the run; summing to 1.2 do not."""
    g = _blocks_2020(UTM)  # in the output CRS: the exactly-half block stays kept
    g["POP20"] = [0.3, 0.4, 5.0, 5.0, 5.0, 0.0]  # kept: the first two and the water block
    path = tmp_path / "tiny.gpkg"
    g.to_file(path, driver="GPKG")
    with pytest.raises(InputError, match="population of 0.7"):
        population.load_blocks(_state(tmp_path, population=str(path)))
    g["POP20"] = [0.5, 0.7, 5.0, 5.0, 5.0, 0.0]
    g.to_file(path, driver="GPKG")
    blocks = population.load_blocks(_state(tmp_path / "b", population=str(path)))
    assert blocks["pop20"].sum() == pytest.approx(1.2)


def test_blocks_not_overlapping_the_boundary(tmp_path):
    g = _blocks_2020().to_crs(UTM)
    g = g.set_geometry(g.geometry.translate(50_000, 0)).to_crs(4326)
    path = tmp_path / "elsewhere.gpkg"
    g.to_file(path, driver="GPKG")
    with pytest.raises(InputError, match="overlaps the boundary"):
        population.load_blocks(_state(tmp_path, population=str(path)))


def test_missing_population_file(tmp_path):
    with pytest.raises(InputError, match="--population"):
        population.load_blocks(_state(tmp_path, population=str(tmp_path / "nope.zip")))


# --------------------------------------------------------------------------- synthetic grid
def test_synthetic_grid_follows_the_spec_when_offline(tmp_path):
    s = _state(tmp_path, country="Finland", offline=True, block_size=300.0,
               block_population=7)
    bnd = population.synthetic_grid(s.boundary, 300.0, 7)  # all cells, before retention
    # expected cells, from §2.5: Web-Mercator bbox of the boundary, columns/rows of 300 units
    bm = s.boundary.to_crs("EPSG:3857").geometry.iloc[0]
    xmin, ymin, xmax, ymax = bm.bounds
    expected = []
    x = xmin
    while x < xmax:
        y = ymin
        while y < ymax:
            cell = shapely.box(x, y, x + 300, y + 300)
            if cell.intersects(bm):
                expected.append(cell)
            y += 300
        x += 300
    got = bnd.to_crs("EPSG:3857").geometry.values
    assert len(got) == len(expected)
    got_b = np.array(sorted(tuple(np.round(g.bounds, 3)) for g in got))
    exp_b = np.array(sorted(tuple(np.round(g.bounds, 3)) for g in expected))
    np.testing.assert_allclose(got_b, exp_b, atol=1e-3)
    assert (bnd["pop20"] == 7).all()
    assert all(len(i) == 15 and i.isalpha() and i.islower() for i in bnd["geoid20"])
    assert bnd["geoid20"].is_unique

    blocks = population.load_blocks(s)  # offline: no WorldPop -> synthetic grid + a note
    assert any("SYNTHETIC" in n for n in s.notes)
    assert "population" not in s.inputs
    assert 0 < len(blocks) <= len(expected)
    assert s.counts["population"] == 7 * len(blocks)


def test_unknown_country_uses_the_synthetic_grid(tmp_path):
    s = _state(tmp_path, country="Atlantis")
    blocks = population.load_blocks(s)
    assert len(blocks) > 0 and (blocks["pop20"] == 100).all()
    assert any("unknown" in n and "SYNTHETIC" in n for n in s.notes)


# --------------------------------------------------------------------------- WorldPop raster
def write_tiny_worldpop(path: Path) -> tuple[np.ndarray, float]:
    """A 4 x 4 raster (EPSG:4326) over the test boundary; nodata = -99999."""
    import rasterio
    from rasterio.transform import from_origin

    b = _boundary().to_crs(4326).total_bounds
    pix = max(b[2] - b[0], b[3] - b[1]) / 4 * 1.0001
    data = np.array([[5, 5, 3, 3],
                     [5, 2, 3, -99999],
                     [4, 4, 4, 1],
                     [4, 2, 2, 1]], dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(b[0], b[3], pix, pix),
                       nodata=-99999) as dst:
        dst.write(data, 1)
    return data, pix


def test_worldpop_polygonisation(tmp_path):
    tif = tmp_path / "fin_pop_2025_CN_1km_R2025A_UA_v1.tif"
    _, pix = write_tiny_worldpop(tif)
    blocks = population.read_blocks(tif)
    # 4-connected groups of equal values: {5 x3}, {3 x3}, {2 at (1,1)}, {4 x4}, {1 x2},
    # {2,2 at (3,1),(3,2)}; the no-data pixel is skipped; POP20 = pixel value, not summed
    got = sorted((float(p), round(a / pix**2)) for p, a in
                 zip(blocks["pop20"], shapely.area(blocks.geometry.values)))
    assert got == [(1.0, 2), (2.0, 1), (2.0, 2), (3.0, 3), (4.0, 4), (5.0, 3)]
    assert blocks.crs.to_epsg() == 4326


def test_worldpop_downloaded_for_a_known_country(tmp_path, http_folder, monkeypatch):  # noqa: F811
    root, base = http_folder
    rel = Path("2025/FIN/v1/1km_ua/constrained/fin_pop_2025_CN_1km_R2025A_UA_v1.tif")
    (root / rel).parent.mkdir(parents=True)
    write_tiny_worldpop(root / rel)
    monkeypatch.setenv("PNA_WORLDPOP_BASE_URL", base)
    s = _state(tmp_path, country="Finland", worldpop_year=2025)
    blocks = population.load_blocks(s)
    assert not any("SYNTHETIC" in n for n in s.notes)
    assert s.inputs["population"].endswith(rel.name)
    assert set(blocks["pop20"]) <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(blocks) > 0


# --------------------------------------------------------------------------- jobs
def _jobs_state(tmp_path: Path, jobs: list[str], country: str = "United States"):
    s = _state(tmp_path, country=country, jobs=jobs)
    s.blocks = gpd.GeoDataFrame({"geoid20": ["250010001001000", "250010001001001",
                                             "250010001001005"]},
                                geometry=[shapely.Point(0, 0)] * 3, crs=UTM)
    return s


HEADER = "w_geocode,h_geocode,S000,SA01,SA02,SA03,SE01,SE02,SE03,SI01,SI02,SI03,createdate\n"


def test_lodes_main_and_aux_are_summed_per_block(tmp_path):
    main = tmp_path / "ma_od_main_JT00_2022.csv"
    main.write_text(HEADER
                    + "250010001001000,250010001001001,3,1,1,1,1,1,1,1,1,1,20230101\n"
                    + "250010001001000,250010001001005,2,1,1,0,1,1,0,1,1,0,20230101\n"
                    + "250010001001001,250010001001000,4,1,1,2,1,1,2,1,1,2,20230101\n")
    aux = tmp_path / "ma_od_aux_JT00_2022.csv.gz"
    with gzip.open(aux, "wt") as f:
        f.write(HEADER
                + "250010001001000,330010001001000,1,1,0,0,1,0,0,1,0,0,20230101\n"
                + "259990001001000,330010001001000,10,1,0,0,1,0,0,1,0,0,20230101\n")
    s = _jobs_state(tmp_path, [str(main), str(aux)])
    jobs = jobsdata.load_jobs(s)
    # one row per retained block; 3 + 2 (main) + 1 (aux); 4; none -> 0; others ignored
    assert jobs["blockid20"].tolist() == ["250010001001000", "250010001001001",
                                          "250010001001005"]
    assert jobs["jobs"].tolist() == [6, 4, 0]
    assert s.counts["jobs"] == 10
    assert s.inputs["jobs_main"] == str(main) and s.inputs["jobs_aux"] == str(aux)


def test_lodes_short_work_block_ids_are_right_padded(tmp_path):
    """census_block_jobs.sql runs rpad(w_geocode, 15, '0') before matching: a 14-character id
    gains a trailing 0 (and so matches the block whose id ends in 0, not the one it lost a
    leading zero from)."""
    main = tmp_path / "ma_od_main_JT00_2022.csv"
    main.write_text(HEADER
                    + "25001000100100,250010001001001,3,1,1,1,1,1,1,1,1,1,20230101\n"
                    + "2500100010010,250010001001001,2,1,1,0,1,1,0,1,1,0,20230101\n"
                    + "250010001001001,250010001001000,4,1,1,2,1,1,2,1,1,2,20230101\n")
    jobs = jobsdata.load_jobs(_jobs_state(tmp_path, [str(main)]))
    # "25001000100100" -> "250010001001000"; "2500100010010" -> "250010001001000"
    assert jobs["jobs"].tolist() == [5, 4, 0]


def test_lodes_wrong_layout(tmp_path):
    bad = tmp_path / "ma_od_main_JT00_2022.csv"
    bad.write_text("block,count\n250010001001000,3\n")
    with pytest.raises(InputError, match="w_geocode"):
        jobsdata.load_jobs(_jobs_state(tmp_path, [str(bad)]))


def test_puerto_rico_has_no_lodes(tmp_path):
    s = _jobs_state(tmp_path, [])
    s.params.state = "PR"
    s.params.offline = True  # nothing may be downloaded
    jobs = jobsdata.load_jobs(s)
    assert jobs["jobs"].tolist() == [0, 0, 0] and len(jobs) == len(s.blocks)
    assert any("Puerto Rico" in n for n in s.notes)


def test_no_jobs_outside_the_us(tmp_path):
    assert jobsdata.load_jobs(_jobs_state(tmp_path, [], country="Finland")) is None


def test_is_us():
    for c in ("United States", "united states", "US", "USA", "usa"):
        assert Params(boundary="b", output="o", country=c).is_us
    for c in ("Finland", "fi", "Atlantis"):
        assert not Params(boundary="b", output="o", country=c).is_us
    assert Params(boundary="b", output="o", country="fi").iso3 == "FIN"
    assert country_iso3(None) is None and country_iso3("Atlantis") is None
    assert math.isclose(population.MIN_SHARE_INSIDE, 0.5)
