"""The BNA as a pipeline of named phases.

Read top to bottom, :func:`run` is the whole analysis::

    import        boundary, census blocks / population, jobs, speed defaults, OSM (double clip)
    features      way and intersection attributes (BNA-METHOD §3), path clusters
    stress        segment and intersection stress (§4, §5)
    network       routing network: one vertex per segment, turn links with cost and stress (§6)
    blocks        census block <-> road assignment (§7)
    connectivity  bounded shortest paths per block, connected block pairs (§8)
    destinations  destinations per category mapped to blocks, trails (§9)
    scores        block access and scores, score inputs, overall scores, mileage (§10, §11)
    export        every file of the reference export + run.json (§12)

Each phase is a function from tables (fields of :class:`RunState`) to tables. Every table is in
the output CRS (UTM of the boundary) and uses the reference tool's column names. Export files
are written to a staging folder inside the output folder and moved into place only when every
phase succeeded; ``status.json`` says ``running`` until then, so a failed run never looks
complete.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import resource
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pna_engine import PHASES, __version__
from pna_engine.atomic import write_json
from pna_engine.errors import StorageError, check_writable_folder, storage_error
from pna_engine.params import Params
from pna_engine.state import RunState
from pna_engine.status import STATUS_FILE, StatusFile

RUN_FILE = "run.json"
#: Environment variables that change what a run reads (mirrors, the download cache): recorded
#: in run.json's ``environment`` when set.
RESULT_ENVIRONMENT = ("PNA_GEOFABRIK_INDEX_URL", "PNA_TIGER_BASE_URL", "PNA_LODES_BASE_URL",
                      "PNA_WORLDPOP_BASE_URL", "PNA_SPEED_LIMITS_BASE_URL", "PNA_CACHE_DIR",
                      "AWS_ENDPOINT_URL")
STAGING_PREFIX = ".staging-"


# --------------------------------------------------------------------------- phases
def phase_import(s: RunState) -> None:
    """Phase ``import``: boundary, census blocks / population, jobs, speed defaults and the OSM
    extract (sets ``s.boundary``, ``s.crs``, ``s.blocks``, ``s.jobs``, ``s.speeds``, ``s.osm``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import boundary, download, jobsdata, osm, population, speeds

    s.boundary, s.crs = boundary.load_boundary(s.params.boundary, s.params)
    s.inputs["boundary"] = str(s.params.boundary)
    s.blocks = population.load_blocks(s)
    s.jobs = jobsdata.load_jobs(s)
    s.speeds = speeds.residential_speeds(s.params, lookup=True, notes=s.notes)
    osm_path = download.resolve_osm(s)
    s.osm = osm.import_osm(osm_path, s)
    if s.params.destinations_osm:
        dest_path = download.fetch(s.params.destinations_osm, s.params, what="the destinations "
                                   "OSM extract", option="--destinations-osm")
        s.destinations_osm = osm.import_osm(dest_path, s, role="destinations_osm")


def phase_features(s: RunState) -> None:
    """Phase ``features``: way and intersection attributes, path clusters (sets ``s.ways``,
    ``s.intersections``, ``s.paths``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import features

    s.ways, s.intersections, s.paths = features.compute_features(s)


def phase_stress(s: RunState) -> None:
    """Phase ``stress``: segment and crossing stress of every way (updates ``s.ways``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import stress

    s.ways = stress.compute_stress(s)


def phase_network(s: RunState) -> None:
    """Phase ``network``: the routing network of segments and turns (sets ``s.network``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import network

    s.network = network.build_network(s)


def phase_blocks(s: RunState) -> None:
    """Phase ``blocks``: census block <-> road assignment (updates ``s.blocks``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import blocks

    s.blocks = blocks.assign_roads(s)


def phase_connectivity(s: RunState) -> None:
    """Phase ``connectivity``: connected block pairs, low and high stress (sets
    ``s.connectivity``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import connectivity

    s.connectivity = connectivity.compute_connectivity(s)


def phase_destinations(s: RunState) -> None:
    """Phase ``destinations``: destinations per category and their blocks (sets
    ``s.destinations``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import destinations

    s.destinations = destinations.build_destinations(s)


def phase_scores(s: RunState) -> None:
    """Phase ``scores``: block access, scores, score inputs, mileage (sets ``s.scores``).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import scores

    s.scores = scores.compute_scores(s)


def phase_export(s: RunState) -> None:
    """Phase ``export``: every export file into ``s.staging`` (the driver publishes it).

    Parameters
    ----------
    s
        The run's state, filled by the earlier phases.
    """
    from pna_engine import export

    export.write_export(s)


PHASE_FUNCTIONS: dict[str, Callable[[RunState], None]] = {
    "import": phase_import,
    "features": phase_features,
    "stress": phase_stress,
    "network": phase_network,
    "blocks": phase_blocks,
    "connectivity": phase_connectivity,
    "destinations": phase_destinations,
    "scores": phase_scores,
    "export": phase_export,
}
assert tuple(PHASE_FUNCTIONS) == PHASES


# --------------------------------------------------------------------------- driver
def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0 / 1024.0


def _sha256(path: str) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def _clear_previous_run(out: Path) -> threading.Thread:
    """A new run makes the folder incomplete at once: drop the previous run's marker file now,
    then its export files and any staging folder a killed run left behind in a background
    thread (freeing a big export takes a while; the thread is joined before the first phase
    that forks, connectivity).
    Files the export does not write are left alone."""
    with contextlib.suppress(FileNotFoundError):
        (out / RUN_FILE).unlink()
    from pna_engine.export import export_file_names

    names = export_file_names()
    old = [p for p in out.iterdir() if p.name in names or p.name.startswith(STAGING_PREFIX)]

    def remove() -> None:
        for p in old:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    cleaner = threading.Thread(target=remove, name="pna-clear-previous", daemon=True)
    cleaner.start()
    return cleaner


def _publish(staging: Path, out: Path) -> None:
    """Move every staged file into the output folder: one atomic rename per file (the export
    writes its files straight into the staging folder), then drop the empty folder."""
    staged = sorted(staging.iterdir(), key=lambda p: (p.name == RUN_FILE, p.name))
    for p in staged:  # run.json, the mark of a complete export, last
        os.replace(p, out / p.name)
    staging.rmdir()


def run(
    params: Params,
    *,
    on_phase: Callable[[str], None] | None = None,
    status_hook: Callable[[Path], None] | None = None,
    stop_after: str | None = None,
) -> RunState:
    """Run the analysis; return the state with every table.

    Parameters
    ----------
    params
        The run's parameters (validated when made).
    on_phase
        Called with a phase's name when it starts (progress).
    status_hook
        Called with the path of ``status.json`` each time it changes (the container mirrors
        it to S3).
    stop_after
        End the run after this phase, without exporting (tests, scenarios).

    Returns
    -------
    RunState
        Every table of the run, its counts, timings and notes.

    Raises
    ------
    InputError
        Bad inputs; ``status.json`` then says ``failed`` with the message, and no export file
        is published.
    """
    out = check_writable_folder(params.output, "output folder")
    status = StatusFile(out, on_change=status_hook)
    cleaner = _clear_previous_run(out)
    status.write()
    status.start_heartbeat()
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    state = RunState(params=params, staging=staging)
    started = time.perf_counter()
    try:
        for name, fn in PHASE_FUNCTIONS.items():
            if stop_after is not None and name == "export":
                break
            if name == "connectivity":
                # the previous export is gone before this one is published, and no other
                # thread runs when connectivity and export fork their worker processes
                cleaner.join()
            status.phase(name)
            if on_phase is not None:
                on_phase(name)
            _fault_pause(name)
            t0 = time.perf_counter()
            fn(state)
            state.timings[name] = round(time.perf_counter() - t0, 3)
            state.peak_rss_mb[name] = round(_peak_rss_mb(), 1)
            if stop_after == name:
                break
        state.timings["total"] = round(time.perf_counter() - started, 3)
        if stop_after is None:
            write_json(staging / RUN_FILE, run_record(state))
            _publish(staging, out)
        else:
            shutil.rmtree(staging, ignore_errors=True)
        status.succeeded()
    except BaseException as exc:  # KeyboardInterrupt / SIGTERM too: never look complete
        written = _staged_bytes(staging)
        shutil.rmtree(staging, ignore_errors=True)
        error = _storage_problem(exc, out, written)
        shown = error or exc
        msg = f"{type(shown).__name__}: {shown}" if not str(shown) else str(shown)
        with contextlib.suppress(OSError):  # a full or read-only disk: keep the first error
            status.failed(msg if not isinstance(exc, KeyboardInterrupt) else "interrupted")
        if error is not None:
            raise error from exc
        raise
    finally:
        status.stop_heartbeat()
        cleaner.join()
    return state


#: Fault injection for tests: ``PNA_FAULT_PAUSE_AT=<phase>`` makes a run wait
#: ``PNA_FAULT_PAUSE_S`` seconds (default 60) once that phase has started and ``status.json``
#: says so, so that a test can stop it there (tests/test_engine_signals.py).
FAULT_PAUSE_ENV = "PNA_FAULT_PAUSE_AT"


def _fault_pause(phase: str) -> None:
    if os.environ.get(FAULT_PAUSE_ENV) == phase:
        time.sleep(float(os.environ.get("PNA_FAULT_PAUSE_S") or 60))


def _staged_bytes(staging: Path) -> int | None:
    with contextlib.suppress(OSError):
        return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    return None


def _storage_problem(exc: BaseException, out: Path, written: int | None) -> StorageError | None:
    """The one-line error for a write that failed for lack of space, a read-only file system,
    or a file in the way under the output folder; None for any other error."""
    if not isinstance(exc, OSError) or isinstance(exc, StorageError):
        return None
    inside = exc.filename is not None and str(exc.filename).startswith(str(out))
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) and not inside:
        return None
    what = f"the results in {out}" if inside or exc.filename is None else str(exc.filename)
    return storage_error(exc, what, written=written, folder=out)


def run_record(state: RunState) -> dict[str, Any]:
    """Content of ``run.json``: engine version, parameters, inputs with sha256, counts, timings."""
    from pna_engine.download import is_remote

    inputs = {  # local paths made absolute: scenarios and explain re-run from any folder
        role: {"path": path if is_remote(path) else os.path.abspath(path), "sha256": _sha256(path)}
        for role, path in sorted(state.inputs.items())
    }
    return {
        "engine": "pna_engine",
        "engine_version": __version__,
        "reference": "brokenspoke-analyzer 3.2.4",
        "methodology": state.params.methodology_label,
        "parameters": state.params.to_dict(),
        "inputs": inputs,
        "crs": state.crs.to_string() if state.crs is not None else None,
        "counts": state.counts,
        "timings_s": state.timings,
        "peak_rss_mb": state.peak_rss_mb,
        "notes": state.notes,
        "status_file": STATUS_FILE,
        "environment": {k: os.environ[k] for k in RESULT_ENVIRONMENT if os.environ.get(k)},
    }
