"""Playwright on Debian's chromium (``executable_path``; Playwright's own browser download is
not needed) for the browser tests: the launch arguments, why a test must skip, the ``browser`` fixture is in ``conftest.py``."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def missing(*modules: str) -> str | None:
    """Why browser tests cannot run here (``None`` when they can)."""
    if CHROMIUM is None:
        return "headless Chromium not found: install Debian's 'chromium' package"
    for mod in ("playwright.sync_api", *modules):
        try:
            __import__(mod)
        except ImportError:
            return f"{mod.split('.')[0]} is not installed (pip install -e '.[dev]')"
    return None

