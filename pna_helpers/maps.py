"""Folium maps of BNA results that render offline and stay small.

* :func:`stress_map` - the road network in low / high stress, tooltips with the attributes that
  decided the stress;
* :func:`blocks_map` - a choropleth of a block score with a legend;
* :func:`explore_map` - everything on one map with a layer control (network, block overall and
  category scores, destinations per category, boundary);
* :func:`difference_map` / :func:`delta_map` - block score differences (compare, scenario).

Every map is an :class:`OfflineMap`: its HTML carries local copies of Leaflet and jQuery
(``pna_helpers/assets``) instead of CDN links, so it draws without internet (only base tiles
need the network). Geometries are simplified in a metric CRS, coordinates rounded to 6
decimals (~0.1 m) and unused properties dropped; network layers use a compact encoding
(:class:`CompactLines`), so a 20,000-segment network map is about 2 MB.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import folium
from branca.element import MacroElement
from jinja2 import Template

from pna_engine.atomic import write_text
from pna_engine.errors import InputError
from pna_helpers import _html as esc

ASSETS = Path(__file__).resolve().parent / "assets"

#: CDN URL (as folium / branca write it) -> local file in ``assets/``.
CDN_ASSETS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js": "d3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js":
        "leaflet.awesome-markers.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css":
        "leaflet.awesome-markers.css",
}
#: Links folium adds that PNA maps do not use: dropped from offline pages.
DROPPED_URL_PARTS: tuple[str, ...] = ("bootstrap", "fontawesome", "glyphicons",
                                      "leaflet.awesome.rotate")

LOW_STRESS_COLOR = "#1f78b4"   # blue
HIGH_STRESS_COLOR = "#e31a1c"  # red
TILES = "OpenStreetMap"

#: Score classes of block choropleths (0-100), light to dark.
SCORE_BINS: tuple[float, ...] = (0, 20, 40, 60, 80, 100.0001)
#: A single-hue green ramp: no red or blue, which mean high / low stress on the network.
SCORE_COLORS: tuple[str, ...] = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
NO_DATA_COLOR = "#bdbdbd"
#: Fill opacity of block choropleths (the base map shows through); their legend swatches are
#: drawn with the same opacity so a class reads as the blocks look.
BLOCK_FILL_OPACITY = 0.65
#: Fill opacity of the change (delta) choropleths and their legend swatches.
DELTA_FILL_OPACITY = 0.7
CHANGED_COLOR = "#00a000"  # the ways a scenario changed
#: Map panes above Leaflet's overlay pane (z-index 400): the network stays visible over the
#: block choropleths whichever block layer is shown, and changed ways over the network.
NETWORK_PANE, CHANGED_PANE = ("pnaNetwork", 450), ("pnaChanged", 460)


# --------------------------------------------------------------------------- offline assets
@cache
def _asset_text(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if name.endswith(".css"):
        def data_uri(m: re.Match[str]) -> str:
            rel = m.group(2)
            p = ASSETS / rel
            if not p.exists():
                return "url(data:,)"  # @2x images we do not ship: nothing to load
            b64 = base64.b64encode(p.read_bytes()).decode()
            return f"url(data:image/png;base64,{b64})"
        text = re.sub(r"url\((['\"]?)(images/[^'\")]+)\1\)", data_uri, text)
    return text


_SCRIPT_RE = re.compile(r'<script\s+src="(https?://[^"]+)"\s*>\s*</script>')
_LINK_RE = re.compile(r'<link\s+rel="stylesheet"\s+href="(https?://[^"]+)"\s*/?>')


def inline_assets(html: str) -> str:
    """Replace the CDN ``<script>``/``<link>`` tags folium writes with inline local copies.

    Links to libraries PNA maps do not use (Bootstrap, Font Awesome) are removed; links to
    anything else are left as they are.

    Parameters
    ----------
    html : str
        A page as folium renders it.

    Returns
    -------
    str
        The page with the known CDN assets (:data:`CDN_ASSETS`) inlined.
    """
    def script(m: re.Match[str]) -> str:
        url = m.group(1)
        if url in CDN_ASSETS:
            js = _asset_text(CDN_ASSETS[url]).replace("</script", "<\\/script")
            return f"<script>/* {CDN_ASSETS[url]} (offline copy) */\n{js}\n</script>"
        if any(part in url for part in DROPPED_URL_PARTS):
            return ""
        return m.group(0)

    def link(m: re.Match[str]) -> str:
        url = m.group(1)
        if url in CDN_ASSETS:
            return f"<style>/* {CDN_ASSETS[url]} (offline copy) */\n{_asset_text(CDN_ASSETS[url])}\n</style>"
        if any(part in url for part in DROPPED_URL_PARTS):
            return ""
        return m.group(0)

    return _LINK_RE.sub(link, _SCRIPT_RE.sub(script, html))


class OfflineMap(folium.Map):
    """A :class:`folium.Map` whose HTML inlines Leaflet/jQuery (works with no internet).

    Use :meth:`to_html` / :meth:`save`; in a notebook the map displays in an iframe whose
    document is self-contained, so exported notebooks and reports render offline too.
    """

    default_js = [(n, u) for n, u in folium.folium._default_js if n in ("leaflet", "jquery")]
    default_css = [(n, u) for n, u in folium.folium._default_css if n == "leaflet_css"]

    def to_html(self) -> str:
        """The whole map page as one self-contained HTML string.

        Returns
        -------
        str
            The rendered page with Leaflet and jQuery inlined (:func:`inline_assets`).
        """
        return inline_assets(self.get_root().render())

    def save(self, outfile: str | Path, close_file: bool = True, **kwargs: Any) -> None:  # noqa: ARG002
        """Write the self-contained page to ``outfile`` atomically.

        Parameters
        ----------
        outfile : str or pathlib.Path
            The HTML file to write.
        close_file : bool
            Ignored (kept for compatibility with :meth:`folium.Map.save`).
        **kwargs : Any
            Ignored (kept for compatibility with :meth:`folium.Map.save`).
        """
        write_text(outfile, self.to_html())

    def _repr_html_(self, **kwargs: Any) -> str:
        doc = esc.text(self.to_html())  # the whole page as an attribute value
        return (
            '<div style="width:100%;"><div style="position:relative;width:100%;height:0;'
            'padding-bottom:60%;"><iframe class="pna-map" srcdoc="' + doc + '" '
            'style="position:absolute;width:100%;height:100%;left:0;top:0;border:none;" '
            "allowfullscreen></iframe></div></div>"
        )


# --------------------------------------------------------------------------- geometry
def compact_geojson(gdf: Any, columns: list[str], tolerance_m: float = 1.0,
                    decimals: int = 6) -> dict[str, Any]:
    """GeoJSON dict of ``gdf`` (any CRS) keeping only ``columns``, simplified and rounded.

    Geometries are simplified by ``tolerance_m`` metres in the local UTM CRS, brought back to
    EPSG:4326 and snapped to a ``10**-decimals`` degree grid; null-like values become null.
    Features with a missing or empty geometry are left out.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        The features; no CRS is taken as EPSG:4326.
    columns : list of str
        Properties to keep (names not in ``gdf`` are skipped).
    tolerance_m : float
        Simplification tolerance in metres (default 1.0; 0 keeps the geometry as it is).
    decimals : int
        Decimal places of the coordinates (default 6, about 0.1 m).

    Returns
    -------
    dict of str to Any
        A GeoJSON ``FeatureCollection`` (no feature ids).
    """
    import shapely

    gdf = gdf[[c for c in columns if c in gdf.columns] + [gdf.geometry.name]]
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if not len(gdf):
        return {"type": "FeatureCollection", "features": []}
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    geom = gdf.geometry
    if tolerance_m > 0:
        utm = gdf.to_crs(4326).estimate_utm_crs()
        geom = geom.to_crs(utm).simplify(tolerance_m, preserve_topology=True)
    import geopandas as gpd

    snapped = shapely.set_precision(geom.to_crs(4326).to_numpy(), 10.0 ** -decimals)
    out = gpd.GeoDataFrame(gdf.drop(columns=gdf.geometry.name), geometry=snapped, crs=4326)
    out = out[~out.geometry.is_empty]
    return json.loads(out.to_json(na="null", drop_id=True))


def _present(data: dict[str, Any], fields: list[str]) -> list[str]:
    """The ``fields`` every feature of ``data`` has (folium tooltips require that)."""
    feats = data.get("features") or []
    if not feats:
        return []
    keys = set(feats[0]["properties"])
    return [f for f in fields if f in keys]


def _bounds(*gdfs: Any) -> list[list[float]] | None:
    import numpy as np

    bs = [g.to_crs(4326).total_bounds for g in gdfs if g is not None and len(g)]
    if not bs:
        return None
    b = np.array(bs)
    return [[float(b[:, 1].min()), float(b[:, 0].min())], [float(b[:, 3].max()), float(b[:, 2].max())]]


#: A layer named after two places ("B minus A: change in ...") wraps inside the layer control
#: instead of stretching it across the map, over the zoom buttons.
LAYER_CONTROL_CSS = ("<style>.leaflet-control-layers-expanded{max-width:min(26em,60vw)}"
                     ".leaflet-control-layers label span{white-space:normal;"
                     "overflow-wrap:anywhere}</style>")


def new_map(*fit: Any, tiles: str | None = TILES, canvas: bool | None = None) -> OfflineMap:
    """An empty :class:`OfflineMap` fitted to the given GeoDataFrames.

    ``canvas`` draws vectors on a canvas instead of SVG (default: when the data has more
    than 5,000 features - much faster for big networks).

    Parameters
    ----------
    *fit : geopandas.GeoDataFrame or None
        Data whose joint bounds the map shows (None or empty ones are skipped; with none
        left the map shows the whole world).
    tiles : str or None
        Base tiles (default :data:`TILES`, OpenStreetMap); None adds no base layer.
    canvas : bool, optional
        Draw vectors on a canvas (default: automatic, see above).

    Returns
    -------
    OfflineMap
    """
    if canvas is None:
        canvas = sum(len(g) for g in fit if g is not None) > 5000
    m = OfflineMap(location=[0, 0], zoom_start=2, tiles=tiles, control_scale=True,
                   prefer_canvas=canvas)
    m.get_root().header.add_child(folium.Element(LAYER_CONTROL_CSS))
    b = _bounds(*fit)
    if b:
        m.fit_bounds(b)
    return m


def segment_stress(ways: Any) -> Any:
    """Stress of each segment for display: ``"low"`` when every direction with a segment
    stress has stress 1, ``"high"`` otherwise (``None`` when neither direction has one).

    Parameters
    ----------
    ways : pandas.DataFrame
        Road segments with ``ft_seg_stress`` and ``tf_seg_stress`` columns.

    Returns
    -------
    pandas.Series
        ``"low"``, ``"high"`` or None per segment, on the index of ``ways``.
    """
    import numpy as np
    import pandas as pd

    ft = pd.to_numeric(ways["ft_seg_stress"], errors="coerce").to_numpy(dtype=float)
    tf = pd.to_numeric(ways["tf_seg_stress"], errors="coerce").to_numpy(dtype=float)
    worst = np.fmax(ft, tf)
    return pd.Series(np.where(np.isnan(worst), None, np.where(worst <= 1, "low", "high")),
                     index=ways.index)


# --------------------------------------------------------------------------- layers
def _text(ways: Any, col: str) -> Any:
    """Column as display text: integers without ``.0``, missing as ``-`` (plain text: tooltips
    show it as a text node, never as HTML)."""
    import pandas as pd

    if col not in ways.columns:
        return pd.Series("-", index=ways.index, dtype=object)
    s = ways[col]
    num = pd.to_numeric(s, errors="coerce")
    if s.notna().any() and num.notna().sum() == s.notna().sum():
        out = num.round().astype("Int64").astype(str)
    else:
        out = s.astype(str)
    return out.where(s.notna(), "-").astype(object)


#: Tooltip of a network segment: literal text and the column shown after it (``\n``: new line).
TOOLTIP_TEMPLATE: tuple[tuple[str, str], ...] = (
    ("", "name"), (" - way ", "osm_id"), ("\n", "functional_class"), (" ", "speed_limit"),
    (" mph, one-way ", "one_way_car"), ("\nlanes ", "ft_lanes"), ("/", "tf_lanes"),
    (", parking ", "ft_park"), ("/", "tf_park"), ("\nbike infra ", "ft_bike_infra"),
    ("/", "tf_bike_infra"), ("\nft: segment ", "ft_seg_stress"),
    (" crossing ", "ft_int_stress"), ("\ntf: segment ", "tf_seg_stress"),
    (" crossing ", "tf_int_stress"),
)


def stress_tooltips(ways: Any) -> Any:
    """The tooltip text of each segment (plain text): the attributes that decided its stress
    (class, speed, one-way, lanes, parking, bike infrastructure, segment and crossing stress;
    per-direction values as ``ft/tf``).

    Parameters
    ----------
    ways : pandas.DataFrame
        Road segments (:attr:`~pna_helpers.results.Results.ways`); a missing column or
        value shows as ``-``.

    Returns
    -------
    pandas.Series
        One multi-line text per segment, laid out by :data:`TOOLTIP_TEMPLATE`.
    """
    out = None
    for lit, col in TOOLTIP_TEMPLATE:
        part = lit + _text(ways, col)
        out = part if out is None else out + part
    return out


def layer(name: str, show: bool = True) -> folium.FeatureGroup:
    """A :class:`folium.FeatureGroup` whose name (shown by the layer control, which Leaflet
    writes as HTML) is escaped: names carry place names and other outside values.

    Parameters
    ----------
    name : str
        The layer's name in the layer control.
    show : bool
        Visible when the map opens (default True).

    Returns
    -------
    folium.FeatureGroup
    """
    return folium.FeatureGroup(name=esc.text(name), show=show)


class TextTooltip(MacroElement):
    """Tooltips of a GeoJSON layer's features written as text, never HTML (folium's
    ``GeoJsonTooltip`` writes property values as raw HTML): one ``label: value`` line per
    field, missing values as ``-``. Add it to a :class:`folium.GeoJson`."""

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  {{ this.text_node_js }}
  var fields = {{ this.fields }}, labels = {{ this.labels }};
  {{ this._parent.get_name() }}.bindTooltip(function (layer) {
    var p = (layer.feature && layer.feature.properties) || {}, lines = [];
    for (var i = 0; i < fields.length; i++) {
      var v = p[fields[i]];
      lines.push((labels[i] ? labels[i] + ": " : "") + (v === null || v === undefined ? "-" : v));
    }
    return pnaText(lines.join("\\n"));
  }, {sticky: true});
})();
{% endmacro %}
""")

    def __init__(self, fields: list[str], labels: list[str] | None = None) -> None:
        super().__init__()
        self._name = "TextTooltip"
        self.text_node_js = esc.TEXT_NODE_JS
        self.fields = esc.script_json(list(fields))
        self.labels = esc.script_json(list(labels) if labels is not None else list(fields))


class CompactLines(MacroElement):
    """Many polylines with tooltips from a compact payload, decoded in the browser.

    GeoJSON repeats keys and full coordinates for every feature; here coordinates are
    integers in 1e-6 degrees, delta-encoded along each line, and every tooltip column is
    dictionary-encoded. A 20,000-segment network then takes about a third of the space.
    Lines are added to the parent layer (a FeatureGroup) as ordinary Leaflet polylines.
    """

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  var d = {{ this.payload }};
  var group = {{ this._parent.get_name() }};
  var style = {{ this.style }}, hi = {{ this.highlight }};
  function over(e) { e.target.setStyle(hi); }
  function out(e) { e.target.setStyle(style); }
  {{ this.text_node_js }}
  for (var i = 0; i < d.c.length; i++) {
    var a = d.c[i], x = 0, y = 0, ll = [];
    for (var k = 0; k < a.length; k += 2) { x += a[k]; y += a[k + 1]; ll.push([y / 1e6, x / 1e6]); }
    var tip = "";
    for (var j = 0; j < d.t.length; j++) { tip += d.t[j] + d.k[j][d.v[j][i]]; }
    L.polyline(ll, style).bindTooltip(pnaText(tip), {sticky: true})
      .on("mouseover", over).on("mouseout", out).addTo(group);
  }
})();
{% endmacro %}
""")

    def __init__(self, gdf: Any, columns: list[str], template: list[tuple[str, str]],
                 style: dict[str, Any], highlight: dict[str, Any],
                 tolerance_m: float = 1.0) -> None:
        super().__init__()
        self._name = "CompactLines"
        self.text_node_js = esc.TEXT_NODE_JS
        self.payload = _compact_payload(gdf, template, tolerance_m)
        self.style = json.dumps(style)
        self.highlight = json.dumps({**style, **highlight})


def _compact_payload(gdf: Any, template: list[tuple[str, str]], tolerance_m: float) -> str:
    import pandas as pd
    import shapely

    if not len(gdf):
        return esc.script_json({"c": [], "t": [], "k": [], "v": []})
    geom = gdf.geometry
    if tolerance_m > 0:
        geom = geom.to_crs(gdf.to_crs(4326).estimate_utm_crs()).simplify(
            tolerance_m, preserve_topology=True)
    geom = geom.to_crs(4326)
    # multi-lines: one polyline per part, sharing the tooltip of their segment
    parts, owner = shapely.get_parts(geom.to_numpy(), return_index=True)
    keep = ~shapely.is_empty(parts)
    parts, owner = parts[keep], owner[keep]
    lines, _ = _delta_encode(parts)
    texts, keys, codes = [], [], []
    for lit, col in template:
        vals = _text(gdf, col).to_numpy()[owner]
        code, uniq = pd.factorize(pd.Series(vals, dtype=object))
        texts.append(lit)
        keys.append([str(u) for u in uniq])
        codes.append(code.tolist())
    return esc.script_json({"c": lines, "t": texts, "k": keys, "v": codes})


def _pane(m: folium.Map, pane: tuple[str, int]) -> str:
    """Add the custom pane ``(name, z-index)`` to ``m`` once; return its name."""
    added = m.__dict__.setdefault("_pna_panes", set())
    if pane[0] not in added:
        folium.map.CustomPane(pane[0], z_index=pane[1], pointer_events=True).add_to(m)
        added.add(pane[0])
    return pane[0]


def add_stress_layers(m: folium.Map, ways: Any, show: bool = True) -> None:
    """Add "Low-stress network" and "High-stress network" layers with tooltips (drawn in a
    pane above the block layers).

    Segments are classed by :func:`segment_stress`; those with no segment stress are not
    drawn. Tooltips are :func:`stress_tooltips`.

    Parameters
    ----------
    m : folium.Map
        The map to add to.
    ways : geopandas.GeoDataFrame
        Road segments (:attr:`~pna_helpers.results.Results.ways`).
    show : bool
        Both layers visible when the map opens (default True).
    """
    pane = _pane(m, NETWORK_PANE)
    ways = ways[ways.geometry.notna() & ~ways.geometry.is_empty]
    stress = segment_stress(ways).to_numpy()
    for level, color, label in (("low", LOW_STRESS_COLOR, "Low-stress network"),
                                ("high", HIGH_STRESS_COLOR, "High-stress network")):
        part = ways[stress == level]
        fg = layer(f"{label} ({len(part)} segments)", show=show)
        style = {"color": color, "weight": 3 if level == "low" else 3.5, "opacity": 0.9,
                 "pane": pane}
        CompactLines(part, [], list(TOOLTIP_TEMPLATE), style, {"weight": 6}).add_to(fg)
        fg.add_to(m)


def _score_color(v: float | None) -> str:
    if v is None or v != v:
        return NO_DATA_COLOR
    for lo, hi, c in zip(SCORE_BINS[:-1], SCORE_BINS[1:], SCORE_COLORS):
        if lo <= v < hi:
            return c
    return SCORE_COLORS[-1] if v >= 100 else SCORE_COLORS[0]


def add_legend(m: folium.Map, title: str, items: list[tuple[Any, ...]]) -> None:
    """A fixed legend box (plain HTML/CSS, no extra library): ``items`` = (color, label) or
    (color, label, opacity).

    Parameters
    ----------
    m : folium.Map
        The map to add to.
    title : str
        Legend title (escaped).
    items : list of tuple
        ``(CSS colour, label)`` rows, top to bottom, or ``(CSS colour, label, opacity)`` for
        the swatch of a translucent fill (drawn with the fill's opacity, so that the swatch
        looks like the features); labels are escaped.
    """
    def swatch(c: str, opacity: float | None) -> str:
        op = f"opacity:{opacity:g};" if opacity is not None else ""
        return (f'<span style="display:inline-block;width:14px;height:10px;background:{c};'
                f'{op}border:1px solid #555;margin-right:6px"></span>')

    rows = "".join(f"<div>{swatch(it[0], it[2] if len(it) > 2 else None)}{esc.text(it[1])}</div>"
                   for it in items)
    box = (f'<div class="pna-legend" style="position:fixed;bottom:58px;left:12px;z-index:9999;'
           f'background:rgba(255,255,255,.92);padding:6px 9px;border:1px solid #999;'
           f'border-radius:4px;font:12px sans-serif;line-height:16px;max-width:24em;'
           f'overflow-wrap:anywhere">'
           f'<b class="pna-legend-title">{esc.text(title)}</b>{rows}</div>')
    m.get_root().html.add_child(folium.Element(box))


def score_legend_items(scale: float = 1.0,
                       opacity: float = BLOCK_FILL_OPACITY) -> list[tuple[str, str, float]]:
    """Legend entries of :data:`SCORE_BINS` (``scale`` = 0.01 for 0-1 scores).

    Parameters
    ----------
    scale : float
        Factor applied to the 0-100 bin edges in the labels (default 1.0).
    opacity : float
        Fill opacity of the blocks the legend explains (default :data:`BLOCK_FILL_OPACITY`,
        that of :func:`add_blocks_layer`): the swatches are drawn with it.

    Returns
    -------
    list of tuple of (str, str, float)
        ``(colour, "lo - hi", opacity)`` per score class, then the no-data colour; ready for
        :func:`add_legend`.
    """
    items = []
    for lo, hi, c in zip(SCORE_BINS[:-1], SCORE_BINS[1:], SCORE_COLORS):
        hi = min(hi, 100)
        items.append((c, f"{lo * scale:g} - {hi * scale:g}", opacity))
    items.append((NO_DATA_COLOR, "no data (nothing reachable)", opacity))
    return items


def _delta_encode(geoms: Any) -> tuple[list[list[int]], Any]:
    """Coordinates of line/ring geometries as integer 1e-6 degree deltas, one list per
    geometry; returns (lists, index of the geometry each list belongs to)."""
    import numpy as np
    import shapely

    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    if not len(xy):
        return [], np.array([], dtype=int)
    q = np.round(xy * 1e6).astype(np.int64)
    d = q.copy()
    same = np.r_[False, idx[1:] == idx[:-1]]
    d[same] = q[same] - q[np.flatnonzero(same) - 1]
    starts = np.flatnonzero(~same)
    return [c.ravel().tolist() for c in np.split(d, starts[1:])], idx[starts]


class CompactPolygons(MacroElement):
    """A choropleth of polygons from a compact payload (see :class:`CompactLines`).

    Several layers of the same polygons (overall and category scores of the blocks) share one
    copy of the geometry: the first layer stores it in the page, the others refer to it.
    """

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  var G = window.__pnaGeom = window.__pnaGeom || {};
  {% if this.geometry %}G["{{ this.key }}"] = {{ this.geometry }};{% endif %}
  var g = G["{{ this.key }}"], d = {{ this.payload }};
  var group = {{ this._parent.get_name() }};
  {{ this.text_node_js }}
  var fillOpacity = {{ this.fill_opacity }};
  function ring(a) {
    var x = 0, y = 0, ll = [];
    for (var k = 0; k < a.length; k += 2) { x += a[k]; y += a[k + 1]; ll.push([y / 1e6, x / 1e6]); }
    return ll;
  }
  for (var i = 0; i < g.p.length; i++) {
    var f = g.o[i], v = d.v[f];
    L.polygon(g.p[i].map(ring), {fillColor: d.k[d.c[f]], color: "#777",
                                 weight: g.p.length > 1000 ? 0 : 0.5, fillOpacity: fillOpacity})
      .bindTooltip(pnaText(g.n[f] + "\\n" + d.label + ": " + (v === null ? "no data" : v)))
      .addTo(group);
  }
})();
{% endmacro %}
""")

    def __init__(self, key: str, geometry: str | None, payload: str) -> None:
        super().__init__()
        self._name = "CompactPolygons"
        self.text_node_js = esc.TEXT_NODE_JS
        self.key, self.geometry, self.payload = key, geometry, payload
        self.fill_opacity = BLOCK_FILL_OPACITY


def _polygon_geometry(gdf: Any, headers: list[str], tolerance_m: float) -> str:
    import numpy as np
    import shapely

    geom = gdf.geometry
    if tolerance_m > 0:
        geom = geom.to_crs(gdf.to_crs(4326).estimate_utm_crs()).simplify(
            tolerance_m, preserve_topology=True)
    parts, owner = shapely.get_parts(geom.to_crs(4326).to_numpy(), return_index=True)
    keep = ~shapely.is_empty(parts)
    parts, owner = parts[keep], owner[keep]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coded, _ = _delta_encode(rings)
    bounds = np.flatnonzero(np.r_[True, ring_part[1:] != ring_part[:-1]])
    per_part = [coded[a:b] for a, b in zip(bounds, np.r_[bounds[1:], len(coded)])]
    return esc.script_json({"p": per_part, "o": owner[np.unique(ring_part)].tolist(),
                            "n": headers})


def add_blocks_layer(m: folium.Map, blocks: Any, column: str = "overall_score",
                     name: str | None = None, show: bool = True,
                     overlay: bool = True) -> str | None:
    """Choropleth of block ``column`` (0-100; 0-1 ``*_score`` columns are shown x100).

    Layers of the same blocks on one map share their geometry (compact encoding);
    ``overlay=False`` makes the layer one of the map's exclusive choices (a radio button).
    Returns the layer's name.

    Parameters
    ----------
    m : folium.Map
        The map to add to.
    blocks : geopandas.GeoDataFrame
        Census blocks (:attr:`~pna_helpers.results.Results.blocks`); tooltips show
        ``geoid20``, ``pop20`` and the value.
    column : str
        Block column to colour by (default ``overall_score``). Other columns are multiplied
        by 100 unless a value is above 1.
    name : str, optional
        Label of the layer and the tooltips (default: the column's label in
        :data:`~pna_helpers.results.BLOCK_SCORE_COLUMNS`, else the column name).
    show : bool
        Visible when the map opens (default True).
    overlay : bool
        An overlay with a checkbox (default True), or an exclusive choice.

    Returns
    -------
    str or None
        ``"Blocks: <label>"``, or None (nothing added) when ``blocks`` has no ``column``.
    """
    import numpy as np
    import pandas as pd

    from pna_helpers.results import BLOCK_SCORE_COLUMNS

    if column not in blocks.columns:
        return None
    blocks = blocks[blocks.geometry.notna() & ~blocks.geometry.is_empty]
    vals = pd.to_numeric(blocks[column], errors="coerce").to_numpy(dtype=float)
    scale = 1.0 if column == "overall_score" or np.nanmax(np.r_[vals, 0]) > 1.0001 else 100.0
    v = np.round(vals * scale, 1)
    colors = pd.Series([_score_color(x) for x in v])
    code, uniq = pd.factorize(colors)
    label = name or BLOCK_SCORE_COLUMNS.get(column, column)
    if scale == 100.0:
        label = label.replace("(0-1)", "(0-100)")  # shown as the legend shows it: x100
    payload = esc.script_json({"v": [None if x != x else float(x) for x in v],
                               "c": code.tolist(), "k": list(uniq), "label": label})
    registry = m.__dict__.setdefault("_pna_geometry", {})
    sig = (len(blocks), tuple(blocks.index[:3]), tuple(blocks.total_bounds.round(7)))
    key = registry.get(sig)
    geometry = None
    if key is None:
        key = registry[sig] = f"blocks{len(registry)}"
        pop = _text(blocks, "pop20")
        headers = ("Block " + _text(blocks, "geoid20") + ", " + pop + " people").tolist()
        geometry = _polygon_geometry(blocks, headers, tolerance_m=0.5)
    fg = layer(f"Blocks: {label}", show=show)
    fg.overlay = overlay
    CompactPolygons(key, geometry, payload).add_to(fg)
    fg.add_to(m)
    return f"Blocks: {label}"


DEST_COLORS = ("#6a3d9a", "#ff7f00", "#33a02c", "#b15928", "#e7298a", "#1b9e77", "#7570b3",
               "#d95f02", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#386cb0")


#: Destination layer names as the sub-scores call them (grocery score: supermarkets); other
#: categories: the category with spaces.
DESTINATION_LABELS: dict[str, str] = {
    "schools": "K-12 schools", "colleges": "technical/vocational colleges",
    "supermarkets": "grocery stores", "community_centers": "community centres",
    "transit": "transit stations",
}
#: Tooltip line of a destination's ``pop_score`` (the share of the people within biking
#: distance of it who reach it on low-stress streets).
DESTINATION_REACH_LABEL = "Low-stress reach"


def add_destination_layers(m: folium.Map, destinations: dict[str, Any],
                           show: bool = False) -> None:
    """One point layer per destination category (polygons shown at a representative point).

    Each layer is named after its category (:data:`DESTINATION_LABELS`) and count; tooltips
    show the name, the OSM id and the low-stress reach (``pop_score`` as "75% of the people
    within biking distance") that exist, labelled for reading, not by column.

    Parameters
    ----------
    m : folium.Map
        The map to add to.
    destinations : dict of str to geopandas.GeoDataFrame
        Category -> destinations, e.g. :meth:`~pna_helpers.results.Results.all_destinations`;
        None or empty tables are skipped.
    show : bool
        Layers visible when the map opens (default False).
    """
    for i, (cat, gdf) in enumerate(destinations.items()):
        if gdf is None or not len(gdf):
            continue
        import pandas as pd

        name_col = next((c for c in gdf.columns if c.endswith("_name")), None)
        pts = gdf.copy()
        pts = pts.set_geometry(pts.geometry.representative_point())
        if "pop_score" in pts.columns:
            share = pd.to_numeric(pts["pop_score"], errors="coerce")
            pts["pna_reach"] = [None if v != v else
                                f"{v * 100:.0f}% of the people within biking distance"
                                for v in share]
        if "osm_id" in pts.columns:
            pts["osm_id"] = [None if v is None or v != v else
                             str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                             for v in pts["osm_id"]]
        labels = {name_col: "", "osm_id": "OSM id", "pna_reach": DESTINATION_REACH_LABEL}
        cols = [c for c in (name_col, "osm_id", "pna_reach") if c and c in pts.columns]
        data = compact_geojson(pts, cols, tolerance_m=0)
        cols = _present(data, cols)
        color = DEST_COLORS[i % len(DEST_COLORS)]
        label = DESTINATION_LABELS.get(cat, cat.replace("_", " "))
        fg = layer(f"Destinations: {label} ({len(gdf)})", show=show)
        gj = folium.GeoJson(data, marker=folium.CircleMarker(radius=6, color=color,
                                                             fill=True, fill_opacity=0.8))
        if cols:
            TextTooltip(cols, [labels[c] for c in cols]).add_to(gj)
        gj.add_to(fg)
        fg.add_to(m)


def add_boundary(m: folium.Map, boundary: Any) -> None:
    """The place boundary as a dashed outline.

    Parameters
    ----------
    m : folium.Map
        The map to add to.
    boundary : geopandas.GeoDataFrame or None
        The boundary (:attr:`~pna_helpers.results.Results.boundary`); None or empty adds
        nothing.
    """
    if boundary is None or not len(boundary):
        return
    data = compact_geojson(boundary, [], tolerance_m=1)
    folium.GeoJson(data, name="Boundary", style_function=lambda _f: {
        "color": "#333", "weight": 2, "dashArray": "6 4", "fill": False}).add_to(m)


# --------------------------------------------------------------------------- maps
def stress_map(results: Any) -> OfflineMap:
    """The road network in low (blue) and high (red) stress, with a legend and tooltips.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results`.

    Returns
    -------
    OfflineMap

    Raises
    ------
    InputError
        The results cannot be loaded or have no road segments.
    """
    from pna_helpers.results import load_results

    res = load_results(results)
    m = new_map(res.ways)
    add_boundary(m, res.boundary)
    add_stress_layers(m, res.ways)
    add_legend(m, "Network stress", [(LOW_STRESS_COLOR, "low stress"),
                                     (HIGH_STRESS_COLOR, "high stress")])
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def blocks_map(results: Any, column: str = "overall_score") -> OfflineMap:
    """Choropleth of one block score column with its legend.

    Scores are drawn and labelled 0-100 (a 0-1 ``*_score`` column x100, as the layer's name
    says); the legend shows the same classes and colours as the blocks, and the grey of blocks
    with no score.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results`.
    column : str
        Block column (default ``overall_score``; see
        :data:`~pna_helpers.results.BLOCK_SCORE_COLUMNS`).

    Returns
    -------
    OfflineMap

    Raises
    ------
    InputError
        The results cannot be loaded, have no census blocks, or the blocks have no
        ``column``.
    """
    from pna_helpers.results import load_results, require_block_column

    res = load_results(results)
    require_block_column(res, column, "the block score map")
    m = new_map(res.blocks)
    add_boundary(m, res.boundary)
    name = add_blocks_layer(m, res.blocks, column)
    # the layer draws every score on 0-100 (0-1 columns x100): the legend reads the same
    add_legend(m, f"Block score: {str(name).split(': ', 1)[1]}", score_legend_items())
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def explore_map(results: Any, destinations: bool = True, category_scores: bool = True,
                collapsed: bool = True) -> OfflineMap:
    """Everything on one map: network stress, block overall and category scores, destinations
    per category, boundary, with a layer control (category layers start hidden; the control
    opens on hover unless ``collapsed=False``).

    The block layers are exclusive choices (overall score shown first) and the legend title
    follows the one shown.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results`.
    destinations : bool
        Add the destination layers (default True).
    category_scores : bool
        Add a block layer per category score, not only the overall score (default True).
    collapsed : bool
        Layer control collapsed until hovered (default True).

    Returns
    -------
    OfflineMap

    Raises
    ------
    InputError
        The results cannot be loaded, or have no census blocks or road segments.
    """
    from pna_helpers.results import BLOCK_SCORE_COLUMNS, load_results

    res = load_results(results)
    # the block layers are exclusive choices (radio buttons): the base map is an overlay
    m = new_map(res.blocks, res.ways, tiles=None)
    folium.TileLayer(TILES, overlay=True, control=False).add_to(m)
    titles = {}
    for col in BLOCK_SCORE_COLUMNS:
        if col == "overall_score" or category_scores:
            name = add_blocks_layer(m, res.blocks, col, show=col == "overall_score",
                                    overlay=False)
            if name:
                titles[esc.text(name)] = f"Block score: {name.split(': ', 1)[1]}"
    add_stress_layers(m, res.ways)
    if destinations:
        add_destination_layers(m, res.all_destinations())
    add_boundary(m, res.boundary)
    add_legend(m, next(iter(titles.values()), "Block score (0-100)"), score_legend_items()
               + [(LOW_STRESS_COLOR, "low-stress road"), (HIGH_STRESS_COLOR, "high-stress road")])
    LegendFollowsLayer(titles).add_to(m)
    folium.LayerControl(collapsed=collapsed).add_to(m)
    return m


class LegendFollowsLayer(MacroElement):
    """The legend's title names the block layer shown (the map's exclusive layer choice)."""

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  var titles = {{ this.titles }};
  {{ this._parent.get_name() }}.on("baselayerchange", function (e) {
    var t = document.querySelector(".pna-legend-title");
    if (t && titles[e.name] !== undefined) { t.textContent = titles[e.name]; }
  });
})();
{% endmacro %}
""")

    def __init__(self, titles: dict[str, str]) -> None:
        super().__init__()
        self._name = "LegendFollowsLayer"
        self.titles = esc.script_json(titles)


DELTA_BINS: tuple[float, ...] = (-1e9, -10, -1, -0.005, 0.005, 1, 10, 1e9)
DELTA_COLORS: tuple[str, ...] = ("#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0",
                                 "#67a9cf", "#2166ac")
DELTA_LABELS: tuple[str, ...] = ("< -10", "-10 to -1", "-1 to 0", "no change", "0 to 1",
                                 "1 to 10", "> 10")
#: Legend label of a block with no change value (e.g. a block only one result set has).
NO_VALUE_LABEL = "no value"


def _delta_color(v: float | None) -> str:
    if v is None or v != v:
        return NO_DATA_COLOR
    for lo, hi, c in zip(DELTA_BINS[:-1], DELTA_BINS[1:], DELTA_COLORS):
        if lo <= v < hi:
            return c
    return DELTA_COLORS[-1]


def delta_map(blocks: Any, column: str = "delta", title: str = "Change in block score",
              ways: Any = None, extra_fields: list[str] | None = None,
              highlight: Any = None, labels: dict[str, str] | None = None) -> OfflineMap:
    """Diverging choropleth of ``blocks[column]`` (gains blue, losses red).

    ``ways`` adds the network stress layers; ``highlight`` (GeoDataFrame of lines) draws the
    changed ways on top in green.

    Parameters
    ----------
    blocks : geopandas.GeoDataFrame
        Blocks with ``geoid20`` and ``column``, e.g. from
        :func:`~pna_helpers.compare.block_differences` or
        :meth:`~pna_helpers.scenario.ScenarioResult.block_changes`.
    column : str
        Column of changes to colour by (default ``delta``), classed by
        :data:`DELTA_BINS`; blocks with no value are grey, with a legend entry
        :data:`NO_VALUE_LABEL` when there are any.
    title : str
        Name of the block layer and the legend title.
    ways : geopandas.GeoDataFrame, optional
        Road segments to draw as stress layers.
    extra_fields : list of str, optional
        More block columns shown in the tooltips.
    highlight : geopandas.GeoDataFrame, optional
        Ways to draw on top in green (tooltips: name and way id).
    labels : dict of str to str, optional
        Tooltip label of a field (e.g. ``{"geoid20": "Block"}``); default the column name.

    Returns
    -------
    OfflineMap

    Raises
    ------
    InputError
        ``blocks`` has no ``column``.
    """
    import pandas as pd

    from pna_helpers.results import require_block_column

    require_block_column(blocks, column, "the change map")
    m = new_map(blocks)
    fields = ["geoid20", column, *(extra_fields or [])]
    data = compact_geojson(blocks, fields, tolerance_m=0.5)
    fg = layer(title)
    gj = folium.GeoJson(data, style_function=lambda f: {
        "fillColor": _delta_color(f["properties"].get(column)), "color": "#555",
        "weight": 0.5, "fillOpacity": DELTA_FILL_OPACITY})
    shown = [f for f in fields if f in blocks.columns]
    TextTooltip(shown, [(labels or {}).get(f, f) for f in shown]).add_to(gj)
    gj.add_to(fg)
    fg.add_to(m)
    items: list[tuple[Any, ...]] = [(c, lbl, DELTA_FILL_OPACITY)
                                    for c, lbl in zip(DELTA_COLORS, DELTA_LABELS)]
    drawn = blocks[blocks.geometry.notna() & ~blocks.geometry.is_empty]
    if pd.to_numeric(drawn[column], errors="coerce").isna().any():
        # drawn grey, as _delta_color says
        items.append((_delta_color(None), NO_VALUE_LABEL, DELTA_FILL_OPACITY))
    if ways is not None:
        add_stress_layers(m, ways, show=True)
        items += [(LOW_STRESS_COLOR, "low-stress road"), (HIGH_STRESS_COLOR, "high-stress road")]
    if highlight is not None and len(highlight):
        pane = _pane(m, CHANGED_PANE)
        changed = layer(f"Changed ways ({len(highlight)})")
        gj = folium.GeoJson(compact_geojson(highlight, ["osm_id", "name"], tolerance_m=0),
                            style_function=lambda _f: {"color": CHANGED_COLOR, "weight": 9,
                                                       "opacity": 0.95, "pane": pane})
        TextTooltip(["name", "osm_id"], ["", "way"]).add_to(gj)
        gj.add_to(changed)
        add_changed_rings(changed, highlight, pane)
        changed.add_to(m)
        items.append((CHANGED_COLOR, f"changed way{'s' if len(highlight) != 1 else ''}"))
    add_legend(m, title, items)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


#: Radius in screen pixels of the ring drawn around each changed way: the same size at every
#: zoom, so a changed segment a few metres long stays visible on a zoomed-out map.
CHANGED_RING_PX = 14


def changed_way_points(ways: Any) -> Any:
    """One point per OSM way of ``ways``: the middle of the way (of its longest connected
    part when its segments do not join), where :func:`add_changed_rings` draws its ring.

    Parameters
    ----------
    ways : geopandas.GeoDataFrame
        Road segments (lines, any CRS) with ``osm_id``; ``name`` is kept when present.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_id``, ``name`` and the point geometry (EPSG:4326), one row per way.
    """
    import geopandas as gpd
    import shapely

    w = ways[ways.geometry.notna() & ~ways.geometry.is_empty]
    w = w.set_crs(4326) if w.crs is None else w
    rows, points = [], []
    if len(w):
        utm = w.to_crs(4326).estimate_utm_crs()
        w = w.to_crs(utm)
        names = w["name"] if "name" in w.columns else None
        for _key, grp in w.groupby(w["osm_id"].astype(str), sort=False):
            merged = shapely.line_merge(shapely.union_all(grp.geometry.to_numpy()))
            parts = list(getattr(merged, "geoms", [merged]))
            longest = max(parts, key=lambda g: g.length)
            points.append(longest.interpolate(0.5, normalized=True) if longest.length
                          else longest.centroid)
            name = names.loc[grp.index].dropna() if names is not None else []
            rows.append({"osm_id": grp["osm_id"].iloc[0],
                         "name": name.iloc[0] if len(name) else None})
        return gpd.GeoDataFrame(rows, geometry=points, crs=utm).to_crs(4326)
    return gpd.GeoDataFrame({"osm_id": [], "name": []}, geometry=[], crs=4326)


def add_changed_rings(target: Any, ways: Any, pane: str | None = None) -> None:
    """Draw a ring of :data:`CHANGED_RING_PX` pixels (a Leaflet circle marker: fixed screen
    size) around each changed OSM way of ``ways``, in :data:`CHANGED_COLOR`, with the way's
    name and id as a text tooltip.

    Parameters
    ----------
    target : folium.Map or folium.FeatureGroup
        Where to add the rings.
    ways : geopandas.GeoDataFrame
        The changed segments (see :func:`changed_way_points`).
    pane : str or None
        The map pane to draw in (default: Leaflet's overlay pane).
    """
    data = compact_geojson(changed_way_points(ways), ["osm_id", "name"], tolerance_m=0)
    if not data["features"]:
        return
    ring = {"radius": CHANGED_RING_PX, "color": CHANGED_COLOR, "weight": 3, "opacity": 0.95,
            "fill": True, "fillColor": CHANGED_COLOR, "fillOpacity": 0.12}
    gj = folium.GeoJson(data, marker=folium.CircleMarker(**ring, **({"pane": pane} if pane
                                                                   else {})),
                        style_function=lambda _f: dict(ring))
    TextTooltip(["name", "osm_id"], ["", "way"]).add_to(gj)
    gj.add_to(target)


def difference_map(base: Any, other: Any, column: str = "overall_score") -> OfflineMap:
    """Map of ``other - base`` block scores (blocks matched by ``geoid20``).

    Parameters
    ----------
    base : Results or str or pathlib.Path
        The reference result set, or a location accepted by
        :func:`~pna_helpers.results.load_results`.
    other : Results or str or pathlib.Path
        The result set compared with ``base``; the map shows its blocks.
    column : str
        Block column to compare (default ``overall_score``). 0-1 ``*_score`` columns are
        compared x100, as the block maps draw them, so that every change is in points of a
        0-100 score and the legend's classes (1, 10 points) mean the same for every column.

    Returns
    -------
    OfflineMap
        A :func:`delta_map` of :func:`~pna_helpers.compare.block_differences`, its layer and
        legend named after the score (not the column) and the two places, its tooltips
        labelled (block, change in points, the value in each place).

    Raises
    ------
    InputError
        A location cannot be loaded, or the blocks of either set have no ``column``.
    """
    import numpy as np

    from pna_helpers.compare import block_differences
    from pna_helpers.results import BLOCK_SCORE_COLUMNS, load_results

    b, o = load_results(base), load_results(other)
    diff = block_differences(b, o, column)
    values = diff[["base", "other"]].to_numpy(dtype=float)
    scale = 1.0 if column == "overall_score" or np.nanmax(np.r_[values.ravel(), 0]) > 1.0001 \
        else 100.0
    diff["delta"] = (diff["other"] - diff["base"]) * scale
    diff["delta"] = diff["delta"].round(2)
    diff["base"] = (diff["base"] * scale).round(1)
    diff["other"] = (diff["other"] * scale).round(1)
    score = BLOCK_SCORE_COLUMNS.get(column, column).split(" (")[0]
    title = f"{o.name} minus {b.name}: change in block {score.lower()} score (points)"
    scored = f"{score} (0-100)" if column in BLOCK_SCORE_COLUMNS or scale == 100.0 else score
    return delta_map(diff, "delta", title, extra_fields=["base", "other"],
                     labels={"geoid20": "Block", "delta": "Change (points)",
                             "base": f"{scored}, {b.name}", "other": f"{scored}, {o.name}"})


def save_map(m: Any, path: str | Path) -> Path:
    """Write a map as one self-contained HTML file (atomic); return the path.

    ``m`` is a map, or a results location / :class:`~pna_helpers.results.Results`, for which
    the :func:`explore_map` is written.

    Parameters
    ----------
    m : folium.Map or Results or str or pathlib.Path
        The map, or a result set to write the :func:`explore_map` of.
    path : str or pathlib.Path
        The HTML file to write.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        ``m`` is a location that cannot be loaded, or ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write the map to {path}: it is a folder; give an HTML file "
                         f"name, e.g. {path / 'map.html'}")
    if not isinstance(m, folium.Map):
        m = explore_map(m)
    if isinstance(m, OfflineMap):
        m.save(path)
    else:  # a plain folium map: inline its assets too
        write_text(path, inline_assets(m.get_root().render()))
    return path
