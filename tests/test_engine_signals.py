"""Fault injection: a real ``pna-engine run`` of the demo is stopped in each phase by SIGTERM,
SIGINT and SIGKILL (and SIGHUP once), and its folder's state is checked each time.

The run is held in the named phase by the engine's fault hook ``PNA_FAULT_PAUSE_AT`` (it waits
once ``status.json`` names the phase), so the test does not race the ~1 s demo run.

* SIGTERM / SIGHUP / SIGINT: ``status.json`` says failed (``interrupted``), the staging folder is
  gone, no export file or ``run.json`` is left, exit 143 (130 for SIGINT), one line on stderr.
* SIGKILL: nothing can clean up, but the file records its writer (host, pid, start time), so
  every reader reports the folder as interrupted, not running.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pna_engine import PHASES, status
from pna_engine.errors import InputError
from pna_engine.pipeline import STAGING_PREFIX

REPO = Path(__file__).resolve().parent.parent


def _start(demo_args: list[str], out: Path, phase: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PNA_FAULT_PAUSE_AT": phase,
           "PNA_FAULT_PAUSE_S": "60"}
    return subprocess.Popen([sys.executable, "-m", "pna_engine", *demo_args, "--output", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_phase(out: Path, phase: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            st = json.loads((out / "status.json").read_text())
            if st.get("phase") == phase:
                return
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the run never reached {phase}")


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name != "status.json")


@pytest.mark.parametrize("phase", PHASES)
def test_stopped_in_every_phase(demo_args, tmp_path, phase):
    from pna_helpers.results import load_results

    sigs = {"TERM": signal.SIGTERM, "INT": signal.SIGINT, "KILL": signal.SIGKILL}
    outs = {k: tmp_path / k for k in sigs}
    procs = {k: _start(demo_args, outs[k], phase) for k in sigs}  # the three side by side
    try:
        for k, p in procs.items():
            _wait_for_phase(outs[k], phase, p)
            p.send_signal(sigs[k])
        done = {k: (p.wait(60), p.communicate()[1]) for k, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()

    for k, code in (("TERM", 143), ("INT", 130)):
        rc, err = done[k]
        assert rc == code, (k, rc, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("pna-engine: "), err
        st = json.loads((outs[k] / "status.json").read_text())
        assert (st["state"], st["error"], st["phase"]) == ("failed", "interrupted", phase), k
        assert _leftovers(outs[k]) == [], k  # no staging folder, no export file, no run.json
        with pytest.raises(InputError, match="the run is failed .*interrupted"):
            load_results(outs[k])

    rc, _ = done["KILL"]
    assert rc == -signal.SIGKILL
    raw = json.loads((outs["KILL"] / "status.json").read_text())
    assert raw["state"] == "running"  # nobody could change the file...
    assert raw["writer"]["pid"] == procs["KILL"].pid
    seen = status.read_status(outs["KILL"])  # ...but every reader sees the dead writer
    assert seen["state"] == "failed" and seen["error"].startswith("interrupted")
    assert f"pid {procs['KILL'].pid}" in seen["error"] and f"phase {phase}" in seen["error"]
    with pytest.raises(InputError, match="the run was interrupted"):
        load_results(outs["KILL"])
    assert "run.json" not in _leftovers(outs["KILL"])
    assert all(n.startswith(STAGING_PREFIX) for n in _leftovers(outs["KILL"]))


def test_sighup_stops_like_sigterm(demo_args, tmp_path):
    out = tmp_path / "out"
    p = _start(demo_args, out, "connectivity")
    _wait_for_phase(out, "connectivity", p)
    p.send_signal(signal.SIGHUP)
    rc, err = p.wait(60), p.communicate()[1]
    assert rc == 143 and err.strip() == "pna-engine: stopped by SIGHUP"
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "failed" and st["error"] == "interrupted"
    assert _leftovers(out) == []


def test_a_rerun_after_sigkill_cleans_the_folder(demo_args, tmp_path):
    out = tmp_path / "out"
    p = _start(demo_args, out, "export")
    _wait_for_phase(out, "export", p)
    p.kill()
    p.wait(30)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "pna_engine", *demo_args, "--output", str(out)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert status.read_status(out)["state"] == "succeeded"
    assert not [n for n in _leftovers(out) if n.startswith(STAGING_PREFIX)]


# --------------------------------------------------------------------------- heartbeat
def _running(host: str, pid: int, beat: dt.datetime, start: int | None = None) -> dict:
    return {"state": "running", "phase": "connectivity", "error": None,
            "writer": {"host": host, "pid": pid, "start": start},
            "heartbeat_at": beat.isoformat(timespec="seconds"), "heartbeat_every_s": 10}


def test_reader_of_another_host_uses_the_heartbeat():
    now = dt.datetime.now(dt.UTC)
    fresh = _running("elsewhere", 1, now - dt.timedelta(seconds=20))
    stale = _running("elsewhere", 1, now - dt.timedelta(seconds=120))
    assert status.effective(fresh)["state"] == "running"
    seen = status.effective(stale)
    assert seen["state"] == "failed" and "pid 1 on elsewhere" in seen["error"]
    old_format = {"state": "running", "phase": "import"}  # an older PNA: no writer recorded
    assert status.effective(old_format) is old_format


def test_reader_on_this_host_checks_the_process():
    me = status.writer_info()
    host = socket.gethostname()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)  # the pid decides, not the beat
    assert status.effective(_running(host, me["pid"], long_ago, me["start"]))["state"] == "running"
    reused = _running(host, me["pid"], long_ago, (me["start"] or 0) + 12345)  # pid reused
    assert status.effective(reused)["state"] == "failed"
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert status.effective(_running(host, p.pid, long_ago))["state"] == "failed"


def test_heartbeat_rewrites_the_file(tmp_path):
    sf = status.StatusFile(tmp_path)
    sf.write()
    first = json.loads((tmp_path / "status.json").read_text())
    sf.start_heartbeat(every=0.3)
    try:
        time.sleep(1.4)
        later = json.loads((tmp_path / "status.json").read_text())
    finally:
        sf.succeeded()
    assert later["heartbeat_at"] > first["heartbeat_at"]
    assert later["writer"] == first["writer"] == status.writer_info()
    time.sleep(0.5)  # stopped with the final state: no beat overwrites it
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "succeeded"
