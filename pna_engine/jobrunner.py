"""``pna-engine run-job``: the job container's entry point (AWS Batch and the local backend).

The container contract (environment variables):

``PNA_REQUEST``
    The analysis request as JSON: the fields of :func:`pna_engine.params.request_fields`
    (``place``, ``boundary``, ``osm``, ``population``, ``jobs``, ``country``, ...), which become
    the run's :class:`~pna_engine.params.Params` directly.
``PNA_MANIFEST`` + ``AWS_BATCH_JOB_ARRAY_INDEX``
    Instead of ``PNA_REQUEST`` (array jobs): the URI (``s3://``, ``http(s)://`` or path) of a
    JSON list of requests; the child runs entry number ``AWS_BATCH_JOB_ARRAY_INDEX``.
``PNA_RESULTS_URI``
    Where the results go: a local folder or ``s3://bucket/results/<job_id>/``. The text
    ``{job_id}`` is replaced by the job id (``AWS_BATCH_JOB_ID``, or ``PNA_JOB_ID``; an array
    child's id is ``<parent>:<index>``).
``PNA_SCRATCH`` (optional)
    Scratch folder for fetched inputs and the export before upload (default: the temp dir).
``PNA_REGION`` (optional)
    Region of the S3 bucket (default: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``).

What it does: fetch the inputs (S3, HTTP or local paths) into scratch, run the engine
(:func:`pna_engine.pipeline.run`) while mirroring ``status.json`` to the results location,
then upload the export and ``run.json`` and, last, ``status.json`` - so a reader never sees
``succeeded`` before every file is there. SIGTERM (Batch terminate, local cancel) stops the run
and leaves ``status.json`` failed. Exit codes: 0 success, 2 bad input, 1 other error, 143 stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pna_engine import remote
from pna_engine.errors import InputError
from pna_engine.params import ParamError, Params, input_roles
from pna_engine.status import STATUS_FILE, StatusFile
from pna_engine.stopping import EXIT_STOPPED, Stopped, stop_on_signals


def log(msg: str) -> None:
    """One progress line on stderr (the job log)."""
    print(f"[pna-job] {msg}", file=sys.stderr, flush=True)


class ResultsSink:
    """The results location: a local folder, or an S3 prefix the export is uploaded to."""

    def __init__(self, uri: str):
        self.uri = uri
        scheme = remote.scheme_of(uri)
        if scheme not in ("", "s3"):
            raise InputError(f"PNA_RESULTS_URI {uri!r}: give a folder or an s3:// prefix")
        self.is_s3 = scheme == "s3"
        if self.is_s3:
            remote.split_s3(uri)  # a bad URI fails before the run

    def put(self, path: Path, name: str | None = None) -> None:
        """Upload one file (S3 only; a local sink is written in place)."""
        if self.is_s3:
            remote.put(path, remote.join(self.uri, name or path.name))

    def publish(self, folder: Path) -> int:
        """Upload every file of ``folder`` except ``status.json``, ``run.json`` last (as the
        engine publishes locally); return how many."""
        from pna_engine.pipeline import RUN_FILE

        n = 0
        if not self.is_s3:
            return 0
        files = [p for p in folder.rglob("*")
                 if p.is_file() and p.name != STATUS_FILE and not p.name.startswith(".")]
        for p in sorted(files, key=lambda p: (p.name == RUN_FILE, p.as_posix())):
            self.put(p, p.relative_to(folder).as_posix())
            n += 1
        return n


# --------------------------------------------------------------------------- request
def request_params(request: dict[str, Any], output: str) -> Params:
    """The :class:`~pna_engine.params.Params` of a job request (validated there, once).

    Raises
    ------
    InputError
        An unknown field or a bad value, worded for a request (``request field 'x': ...``).
    """
    try:
        return Params.from_dict({**request, "output": output})
    except ParamError as exc:
        raise exc.for_request() from None


def fetch_inputs(params: Params, scratch: Path) -> None:
    """Replace every remote input location of ``params`` by a local copy under ``scratch``."""
    roles = {k: getattr(params, k) for k in input_roles()}
    roles.update({f"jobs[{i}]": j for i, j in enumerate(params.jobs)})
    local: dict[str, str] = {}
    for role, loc in roles.items():
        if loc:
            log(f"fetch {role}: {loc}")
            local[role] = str(remote.fetch(loc, scratch / "inputs" / re.sub(r"\W", "_", role),
                                           what=f"the {role} input"))
    for role in input_roles():
        if role in local:
            setattr(params, role, local[role])
    params.jobs = [local[f"jobs[{i}]"] for i in range(len(params.jobs))]


def load_request(env: dict[str, str]) -> dict[str, Any]:
    """The request of this job from ``PNA_REQUEST`` or ``PNA_MANIFEST`` + array index."""
    try:
        if env.get("PNA_REQUEST"):
            req = json.loads(env["PNA_REQUEST"])
        elif env.get("PNA_MANIFEST"):
            manifest = json.loads(remote.read_text(env["PNA_MANIFEST"], what="the manifest"))
            items = manifest["requests"] if isinstance(manifest, dict) else manifest
            idx_text = env.get("AWS_BATCH_JOB_ARRAY_INDEX")
            if idx_text is None:
                raise InputError("PNA_MANIFEST is set but AWS_BATCH_JOB_ARRAY_INDEX is not: "
                                 "submit the manifest as an array job")
            idx = int(idx_text)
            if not 0 <= idx < len(items):
                raise InputError(f"AWS_BATCH_JOB_ARRAY_INDEX={idx} is outside the manifest "
                                 f"({len(items)} requests)")
            req = items[idx]
        else:
            raise InputError("no request: set PNA_REQUEST (JSON) or PNA_MANIFEST + "
                             "AWS_BATCH_JOB_ARRAY_INDEX")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"malformed job request ({exc})") from exc
    if not isinstance(req, dict) or not req.get("boundary"):
        raise InputError("malformed job request: a JSON object with at least 'boundary'")
    return req


def job_id_from_env(env: dict[str, str]) -> str | None:
    """This job's id: ``AWS_BATCH_JOB_ID`` (array children: ``<parent>:<index>``) or
    ``PNA_JOB_ID``."""
    jid = env.get("AWS_BATCH_JOB_ID") or env.get("PNA_JOB_ID")
    idx = env.get("AWS_BATCH_JOB_ARRAY_INDEX")
    if jid and idx is not None and ":" not in jid:
        jid = f"{jid}:{idx}"
    return jid


def results_uri_from_env(env: dict[str, str]) -> str:
    """``PNA_RESULTS_URI`` with ``{job_id}`` filled in."""
    uri = env.get("PNA_RESULTS_URI")
    if not uri:
        raise InputError("PNA_RESULTS_URI is not set: give the results folder or s3:// prefix")
    if "{job_id}" in uri:
        jid = job_id_from_env(env)
        if not jid:
            raise InputError("PNA_RESULTS_URI contains {job_id} but AWS_BATCH_JOB_ID / PNA_JOB_ID "
                             "is not set")
        uri = uri.replace("{job_id}", jid)
    return uri


# --------------------------------------------------------------------------- main


def main(env: dict[str, str] | None = None) -> int:
    """Run the job described by the environment; return the exit code."""
    env = dict(os.environ if env is None else env)
    with stop_on_signals():  # SIGTERM (Batch terminate, local cancel) and SIGHUP: exit 143
        try:
            return _main(env)
        except Stopped:
            log("stopped")
            return EXIT_STOPPED


def _main(env: dict[str, str]) -> int:
    scratch: Path | None = None
    try:
        request = load_request(env)
        results_uri = results_uri_from_env(env)
        sink = ResultsSink(results_uri)
        scratch = Path(tempfile.mkdtemp(prefix="pna-job-", dir=env.get("PNA_SCRATCH") or None))
        out = Path(results_uri) if not sink.is_s3 else scratch / "out"
        out.mkdir(parents=True, exist_ok=True)
        log(f"job {job_id_from_env(env) or '-'}: {request.get('place')} -> {results_uri}")
        return _run(request, sink, out, scratch)
    except InputError as exc:  # one line, as every user error (the job log's last line)
        print(f"pna-engine: error: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(request: dict[str, Any], sink: ResultsSink, out: Path, scratch: Path) -> int:
    from pna_engine import pipeline

    mirror = sink.put if sink.is_s3 else None
    status = StatusFile(out, on_change=mirror)  # ours until the engine starts
    try:
        status.phase("fetch-inputs")
        status.start_heartbeat()  # a download can take minutes: readers elsewhere see it alive
        params = request_params(request, str(out))
        fetch_inputs(params, scratch)
        status.stop_heartbeat()  # the engine's own StatusFile takes over
    except KeyboardInterrupt:
        status.failed("interrupted")
        log("stopped")
        return EXIT_STOPPED
    except InputError as exc:
        status.failed(str(exc))
        raise

    def status_hook(path: Path) -> None:
        # The succeeded status goes up last, after the export (see below).
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("state") == "succeeded":
                return
        sink.put(path)

    def on_phase(name: str) -> None:
        log(f"phase {name}")

    try:
        state = pipeline.run(params, on_phase=on_phase,
                             status_hook=status_hook if sink.is_s3 else None)
    except KeyboardInterrupt:
        log("stopped")
        return EXIT_STOPPED
    except InputError:
        raise
    except Exception as exc:
        import traceback

        traceback.print_exc()
        log(f"failed: {type(exc).__name__}: {exc}")
        return 1
    try:
        n = sink.publish(out)
    except (KeyboardInterrupt, Exception) as exc:  # the upload failed or was stopped
        stopped = isinstance(exc, KeyboardInterrupt)
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        reason = ("interrupted while uploading the results" if stopped
                  else f"results upload failed: {detail}")
        log(reason)
        with contextlib.suppress(Exception):  # best effort: the store may be what failed
            StatusFile(out, on_change=mirror, resume=True).failed(reason, phase="export")
        return EXIT_STOPPED if stopped else 1
    sink.put(out / STATUS_FILE)
    log(f"done in {state.timings.get('total', 0):.1f} s" + (f", uploaded {n + 1} files" if n else ""))
    return 0
