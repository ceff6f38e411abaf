"""``pna-engine`` command line: documented options, and bad inputs giving a one-line error, a
non-zero exit and no output that looks complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from osmfactory import LAT0, LON0, box_polygon_geojson, grid_nodes, offset, write_osm
from shapely.geometry import Point, box

from pna_engine.cli import main

REPO = Path(__file__).resolve().parent.parent


def _inputs(tmp_path: Path, far: bool = False) -> dict[str, Path]:
    """A boundary (1 km square), population blocks (four 500 m cells, GEOID20/POP20) and a small
    OSM street grid (or one far away)."""
    bnd = box_polygon_geojson(tmp_path / "boundary.geojson", LON0, LAT0, 500)
    cells, ids = [], []
    for i, (dx, dy) in enumerate(((-500, -500), (0, -500), (-500, 0), (0, 0))):
        x0, y0 = offset(LON0, LAT0, dx, dy)
        x1, y1 = offset(LON0, LAT0, dx + 500, dy + 500)
        cells.append(box(x0, y0, x1, y1))
        ids.append(f"99000000000000{i}")
    pop = tmp_path / "blocks.gpkg"
    gpd.GeoDataFrame({"GEOID20": ids, "POP20": [100] * 4}, geometry=cells,
                     crs="EPSG:4326").to_file(pop)
    lon0 = LON0 + (2.0 if far else 0.0)
    spec = {}
    for i in range(5):
        for j in range(5):
            spec[10 * i + j + 1] = (-400 + 200 * i, -400 + 200 * j)
    nodes = grid_nodes(lon0, LAT0, spec)
    ways = {}
    for i in range(5):
        ways[100 + i] = ([10 * i + j + 1 for j in range(5)],
                         {"highway": "residential", "name": f"Street {i}"})
        ways[200 + i] = ([10 * j + i + 1 for j in range(5)],
                         {"highway": "primary" if i == 2 else "residential", "name": f"Avenue {i}"})
    ways[300] = ([1, 12], {"highway": "cycleway"})
    osm_path = write_osm(tmp_path / "map.osm.pbf", nodes, ways)
    return {"boundary": bnd, "population": pop, "osm": osm_path}


def _args(inp: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["run", "--boundary", str(inp["boundary"]), "--osm", str(inp["osm"]),
            "--population", str(inp["population"]), "--country", "finland", "--offline",
            "--output", str(out), "--quiet", "--workers", "1", *extra]


def _assert_not_complete(out: Path) -> None:
    if not out.exists():
        return
    assert not (out / "run.json").exists()
    assert not list(out.glob("neighborhood_*"))
    status = out / "status.json"
    if status.exists():
        assert json.loads(status.read_text())["state"] == "failed"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("pna-engine: error:"), err
    assert len(err.splitlines()) == 1, err
    return err


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "pna_engine", "run", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    text = " ".join(out.split())
    for opt in ("--boundary", "--osm", "--output", "--population", "--jobs", "--country",
                "--state", "--state-fips", "--city-fips", "--city-speed-limit",
                "--state-speed-limit", "--max-trip-distance", "--workers", "--offline",
                "--cache-dir"):
        assert opt in text, opt
    assert "default: 2680.0" in text
    assert "default: United States" in text


def test_missing_boundary_file(tmp_path, capsys):
    inp = _inputs(tmp_path)
    inp["boundary"] = tmp_path / "missing.shp"
    out = tmp_path / "out"
    assert main(_args(inp, out)) == 2
    assert "missing.shp" in _one_line_error(capsys)
    assert not out.exists()


def test_missing_osm_file_subprocess(tmp_path):
    inp = _inputs(tmp_path)
    inp["osm"] = tmp_path / "missing.osm.pbf"
    r = subprocess.run([sys.executable, "-m", "pna_engine", *_args(inp, tmp_path / "out")],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "missing.osm.pbf" in r.stderr
    _assert_not_complete(tmp_path / "out")


def test_boundary_not_polygon(tmp_path, capsys):
    inp = _inputs(tmp_path)
    pts = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(LON0, LAT0)], crs="EPSG:4326").to_file(pts)
    inp["boundary"] = pts
    out = tmp_path / "out"
    assert main(_args(inp, out)) == 2
    assert "not polygons" in _one_line_error(capsys)
    _assert_not_complete(out)


def test_boundary_empty(tmp_path, capsys):
    inp = _inputs(tmp_path)
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326")).to_file(empty)
    inp["boundary"] = empty
    out = tmp_path / "out"
    assert main(_args(inp, out)) == 2
    assert "no features" in _one_line_error(capsys)
    _assert_not_complete(out)


def test_osm_not_overlapping(tmp_path, capsys):
    inp = _inputs(tmp_path, far=True)
    out = tmp_path / "out"
    assert main(_args(inp, out)) == 2
    assert "no data inside the boundary" in _one_line_error(capsys)
    _assert_not_complete(out)


def test_corrupt_osm(tmp_path, capsys):
    inp = _inputs(tmp_path)
    inp["osm"].write_bytes(b"garbage" * 100)
    out = tmp_path / "out"
    assert main(_args(inp, out)) == 2
    assert "cannot read the OSM file" in _one_line_error(capsys)
    _assert_not_complete(out)


@pytest.mark.parametrize("extra, words", [
    (("--state", "XX"), "unknown US state code"),
    (("--max-trip-distance", "-5"), "--max-trip-distance"),
    (("--max-trip-distance", "0"), "--max-trip-distance"),
    (("--city-speed-limit", "0"), "--city-speed-limit"),
    (("--state-fips", "ABC"), "--state-fips"),
    (("--workers", "0"), "--workers"),
])
def test_bad_options(tmp_path, capsys, extra, words):
    inp = _inputs(tmp_path)
    out = tmp_path / "out"
    assert main(_args(inp, out, *extra)) == 2
    assert words in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_small_run_completes(tmp_path):
    """A valid small place runs end to end through the CLI: status succeeded, run.json and
    the ways export with stress values."""
    inp = _inputs(tmp_path)
    out = tmp_path / "out"
    assert main(_args(inp, out)) == 0
    assert json.loads((out / "status.json").read_text())["state"] == "succeeded"
    run = json.loads((out / "run.json").read_text())
    assert run["inputs"]["boundary"]["path"] == str(inp["boundary"])
    assert run["inputs"]["osm"]["path"] == str(inp["osm"])
    ways = gpd.read_file(out / "neighborhood_ways.geojson")
    assert len(ways) > 20
    assert set(ways["ft_seg_stress"].dropna().astype(int)) <= {1, 3}
    primary = ways[ways["functional_class"] == "primary"]
    assert (primary["ft_seg_stress"] == 3).all()


@pytest.mark.parametrize("argv, needle", [
    (["pna", "wait", "j1", "--timeout", "abc"], "argument --timeout: expected a number of seconds > 0 (e.g. 3600), got 'abc'"),
    (["pna", "--backend", "gcp", "list"], "invalid choice: 'gcp'"),
    (["pna", "campaign", "frob"], "invalid choice: 'frob'"),
    (["pna"], "the following arguments are required: COMMAND"),
    (["pna-engine", "run", "--boundary"], "argument --boundary: expected one argument"),
])
def test_command_line_mistakes_are_one_line_exit_2(argv, needle, capsys):
    """A mistyped command line is one line naming the problem and where help is (no usage
    block), exit 2, from both CLIs and their sub-commands."""
    from pna_engine.cli import main as engine_main
    from pna_helpers.cli import main as pna_main

    with pytest.raises(SystemExit) as exc:
        (pna_main if argv[0] == "pna" else engine_main)(argv[1:])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert err.startswith(f"{argv[0]}: error: ") and "--help')" in err
