"""Charts read on their own: the sub-score chart names its colours in a key beside the bars."""

from __future__ import annotations

from pathlib import Path

import pytest
from resultsfactory import write_export

from pna_helpers import charts
from pna_helpers.display import not_applicable
from pna_helpers.results import SCORE_INFO, load_results


@pytest.fixture
def export(tmp_path: Path):
    return load_results(write_export(tmp_path / "helsinki"))


def test_sub_scores_key_beside_the_chart_names_every_colour(export) -> None:
    from matplotlib.colors import to_hex

    fig = charts.sub_scores(export)
    ax = fig.axes[0]
    leg = ax.get_legend()
    assert leg is not None and leg.get_title().get_text() == "Category"
    labels = [t.get_text() for t in leg.get_texts()]
    key = {to_hex(h.get_facecolor()): lab for h, lab in zip(leg.legend_handles, labels)}
    # every bar's colour is named in the key, by its category's label
    drawn = {to_hex(b.get_facecolor()) for b in ax.patches if b.get_width() > 0}
    assert drawn and drawn <= set(key), (drawn, key)
    bars = {t.get_text(): to_hex(b.get_facecolor())
            for t, b in zip(ax.get_yticklabels(), ax.patches)}
    for sid, info in SCORE_INFO.items():
        if info["label"] in bars and bars[info["label"]] in key and sid not in not_applicable(
                export):
            assert key[bars[info["label"]]] == SCORE_INFO[info["group"]]["label"]
    # the scores that do not apply are explained in the key too
    assert not_applicable(export) and any(lab.startswith("n/a") for lab in labels)
    # beside the bars (right of the axes), not over them, and not cut off by the figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    lb, axb = leg.get_window_extent(r), ax.get_window_extent(r)
    assert lb.x0 >= axb.x1 and lb.x1 <= fig.bbox.x1 + 0.5, (lb, axb, fig.bbox)
    charts._plt().close(fig)


def test_sub_scores_na_is_written_not_drawn_as_zero(export) -> None:
    fig = charts.sub_scores(export)
    ax = fig.axes[0]
    na = {SCORE_INFO[i]["label"] for i in not_applicable(export)}
    widths = {t.get_text(): b.get_width() for t, b in zip(ax.get_yticklabels(), ax.patches)}
    texts = [t.get_text() for t in ax.texts]
    shown_na = [lab for lab in widths if lab in na]
    assert shown_na and all(widths[lab] == 0 for lab in shown_na)
    assert texts.count("n/a") == len(shown_na)
    charts._plt().close(fig)


def test_compare_scores_key_under_the_bars_and_na_written(tmp_path: Path) -> None:
    """The key of the grouped bars sits outside the axes (it covered the bars at 90-100), and a
    main score that does not apply to a place (no transit station) is written n/a, not drawn
    as 0."""
    import geopandas as gpd
    from shapely.geometry import Point

    from pna_helpers.compare import scores_table

    a_dir = write_export(tmp_path / "a")
    gpd.GeoDataFrame({"id": [1]}, geometry=[Point(24.94, 60.17)], crs=4326).to_file(
        a_dir / "neighborhood_transit.geojson", driver="GeoJSON")  # a station in A only
    a = load_results(a_dir, name="Before")
    b = load_results(write_export(tmp_path / "b"), name="After")
    fig = charts.compare_scores([a, b])
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    key = ax.get_legend().get_window_extent(renderer)
    axes_box = ax.get_window_extent(renderer)
    assert key.y1 <= axes_box.y0 or key.x0 >= axes_box.x1  # outside the plotting area
    assert fig.get_window_extent(renderer).contains(*key.p0)  # not cut off the figure
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Before", "After"]
    # n/a written at exactly the bars of the scores that do not apply (no bar drawn as 0)
    tab = scores_table([a, b]).drop(columns="difference")
    assert pd_isna(tab.loc["Transit", "After"]) and tab.loc["Transit", "Before"] == 100
    ticks = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks()))
    expected = sorted(round(ticks[lbl] + (-0.2 if place == "Before" else 0.2), 2)
                      for lbl in tab.index for place in tab.columns
                      if pd_isna(tab.loc[lbl, place]))
    written = sorted(round(t.get_position()[0], 2) for t in ax.texts if t.get_text() == "n/a")
    assert written == expected and round(ticks["Transit"] + 0.2, 2) in written
    assert round(ticks["Transit"] - 0.2, 2) not in written


def pd_isna(v) -> bool:
    return v != v
