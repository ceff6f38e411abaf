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
        Include every score of the results (sub-scores such as doctors and parks, population
        and mileage rows), not only the main ones. Default False.

    Returns
    -------
    pandas.DataFrame
        Indexed by score label, one column per result set (named after its place; a repeated
        name gets `` (2)``, `` (3)``, ...), rounded to 2 decimals. With exactly two result
        sets, a ``difference`` column (second minus first) is added.

    Raises
    ------
    InputError
        ``results`` is empty, or a location cannot be loaded.
    """
    import pandas as pd

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
        cols[name] = r.scores()
    df = pd.DataFrame(cols)
    ids = list(MAIN_SCORES) if not all_scores else [i for i in df.index]
    df = df.reindex([i for i in ids if i in df.index])
    df.index = [SCORE_INFO.get(i, {}).get("label", i) for i in df.index]
    df.index.name = "score"
    if len(loaded) == 2:
        df["difference"] = df.iloc[:, 1] - df.iloc[:, 0]
    return df.round(2)


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
