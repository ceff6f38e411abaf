"""Client-side file transfer for the AWS backend.

A Batch container cannot see the submitting machine's files, so local input paths of a request
are uploaded first, content-addressed: ``s3://BUCKET/inputs/<digest>/<name>``, the digest of
:func:`input_digest` (for a shapefile: of the ``.shp`` and every sidecar file, which go to the same
prefix, so changing any of them gives a new prefix). Uploading the same input twice is a no-op.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pna_engine.params import input_roles
from pna_engine.remote import SHAPEFILE_SIDECARS
from pna_helpers.jobs.request import AnalysisRequest, is_url


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's content, as hex (read in 1 MB chunks).

    Parameters
    ----------
    path
        A local file.

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def shapefile_members(path: str | Path) -> list[Path]:
    """The files of one input: the file itself, and for a ``.shp`` its sidecars next to it.

    Parameters
    ----------
    path : str or Path
        A local input file.

    Returns
    -------
    list of Path
        ``path`` first; for a ``.shp``, then its ``.shx``, ``.dbf``, ``.prj`` and ``.cpg``
        files that exist (:data:`~pna_engine.remote.SHAPEFILE_SIDECARS` order; the extension
        in any case, the name otherwise exactly the ``.shp``'s).
    """
    p = Path(path)
    if p.suffix.lower() != ".shp":
        return [p]
    found: dict[str, Path] = {}
    for q in sorted(p.parent.iterdir()) if p.parent.is_dir() else []:
        ext = q.suffix.lower()
        if q.stem == p.stem and ext in SHAPEFILE_SIDECARS and q.is_file():
            found.setdefault(ext, q)
    return [p] + [found[e] for e in SHAPEFILE_SIDECARS if e in found]


def input_digest(path: str | Path) -> str:
    """The content digest naming an input's upload prefix (hex SHA-256).

    A single file: the SHA-256 of its content. A shapefile: the SHA-256 over every file of
    the set (:func:`shapefile_members`: the ``.shp`` and its ``.shx``, ``.dbf``, ``.prj``,
    ``.cpg``), each as its lower-case extension and content digest, so changing, adding or
    removing any sidecar gives a new digest (and a new prefix, never a stale cached copy).

    Parameters
    ----------
    path : str or Path
        A local input file.

    Returns
    -------
    str
        64 hex digits.
    """
    if Path(path).suffix.lower() != ".shp":
        return sha256_file(Path(path))
    h = hashlib.sha256(b"pna-shapefile-set\n")
    for f in shapefile_members(path):
        h.update(f"{f.suffix.lower()} {sha256_file(f)}\n".encode())
    return h.hexdigest()


def upload_input(s3: Any, bucket: str, path: str | Path) -> str:
    """Upload one local input (with its shapefile sidecars); return its ``s3://`` URI.

    The key is ``inputs/<input_digest>/<file name>`` (:func:`input_digest`: for a shapefile,
    of the whole set); files already in the bucket are not uploaded again.

    Parameters
    ----------
    s3 : Any
        A boto3 S3 client.
    bucket : str
        The bucket name.
    path : str or Path
        The local file; for a ``.shp`` its ``.shx``, ``.dbf``, ``.prj`` and ``.cpg`` files
        next to it go to the same prefix (named as the engine fetches them: the ``.shp``'s
        name with the lower-case sidecar extension).

    Returns
    -------
    str
        ``s3://BUCKET/inputs/<digest>/<name>``.
    """
    p = Path(path)
    prefix = f"inputs/{input_digest(p)}/"
    for f in shapefile_members(p):
        key = prefix + (p.name if f == p else p.name[:-len(p.suffix)] + f.suffix.lower())
        if not _exists(s3, bucket, key):
            s3.upload_file(str(f), bucket, key)
    return f"s3://{bucket}/{prefix}{p.name}"


def stage_request(request: AnalysisRequest, s3: Any, bucket: str) -> AnalysisRequest:
    """A copy of ``request`` whose local inputs are uploaded and replaced by ``s3://`` URIs.

    Parameters
    ----------
    request : AnalysisRequest
        The request; URL inputs (``http(s)://``, ``s3://``) are kept as they are.
    s3 : Any
        A boto3 S3 client.
    bucket : str
        The bucket to upload to (see :func:`upload_input`).

    Returns
    -------
    AnalysisRequest
        A new request (``request`` is not changed), not validated again.
    """
    d = request.to_dict()
    for role in input_roles():
        if d.get(role) and not is_url(d[role]):
            d[role] = upload_input(s3, bucket, d[role])
    d["jobs"] = [j if is_url(j) else upload_input(s3, bucket, j) for j in d.get("jobs") or []]
    return AnalysisRequest.from_dict(d, check_files=False)
