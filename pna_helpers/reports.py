"""Per-place HTML reports: the ``city_report`` notebook run by papermill, converted by nbconvert
without input cells into one self-contained HTML file (maps and charts inline, no CDN).

    pna report RESULTS -o outputs/reports/PLACE.html
    pna report --many places.txt            # one result location per line; + index.html

:func:`render_report` is what ``pna demo`` calls.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from pna_engine.atomic import write_text
from pna_engine.errors import InputError, storage_error
from pna_helpers import _html as esc
from pna_helpers.paths import REPO_ROOT, outputs_dir, slugify
from pna_helpers.results import load_results

NOTEBOOKS = REPO_ROOT / "notebooks"
REPORT_NOTEBOOK = "city_report.ipynb"


def _report_template() -> Path:
    p = NOTEBOOKS / REPORT_NOTEBOOK
    if p.exists():
        return p
    raise InputError(f"report template {REPORT_NOTEBOOK} not found in {NOTEBOOKS}")


# nbconvert's lab template links require.js and MathJax from CDNs; reports need neither.
_CDN_SCRIPT_RE = re.compile(
    r'<script[^>]*src="https?://[^"]*(require|mathjax)[^"]*"[^>]*>\s*</script>', re.I)
_MATHJAX_CFG_RE = re.compile(r'<script type="text/x-mathjax-config">.*?</script>', re.S)


def notebook_to_html(nb: Any, title: str | None = None) -> str:
    """Executed notebook (node or path) -> self-contained HTML without input cells.

    Images are embedded, cells tagged ``report-hide`` are left out, and the require.js and
    MathJax CDN scripts of nbconvert's ``lab`` template are removed.

    Parameters
    ----------
    nb : nbformat.NotebookNode or str or pathlib.Path
        The executed notebook, or the path of an ``.ipynb`` file.
    title : str, optional
        Title of the HTML page (default ``PNA report``).

    Returns
    -------
    str
        The HTML document.
    """
    import nbformat
    from nbconvert import HTMLExporter

    if not hasattr(nb, "cells"):
        nb = nbformat.read(str(nb), as_version=4)
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(template_name="lab", exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    # cells tagged "report-hide" (the template's own notes) stay out of the report
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"report-hide"}),
                                   enabled=True)
    resources = {"metadata": {"name": title or "PNA report"}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = _CDN_SCRIPT_RE.sub("", body)
    body = _MATHJAX_CFG_RE.sub("", body)
    return body


def render_report(results_location: Any, out_html: str | Path | None = None,
                  name: str | None = None, timeout: int = 900) -> Path:
    """Render the report of one result set into a single HTML file.

    Parameters
    ----------
    results_location : str, Path or Results
        Anything :func:`~pna_helpers.results.load_results` accepts.
    out_html : str or Path, optional
        Output file (default: ``outputs/reports/<place>.html``).
    name : str, optional
        Place name shown in the report (default: from the results).
    timeout : int
        Seconds allowed for any one notebook cell.

    Returns
    -------
    pathlib.Path
        The written HTML file (written atomically: no half report on failure).

    Raises
    ------
    InputError
        The results cannot be loaded, or the report template notebook is missing.
    OSError
        The output cannot be written (raised before the notebook runs when its folder cannot
        be created).
    RuntimeError
        A cell of the report notebook failed (the message names the cell and the error).
    """
    import papermill as pm

    res = load_results(results_location, name=name)  # clear errors before starting a kernel
    out = Path(out_html) if out_html else outputs_dir() / "reports" / f"{slugify(res.name, 60)}.html"
    template = _report_template()
    out.parent.mkdir(parents=True, exist_ok=True)  # a folder in the way fails before the kernel
    with tempfile.TemporaryDirectory(prefix="pna-report-") as tmp:
        executed = Path(tmp) / "report.ipynb"
        try:
            pm.execute_notebook(
                str(template), str(executed),
                # absolute: the notebook runs with the template's folder as working directory
                parameters={"results": str(Path(res.folder).resolve()), "place_name": res.name},
                progress_bar=False, cwd=str(template.parent), execution_timeout=timeout,
                log_output=False, kernel_name="python3",
                # ipykernel 7 warns on stderr about plain-TCP transport: the kernel is local.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except pm.PapermillExecutionError as exc:
            raise RuntimeError(f"the report of {res.name} failed in cell {exc.exec_count}: "
                               f"{exc.ename}: {exc.evalue}") from None
        html = notebook_to_html(executed, title=f"{res.name} - Bicycle Network Analysis")
    write_text(out, html)
    return out


def render_many(locations: list[Any], out_dir: str | Path | None = None,
                progress: bool = True) -> Path:
    """Render one report per result set plus ``index.html`` linking them (with scores).

    A result set that fails is listed in the index with its error; the others still render.
    Returns the index path (:func:`render_each` also returns the failures).

    Parameters
    ----------
    locations : list
        Result locations accepted by :func:`~pna_helpers.results.load_results` (or
        :class:`~pna_helpers.results.Results`).
    out_dir : str or pathlib.Path, optional
        Folder for the reports and ``index.html`` (default: ``outputs/reports/``; created if
        missing). Each report is ``<place>.html``.
    progress : bool
        Show a progress bar (default True).

    Returns
    -------
    pathlib.Path
        The ``index.html`` file.
    """
    return render_each(locations, out_dir, progress)[0]


def render_each(locations: list[Any], out_dir: str | Path | None = None,
                progress: bool = True) -> tuple[Path, list[tuple[str, str]]]:
    """As :func:`render_many`; returns ``(index path, [(location, error), ...])`` with one
    entry per result set that failed.

    Parameters
    ----------
    locations : list
        Result locations accepted by :func:`~pna_helpers.results.load_results` (or
        :class:`~pna_helpers.results.Results`).
    out_dir : str or pathlib.Path, optional
        Folder for the reports and ``index.html`` (default: ``outputs/reports/``; created if
        missing). Each report is ``<place>.html``.
    progress : bool
        Show a progress bar (default True).

    Returns
    -------
    tuple of (pathlib.Path, list of tuple of (str, str))
        The ``index.html`` file, and ``(location, first line of the error)`` for each result
        set that failed (empty when all rendered).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir) if out_dir else outputs_dir() / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for loc in tqdm(list(locations), desc="reports", unit="place", disable=not progress):
        try:
            res = load_results(loc)
            path = render_report(res, out_dir / f"{slugify(res.name, 60)}.html")
            s = res.scores()
            rows.append((res.name, path.name, s.get("overall_score"), s.get("population_total"),
                         None))
        except Exception as exc:  # one bad place must not stop the others
            rows.append((str(loc), None, None, None, str(exc).splitlines()[0]))
    index = out_dir / "index.html"
    write_text(index, _index_html(rows))
    return index, [(str(r[0]), str(r[4])) for r in rows if r[1] is None]


def _index_html(rows: list[tuple[Any, ...]]) -> str:
    def cell(v: Any, fmt: str = "{:.2f}") -> str:
        return "" if v is None or v != v else fmt.format(v)

    body = "".join(
        f"<tr><td>{esc.text(n)}</td>"
        f"<td>{f'<a href={chr(34)}{esc.href(f)}{chr(34)}>report</a>' if f else ''}</td>"
        f"<td class=n>{cell(s)}</td><td class=n>{cell(p, '{:,.0f}')}</td>"
        f"<td class=err>{esc.text(e)}</td></tr>"
        for n, f, s, p, e in rows)
    ok = sum(1 for r in rows if r[1])
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>PNA reports</title><style>"
        "body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 10px}td.n{text-align:right}"
        "td.err{color:#b00}</style></head><body><h1>Bicycle Network Analysis reports</h1>"
        f"<p>{ok} of {len(rows)} places rendered.</p><table><tr><th>place</th><th>report</th>"
        f"<th>overall score (0-100)</th><th>population (people)</th><th>error</th></tr>{body}"
        "</table>"
        "</body></html>\n")


# --------------------------------------------------------------------------- report header
def _run_time(res: Any) -> str:
    """When the run finished, in local time to the second ("" when unknown)."""
    status = Path(res.folder) / "status.json"
    stamp = None
    if status.exists():
        try:
            st = json.loads(status.read_text())
            stamp = st.get("finished_at") or st.get("updated_at")
        except (OSError, ValueError):
            stamp = None
    try:
        t = (_dt.datetime.fromisoformat(stamp) if stamp
             else _dt.datetime.fromtimestamp((Path(res.folder) / "run.json").stat().st_mtime,
                                             _dt.UTC))
    except (OSError, ValueError):
        return ""
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def synthetic_inputs(res: Any) -> list[str]:
    """Which of the boundary / population of a PNA run are synthetic (made by the demo recipe
    of ``pna_engine.demo`` or by the engine's synthetic grid, as ``run.json`` notes).

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).

    Returns
    -------
    list of str
        ``"boundary"`` and/or ``"population"``; empty for real inputs or an official export.
    """
    from pna_engine import demo

    run = res.run or {}
    inputs = run.get("inputs") or {}
    name = {k: Path(str((v or {}).get("path") or "")).name for k, v in inputs.items()
            if isinstance(v, dict)}
    out = []
    if name.get("boundary") == demo.BOUNDARY_FILE:
        out.append("boundary")
    notes = " ".join(str(n) for n in run.get("notes") or []).lower()
    if name.get("population") == demo.POPULATION_FILE or "synthetic" in notes:
        out.append("population")
    return out


#: A US census block id (GEOID20: state 2, county 3, tract 6, block 4 digits).
_US_BLOCK_ID = re.compile(r"^\d{15}$")


def block_word(res: Any) -> str:
    """What a block of this result set is: "grid cells" (synthetic population), "census
    blocks" (US), else "blocks".

    US is the engine's rule for a PNA run (:attr:`~pna_helpers.results.Results.is_us`, i.e.
    ``Params.is_us``; a run without a country ran as the default, US); an official export
    (no run parameters) is US when every block id is a 15-digit census block GEOID.

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).

    Returns
    -------
    str
        ``"grid cells"``, ``"census blocks"`` or ``"blocks"``.
    """
    if "population" in synthetic_inputs(res):
        return "grid cells"
    us = res.is_us
    if us is None:  # an official export: its block ids say
        try:
            ids = res.blocks["geoid20"].astype(str) if "geoid20" in res.blocks.columns else None
        except InputError:
            ids = None
        us = ids is not None and len(ids) > 0 and bool(ids.str.match(_US_BLOCK_ID).all())
    return "census blocks" if us else "blocks"


def _singular(word: str) -> str:
    return {"census blocks": "census block", "grid cells": "grid cell"}.get(word, "block")


def _blocks_in_boundary(res: Any) -> int | None:
    """Blocks touching the boundary: those whose people ``population_total`` counts (the
    export also holds the blocks of the buffer around it); None without blocks or boundary."""
    import numpy as np
    import shapely

    try:
        blocks = res.blocks
    except InputError:
        return None
    boundary = res.boundary
    if boundary is None or not len(boundary):
        return None
    area = shapely.union_all(np.asarray(boundary.geometry.values))
    return int(shapely.intersects(area, np.asarray(blocks.geometry.values)).sum())


def header_html(res: Any) -> str:
    """The report's header (HTML, every value escaped): place, overall score (as the scores
    table shows it, :func:`~pna_helpers.display.score_text`), population ("n/a" when the
    results do not give it) in so many blocks of the boundary (:func:`block_word`),
    centreline mileage, run
    date, engine version, methodology profile, input files by name, and a note when the
    boundary or population is synthetic.

    Run, engine, methodology and input files are shown for PNA runs; an official export is
    labelled as such.

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).

    Returns
    -------
    str
        An HTML fragment (``<h1>``, facts paragraph, metadata table, optional note).

    Raises
    ------
    InputError
        The results have no road segments (``neighborhood_ways``) to measure mileage from.
    """
    from pna_helpers.display import score_text

    s = res.scores()
    run = res.run or {}
    miles = res.mileage_by_stress().groupby("stress")["miles"].sum()
    overall = s.get("overall_score", float("nan"))
    pop = s.get("population_total", float("nan"))
    word, n_blocks = block_word(res), _blocks_in_boundary(res)
    where = ("" if n_blocks is None else
             f" in {n_blocks:,} {word if n_blocks != 1 else _singular(word)}")
    # the score reads as in the scores table (one formatter); unknown population is n/a
    facts = [f"<b>Overall score: {esc.text(score_text(overall))}</b>",
             (f"population {pop:,.0f}" if pop == pop else "population n/a") + where,
             f"{miles.get('low', 0.0):.1f} miles of low-stress and "
             f"{miles.get('high', 0.0):.1f} miles of high-stress road (centreline miles: a "
             "two-way road counts once)"]
    meta = []
    if res.source == "pna":
        meta.append(("Run", _run_time(res)))
        meta.append(("Engine", f"PNA engine {run.get('engine_version', '?')} (reproduces "
                               f"{run.get('reference', 'brokenspoke-analyzer 3.2.4')})"))
        meta.append(("Methodology profile", str(getattr(res, "methodology", None) or "reference")))
        files = [f"{k}: {Path(str(v.get('path'))).name}" for k, v in
                 (run.get("inputs") or {}).items() if isinstance(v, dict) and v.get("path")]
        meta.append(("Input files", "; ".join(files) or "-"))
    else:
        meta.append(("Source", "official BNA export"))
    rows = "".join(f"<tr><th>{esc.text(k)}</th><td>{esc.text(v)}</td></tr>" for k, v in meta)
    synth = synthetic_inputs(res)
    note = ""
    if synth:
        what = " and ".join(synth)
        note = (f'<p class="pna-note" style="background:#fff4d6;border-left:4px solid #e0a000;'
                f'padding:6px 10px"><b>Synthetic {esc.text(what)}.</b> The {esc.text(what)} '
                f'of this run {"are" if len(synth) > 1 else "is"} made up by a fixed recipe, '
                f"not official data: the scores illustrate the method and are not this "
                f"place's BNA. Blocks here are {esc.text(block_word(res))}.</p>")
    return (f"<h1>{esc.text(res.name)}: Bicycle Network Analysis</h1>"
            f"<p>{' - '.join(esc.text(f) if not f.startswith('<b>') else f for f in facts if f)}"
            f"</p><table class=\"pna-meta\" style=\"font-size:90%\">{rows}</table>{note}")


# --------------------------------------------------------------------------- CLI
def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand to the ``pna`` command's subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What :meth:`argparse.ArgumentParser.add_subparsers` returned; the subcommand runs
        :func:`run_cli`.
    """
    p = subparsers.add_parser(
        "report", help="render the HTML report of one or many result sets",
        description="Run the city_report notebook on a result set (local folder, .zip, s3:// "
                    "URI or job id) and write one self-contained HTML file.")
    p.add_argument("results", nargs="?", help="results location (or a file of locations with "
                                              "--many)")
    p.add_argument("-o", "--output", default=None,
                   help="output HTML file (one report) or folder (--many); default: "
                        "outputs/reports/")
    p.add_argument("--many", metavar="LIST", nargs="?", const="-", default=None,
                   help="render every location listed in LIST (one per line, '#' comments; "
                        "'-' = stdin or the positional argument) plus an index page")
    p.add_argument("--name", default=None, help="place name shown in the report")
    p.set_defaults(func=run_cli)


def _read_list(path: str) -> list[str]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}; give a text file with one "
                         "results location per line") from exc
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines()
            if ln.split("#", 1)[0].strip()]


def run_cli(args: argparse.Namespace) -> int:
    """Entry of ``pna report``; returns the exit code.

    Errors are printed as one line ``pna: error: ...`` on stderr, not raised.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``pna report`` options (``results``, ``output``, ``many``, ``name``).

    Returns
    -------
    int
        0 every report rendered; 1 a report notebook failed (with ``--many``: any place
        failed); 2 bad input or an output that cannot be written.
    """
    try:
        if args.many is not None:
            src = args.many if args.many != "-" else (args.results or "-")
            if src != "-" and not Path(src).exists():
                raise InputError(f"list file {src} does not exist")
            locations = _read_list(src)
            index, failed = render_each(locations, args.output)
            print(f"index: {index}")
            if failed:  # the others rendered; say which did not, and exit non-zero
                which = "; ".join(f"{loc}: {err}" for loc, err in failed)
                print(f"pna: error: {len(failed)} of {len(locations)} reports failed: {which}",
                      file=sys.stderr)
                return 1
            return 0
        if not args.results:
            raise InputError("give a results location (folder, .zip, s3:// URI or job id)")
        out = render_report(args.results, args.output, name=args.name)
        print(f"report: {out}")
        return 0
    except InputError as exc:
        print(f"pna: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a report cell failed: the message names the cell and error
        print(f"pna: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the output cannot be written (a file in the way, read-only, full)
        print(f"pna: error: {storage_error(exc)}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m pna_helpers.reports ...`` (same options as ``pna report``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``report`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code of :func:`run_cli`.
    """
    parser = argparse.ArgumentParser(prog="pna")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["report", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
