"""The campaign dashboard for notebooks: one HTML block (counts by Batch status and engine
phase, throughput, ETA, cost, failures by reason with a log excerpt), refreshed in place while
the campaign runs. Every outside text (place names, reasons, logs) is escaped, and nothing in
the block is typeset as LaTeX maths (dollar amounts, ``$`` in logs)."""

from __future__ import annotations

import html as _html
import math
from typing import Any

from pna_helpers import _html as _esc
from pna_helpers.campaigns._core import CampaignStatus, _duration

STATUS_COLORS = {"SUBMITTED": "#9e9e9e", "PENDING": "#bdbdbd", "RUNNABLE": "#90caf9",
                 "STARTING": "#64b5f6", "RUNNING": "#1e88e5", "SUCCEEDED": "#2e7d32",
                 "FAILED": "#c62828"}


def money(v: float) -> str:
    """A cost as text (no currency sign): cents from a dollar up, else two significant
    digits (a demo's ``0.000040``, never ``0.0000``)."""
    v = float(v)
    if v >= 1 or v <= 0:
        return f"{v:,.2f}"
    return f"{v:.{max(2, 1 - math.floor(math.log10(v)))}f}"


def status_html(st: CampaignStatus) -> str:
    """The dashboard of one refresh as an HTML fragment."""
    esc = _html.escape
    n = max(1, st.places)
    bar = "".join(
        f"<div title='{k}: {v}' style='width:{100 * v / n:.3f}%;background:{STATUS_COLORS[k]}'>"
        "</div>" for k, v in st.counts.items() if v)
    cells = "".join(f"<td style='border-bottom:3px solid {STATUS_COLORS[k]}'><b>{v}</b><br>"
                    f"<small>{k}</small></td>" for k, v in st.counts.items())
    phases = ", ".join(f"{esc(k)} {v}" for k, v in st.phases.items()) or "-"
    thr = f"{st.throughput_per_hour:,.1f} places/h" if st.throughput_per_hour else "-"
    eta = "finished" if st.finished else f"{_duration(st.eta_s)} ({esc(st.eta_basis)})"
    est = ""
    if st.estimate:
        cost = _esc.dollar(money(st.estimate["cost"]))
        est = (f"<br>estimated before submitting: {st.estimate['total_seconds']:,.0f} s of "
               f"runs, {cost}")
    out = [
        f"<div class='pna-campaign {_esc.NO_MATH_CLASS}' "
        "style='font:13px sans-serif;max-width:900px'>",
        f"<h3 style='margin:4px 0'>Campaign {esc(st.name)} <small>({esc(st.backend)}, "
        f"{st.places} places, refreshed {esc(st.refreshed_at)})</small></h3>",
        "<div style='display:flex;height:14px;border:1px solid #999;margin:4px 0'>"
        f"{bar}</div>",
        f"<table style='text-align:center;border-collapse:collapse'><tr>{cells}</tr></table>",
        f"<p>running by phase: {phases}<br>throughput {thr} · ETA {eta}<br>"
        f"used {st.vcpu_hours:,.4f} vCPU-h = <b>{_esc.dollar(money(st.cost))}</b> at "
        f"{_esc.dollar(str(st.price_per_vcpu_hour))}/vCPU-h{est}</p>",
    ]
    if st.note:
        out.append(f"<p><i>{esc(st.note)}</i></p>")
    if st.failures:
        out.append("<h4 style='margin:6px 0'>Failures by reason</h4>")
        for g in st.failures:
            places = ", ".join(esc(p) for p in g["places"][:10])
            more = f" and {len(g['places']) - 10} more" if len(g["places"]) > 10 else ""
            out.append(
                f"<details open><summary><b>{g['count']} ×</b> {esc(g['reason'])}</summary>"
                f"<div>places: {places}{more}</div>"
                f"<pre style='background:#f6f6f6;padding:4px;white-space:pre-wrap'>"
                f"{esc(g.get('log_excerpt') or '')}</pre></details>")
    out.append("</div>")
    return "\n".join(out)


class _Html:
    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return self.text


def dashboard(campaign: Any, live: bool = True, timeout: float | None = None) -> CampaignStatus:
    """Show the dashboard; with ``live`` refresh it in place until every place is finished
    (polling backs off as in :meth:`Campaign.wait`). Returns the last status."""
    from IPython.display import display

    handle = display(_Html("<i>loading…</i>"), display_id=True)

    def show(st: CampaignStatus) -> None:
        if handle is not None:
            handle.update(_Html(status_html(st)))

    if not live:
        st = campaign.status()
        show(st)
        return st
    st = campaign.wait(timeout=timeout, progress=False, on_status=show)
    show(st)
    return st


def failures_table(st: CampaignStatus) -> Any:
    """Failures by reason as a DataFrame (reason, count, places, log excerpt)."""
    import pandas as pd

    return pd.DataFrame([{"reason": g["reason"], "count": g["count"],
                          "places": ", ".join(g["places"]),
                          "log excerpt": g.get("log_excerpt", "")} for g in st.failures],
                        columns=["reason", "count", "places", "log excerpt"])
