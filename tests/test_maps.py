"""Maps: self-contained offline HTML, stress classes, legends, size of big networks, charts."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from resultsfactory import write_export
from shapely.geometry import LineString

from pna_engine.errors import InputError
from pna_helpers import charts, compare, maps
from pna_helpers.results import load_results


@pytest.fixture()
def export(tmp_path: Path) -> Path:
    return write_export(tmp_path / "place")


def _assert_offline(html: str) -> None:
    assert not re.search(r'<script[^>]+src="https?://', html), "a script still loads from the web"
    assert not re.search(r'<link[^>]+href="https?://[^"]+\.css', html), "a stylesheet from the web"
    assert "leaflet.js (offline copy)" in html
    assert "jquery.min.js (offline copy)" in html
    assert "L.map(" in html


def test_stress_map_is_self_contained_with_stress_classes(export: Path, tmp_path: Path) -> None:
    m = maps.stress_map(export)
    out = maps.save_map(m, tmp_path / "stress.html")
    html = out.read_text()
    _assert_offline(html)
    with pytest.raises(InputError, match=r"it is a folder; give an HTML file name, e\.g\. "):
        maps.save_map(m, tmp_path)  # not the atomic writer's '/.tmp.XXXX' error
    # spec: a segment is low stress when every direction with a segment stress is 1
    # resultsfactory.WAYS: 101, 103, 105, 106 -> low; 102 (3/3), 104 (3/one-way) -> high
    assert "Low-stress network (4 segments)" in html
    assert "High-stress network (2 segments)" in html
    # tooltips: the attributes that decided the stress
    tips = dict(zip(load_results(export).ways["osm_id"],
                    maps.stress_tooltips(load_results(export).ways)))
    assert tips[102] == ("Main Road - way 102\nprimary 40 mph, one-way -\nlanes 2/2, parking "
                         "-/-\nbike infra -/-\nft: segment 3 crossing 3\ntf: segment 3 "
                         "crossing 1")
    assert "bike infra lane/-" in tips[104]
    for value in ('"Main Road"', '"primary"', '" mph, one-way "'):  # tooltip dictionaries
        assert value in html
    assert maps.LOW_STRESS_COLOR in html and maps.HIGH_STRESS_COLOR in html
    # notebook display: an iframe whose document is the same self-contained page
    rep = m._repr_html_()
    assert rep.startswith("<div") and "srcdoc=" in rep and "https://cdn.jsdelivr" not in rep


def test_blocks_map_colours_and_legend(export: Path) -> None:
    assert maps._score_color(90) == maps.SCORE_COLORS[4]
    assert maps._score_color(40) == maps.SCORE_COLORS[2]
    assert maps._score_color(100) == maps.SCORE_COLORS[4]
    assert maps._score_color(0) == maps.SCORE_COLORS[0]
    assert maps._score_color(float("nan")) == maps.NO_DATA_COLOR
    html = maps.blocks_map(export).to_html()
    _assert_offline(html)
    # blocks 90, 40, 70, none
    for c in (maps.SCORE_COLORS[4], maps.SCORE_COLORS[2], maps.SCORE_COLORS[3], maps.NO_DATA_COLOR):
        assert c in html
    assert "pna-legend" in html and "Block score: Overall (0-100)" in html


def _legend(html: str) -> tuple[str, list[tuple[str, str]]]:
    """Title and (colour, label) rows of the map's legend box."""
    box = html.split('class="pna-legend"', 1)[1].split("</div></div>", 1)[0]
    title = re.search(r'class="pna-legend-title">([^<]*)</b>', box).group(1)
    return title, re.findall(r"background:(#[0-9a-f]{6});[^>]*></span>([^<]*)</div>", box + "</div>")


@pytest.mark.parametrize("column", ["overall_score", "transit_score", "pop_score"])
def test_blocks_map_legend_reads_as_the_layer_draws(export: Path, column: str) -> None:
    html = maps.blocks_map(export, column).to_html()
    title, rows = _legend(html)
    # the layer and the legend say the same scale (0-1 columns are drawn x100)
    layer = re.search(r'"(Blocks: [^"]+)"', html).group(1)
    assert title == "Block score: " + layer.split(": ", 1)[1] and title.endswith("(0-100)")
    legend = dict(rows)
    assert legend[maps.NO_DATA_COLOR] == "no data (nothing reachable)"
    # every block's colour is the legend row whose 0-100 range holds the value it shows
    [payload] = [json.loads(p) for p in re.findall(r", d = (\{.*?\});\n", html)]
    assert len(payload["v"]) == 4
    for v, code in zip(payload["v"], payload["c"]):
        color = payload["k"][code]
        if v is None:
            assert color == maps.NO_DATA_COLOR
            continue
        lo, hi = (float(x) for x in legend[color].split(" - "))
        assert lo <= v <= hi and hi <= 100, (v, color, legend[color])
    assert [lbl for _, lbl in rows[:5]] == ["0 - 20", "20 - 40", "40 - 60", "60 - 80", "80 - 100"]


def test_blocks_map_missing_column_is_one_line(export: Path) -> None:
    with pytest.raises(InputError, match=r"have no column 'bike_score'.*choose one of "
                                         r"overall_score, pop_score") as e:
        maps.blocks_map(export, "bike_score")
    assert "\n" not in str(e.value)


def test_delta_map_legend_has_the_grey_of_blocks_with_no_value(export: Path,
                                                                 tmp_path: Path) -> None:
    other = write_export(tmp_path / "other", score_shift=0.05)
    diff = compare.block_differences(export, other)
    assert diff["delta"].isna().sum() == 1  # block 3 has no overall score in either set
    html = maps.delta_map(diff).to_html()
    _, rows = _legend(html)
    assert (maps.NO_DATA_COLOR, "no value") in rows
    assert f'"fillColor": "{maps.NO_DATA_COLOR}"' in html  # and it is drawn in that grey
    # a map where every block has a value does not list it
    _, rows = _legend(maps.delta_map(diff.fillna({"delta": 0.0})).to_html())
    assert "no value" not in [lbl for _, lbl in rows]
    with pytest.raises(InputError, match="have no column 'change'"):
        maps.delta_map(diff, "change")


def test_explore_map_layers(export: Path) -> None:
    html = maps.explore_map(export).to_html()
    _assert_offline(html)
    for name in ("Blocks: Overall (0-100)", "Blocks: Transit (0-100)", "Low-stress network",
                 "Destinations: parks (2)", "North Park"):
        assert name in html
    assert "L.control.layers" in html
    # the block layers are exclusive choices (radio buttons); network and destinations overlay
    base = html.split("base_layers :", 1)[1].split("overlays :", 1)[0]
    assert "Blocks: Overall (0-100)" in base and "Blocks: Transit (0-100)" in base
    assert "Low-stress network" not in base and "Destinations" not in base
    assert '"pane": "pnaNetwork"' in html  # the network is drawn above the blocks


def test_delta_map_signs() -> None:
    assert maps._delta_color(25) == maps.DELTA_COLORS[-1]   # big gain: dark blue
    assert maps._delta_color(-25) == maps.DELTA_COLORS[0]   # big loss: dark red
    assert maps._delta_color(0) == maps.DELTA_COLORS[3]     # no change


def test_big_network_map_stays_small(tmp_path: Path) -> None:
    # 20,000 segments of 5 vertices each, with columns the map must drop
    n = 20_000
    rng = np.random.default_rng(0)
    x0 = 24.9 + (np.arange(n) % 200) * 0.0012
    y0 = 60.15 + (np.arange(n) // 200) * 0.0006
    geoms = [LineString([(x + k * 0.00012, y + 0.00003 * ((k * 7) % 3)) for k in range(5)])
             for x, y in zip(x0, y0)]
    ways = gpd.GeoDataFrame({
        "road_id": np.arange(n), "osm_id": 1_000_000 + np.arange(n),
        "name": ["Some fairly long street name"] * n,
        "tdg_id": [str(uuid.UUID(int=i)) for i in range(n)],
        "functional_class": rng.choice(["residential", "primary", "path"], n),
        "speed_limit": rng.choice([20, 30, 40], n), "one_way_car": None,
        "ft_lanes": 1, "tf_lanes": 1, "ft_park": None, "tf_park": None,
        "ft_bike_infra": None, "tf_bike_infra": None,
        "ft_seg_stress": rng.choice([1, 3], n), "tf_seg_stress": rng.choice([1, 3], n),
        "ft_int_stress": 1, "tf_int_stress": 3,
    }, geometry=geoms, crs=4326)
    folder = write_export(tmp_path / "big")
    ways.to_file(folder / "neighborhood_ways.geojson", driver="GeoJSON")
    out = maps.save_map(maps.stress_map(load_results(folder)), tmp_path / "big.html")
    size_mb = out.stat().st_size / 1e6
    html = out.read_text()
    assert "00000000-0000-0000" not in html  # unused columns (tdg_id) dropped
    # decode the compact payloads as the browser does: every segment there, coordinates exact
    # to 1e-6 degrees (first vertex of a line is kept by the simplification)
    payloads = [json.loads(p) for p in re.findall(r"var d = (\{.*?\});\n", html)]
    assert sum(len(p["c"]) for p in payloads) == n
    first = {}
    for p in payloads:
        ids = p["k"][1]  # osm_id column of the tooltip template
        for line, code in zip(p["c"], p["v"][1]):
            first[int(ids[code])] = (line[0] / 1e6, line[1] / 1e6)
    x, y = first[1_000_000 + 777]
    assert x == pytest.approx(x0[777], abs=1e-6) and y == pytest.approx(y0[777], abs=1e-6)
    assert size_mb < 4, f"{size_mb:.1f} MB"


def test_charts_draw(export: Path) -> None:
    res = load_results(export)
    fig = charts.category_scores(res)
    bars = [p.get_width() for p in fig.axes[0].patches]
    assert sorted(bars) == sorted([85.89, 94.39, 100.0, 84.12, 100.0, 90.38, 100.0])
    fig = charts.mileage_by_stress(res)
    assert len(fig.axes[0].patches) > 0
    fig = charts.block_score_distribution(res)
    # 3 blocks have an overall score; their population 100 + 50 + 80
    assert sum(p.get_height() for p in fig.axes[0].patches) == 3
    assert sum(p.get_height() for p in fig.axes[1].patches) == pytest.approx(230)


def test_block_layers_share_one_geometry(tmp_path: Path) -> None:
    from shapely.geometry import box

    from pna_helpers.results import BLOCK_SCORE_COLUMNS

    n = 20_000
    rng = np.random.default_rng(1)
    x = 24.9 + (np.arange(n) % 200) * 0.002
    y = 60.1 + (np.arange(n) // 200) * 0.001
    cols = {c: rng.uniform(0, 100 if c == "overall_score" else 1, n) for c in BLOCK_SCORE_COLUMNS}
    blocks = gpd.GeoDataFrame({"geoid20": [f"{i:015d}" for i in range(n)], "pop20": 10, **cols},
                              geometry=[box(a, b, a + 0.002, b + 0.001) for a, b in zip(x, y)],
                              crs=4326)
    m = maps.new_map(blocks)
    for col in BLOCK_SCORE_COLUMNS:  # overall + 6 categories, as in the explore map
        maps.add_blocks_layer(m, blocks, col, show=col == "overall_score")
    html = maps.save_map(m, tmp_path / "blocks.html").read_text()
    assert html.count('G["blocks0"] = {') == 1  # one copy of the geometry for 7 layers
    size_mb = len(html) / 1e6
    assert size_mb < 6, f"{size_mb:.1f} MB for 20,000 blocks x 7 layers"


def _jobs(now: dt.datetime) -> list:
    from pna_helpers.jobs import Job

    def job(i: str, status: str, start: float | None, stop: float | None) -> Job:
        def at(s: float | None) -> dt.datetime | None:
            return None if s is None else now - dt.timedelta(seconds=s)
        return Job(job_id=i, place=f"Place {i}", status=status, started_at=at(start),
                   stopped_at=at(stop))
    return [job("a", "SUCCEEDED", 900, 780),   # 120 s
            job("b", "FAILED", 900, 840),      # 60 s
            job("c", "RUNNING", 300, None),    # 300 s so far
            job("d", "CANCELLED", 900, 870),   # 30 s
            job("e", "SUBMITTED", None, None),  # not started
            job("f", "FAILED", 900, None)]     # finished, stop time unknown


def _bars(fig) -> dict[str, tuple[float, str]]:
    from matplotlib.colors import to_hex

    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return {lbl: (p.get_width(), to_hex(p.get_facecolor())) for lbl, p in zip(labels, ax.patches)}


def test_job_durations_times_colours_and_key() -> None:
    from pna_helpers.jobs import jobs_table

    now = dt.datetime.now(dt.UTC)
    listed = _jobs(now)
    table = jobs_table(listed)
    for given in (table, table.drop(columns=["duration_s"]), listed):
        fig = charts.job_durations(given)
        bars = _bars(fig)
        assert list(bars) == ["Place a (a)", "Place b (b)", "Place c (c)", "Place d (d)"]
        ax = fig.axes[0]
        assert ax.get_xlabel() == "run time (minutes)"  # longest: 300 s and more
        assert [round(bars[k][0], 2) for k in ("Place a (a)", "Place b (b)", "Place d (d)")] \
            == [2.0, 1.0, 0.5]
        assert bars["Place c (c)"][0] >= 5.0  # running: from its start up to now
        # one colour per status, named in the key
        assert {k: c for k, (_, c) in bars.items()} == {
            "Place a (a)": "#55a868", "Place b (b)": "#c44e52", "Place c (c)": "#4c72b0",
            "Place d (d)": "#8c8c8c"}
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "succeeded", "failed", "cancelled", "running (time so far)"]
        title = ax.get_title()
        assert "running jobs up to" in title and "1 not started yet" in title
        assert "1 finished without a stop time (left out)" in title
    # the same status keeps its colour whatever else is in the table
    only_running = _bars(charts.job_durations(table[table["status"] == "RUNNING"]))
    assert only_running["Place c (c)"][1] == "#4c72b0"
    # a table of start and stop times only (e.g. read from a CSV): still drawn
    csv_like = table[["job_id", "place", "status", "started_at", "stopped_at"]].astype(str)
    assert round(_bars(charts.job_durations(csv_like))["Place a (a)"][0], 2) == 2.0


def test_job_durations_no_jobs_in_words() -> None:
    from pna_helpers.jobs import jobs_table

    for empty in ([], jobs_table([])):
        fig = charts.job_durations(empty)
        assert [t.get_text() for t in fig.axes[0].texts] == ["no jobs"]
        assert not fig.axes[0].patches
    waiting = [j for j in _jobs(dt.datetime.now(dt.UTC)) if j.status == "SUBMITTED"]
    fig = charts.job_durations(jobs_table(waiting))
    assert [t.get_text() for t in fig.axes[0].texts] == ["no job has started yet (1 job)"]


def test_difference_map_reads_in_points_with_named_values(export: Path, tmp_path: Path) -> None:
    """The difference map names the score, not the column; a 0-1 category column is compared
    in points of 0-100 (as its block map draws it), so a block whose transit score fell from
    1.0 to 0.5 is a fall of 50 points (< -10), not of 0.5 ('-1 to 0'); tooltips say what each
    value is and are rounded."""
    other = write_export(tmp_path / "other")
    path = other / "neighborhood_census_blocks.geojson"
    blocks = gpd.read_file(path)
    blocks["transit_score"] = [0.5, 1.0, None, 0.123456]  # was 1, 1, none, 0
    blocks.to_file(path, driver="GeoJSON")
    a, b = load_results(export, name="Before"), load_results(other, name="After")
    html = maps.difference_map(a, b, "transit_score").to_html()
    title, rows = _legend(html)
    assert title == "After minus Before: change in block transit score (points)"
    assert "transit_score" not in html.split("<script")[0] and "transit_score" not in title
    fills = re.findall(r'"fillColor": "(#[0-9a-f]{6})"', html)
    # the styles are computed in Python per feature: block 1 fell 50 points -> darkest red
    assert maps.DELTA_COLORS[0] in fills and maps.DELTA_COLORS[-1] in fills  # +12.35 points
    assert maps.DELTA_COLORS[2] not in fills  # nothing reads as "-1 to 0"
    assert '"delta": -50.0' in html and '"delta": 12.35' in html and '"other": 12.3' in html
    for label in ("Block", "Change (points)", "Transit (0-100), Before", "Transit (0-100), After"):
        assert json.dumps(label) in html


def test_destination_tooltips_and_layers_read_without_column_names(export: Path,
                                                                    tmp_path: Path) -> None:
    """A park's tooltip reads 'North Park / OSM id: 9001 / Low-stress reach: 100% of the people
    within biking distance', not 'park_name: ... pop_score: 1'; layers are named as the
    sub-scores are (grocery stores, not supermarkets)."""
    import shapely

    grocery = gpd.GeoDataFrame({"supermarket_name": ["Lidl"], "osm_id": [77.0],
                                "pop_score": [0.254]},
                               geometry=[shapely.Point(24.94, 60.17)], crs=4326)
    m = maps.new_map()
    maps.add_destination_layers(m, {"parks": load_results(export).destinations("parks"),
                                    "supermarkets": grocery}, show=True)
    import folium

    folium.LayerControl().add_to(m)
    html = m.get_root().render()
    tooltips = re.findall(r"var fields = (\[[^\]]*\]), labels = (\[[^\]]*\]);", html)
    assert [(json.loads(f), json.loads(lb)) for f, lb in tooltips] == [
        (["park_name", "osm_id", "pna_reach"], ["", "OSM id", "Low-stress reach"]),
        (["supermarket_name", "osm_id", "pna_reach"], ["", "OSM id", "Low-stress reach"])]
    assert '"pna_reach": "100% of the people within biking distance"' in html
    assert '"pna_reach": "50% of the people within biking distance"' in html
    assert '"osm_id": "77"' in html and '"pna_reach": "25% of the people' in html
    assert "Destinations: parks (2)" in html and "Destinations: grocery stores (1)" in html
    assert "supermarkets" not in html
