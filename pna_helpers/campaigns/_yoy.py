"""Year over year: a campaign against an earlier campaign or a published table of per-place
BNA scores.

A published table is PeopleForBikes' city-ratings CSV (``city-ratings-v*.csv``: ``city``,
``state``, ``census_fips_code``, ``census_population``, ``bna_people``, ...,
``bna_overall_score``, ``bna_total_low_stress_miles``, ``bna_total_high_stress_miles``) or any
CSV with those columns (``place`` for ``city`` and ``population`` work too). Places match on
``census_fips_code`` when both sides have it, else on the place name (and state).

Suspicious changes are flagged (:data:`FLAG_RULES`): |Δ overall| ≥ 10 points, low- or
high-stress mileage changed ≥ 30 %, population changed ≥ 20 %. Every flag links to that
place's comparison view (an anchor of the comparison page, :func:`comparison_html`).
"""

from __future__ import annotations

import html as _html
from pathlib import Path
from typing import Any

from pna_engine.atomic import write_text
from pna_engine.errors import InputError
from pna_helpers._html import NO_MATH_CLASS
from pna_helpers.jobs.request import slugify

#: (name, column, kind, threshold): kind "abs" = absolute points, "rel" = relative change.
FLAG_RULES: tuple[tuple[str, str, str, float], ...] = (
    ("overall score moved", "bna_overall_score", "abs", 10.0),
    ("low-stress mileage changed", "bna_total_low_stress_miles", "rel", 0.30),
    ("high-stress mileage changed", "bna_total_high_stress_miles", "rel", 0.30),
    ("population changed", "population", "rel", 0.20),
)
#: Published-table column -> campaign table column.
ALIASES = {"city": "place", "census_population": "population", "name": "place"}


def _published(path: str | Path) -> Any:
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputError(f"comparison table {p} does not exist (give a campaign name or a CSV "
                         "of per-place BNA scores)")
    try:
        df = pd.read_csv(p, dtype={"census_fips_code": str})
    except Exception as exc:
        raise InputError(f"comparison table {p} is not a readable CSV "
                         f"({str(exc).splitlines()[0]})") from exc
    df = df.rename(columns={k: v for k, v in ALIASES.items()
                            if k in df.columns and v not in df.columns})
    if "place" not in df.columns:
        raise InputError(f"comparison table {p} needs a 'city' (or 'place') column, as "
                         "PeopleForBikes' city-ratings CSV has")
    if "bna_overall_score" not in df.columns:
        raise InputError(f"comparison table {p} needs a 'bna_overall_score' column "
                         "(PeopleForBikes' city-ratings column names)")
    if "year" in df.columns and df["place"].duplicated().any():  # historical: latest year
        df = df.sort_values("year").drop_duplicates(
            [c for c in ("census_fips_code", "place", "state") if c in df.columns], keep="last")
    return df


def _key(df: Any, use_fips: bool) -> Any:
    import pandas as pd

    if use_fips:
        return df["census_fips_code"].astype(str).str.zfill(7)
    name = df["place"].astype(str).str.strip().str.lower()
    if "state" in df.columns and df["state"].notna().any():
        return name + "|" + df["state"].fillna("").astype(str).str.upper()
    return pd.Series(name, index=df.index)


def compare_tables(new: Any, old: Any) -> Any:
    """Per-place deltas of ``new`` minus ``old`` (two results tables) and the flags.

    Returns a DataFrame: ``place``, for each score column present on both sides
    ``<col>_old``, ``<col>_new``, ``delta_<col>``; the relative changes of mileage and
    population; ``flags`` (``; ``-separated) and ``view`` (the comparison anchor).
    """
    import numpy as np
    import pandas as pd

    use_fips = all("census_fips_code" in d.columns and d["census_fips_code"].notna().all()
                   for d in (new, old))
    state_ok = "state" in new.columns and "state" in old.columns
    n, o = new.copy(), old.copy()
    if not state_ok:
        n, o = n.drop(columns=["state"], errors="ignore"), o.drop(columns=["state"], errors="ignore")
    n["_key"], o["_key"] = _key(n, use_fips), _key(o, use_fips)
    cols = [c for c in new.columns if (c.startswith("bna_") or c == "population")
            and c in old.columns]
    m = n[["_key", "place", *cols]].merge(o[["_key", *cols]], on="_key", how="left",
                                          suffixes=("_new", "_old"), indicator=True)
    out = pd.DataFrame({"place": m["place"], "matched": m["_merge"] == "both"})
    for c in cols:
        a = pd.to_numeric(m[f"{c}_old"], errors="coerce")
        b = pd.to_numeric(m[f"{c}_new"], errors="coerce")
        out[f"{c}_old"], out[f"{c}_new"], out[f"delta_{c}"] = a, b, (b - a).round(2)
    flags: list[list[str]] = [[] for _ in range(len(out))]
    for name, col, kind, thr in FLAG_RULES:
        if f"delta_{col}" not in out.columns:
            continue
        a, d = out[f"{col}_old"], out[f"delta_{col}"]
        if kind == "abs":
            hit = d.abs() >= thr
            text = [f"{name} {v:+.1f} points" for v in d]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(a.abs() > 0, d / a.abs(), np.where(d.abs() > 0, np.inf, 0.0))
            out[f"change_{col}"] = np.round(rel, 3)
            hit = pd.Series(np.abs(rel) >= thr, index=out.index) & d.notna()
            text = [f"{name} {r * 100:+.0f} %" if np.isfinite(r) else f"{name} (from 0)"
                    for r in rel]
        for i in np.flatnonzero(hit.fillna(False).to_numpy()):
            flags[i].append(text[i])
    out["flags"] = ["; ".join(f) for f in flags]
    out["flagged"] = out["flags"] != ""
    out["view"] = ["#place-" + slugify(str(p)) for p in out["place"]]
    return out


def compare(campaign: Any, other: Any) -> Any:
    """Compare a campaign with an earlier one (a :class:`Campaign` or its name) or a
    published table (path of a CSV); see :func:`compare_tables`."""
    from pna_helpers.campaigns._core import Campaign, load

    new = campaign.results()
    if isinstance(other, Campaign):
        old = other.results()
    elif isinstance(other, str | Path) and str(other).lower().endswith(".csv"):
        old = _published(other)
    else:
        old = load(str(other), campaign.client).results()
    return compare_tables(new, old)


def _label(col: str) -> str:
    """A table column (``bna_overall_score``, ``population`` ...) as a reader's label."""
    from pna_helpers.results import SCORE_INFO

    sid = col.removeprefix("bna_")
    extra = {"total_low_stress_miles": "Low-stress miles", "total_high_stress_miles":
             "High-stress miles", "population": "Population"}
    info = SCORE_INFO.get(sid)
    if info is None:
        return extra.get(sid, sid.replace("_", " "))
    if info["main"] or info["group"] not in SCORE_INFO:
        return info["label"]
    return f"{SCORE_INFO[info['group']]['label']}: {info['label']}"


def comparison_html(cmp: Any, title: str = "Year over year") -> str:
    """One self-contained page: the flagged places first (each flag links to the place's
    comparison view), then one view per place with old, new and delta of every score.
    Every outside text is escaped."""
    esc = _html.escape
    cols = [c[:-4] for c in cmp.columns if c.endswith("_old")]
    flagged = cmp[cmp["flagged"]]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>.pna-yoy{font:14px sans-serif;margin:20px}.pna-yoy table{border-collapse:collapse}"
             ".pna-yoy td,.pna-yoy th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
             ".pna-yoy td:first-child,.pna-yoy th:first-child{text-align:left}"
             ".pna-yoy .up{color:#1a7f37}.pna-yoy .down{color:#b42318}"
             ".pna-yoy section{margin:18px 0}</style></head><body>",
             # shown in a notebook the body tag is dropped: this div keeps $ in names as text
             f"<div class='pna-yoy {NO_MATH_CLASS}'>",
             f"<h1>{esc(title)}</h1>",
             f"<p>{int(cmp['matched'].sum())} of {len(cmp)} places matched; "
             f"{len(flagged)} flagged as suspicious.</p>", "<h2>Suspicious changes</h2><ul>"]
    for _, r in flagged.iterrows():
        links = ", ".join(f"<a href='{esc(r['view'])}'>{esc(f)}</a>"
                          for f in r["flags"].split("; "))
        parts.append(f"<li><b>{esc(str(r['place']))}</b>: {links}</li>")
    if not len(flagged):
        parts.append("<li>none</li>")
    parts.append("</ul><h2>Places</h2>")
    for _, r in cmp.iterrows():
        parts.append(f"<section id='{esc(r['view'][1:])}'><h3>{esc(str(r['place']))}</h3>")
        if not r["matched"]:
            parts.append("<p>not in the earlier table</p></section>")
            continue
        parts.append("<table><tr><th>score</th><th>before</th><th>now</th><th>Δ</th></tr>")
        for c in cols:
            a, b, d = r[f"{c}_old"], r[f"{c}_new"], r[f"delta_{c}"]
            cls = "up" if d == d and d > 0 else ("down" if d == d and d < 0 else "")
            parts.append(f"<tr><td>{esc(_label(c))}</td><td>{_fmt(a)}</td>"
                         f"<td>{_fmt(b)}</td><td class='{cls}'>{_fmt(d)}</td></tr>")
        parts.append("</table>")
        if r["flags"]:
            parts.append(f"<p>⚠ {esc(r['flags'])}</p>")
        parts.append("</section>")
    parts.append("</div></body></html>")
    return "\n".join(parts)


def _fmt(v: Any) -> str:
    return "-" if v is None or v != v else f"{v:,.2f}"


def write_comparison(cmp: Any, out_csv: str | Path, title: str = "Year over year") -> Path:
    """Write the comparison CSV and, next to it, its HTML page (``.html``); the CSV's
    ``view`` column holds each place's link into that page."""
    from pna_engine.atomic import atomic_path

    out_csv = Path(out_csv)
    if out_csv.suffix.lower() != ".csv":
        raise InputError(f"comparison output {out_csv}: use a .csv name")
    page = out_csv.with_suffix(".html")
    df = cmp.copy()
    df["view"] = page.name + df["view"]
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    write_text(page, comparison_html(cmp, title))
    return out_csv
