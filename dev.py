#!/usr/bin/env python3
"""Developer entry point: set everything up, then run the demo or the test suite.

Needs nothing but ``python3`` (3.11+). Usage::

    python3 dev.py demo     # set up .venv, run the Helsinki demo job (local backend, offline)
    python3 dev.py test     # set up .venv (+ Chromium where possible), run ruff and the whole test suite
    python3 dev.py lab      # set up .venv, open JupyterLab on notebooks/ (kernel "Python 3 (PNA)")
    python3 dev.py setup    # only set up .venv
    python3 dev.py bench    # set up, run the benchmarks and refresh the README performance table
    python3 dev.py image    # build the job image from the Dockerfile (buildah, no Docker daemon)

The virtual environment lives in ``.venv`` next to this file and is reinstalled only when
``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".pna-installed"


def _run(cmd: list[str], **kw) -> int:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], **kw)


def _check(cmd: list[str], **kw) -> None:
    rc = _run(cmd, **kw)
    if rc != 0:
        sys.exit(rc)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs under any python3)
        sys.exit(f"PNA needs Python >= 3.11; this is {sys.version.split()[0]}. Install a newer python3.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        _compile()
        return
    if not PY.exists():
        print(f"Creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    _check([PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _check([PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"])
    _check([PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
            "--display-name", "Python 3 (PNA)"])
    STAMP.write_text(wanted)
    _compile()


def _compile() -> None:
    """Byte-compile the editable packages (quick when up to date): with
    PYTHONDONTWRITEBYTECODE set, every engine start would recompile them (~40 ms)."""
    subprocess.run([PY, "-m", "compileall", "-q", "pna_engine", "pna_helpers"], cwd=ROOT,
                   check=False, stdout=subprocess.DEVNULL)


# Debian packages the suite uses: the browser tests' chromium, and the osmium command that
# the job image carries (the engine's pre-clip of large extracts is tested with it).
DEBIAN_TOOLS = {"chromium": ("chromium", "chromium-browser"), "osmium-tool": ("osmium",)}


def ensure_debian_tools() -> None:
    """Install Debian's chromium and osmium-tool for the tests when we can (root + apt)."""
    missing = [pkg for pkg, exes in DEBIAN_TOOLS.items()
               if not any(shutil.which(exe) for exe in exes)]
    if not missing:
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"{', '.join(missing)} not found and cannot be installed here: the tests that need "
              f"them will skip (install Debian's {', '.join(missing)} to run them).", flush=True)
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if _run(["apt-get", "update", "-qq"], env=env) == 0:
        _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def demo(extra: list[str]) -> int:
    setup()
    return _run([BIN / "pna", "demo", *extra], cwd=ROOT)


def _image():
    """``tools/image.py``: the job image, built with buildah (stdlib only)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import image

    return image


def test(extra: list[str]) -> int:
    setup()
    ensure_debian_tools()
    _image().ensure_tools()  # buildah + debootstrap: the container tests build and run the image
    rc = _run([BIN / "ruff", "check", "."], cwd=ROOT)
    if rc != 0:
        return rc
    build = None if extra else _image().prebuild()  # the job image builds while the rest runs
    args = extra or ["-n", "2", "--dist", "loadfile"]
    rc = _run([PY, "-m", "pytest", *args], cwd=ROOT)
    if build:
        build.wait()
    return rc


def lab(extra: list[str]) -> int:
    """JupyterLab from .venv on notebooks/: it sees the "Python 3 (PNA)" kernel (python3) that
    setup() installs into .venv, which is the kernel the notebooks name."""
    setup()
    root = ["--allow-root"] if os.name == "posix" and os.geteuid() == 0 else []
    return _run([BIN / "jupyter", "lab", f"--ServerApp.root_dir={ROOT / 'notebooks'}", *root,
                 *extra], cwd=ROOT / "notebooks")


def bench(extra: list[str]) -> int:
    setup()
    return _run([PY, ROOT / "benchmarks" / "run_all.py", *extra], cwd=ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"setup", "demo", "test", "lab", "bench", "image"}:
        print(__doc__)
        return 2
    cmd, extra = argv[0], argv[1:]
    if cmd == "setup":
        setup()
        return 0
    if cmd == "image":
        return _image().main(extra)
    return {"demo": demo, "test": test, "lab": lab, "bench": bench}[cmd](extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
