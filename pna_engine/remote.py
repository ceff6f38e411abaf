"""Remote I/O: local paths, ``http(s)://`` URLs and ``s3://`` URIs behind one small registry.

In the style of papermill's ``iorw``: each URL scheme has a handler (:class:`LocalHandler`,
:class:`HttpHandler`, :class:`S3Handler`) registered in :data:`HANDLERS`; the functions below
pick the handler of a location and do the rest once for all schemes:

* :func:`is_remote` - is it a URL (``http``, ``https``, ``s3``)?
* :func:`fetch` - a local file for a location: a local path as is; a URL downloaded into a
  folder, or into the download cache (kept, keyed by the URL). A shapefile (``.shp``) brings its
  sidecar files (:data:`SHAPEFILE_SIDECARS`). Writes are atomic: an interrupted download never
  looks complete.
* :func:`read_text` - the text of a location (a manifest, an index).
* :func:`put` - upload a local file to a location (``s3://`` or a local path).
* :func:`list_files` - the files under a location (an S3 prefix or a local folder).
* :func:`aws_client` - one cached boto3 client per service with the project's timeouts and
  retries (``PNA_AWS_CONNECT_TIMEOUT``, ``PNA_AWS_READ_TIMEOUT``, ``PNA_AWS_MAX_ATTEMPTS``),
  honouring ``AWS_ENDPOINT_URL`` (emulators) and the usual credentials.

Errors are :class:`~pna_engine.errors.InputError` naming the location, what it is and the option
that gives it; an unreachable server (or ``offline=True``) is an
:class:`~pna_engine.errors.OfflineError`.

A new scheme is one class with ``fetch``, ``read``, ``put`` and ``list`` and a line
``register("scheme", Handler())``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from pna_engine.atomic import atomic_path
from pna_engine.errors import InputError, OfflineError

#: Files that travel with a ``.shp`` (GDAL needs them next to it).
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
#: Seconds to wait for an HTTP server to answer (connect, read) before calling it unreachable.
HTTP_TIMEOUT = (10, 120)
#: AWS client defaults: connect and read timeouts (s), attempts (botocore "standard" retries).
AWS_CONNECT_TIMEOUT = 10.0
AWS_READ_TIMEOUT = 30.0
AWS_MAX_ATTEMPTS = 3
#: Default download cache (``PNA_CACHE_DIR`` or a run's ``cache_dir`` override it).
DEFAULT_CACHE_DIR = "~/.cache/pna"


class Hint:
    """Words for error messages: what a file is and the option that gives it."""

    def __init__(self, what: str = "input", option: str | None = None):
        self.what = what
        self.option = option

    def instead(self) -> str:
        """``; pass --osm PATH with a local file`` (empty without an option)."""
        return f"; pass {self.option} PATH with a local file" if self.option else ""


class Handler(Protocol):
    """What a scheme handler does (all locations are full URIs of its scheme)."""

    def fetch(self, uri: str, dest: Path, hint: Hint) -> None:
        """Download ``uri`` to the file ``dest`` (atomically)."""

    def read(self, uri: str, hint: Hint) -> bytes:
        """The bytes at ``uri``."""

    def put(self, path: Path, uri: str) -> None:
        """Upload the local file ``path`` to ``uri``."""

    def list(self, uri: str) -> list[tuple[str, int]]:
        """``(path relative to uri, size)`` of every file under ``uri``."""


#: Scheme (``""`` for local paths) -> handler.
HANDLERS: dict[str, Handler] = {}


def register(scheme: str, handler: Handler) -> None:
    """Make ``handler`` serve locations ``scheme://...``."""
    HANDLERS[scheme.lower()] = handler


def scheme_of(location: str | os.PathLike[str]) -> str:
    """``s3``, ``http``, ``https``, or ``""`` for a local path."""
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", str(location))
    return m.group(1).lower() if m else ""


def is_remote(location: Any) -> bool:
    """True for ``http://``, ``https://`` and ``s3://`` locations (any registered URL scheme)."""
    return isinstance(location, str) and scheme_of(location) != "" \
        and scheme_of(location) in HANDLERS


def _handler(location: str) -> Handler:
    scheme = scheme_of(location)
    if scheme not in HANDLERS:
        raise InputError(f"unsupported URL scheme in {location!r}; use a path, http(s):// or s3://")
    return HANDLERS[scheme]


def file_name(location: str) -> str:
    """The file name at the end of a path or URL (``download`` if it has none)."""
    return unquote(Path(urlparse(str(location)).path).name) or "download"


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)`` (the key may be empty).

    Raises
    ------
    InputError
        Not an ``s3://bucket...`` URI.
    """
    m = re.match(r"^s3://([^/]+)/?(.*)$", uri, re.I)
    if not m:
        raise InputError(f"bad S3 URI {uri!r}: expected s3://bucket/key")
    return m.group(1), m.group(2)


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The download cache folder (created): ``explicit``, else ``$PNA_CACHE_DIR``, else
    ``~/.cache/pna``."""
    path = Path(explicit or os.environ.get("PNA_CACHE_DIR") or DEFAULT_CACHE_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_path(url: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Where ``url`` is (or would be) kept in the cache: ``<cache>/<sha of url>/<file name>``."""
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return cache_dir(cache) / key / file_name(url)


def _sidecars(location: str) -> list[str]:
    if not location.lower().endswith(".shp"):
        return []
    return [location[:-4] + ext for ext in SHAPEFILE_SIDECARS]


def fetch(location: str | os.PathLike[str], dest_dir: str | os.PathLike[str] | None = None, *,
          cache: str | os.PathLike[str] | None = None, offline: bool = False,
          what: str = "input", option: str | None = None) -> Path:
    """A local file for ``location``, downloading it if it is a URL.

    Parameters
    ----------
    location
        Local path, ``http(s)://`` URL or ``s3://bucket/key``.
    dest_dir
        Download into this folder (always). Default: the download cache (``cache``, else
        ``$PNA_CACHE_DIR``, else ``~/.cache/pna``), where a URL is downloaded once.
    offline
        Never download: a URL not in the cache is an :class:`OfflineError`.
    what, option
        Words for error messages: what the file is, and the option that gives it.

    Returns
    -------
    pathlib.Path
        The local file (a shapefile's sidecars, where the server has them, lie next to it).

    Raises
    ------
    InputError
        A local file is missing, or the server answered with an error.
    OfflineError
        ``offline`` was given or the server is unreachable.
    """
    hint = Hint(what, option)
    loc = str(location)
    if not is_remote(loc):
        p = Path(loc).expanduser()
        if not p.exists():
            raise InputError(f"{what} not found: {p}" + (f" (check {option})" if option else ""))
        return p
    handler = _handler(loc)
    dest = (Path(dest_dir) / file_name(loc)) if dest_dir is not None else cached_path(loc, cache)
    if dest_dir is None and dest.exists():
        return dest
    if offline:
        raise OfflineError(f"{what} must be downloaded from {loc} but --offline was given; "
                           f"download it yourself" + (f" and pass {option} PATH" if option else ""))
    dest.parent.mkdir(parents=True, exist_ok=True)
    handler.fetch(loc, dest, hint)
    for side in _sidecars(loc):  # optional: a shapefile may lack .cpg or .prj
        try:
            handler.fetch(side, dest.parent / file_name(side), hint)
        except OfflineError:
            raise
        except InputError:
            continue
    return dest


def read_text(location: str | os.PathLike[str], *, what: str = "input",
              option: str | None = None) -> str:
    """The text (UTF-8) at a path or URL, not cached.

    Raises
    ------
    InputError, OfflineError
        As :func:`fetch`.
    """
    loc = str(location)
    return _handler(loc).read(loc, Hint(what, option)).decode("utf-8")


def put(path: str | os.PathLike[str], location: str | os.PathLike[str]) -> None:
    """Upload the local file ``path`` to ``location`` (``s3://bucket/key`` or a local path,
    written atomically).

    Raises
    ------
    InputError
        The store refused (the message names the location).
    """
    loc = str(location)
    _handler(loc).put(Path(path), loc)


def list_files(location: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """``(relative path, size in bytes)`` of every file under a folder or ``s3://`` prefix.

    Raises
    ------
    InputError
        The location cannot be listed (HTTP cannot), or the store refused.
    """
    loc = str(location)
    return _handler(loc).list(loc)


def join(location: str, name: str) -> str:
    """``location`` + ``/`` + ``name`` for a folder path or a URL prefix."""
    if is_remote(location):
        return location.rstrip("/") + "/" + name
    return str(Path(location) / name)


# --------------------------------------------------------------------------- local
class LocalHandler:
    """Local paths."""

    @staticmethod
    def _path(uri: str) -> Path:
        return Path(uri).expanduser()

    def fetch(self, uri: str, dest: Path, hint: Hint) -> None:
        with atomic_path(dest) as tmp:
            shutil.copyfile(self._path(uri), tmp)

    def read(self, uri: str, hint: Hint) -> bytes:
        try:
            return self._path(uri).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {hint.what} {uri}: {exc.strerror or exc}") from exc

    def put(self, path: Path, uri: str) -> None:
        dest = self._path(uri)
        if dest.resolve() == Path(path).resolve():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)

    def list(self, uri: str) -> list[tuple[str, int]]:
        root = self._path(uri)
        if not root.is_dir():
            return []
        return [(p.relative_to(root).as_posix(), p.stat().st_size)
                for p in sorted(root.rglob("*")) if p.is_file()]


# --------------------------------------------------------------------------- http(s)
class HttpHandler:
    """``http://`` and ``https://`` (read only), with :data:`HTTP_TIMEOUT`."""

    def fetch(self, uri: str, dest: Path, hint: Hint) -> None:
        import requests

        try:
            with requests.get(uri, stream=True, timeout=HTTP_TIMEOUT) as r:
                self._check(r, uri, hint)
                with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                    for chunk in r.iter_content(chunk_size=1 << 20):
                        f.write(chunk)
        except requests.RequestException as exc:
            raise self._error(exc, uri, hint) from exc

    def read(self, uri: str, hint: Hint) -> bytes:
        import requests

        try:
            r = requests.get(uri, timeout=HTTP_TIMEOUT)
            self._check(r, uri, hint)
            return r.content
        except requests.RequestException as exc:
            raise self._error(exc, uri, hint) from exc

    def put(self, path: Path, uri: str) -> None:
        raise InputError(f"cannot upload to {uri}: give a folder or an s3:// location")

    def list(self, uri: str) -> list[tuple[str, int]]:
        raise InputError(f"cannot list the files under {uri}: give a folder or an s3:// location")

    @staticmethod
    def _check(r: Any, uri: str, hint: Hint) -> None:
        if r.status_code >= 400:
            check = f"; check the address or pass {hint.option} PATH" if hint.option else \
                "; check the address"
            raise InputError(f"could not download {hint.what} from {uri}: HTTP {r.status_code}"
                             + check)

    @staticmethod
    def _error(exc: Exception, uri: str, hint: Hint) -> InputError:
        import requests

        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            return OfflineError(f"could not download {hint.what} from {uri}: network unreachable "
                                f"({type(exc).__name__})" + hint.instead())
        return InputError(f"the download of {hint.what} from {uri} was interrupted "
                          f"({type(exc).__name__}); try again" + hint.instead())


# --------------------------------------------------------------------------- s3
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise InputError(f"{name} must be a positive number, got {os.environ.get(name)!r}")
    return value


def aws_client(service: str, *, region: str | None = None, endpoint_url: str | None = None,
               connect_timeout: float | None = None, read_timeout: float | None = None,
               max_attempts: int | None = None) -> Any:
    """A boto3 client for ``service`` with the project's timeouts and retries, cached.

    Parameters
    ----------
    service
        ``s3``, ``batch``, ``logs``, ...
    region
        Default: ``PNA_REGION``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, else ``us-east-1``.
    endpoint_url
        Default: ``AWS_ENDPOINT_URL_<SERVICE>`` or ``AWS_ENDPOINT_URL`` (emulators).
    connect_timeout, read_timeout, max_attempts
        Default: ``PNA_AWS_CONNECT_TIMEOUT`` (10 s), ``PNA_AWS_READ_TIMEOUT`` (30 s),
        ``PNA_AWS_MAX_ATTEMPTS`` (3 attempts in all, botocore's bounded "standard" retry
        mode).

    Returns
    -------
    botocore.client.BaseClient
        One client per set of arguments (and credentials in the environment), shared between
        threads (boto3 clients are thread-safe; each is made from its own session).
    """
    region = (region or os.environ.get("PNA_REGION") or os.environ.get("AWS_REGION")
              or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    endpoint_url = (endpoint_url or os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
                    or os.environ.get("AWS_ENDPOINT_URL") or None)
    connect, read, attempts = aws_limits(connect_timeout, read_timeout, max_attempts)
    creds = (os.environ.get("AWS_PROFILE"), os.environ.get("AWS_ACCESS_KEY_ID"))
    key = (service, region, endpoint_url, connect, read, attempts, creds)
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=connect, read_timeout=read,
                            retries={"mode": "standard", "total_max_attempts": attempts})
            client = boto3.session.Session().client(
                service, region_name=region, endpoint_url=endpoint_url, config=config)
            client.meta.events.register_first("needs-retry", _no_retry_after_read_timeout)
            _clients[key] = client
        return _clients[key]


def _no_retry_after_read_timeout(caught_exception: BaseException | None = None,
                                 **_: Any) -> None:
    """botocore ``needs-retry`` hook: a read timeout ends the call at once. The request may
    have been received (a second ``SubmitJob`` would start a second job), and an endpoint that
    accepted the connection but stays silent rarely answers the next attempt - so a silent
    endpoint costs one read timeout, not ``attempts`` of them."""
    from botocore.exceptions import ReadTimeoutError

    if isinstance(caught_exception, ReadTimeoutError):
        raise caught_exception


def aws_limits(connect_timeout: float | None = None, read_timeout: float | None = None,
               max_attempts: int | None = None) -> tuple[float, float, int]:
    """(connect timeout, read timeout, attempts) as :func:`aws_client` uses them."""
    return (connect_timeout or _env_float("PNA_AWS_CONNECT_TIMEOUT", AWS_CONNECT_TIMEOUT),
            read_timeout or _env_float("PNA_AWS_READ_TIMEOUT", AWS_READ_TIMEOUT),
            int(max_attempts or _env_float("PNA_AWS_MAX_ATTEMPTS", AWS_MAX_ATTEMPTS)))


def timeout_message(exc: BaseException, what: str = "", *,
                    connect_timeout: float | None = None, read_timeout: float | None = None,
                    max_attempts: int | None = None) -> str | None:
    """``the AWS endpoint URL did not answer within N s (WHAT); ...`` when ``exc`` (or an
    exception it was raised from) is a botocore read or connect timeout, else None. The limits
    are those the client was made with (default: the environment, see :func:`aws_client`)."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen:
        seen.append(e)
        if isinstance(e, ReadTimeoutError | ConnectTimeoutError):
            url = (getattr(e, "kwargs", None) or {}).get("endpoint_url") or "?"
            if "://" in url:  # the endpoint, not the operation's path
                parts = urlparse(url)
                url = f"{parts.scheme}://{parts.netloc}"
            connect, read, attempts = aws_limits(connect_timeout, read_timeout, max_attempts)
            if isinstance(e, ReadTimeoutError):
                how, waited, knob = "did not answer within", read, "PNA_AWS_READ_TIMEOUT"
            else:
                how = f"did not accept a connection in {attempts} attempts within"
                waited, knob = connect * attempts, "PNA_AWS_CONNECT_TIMEOUT"
            for_what = f" ({what})" if what else ""
            return (f"the AWS endpoint {url} {how} {waited:g} s{for_what}; check the network, "
                    f"the region and AWS_ENDPOINT_URL, or raise {knob}")
        e = e.__cause__ or e.__context__
    return None


def s3_error(uri: str, exc: Exception, hint: Hint | None = None) -> InputError:
    """A one-line error for a failed S3 operation on ``uri``."""
    hint = hint or Hint()
    name = type(exc).__name__
    err = (getattr(exc, "response", None) or {}).get("Error") or {}
    code = err.get("Code", name)
    if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
        return InputError(f"{uri} does not exist: check the URI" + hint.instead())
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return InputError(f"no AWS credentials to access {uri}: configure them (AWS_PROFILE, "
                          "environment or an instance role)")
    silent = timeout_message(exc, f"{hint.what} {uri}")
    if silent is not None:
        return OfflineError(silent + hint.instead().replace("; pass", "; or pass"))
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError"):
        return OfflineError(f"could not reach S3 for {hint.what} {uri}: endpoint unreachable "
                            f"({name})" + hint.instead())
    msg = err.get("Message") or str(exc)
    return InputError(f"cannot access {uri} ({code}): {msg.splitlines()[0] if msg else name}")


class S3Handler:
    """``s3://bucket/key`` through :func:`aws_client`."""

    def fetch(self, uri: str, dest: Path, hint: Hint) -> None:
        bucket, key = split_s3(uri)
        try:
            with atomic_path(dest) as tmp:
                aws_client("s3").download_file(bucket, key, str(tmp))
        except Exception as exc:
            raise s3_error(uri, exc, hint) from exc

    def read(self, uri: str, hint: Hint) -> bytes:
        bucket, key = split_s3(uri)
        try:
            return aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise s3_error(uri, exc, hint) from exc

    def put(self, path: Path, uri: str) -> None:
        bucket, key = split_s3(uri)
        try:
            aws_client("s3").upload_file(str(path), bucket, key)
        except Exception as exc:
            raise s3_error(uri, exc) from exc

    def list(self, uri: str) -> list[tuple[str, int]]:
        bucket, prefix = split_s3(uri)
        prefix = prefix.strip("/")
        out = []
        try:
            pages = aws_client("s3").get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(prefix):].lstrip("/") if prefix else obj["Key"]
                    if rel and not rel.endswith("/"):
                        out.append((rel, int(obj["Size"])))
        except Exception as exc:
            raise s3_error(uri, exc) from exc
        return out


register("", LocalHandler())
register("http", HttpHandler())
register("https", HttpHandler())
register("s3", S3Handler())
