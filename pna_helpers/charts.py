"""Matplotlib charts of BNA results (each returns a :class:`matplotlib.figure.Figure`)."""

from __future__ import annotations

from typing import Any

from pna_helpers.results import (
    BLOCK_SCORE_COLUMNS,
    MAIN_SCORES,
    SCORE_INFO,
    load_results,
    require_block_column,
)

LOW = "#1f78b4"
HIGH = "#e31a1c"


def _bar_label(ax: Any, bar: Any, v: float, text: str, fontsize: int, color: str) -> None:
    """A 0-100 bar's value: inside the end of a long bar in white bold (never over the frame
    or black over the bar), else just after it."""
    y = bar.get_y() + bar.get_height() / 2
    if v > 88:
        ax.text(v - 1, y, text, va="center", ha="right", fontsize=fontsize, color="white",
                fontweight="bold")
    else:
        ax.text(v + 1, y, text, va="center", fontsize=fontsize, color=color)


def _plt() -> Any:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline",
                                                "inline", "agg"):
        try:
            from IPython import get_ipython

            if get_ipython() is None:
                matplotlib.use("Agg")
        except ImportError:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def category_scores(results: Any, ax: Any = None) -> Any:
    """Horizontal bars of the overall and main category scores (0-100).

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results` (folder, ``.zip``, ``s3://`` URI, job id).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new 7 x 3.6 inch figure).

    Returns
    -------
    matplotlib.figure.Figure
        The figure of ``ax``, or the new figure.

    Raises
    ------
    InputError
        The results cannot be loaded.
    """
    plt = _plt()
    res = load_results(results)
    s = res.scores()
    ids = [i for i in MAIN_SCORES if i in s.index]
    labels = [SCORE_INFO[i]["label"] for i in ids]
    vals = [float(s[i]) if s[i] == s[i] else 0.0 for i in ids]  # main scores always apply
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.6))
    colors = ["#333333"] + ["#4c72b0"] * (len(ids) - 1)
    bars = ax.barh(labels[::-1], vals[::-1], color=colors[::-1])
    for b, v in zip(bars, vals[::-1]):
        _bar_label(ax, b, v, f"{v:.1f}", fontsize=9, color="black")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score (0-100)")
    ax.set_title(f"{res.name}: BNA scores")
    fig.tight_layout()
    return fig


#: Sub-score bar colour per category (the key beside :func:`sub_scores`).
SUB_SCORE_COLORS: dict[str, str] = {"opportunity": "#55a868", "core_services": "#c44e52",
                                    "recreation": "#8172b2"}
#: Colour of a sub-score that does not apply (no destination of its kind).
NA_COLOR = "#bdbdbd"


def sub_scores(results: Any) -> Any:
    """Bars of every sub-score (doctors, parks, ...) coloured by category, with a key beside
    the chart naming each colour's category and what "n/a" means; a score that does not apply
    (no destination of its kind) is written "n/a" with a grey marker, not drawn as 0.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results` (folder, ``.zip``, ``s3://`` URI, job id).

    Returns
    -------
    matplotlib.figure.Figure
        One axes of bars; the key is a legend titled "Category" placed outside the axes, on
        the right.

    Raises
    ------
    InputError
        The results cannot be loaded.
    """
    from matplotlib.patches import Patch

    from pna_helpers.display import not_applicable

    plt = _plt()
    res = load_results(results)
    s = res.scores()
    na = not_applicable(res)
    ids = [i for i, info in SCORE_INFO.items() if not info["main"] and i in s.index][::-1]
    palette = SUB_SCORE_COLORS
    vals = [0.0 if i in na else float(s[i]) for i in ids]
    fig, ax = plt.subplots(figsize=(9, 4.6))
    bars = ax.barh([SCORE_INFO[i]["label"] for i in ids], vals,
                   color=[palette.get(SCORE_INFO[i]["group"], "#4c72b0") for i in ids])
    for b, i, v in zip(bars, ids, vals):
        y = b.get_y() + b.get_height() / 2
        if i in na:
            ax.plot([1.5], [y], "s", color=NA_COLOR, ms=6, clip_on=False)
            ax.text(3.5, y, "n/a", va="center", fontsize=8, color="#666")
        else:
            _bar_label(ax, b, v, f"{v:.0f}", fontsize=8, color="#222")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score (0-100)")
    ax.set_title("Sub-scores by category")
    groups = [g for g in palette if any(SCORE_INFO[i]["group"] == g for i in ids)]
    handles = [Patch(color=palette[g], label=SCORE_INFO[g]["label"]) for g in groups]
    if any(i in na for i in ids):
        handles.append(Patch(color=NA_COLOR, label="n/a: no destination\nof this kind in the place"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
              fontsize=9, title="Category", title_fontsize=9, frameon=False, alignment="left")
    fig.tight_layout()
    return fig


def block_score_distribution(results: Any, column: str = "overall_score") -> Any:
    """Histogram of block scores, population-weighted and by block count.

    Two panels with ten bins: blocks per score class (left) and people per score class,
    weighted by ``pop20`` (right). Blocks without a score are left out.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results` (folder, ``.zip``, ``s3://`` URI, job id).
    column : str
        Block score column (default ``overall_score``, 0-100; bins run 0-1 when no value is
        above 1, as for the ``*_score`` category columns).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        The results cannot be loaded, have no census blocks, or the blocks have no
        ``column``.
    """
    import numpy as np
    import pandas as pd

    plt = _plt()
    res = load_results(results)
    b = res.blocks
    require_block_column(res, column, "the block score distribution")
    v = pd.to_numeric(b[column], errors="coerce").to_numpy(dtype=float)
    pop = pd.to_numeric(b.get("pop20", pd.Series(1, index=b.index)), errors="coerce").fillna(0)
    ok = ~np.isnan(v)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    bins = np.linspace(0, 100 if np.nanmax(np.r_[v[ok], 0]) > 1.0001 else 1, 11)
    axes[0].hist(v[ok], bins=bins, color="#4c72b0", edgecolor="white")
    label = BLOCK_SCORE_COLUMNS.get(column, column).replace("(0-1)", "(0-1, x100 on maps)")
    axes[0].set_title(f"Blocks by score ({ok.sum()} blocks)")
    axes[0].set_ylabel("blocks")
    axes[1].hist(v[ok], bins=bins, weights=pop.to_numpy()[ok], color="#55a868", edgecolor="white")
    axes[1].set_title("People by block score")
    axes[1].set_ylabel("people")
    for ax in axes:
        ax.set_xlabel(f"block score: {label}")
    fig.tight_layout()
    return fig


def mileage_by_stress(results: Any) -> Any:
    """Stacked bars: miles of low- and high-stress network per functional class.

    Centreline miles from :meth:`~pna_helpers.results.Results.mileage_by_stress` (a two-way
    road counts once); classes sorted by total length.

    Parameters
    ----------
    results : Results or str or pathlib.Path
        A :class:`~pna_helpers.results.Results` or a location accepted by
        :func:`~pna_helpers.results.load_results` (folder, ``.zip``, ``s3://`` URI, job id).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        The results cannot be loaded, or has no road segments (``neighborhood_ways``).
    """
    plt = _plt()
    res = load_results(results)
    df = res.mileage_by_stress()
    piv = df.pivot_table(index="functional_class", columns="stress", values="miles",
                         aggfunc="sum", fill_value=0.0)
    for c in ("low", "high"):
        if c not in piv.columns:
            piv[c] = 0.0
    piv = piv.loc[(piv["low"] + piv["high"]).sort_values().index]
    piv.index = [str(c).replace("_", " ") for c in piv.index]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(piv) + 1.2))
    ax.barh(piv.index, piv["low"], color=LOW, label="low stress")
    ax.barh(piv.index, piv["high"], left=piv["low"], color=HIGH, label="high stress")
    ax.set_xlim(0, max(float((piv["low"] + piv["high"]).max()), 0.1) * 1.08)  # longest bar whole
    ax.set_xlabel("centreline miles (a two-way road counts once)")
    ax.set_title(f"Network mileage by stress: {piv['low'].sum():.1f} mi low, "
                 f"{piv['high'].sum():.1f} mi high")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def compare_scores(results: list[Any]) -> Any:
    """Grouped bars of the main scores of several result sets.

    Parameters
    ----------
    results : list
        :class:`~pna_helpers.results.Results` or locations accepted by
        :func:`~pna_helpers.results.load_results`, one bar per result set in each group.

    Returns
    -------
    matplotlib.figure.Figure
        The key (one entry per place) sits under the axes, never over a bar; a score that
        does not apply to a place (no destination of its kind) is written "n/a" where its bar
        would be, not drawn as 0.

    Raises
    ------
    InputError
        ``results`` is empty, or a location cannot be loaded.
    """
    import numpy as np

    from pna_helpers.compare import scores_table

    plt = _plt()
    tab = scores_table(results).drop(columns=["difference"], errors="ignore")
    n = len(tab.columns)
    x = np.arange(len(tab.index))
    w = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(x)), 4.2))
    for k, col in enumerate(tab.columns):
        pos = x + (k - (n - 1) / 2) * w
        vals = tab[col].to_numpy(dtype=float)
        ax.bar(pos, np.nan_to_num(vals, nan=0.0), width=w, label=str(col))
        for p, v in zip(pos, vals):
            if v != v:
                ax.text(p, 1.5, "n/a", ha="center", va="bottom", rotation=90, fontsize=8,
                        color="#666")
    ax.set_xticks(x, tab.index, rotation=20)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0-100)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22),
              ncol=min(n, 3), frameon=False)
    ax.set_title("Scores side by side")
    fig.tight_layout()
    return fig


def score_changes(deltas: Any) -> Any:
    """Bars of score changes (a Series score label -> change, e.g. from a scenario).

    Parameters
    ----------
    deltas : pandas.Series
        Score label -> change in score points, e.g. the ``change`` column of
        :meth:`~pna_helpers.scenario.ScenarioResult.score_changes`. Missing values are left
        out; gains are blue, losses red.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    d = deltas.dropna()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(d) + 1.2))
    ax.barh(list(d.index)[::-1], list(d.to_numpy())[::-1],
            color=["#2166ac" if v >= 0 else "#b2182b" for v in d.to_numpy()[::-1]])
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel("change (score points)")
    ax.set_title("Score change")
    fig.tight_layout()
    return fig


#: Bar colour and legend label of each job status in :func:`job_durations` (the same status
#: always has the same colour); statuses of jobs not finished yet share "running".
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "SUCCEEDED": ("#55a868", "succeeded"),
    "FAILED": ("#c44e52", "failed"),
    "CANCELLED": ("#8c8c8c", "cancelled"),
    "RUNNING": ("#4c72b0", "running (time so far)"),
}
OTHER_STATUS = ("#ccb974", "other status")


def _status_key(status: Any) -> str:
    from pna_helpers.jobs.model import ACTIVE

    s = str(status or "").strip().upper()
    return "RUNNING" if s in ACTIVE else s if s in STATUS_COLORS else ""


def job_durations(table: Any) -> Any:
    """Bars of job run times, coloured by status with a key.

    One bar per job that has started, labelled ``place (job id)``, in the table's order. A
    finished job runs from ``started_at`` to ``stopped_at``; a job still running up to now
    (the same "now" for every job of the chart); a finished job without ``stopped_at`` has no
    known run time and is left out (the chart says how many). Without start times the
    table's ``duration_s`` is used. Colours are :data:`STATUS_COLORS` (green succeeded, red
    failed, grey cancelled, blue running); the unit is seconds, minutes (longest job 3
    minutes or more) or hours (3 hours or more). No jobs, or none started yet, is said in
    words on the chart.

    Parameters
    ----------
    table : pandas.DataFrame or list of Job
        Jobs, e.g. :func:`pna_helpers.jobs.jobs_table` (``job_id``, ``place``, ``status``,
        ``started_at``, ``stopped_at`` and/or ``duration_s``), or the
        :class:`~pna_helpers.jobs.Job` list itself.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np
    import pandas as pd
    from matplotlib.patches import Patch

    from pna_helpers.jobs.model import Job, jobs_table, utcnow

    plt = _plt()
    if isinstance(table, list | tuple):
        table = jobs_table(list(table)) if all(isinstance(j, Job) for j in table) \
            else pd.DataFrame(list(table))
    df = pd.DataFrame(table).reset_index(drop=True)
    n_jobs = len(df)
    key = (df["status"] if "status" in df.columns else pd.Series("", index=df.index)) \
        .map(_status_key)

    def times(*cols: str) -> Any:
        for c in cols:
            if c in df.columns:
                return pd.to_datetime(df[c], utc=True, errors="coerce")
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")

    start, stop = times("started_at"), times("stopped_at", "finished_at")
    now = utcnow()
    end = stop.where(stop.notna() | (key != "RUNNING"), pd.Timestamp(now))
    dur = (end - start).dt.total_seconds()
    if "duration_s" in df.columns:  # no start time: what the table says
        given = pd.to_numeric(df["duration_s"], errors="coerce")
        dur = dur.where(start.notna(), given)
    dur = dur.where(dur >= 0)  # a stop before the start (clock skew) is no run time
    keep = dur.notna().to_numpy()
    unknown = int((start.notna() & dur.isna()).sum())  # finished, but no stop time
    df, dur, key = df[keep], dur[keep], key[keep]
    fig, ax = plt.subplots(figsize=(7, 0.3 * max(len(df), 1) + 1.4))
    unit, per = ("seconds", 1.0)
    if len(df):
        # one bar per job: "place (job id)", so jobs of the same place stay apart
        place = df["place"].astype(str) if "place" in df.columns else pd.Series("", df.index)
        ids = df["job_id"].astype(str) if "job_id" in df.columns else df.index.astype(str)
        label = [f"{p} ({i})" for p, i in zip(place, ids)]
        style = [STATUS_COLORS.get(k, OTHER_STATUS) for k in key]
        longest = float(dur.max())
        unit, per = (("hours", 3600.0) if longest >= 3 * 3600 else
                     ("minutes", 60.0) if longest >= 180 else ("seconds", 1.0))
        ax.barh(np.arange(len(df)), dur.to_numpy() / per, color=[c for c, _ in style])
        ax.set_yticks(np.arange(len(df)), label, fontsize=8)
        ax.invert_yaxis()
        shown = [s for s in [*STATUS_COLORS.values(), OTHER_STATUS] if s in style]
        ax.legend(handles=[Patch(color=c, label=lbl) for c, lbl in shown], fontsize=8,
                  loc="lower right", title="status", title_fontsize=8)
        ax.set_xlabel(f"run time ({unit})")
    else:
        ax.set_axis_off()
        jobs_ = f"{n_jobs} job{'s' if n_jobs != 1 else ''}"
        ax.text(0.5, 0.5, "no jobs" if not n_jobs else
                f"no job has started yet ({jobs_})" if not unknown else
                f"no run time known ({jobs_})",
                ha="center", va="center", transform=ax.transAxes, fontsize=11)
    running = " - running jobs up to " + now.astimezone().strftime("%H:%M:%S") \
        if (key == "RUNNING").any() else ""
    waiting = n_jobs - len(df) - unknown
    notes = [f"{waiting} not started yet" if waiting and len(df) else "",
             f"{unknown} finished without a stop time (left out)" if unknown else ""]
    note = "\n" + "; ".join(n for n in notes if n) if any(notes) else ""
    ax.set_title(f"Job run times{running}{note}", fontsize=10)
    fig.tight_layout()
    return fig
