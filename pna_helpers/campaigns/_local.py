"""Campaign operations on the local backend: one job per place in the SQLite job store,
read back with one query per 500 places (no per-job API calls)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pna_helpers.jobs.model import ACTIVE, CANCELLED, FAILED, RUNNING, STARTING

CHUNK = 500


class LocalOps:
    """Submit, read, cancel and price a campaign's jobs on the local backend."""

    def __init__(self, client: Any):
        self.client = client

    # ------------------------------------------------------------------ submit
    def submit(self, requests: list[Any], campaign: str) -> tuple[list[str], list[dict]]:
        """Queue one job per request; returns (job ids, arrays=[])."""
        jobs = self.client.submit_many(requests)
        return [j.job_id for j in jobs], []

    # ------------------------------------------------------------------ read
    def rows(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """job id -> status, phase, reason, times, results location (one query per 500)."""
        from pna_engine.status import read_status

        self.client._reconcile()  # dead supervisors -> FAILED, queued jobs started
        out: dict[str, dict[str, Any]] = {}
        with self.client.store.connect() as con:
            for i in range(0, len(job_ids), CHUNK):
                chunk = job_ids[i:i + CHUNK]
                q = ("SELECT job_id, status, phase, reason, started_at, stopped_at, results_uri "
                     f"FROM jobs WHERE job_id IN ({', '.join('?' * len(chunk))})")
                for r in con.execute(q, chunk):
                    out[r["job_id"]] = dict(r)
        for r in out.values():
            if r["status"] in (RUNNING, STARTING):
                r["phase"] = read_status(Path(r["results_uri"])).get("phase") or r["phase"]
            if r["status"] == CANCELLED:  # Batch reports a cancelled job as FAILED
                r["status"], r["cancelled"] = FAILED, True
                r["reason"] = f"cancelled: {r['reason']}" if r.get("reason") else "cancelled"
        return out

    def summary(self, job_ids: list[str]) -> tuple[dict[str, dict[str, Any]], int]:
        """(rows, API calls) - the local store answers with SQL, 0 API calls."""
        return self.rows(job_ids), 0

    def log_excerpt(self, job_id: str, lines: int = 8) -> str:
        """The last lines of the job's log that explain the failure."""
        text = self.client.logs(job_id)
        return excerpt(text, lines)

    # ------------------------------------------------------------------ control
    def cancel(self, job_ids: list[str], reason: str) -> int:
        rows = self.rows(job_ids)
        active = [j for j, r in rows.items() if r["status"] in ACTIVE]
        for j in active:
            self.client._cancel_one(self.client.get(j), reason)
        from pna_helpers.jobs.local import dispatch

        dispatch(self.client.store)
        return len(active)


def excerpt(log_text: str, lines: int = 8) -> str:
    """The lines of a job log around its error (else its tail)."""
    all_lines = [ln for ln in log_text.splitlines() if ln.strip()]
    hits = [i for i, ln in enumerate(all_lines)
            if re.search(r"error|Traceback|FAILED|Exception", ln)]
    if hits:
        i = hits[0]
        return "\n".join(all_lines[max(0, i - 2): i + lines - 2])
    return "\n".join(all_lines[-lines:])
