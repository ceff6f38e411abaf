"""Shared helpers of the benchmark scripts: run the engine once in a fresh process and measure it.

Each measured run is a separate ``python benchmarks/benchlib.py run-engine ...`` process, so its
memory is its own (no caches from a previous run) and start-up (interpreter, imports) counts in
the end-to-end time, as it does for a user. Inside, :func:`pna_engine.pipeline.run` times every
phase; a sampler thread adds up the resident memory of the process and its children (the
connectivity workers) every 100 ms (about 1 ms of CPU per sample).

Memory figures:

* ``peak_tree_mb``: highest sum of RSS over the process tree. An upper bound of what the run
  needs: pages shared by forked workers are counted once per process.
* ``peak_rss_mb``: highest RSS of the main process alone (``ru_maxrss``).

Not part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SHARED = REPO.parent / "shared"
#: Engine phases from the network build to the scores (the reference's compute phase minus
#: features/stress, as the issue counts it).
NETWORK_TO_SCORES = ("network", "blocks", "connectivity", "destinations", "scores")
#: The reference tool's whole compute phase: every SQL step after the import.
FEATURES_TO_SCORES = ("features", "stress", *NETWORK_TO_SCORES)


def outputs_dir() -> Path:
    """``outputs/bench`` of the repository (or ``$PNA_OUTPUTS/bench``)."""
    env = os.environ.get("PNA_OUTPUTS")
    p = (Path(env) if env else REPO / "outputs") / "bench"
    p.mkdir(parents=True, exist_ok=True)
    return p


def python() -> str:
    """The project interpreter (.venv) if present, else this one."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def machine() -> dict[str, Any]:
    """CPU model, core count, RAM and software versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": mem_gb,
            "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}"}


def read_args_file(path: str | Path) -> list[str]:
    """Arguments of a ``run.args`` file (one per line, ``#`` comments), input paths made
    absolute (they are relative to the file's folder)."""
    path = Path(path)
    args = [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]
    path_opts = {"--boundary", "--osm", "--population", "--jobs"}
    out = []
    for i, a in enumerate(args):
        if i > 0 and args[i - 1] in path_opts and "://" not in a:
            a = str((path.parent / a).resolve())
        out.append(a)
    return out


# --------------------------------------------------------------------------- measured run
def run_engine(args: list[str], output: str | Path, *, workers: int | None = None,
               profile: str | Path | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``pna-engine run ARGS --output OUTPUT`` in a fresh process; return its measures.

    Returns
    -------
    dict
        ``ok``, ``wall_s`` (process start to exit), ``timings`` (per phase and ``total``, s),
        ``phase_tree_mb`` (peak tree memory during each phase), ``phase_cpu_s`` (CPU seconds of
        the process and its finished workers per phase), ``cpu_s``, ``peak_tree_mb``,
        ``peak_rss_mb``, ``counts`` (the run's counts), ``load`` (1-minute load average before
        and after), ``error`` (last stderr lines on failure).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as fh:
        result_path = fh.name
    cmd = [python(), str(Path(__file__).resolve()), "run-engine", "--json", result_path]
    if profile:
        cmd += ["--profile", str(profile)]
    full = [*args, "--output", str(output), "--quiet"]
    if workers is not None:
        full += ["--workers", str(workers)]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "--", *full], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    try:
        res = json.loads(Path(result_path).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        res = {}
    finally:
        Path(result_path).unlink(missing_ok=True)
    res["wall_s"] = round(wall, 3)
    # 1-minute load average before/after: other work on the machine inflates wall times
    res["load"] = [round(load0, 2), round(load1, 2)]
    res["ok"] = proc.returncode == 0 and res.get("ok", False)
    if not res["ok"]:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-6:]
        res["error"] = res.get("error") or " | ".join(tail) or f"exit {proc.returncode}"
    return res


def run_engine_repeated(args: list[str], output: str | Path, repeat: int = 1,
                        **kw: Any) -> dict[str, Any]:
    """:func:`run_engine` ``repeat`` times; per-phase medians (memory: the maximum)."""
    runs = [run_engine(args, output, **kw) for _ in range(max(1, repeat))]
    good = [r for r in runs if r.get("ok")]
    if not good:
        return runs[-1]
    med = dict(good[0])
    med["timings"] = {k: round(statistics.median(r["timings"].get(k, 0.0) for r in good), 3)
                      for k in good[0].get("timings", {})}
    med["wall_s"] = round(statistics.median(r["wall_s"] for r in good), 3)
    med["cpu_s"] = round(statistics.median(r.get("cpu_s", 0.0) for r in good), 3)
    med["phase_cpu_s"] = {k: round(statistics.median(r.get("phase_cpu_s", {}).get(k, 0.0)
                                                     for r in good), 3)
                          for k in good[0].get("phase_cpu_s", {})}
    med["load"] = [min(r["load"][0] for r in good), max(r["load"][1] for r in good)]
    for k in ("peak_tree_mb", "peak_rss_mb"):
        med[k] = max(r.get(k, 0.0) for r in good)
    med["repeats"] = len(good)
    med["wall_all_s"] = [r["wall_s"] for r in good]
    return med


def phase_sum(timings: dict[str, float], phases: tuple[str, ...]) -> float:
    return round(sum(timings.get(p, 0.0) for p in phases), 3)


# --------------------------------------------------------------------------- tables
def table(rows: list[list[Any]], header: list[str]) -> str:
    """A plain-text table (right-aligned numbers)."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))
    out = [line, "-" * len(line)]
    for r in cells:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v >= 100:
            return f"{v:,.0f}"
        if v >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# --------------------------------------------------------------------------- child process
class _TreeSampler(threading.Thread):
    """Sum of RSS of this process and its descendants, sampled every ``interval`` s.

    Without psutil (declared in the ``dev`` extra) only the main process
    is measured, from ``ru_maxrss``."""

    fork_safe = True  # reads /proc only: the engine's export still forks (export._can_fork)

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        try:
            import psutil

            self.proc = psutil.Process()
        except ImportError:
            self.proc = None
        self.interval = interval
        self.peak = 0.0
        self.phase_peak = 0.0
        self._halt = threading.Event()

    def sample(self) -> float:
        if self.proc is None:
            import resource

            mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.peak = self.phase_peak = max(self.phase_peak, mb)
            return mb
        import psutil

        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            procs = [self.proc]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        mb = total / 2**20
        self.peak = max(self.peak, mb)
        self.phase_peak = max(self.phase_peak, mb)
        return mb

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.sample()


def _child(argv: list[str]) -> int:
    """``run-engine --json OUT [--profile P] -- <pna-engine run args>`` (runs in the child)."""
    import argparse
    import resource

    ap = argparse.ArgumentParser(prog="benchlib run-engine")
    ap.add_argument("--json", required=True)
    ap.add_argument("--profile", default=None)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    rest = a.rest[1:] if a.rest and a.rest[0] == "--" else a.rest
    sampler = _TreeSampler()
    sampler.start()
    from pna_engine import pipeline
    from pna_engine.cli import batch_gc, build_parser, params_from_args

    batch_gc()  # as the pna-engine command does
    ns = build_parser().parse_args(["run", *rest])
    params = params_from_args(ns)
    phase_mb: dict[str, float] = {}
    phase_cpu: dict[str, float] = {}
    current: list[Any] = []

    def cpu_now() -> float:  # this process + finished children (connectivity workers)
        ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime

    def close_phase() -> None:
        if current:
            phase_mb[current[0]] = round(sampler.phase_peak, 1)
            phase_cpu[current[0]] = round(cpu_now() - current[1], 3)

    def on_phase(name: str) -> None:
        close_phase()
        sampler.phase_peak = sampler.sample()
        current[:] = [name, cpu_now()]

    result: dict[str, Any] = {"ok": False}
    prof = None
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
    try:
        if prof is not None:
            prof.enable()
        state = pipeline.run(params, on_phase=on_phase)
        if prof is not None:
            prof.disable()
            prof.dump_stats(a.profile)
        sampler.stop()
        close_phase()
        result = {"ok": True, "timings": state.timings, "counts": _jsonable(state.counts),
                  "phase_rss_mb": state.peak_rss_mb, "phase_tree_mb": phase_mb,
                  "phase_cpu_s": phase_cpu, "cpu_s": round(cpu_now(), 3)}
    except BaseException as exc:  # report, then fail the process
        result["error"] = f"{type(exc).__name__}: {exc}"
        import traceback

        traceback.print_exc()
    finally:
        sampler.stop()
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["peak_rss_mb"] = round(kb / 1024, 1)
        result["peak_tree_mb"] = round(max(sampler.peak, result["peak_rss_mb"]), 1)
        Path(a.json).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


def _jsonable(d: Any) -> Any:
    try:
        json.dumps(d)
        return d
    except TypeError:
        return {k: (v if isinstance(v, int | float | str | bool | None) else str(v))
                for k, v in dict(d).items()}


def print_profile(path: str | Path, top: int = 25) -> list[tuple[str, float, float]]:
    """Print the ``top`` functions by own time and by cumulative time (repository code only);
    return ``(file:function, tottime, cumtime)`` of the top own-time entries."""
    import pstats

    st = pstats.Stats(str(path))
    rows = []
    for (fname, line, func), (_cc, _nc, tt, ct, _callers) in st.stats.items():
        rows.append((fname, line, func, tt, ct))
    repo = str(REPO)

    def label(r):
        f = r[0]
        short = f.replace(repo + "/", "") if f.startswith(repo) else Path(f).name
        return f"{short}:{r[2]}"

    total = max((r[4] for r in rows), default=1.0)
    print(f"\nProfile ({path}): {total:.2f} s in the run")
    print("\nTop own time (any code):")
    by_tt = sorted(rows, key=lambda r: -r[3])[:top]
    print(table([[label(r), r[3], r[4]] for r in by_tt], ["function", "own s", "cum s"]))
    print("\nTop cumulative time (engine code):")
    ours = [r for r in rows if r[0].startswith(repo) and "/benchmarks/" not in r[0]]
    by_ct = sorted(ours, key=lambda r: -r[4])[:top]
    print(table([[label(r), r[3], r[4]] for r in by_ct], ["function", "own s", "cum s"]))
    return [(label(r), round(r[3], 3), round(r[4], 3)) for r in by_tt]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run-engine":
        sys.exit(_child(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
