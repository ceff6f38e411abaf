"""Every notebook opened, run and read in JupyterLab, in a real browser.

A JupyterLab server runs on loopback (random port and token, a temporary copy of
``notebooks/``, its own settings) and Playwright drives Debian's Chromium through
``executable_path`` (Playwright's own browser download is not needed). For each notebook the
test opens it, runs *Run All Cells*, waits until every code cell has run, then checks what a
user sees: no error output, no stderr warning box, progress bars drawn as widgets, every folium
map drawing its vector features (counted inside the map's frame), no dollar amount typeset as
LaTeX maths (JupyterLab reads two ``$`` in one text as ``$...$`` maths), no JavaScript errors.
Every notebook of ``notebooks/`` is driven; the slow ones get cheap parameters, injected as
papermill injects them (a cell after the ``parameters`` cell). Screenshots (1440 px wide, the
whole notebook from its top) go to ``outputs/test-artifacts/jupyterlab/``
(``PNA_TEST_ARTIFACTS`` moves them).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwrightkit import missing

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("PNA_TEST_ARTIFACTS", REPO / "outputs" / "test-artifacts"))



_WHY = missing("jupyterlab", "ipywidgets")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_WHY is not None, reason=str(_WHY))]

#: Run order: run_analysis submits the job monitor then lists; the results notebooks share the
#: demo results computed once by the fixture.
NOTEBOOKS = ["stack", "run_analysis", "run_many", "monitor", "campaign", "explore_results",
             "compare", "scenario", "city_report", "plan", "osm_qa", "explain_change"]
#: Cheap parameters (the defaults of the others): a short plan, a short QA list, two ways
#: re-scored one by one.
PARAMS: dict[str, dict[str, object]] = {
    "plan": {"budget_km": 1.0}, "osm_qa": {"top": 10}, "explain_change": {"top_ways": 2}}
#: Notebooks whose progress bars must show as widgets.
PROGRESS = {"run_analysis"}
#: How many folium maps each notebook shows (with PARAMS).
MAPS = {"run_analysis": 1, "campaign": 1, "explore_results": 2, "compare": 1, "scenario": 1,
        "city_report": 2, "plan": 1, "osm_qa": 1, "explain_change": 1}
#: Notebooks that show dollar amounts (costs) as text.
DOLLARS = {"campaign", "plan"}
#: Lab settings: every cell rendered (no virtual scrolling), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}
CELL_TIMEOUT_S = 240


def _inject(path: Path, params: dict[str, object]) -> None:
    """Give a notebook other parameters the way papermill does (an injected cell)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(path)), params)
    nbformat.write(nb, str(path))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """A JupyterLab server on loopback serving a temporary copy of the notebooks."""
    pytest.importorskip("pyrosm")
    from pna_helpers.nextyear import next_year_results
    from pna_helpers.results import demo_results

    demo_results()  # the kernels reuse it (same PNA_OUTPUTS)
    next_year_results()  # compare's second set
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name, params in PARAMS.items():
        _inject(root / f"{name}.ipynb", params)
    settings = tmp / "lab-settings"
    for rel, value in LAB_SETTINGS.items():
        p = settings / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PNA_CONCURRENCY="2",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a busy machine starts it slowly
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n"
                                + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield url, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()



def _offline(route) -> None:
    """Loopback only: base-map tiles and any CDN are unreachable, as on an offline machine."""
    host = route.request.url.split("/")[2].split(":")[0] if "://" in route.request.url else ""
    if route.request.url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1",
                                                                              "localhost"):
        route.continue_()
    else:
        route.abort()


#: The open notebook as the app sees it: kernel status, execution counts, prompts.
_STATE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || !w.sessionContext || !w.content || !w.context.isReady) return null;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {kernel: k ? k.status : null,
          counts: w.content.widgets.filter(c => c.model.type === 'code')
                                   .map(c => c.model.executionCount),
          prompts: [...w.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                   .map(p => p.textContent.trim())};
}"""
#: True when the kernel is idle and every code cell has run (none queued or running).
_ALL_RAN = "() => { const s = (" + _STATE + ")(); return s !== null && s.kernel === 'idle'" \
    " && s.counts.every(c => c !== null) && !s.prompts.some(p => p.includes('*')); }"
#: True when the kernel is ready for Run All.
_READY = "() => { const s = (" + _STATE + ")(); return s !== null && s.kernel === 'idle'; }"

#: Vector features each folium map drew: Leaflet path layers on the map, and the SVG paths or
#: canvas the renderer put on screen.
_MAP_FEATURES = """() => {
  const maps = Object.keys(window).filter(k => k.startsWith('map_') && window[k] instanceof L.Map);
  return maps.map(k => {
    const m = window[k];
    const layers = Object.values(m._layers).filter(l => l instanceof L.Path).length;
    const svg = document.querySelectorAll('path.leaflet-interactive').length;
    const canvas = document.querySelectorAll('.leaflet-overlay-pane canvas').length;
    return {layers, svg, canvas};
  });
}"""


@pytest.fixture(scope="module")
def lab_page(browser, lab):
    """One JupyterLab page (loaded once, offline) in which the notebooks are opened in turn."""
    url, token, _root = lab
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    ctx.route("**/*", _offline)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}")
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.goto(f"{url}/lab/workspaces/pna-test?reset&token={token}", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp", timeout=90_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.evaluate("window.jupyterapp.shell.collapseLeft()")
    try:
        yield page, errors
    finally:
        ctx.close()


def run_notebook(lab, lab_page, name: str, wait_for_math: bool = False) -> dict:
    """Open ``name`` in JupyterLab, Run All, wait; return what the page showed
    (``wait_for_math``: also wait until MathJax has typeset something)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, token, _root = lab
    page, errors = lab_page
    errors.clear()
    page.set_viewport_size({"width": 1440, "height": 900})
    try:
        page.evaluate("p => window.jupyterapp.commands.execute('docmanager:open', {path: p})"
                      ".then(() => true)",
                      f"{name}.ipynb")
        page.wait_for_function(_READY, timeout=120_000, polling=250)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
                      ".then(() => true)")
        # a failed cell stops Run All: not every cell gets a count then; asserted below
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(_ALL_RAN, timeout=CELL_TIMEOUT_S * 1000, polling=250)
        page.wait_for_timeout(1000)  # maps in output frames finish drawing
        if wait_for_math:
            page.wait_for_function("() => document.querySelector('mjx-container, .katex')",
                                   timeout=60_000, polling=250)
        seen = page.evaluate(_SEEN)
        maps = []
        for frame in page.frames:
            if frame is not page.main_frame and frame.url == "about:srcdoc":
                maps.extend(frame.evaluate(_MAP_FEATURES))
        # the whole notebook in one picture: a window as tall as the notebook's content
        page.set_viewport_size({"width": 1440, "height": min(max(seen["height"], 900), 16000)})
        page.evaluate(_TO_TOP)  # Run All leaves the notebook scrolled to its last cell
        page.wait_for_timeout(500)
        shot = ARTIFACTS / "jupyterlab" / f"{name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        return {**seen, "maps": maps, "errors": list(errors), "screenshot": shot}
    finally:
        # close without a save prompt, then stop its kernel: one kernel at a time
        page.evaluate("() => { const w = window.jupyterapp.shell.currentWidget; "
                      "if (w) { w.context.model.dirty = false; w.dispose(); } }")
        _shutdown_kernels(url, token)


#: Scroll the open notebook to its first cell (the picture starts at the title).
_TO_TOP = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  w.content.activeCellIndex = 0;
  w.content.deselectAll();
  for (const el of [w.node.querySelector('.jp-WindowedPanel-outer'), w.content.node]) {
    if (el) el.scrollTop = 0;
  }
  return true;
}"""

#: What the open notebook shows: prompts, stderr/error boxes, progress widgets, widget
#: failures, and the height of its content.
_SEEN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const all = sel => [...w.node.querySelectorAll(sel)];
  const outer = w.node.querySelector('.jp-WindowedPanel-outer') || w.content.node;
  return {
    prompts: all('.jp-CodeCell .jp-InputPrompt').map(p => p.textContent.trim()),
    stderr: all('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
              .map(e => e.innerText.slice(0, 500)),
    widgets: all('.jp-OutputArea-output .widget-hprogress, .jp-OutputArea-output .widget-progress')
              .length,
    widget_errors: all('.jp-OutputArea-output').map(e => e.innerText)
              .filter(t => /Error displaying widget|Loading widget|IProgress not found/.test(t)),
    height: outer.scrollHeight - outer.clientHeight + window.innerHeight,
    math: all('mjx-container, .MathJax, .MathJax_Display, .MathJax_Preview, .katex')
              .map(e => (e.closest('.jp-OutputArea-output, .jp-MarkdownOutput') || e)
                        .innerText.slice(0, 200)),
    dollars: all('.jp-OutputArea-output').map(e => e.innerText.match(/\\$\\s?\\d/g) || [])
              .flat().length,
  };
}"""


def _shutdown_kernels(url: str, token: str) -> None:
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels", headers=headers),
                                timeout=10) as r:
        kernels = json.load(r)
    for k in kernels:
        urllib.request.urlopen(urllib.request.Request(
            f"{url}/api/kernels/{k['id']}", method="DELETE", headers=headers), timeout=30).read()


def test_lab_typesets_dollars_unless_escaped(lab, lab_page) -> None:
    """The maths check below can fail: JupyterLab typesets "$12.30 and $4.00" in an HTML
    output as maths; the same text through ``_html.no_math`` / ``_html.dollar`` and a
    ``display`` table stays text."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    root = lab[2]
    nb = new_notebook(cells=[
        new_code_cell('from IPython.display import HTML\nHTML("<p>costs $12.30 and $4.00</p>")'),
        new_code_cell("from IPython.display import HTML\nfrom pna_helpers import _html\n"
                      'HTML(_html.no_math("<p>costs $12.30 and $4.00</p>") + '
                      '"<p>costs " + _html.dollar("1.50") + " and " + _html.dollar("2") + "</p>")'),
        new_code_cell("import pandas as pd\nfrom pna_helpers import display\n"
                      "display._style(pd.DataFrame({'a': ['costs $1 and $2']}))")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    nbformat.write(nb, str(root / "dollar_check.ipynb"))
    seen = run_notebook(lab, lab_page, "dollar_check", wait_for_math=True)
    assert len(seen["math"]) == 1 and "costs" in seen["math"][0], seen["math"]
    assert seen["dollars"] == 6, seen  # $12.30, $4.00, $1.50, $2, $1, $2 as text


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab, lab_page, name: str) -> None:
    seen = run_notebook(lab, lab_page, name)
    prompts = seen["prompts"]
    assert prompts and all(p.strip("[]: ").isdigit() for p in prompts), (
        f"not every cell ran: prompts {prompts}; stderr {seen['stderr']}")
    assert not seen["stderr"], f"error or warning box in {name}: {seen['stderr']}"
    assert not seen["widget_errors"], seen["widget_errors"]
    if name in PROGRESS:
        assert seen["widgets"] >= 1, "the progress bar is not drawn as a widget"
    assert len(seen["maps"]) == MAPS.get(name, 0), seen["maps"]
    # costs such as "$12.30 ... $4.00" must stay text, not become an inline formula
    assert not seen["math"], f"text typeset as LaTeX maths in {name}: {seen['math']}"
    if name in DOLLARS:
        assert seen["dollars"] >= 1, "no dollar amount shown as text"
    for m in seen["maps"]:
        assert m["layers"] > 0, f"a map drew no vector features: {seen['maps']}"
        assert m["svg"] == m["layers"] or m["canvas"] >= 1, seen["maps"]
    assert not seen["errors"], seen["errors"]
    assert seen["screenshot"].stat().st_size > 10_000
