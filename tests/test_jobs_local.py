"""The local jobs backend, for real: SQLite store, detached supervisors running the container
command (``python -m pna_engine run-job``), cancel, dead-supervisor detection, concurrency.

Inputs that must stay "running" for a while are served by a slow HTTP server on loopback
(the job container fetches URL inputs before the engine starts), so these lifecycle tests do
not depend on how fast the engine is.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pna_engine.errors import InputError
from pna_helpers import jobs
from pna_helpers.jobs.local import _group_alive

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- fixtures
class SlowServer:
    """``GET /slow/<seconds>/<name>``: wait, then 404. Records (path, start, end) per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, float, float]] = []
        self.started: list[str] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                t0 = time.time()
                outer.started.append(self.path)
                parts = self.path.strip("/").split("/")
                delay = float(parts[1]) if parts[0] == "slow" else 0.0
                outer.release.wait(delay)
                try:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass
                outer.requests.append((self.path, t0, time.time()))

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()


@pytest.fixture
def slow():
    s = SlowServer()
    yield s
    s.close()


@pytest.fixture
def client(tmp_path):
    c = jobs.get_client("local", outputs=tmp_path / "outputs")
    yield c
    with __import__("contextlib").suppress(Exception):
        c.cancel_all_active()


def _req(boundary: str, place: str = "Test place") -> jobs.AnalysisRequest:
    return jobs.AnalysisRequest(place=place, boundary=boundary, country="Finland", offline=True)


def _wait_for(pred, timeout=30.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("condition not met in time")


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# --------------------------------------------------------------------------- lifecycle
def test_failing_job_is_failed_with_the_engine_error_in_its_log(client, slow):
    job = client.submit(_req(f"{slow.url}/fast/0/boundary.geojson"))
    assert job.backend == "local" and job.status in jobs.ACTIVE
    [done] = client.wait([job.job_id], timeout=60, progress=False)
    assert done.status == "FAILED"
    assert "404" in done.reason and "boundary.geojson" in done.reason
    log = client.logs(job.job_id)
    assert done.reason in log  # the engine's own message, in the job log
    assert "pna-engine run-job" in log or "pna_engine run-job" in log
    res = Path(client.results_location(job.job_id))
    status = json.loads((res / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == done.reason
    assert not (res / "run.json").exists()
    assert client.logs(job.job_id, tail=1).count("\n") == 1


def test_bad_boundary_file_fails_with_the_engine_message(client, tmp_path):
    bad = tmp_path / "boundary.geojson"
    bad.write_text("this is not GeoJSON")
    job = client.submit(_req(str(bad)))
    [done] = client.wait([job.job_id], timeout=90, progress=False)
    assert done.status == "FAILED" and done.reason
    status = json.loads((Path(done.results_uri) / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"] == done.reason
    assert done.reason.splitlines()[0] in client.logs(job.job_id)


def test_cancel_while_running_kills_the_process_tree(client, slow):
    job = client.submit(_req(f"{slow.url}/slow/120/boundary.geojson"))
    _wait_for(lambda: slow.started)  # the container is fetching its input
    running = client.get(job.job_id)
    assert running.status == "RUNNING" and running.phase == "fetch-inputs"
    pid, pgid = running.extra["pid"], running.extra["pgid"]
    assert _pid_alive(pid) and _group_alive(pgid)
    t0 = time.monotonic()
    [cancelled] = client.cancel([job.job_id])
    assert time.monotonic() - t0 < 15
    assert cancelled.status == "CANCELLED"
    assert not _pid_alive(pid) and not _group_alive(pgid)
    res = Path(cancelled.results_uri)
    status = json.loads((res / "status.json").read_text())
    # the folder says why it stopped (the engine's own "interrupted" said nothing of a cancel)
    assert status["state"] == "failed" and status["error"] == "cancelled: cancelled by user"
    assert status["phase"] == "fetch-inputs"
    assert not (res / "run.json").exists()
    with pytest.raises(InputError):  # the results loader refuses it
        from pna_helpers.results import load_results

        load_results(str(res))
    # cancelling it again is a user error with a one-line message
    with pytest.raises(jobs.JobError, match="cannot cancel finished"):
        client.cancel(job.job_id)


def test_cancel_between_claim_and_engine_start_stops_the_engine(client, slow):
    """A cancel that lands after the supervisor claimed the job (RUNNING, its pid and group
    recorded) but before it started the engine signalled a group without the engine in it:
    the engine must still be stopped, so the CANCELLED job's folder never looks complete.
    (Seen by hand: `pna submit --demo; pna cancel ID` left a succeeded folder.)"""
    from pna_helpers.jobs import local

    blocker = client.submit(_req(f"{slow.url}/slow/120/b.geojson"))  # holds the one slot
    job = client.submit(jobs.demo_request())
    assert client.get(job.job_id).status == "RUNNABLE"
    me = os.getpid()
    store = client.store
    with store.tx() as con:  # the supervisor's claim ...
        con.execute("UPDATE jobs SET status = 'RUNNING', pid = ?, pgid = ? WHERE job_id = ?",
                    (me, os.getpgrp(), job.job_id))
        row = con.execute("SELECT * FROM jobs WHERE job_id = ?", (job.job_id,)).fetchone()
    with store.tx() as con:  # ... then the cancel's mark, before the engine exists
        con.execute("UPDATE jobs SET status = 'CANCELLED', reason = 'cancelled by user' "
                    "WHERE job_id = ?", (job.job_id,))
    local._run_job(store, row, me, forked=False)
    done = client.get(job.job_id)
    assert done.status == "CANCELLED"
    res = Path(done.results_uri)
    status = json.loads((res / "status.json").read_text()) if (res / "status.json").exists() \
        else {"state": "failed"}
    assert status["state"] == "failed", status
    assert not (res / "run.json").exists()
    client.cancel([blocker.job_id])


def test_pna_logs_of_a_queued_job_says_why_it_prints_nothing(client, slow, tmp_path,
                                                             monkeypatch, capsys):
    from pna_helpers import cli

    blocker = client.submit(_req(f"{slow.url}/slow/120/b.geojson"))  # holds the one slot
    queued = client.submit(_req(f"{slow.url}/slow/120/c.geojson", place="Queued"))
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path / "outputs"))
    assert cli.main(["logs", queued.job_id, "--backend", "local"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == (f"pna: job {queued.job_id} (RUNNABLE) has no log yet: logs "
                                 "appear once it is RUNNING\n")
    assert cli.main(["logs", queued.job_id, "--tail", "0", "--backend", "local"]) == 0
    assert capsys.readouterr() == ("", "")  # --tail 0 asked for nothing
    client.cancel([blocker.job_id, queued.job_id])


def test_a_cancel_that_lands_after_the_engine_published_reports_success(client, slow):
    """The engine wrote its last file (status.json: succeeded) just before the cancel: the
    job is SUCCEEDED with a note, not CANCELLED beside a complete results folder."""
    blocker = client.submit(_req(f"{slow.url}/slow/120/b.geojson"))  # holds the one slot
    job = client.submit(jobs.demo_request())
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)  # the engine, exiting
    try:
        with client.store.tx() as con:  # claimed by a supervisor, the engine in its group
            con.execute("UPDATE jobs SET status = 'RUNNING', pid = ?, pgid = ? WHERE "
                        "job_id = ?", (os.getpid(), sleeper.pid, job.job_id))
        res = client.store.results_path(job.job_id)
        res.mkdir(parents=True, exist_ok=True)
        (res / "run.json").write_text("{}")
        (res / "status.json").write_text(json.dumps({"state": "succeeded"}))
        client._cancel_one(job, "cancelled by user")  # (get() would see no supervisor)
        out = client.get(job.job_id)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (out.status, out.reason) == ("SUCCEEDED", "finished before the cancel arrived")
    assert json.loads((res / "status.json").read_text())["state"] == "succeeded"
    assert "SUCCEEDED: finished before the cancel arrived" in client.logs(job.job_id)
    client.cancel([blocker.job_id])


def test_cancel_of_a_finished_and_a_running_job_says_what_to_do(client, slow):
    """`pna cancel DONE RUNNING` said only `nothing to cancel`, while it had cancelled nothing
    and the running job kept running; a repeated id was listed twice."""
    done = client.submit(_req(f"{slow.url}/fast/0/b.geojson"))
    client.wait([done.job_id], timeout=60, progress=False)
    running = client.submit(_req(f"{slow.url}/slow/120/b.geojson"))
    with pytest.raises(jobs.JobError) as ei:
        client.cancel([done.job_id, running.job_id, done.job_id])
    assert str(ei.value) == (f"cannot cancel finished job(s) {done.job_id} (FAILED): nothing "
                             "was cancelled; to cancel the unfinished one(s): 'pna cancel "
                             f"{running.job_id}'")
    assert client.get(running.job_id).status in jobs.ACTIVE
    with pytest.raises(jobs.JobError, match=r"\(FAILED\): nothing to cancel \(use 'retry'"):
        client.cancel([done.job_id])


def test_killed_supervisor_is_detected_as_failed(client, slow):
    job = client.submit(_req(f"{slow.url}/slow/120/boundary.geojson"))
    _wait_for(lambda: slow.started)
    running = client.get(job.job_id)
    assert running.status == "RUNNING"
    os.kill(running.extra["pid"], signal.SIGKILL)
    _wait_for(lambda: not _pid_alive(running.extra["pid"]), timeout=10)
    failed = client.get(job.job_id)  # the next API call notices
    assert failed.status == "FAILED"
    assert "supervisor" in failed.reason and "died" in failed.reason
    _wait_for(lambda: not _group_alive(running.extra["pgid"]), timeout=10)  # engine gone too
    assert json.loads((Path(failed.results_uri) / "status.json").read_text())["state"] == "failed"


def test_concurrency_one_runs_jobs_one_after_the_other(client, slow):
    a = client.submit(_req(f"{slow.url}/slow/1.5/a.geojson", "A"))
    b = client.submit(_req(f"{slow.url}/slow/1.5/b.geojson", "B"))
    assert client.get(b.job_id).status == "RUNNABLE"  # queued behind A
    done = client.wait([a.job_id, b.job_id], timeout=90, progress=False)
    assert [j.status for j in done] == ["FAILED", "FAILED"]
    (pa, sa, ea), (pb, sb, eb) = sorted(slow.requests, key=lambda r: r[1])
    assert pa.endswith("a.geojson") and pb.endswith("b.geojson")
    assert sb >= ea  # B's container started only after A's finished
    ja, jb = done
    assert jb.started_at >= ja.stopped_at


def test_concurrency_two_runs_jobs_together(tmp_path, slow):
    c = jobs.get_client("local", outputs=tmp_path / "o2", concurrency=2)
    a = c.submit(_req(f"{slow.url}/slow/3/a.geojson", "A"))
    b = c.submit(_req(f"{slow.url}/slow/3/b.geojson", "B"))
    _wait_for(lambda: len(slow.started) == 2, timeout=30)
    assert {j.status for j in c.get_many([a.job_id, b.job_id])} == {"RUNNING"}
    c.cancel_all_active()


def _hammer(outputs: str, url: str, n: int, q) -> None:
    c = jobs.get_client("local", outputs=outputs)
    ids = []
    for i in range(n):
        ids.append(c.submit(_req(f"{url}/slow/60/x{i}.geojson", f"P{i}")).job_id)
        c.list()
    q.put(ids)


def test_two_processes_share_the_store_safely(tmp_path, slow):
    outputs = str(tmp_path / "shared")
    jobs.get_client("local", outputs=outputs)
    q = mp.get_context("spawn").Queue()
    procs = [mp.get_context("spawn").Process(target=_hammer, args=(outputs, slow.url, 8, q))
             for _ in range(2)]
    for p in procs:
        p.start()
    ids = q.get(timeout=120) + q.get(timeout=120)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    c = jobs.get_client("local", outputs=outputs)
    listed = c.list()
    assert sorted(j.job_id for j in listed) == sorted(ids) and len(set(ids)) == 16
    assert sum(j.status in ("STARTING", "RUNNING") for j in listed) <= 1  # concurrency 1 held
    con = sqlite3.connect(Path(outputs) / "jobs.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    out = c.cancel_all_active()
    assert len(out) == 16 and {j.status for j in out} == {"CANCELLED"}


def test_user_errors_are_one_line(client, slow):
    with pytest.raises(jobs.JobError, match="unknown job id 'nope'"):
        client.get("nope")
    with pytest.raises(jobs.JobError, match="unknown job id"):
        client.results_location("nope")
    job = client.submit(_req(f"{slow.url}/fast/0/b.geojson"))
    client.wait(job.job_id, timeout=60, progress=False)
    [again] = client.retry([job.job_id])
    assert again.job_id != job.job_id and again.request == job.request
    with pytest.raises(jobs.JobError, match="unknown status"):
        client.list(status="DONE")
    assert [j.job_id for j in client.list(place="test place")][-1] == job.job_id
    assert client.list(status="SUCCEEDED") == []
    table = jobs.jobs_table(client.list())
    assert list(table.columns[:4]) == ["job_id", "place", "status", "phase"] and len(table) == 2


def test_place_filter_and_log_tail_follow_the_rules_of_every_backend(client, slow):
    """list(place=...) compares file-safe names (slugify), as the AWS backend does; a tail of
    0 is no lines, a negative one a one-line error; submit_many([]) is [] as on AWS."""
    job = client.submit(_req(f"{slow.url}/fast/0/b.geojson", place="Helsinki  Demo!"))
    other = client.submit(_req(f"{slow.url}/fast/0/b.geojson", place="Helsinki demo 2"))
    client.wait([job.job_id, other.job_id], timeout=60, progress=False)
    for name in ("Helsinki  Demo!", "helsinki-demo", "HELSINKI DEMO", "helsinki_demo"):
        assert [j.job_id for j in client.list(place=name)] == [job.job_id], name
    assert [j.job_id for j in client.list(place="Helsinki demo 2")] == [other.job_id]
    assert client.list(place="Helsinki") == []
    log = client.logs(job.job_id)
    assert log.count("\n") >= 2
    assert client.logs(job.job_id, tail=0) == ""
    assert client.logs(job.job_id, tail=2) == "".join(ln + "\n" for ln in log.splitlines()[-2:])
    assert client.logs(job.job_id, tail=10_000) == log
    for bad in (-1, "2", 2.5):
        with pytest.raises(jobs.JobError, match="^tail must be") as ei:
            client.logs(job.job_id, tail=bad)
        assert "\n" not in str(ei.value)
    assert client.submit_many([]) == []


def test_wait_times_out_with_a_clear_message(client, slow):
    job = client.submit(_req(f"{slow.url}/slow/120/b.geojson"))
    with pytest.raises(jobs.WaitTimeout, match="timed out after 1 s"):
        client.wait([job.job_id], timeout=1, progress=False)


# --------------------------------------------------------------------------- CLI
def _pna(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "pna_helpers.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, **kw)


def test_cli_submit_wait_status_results(tmp_path, slow):
    env = dict(os.environ, PNA_OUTPUTS=str(tmp_path / "cli"), PNA_BACKEND="local")
    r = _pna(["submit", "--place", "CLI place", "--boundary", f"{slow.url}/fast/0/b.geojson",
              "--country", "Finland", "--offline"], env)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    assert len(r.stdout.splitlines()) == 1 and len(job_id) == 12  # the id alone
    r = _pna(["wait", job_id, "--no-progress", "--timeout", "60"], env)
    assert r.returncode == 1 and "FAILED" in r.stdout
    r = _pna(["list", "--json"], env)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["job_id"] == job_id
    r = _pna(["results", job_id], env)
    assert r.stdout.strip() == str(tmp_path / "cli" / "results" / job_id)
    # a failed job's folder is not a result: said on stderr, exit 1 (it was exit 0, silently)
    assert r.returncode == 1 and r.stderr.startswith(f"pna: error: job {job_id} (CLI place) "
                                                     "FAILED: ")
    assert r.stderr.endswith(f"; its results are not complete (see 'pna logs {job_id}')\n")
    assert r.stderr.count("\n") == 1
    r = _pna(["logs", job_id, "--tail", "2"], env)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    r = _pna(["logs", job_id, "--tail", "0"], env)
    assert r.returncode == 0 and r.stdout == ""
    r = _pna(["logs", job_id, "--tail", "-3"], env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("pna: error: --tail must be 0 or more lines, got -3")
    assert len(r.stderr.strip().splitlines()) == 1
    for args, needle in ((["status", "nope"], "unknown job id"),
                         (["cancel", job_id], "cannot cancel finished"),
                         (["submit", "--place", "X", "--boundary", "/no/such.shp"],
                          "does not exist")):
        r = _pna(args, env)
        assert r.returncode == 2
        assert r.stderr.startswith("pna: error:") and needle in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_cli_wait_into_a_file_has_no_progress_bar(tmp_path, slow):
    """`pna wait` with stderr redirected (a batch script's log) wrote the tqdm bar's
    carriage-return updates there; now stderr holds only the failure line."""
    env = dict(os.environ, PNA_OUTPUTS=str(tmp_path / "cli"), PNA_BACKEND="local")
    r = _pna(["submit", "--place", "Logged", "--boundary", f"{slow.url}/fast/0/b.geojson",
              "--country", "Finland", "--offline"], env)
    job_id = r.stdout.strip()
    for args in (["wait", job_id], ["submit", "--place", "Logged 2", "--boundary",
                                    f"{slow.url}/fast/0/b.geojson", "--wait"]):
        r = _pna(args, env)
        assert r.returncode == 1
        assert "\r" not in r.stderr and "%|" not in r.stderr, r.stderr
        failed = job_id if args[0] == "wait" else r.stdout.strip()
        place = "Logged" if args[0] == "wait" else "Logged 2"
        # the failure is said (submit --wait said nothing: exit 1 alone)
        assert r.stderr.startswith(f"pna: error: job {failed} ({place}) FAILED: ")
        assert r.stderr.endswith(f"; see 'pna logs {failed}'\n") and r.stderr.count("\n") == 1


# --------------------------------------------------------------------------- the real demo
def _engine_complete() -> bool:
    mods = ("boundary", "download", "jobsdata", "osm", "population", "speeds", "features",
            "stress", "network", "blocks", "connectivity", "destinations", "scores", "export",
            "demo")
    return all(importlib.util.find_spec(f"pna_engine.{m}") for m in mods)


@pytest.mark.slow
@pytest.mark.skipif(not _engine_complete(), reason="engine phases not all present yet")
def test_demo_submit_wait_results_loadable(client):
    from pna_helpers.results import load_results

    req = jobs.demo_request()
    job = client.submit(req)
    [done] = client.wait([job.job_id], timeout=600, progress=False)
    assert done.status == "SUCCEEDED", client.logs(job.job_id, tail=30)
    res = load_results(client.results_location(job.job_id))
    scores = res.overall_scores
    assert "overall_score" in set(scores["score_id"])
    assert 0 <= float(scores.set_index("score_id").loc["overall_score", "score_normalized"]) <= 100
    run = json.loads((Path(done.results_uri) / "run.json").read_text())
    assert run["parameters"]["country"] == req.country


def test_credentials_never_reach_disk(tmp_path, slow, monkeypatch):
    secret = "SeCrEt-" + os.urandom(8).hex()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", secret + "-token")
    outputs = tmp_path / "o"
    c = jobs.get_client("local", outputs=outputs)
    job = c.submit(_req(f"{slow.url}/fast/0/b.geojson"))
    c.wait([job.job_id], timeout=60, progress=False)
    for p in outputs.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p


@pytest.mark.slow
@pytest.mark.skipif(not _engine_complete(), reason="engine phases not all present yet")
def test_cli_demo_place_submit_wait_results(tmp_path):
    """The README's flow on a machine with no AWS configuration, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PNA_"))}
    env.update(PNA_OUTPUTS=str(tmp_path / "fresh"), HOME=str(tmp_path))
    r = _pna(["submit", "--place", "Helsinki demo"], env)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    r = _pna(["wait", job_id, "--no-progress"], env)
    assert r.returncode == 0, r.stderr
    r = _pna(["results", job_id], env)
    folder = Path(r.stdout.strip())
    assert folder == tmp_path / "fresh" / "results" / job_id
    assert (folder / "neighborhood_overall_scores.csv").exists()
    assert json.loads((folder / "status.json").read_text())["state"] == "succeeded"
