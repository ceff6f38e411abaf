"""A real HTTP server on 127.0.0.1 (random port) serving a temporary folder, for download tests.

Use the fixture by importing it into a test module::

    from httpfolder import http_folder  # noqa: F401

``http_folder`` yields ``(root, base_url)``; files written under ``root`` are served at
``base_url + "/" + relative path``. Directory URLs get the standard ``http.server`` listing
page (like the LEHD directory listings). ``requests_log`` of the handler class records paths.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests_log: list[str] = []

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        type(self).requests_log.append(self.path)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    _QuietHandler.requests_log = []
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
