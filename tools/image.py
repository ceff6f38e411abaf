"""Build and run the job image without a Docker daemon: Debian's ``buildah`` + ``debootstrap``.

Used by ``python3 dev.py image``, the container tests (``tests/test_container.py``) and
``benchmarks/bench_image.py``. Standard library only (``dev.py`` runs it before any venv).

* The base: Docker Hub may be unreachable, so ``python:3.11-slim`` is replaced by a Debian
  bookworm root filesystem (``debootstrap`` from the mirror this machine's apt sources use, with
  ``python3``, ``python3-venv`` and ``ca-certificates``; Debian's python3 is 3.11), imported once
  as ``localhost/pna-base:bookworm-<recipe hash>`` and kept in the container storage.
* The image: ``buildah build`` of the ``Dockerfile`` with ``--build-arg BASE=<that base>``, tagged
  ``localhost/pna-engine:<version>-<content hash>`` (Dockerfile, pyproject, engine sources, base)
  and ``localhost/pna-engine:<version>``; an unchanged tree reuses the image.
* pip inside the build uses what pip uses here: the CA bundle and the host's index settings
  (``pip config list``: index-url, extra-index-url, find-links, constraint, ...) are build
  secrets (``ca.crt``, ``pip.conf``), local index folders are mounted read-only; none of them
  ends up in the image.

Storage: ``STORAGE_DRIVER=vfs`` and ``BUILDAH_ISOLATION=chroot`` unless set (no daemon, no
overlay module, no user namespaces needed).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/pna-engine"
BASE = "localhost/pna-base"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: Bump when the base recipe below changes (the tag then changes and the base is rebuilt).
BASE_RECIPE = "1"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: The files that go into the image (``.dockerignore`` keeps the rest out of docker's context).
IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "pna_engine")
#: pip settings passed into the build (everything else of the host's configuration stays out).
PIP_KEYS = ("index-url", "extra-index-url", "find-links", "trusted-host", "constraint",
            "no-index", "default-timeout", "timeout", "retries", "prefer-binary", "only-binary")
LOCK = Path(tempfile.gettempdir()) / "pna-image-build.lock"
# debian:bookworm-slim's dpkg filter: no documentation, manuals or translations in the image
DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""


class ImageError(RuntimeError):
    """The image cannot be built here (message says why and what to do)."""


def environ() -> dict[str, str]:
    """The environment for buildah: vfs storage and chroot isolation unless chosen otherwise."""
    env = dict(os.environ)
    env.setdefault("STORAGE_DRIVER", "vfs")
    env.setdefault("BUILDAH_ISOLATION", "chroot")
    return env


def buildah_cmd(*args: str) -> list[str]:
    """``buildah`` with the storage driver of ``environ()`` (buildah 1.28 ignores the variable)."""
    return ["buildah", "--storage-driver", environ()["STORAGE_DRIVER"], *args]


def _log(msg: str) -> None:
    print(f"[image] {msg}", file=sys.stderr, flush=True)


def buildah(*args: str, capture: bool = True, check: bool = True) -> str:
    """Run ``buildah ARGS`` and return its stdout."""
    r = subprocess.run(buildah_cmd(*args), env=environ(), text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        tail = (r.stderr or "").strip().splitlines()[-5:] if capture else []
        raise ImageError(f"buildah {args[0]} failed (exit {r.returncode})"
                         + (": " + " | ".join(tail) if tail else ""))
    return r.stdout or ""


# --------------------------------------------------------------------------- tools
def ensure_tools() -> None:
    """Install Debian's ``buildah`` and ``debootstrap`` when missing and we can (root + apt)."""
    missing = [p for p, exe in (("buildah", "buildah"), ("debootstrap", "debootstrap"))
               if not shutil.which(exe) and not Path("/usr/sbin", exe).exists()]
    if not missing or os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _log("installing " + " ".join(missing))
    if subprocess.call(["apt-get", "update", "-qq"], env=env) == 0:
        subprocess.call(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                        env=env)


def unavailable_reason() -> str | None:
    """Why the image cannot be built and run here, or None when it can."""
    if os.name != "posix" or not shutil.which("buildah"):
        return "buildah is not installed (Debian: apt-get install buildah debootstrap)"
    if os.geteuid() != 0:
        return "building the image needs root (debootstrap, buildah with vfs storage)"
    if not (shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists()) \
            and not _exists(base_tag()):
        return "debootstrap is not installed (Debian: apt-get install debootstrap)"
    return None


# --------------------------------------------------------------------------- apt mirror
def _apt_entries() -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` source of this machine."""
    out: list[tuple[str, list[str]]] = []
    d = Path("/etc/apt")
    files = [d / "sources.list", *sorted((d / "sources.list.d").glob("*.list"))]
    for f in files:
        with contextlib.suppress(OSError):
            for line in f.read_text().splitlines():
                line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(line) >= 3 and line[0] == "deb":
                    out.append((line[1], [line[2]]))
    for f in sorted((d / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", f.read_text()):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        k, v = line.split(":", 1)
                        fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split() \
                        or fields.get("enabled", "yes").lower() == "no":
                    continue
                out += [(uri, fields.get("suites", "").split())
                        for uri in fields.get("uris", "").split()]
    return out


def apt_mirrors() -> tuple[str, str | None]:
    """The Debian mirror this machine's apt uses for bookworm, and its security mirror.

    ``PNA_DEBIAN_MIRROR`` overrides the first.
    """
    entries = _apt_entries()
    main = os.environ.get("PNA_DEBIAN_MIRROR") or next(
        (u for u, suites in entries if SUITE in suites), None)
    if not main:
        raise ImageError(f"no Debian {SUITE} mirror in /etc/apt/sources.list*: set "
                         "PNA_DEBIAN_MIRROR=http://<mirror>/debian")
    security = next((u for u, suites in entries if f"{SUITE}-security" in suites), None)
    return main.rstrip("/"), security.rstrip("/") if security else None


# --------------------------------------------------------------------------- base image
def _exists(ref: str) -> bool:
    return subprocess.run(buildah_cmd("inspect", "--type", "image", ref), env=environ(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _sources(main: str, security: str | None) -> str:
    text = (f"Types: deb\nURIs: {main}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    if security:
        text += (f"\nTypes: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
                 "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return text


def base_tag() -> str:
    main, security = apt_mirrors()
    recipe = json.dumps([BASE_RECIPE, SUITE, main, security, BASE_PACKAGES, DPKG_EXCLUDES])
    return f"{BASE}:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def build_base() -> str:
    """The local base image (debootstrap, once); return its tag."""
    tag = base_tag()
    if _exists(tag):
        return tag
    main, security = apt_mirrors()
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    _log(f"building the base {tag}: debootstrap {SUITE} from {main} (about a minute)")
    t0 = time.perf_counter()
    ctr = buildah("from", "scratch").strip()
    try:
        root = Path(buildah("mount", ctr).strip())
        r = subprocess.run([debootstrap, "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
                            SUITE, str(root), main], text=True, capture_output=True)
        if r.returncode != 0:
            raise ImageError(f"debootstrap failed: {(r.stdout + r.stderr).strip()[-600:]}")
        (root / "etc/dpkg/dpkg.cfg.d/docker").write_text(DPKG_EXCLUDES)
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(_sources(main, security))
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/man",
                    "usr/share/locale", "usr/share/info", "var/log"):
            for p in (root / sub).glob("*"):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif p.name != "lock":
                    p.unlink()
        for p in (root / "usr/share/doc").glob("*/*"):
            if p.name != "copyright":
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        for p in (root / "var/cache/apt").glob("*.bin"):
            p.unlink()
        buildah("umount", ctr)
        buildah("config", "--env", "LANG=C.UTF-8", "--cmd", "python3",
                "--label", f"org.opencontainers.image.description=Debian {SUITE} (debootstrap "
                f"from {main}) + {' '.join(BASE_PACKAGES)}: local base of the PNA image", ctr)
        buildah("commit", "--quiet", "--rm", ctr, tag)
        ctr = ""
    finally:
        if ctr:
            buildah("rm", ctr, check=False)
    _log(f"base {tag} built in {time.perf_counter() - t0:.0f} s")
    return tag


# --------------------------------------------------------------------------- pip settings
def _pip_config() -> dict[str, str]:
    """The pip settings in force here (``pip config list``; environment over files)."""
    found: dict[str, tuple[int, str]] = {}
    for py in (sys.executable, str(ROOT / ".venv" / "bin" / "python")):
        r = subprocess.run([py, "-m", "pip", "config", "list"], capture_output=True, text=True,
                           env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
        if r.returncode == 0:
            break
    else:
        return {}
    rank = {":env:": 3, "install": 2, "global": 1}
    for line in r.stdout.splitlines():
        m = re.match(r"^([^.]*)\.([\w-]+)=(.*)$", line.strip())
        if not m or m.group(1) not in rank:
            continue
        value = m.group(3)
        with contextlib.suppress(ValueError):
            value = " ".join(shlex.split(value))
        if rank[m.group(1)] >= found.get(m.group(2), (0, ""))[0]:
            found[m.group(2)] = (rank[m.group(1)], value)
    return {k: v for k, (_, v) in found.items()}


def _local_path(token: str) -> str | None:
    path = unquote(urlparse(token).path) if token.startswith("file://") else token
    return path if path.startswith("/") and Path(path).exists() else None


def pip_settings() -> tuple[dict[str, list[str]], list[str], str | None]:
    """The host's pip index settings ({key: values}), the local files and folders they name
    (a PEP 503 tree's parent: its pages link to ``../../files/``), and the CA bundle."""
    cfg = _pip_config()
    settings = {k: cfg[k].split() for k in PIP_KEYS if k in cfg}
    paths = []
    for tokens in settings.values():
        for path in filter(None, map(_local_path, tokens)):
            paths.append(str(Path(path).parent) if Path(path).name == "simple" else path)
    ca = cfg.get("cert") or os.environ.get("PIP_CERT") or CA_BUNDLE
    return settings, paths, ca if Path(ca).is_file() else None


def pip_conf(settings: dict[str, list[str]], local_url: str) -> str:
    """pip.conf for the build: local paths become ``local_url`` + path (see :func:`_serve`; a
    bind mount would leave its mount point in the image)."""
    lines = ["[global]"]
    for key, tokens in settings.items():
        out = []
        for token in tokens:
            path = _local_path(token)
            out.append(local_url + quote(path) + ("/" if Path(path).is_dir() else "")
                       if path else token)
        lines.append(f"{key} = {' '.join(out)}")
    if any(_local_path(t) for tokens in settings.values() for t in tokens):
        lines.append(f"trusted-host = {urlparse(local_url).netloc}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _serve(paths: list[str]):
    """Serve these local files and folders (read-only, nothing else) on a loopback port;
    yield its URL."""
    import http.server
    import threading

    allowed = [os.path.realpath(p) for p in paths]

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            real = os.path.realpath(unquote(urlparse(path).path))
            ok = any(real == a or real.startswith(a.rstrip("/") + "/") for a in allowed)
            return real if ok else "/nonexistent/"

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- engine image
def engine_version() -> str:
    text = (ROOT / "pna_engine" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def content_hash(base: str) -> str:
    """Hash of everything the image is made of: the build inputs and the base image id
    (pyproject's ``[tool.*]`` tables but setuptools' - ruff, pytest - are left out: they change
    nothing in it)."""
    h = hashlib.sha256()
    for name in IMAGE_INPUTS:
        p = ROOT / name
        files = sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts) \
            if p.is_dir() else [p]
        for f in files:
            if not f.exists():
                continue
            data = f.read_bytes()
            if f.name == "pyproject.toml":
                tables = re.split(rb"(?m)^(?=\[)", data)
                data = b"".join(t for t in tables if not t.startswith(b"[tool.")
                                or t.startswith(b"[tool.setuptools"))
            h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + data + b"\0")
    h.update(buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", base).encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _locked():
    """One build at a time on this machine (pytest workers, several shells)."""
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(*, quiet: bool = False) -> str:
    """Build the image unless an image of the same content exists; return its tag."""
    reason = unavailable_reason()
    if reason:
        raise ImageError(reason)
    with _locked():
        base = build_base()
        version = engine_version()
        tag = f"{IMAGE}:{version}-{content_hash(base)}"
        if not _exists(tag):
            _build(tag, base, version, quiet)
        buildah("tag", tag, f"{IMAGE}:{version}")
        _prune(tag, version)
    return tag


def _build(tag: str, base: str, version: str, quiet: bool) -> None:
    _log(f"building {tag} from the Dockerfile on {base}")
    t0 = time.perf_counter()
    settings, paths, ca = pip_settings()
    with tempfile.TemporaryDirectory(prefix="pna-image-") as tmp, _serve(paths) as url:
        conf = Path(tmp) / "pip.conf"
        conf.write_text(pip_conf(settings, url))
        args = ["build", "--layers=false", "--pull=never", "--network", "host",
                "--build-arg", f"BASE={base}", "--build-arg", f"PNA_VERSION={version}",
                "--secret", f"id=pip.conf,src={conf}", "--tag", tag]
        if ca:
            args += ["--secret", f"id=ca.crt,src={ca}"]
        args += ["--file", str(ROOT / "Dockerfile"), str(ROOT)]
        if quiet:
            buildah(*args)
        else:
            print("+ buildah " + " ".join(shlex.quote(a) for a in args), flush=True)
            buildah(*args, capture=False)
    _log(f"built {tag} in {time.perf_counter() - t0:.0f} s")


def _prune(keep: str, version: str) -> None:
    """Remove this repository's older content tags (vfs keeps a full copy per image)."""
    for line in buildah("images", "--format", "{{.Name}}:{{.Tag}}", "--filter",
                        f"reference={IMAGE}").splitlines():
        ref = line.strip()
        if ref and ref not in (keep, f"{IMAGE}:{version}") and re.search(r"-[0-9a-f]{12}$", ref):
            buildah("rmi", ref, check=False)


def inspect(ref: str) -> dict:
    """The image's OCI config (``config``: User, Env, Entrypoint, Cmd, Labels, ...) and size."""
    data = json.loads(buildah("inspect", "--type", "image", ref))
    size = sum(int(layer["size"]) for layer in json.loads(data["Manifest"])["layers"])
    return {"config": data["OCIv1"]["config"], "size": size}


def image_size(ref: str) -> int:
    """Uncompressed size in bytes: the sum of its layers (what ``docker images`` shows)."""
    data = json.loads(buildah("inspect", "--type", "image", ref))
    return sum(int(layer["size"]) for layer in json.loads(data["Manifest"])["layers"])


# --------------------------------------------------------------------------- running it
def create(ref: str) -> str:
    """A working container of the image (``buildah from``); return its name."""
    return buildah("from", "--pull-never", ref).strip()


def run_argv(ctr: str, argv: list[str], env: dict[str, str] | None = None,
             volumes: dict[str, str] | None = None) -> list[str]:
    """The command that runs ``argv`` in ``ctr`` as the image's user, on the host's network
    (so loopback emulators are reachable), with ``volumes`` {host path: path inside} read-only."""
    cmd = buildah_cmd("run", "--isolation", environ()["BUILDAH_ISOLATION"], "--network", "host")
    for host, inside in (volumes or {}).items():
        cmd += ["--volume", f"{host}:{inside}:ro"]
    for k, v in (env or {}).items():
        cmd += ["--env", f"{k}={v}"]
    return [*cmd, ctr, "--", *argv]


def job_argv(config: dict, command: list[str] | None = None) -> list[str]:
    """What the container starts: ENTRYPOINT + (the job's command override, else CMD)."""
    return list(config.get("Entrypoint") or []) + list(command or config.get("Cmd") or [])


#: What ``buildah run`` itself adds to stderr after a command exits non-zero.
_BUILDAH_EXIT = re.compile(r"^(subprocess exited with status \d+|Error: exit status \d+)$")


def container_stderr(err: str) -> str:
    """The container's own stderr: ``buildah run``'s closing report lines removed."""
    lines = err.splitlines()
    while lines and _BUILDAH_EXIT.match(lines[-1].strip()):
        lines.pop()
    return "\n".join(lines) + ("\n" if lines else "")


def remove(ctr: str) -> None:
    buildah("rm", ctr, check=False)


def prebuild() -> subprocess.Popen | None:
    """Start building the image in the background (``dev.py test``: the container tests then
    find it built, or wait for it on the lock, instead of building it themselves late in the
    run); None where it cannot be built."""
    if unavailable_reason():
        return None
    return subprocess.Popen([sys.executable, __file__, "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    """``python3 dev.py image``: install the tools, build (or reuse) the image, print its size."""
    quiet = "--quiet" in (argv or [])
    ensure_tools()
    t0 = time.perf_counter()
    try:
        tag = build(quiet=quiet)
    except ImageError as exc:
        print(f"dev.py image: error: {exc}", file=sys.stderr)
        return 2
    size = image_size(tag)
    version = engine_version()
    print(f"{tag} (also {IMAGE}:{version}): {size / 1e6:.0f} MB, "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"push it (README, AWS setup): buildah --storage-driver {environ()['STORAGE_DRIVER']} "
          f"push {IMAGE}:{version} docker://$REPO:{version}; then PNA_IMAGE=$REPO:{version} "
          "pna stack up")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
