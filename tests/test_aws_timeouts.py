"""Bounded waits on AWS: an endpoint that accepts connections and never answers (a loopback
socket) gives ONE line ``pna: error: the AWS endpoint ... did not answer within N s`` and exit
2 after one read timeout (a read timeout is not retried), never a traceback or a 3-minute hang.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pna_engine import remote
from pna_helpers.config import Settings
from pna_helpers.jobs.aws import Aws, aws_error

REPO = Path(__file__).resolve().parent.parent


class SilentEndpoint:
    """Accepts TCP connections on loopback, reads what comes, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.conns.append(conn)  # kept open, never answered

    def close(self) -> None:
        self._stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def silent():
    s = SilentEndpoint()
    yield s
    s.close()


def _env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PYTHONPATH=str(REPO), AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               PNA_AWS_READ_TIMEOUT="2", PNA_RESULTS_BUCKET="pna-test", **extra)
    return env


def _one_line(stderr: str, prefix: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("[pna-job]")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix) and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("command", [["submit", "--demo"], ["list"]])
def test_silent_endpoint_gives_one_line_after_one_read_timeout(silent, command):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pna_helpers.cli", "--backend", "aws", *command],
                       env=_env(silent.url), capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr, "pna: error: ")
    assert f"the AWS endpoint {silent.url} did not answer within 2 s" in line
    assert "PNA_AWS_READ_TIMEOUT" in line
    assert silent.accepted == 1  # not retried: a second SubmitJob could start a second job
    assert elapsed < 25, elapsed  # one 2 s timeout + start-up (+ the demo inputs), not 3 x 60 s


def test_engine_fetch_from_a_silent_s3(silent, tmp_path):
    """The job container reading an input from S3: one line, exit 2, status.json failed."""
    out = tmp_path / "results"
    env = _env(silent.url, PNA_REQUEST=json.dumps({"place": "x", "boundary": "s3://b/k.geojson"}),
               PNA_RESULTS_URI=str(out), PNA_SCRATCH=str(tmp_path))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pna_engine", "run-job"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr, "pna-engine: error: ")
    assert f"the AWS endpoint {silent.url} did not answer within 2 s" in line
    assert time.monotonic() - t0 < 15
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "failed" and "did not answer" in st["error"]


def test_settings_defaults_and_every_client_bounded(monkeypatch):
    for k in ("PNA_AWS_CONNECT_TIMEOUT", "PNA_AWS_READ_TIMEOUT", "PNA_AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(k, raising=False)
    s = Settings.load(backend="aws", endpoint_url="http://127.0.0.1:9")
    assert (s.aws_connect_timeout, s.aws_read_timeout, s.aws_max_attempts) == (10, 30, 3)
    aws = Aws(s)
    for service in ("batch", "logs", "s3", "iam", "ec2", "sts", "ecr"):
        cfg = aws.client(service).meta.config
        assert (cfg.connect_timeout, cfg.read_timeout) == (10, 30), service
        assert cfg.retries == {"mode": "standard", "total_max_attempts": 3}, service
    monkeypatch.setenv("PNA_AWS_READ_TIMEOUT", "7.5")
    assert Settings.load(backend="aws").aws_read_timeout == 7.5
    assert remote.aws_client("s3", region="us-east-1").meta.config.read_timeout == 7.5
    monkeypatch.setenv("PNA_AWS_READ_TIMEOUT", "inf")
    with pytest.raises(Exception, match="PNA_AWS_READ_TIMEOUT"):
        Settings.load(backend="aws")
    with pytest.raises(Exception, match="PNA_AWS_READ_TIMEOUT"):
        remote.aws_client("s3")


def test_error_formatting_without_a_response():
    """Exceptions with ``response = None`` (or none at all) are formatted, not crashed on."""
    from botocore.exceptions import ReadTimeoutError

    class NoResponse(Exception):
        response = None

    assert "did not answer within 30 s" in str(aws_error(
        ReadTimeoutError(endpoint_url="http://x:1"), "submitting", read_timeout=30))
    assert str(aws_error(NoResponse("boom"), "listing jobs")) == "listing jobs: NoResponse: boom"
    assert str(aws_error(ValueError("odd"), "x")) == "x: ValueError: odd"
