"""Campaign operations on AWS Batch: array jobs, split past Batch's 10,000-child limit, tracked
from the parents' ``arrayProperties.statusSummary``.

* **submit**: inputs are uploaded once (content-addressed, as ``submit_many`` does); places
  are cut into chunks of at most ``max_array`` (default :data:`MAX_ARRAY_SIZE`); each chunk is
  one array job whose manifest (the JSON list of its requests) is stored at
  ``s3://BUCKET/manifests/<id>.json``; a chunk of one place is a plain job (Batch arrays need
  2 children). Every job carries the tag ``pna:campaign``.
* **status refresh**: ``describe_jobs`` on the parents only (100 per call), summing their
  ``statusSummary``; retried places' earlier children (FAILED, superseded) are subtracted.
  Running children's engine phases come from ``status.json`` of at most
  :data:`PHASE_SAMPLE` of them (a sample, said so in the status note). Failure groups and
  vCPU-hours need the children: ``list_jobs(arrayJobId=..., jobStatus=...)`` pages of 1,000,
  fetched only when the counts changed, and each failed child's engine error (its
  ``status.json``) read once.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pna_helpers.jobs.model import ACTIVE, BATCH_STATUSES, FAILED, RUNNING, SUCCEEDED

#: AWS Batch's largest array job.
MAX_ARRAY_SIZE = 10_000
#: Running children whose phase is read per refresh.
PHASE_SAMPLE = 20
LIST_PAGE = 1000


class AwsOps:
    """Submit, read, cancel and price a campaign's jobs on AWS Batch."""

    def __init__(self, client: Any, max_array: int = MAX_ARRAY_SIZE):
        self.client = client
        self.max_array = int(max_array)
        self.calls = 0
        self._hooked: set[str] = set()
        self._engine_errors: dict[str, str] = {}

    # ------------------------------------------------------------------ call counting
    def _c(self, service: str) -> Any:
        c = self.client.aws.client(service)
        if service not in self._hooked:
            def count(**_kw: Any) -> None:
                self.calls += 1

            c.meta.events.register("before-call", count)
            self._hooked.add(service)
        return c

    def _call(self, service: str, op: str, what: str, **kw: Any) -> Any:
        self._c(service)
        return self.client._guard(what, self.client.aws.call, service, op, **kw)

    # ------------------------------------------------------------------ submit
    def submit(self, requests: list[Any], campaign: str) -> tuple[list[str], list[dict]]:
        """Submit ``requests`` as array jobs of at most ``max_array`` children; returns
        (job id per request, arrays)."""
        c = self.client
        c.check_ready()
        self._c("batch")
        self._c("s3")
        staged = c._stage(requests)
        ids: list[str] = []
        arrays: list[dict[str, Any]] = []
        bucket = c.aws.bucket
        for start in range(0, len(staged), self.max_array):
            chunk = staged[start:start + self.max_array]
            if len(chunk) == 1:
                env = {"PNA_REQUEST": chunk[0].to_json(),
                       "PNA_RESULTS_URI": c.results_prefix() + "{job_id}/",
                       "PNA_REGION": c.settings.aws_region, "PNA_PLACE": chunk[0].place}
                kw = c._submit_kwargs(chunk[0].place, env)
                kw["tags"]["pna:campaign"] = campaign
                jid = self._call("batch", "submit_job", "submitting a campaign job", **kw)["jobId"]
                ids.append(jid)
                arrays.append({"job_id": jid, "size": 1, "single": True})
                continue
            body = json.dumps([r.to_dict() for r in chunk], indent=1).encode()
            key = f"manifests/{uuid.uuid4().hex}.json"
            self._call("s3", "put_object", "storing the manifest", Bucket=bucket, Key=key,
                       Body=body, ContentType="application/json")
            env = {"PNA_MANIFEST": f"s3://{bucket}/{key}",
                   "PNA_RESULTS_URI": c.results_prefix() + "{job_id}/",
                   "PNA_REGION": c.settings.aws_region,
                   "PNA_PLACE": f"{campaign}: {len(chunk)} places"}
            kw = c._submit_kwargs(f"{campaign}-{start // self.max_array}", env)
            kw["tags"]["pna:campaign"] = campaign
            kw["arrayProperties"] = {"size": len(chunk)}
            parent = self._call("batch", "submit_job", "submitting the array job", **kw)["jobId"]
            ids += [f"{parent}:{i}" for i in range(len(chunk))]
            arrays.append({"job_id": parent, "size": len(chunk), "manifest": env["PNA_MANIFEST"]})
            c._manifests[env["PNA_MANIFEST"]] = [r.to_dict() for r in chunk]
        return ids, arrays

    # ------------------------------------------------------------------ read
    def parents(self, campaign: Any) -> dict[str, dict[str, Any]]:
        """``describe_jobs`` of the campaign's array parents (and single jobs), 100 a call."""
        ids = [a["job_id"] for a in campaign.doc.get("arrays", [])]
        self._c("batch")
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 100):
            resp = self._call("batch", "describe_jobs", "describing the campaign's jobs",
                              jobs=ids[i:i + 100])
            out.update({d["jobId"]: d for d in resp.get("jobs", [])})
        return out

    def list_children(self, parent: str, status: str) -> list[dict[str, Any]]:
        """Children of an array in one status (``list_jobs`` pages of 1,000, through the
        shared paginator :func:`~pna_helpers.jobs.aws.token_pages`)."""
        self._c("batch")
        return self.client._guard("listing array children", self.client.aws.paginate, "batch",
                                  "list_jobs", "jobSummaryList", arrayJobId=parent,
                                  jobStatus=status, maxResults=LIST_PAGE)

    def _results_uri(self, job_id: str) -> str:
        return self.client.results_prefix() + f"{job_id}/"

    def _engine_error(self, job_id: str) -> str | None:
        if job_id not in self._engine_errors:
            st = self.client._engine_status(self._results_uri(job_id))
            self.calls += 1
            self._engine_errors[job_id] = st.get("error") or ""
        return self._engine_errors[job_id] or None

    def _row(self, s: dict[str, Any], status: str) -> dict[str, Any]:
        from pna_helpers.jobs.model import parse_time

        reason = s.get("statusReason") or (s.get("container") or {}).get("reason")
        if status == FAILED:
            err = self._engine_error(s["jobId"])
            if err:
                reason = f"{reason}; engine: {err}" if reason else err
        t0, t1 = parse_time(s.get("startedAt")), parse_time(s.get("stoppedAt"))
        return {"job_id": s["jobId"], "status": status, "reason": reason, "phase": None,
                "started_at": t0.isoformat() if t0 else None,
                "stopped_at": t1.isoformat() if t1 else None,
                "results_uri": self._results_uri(s["jobId"])}

    def child_rows(self, campaign: Any, statuses: tuple[str, ...] = BATCH_STATUSES
                   ) -> tuple[dict[str, dict[str, Any]], int]:
        """Every current child in ``statuses`` (results table, retry): (rows, API calls)."""
        before = self.calls
        current = set(campaign.job_ids)
        rows: dict[str, dict[str, Any]] = {}
        parents = self.parents(campaign)
        for a in campaign.doc.get("arrays", []):
            d = parents.get(a["job_id"]) or {}
            if a.get("single"):
                if d.get("status") in statuses and a["job_id"] in current:
                    rows[a["job_id"]] = self._row(d, d["status"])
                continue
            summary = (d.get("arrayProperties") or {}).get("statusSummary") or {}
            for st in statuses:
                if summary and not summary.get(st):
                    continue
                for s in self.list_children(a["job_id"], st):
                    if s["jobId"] in current:
                        rows[s["jobId"]] = self._row(s, st)
        return rows, self.calls - before

    def log_excerpt(self, job_id: str, lines: int = 8) -> str:
        """The CloudWatch log lines around the failure of one child."""
        from pna_helpers.campaigns._local import excerpt

        self.calls += 2  # describe_jobs + get_log_events
        return excerpt(self.client.logs(job_id, tail=50), lines)

    # ------------------------------------------------------------------ control
    def cancel(self, job_ids: list[str], reason: str) -> int:
        """Cancel the campaign's array parents that still have unfinished children (Batch
        stops the children with them) and its unfinished single jobs; returns how many
        places were unfinished."""
        ids = sorted({j.rsplit(":", 1)[0] for j in job_ids})
        described: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 100):
            resp = self._call("batch", "describe_jobs", "describing the campaign's jobs",
                              jobs=ids[i:i + 100])
            described.update({d["jobId"]: d for d in resp.get("jobs", [])})
        n = 0
        for jid, d in described.items():
            summary = (d.get("arrayProperties") or {}).get("statusSummary") or {}
            active = (sum(v for k, v in summary.items() if k in ACTIVE) if summary
                      else int(d.get("status") in ACTIVE))
            if not active:
                continue
            op = ("cancel_job" if d.get("status") in ("SUBMITTED", "PENDING", "RUNNABLE")
                  else "terminate_job")
            self._call("batch", op, f"cancelling {jid}", jobId=jid, reason=reason)
            n += active
        return n

    def failed_rows(self, campaign: Any) -> dict[str, dict[str, Any]]:
        return self.child_rows(campaign, (FAILED,))[0]

    def summary_counts(self, campaign: Any) -> tuple[dict[str, int], dict[str, Any]]:
        """Counts by Batch status from the parents' ``statusSummary`` (plus single jobs),
        without the superseded children of retried places."""
        parents = self.parents(campaign)
        counts = dict.fromkeys(BATCH_STATUSES, 0)
        current = set(campaign.job_ids)
        for a in campaign.doc.get("arrays", []):
            d = parents.get(a["job_id"]) or {}
            if a.get("single"):
                if a["job_id"] in current:
                    counts[d.get("status", "SUBMITTED")] += 1
                continue
            summary = (d.get("arrayProperties") or {}).get("statusSummary")
            if not summary:  # Batch fills it once the children exist; until then: SUBMITTED
                summary = {"SUBMITTED": a["size"]} if d.get("status") not in (
                    SUCCEEDED, FAILED) else {d["status"]: a["size"]}
            for k, v in summary.items():
                if k in counts:
                    counts[k] += int(v)
            superseded = sum(1 for i in range(a["size"])
                             if f"{a['job_id']}:{i}" not in current)
            counts[FAILED] -= superseded
        return counts, parents


def aws_status(campaign: Any, failures: bool = True) -> Any:
    """A :class:`~pna_helpers.campaigns.CampaignStatus` from the parents' status summaries
    (see the module docstring for what each refresh calls)."""
    from collections import Counter

    ops: AwsOps = campaign._ops
    before = ops.calls
    counts, parents = ops.summary_counts(campaign)
    phases: Counter[str] = Counter()
    note = ""
    if counts[RUNNING]:
        running: list[str] = []
        for a in campaign.doc.get("arrays", []):
            if len(running) >= PHASE_SAMPLE:
                break
            if a.get("single"):
                if (parents.get(a["job_id"]) or {}).get("status") == RUNNING:
                    running.append(a["job_id"])
                continue
            summary = ((parents.get(a["job_id"]) or {}).get("arrayProperties") or {}) \
                .get("statusSummary") or {}
            if summary.get(RUNNING):
                running += [s["jobId"] for s in ops.list_children(a["job_id"], RUNNING)]
        for jid in running[:PHASE_SAMPLE]:
            ph = campaign.client._engine_status(ops._results_uri(jid)).get("phase")
            ops.calls += 1
            if ph:
                phases[ph] += 1
        if counts[RUNNING] > PHASE_SAMPLE:
            note = f"phases of {PHASE_SAMPLE} of {counts[RUNNING]} running places (a sample)"
    cache = campaign._cache
    key = tuple(counts.values())
    busy_s = cache.get("busy_s", 0.0)
    first_start = cache.get("first_start")
    last_stop = cache.get("last_stop")
    rows: dict[str, dict[str, Any]] = cache.get("failed_rows", {})
    done = counts[SUCCEEDED] + counts[FAILED]
    if failures and done and cache.get("usage_key") != key:
        from pna_helpers.jobs.model import parse_time

        finished, _ = ops.child_rows(campaign, (SUCCEEDED, FAILED))
        starts = [parse_time(r["started_at"]) for r in finished.values() if r["started_at"]]
        stops = [parse_time(r["stopped_at"]) for r in finished.values() if r["stopped_at"]]
        busy_s = sum((parse_time(r["stopped_at"]) - parse_time(r["started_at"])).total_seconds()
                     for r in finished.values() if r["started_at"] and r["stopped_at"])
        busy_s += sum(float(p.get("previous_busy_s") or 0) for p in campaign.places)
        first_start = min(starts) if starts else None
        last_stop = max(stops) if stops else None
        rows = {k: v for k, v in finished.items() if v["status"] == FAILED}
        cache.update(usage_key=key, busy_s=busy_s, first_start=first_start,
                     last_stop=last_stop, failed_rows=rows)
    st = campaign._finish_status(counts, dict(phases), busy_s, first_start, 0, last_stop)
    if failures and counts[FAILED]:
        st.failures = campaign._failure_groups(rows)
    st.api_calls = ops.calls - before
    st.note = note
    return st
