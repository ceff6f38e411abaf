"""A synthetic US city of any size for benchmarks: OSM extract, census blocks, LODES jobs.

**Everything written here is synthetic** (made-up streets, names, people and jobs, seeded and
reproducible); it only borrows the formats of the real inputs so the engine runs its full US
code path on it. The city is laid out in local metres, placed near Denver, Colorado (UTM zone
13N) and labelled with Colorado's state FIPS code ``08`` and a made-up county ``999``.

Layout (``dx`` x ``dy`` = 180 m x 170 m street cells; one census block per cell):

* a street lattice with low-frequency warp and per-node jitter; residential streets with some
  links missing (dead ends, T junctions) and a lake where no street runs;
* arterials (``primary``/``secondary``, 4 lanes, 35-45 mph) every ~1.5 km, collectors
  (``tertiary``, 2 lanes, 30 mph) at the half-mile lines, diagonal avenues (``secondary``) through
  the lattice, downtown one-way couplets;
* painted lanes (``cycleway=lane``, ``cycleway:both=lane``, ``cycleway:right=lane`` on one-way
  streets), protected lanes (``cycleway=track``, ``cycleway:left=track``), parking tags;
* mid-block features in the cells: alleys (``service=alley``), cul-de-sacs, driveways,
  mid-block paths (``highway=path``/``footway`` with ``bicycle=designated``), greenways
  (``highway=cycleway``) crossing the streets at mid-block;
* ``highway=traffic_signals``, all-way stops and ``highway=crossing`` nodes (marked, signal,
  flashing lights, islands) at junctions;
* every destination category of BNA-METHOD §9.1 at plausible per-capita densities, as points
  and building polygons, parks and campuses as areas, ``landuse=retail`` strips along arterials,
  residential buildings;
* ``tl_2020_08_tabblock20.zip``: blocks with ``GEOID20``, ``POP20``, ``ALAND20``, ``AWATER20``,
  ``HOUSING20`` (population denser downtown, 0 in parks, campuses and the lake, whose blocks have
  ``ALAND20 = 0``);
* ``co_od_main_JT00_2022.csv`` / ``co_od_aux_JT00_2022.csv``: LODES 8 OD files, jobs
  concentrated downtown and along arterials;
* ``boundary.geojson``: a wavy polygon inside the lattice (roads and blocks extend ~400 m beyond
  it, so clipping and the ≥ 50 % block rule are exercised);
* ``run.args``: the ``pna-engine run`` arguments, one per line, paths relative to the folder.

Size scales with the population: ``side = 30 km × sqrt(population / 1e6)``; one million people
gives ≈ 30 × 30 km, ≈ 29,000 blocks and ≈ 150,000 routable road segments.

Usage::

    python benchmarks/synthetic_city.py OUT_DIR --population 1000000 [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: Street-cell size in metres (east-west x north-south); one census block per cell.
DX, DY = 180.0, 170.0
#: Side of the one-million-people city, metres.
SIDE_1M = 30_000.0
#: Roads and blocks extend this far beyond the boundary (metres, before the wavy offset).
MARGIN = 400.0
#: Local origin in UTM 13N (near Denver, CO) and the labels of the synthetic place.
UTM_EPSG = 32613
ORIGIN_E, ORIGIN_N = 480_000.0, 4_380_000.0
STATE_FIPS, STATE_ABBR, COUNTY_FIPS, CITY_FIPS = "08", "CO", "999", "0899999"
LODES_YEAR = 2022

OSM_FILE = "city.osm.pbf"
BOUNDARY_FILE = "boundary.geojson"
BLOCKS_FILE = f"tl_2020_{STATE_FIPS}_tabblock20.zip"
JOBS_MAIN_FILE = f"{STATE_ABBR.lower()}_od_main_JT00_{LODES_YEAR}.csv"
JOBS_AUX_FILE = f"{STATE_ABBR.lower()}_od_aux_JT00_{LODES_YEAR}.csv"

# Half-edge kinds of the lattice lines.
NONE, PRIMARY, SECONDARY, TERTIARY, RESIDENTIAL = 0, 1, 2, 3, 4
ALLEY, GREENWAY, MIDPATH, CULDESAC, DRIVEWAY = 5, 6, 7, 8, 9
ONEWAY_FWD, ONEWAY_REV, DIAGONAL = 10, 11, 12
HIGHWAY = {PRIMARY: "primary", SECONDARY: "secondary", TERTIARY: "tertiary",
           RESIDENTIAL: "residential", ALLEY: "service", GREENWAY: "cycleway",
           MIDPATH: "path", CULDESAC: "residential", DRIVEWAY: "service", DIAGONAL: "secondary"}
#: Kinds that end a way at every cell boundary (one small way per cell).
PER_CELL = (ALLEY, MIDPATH, CULDESAC, DRIVEWAY)

# Cell uses.
USE_RES, USE_PARK, USE_CAMPUS, USE_RETAIL, USE_WATER = 0, 1, 2, 3, 4

#: Destinations per person (points unless ``poly``), BNA-METHOD §9.1 categories.
#: (tags, people per feature, share drawn as building polygons)
DESTINATIONS: list[tuple[dict[str, str], float, float]] = [
    ({"amenity": "school"}, 2_500, 0.7),
    ({"amenity": "kindergarten"}, 6_000, 0.3),
    ({"amenity": "college"}, 120_000, 0.5),
    ({"amenity": "university"}, 400_000, 0.8),
    ({"amenity": "hospital"}, 90_000, 0.8),
    ({"amenity": "community_center"}, 100_000, 0.0),
    ({"amenity": "community_centre"}, 25_000, 0.6),
    ({"amenity": "dentist"}, 3_500, 0.1),
    ({"healthcare": "dentist"}, 15_000, 0.0),
    ({"amenity": "doctors"}, 3_000, 0.1),
    ({"amenity": "clinic"}, 12_000, 0.5),
    ({"healthcare": "doctor"}, 10_000, 0.0),
    ({"amenity": "pharmacy"}, 6_000, 0.3),
    ({"shop": "chemist"}, 15_000, 0.2),
    ({"leisure": "playground"}, 3_000, 0.0),
    ({"shop": "supermarket"}, 9_000, 0.8),
    ({"amenity": "social_facility"}, 12_000, 0.4),
    ({"amenity": "bus_station"}, 250_000, 0.5),
    ({"railway": "station", "public_transport": "station"}, 25_000, 0.3),
    ({"public_transport": "platform", "highway": "bus_stop"}, 600, 0.0),
]
RETAIL_SHOPS = ("convenience", "clothes", "bakery", "hairdresser", "hardware", "books",
                "bicycle", "florist", "mobile_phone", "furniture", "no")
#: One retail shop point per this many people; one residential building per this many people.
PEOPLE_PER_SHOP = 250
PEOPLE_PER_BUILDING = 25


@dataclass
class CityFiles:
    """Paths and counts of a generated city (all paths absolute)."""

    folder: str
    osm: str
    boundary: str
    blocks: str
    jobs: list[str]
    run_args: str
    seed: int
    population: int
    jobs_total: int
    side_m: float
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def args(self) -> list[str]:
        """The ``pna-engine run`` arguments (absolute paths), without ``--output``."""
        return run_args(self)


def run_args(c: CityFiles, relative: bool = False) -> list[str]:
    """``pna-engine run`` arguments for a generated city (paths relative to its folder if asked)."""
    def p(x: str) -> str:
        return Path(x).name if relative else x

    args = ["--boundary", p(c.boundary), "--osm", p(c.osm), "--population", p(c.blocks)]
    for j in c.jobs:
        args += ["--jobs", p(j)]
    args += ["--country", "united states", "--state", STATE_ABBR, "--state-fips", STATE_FIPS,
             "--city-fips", CITY_FIPS, "--state-speed-limit", "25", "--city-speed-limit", "25",
             "--offline"]
    return args


# --------------------------------------------------------------------------- geometry helpers
class _Frame:
    """Local metres -> warped local metres -> lon/lat."""

    def __init__(self, side: float, rng: np.random.Generator):
        from pyproj import Transformer

        self.amp = min(25.0, side / 200.0)
        self.wave = max(2_500.0, side / 8.0)
        self.phase = rng.uniform(0, 2 * math.pi, 2)
        self._tr = Transformer.from_crs(UTM_EPSG, 4326, always_xy=True)

    def warp(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = 2 * math.pi / self.wave
        return (x + self.amp * np.sin(w * y + self.phase[0]),
                y + self.amp * np.sin(w * x + self.phase[1]))

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._tr.transform(np.asarray(x) + ORIGIN_E, np.asarray(y) + ORIGIN_N)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# --------------------------------------------------------------------------- the city model
class _City:
    def __init__(self, population: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.population = int(population)
        self.side = max(1_200.0, SIDE_1M * math.sqrt(population / 1e6))
        # cells (blocks) and lattice (half-cell resolution: even index = street line)
        self.ncx = int(round((self.side + 2 * MARGIN) / DX))
        self.ncy = int(round((self.side + 2 * MARGIN) / DY))
        self.ni, self.nj = 2 * self.ncx + 1, 2 * self.ncy + 1
        self.width, self.height = self.ncx * DX, self.ncy * DY
        self.frame = _Frame(self.side, self.rng)
        self.cx, self.cy = self.width / 2, self.height / 2
        self.downtown_r = max(500.0, 0.07 * self.side)
        self.art_every = 9  # cells between arterials (~1.5 km)
        self.next_id = self.ni * self.nj + 1  # ids above the lattice for extra nodes
        self.ox, self.oy = int(self.rng.integers(0, 9)), int(self.rng.integers(0, 9))

    # ---- lattice -----------------------------------------------------------------------
    def node_id(self, i, j):
        return 1 + np.asarray(j) * self.ni + np.asarray(i)

    def lattice_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Warped and jittered coordinates of every lattice point, flattened by id - 1."""
        jj, ii = np.divmod(np.arange(self.ni * self.nj), self.ni)
        x, y = ii * (DX / 2), jj * (DY / 2)
        x, y = self.frame.warp(x, y)
        jit = np.clip(self.rng.normal(0, 3.0, (2, x.size)), -8, 8)
        return x + jit[0], y + jit[1]

    def line_class(self, n_cells: int, offset: int) -> np.ndarray:
        """Road kind of each street line (index = cell boundary number)."""
        b = np.arange(n_cells + 1) + offset
        k = np.full(n_cells + 1, RESIDENTIAL)
        k[b % self.art_every == self.art_every // 2] = TERTIARY
        art = b % self.art_every == 0
        k[art] = np.where((b[art] // self.art_every) % 2 == 0, PRIMARY, SECONDARY)
        return k

    # ---- cells -------------------------------------------------------------------------
    def cells(self) -> None:
        rng = self.rng
        b, a = np.divmod(np.arange(self.ncx * self.ncy), self.ncx)
        self.ca, self.cb = a, b
        x, y = (a + 0.5) * DX, (b + 0.5) * DY
        self.cell_x, self.cell_y = x, y
        r = np.hypot(x - self.cx, y - self.cy)
        self.cell_r = r
        use = np.full(a.size, USE_RES)
        # lake: a disc away from downtown (towns smaller than 6 km have none)
        self.lake = None
        if self.side >= 6_000:
            lx, ly = self.cx + 0.27 * self.side, self.cy - 0.22 * self.side
            lr = 0.045 * self.side
            self.lake = (lx, ly, lr)
            use[np.hypot(x - lx, y - ly) < lr] = USE_WATER
        land = use == USE_RES
        art_x = (self.line_class(self.ncx, self.ox)[a] <= SECONDARY) | (
            self.line_class(self.ncx, self.ox)[a + 1] <= SECONDARY)
        art_y = (self.line_class(self.ncy, self.oy)[b] <= SECONDARY) | (
            self.line_class(self.ncy, self.oy)[b + 1] <= SECONDARY)
        on_art = art_x | art_y
        p_retail = np.where(on_art, np.where(r < self.downtown_r, 0.45, 0.18), 0.0)
        use[land & (rng.random(a.size) < p_retail)] = USE_RETAIL
        land = use == USE_RES
        use[land & (rng.random(a.size) < 0.035)] = USE_PARK
        land = use == USE_RES
        n_campus = max(1, int(round(self.population / 40_000)))
        cand = np.flatnonzero(land)
        use[rng.choice(cand, size=min(n_campus, cand.size), replace=False)] = USE_CAMPUS
        self.use = use
        # population weights: denser towards downtown, noisy, 0 in parks/campuses/water
        dens = np.exp(-r / (0.33 * self.side)) * rng.lognormal(0, 0.6, a.size)
        dens *= np.select([use == USE_RES, use == USE_RETAIL], [1.0, 0.25], 0.0)
        dens[rng.random(a.size) < 0.06] = 0.0  # some empty blocks (industry, cemeteries ...)
        self.pop = self._share(self.population, dens)
        # jobs: downtown, arterials, retail, campuses
        jw = (0.3 + 25 * np.exp(-r / (0.06 * self.side)) + 2.0 * on_art
              + 4.0 * (use == USE_RETAIL) + 6.0 * (use == USE_CAMPUS)) * rng.lognormal(0, 0.7, a.size)
        jw[use == USE_WATER] = 0
        self.jobs_total = int(round(0.55 * self.population))
        self.jobs = self._share(self.jobs_total, jw)

    def _share(self, total: int, weight: np.ndarray) -> np.ndarray:
        p = weight / weight.sum()
        return self.rng.multinomial(total, p).astype(np.int64)

    # ---- linear features -----------------------------------------------------------------
    def lines(self) -> list[tuple[np.ndarray, np.ndarray, int, dict]]:
        """All ways as (node ids, kind per way, reversed?, extra tags)."""
        rng = self.rng
        ni, nj, ncx, ncy = self.ni, self.nj, self.ncx, self.ncy
        # kinds per half-edge: ew[j, k] joins (k, j)-(k+1, j); ns[i, k] joins (i, k)-(i, k+1)
        ew = np.zeros((nj, ni - 1), np.int8)
        ns = np.zeros((ni, nj - 1), np.int8)
        ew[0::2, :] = self.line_class(ncy, self.oy)[:, None]
        ns[0::2, :] = self.line_class(ncx, self.ox)[:, None]
        # cell features
        use = self.use.reshape(ncy, ncx)
        res = use == USE_RES
        r = rng.random((2, ncy, ncx))
        alley = res & (r[0] < np.where(self.cell_r.reshape(ncy, ncx) < 3 * self.downtown_r, 0.6, 0.38))
        ew[1::2, 0::2] = np.where(alley, ALLEY, NONE)
        ew[1::2, 1::2] = np.where(alley, ALLEY, NONE)
        feat = np.select([r[1] < 0.14, r[1] < 0.36, r[1] < 0.72], [MIDPATH, CULDESAC, DRIVEWAY], NONE)
        feat = np.where(res | (use == USE_PARK), feat, NONE)
        feat = np.where(use == USE_PARK, MIDPATH, feat)
        ns[1::2, 0::2] = np.where(feat == MIDPATH, MIDPATH, np.where(feat == CULDESAC, CULDESAC, NONE)).T
        ns[1::2, 1::2] = np.where(feat == MIDPATH, MIDPATH, np.where(feat == DRIVEWAY, DRIVEWAY, NONE)).T
        # greenways: every ~1.6 km an east-west and a north-south off-street path at mid-block
        g = max(4, int(round(1_600 / DY)))
        for b in range(g // 2, ncy, g):
            lo, hi = sorted(rng.integers(0, ni - 1, 2))
            ew[2 * b + 1, max(0, lo - ni // 3):hi] = GREENWAY
        g = max(4, int(round(1_600 / DX)))
        for a in range(g // 2, ncx, g):
            lo, hi = sorted(rng.integers(0, nj - 1, 2))
            ns[2 * a + 1, max(0, lo - nj // 3):hi] = GREENWAY
        # downtown one-way couplets: arterial line + the next street, opposite directions
        jj = np.arange(nj - 1) * (DY / 2)
        ii = np.arange(ni - 1) * (DX / 2)
        down_y = np.abs(jj - self.cy) < self.downtown_r
        down_x = np.abs(ii - self.cx) < self.downtown_r
        cls_x, cls_y = self.line_class(ncx, self.ox), self.line_class(ncy, self.oy)
        mid_a, mid_b = int(round(self.cx / DX)), int(round(self.cy / DY))
        for a in range(ncx):  # the central street and arterials near downtown
            if a == mid_a or (cls_x[a] <= SECONDARY and abs(a * DX - self.cx) < 1.5 * self.downtown_r):
                ns[2 * a, down_y] = ONEWAY_FWD
                ns[2 * a + 2, down_y] = ONEWAY_REV
        for b in range(ncy):
            if b == mid_b or (cls_y[b] <= SECONDARY and abs(b * DY - self.cy) < 1.5 * self.downtown_r):
                ew[2 * b, down_x] = ONEWAY_FWD
                ew[2 * b + 2, down_x] = ONEWAY_REV
        # missing residential links (dead ends, T junctions), both halves of a street edge
        for arr in (ew, ns):
            street = arr[0::2]
            gone = (street[:, 0::2] == RESIDENTIAL) & (rng.random(street[:, 0::2].shape) < 0.045)
            street[:, 0::2][gone] = NONE
            street[:, 1::2][gone[:, : street[:, 1::2].shape[1]]] = NONE
        # the lake: no edge touching a lattice point inside it
        if self.lake is not None:
            lx, ly, lr = self.lake
            jj2, ii2 = np.meshgrid(np.arange(nj) * DY / 2, np.arange(ni) * DX / 2, indexing="ij")
            wet = np.hypot(ii2 - lx, jj2 - ly) < lr  # (nj, ni)
            ew[wet[:, :-1] | wet[:, 1:]] = NONE
            ns[(wet[:-1, :] | wet[1:, :]).T] = NONE
        self.ew, self.ns = ew, ns
        ways = []
        ways += self._runs(ew, horizontal=True)
        ways += self._runs(ns, horizontal=False)
        ways += self._diagonals()
        return ways

    def _runs(self, kind: np.ndarray, horizontal: bool) -> list:
        """Cut each lattice line into OSM ways: maximal runs of one kind, chopped at random
        (OSM ways rarely span a whole street) and at every cell boundary for per-cell features."""
        rng = self.rng
        nl, ne = kind.shape
        e = np.arange(ne)
        prev = np.concatenate([np.zeros((nl, 1), kind.dtype), kind[:, :-1]], axis=1)
        brk = rng.random(kind.shape) < 0.12
        per_cell = np.isin(kind, PER_CELL) & (e % 2 == 0)[None, :]
        start = (kind != NONE) & ((prev != kind) | (brk & (e % 2 == 0)[None, :]) | per_cell)
        present = kind != NONE
        li, ei = np.nonzero(present)  # row-major: sorted by line then position
        st = start[li, ei]
        wid = np.cumsum(st) - 1
        if horizontal:
            a_nodes, b_nodes = self.node_id(ei, li), self.node_id(ei + 1, li)
        else:
            a_nodes, b_nodes = self.node_id(li, ei), self.node_id(li, ei + 1)
        bounds = np.flatnonzero(st).tolist() + [len(wid)]
        kinds = kind[li, ei]
        out = []
        for w in range(len(bounds) - 1):
            lo, hi = bounds[w], bounds[w + 1]
            nodes = np.append(a_nodes[lo:hi], b_nodes[hi - 1])
            k = int(kinds[lo])
            line = int(li[lo])
            out.append((nodes, k, k == ONEWAY_REV, {"_line": line, "_h": horizontal}))
        return out

    def _diagonals(self) -> list:
        """Diagonal avenues: lattice street corners (2a+2t, 2b+2t), crossing cells corner to
        corner so they meet the grid only at its junctions (like real radial avenues)."""
        out = []
        n = max(1, int(self.side // 12_000) + 1)
        for d in range(n):
            a0 = int(self.ncx * (0.15 + 0.5 * d / n))
            b0 = int(self.ncy * 0.1)
            t = np.arange(0, min(self.ncx - a0, self.ncy - b0) + 1)
            if t.size < 3:
                continue
            ids = self.node_id(2 * (a0 + t), 2 * (b0 + t))
            if self.lake is not None:
                lx, ly, lr = self.lake
                dry = np.hypot((a0 + t) * DX - lx, (b0 + t) * DY - ly) >= lr + DX
                ids = ids[: np.argmin(dry) if not dry.all() else ids.size]
            for chunk in np.array_split(ids, max(1, ids.size // 12)):
                if chunk.size >= 2:
                    out.append((chunk, DIAGONAL, False, {"name": f"Diagonal Avenue {d + 1}"}))
        # glue chunks: each chunk starts where the previous one ended
        glued = []
        for w in out:
            if glued and glued[-1][1] == DIAGONAL and glued[-1][3]["name"] == w[3]["name"]:
                w = (np.insert(w[0], 0, glued[-1][0][-1]), *w[1:])
            glued.append(w)
        return glued

    # ---- tags ----------------------------------------------------------------------------
    def way_tags(self, kind: int, meta: dict, rng: np.random.Generator) -> dict[str, str]:
        u = rng.random(6)
        if kind in (PRIMARY, SECONDARY, TERTIARY, RESIDENTIAL, ONEWAY_FWD, ONEWAY_REV):
            line = meta["_line"] // 2
            h = meta["_h"]
            name = f"{_ordinal(line + 1)} {'Avenue' if h else 'Street'}"
            if kind in (ONEWAY_FWD, ONEWAY_REV):
                cls = self.line_class(self.ncy if h else self.ncx, self.oy if h else self.ox)[line]
                hw = HIGHWAY.get(int(cls), "secondary") if cls <= SECONDARY else "secondary"
                t = {"highway": hw, "name": name, "oneway": "yes", "lanes": "3",
                     "maxspeed": "30 mph"}
                if u[0] < 0.35:
                    t["cycleway:right"] = "lane"
                elif u[0] < 0.5:
                    t["cycleway:left"] = "track"
                return t
            t = {"highway": HIGHWAY[kind], "name": name}
            if kind in (PRIMARY, SECONDARY):
                t["lanes"] = "4" if u[1] < 0.8 else "6"
                t["maxspeed"] = ("35 mph", "40 mph", "45 mph")[int(u[2] * 3)]
                if u[0] < 0.15:
                    t["cycleway"] = "track"
                elif u[0] < 0.35:
                    t["cycleway:both"] = "lane"
                if u[3] < 0.2:
                    t["parking:lane:both"] = "parallel"
            elif kind == TERTIARY:
                t["lanes"] = "2"
                t["maxspeed"] = "30 mph" if u[2] < 0.7 else "25 mph"
                if u[0] < 0.35:
                    t["cycleway"] = "lane"
                elif u[0] < 0.45:
                    t["cycleway"] = "track"
                if u[3] < 0.5:
                    t["parking:lane:both"] = "parallel"
            else:
                if u[2] < 0.3:
                    t["maxspeed"] = "25 mph"
                if u[3] < 0.3:
                    t["parking:lane:both"] = "parallel"
                if u[4] < 0.02:
                    t["oneway"] = "yes"
                if u[0] < 0.04:
                    t["cycleway"] = "lane"
            return t
        if kind == DIAGONAL:
            t = {"highway": "secondary", "name": meta["name"], "lanes": "4", "maxspeed": "35 mph"}
            if u[0] < 0.4:
                t["cycleway"] = "lane"
            return t
        if kind == ALLEY:
            return {"highway": "service", "service": "alley"}
        if kind == DRIVEWAY:
            return {"highway": "service", "service": "driveway"}
        if kind == CULDESAC:
            return {"highway": "residential", "name": f"{_ordinal(meta['_line'] + 1)} Court"}
        if kind == GREENWAY:
            return {"highway": "cycleway", "surface": "asphalt", "name": "Greenway Trail"}
        if kind == MIDPATH:
            if u[0] < 0.5:
                return {"highway": "path", "bicycle": "designated"}
            if u[0] < 0.8:
                return {"highway": "footway", "bicycle": "yes", "width": "3"}
            return {"highway": "footway"}
        raise ValueError(kind)

    def junction_tags(self) -> dict[int, dict[str, str]]:
        """Signals, all-way stops and crossings on street junctions (even, even lattice points)."""
        rng = self.rng
        cls_x = self.line_class(self.ncx, self.ox)  # north-south street at column a
        cls_y = self.line_class(self.ncy, self.oy)
        A, B = np.meshgrid(np.arange(self.ncx + 1), np.arange(self.ncy + 1))
        cx, cy = cls_x[A], cls_y[B]
        hi, lo = np.minimum(cx, cy), np.maximum(cx, cy)  # smaller kind = bigger road
        u = rng.random(A.shape)
        v = rng.random(A.shape)
        tags: dict[int, dict[str, str]] = {}
        ids = self.node_id(2 * A, 2 * B)
        sig = (lo <= SECONDARY) & (u < 0.95) | (hi <= SECONDARY) & (lo == TERTIARY) & (u < 0.9) | (
            (hi == TERTIARY) & (lo == TERTIARY) & (u < 0.5))
        stop = (hi == TERTIARY) & (lo == TERTIARY) & ~sig | (hi == RESIDENTIAL) & (u < 0.03)
        minor = (hi <= TERTIARY) & (lo == RESIDENTIAL)
        for n in ids[sig].tolist():
            tags[n] = {"highway": "traffic_signals"}
        for n in ids[stop].tolist():
            tags[n] = {"highway": "stop", "stop": "all"}
        kinds = (("traffic_signals", None), ("marked", "yes"), ("zebra", None), ("island", None))
        pick = minor & (v < 0.25)
        for n, w in zip(ids[pick].tolist(), (v[pick] / 0.25 * 4).astype(int).tolist()):
            c, fl = kinds[min(w, 3)]
            t = {"highway": "crossing", "crossing": c}
            if fl:
                t["flashing_lights"] = fl
            if c == "zebra":
                t["crossing:island"] = "yes"
            tags[n] = t
        return tags


# --------------------------------------------------------------------------- writers
def _rect(x0, y0, x1, y1):
    return np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1),
                     np.stack([x0, y1], -1)], axis=1)  # (n, 4, 2)


def generate(out_dir: str | Path, population: int = 100_000, seed: int = 1) -> CityFiles:
    """Write a synthetic city (OSM extract, blocks, LODES, boundary, run.args) to ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder to write (created; existing files of the same names are replaced).
    population
        Number of residents; the area scales with it (30 × 30 km for one million).
    seed
        Seed of every random draw: the same (population, seed) gives the same files.

    Returns
    -------
    CityFiles
        Paths and counts (blocks, ways, nodes, routable segments, destinations ...).
    """
    import geopandas as gpd
    import osmium
    import pandas as pd
    import shapely

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = _City(population, seed)
    rng = c.rng
    c.cells()
    lx, ly = c.lattice_xy()
    ways = c.lines()
    node_tags = c.junction_tags()

    # ---- areas and points: parks, campuses, retail landuse, lake, buildings, destinations
    extra_xy: list[np.ndarray] = []  # (n, 2) arrays in local metres, ids from c.next_id
    areas: list[tuple[int, int, dict]] = []  # (first node id, n vertices, tags)
    points: list[tuple[int, dict]] = []

    def add_polys(rings: np.ndarray, tags_list: list[dict]) -> None:
        n, k, _ = rings.shape
        first = c.next_id
        extra_xy.append(rings.reshape(-1, 2))
        for t in range(n):
            areas.append((first + t * k, k, tags_list[t]))
        c.next_id += n * k

    def add_points(xy: np.ndarray, tags_list: list[dict]) -> None:
        first = c.next_id
        extra_xy.append(xy)
        for t in range(len(xy)):
            points.append((first + t, tags_list[t]))
        c.next_id += len(xy)

    cx0, cy0 = c.ca * DX, c.cb * DY
    inset = 14.0
    whole = _rect(cx0 + inset, cy0 + inset, cx0 + DX - inset, cy0 + DY - inset)
    for use, tagger in ((USE_PARK, lambda i: {"leisure": "park", "name": f"Park {i}"}),
                        (USE_RETAIL, lambda i: {"landuse": "retail"})):
        sel = np.flatnonzero(c.use == use)
        add_polys(whole[sel], [tagger(i) for i in range(sel.size)])
    campus = np.flatnonzero(c.use == USE_CAMPUS)
    ctags = [{"amenity": "university", "name": "Synthetic University"},
             {"amenity": "hospital", "name": "General Hospital"},
             {"amenity": "college", "name": "Community College"},
             {"amenity": "school", "name": "High School"}]
    add_polys(whole[campus], [ctags[i % len(ctags)] | {"building": "yes"} if i % 4 == 3
                              else ctags[i % len(ctags)] for i in range(campus.size)])
    if c.lake is not None:
        lxx, lyy, lr = c.lake
        ang = np.linspace(0, 2 * math.pi, 65)[:-1]
        ring = np.stack([lxx + lr * np.cos(ang), lyy + lr * np.sin(ang)], -1)[None]
        add_polys(ring, [{"natural": "water", "name": "Synthetic Lake"}])

    # building slots: 4 quadrants per residential / retail cell
    ok = np.flatnonzero((c.use == USE_RES) | (c.use == USE_RETAIL))
    slot_cell = np.repeat(ok, 4)
    slot_q = np.tile(np.arange(4), ok.size)
    sx0 = cx0[slot_cell] + (slot_q % 2) * DX / 2
    sy0 = cy0[slot_cell] + (slot_q // 2) * DY / 2
    # destinations, weighted to commercial cells / density
    dest_w = (c.pop[slot_cell] + 5.0 + 30.0 * (c.use[slot_cell] == USE_RETAIL)
              + 0.02 * c.jobs[slot_cell]).astype(float)
    dest_w /= dest_w.sum()
    poly_tags: list[dict] = []
    point_tags: list[dict] = []
    n_poly_wanted = 0
    plan = []
    for tags, per, share in DESTINATIONS:
        n = max(1, int(rng.poisson(population / per)))  # every category present
        npoly = int(rng.binomial(n, share))
        plan.append((tags, n - npoly, npoly))
        n_poly_wanted += npoly
    n_shops = int(population / PEOPLE_PER_SHOP)
    n_poly_wanted = min(n_poly_wanted, slot_cell.size)
    poly_slots = rng.choice(slot_cell.size, size=n_poly_wanted, replace=False, p=dest_w)
    pt_slots_all = rng.choice(slot_cell.size, size=sum(p[1] for p in plan) + n_shops, p=dest_w)
    pi = qi = 0
    for tags, npt, npoly in plan:
        for _ in range(npoly):
            if pi < n_poly_wanted:
                poly_tags.append(dict(tags, building="yes", name=f"{next(iter(tags.values())).title()} {pi}"))
                pi += 1
        point_tags += [dict(tags, name=f"{next(iter(tags.values())).title()} {qi + k}") for k in range(npt)]
        qi += npt
    shop_vals = rng.choice(len(RETAIL_SHOPS), size=n_shops,
                           p=np.r_[np.full(len(RETAIL_SHOPS) - 1, 0.99 / (len(RETAIL_SHOPS) - 1)), 0.01])
    point_tags += [{"shop": RETAIL_SHOPS[s]} for s in shop_vals.tolist()]
    poly_slots = poly_slots[: len(poly_tags)]
    # residential buildings in the free slots
    free = np.ones(slot_cell.size, bool)
    free[poly_slots] = False
    n_bld = min(int(population / PEOPLE_PER_BUILDING), int(free.sum()))
    bw = c.pop[slot_cell].astype(float) * free + 1e-9 * free
    bld_slots = rng.choice(slot_cell.size, size=n_bld, replace=False, p=bw / bw.sum())
    all_slots = np.concatenate([poly_slots, bld_slots])
    f = rng.uniform(0.35, 0.75, (2, all_slots.size))
    qx, qy = DX / 2 - 2 * inset, DY / 2 - 2 * inset
    x0 = sx0[all_slots] + inset + (1 - f[0]) * qx * rng.random(all_slots.size)
    y0 = sy0[all_slots] + inset + (1 - f[1]) * qy * rng.random(all_slots.size)
    rings = _rect(x0, y0, x0 + f[0] * qx, y0 + f[1] * qy)
    btypes = rng.choice(["house", "residential", "apartments", "yes", "detached", "commercial"],
                        size=n_bld, p=[0.35, 0.2, 0.15, 0.2, 0.05, 0.05])
    add_polys(rings, poly_tags + [{"building": str(b)} for b in btypes.tolist()])
    ps = pt_slots_all[: len(point_tags)]
    pxy = np.stack([sx0[ps] + DX / 4 + rng.normal(0, 12, ps.size),
                    sy0[ps] + DY / 4 + rng.normal(0, 12, ps.size)], -1)
    add_points(pxy, point_tags)

    # ---- OSM file --------------------------------------------------------------------------
    used = np.zeros(c.ni * c.nj + 1, bool)
    for w in ways:
        used[w[0]] = True
    lat_ids = np.flatnonzero(used)
    lon_l, lat_l = c.frame.lonlat(lx[lat_ids - 1], ly[lat_ids - 1])
    exy = np.concatenate(extra_xy) if extra_xy else np.zeros((0, 2))
    ex, ey = c.frame.warp(exy[:, 0], exy[:, 1])
    lon_e, lat_e = c.frame.lonlat(ex, ey)
    first_extra = c.ni * c.nj + 1
    osm_path = out / OSM_FILE
    tmp = out / (OSM_FILE + ".tmp.osm.pbf")
    tmp.unlink(missing_ok=True)
    Node, Way = osmium.osm.mutable.Node, osmium.osm.mutable.Way
    w_rng = np.random.default_rng(seed + 1)
    ttag = {k: v for k, v in node_tags.items() if used[k]}
    point_by_id = dict(points)
    writer = osmium.SimpleWriter(str(tmp))
    try:
        for nid, lo, la in zip(lat_ids.tolist(), lon_l.tolist(), lat_l.tolist()):
            t = ttag.get(nid)
            writer.add_node(Node(id=nid, location=(lo, la), tags=t) if t
                            else Node(id=nid, location=(lo, la)))
        for k, (lo, la) in enumerate(zip(lon_e.tolist(), lat_e.tolist())):
            nid = first_extra + k
            t = point_by_id.get(nid)
            writer.add_node(Node(id=nid, location=(lo, la), tags=t) if t
                            else Node(id=nid, location=(lo, la)))
        wid = 1
        all_nodes = []
        for nodes, kind, rev, meta in ways:
            tags = c.way_tags(kind, meta, w_rng)
            nl = nodes[::-1] if rev else nodes
            writer.add_way(Way(id=wid, nodes=nl.tolist(), tags=tags))
            all_nodes.append(nl)
            wid += 1
        n_road_ways = wid - 1
        for first, k, tags in areas:
            nl = list(range(first, first + k)) + [first]
            writer.add_way(Way(id=wid, nodes=nl, tags=tags))
            wid += 1
    finally:
        writer.close()
    tmp.replace(osm_path)

    # routable segments by the osm2pgrouting rule (split where a node is used by > 1 way)
    cat = np.concatenate(all_nodes)
    uses = np.bincount(cat, minlength=c.next_id + 1)  # areas never share nodes with roads

    lens = np.array([len(a) for a in all_nodes])
    inner = np.ones(cat.size, bool)
    ends = np.cumsum(lens)
    inner[ends - 1] = False
    inner[np.r_[0, ends[:-1]]] = False
    n_seg = int(len(all_nodes) + np.count_nonzero(inner & (uses[cat] > 1)))

    # ---- blocks -------------------------------------------------------------------------------
    corners = _rect(cx0, cy0, cx0 + DX, cy0 + DY)
    wx, wy = c.frame.warp(corners[..., 0].ravel(), corners[..., 1].ravel())
    ring = np.stack([wx, wy], -1).reshape(-1, 4, 2) + [ORIGIN_E, ORIGIN_N]
    polys = shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
    tract = (c.ca // 10) * 1000 + (c.cb // 10)
    blk = 1000 + (c.ca % 10) * 10 + (c.cb % 10)
    geoid = np.char.add(np.char.add(STATE_FIPS + COUNTY_FIPS, np.char.zfill(tract.astype(str), 6)),
                        blk.astype(str))
    area = np.round(shapely.area(polys)).astype(np.int64)
    water = c.use == USE_WATER
    blocks = gpd.GeoDataFrame({
        "STATEFP20": STATE_FIPS, "COUNTYFP20": COUNTY_FIPS,
        "TRACTCE20": np.char.zfill(tract.astype(str), 6), "BLOCKCE20": blk.astype(str),
        "GEOID20": geoid, "NAME20": np.char.add("Block ", blk.astype(str)),
        "ALAND20": np.where(water, 0, area), "AWATER20": np.where(water, area, 0),
        "HOUSING20": np.round(c.pop / 2.4).astype(np.int64), "POP20": c.pop,
    }, geometry=polys, crs=UTM_EPSG).to_crs(4269)
    with tempfile.TemporaryDirectory(dir=out) as td:
        stem = Path(BLOCKS_FILE).stem
        blocks.to_file(Path(td) / f"{stem}.shp", driver="ESRI Shapefile")
        tmpzip = out / (BLOCKS_FILE + ".tmp")
        with zipfile.ZipFile(tmpzip, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for p in sorted(Path(td).iterdir()):
                z.write(p, p.name)
        tmpzip.replace(out / BLOCKS_FILE)

    # ---- boundary: wavy square inset from the lattice -------------------------------------
    t = np.linspace(0, 1, 81)[:-1]
    amp = min(250.0, c.side / 20)
    W, H = c.width, c.height
    ph = rng.integers(1, 4, 4)  # waves per side; the offset is 0 at the corners

    def off(s, k):
        return MARGIN + amp * np.sin(math.pi * k * s) ** 2

    span_x, span_y = W - 2 * MARGIN, H - 2 * MARGIN
    bx = np.concatenate([MARGIN + span_x * t, W - off(t, ph[1]),
                         W - MARGIN - span_x * t, off(t, ph[3])])
    by = np.concatenate([off(t, ph[0]), MARGIN + span_y * t,
                         H - off(t, ph[2]), H - MARGIN - span_y * t])
    bxx, byy = c.frame.lonlat(*c.frame.warp(bx, by))
    bpoly = shapely.polygons(np.stack([np.r_[bxx, bxx[:1]], np.r_[byy, byy[:1]]], -1))
    bgdf = gpd.GeoDataFrame({"name": ["Synthetic City"], "GEOID": [CITY_FIPS]}, geometry=[bpoly],
                            crs=4326)
    btmp = out / (BOUNDARY_FILE + ".tmp")
    bgdf.to_file(btmp, driver="GeoJSON")
    btmp.replace(out / BOUNDARY_FILE)

    # ---- LODES 8 OD files -------------------------------------------------------------------
    work = np.flatnonzero(c.jobs > 0)
    jobs_w = c.jobs[work]
    aux = np.where(rng.random(work.size) < 0.3, np.maximum(1, jobs_w // 10), 0)
    aux = np.minimum(aux, jobs_w)
    main = jobs_w - aux
    # each workplace block's main jobs split over up to 3 home blocks
    homes = rng.choice(c.pop.size, size=(work.size, 3), p=(c.pop + 1e-9) / (c.pop + 1e-9).sum())
    split = rng.dirichlet(np.ones(3), size=work.size)
    parts = np.floor(main[:, None] * split).astype(np.int64)
    parts[:, 0] += main - parts.sum(1)
    wcol = np.repeat(geoid[work], 3)
    hcol = geoid[homes.ravel()]
    s000 = parts.ravel()
    keep = s000 > 0

    def od(w, h, s):
        s = np.asarray(s, np.int64)
        a1 = s // 3
        a2 = s // 3
        df = pd.DataFrame({"w_geocode": w, "h_geocode": h, "S000": s, "SA01": a1, "SA02": a2,
                           "SA03": s - a1 - a2, "SE01": a1, "SE02": a2, "SE03": s - a1 - a2,
                           "SI01": a1, "SI02": a2, "SI03": s - a1 - a2, "createdate": 20240101})
        return df.sort_values(["w_geocode", "h_geocode"], kind="stable")

    jobs_paths = []
    for name, df in ((JOBS_MAIN_FILE, od(wcol[keep], hcol[keep], s000[keep])),
                     (JOBS_AUX_FILE, od(geoid[work][aux > 0], "560019999001000", aux[aux > 0]))):
        tmpc = out / (name + ".tmp")
        df.to_csv(tmpc, index=False)
        tmpc.replace(out / name)
        jobs_paths.append(str((out / name).resolve()))

    files = CityFiles(
        folder=str(out.resolve()), osm=str(osm_path.resolve()),
        boundary=str((out / BOUNDARY_FILE).resolve()), blocks=str((out / BLOCKS_FILE).resolve()),
        jobs=jobs_paths, run_args=str((out / "run.args").resolve()), seed=seed,
        population=int(c.pop.sum()), jobs_total=int(c.jobs.sum()), side_m=round(c.side, 1),
    )
    files.counts = {
        "blocks": int(len(blocks)), "blocks_populated": int((c.pop > 0).sum()),
        "highway_ways": n_road_ways, "road_segments": n_seg,
        "nodes": int(lat_ids.size + len(exy)), "ways": wid - 1,
        "destination_polygons": len(poly_tags), "destination_points": len(point_tags) - n_shops,
        "shop_points": n_shops, "buildings": int(n_bld + len(poly_tags)),
        "parks": int((c.use == USE_PARK).sum()), "signals": sum(
            1 for v in ttag.values() if v.get("highway") == "traffic_signals"),
    }
    lines = ["# pna-engine run arguments for this synthetic city, one per line "
             "(paths relative to this folder)", *run_args(files, relative=True)]
    (out / "run.args").write_text("\n".join(lines) + "\n")
    files.seconds = round(time.perf_counter() - t0, 2)
    (out / "city.json").write_text(json.dumps(asdict(files), indent=2) + "\n")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", help="folder to write")
    ap.add_argument("--population", type=int, default=100_000,
                    help="number of residents (default %(default)s; 1000000 = 30 x 30 km)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="empty OUT_DIR first")
    a = ap.parse_args(argv)
    if a.force and Path(a.out_dir).exists():
        shutil.rmtree(a.out_dir)
    f = generate(a.out_dir, population=a.population, seed=a.seed)
    print(json.dumps({"seconds": f.seconds, "side_m": f.side_m, "population": f.population,
                      "jobs": f.jobs_total, **f.counts}, indent=1))
    print(f"run: cd {f.folder} && grep -v '^#' run.args | xargs -d '\\n' pna-engine run "
          "--output OUT", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
