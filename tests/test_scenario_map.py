"""The scenario map keeps short changed ways visible: a ring of fixed screen size around each
changed way, measured in a real browser (Debian's Chromium via Playwright) at two zooms."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwrightkit import missing
from resultsfactory import write_export
from shapely.ops import substring

from pna_helpers import maps
from pna_helpers.results import load_results

_WHY = missing()


@pytest.fixture()
def short_change(tmp_path: Path):
    """A result's blocks and ways, and one way cut to a 3 m piece: the change."""
    res = load_results(write_export(tmp_path / "place"))
    ways = res.ways
    one = ways.iloc[[0]].to_crs(ways.estimate_utm_crs())
    one = one.set_geometry([substring(one.geometry.iloc[0], 0.0, 3.0)], crs=one.crs)
    return res.blocks.assign(delta=0.5), ways, one.to_crs(4326)


def test_one_ring_per_changed_way_on_the_way(short_change) -> None:
    _blocks, ways, _short = short_change
    two = ways.iloc[[1, 1]].assign(osm_id=ways["osm_id"].iloc[1])  # one way, two segments
    pts = maps.changed_way_points(two)
    assert len(pts) == 1 and pts["osm_id"].iloc[0] == ways["osm_id"].iloc[1]
    utm = ways.estimate_utm_crs()
    assert pts.to_crs(utm).distance(ways.iloc[[1]].to_crs(utm).geometry.iloc[0]).iloc[0] < 0.01


_RINGS = """c => {
  const m = Object.keys(window).filter(k => k.startsWith('map_') && window[k] instanceof L.Map)
                  .map(k => window[k])[0];
  const out = {rings: [], lines: []};
  m.eachLayer(l => {
    if (!(l instanceof L.Path) || l.options.color !== c || !l._path) return;
    const r = l._path.getBoundingClientRect();
    (l instanceof L.CircleMarker ? out.rings : out.lines).push([r.width, r.height]);
  });
  return out;
}"""


#: Centre the map on the ring at zoom ``z``.
_CENTRE = """([z, c]) => {
  const m = Object.keys(window).filter(k => k.startsWith('map_') && window[k] instanceof L.Map)
                  .map(k => window[k])[0];
  m.eachLayer(l => {
    if (l instanceof L.CircleMarker && l.options.color === c) {
      m.setView(l.getLatLng(), z, {animate: false});
    }
  });
  return true;
}"""


@pytest.mark.browser
@pytest.mark.skipif(_WHY is not None, reason=str(_WHY))
def test_ring_keeps_a_short_change_visible_at_any_zoom(browser, short_change,
                                                       tmp_path: Path) -> None:
    blocks, ways, short = short_change
    page_file = maps.save_map(maps.delta_map(blocks, "delta", ways=ways, highlight=short),
                              tmp_path / "scenario.html")
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
               else r.abort())
    try:
        page.goto(page_file.as_uri())
        page.wait_for_function("() => Object.keys(window).some(k => k.startsWith('map_'))")
        seen = {}
        for zoom in (11, 18):
            page.evaluate(_CENTRE, [zoom, maps.CHANGED_COLOR])
            page.wait_for_timeout(300)
            seen[zoom] = page.evaluate(_RINGS, maps.CHANGED_COLOR)
    finally:
        page.close()
    size = 2 * maps.CHANGED_RING_PX
    for zoom, s in seen.items():
        assert len(s["rings"]) == 1, (zoom, s)
        w, h = s["rings"][0]
        assert size - 1 <= w <= size + 6 and size - 1 <= h <= size + 6, (zoom, s)
    # zoomed out, the 3 m line itself is a dot no bigger than its stroke: the ring is the mark
    assert max(seen[11]["lines"][0]) < 12 < size
