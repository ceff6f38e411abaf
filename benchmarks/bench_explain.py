"""Time ``pna explain``: a Liechtenstein change with about 20 edited ways, and the reference
against the corrected methodology (quirk by quirk), plus the same on the Helsinki demo.

Liechtenstein's "next year" is written with pyosmium (:mod:`pna_helpers.osmedit`): protected
bike lanes on 10 high-stress secondary/tertiary ways, 50 km/h on 5 residential ways, 3 ways
removed, 2 new cycleways between existing nodes (20 edited ways), chosen with a fixed seed.
A and B are full engine runs (exports with run.json); the explain time is one fresh
``pna explain A B --json`` process (start-up included, nothing cached), on the cores given.

The demo always runs; Liechtenstein needs ``../shared/data`` and is skipped with a message
when it is absent (exit status 0). Prints numbers, asserts nothing.

Usage::

    python benchmarks/bench_explain.py [--cases demo,liechtenstein] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402


def _args_file(path: Path) -> dict[str, Any]:
    lines = [ln.strip() for ln in path.read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    out: dict[str, Any] = {}
    key = None
    for ln in lines:
        if ln.startswith("--"):
            key = ln[2:].replace("-", "_")
            out[key] = True
        elif key:
            v = ln if not (path.parent / ln).exists() else str((path.parent / ln).resolve())
            out[key] = v
            key = None
    return out


def _inputs(case: str) -> dict[str, Any] | None:
    if case == "demo":
        from pna_engine.demo import prepare_demo_inputs

        return dict(prepare_demo_inputs(benchlib.outputs_dir() / "explain" / "demo-inputs"))
    args = benchlib.SHARED / "data" / "liechtenstein" / "run.args"
    if not args.exists():
        return None
    d = _args_file(args)
    d["place"] = "Liechtenstein"
    return d


def _run(inputs: dict[str, Any], out: Path, workers: int, **extra: Any) -> Path:
    from pna_engine import pipeline
    from pna_engine.params import Params

    args = {k: v for k, v in inputs.items() if k in Params.__dataclass_fields__}
    pipeline.run(Params(output=str(out), workers=workers, offline=True, **{**args, **extra}))
    return out


def edit_twenty_ways(a: Path, src: str, dst: Path, seed: int = 12) -> dict[str, int]:
    """The 20 edits described in the module docstring; returns counts per kind."""
    import geopandas as gpd
    import numpy as np
    import osmium

    from pna_helpers.osmedit import edit_osm

    rng = np.random.default_rng(seed)
    w = gpd.read_file(a / "neighborhood_ways.geojson")
    high = w[w["functional_class"].isin(["secondary", "tertiary"])
             & ((w["ft_seg_stress"] == 3) | (w["tf_seg_stress"] == 3))]
    pool = sorted(set(high["osm_id"].astype(int)))
    lanes = rng.choice(pool, min(10, len(pool)), replace=False)
    res = sorted(set(w.loc[w["functional_class"] == "residential", "osm_id"].astype(int))
                 - set(lanes))
    speeds = rng.choice(res, min(5, len(res) // 3), replace=False)
    rest = sorted(set(res) - set(speeds))
    removed = rng.choice(rest, min(3, len(rest) // 3), replace=False)
    tags = {int(i): {"cycleway": "track", "oneway:bicycle": "no"} for i in lanes}
    tags.update({int(i): {"maxspeed": "50"} for i in speeds})
    # two new cycleways: between the end nodes of residential ways close to each other
    ends = {}
    keep = {int(x) for x in rest[:200]} - {int(x) for x in removed}
    for o in osmium.FileProcessor(src, osmium.osm.WAY):
        if o.id in keep:
            ends[o.id] = (o.nodes[0].ref, o.nodes[-1].ref)
    ids = sorted(ends)
    adds = [{"nodes": [ends[ids[2 * k]][1], ends[ids[2 * k + 1]][0]],
             "tags": {"highway": "cycleway"}} for k in range(2)]
    edit_osm(src, dst, set_tags=tags, remove_ways=[int(i) for i in removed], add_ways=adds)
    return {"bike lanes": len(lanes), "speed": len(speeds), "removed": len(removed),
            "added": len(adds)}


def explain_process(a: Path, b: Path, workers: int, top_ways: int = 8) -> tuple[float, dict]:
    """One fresh ``pna explain A B --json`` process: wall seconds and its JSON."""
    cmd = [benchlib.python(), "-m", "pna_helpers.cli", "explain", str(a), str(b), "--json",
           "--quiet", "--workers", str(workers), "--top-ways", str(top_ways)]
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(benchlib.REPO)}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=benchlib.REPO, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"pna explain failed: {r.stderr.strip()[-500:]}")
    return dt, json.loads(r.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="demo,liechtenstein")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    print(json.dumps(benchlib.machine()))
    for case in a.cases.split(","):
        inputs = _inputs(case)
        if inputs is None:
            print(f"{case}: skipped (../shared/data not found)")
            continue
        root = benchlib.outputs_dir() / "explain" / case
        t0 = time.perf_counter()
        ra = _run(inputs, root / "A", a.workers)
        rc = _run(inputs, root / "corrected", a.workers, methodology="corrected")
        counts = edit_twenty_ways(ra, inputs["osm"], root / "next-year.osm.pbf")
        rb = _run({**inputs, "osm": str(root / "next-year.osm.pbf")}, root / "B", a.workers)
        print(f"{case}: 3 engine runs (A, corrected, B) in {time.perf_counter() - t0:.1f} s; "
              f"edits: {counts}")
        dt, d = explain_process(ra, rb, a.workers)
        print(f"{case}: explain 20 edited ways: {dt:.1f} s wall, {d['engine_runs']} engine runs "
              f"(Shapley {len(d['differing_groups'])} groups + leave-one-out on "
              f"{len(d.get('top_ways', []))} ways); overall {d['before']:.2f} -> "
              f"{d['after']:.2f} ({d['total_change']:+.2f}): "
              + ", ".join(f"{g} {v:+.2f}" for g, v in d["contributions"].items() if v))
        for w in d.get("top_ways", [])[:5]:
            print(f"    way {w['osm_id']} {w['name']!s:<25} {w['cause']:<20} "
                  f"{w['overall_points']:+.3f}")
        dt, d = explain_process(ra, rc, a.workers, top_ways=0)
        print(f"{case}: explain reference -> corrected: {dt:.1f} s wall, {d['engine_runs']} "
              f"engine runs; overall {d['before']:.2f} -> {d['after']:.2f} "
              f"({d['total_change']:+.2f})")
        for q, v in sorted(d.get("quirks", {}).items(), key=lambda kv: -abs(kv[1] or 0)):
            print(f"    {q}: overall {v:+.3f}")
        cats = d["categories"]
        print("    per category (methodology): " + ", ".join(
            f"{c} {cats[c]['total_change']:+.2f}" for c in cats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
