"""Time and cost of a campaign before it is submitted, from each place's size.

The model is fitted, when this module is imported, on the measured end-to-end engine times of
``benchmarks/README.md`` (performance table of 2026-11-27, 2-core AMD EPYC; OSM sizes of the
synthetic cities from ``benchmarks/synthetic_city.py``, seed 1):

===================  ========  =========  ===========  ============
case                 blocks    area km²   OSM bytes    end to end s
===================  ========  =========  ===========  ============
helsinki-demo        10        0.44       685,110      0.93
liechtenstein        5,257     210        1,323,403    1.89
synthetic 10,000     255       9          25,457       0.90
synthetic 50,000     1,354     45         100,455      1.53
synthetic 200,000    5,650     180        369,339      4.15
synthetic 500,000    14,169    450        –            9.36
synthetic 1,000,000  28,685    900        1,732,316    18.3
===================  ========  =========  ===========  ============

* **time** = ``a + b * blocks`` (least squares on the seven rows: ``a`` ≈ 0.40 s,
  ``b`` ≈ 0.62 ms per block, R² = 0.985; the two small real places, whose time is mostly
  start-up and import, sit above the line, so small places are underestimated by ~0.5 s);
* when a place's block count is unknown (no readable population file: it will be downloaded
  or synthesised), blocks are predicted from the **area** (``blocks ≈ k_area * km²``, least
  squares through the origin on the rows with an area) or, without a boundary area, from the
  **OSM bytes** (``blocks ≈ k_osm * bytes``, same way);
* on AWS each job also pays :data:`AWS_JOB_OVERHEAD_S` (container start, input download,
  result upload: an assumption, not a measurement);
* vCPU-hours = time x ``job_vcpus`` / 3600; cost = vCPU-hours x ``vcpu_hour_price``
  (``PNA_VCPU_HOUR_PRICE``, default 0.02 USD).

The benchmarks ran on 2 shared cores; a Batch host with more cores per job runs the
connectivity phase faster, so the estimate errs on the high side for big places.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

#: (case, blocks, area km², OSM bytes or None, end-to-end seconds) from benchmarks/README.md.
BENCHMARK_POINTS: tuple[tuple[str, int, float, int | None, float], ...] = (
    ("helsinki-demo", 10, 0.44, 685_110, 0.93),
    ("liechtenstein", 5_257, 210.0, 1_323_403, 1.89),
    ("synthetic 10,000", 255, 9.0, 25_457, 0.90),
    ("synthetic 50,000", 1_354, 45.0, 100_455, 1.53),
    ("synthetic 200,000", 5_650, 180.0, 369_339, 4.15),
    ("synthetic 500,000", 14_169, 450.0, None, 9.36),
    ("synthetic 1,000,000", 28_685, 900.0, 1_732_316, 18.3),
)
#: Per-job overhead on AWS Batch (container start, S3 fetch and upload), seconds: assumed.
AWS_JOB_OVERHEAD_S = 45.0


@functools.cache
def fitted_model() -> dict[str, float]:
    """The fitted coefficients: ``a`` (s), ``b`` (s/block), ``k_area`` (blocks/km²),
    ``k_osm`` (blocks/byte) and the fit's R² of time on blocks."""
    import numpy as np

    pts = BENCHMARK_POINTS
    blocks = np.array([p[1] for p in pts], dtype=float)
    secs = np.array([p[4] for p in pts], dtype=float)
    X = np.c_[np.ones_like(blocks), blocks]
    (a, b), *_ = np.linalg.lstsq(X, secs, rcond=None)
    pred = X @ np.array([a, b])
    r2 = 1 - float(((secs - pred) ** 2).sum()) / float(((secs - secs.mean()) ** 2).sum())
    area = np.array([p[2] for p in pts])
    k_area = float((area * blocks).sum() / (area * area).sum())
    osm = [(p[3], p[1]) for p in pts if p[3]]
    ob = np.array([o for o, _ in osm], dtype=float)
    bb = np.array([b_ for _, b_ in osm], dtype=float)
    k_osm = float((ob * bb).sum() / (ob * ob).sum())
    return {"a": float(a), "b": float(b), "k_area": k_area, "k_osm": k_osm, "r2": r2}


def place_size(request: dict[str, Any]) -> dict[str, Any]:
    """Size of one place from its local inputs: ``osm_bytes``, ``area_km2``, ``blocks``
    (None when an input is remote or unreadable; nothing is downloaded)."""
    out: dict[str, Any] = {"osm_bytes": None, "area_km2": None, "blocks": None}
    osm = request.get("osm")
    if osm and os.path.exists(str(osm)):
        out["osm_bytes"] = os.path.getsize(str(osm))
    bnd = request.get("boundary")
    geom = None
    if bnd and os.path.exists(str(bnd)):
        try:
            import geopandas as gpd

            g = gpd.read_file(bnd)
            if g.crs is None:
                g = g.set_crs(4326)
            gu = g.to_crs(g.to_crs(4326).estimate_utm_crs())
            geom = gu.geometry.union_all()
            out["area_km2"] = round(float(geom.area) / 1e6, 4)
        except Exception:
            geom = None
    pop = request.get("population")
    if pop and geom is not None and os.path.exists(str(pop)):
        out["blocks"] = _count_blocks(Path(str(pop)), gu)
    return out


def _count_blocks(pop: Path, boundary_utm: Any) -> int | None:
    """Blocks of the population file that intersect the boundary (bbox-filtered read)."""
    try:
        import geopandas as gpd
        import pyogrio

        info = pyogrio.read_info(pop)
        crs = info.get("crs") or "EPSG:4326"
        b = boundary_utm.to_crs(crs)
        blocks = gpd.read_file(pop, bbox=tuple(b.total_bounds), columns=[])
        if blocks.crs is None:
            blocks = blocks.set_crs(crs)
        return int(blocks.intersects(b.geometry.union_all()).sum())
    except Exception:
        return None


def estimate_place(size: dict[str, Any], backend: str = "local") -> dict[str, Any]:
    """Estimated run time (s) of one place from :func:`place_size`; says what it used."""
    m = fitted_model()
    blocks, basis = size.get("blocks"), "blocks"
    if blocks is None and size.get("area_km2"):
        blocks, basis = m["k_area"] * float(size["area_km2"]), "area"
    elif blocks is None and size.get("osm_bytes"):
        blocks, basis = m["k_osm"] * float(size["osm_bytes"]), "osm_bytes"
    elif blocks is None:
        blocks, basis = 0.0, "none"
    secs = m["a"] + m["b"] * float(blocks)
    if backend == "aws":
        secs += AWS_JOB_OVERHEAD_S
    return {"seconds": round(secs, 2), "blocks_used": round(float(blocks), 1), "basis": basis}


def estimate_campaign(requests: list[Any], backend: str = "local", job_vcpus: int = 2,
                      price: float = 0.02, parallel: int = 1) -> dict[str, Any]:
    """Estimated time and cost of running ``requests`` (AnalysisRequest or dicts).

    Returns
    -------
    dict
        ``places`` (per place: size and seconds), ``total_seconds`` (sum of run times),
        ``wall_seconds`` (with ``parallel`` places at once), ``vcpu_hours``, ``cost`` (USD at
        ``price`` per vCPU-hour), ``model`` (the fitted coefficients).
    """
    rows = []
    for r in requests:
        d = r if isinstance(r, dict) else r.to_dict()
        size = place_size(d)
        est = estimate_place(size, backend)
        rows.append({"place": d.get("place"), **size, **est})
    total = sum(r["seconds"] for r in rows)
    vh = total * max(1, int(job_vcpus)) / 3600.0
    return {"places": rows, "total_seconds": round(total, 1),
            "wall_seconds": round(total / max(1, int(parallel)), 1),
            "vcpu_hours": round(vh, 4), "cost": round(vh * float(price), 4),
            "price_per_vcpu_hour": float(price), "job_vcpus": int(job_vcpus),
            "backend": backend, "model": fitted_model()}
