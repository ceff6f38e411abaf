"""Compare two or more result sets: scores side by side and block score differences."""

from __future__ import annotations

from typing import Any

from pna_engine.errors import InputError
from pna_helpers.results import (
    MAIN_SCORES,
    SCORE_INFO,
    Results,
    load_results,
    require_block_column,
)


def scores_table(results: list[Any], all_scores: bool = False) -> Any:
    """City scores side by side: one row per score, one column per result set (0-100).

    Parameters
    ----------
    results : list
        :class:`~pna_helpers.results.Results` or locations accepted by
        :func:`~pna_helpers.results.load_results`.
    all_scores : bool
        Include every score of the results (sub-scores such as doctors and parks, in the
        reports' order), then :data:`EXTRA_ROWS`: the population and the low-/high-stress
        centreline miles (a two-way road counts once, as the reports count it; the score
        file's ``total_miles_*`` count each direction). Default False: the main scores.

    Returns
    -------
    pandas.DataFrame
        Indexed by score label, one column per result set (named after its place; a repeated
        name gets `` (2)``, `` (3)``, ...), rounded to 2 decimals; NaN (shown ``n/a``) where
        a score does not apply to a place (:func:`pna_helpers.display.not_applicable`: no
        destination of the kind), never 0. With exactly two result sets, a ``difference``
        column (second minus first; NaN where either is n/a) is added.

    Raises
    ------
    InputError
        ``results`` is empty, or a location cannot be loaded.
    """
    import pandas as pd

    from pna_helpers.display import not_applicable

    loaded = [load_results(r) for r in results]
    if not loaded:
        raise InputError("compare needs at least one result set")
    cols = {}
    names: list[str] = []
    for r in loaded:
        name = r.name
        k = 2
        while name in names:  # two places with the same name: keep both
            name = f"{r.name} ({k})"
            k += 1
        names.append(name)
        s = r.scores().copy()
        na = [sid for sid in not_applicable(r) if sid in s.index]
        s[na] = float("nan")  # n/a, as the place's report shows it
        cols[name] = s
    df = pd.DataFrame(cols)
    ids = list(MAIN_SCORES) if not all_scores else list(SCORE_INFO)
    df = df.reindex([i for i in ids if i in df.index])
    df.index = [SCORE_INFO[i]["label"] for i in df.index]
    if all_scores:
        extra = pd.DataFrame([_extra_values(r) for r in loaded], index=names).T
        df = pd.concat([df, extra.reindex(columns=df.columns)])
    df.index.name = "score"
    if len(loaded) == 2:
        df["difference"] = df.iloc[:, 1] - df.iloc[:, 0]
    return df.round(2)


#: Rows after the scores in ``scores_table(..., all_scores=True)``, their units in the label.
EXTRA_ROWS: tuple[str, ...] = ("Population (people)", "Low-stress roads (centreline mi)",
                               "High-stress roads (centreline mi)")


def _extra_values(res: Results) -> dict[str, float]:
    s = res.scores()
    pop = float(s["population_total"]) if "population_total" in s.index else float("nan")
    try:
        miles = res.mileage_by_stress().groupby("stress")["miles"].sum()
        low, high = float(miles.get("low", 0.0)), float(miles.get("high", 0.0))
    except InputError:  # no road segments in the export
        low = high = float("nan")
    return dict(zip(EXTRA_ROWS, (pop, low, high)))


def block_differences(base: Results | Any, other: Results | Any,
                      column: str = "overall_score") -> Any:
    """Blocks of ``other`` with ``base``/``other`` values of ``column`` and ``delta = other -
    base``, matched by ``geoid20`` (GeoDataFrame in EPSG:4326, geometry of ``other``).

    Blocks present only in ``other`` get a null ``base`` and ``delta``; blocks present only in
    ``base`` are not in the result.

    Parameters
    ----------
    base : Results or str or pathlib.Path
        The reference result set, or a location accepted by
        :func:`~pna_helpers.results.load_results`.
    other : Results or str or pathlib.Path
        The result set compared with ``base`` (same accepted forms).
    column : str
        Block column to compare (default ``overall_score``, 0-100; ``*_score`` category
        columns are 0-1).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``geoid20``, ``other``, ``base``, ``delta`` (rounded to 4 decimals) and the
        geometry, one row per block of ``other``.

    Raises
    ------
    InputError
        A location cannot be loaded, or the blocks of either set have no ``column``.
    """
    import pandas as pd

    b, o = load_results(base), load_results(other)
    bb, ob = b.blocks, o.blocks
    for res in (b, o):
        for col in ("geoid20", column):
            require_block_column(res, col, "comparing blocks")
    left = ob[["geoid20", column, ob.geometry.name]].rename(columns={column: "other"})
    right = pd.DataFrame({"geoid20": bb["geoid20"].astype(str).to_numpy(),
                          "base": pd.to_numeric(bb[column], errors="coerce").to_numpy()})
    out = left.merge(right, on="geoid20", how="left")
    out["other"] = pd.to_numeric(out["other"], errors="coerce")
    out["delta"] = (out["other"] - out["base"]).round(4)
    return out
