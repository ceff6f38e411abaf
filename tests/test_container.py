"""The job image, built from the ``Dockerfile`` and run as AWS Batch runs it (marker ``container``).

The image is built once per test session by ``tools/image.py`` (buildah with vfs storage and
chroot isolation on a local Debian bookworm base; an image of the same content is reused) and
each job runs with ``buildah run --network host``: the image's entrypoint and command, the
environment Batch's ``containerOverrides`` sets, and the moto server on loopback standing in for
S3. Skipped, with the reason, where buildah cannot build images (not installed, not root).
"""

from __future__ import annotations

import dataclasses
import http.server
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("pna_image_tools", REPO / "tools" / "image.py")
image_tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_tools)


def _unavailable() -> str | None:
    try:
        return image_tools.unavailable_reason()
    except image_tools.ImageError as exc:
        return str(exc)


UNAVAILABLE = _unavailable()
pytestmark = [pytest.mark.container,
              pytest.mark.skipif(UNAVAILABLE is not None, reason=f"job image: {UNAVAILABLE}")]


@pytest.fixture(scope="session")
def image() -> tuple[str, dict]:
    """(tag, OCI config) of the image built from this tree (a build failure fails the tests)."""
    tag = image_tools.build(quiet=True)
    return tag, image_tools.inspect(tag)["config"]


@pytest.fixture(scope="session")
def ctr(image):
    """One working container of the image for the session (vfs copies the whole image)."""
    name = image_tools.create(image[0])
    yield name
    image_tools.remove(name)


def _popen(ctr: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(image_tools.run_argv(ctr, argv, env), env=image_tools.environ(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(ctr: str, argv: list[str], env: dict[str, str] | None = None,
         timeout: float = 300) -> tuple[int, str, str]:
    p = _popen(ctr, argv, env or {})
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, image_tools.container_stderr(err)


def _aws_env(moto_url: str) -> dict[str, str]:
    """What a Batch job gets besides the overrides: credentials (the job role) and the region;
    plus the emulator's endpoint."""
    return {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": os.environ["AWS_REGION"]}


@pytest.fixture(scope="module")
def client(moto_url, image):
    """The AWS backend on a stack that ``pna stack up`` registered with PNA_IMAGE = this image."""
    from pna_helpers.config import Settings
    from pna_helpers.jobs.aws import AwsBackend

    env = {**os.environ, "PNA_BACKEND": "aws", "PNA_RESULTS_BUCKET": "pna-image",
           "PNA_IMAGE": image[0]}
    r = subprocess.run([sys.executable, "-m", "pna_helpers.cli", "stack", "up"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"job image (PNA_IMAGE): {image[0]}" in r.stdout.splitlines()
    settings = Settings.load(backend="aws", endpoint_url=moto_url, results_bucket="pna-image",
                             image=image[0])
    return AwsBackend(settings, sleep=lambda s: None)


def _s3_json(client, uri: str) -> dict:
    bucket, key = uri[5:].split("/", 1)
    body = client.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def _s3_keys(client, uri: str) -> list[str]:
    bucket, prefix = uri[5:].split("/", 1)
    resp = client.aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"][len(prefix):] for o in resp.get("Contents", [])]


# --------------------------------------------------------------------------- the image itself
def test_image_runs_pna_engine_as_a_non_root_user_with_a_read_only_home(image, ctr):
    from pna_engine import __version__

    tag, config = image
    assert config["Entrypoint"] == ["pna-engine"] and config["Cmd"] == ["run-job"]
    assert config["User"] == "pna"
    assert config["Labels"]["org.opencontainers.image.version"] == __version__
    assert not any(e.startswith(("PIP_", "SSL_CERT", "REQUESTS_CA")) for e in config["Env"])
    rc, out, err = _run(ctr, ["sh", "-c", "id -u; id -un; touch $HOME/x 2>&1 || echo ro; "
                              "touch /tmp/x && echo tmp-ok; ls /run/secrets /etc/pip.conf 2>&1"])
    lines = out.splitlines()
    assert lines[0] != "0" and lines[1] == "pna", out
    assert "ro" in lines and "tmp-ok" in lines, out  # home read-only, scratch writable
    assert sum("No such file" in x for x in lines[-2:]) == 2, out  # no secret or pip config
    rc, out, err = _run(ctr, ["pna-engine", "--version"])
    assert (rc, out.strip()) == (0, f"pna-engine {__version__}"), err
    assert image_tools.image_size(tag) > 0


def test_a_bad_request_exits_2_with_one_line(image, ctr, tmp_path):
    argv = image_tools.job_argv(image[1])  # pna-engine run-job, nothing else set
    for env in ({}, {"PNA_REQUEST": "{not json", "PNA_RESULTS_URI": "/tmp/r"}):
        rc, out, err = _run(ctr, argv, env)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1, err
        assert lines[0].startswith("pna-engine: error: "), err
    assert "PNA_REQUEST" in _run(ctr, argv)[2]  # says what to set


# --------------------------------------------------------------------------- Batch-style runs
@pytest.mark.slow
def test_batch_job_in_the_image_gives_the_local_scores(image, ctr, client, moto_url, tmp_path):
    from pandas.testing import assert_frame_equal

    from pna_helpers import jobs
    from pna_helpers.jobs.stack import Stack
    from pna_helpers.results import load_results

    # the job definition names the image built here: Batch would run exactly this one
    assert Stack(client.settings).status()["job_definition"]["image"] == image[0]
    request = jobs.demo_request()
    job = client.submit(request)
    command, env = client.container_environment(job.job_id)  # containerOverrides
    assert command == ["run-job"] and env["PNA_RESULTS_URI"].startswith("s3://")
    rc, out, err = _run(ctr, image_tools.job_argv(image[1], command), {**env, **_aws_env(moto_url)})
    assert rc == 0, err[-3000:]
    assert "[pna-job] phase import" in err
    assert _s3_json(client, job.results_uri + "status.json")["state"] == "succeeded"
    in_image = load_results(client.results_location(job.job_id))

    local_dir = tmp_path / "local"  # the same request, run by this tree's venv
    local_env = {**os.environ, "PNA_REQUEST": json.dumps(dataclasses.asdict(request)),
                 "PNA_RESULTS_URI": str(local_dir)}
    r = subprocess.run([sys.executable, "-m", "pna_engine", "run-job"], env=local_env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    local = load_results(local_dir)
    assert_frame_equal(in_image.overall_scores, local.overall_scores)
    cols = [c for c in local.blocks.columns if c != "geometry"]
    assert_frame_equal(in_image.blocks[cols], local.blocks[cols])
    run = _s3_json(client, job.results_uri + "run.json")
    assert run["parameters"]["country"] == "Finland"


@pytest.mark.slow
def test_array_child_runs_its_own_manifest_entry(image, ctr, client, moto_url, tmp_path):
    from pna_helpers import jobs

    broken = tmp_path / "broken.geojson"
    broken.write_text("not a boundary")
    reqs = [jobs.AnalysisRequest(place="Child 0", boundary=str(broken), offline=True),
            dataclasses.replace(jobs.demo_request(), place="Child 1")]
    children = client.submit_many(reqs)
    command, env = client.container_environment(children[1].job_id)
    assert "PNA_MANIFEST" in env and "PNA_REQUEST" not in env
    env = {**env, **_aws_env(moto_url), "AWS_BATCH_JOB_ARRAY_INDEX": "1"}  # Batch sets it
    rc, out, err = _run(ctr, image_tools.job_argv(image[1], command), env)
    assert rc == 0, err[-3000:]
    assert _s3_json(client, children[1].results_uri + "status.json")["state"] == "succeeded"
    assert _s3_json(client, children[1].results_uri + "run.json")["parameters"]["place"] == "Child 1"
    assert _s3_keys(client, children[0].results_uri) == []  # child 0 never ran


class _StallingBoundary(http.server.BaseHTTPRequestHandler):
    """Serves the start of a boundary file, then stalls (at most 60 s): a job stuck fetching."""

    requested = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b'{"type": "FeatureCollection", "features": [')
        self.wfile.flush()
        type(self).requested.set()
        type(self).release.wait(60)

    def log_message(self, *args) -> None:
        pass


def test_sigterm_leaves_status_failed_in_s3(image, ctr, client, moto_url):
    import psutil

    from pna_helpers import jobs

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingBoundary)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/city.geojson"
        job = client.submit(jobs.AnalysisRequest(place="Stopped", boundary=url, offline=True))
        command, env = client.container_environment(job.job_id)
        p = _popen(ctr, image_tools.job_argv(image[1], command), {**env, **_aws_env(moto_url)})
        assert _StallingBoundary.requested.wait(120), p.stderr.read() if p.poll() else ""
        status = _s3_json(client, job.results_uri + "status.json")
        assert (status["state"], status["phase"]) == ("running", "fetch-inputs")
        # Batch's terminate: SIGTERM to the container's main process (the entrypoint)
        # (buildah run -> chroot runtime -> exec wrapper -> the entrypoint's python process)
        main = next(c for c in psutil.Process(p.pid).children(recursive=True)
                    if c.cmdline()[:1] == ["/opt/pna/bin/python3"]
                    and c.cmdline()[-2:] == ["/opt/pna/bin/pna-engine", "run-job"])
        t0 = time.monotonic()
        main.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        err = image_tools.container_stderr(err)
        assert time.monotonic() - t0 < 30
    finally:
        _StallingBoundary.release.set()
        server.shutdown()
        server.server_close()
    assert p.returncode == 143, err
    status = _s3_json(client, job.results_uri + "status.json")
    assert status["state"] == "failed" and status["error"] == "interrupted", status
    assert _s3_keys(client, job.results_uri) == ["status.json"]  # nothing that looks complete
