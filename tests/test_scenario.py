"""Scenarios: island connectors on the real Helsinki demo network."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from pna_helpers import scenario
from pna_helpers.results import Results, demo_results


@pytest.fixture(scope="module")
def demo() -> Results:
    return demo_results()


def _merged_islands(ways: gpd.GeoDataFrame, osm_id: int) -> int:
    """Islands of the low-stress network that upgrading the way's segments (those with a
    low-stress crossing) joins to another island, counted with networkx."""
    def num(c: str) -> np.ndarray:
        return pd.to_numeric(ways[c], errors="coerce").to_numpy(dtype=float)

    low = np.zeros(len(ways), dtype=bool)
    upgradable = np.zeros(len(ways), dtype=bool)
    for d in ("ft", "tf"):
        seg, crossing = num(f"{d}_seg_stress"), num(f"{d}_int_stress")
        low |= (seg == 1) & ((crossing == 1) | np.isnan(crossing))
        upgradable |= (crossing == 1) | np.isnan(crossing)
    fr, to = num("intersection_from"), num("intersection_to")
    g = nx.Graph()
    g.add_edges_from((fr[k], to[k]) for k in np.flatnonzero(low))
    island = {node: k for k, part in enumerate(nx.connected_components(g)) for node in part}
    g.add_edges_from((fr[k], to[k]) for k in np.flatnonzero((num("osm_id") == osm_id)
                                                           & upgradable))
    counts = [len({island[v] for v in part if v in island})
              for part in nx.connected_components(g)]
    return sum(c for c in counts if c >= 2)


def test_island_connectors_count_the_islands_each_way_merges(demo: Results) -> None:
    found = scenario.find_island_connectors(demo, max_ways=50)
    assert len(found) >= 5, found
    assert found["gain"].is_monotonic_decreasing and (found["gain"] > 0).all()
    # not the islands (or off-network crossings) a way merely touches: the ones it merges
    truth = [_merged_islands(demo.ways, int(w)) for w in found["osm_id"]]
    assert found["islands_joined"].tolist() == truth
    assert min(truth) >= 2
    # max_ways keeps the best ones
    top = scenario.find_island_connectors(demo, max_ways=3)
    assert top["osm_id"].tolist() == found["osm_id"].head(3).tolist()


def test_island_connectors_skip_segments_without_way_id(demo: Results, tmp_path: Path) -> None:
    base = scenario.find_island_connectors(demo, max_ways=50)
    best = int(base["osm_id"].iloc[0])
    folder = Path(shutil.copytree(demo.folder, tmp_path / "no-ids"))
    path = folder / "neighborhood_ways.geojson"
    ways = gpd.read_file(path)
    ways["osm_id"] = ways["osm_id"].astype(float)
    ways.loc[ways["osm_id"] == best, "osm_id"] = np.nan  # the best connector loses its id
    ways.to_file(path, driver="GeoJSON")
    found = scenario.find_island_connectors(folder, max_ways=50)
    assert found["osm_id"].notna().all()
    pd.testing.assert_frame_equal(found, base[base["osm_id"] != best].reset_index(drop=True))
