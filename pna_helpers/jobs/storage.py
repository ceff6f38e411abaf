"""Client-side file transfer for the AWS backend.

A Batch container cannot see the submitting machine's files, so local input paths of a request
are uploaded first, content-addressed: ``s3://BUCKET/inputs/<sha256>/<name>`` (a shapefile's
sidecar files go to the same prefix). Uploading the same file twice is a no-op.
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


def upload_input(s3: Any, bucket: str, path: str | Path) -> str:
    """Upload one local input (with its shapefile sidecars); return its ``s3://`` URI.

    The key is ``inputs/<sha256 of the file>/<file name>``; files already in the bucket are
    not uploaded again.

    Parameters
    ----------
    s3 : Any
        A boto3 S3 client.
    bucket : str
        The bucket name.
    path : str or Path
        The local file; for a ``.shp`` its ``.shx``, ``.dbf``, ``.prj`` and ``.cpg`` files
        next to it go to the same prefix.

    Returns
    -------
    str
        ``s3://BUCKET/inputs/<sha256>/<name>``.
    """
    p = Path(path)
    prefix = f"inputs/{sha256_file(p)}/"
    files = [p]
    if p.suffix.lower() == ".shp":
        files += [q for q in p.parent.glob(p.stem + ".*")
                  if q.suffix.lower() in SHAPEFILE_SIDECARS]
    for f in files:
        key = prefix + f.name
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
