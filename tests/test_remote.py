"""One remote-I/O layer (``pna_engine.remote``): the scheme registry, fetch (cache or folder,
shapefile sidecars), put, list and read over local paths, a real HTTP server and a moto S3
server; the AWS client factory's timeouts, retries and cache."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest
from httpfolder import http_folder  # noqa: F401

from pna_engine import remote
from pna_engine.errors import InputError, OfflineError


def _shapefile(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        (folder / f"zones{ext}").write_bytes(f"content of {ext}".encode())
    return folder / "zones.shp"


def test_registry_and_locations():
    assert [remote.is_remote(x) for x in ("s3://b/k", "HTTPS://x/y", "/tmp/a", "ftp://x/y",
                                          None)] == [True, True, False, False, False]
    assert remote.split_s3("s3://bucket/a/b.csv") == ("bucket", "a/b.csv")
    assert remote.join("s3://b/results/", "run.json") == "s3://b/results/run.json"
    with pytest.raises(InputError, match="unsupported URL scheme"):
        remote.read_text("ftp://x/y")

    class Mem:
        def read(self, uri, hint):
            return b"from memory"

    remote.register("mem", Mem())
    try:
        assert remote.is_remote("mem://x") and remote.read_text("mem://x") == "from memory"
    finally:
        del remote.HANDLERS["mem"]


def test_local_put_list_and_missing(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("hello")
    remote.put(src, tmp_path / "out" / "sub" / "a.txt")
    assert remote.list_files(tmp_path / "out") == [("sub/a.txt", 5)]
    assert remote.fetch(src) == src  # a local path is used as is
    with pytest.raises(InputError, match="the boundary not found: .*nope.shp \\(check --boundary"):
        remote.fetch(tmp_path / "nope.shp", what="the boundary", option="--boundary")


def test_http_fetch_cached_once_with_sidecars(tmp_path, http_folder):  # noqa: F811
    root, base = http_folder
    _shapefile(root)
    url = f"{base}/zones.shp"
    got = remote.fetch(url, cache=tmp_path / "cache")
    assert got == remote.cached_path(url, tmp_path / "cache")
    assert sorted(p.name for p in got.parent.iterdir()) == ["zones.dbf", "zones.prj",
                                                            "zones.shp", "zones.shx"]
    (root / "zones.shp").write_bytes(b"changed")
    assert remote.fetch(url, cache=tmp_path / "cache").read_bytes() == b"content of .shp"
    fresh = remote.fetch(url, tmp_path / "folder")  # to a folder: always downloaded
    assert fresh.read_bytes() == b"changed" and (fresh.parent / "zones.dbf").exists()
    with pytest.raises(OfflineError, match="--offline was given"):
        remote.fetch(f"{base}/other.shp", cache=tmp_path / "cache", offline=True,
                     option="--boundary")
    with pytest.raises(InputError, match="HTTP 404; check the address or pass --osm PATH"):
        remote.fetch(f"{base}/missing.osm.pbf", tmp_path / "x", what="the OSM extract",
                     option="--osm")
    with pytest.raises(InputError, match="cannot upload"):
        remote.put(tmp_path / "folder" / "zones.shp", f"{base}/up.shp")


@pytest.fixture
def s3(s3_server):
    client = remote.aws_client("s3")
    client.create_bucket(Bucket="pna-b")
    return client


@pytest.mark.aws
def test_s3_put_list_fetch_read(tmp_path, s3):
    shp = _shapefile(tmp_path / "src")
    for p in sorted(shp.parent.iterdir()):
        remote.put(p, f"s3://pna-b/in/{p.name}")
    assert remote.list_files("s3://pna-b/in") == [
        ("zones.dbf", 15), ("zones.prj", 15), ("zones.shp", 15), ("zones.shx", 15)]
    got = remote.fetch("s3://pna-b/in/zones.shp", tmp_path / "dl")
    assert sorted(p.name for p in got.parent.iterdir()) == ["zones.dbf", "zones.prj",
                                                            "zones.shp", "zones.shx"]
    assert remote.read_text("s3://pna-b/in/zones.prj") == "content of .prj"
    with pytest.raises(InputError, match="s3://pna-b/in/nope.csv does not exist"):
        remote.fetch("s3://pna-b/in/nope.csv", tmp_path / "dl")
    assert not [p for p in (tmp_path / "dl").iterdir() if p.name.startswith(".")]


def test_aws_client_config_cache_and_overrides(monkeypatch):
    pytest.importorskip("boto3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("PNA_AWS_READ_TIMEOUT", raising=False)
    a = remote.aws_client("s3", region="eu-north-1")
    assert a is remote.aws_client("s3", region="eu-north-1")  # one client, cached
    cfg = a.meta.config
    assert (cfg.connect_timeout, cfg.read_timeout) == (10.0, 30.0)
    assert cfg.retries == {"mode": "standard", "total_max_attempts": 3}
    monkeypatch.setenv("PNA_AWS_READ_TIMEOUT", "5")
    b = remote.aws_client("logs", region="eu-north-1")
    assert b.meta.config.read_timeout == 5.0 and b.meta.service_model.service_name == "logs"
    monkeypatch.setenv("PNA_AWS_READ_TIMEOUT", "soon")
    with pytest.raises(InputError, match="PNA_AWS_READ_TIMEOUT must be a positive number"):
        remote.aws_client("s3")


def test_silent_s3_endpoint_is_an_offline_error_within_the_timeouts(tmp_path, monkeypatch):
    """A server that accepts connections and never answers: bounded wait, one-line error."""
    pytest.importorskip("boto3")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conns.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{srv.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("PNA_AWS_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("PNA_AWS_MAX_ATTEMPTS", "2")
    t0 = time.monotonic()
    try:
        with pytest.raises(OfflineError, match=r"did not answer within 0.5 s \(the OSM extract "
                                               r"s3://b/x.osm.pbf\)") as ei:
            remote.fetch("s3://b/x.osm.pbf", tmp_path, what="the OSM extract", option="--osm")
    finally:
        stop.set()
        t.join(2)
        for c in conns:
            c.close()
        srv.close()
    assert time.monotonic() - t0 < 10
    assert "\n" not in str(ei.value) and "--osm PATH" in str(ei.value)
