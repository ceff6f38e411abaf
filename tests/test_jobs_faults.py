"""The local job store under faults and load: an unusable ``PNA_OUTPUTS``, a damaged
``jobs.sqlite`` (one line naming the file and how to recover, a backup to restore), and 8
processes submitting, listing and cancelling 50 jobs each against one store."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pna_helpers import jobs

REPO = Path(__file__).resolve().parent.parent


def _pna(*args: str, outputs: Path | str, wrap: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PNA_OUTPUTS": str(outputs)}
    cmd = [sys.executable, "-m", "pna_helpers.cli", *args]
    if wrap is not None:
        cmd = ["unshare", "-m", "sh", "-c", wrap, "sh", *cmd]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("pna: error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# --------------------------------------------------------------------------- PNA_OUTPUTS
def test_outputs_that_is_a_file(tmp_path):
    f = tmp_path / "outputs"
    f.write_text("")
    r = _pna("list", outputs=f)
    assert r.returncode == 2
    line = _one_line(r.stderr)
    assert f"PNA_OUTPUTS={f}" in line and "is a file, not a folder" in line


def test_outputs_that_is_a_device():
    """PNA_OUTPUTS=/dev/null said `cannot write the job store in PNA_OUTPUTS=/dev/null: File
    exists`."""
    r = _pna("list", outputs=Path("/dev/null"))
    assert r.returncode == 2
    assert _one_line(r.stderr) == ("pna: error: cannot write the job store in "
                                   "PNA_OUTPUTS=/dev/null: /dev/null is not a folder; choose a "
                                   "folder path")


def test_outputs_under_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("")
    r = _pna("list", outputs=f / "outputs")
    assert r.returncode == 2
    assert f"{f} is a file, not a folder" in _one_line(r.stderr)


def test_outputs_on_a_read_only_file_system(tmp_path):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to mount a read-only tmpfs")
    ro = tmp_path / "ro"
    ro.mkdir()
    r = _pna("list", outputs=ro, wrap=f"mount -t tmpfs -o size=64k,ro tmpfs {ro} && exec \"$@\"")
    if "mount" in r.stderr and "permission" in r.stderr.lower():
        pytest.skip("mount not allowed here")
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert f"PNA_OUTPUTS={ro}" in line and "read-only" in line


# --------------------------------------------------------------------------- damaged store
def test_store_that_is_not_a_database(tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "jobs.sqlite").write_bytes(os.urandom(8192))
    r = _pna("list", outputs=out)
    assert r.returncode == 2
    line = _one_line(r.stderr)
    store = out / "jobs.sqlite"
    assert f"the job store {store} is damaged" in line
    assert f"'mv {store} {store}.broken'" in line  # how to recover


def test_damaged_store_pages_and_backup_restore(tmp_path):
    out = tmp_path / "outputs"
    client = jobs.get_client("local", outputs=out)
    with client.store.tx() as con:  # a store with history, without running anything
        for i in range(300):
            con.execute("INSERT INTO jobs(job_id, place, status, created_at, results_uri, "
                        "request) VALUES(?, ?, 'SUCCEEDED', '2026-01-01', '/x', '{}')",
                        (f"job{i:03d}", "p" * 200))
    with client.store.connect() as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store = client.store.path
    backup = client.store.backup_path
    os.utime(backup, (0, 0))  # an old backup: the next open refreshes it
    jobs.get_client("local", outputs=out)
    with sqlite3.connect(backup) as con:
        assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == 300
    data = bytearray(store.read_bytes())
    for off in range(4096, len(data), 4096):  # a disk fault: every page but the first
        data[off:off + 64] = os.urandom(64)
    store.write_bytes(bytes(data))

    r = _pna("list", outputs=out)
    assert r.returncode == 2
    line = _one_line(r.stderr)
    assert f"the job store {store} is damaged" in line and f"'cp {backup} {store}'" in line

    shutil.copyfile(backup, store)  # what the message says
    r = _pna("list", "--json", outputs=out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('"job_id"') == 300


# --------------------------------------------------------------------------- load
class _Hold(BaseHTTPRequestHandler):
    """Holds a GET until the server is released: the blocker job stays RUNNING."""

    release = threading.Event()

    def do_GET(self):  # noqa: N802
        self.release.wait(120)
        with __import__("contextlib").suppress(OSError):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *a):
        pass


def _worker(outputs: str, n: int, tag: str, q) -> None:
    try:
        client = jobs.get_client("local", outputs=outputs)
        mine = []
        for i in range(n):
            req = jobs.AnalysisRequest(place=f"{tag}-{i}", boundary="http://127.0.0.1:9/b.json",
                                       country="Finland", offline=True)
            mine.append(client.submit(req).job_id)
            if i % 10 == 9:
                listed = {j.job_id for j in client.list()}
                assert set(mine) <= listed, "a submitted job is missing from the list"
        cancelled = client.cancel(mine)
        q.put((tag, mine, [j.status for j in cancelled], None))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        q.put((tag, [], [], f"{type(exc).__name__}: {exc}"))


def test_eight_processes_submit_list_and_cancel_fifty_jobs_each(tmp_path):
    """No job lost or duplicated, every state final, within a minute."""
    out = tmp_path / "outputs"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hold)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client = jobs.get_client("local", outputs=out)
    try:
        # one job holds the only slot, so the 400 stay queued and nothing else launches
        blocker = client.submit(jobs.AnalysisRequest(
            place="blocker", boundary=f"http://127.0.0.1:{httpd.server_address[1]}/b.geojson",
            country="Finland", offline=True))
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(str(out), 50, f"w{k}", q)) for k in range(8)]
        for p in procs:
            p.start()
        results = [q.get(timeout=90) for _ in procs]
        for p in procs:
            p.join(30)
        errors = [r[3] for r in results if r[3]]
        assert not errors, errors
        ids = [i for r in results for i in r[1]]
        assert len(ids) == 400 and len(set(ids)) == 400
        assert all(s == "CANCELLED" for r in results for s in r[2])
        with sqlite3.connect(client.store.path) as con:
            rows = con.execute("SELECT job_id, place, status FROM jobs WHERE job_id != ?",
                               (blocker.job_id,)).fetchall()
        assert len(rows) == 400 and {r[0] for r in rows} == set(ids)  # none lost, none extra
        assert len({r[1] for r in rows}) == 400  # each request stored once
        assert {r[2] for r in rows} == {"CANCELLED"}  # every state final
    finally:
        _Hold.release.set()
        client.cancel_all_active()
        httpd.shutdown()
    assert client.get(blocker.job_id).status in ("CANCELLED", "FAILED")
