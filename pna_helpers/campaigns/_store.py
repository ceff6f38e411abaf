"""Where campaigns are kept, next to the jobs they track.

* local backend: table ``campaigns`` in the job store ``outputs/jobs.sqlite`` (same WAL
  database and ``BEGIN IMMEDIATE`` transactions as the jobs);
* AWS: one JSON document per campaign at ``s3://BUCKET/campaigns/<name>.json`` (a single
  ``put_object``: atomic), and every Batch job of the campaign tagged ``pna:campaign``.

A campaign document is plain JSON (see :class:`~pna_helpers.campaigns.Campaign`), so a
notebook opened days later, on another machine for AWS, picks it up by name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pna_helpers.jobs.base import JobError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
S3_PREFIX = "campaigns/"

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
"""


def check_name(name: str) -> str:
    """A campaign name: letters, digits, ``.``, ``_``, ``-`` (1-100 characters)."""
    if not isinstance(name, str) or not NAME_RE.match(name.strip()):
        raise JobError(f"bad campaign name {name!r}: use 1-100 letters, digits, '.', '_' or '-' "
                       "(e.g. bna-2026)")
    return name.strip()


class LocalCampaignStore:
    """Campaign documents in the local job store's SQLite database."""

    def __init__(self, client: Any):
        self.store = client.store
        with self.store.connect() as con:
            con.executescript(SCHEMA)

    def create(self, doc: dict[str, Any]) -> None:
        with self.store.tx() as con:
            if con.execute("SELECT 1 FROM campaigns WHERE name = ?", (doc["name"],)).fetchone():
                raise JobError(f"campaign {doc['name']!r} already exists: choose another name "
                               "(see 'pna campaign list')")
            con.execute("INSERT INTO campaigns(name, created_at, updated_at, doc) "
                        "VALUES(?, ?, ?, ?)", (doc["name"], doc["created_at"],
                                               doc["updated_at"], json.dumps(doc)))

    def save(self, doc: dict[str, Any]) -> None:
        with self.store.tx() as con:
            con.execute("UPDATE campaigns SET updated_at = ?, doc = ? WHERE name = ?",
                        (doc["updated_at"], json.dumps(doc), doc["name"]))

    def load(self, name: str) -> dict[str, Any]:
        with self.store.connect() as con:
            r = con.execute("SELECT doc FROM campaigns WHERE name = ?", (name,)).fetchone()
        if r is None:
            raise JobError(f"unknown campaign {name!r} in {self.store.path} (see 'pna campaign "
                           "list')")
        return json.loads(r[0])

    def names(self) -> list[tuple[str, str]]:
        """(name, created_at), newest first."""
        with self.store.connect() as con:
            rows = con.execute("SELECT name, created_at FROM campaigns "
                               "ORDER BY created_at DESC").fetchall()
        return [(r[0], r[1]) for r in rows]


class S3CampaignStore:
    """Campaign documents in the results bucket (``campaigns/<name>.json``)."""

    def __init__(self, client: Any):
        self.aws = client.aws
        self.client = client

    def _key(self, name: str) -> str:
        return f"{S3_PREFIX}{name}.json"

    def _exists(self, name: str) -> bool:
        try:
            self.aws.call("s3", "head_object", Bucket=self.aws.bucket, Key=self._key(name))
            return True
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            from pna_helpers.jobs.aws import aws_error

            raise aws_error(exc, "reading the campaign store") from exc

    def create(self, doc: dict[str, Any]) -> None:
        if self._exists(doc["name"]):
            raise JobError(f"campaign {doc['name']!r} already exists in s3://{self.aws.bucket}/"
                           f"{S3_PREFIX}: choose another name (see 'pna campaign list')")
        self.save(doc)

    def save(self, doc: dict[str, Any]) -> None:
        self.client._guard("storing the campaign", self.aws.call, "s3", "put_object",
                           Bucket=self.aws.bucket, Key=self._key(doc["name"]),
                           Body=json.dumps(doc).encode(), ContentType="application/json")

    def load(self, name: str) -> dict[str, Any]:
        if not self._exists(name):
            raise JobError(f"unknown campaign {name!r} in s3://{self.aws.bucket}/{S3_PREFIX} "
                           "(see 'pna campaign list --backend aws')")
        body = self.client._guard("reading the campaign", self.aws.call, "s3", "get_object",
                                  Bucket=self.aws.bucket, Key=self._key(name))["Body"].read()
        return json.loads(body)

    def names(self) -> list[tuple[str, str]]:
        items = self.client._guard("listing campaigns", self.aws.paginate, "s3",
                                   "list_objects_v2", "Contents", Bucket=self.aws.bucket,
                                   Prefix=S3_PREFIX)
        out = [(o["Key"][len(S3_PREFIX):-5], o["LastModified"].isoformat()
                if hasattr(o.get("LastModified"), "isoformat") else str(o.get("LastModified")))
               for o in items if o["Key"].endswith(".json")]
        return sorted(out, key=lambda t: t[1], reverse=True)


def campaign_store(client: Any) -> LocalCampaignStore | S3CampaignStore:
    """The campaign store of a job client's backend."""
    return S3CampaignStore(client) if client.name == "aws" else LocalCampaignStore(client)
