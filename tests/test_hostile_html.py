"""Values from outside never run as script: OSM names and tags, place names, file names and
error messages full of HTML reach maps, the report and the ``pna report --many`` index as text.

Headless Chromium (Playwright on Debian's chromium) opens each page with a hostile export;
every ``alert`` (a hostile ``<img onerror>``, ``<script>``, ``<svg onload>`` ...) is recorded
as a dialog. In every map every layer is shown and every tooltip opened; the test asserts that
no dialog fired and that the hostile strings are there, shown as text.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from playwrightkit import missing
from resultsfactory import write_export

_WHY = missing()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_WHY is not None, reason=str(_WHY))]

#: Each runs script if it ever reaches a page as HTML (or as a URL).
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "javascript:alert(3)",
    "\"'><svg onload=alert(4)>",
    "</iframe><img src=x onerror=alert(5)>",
    "</script><script>alert(6)</script>",
    "<a href=\"javascript:alert(7)\">x</a>",
]
PLACE = "Evil <img src=x onerror=alert(44)> & \"Co\" </iframe>"


@pytest.fixture(scope="module")
def hostile_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small test export with hostile way names, tag values and destination names."""
    folder = write_export(tmp_path_factory.mktemp("hostile") / "place")
    ways = gpd.read_file(folder / "neighborhood_ways.geojson")
    ways["name"] = [HOSTILE[i % len(HOSTILE)] for i in range(len(ways))]
    ways["ft_bike_infra"] = HOSTILE[3]  # a tag value, not only a name
    ways.to_file(folder / "neighborhood_ways.geojson", driver="GeoJSON")
    parks = gpd.read_file(folder / "neighborhood_parks.geojson")
    parks["park_name"] = [HOSTILE[0], HOSTILE[4]]
    parks.to_file(folder / "neighborhood_parks.geojson", driver="GeoJSON")
    return folder



#: In every Leaflet map of a frame: show every layer of the layer controls, open every tooltip
#: (each feature of a GeoJSON layer) and return the tooltip texts.
_OPEN_EVERYTHING = """() => {
  const maps = Object.keys(window).filter(k => k.startsWith('map_') && window[k] instanceof L.Map)
                                  .map(k => window[k]);
  const texts = [];
  const at = l => l.getLatLng ? l.getLatLng() : l.getCenter();
  const open = (owner, sub) => {
    try {
      if (sub) owner.openTooltip(sub, at(sub)); else owner.openTooltip(at(owner));
      const el = owner.getTooltip().getElement();
      texts.push(el ? el.textContent : '');
      owner.closeTooltip();
    } catch (e) {  // a tooltip Leaflet cannot place now: fill a box the way Leaflet does
      const c = owner.getTooltip()._content;
      const content = typeof c === 'function' ? c(sub || owner) : c;
      const box = document.body.appendChild(document.createElement('div'));
      if (typeof content === 'string') box.innerHTML = content; else box.appendChild(content);
      texts.push(box.textContent);
    }
  };
  const openAll = m => m.eachLayer(l => {
    if (!l.getTooltip || !l.getTooltip()) return;
    if (l.eachLayer) l.eachLayer(s => open(l, s)); else open(l);
  });
  const inputs = [...document.querySelectorAll('.leaflet-control-layers-selector')];
  for (const i of inputs) if (i.type === 'checkbox' && !i.checked) i.click();
  maps.forEach(openAll);
  for (const i of inputs) if (i.type === 'radio') { i.click(); maps.forEach(openAll); }
  const names = [...document.querySelectorAll('.leaflet-control-layers label, .pna-legend')]
                .map(e => e.textContent);
  return {maps: maps.length, texts, names, layers: inputs.length};
}"""


def open_everything(browser, page_path: Path) -> dict:
    """Load ``page_path`` offline, show every layer, open every tooltip; return what fired."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
              else r.abort())
    page = ctx.new_page()
    fired: list[str] = []
    page.on("dialog", lambda d: (fired.append(d.message), d.dismiss()))
    try:
        page.goto(page_path.as_uri(), wait_until="load", timeout=60_000)
        page.wait_for_timeout(500)
        seen = {"maps": 0, "texts": [], "names": [], "layers": 0}
        for frame in page.frames:
            try:
                has_leaflet = frame.evaluate("() => typeof L !== 'undefined'")
            except Exception:  # noqa: BLE001 - a frame without a document yet
                continue
            if has_leaflet:
                got = frame.evaluate(_OPEN_EVERYTHING)
                for k in seen:
                    seen[k] += got[k]
        page.wait_for_timeout(800)  # any image error handler fires by now
        seen["fired"] = fired
        seen["text"] = page.evaluate("() => document.body.innerText")
        seen["links"] = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        return seen
    finally:
        ctx.close()


def _assert_safe(seen: dict) -> None:
    assert seen["fired"] == [], f"script ran: {seen['fired']}"


def test_maps_show_hostile_values_as_text(browser, hostile_export: Path, tmp_path: Path) -> None:
    from pna_helpers import maps

    page = maps.save_map(hostile_export, tmp_path / "explore.html")  # maps.save_map(results)
    seen = open_everything(browser, page)
    _assert_safe(seen)
    assert seen["maps"] == 1
    tips = "\n".join(seen["texts"])
    # the hostile names are there, as text, in the street and destination tooltips
    for value in (HOSTILE[0], HOSTILE[1], HOSTILE[4], HOSTILE[5]):
        assert value in tips, (value, tips[:2000])
    assert HOSTILE[3] in tips  # a tag value (bike infrastructure)


def test_difference_map_with_hostile_place_names(browser, hostile_export: Path,
                                                 tmp_path: Path) -> None:
    from pna_helpers import maps
    from pna_helpers.results import load_results

    a = load_results(hostile_export, name=PLACE)
    b = load_results(hostile_export, name=HOSTILE[1])
    page = maps.save_map(maps.difference_map(a, b), tmp_path / "diff.html")
    seen = open_everything(browser, page)
    _assert_safe(seen)
    assert any(PLACE in n for n in seen["names"]), seen["names"]  # layer name and legend title


def test_report_with_hostile_place_and_names(browser, hostile_export: Path,
                                             tmp_path: Path) -> None:
    from pna_helpers import reports

    out = reports.render_report(hostile_export, tmp_path / "report.html", name=PLACE)
    seen = open_everything(browser, out)
    _assert_safe(seen)
    assert seen["maps"] == 2  # both embedded maps opened, every tooltip
    assert PLACE in seen["text"]  # the place in the heading, as text
    assert HOSTILE[0] in "\n".join(seen["texts"])


def test_many_index_with_hostile_locations(browser, hostile_export: Path, tmp_path: Path) -> None:
    from pna_helpers import reports

    bad = [f"{tmp_path}/{v}" for v in HOSTILE]  # not result sets: listed with their errors
    index = reports.render_many(bad, tmp_path / "many", progress=False)
    seen = open_everything(browser, index)
    _assert_safe(seen)
    for v in HOSTILE:
        assert v in seen["text"]
    assert not [u for u in seen["links"] if u.lower().startswith("javascript:")]
    assert json.dumps(seen["links"])  # links, if any, are plain file links
