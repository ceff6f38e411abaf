"""The campaign: a named set of places run together, tracked, retried and read as one table."""

from __future__ import annotations

import datetime as _dt
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pna_engine.errors import InputError
from pna_helpers.jobs.base import JobError
from pna_helpers.jobs.model import (
    ACTIVE,
    BATCH_STATUSES,
    FAILED,
    SUCCEEDED,
    parse_time,
    utcnow,
)
from pna_helpers.jobs.request import AnalysisRequest


def _iso(t: _dt.datetime | None = None) -> str:
    return (t or utcnow()).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- reasons
_NORMALISE = (
    (re.compile(r"s3://\S+"), "<s3 uri>"),
    (re.compile(r"https?://\S+"), "<url>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\w.~-]*/)+[\w.-]+"), "<file>"),
    (re.compile(r"\b[\w-]+\.(?:gpkg|geojson|json|shp|zip|pbf|csv|gz|bz2|osm)\b"), "<file>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f-]{27,}\b|\b[0-9a-f]{12,}\b"), "<id>"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise_reason(reason: str | None) -> str:
    """The reason of a failure with its place-specific parts (paths, URIs, ids, numbers,
    quoted values) replaced, so equal causes group together.

    >>> normalise_reason("no census block of /x/pop.gpkg overlaps the boundary (282 blocks read)")
    'no census block of <file> overlaps the boundary (<n> blocks read)'
    """
    if not reason:
        return "(no reason recorded)"
    text = str(reason).strip().splitlines()[0]
    text = re.sub(r"^(Essential container in task exited; engine: )", "", text)
    for pat, rep in _NORMALISE:
        text = pat.sub(rep, text)
    return text.strip()[:300]


# --------------------------------------------------------------------------- status
@dataclass
class CampaignStatus:
    """One refresh of a campaign's progress (what the dashboard and ``status`` show).

    ``counts`` is keyed by the AWS Batch status names (a cancelled local job counts as
    FAILED, as Batch reports it); ``phases`` counts running places by engine phase;
    ``failures`` groups failed places by normalised reason, each with a count, the places
    and one log excerpt.
    """

    name: str
    backend: str
    places: int
    counts: dict[str, int]
    phases: dict[str, int] = field(default_factory=dict)
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    throughput_per_hour: float | None = None
    eta_s: float | None = None
    eta_at: str | None = None
    eta_basis: str = ""
    failures: list[dict[str, Any]] = field(default_factory=list)
    vcpu_hours: float = 0.0
    cost: float = 0.0
    price_per_vcpu_hour: float = 0.0
    estimate: dict[str, Any] | None = None
    api_calls: int = 0
    refreshed_at: str = ""
    note: str = ""

    @property
    def finished(self) -> bool:
        return self.done >= self.places

    @property
    def all_succeeded(self) -> bool:
        return self.succeeded == self.places

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def line(self) -> str:
        """One progress line: ``12/40 done (10 SUCCEEDED, 2 FAILED) · 3 RUNNING · ETA 4 min``."""
        running = {k: v for k, v in self.counts.items() if v and k in ACTIVE}
        parts = [f"{self.done}/{self.places} done ({self.succeeded} SUCCEEDED, "
                 f"{self.failed} FAILED)"]
        if running:
            parts.append(", ".join(f"{v} {k}" for k, v in running.items()))
        if self.phases:
            parts.append("phases: " + ", ".join(f"{k} {v}" for k, v in self.phases.items()))
        if self.eta_s is not None and not self.finished:
            parts.append(f"ETA {_duration(self.eta_s)}")
        return " · ".join(parts)


def next_interval(previous: float, first: float, maximum: float, changed: bool) -> float:
    """Polling back-off: back to ``first`` when something changed, else x1.5 up to
    ``maximum``."""
    return first if changed else min(maximum, previous * 1.5)


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------- campaign
class Campaign:
    """A named set of places run together (see :func:`create`, :func:`load`).

    The document (``self.doc``) is persisted with the jobs: ``name``, ``backend``,
    ``created_at``, ``source``, ``places`` (per place: ``place``, ``request``, ``job_id`` -
    the current job - and ``attempts``, every job id it had), ``arrays`` (AWS: the Batch
    array jobs with their size), ``estimate`` (before submitting), ``methodology``.
    """

    def __init__(self, doc: dict[str, Any], client: Any):
        self.doc = doc
        self.client = client
        self._ops = _ops(client)
        if doc.get("max_array") and hasattr(self._ops, "max_array"):
            self._ops.max_array = int(doc["max_array"])
        self._cache: dict[str, Any] = {}
        from pna_helpers.campaigns._store import campaign_store

        self._store = campaign_store(client)

    # ------------------------------------------------------------------ basics
    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def places(self) -> list[dict[str, Any]]:
        return self.doc["places"]

    @property
    def job_ids(self) -> list[str]:
        return [p["job_id"] for p in self.places]

    def __repr__(self) -> str:
        return f"Campaign({self.name!r}, {len(self.places)} places, {self.doc['backend']})"

    def _save(self) -> None:
        self.doc["updated_at"] = _iso()
        self._store.save(self.doc)

    @property
    def price(self) -> float:
        return float(self.client.settings.vcpu_hour_price)

    @property
    def job_vcpus(self) -> int:
        return int(self.client.settings.job_vcpus)

    # ------------------------------------------------------------------ status
    def rows(self) -> dict[str, dict[str, Any]]:
        """Current job of every place: job id -> status, phase, reason, times, results."""
        rows, calls = self._ops.summary(self.job_ids) if self.doc["backend"] == "local" \
            else self._ops.child_rows(self)
        self._cache["calls"] = calls
        return rows

    def status(self, failures: bool = True) -> CampaignStatus:
        """Counts by Batch status and engine phase, throughput, ETA, failures by reason,
        vCPU-hours and cost."""
        if self.doc["backend"] == "aws":
            from pna_helpers.campaigns._aws import aws_status

            return aws_status(self, failures=failures)
        rows = self._ops.rows(self.job_ids)
        return self._status_from_rows(rows, failures=failures, api_calls=0)

    def _status_from_rows(self, rows: dict[str, dict[str, Any]], failures: bool,
                          api_calls: int) -> CampaignStatus:
        counts = dict.fromkeys(BATCH_STATUSES, 0)
        phases: Counter[str] = Counter()
        busy_s = 0.0
        now = utcnow()
        starts, stops = [], []
        for p in self.places:
            r = rows.get(p["job_id"]) or {"status": "SUBMITTED"}
            st = r["status"] if r["status"] in counts else FAILED
            counts[st] += 1
            if st == "RUNNING" and r.get("phase"):
                phases[r["phase"]] += 1
            t0, t1 = parse_time(r.get("started_at")), parse_time(r.get("stopped_at"))
            if t1 is not None:
                stops.append(t1)
            if t0 is not None:
                starts.append(t0)
                busy_s += ((t1 or now) - t0).total_seconds()
        for p in self.places:  # earlier attempts used vCPUs too
            busy_s += float(p.get("previous_busy_s") or 0.0)
        st = self._finish_status(counts, dict(phases), busy_s, min(starts) if starts else None,
                                 api_calls, max(stops) if stops else None)
        if failures and st.failed:
            st.failures = self._failure_groups(rows)
        return st

    def _finish_status(self, counts: dict[str, int], phases: dict[str, int], busy_s: float,
                       first_start: _dt.datetime | None, api_calls: int,
                       last_stop: _dt.datetime | None = None) -> CampaignStatus:
        n = len(self.places)
        done = counts[SUCCEEDED] + counts[FAILED]
        now = utcnow()
        since = parse_time(self.doc.get("submitted_at") or self.doc["created_at"])
        start = first_start or since
        end = last_stop if (done == n and last_stop is not None) else now
        elapsed = max(0.0, (end - start).total_seconds()) if start else 0.0
        thr = None
        if done and elapsed > 0:
            thr = done / elapsed * 3600.0
        eta = basis = None
        remaining = n - done
        if remaining == 0:
            eta, basis = 0.0, "finished"
        elif thr:
            eta, basis = remaining / thr * 3600.0, "throughput so far"
        elif self.doc.get("estimate"):  # nothing finished yet: the estimate, less the time
            est = self.doc["estimate"]  # that has passed since the places were submitted
            per = est["total_seconds"] / max(1, len(est["places"]))
            left = per * remaining / max(1, self._parallel()) - elapsed
            if left > 0:
                eta, basis = left, "pre-submit estimate"
            else:
                basis = "unknown: past the pre-submit estimate, no place finished yet"
        vh = busy_s * self.job_vcpus / 3600.0
        return CampaignStatus(
            name=self.name, backend=self.doc["backend"], places=n, counts=counts, phases=phases,
            done=done, succeeded=counts[SUCCEEDED], failed=counts[FAILED],
            elapsed_s=round(elapsed, 1), throughput_per_hour=round(thr, 1) if thr else None,
            eta_s=round(eta, 1) if eta is not None else None,
            eta_at=_iso(now + _dt.timedelta(seconds=eta)) if eta is not None else None,
            eta_basis=basis or "", vcpu_hours=round(vh, 4), cost=round(vh * self.price, 4),
            price_per_vcpu_hour=self.price, estimate=_estimate_brief(self.doc.get("estimate")),
            api_calls=api_calls, refreshed_at=_iso(now))

    def _parallel(self) -> int:
        return parallel_places(self.client)

    def _failure_groups(self, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {}
        for p in self.places:
            r = rows.get(p["job_id"])
            if not r or r["status"] != FAILED:
                continue
            key = normalise_reason(r.get("reason"))
            g = groups.setdefault(key, {"reason": key, "count": 0, "places": [],
                                        "example_job": p["job_id"],
                                        "example_reason": r.get("reason") or ""})
            g["count"] += 1
            g["places"].append(p["place"])
        out = sorted(groups.values(), key=lambda g: -g["count"])
        cache = self._cache.setdefault("excerpts", {})
        for g in out:
            jid = g["example_job"]
            if jid not in cache:
                try:
                    cache[jid] = self._ops.log_excerpt(jid)
                except (InputError, OSError) as exc:
                    cache[jid] = f"(no log: {exc})"
            g["log_excerpt"] = cache[jid]
        return out

    # ------------------------------------------------------------------ control
    def wait(self, timeout: float | None = None, progress: bool = True,
             poll: float | None = None, on_status: Any = None) -> CampaignStatus:
        """Poll until every place is finished; the interval backs off (x1.5 while nothing
        changes, up to the backend's ``max_poll``) and resets when something changes."""
        first = poll if poll is not None else self.client.default_poll
        interval = first
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            st = self.status(failures=False)
            key = (tuple(st.counts.values()), tuple(sorted(st.phases.items())))
            if on_status is not None:
                on_status(st)
            if progress:
                print(f"\r[{self.name}] {st.line()}" + " " * 8, end="", file=sys.stderr,
                      flush=True)
            if st.finished:
                if progress:
                    print(file=sys.stderr)
                return self.status()
            if deadline is not None and time.monotonic() >= deadline:
                if progress:
                    print(file=sys.stderr)
                from pna_helpers.jobs.progress import WaitTimeout

                raise WaitTimeout(f"campaign {self.name!r} not finished after {timeout:g} s: "
                                  f"{st.line()}")
            interval = next_interval(interval, first, self.client.max_poll, key != last)
            last = key
            time.sleep(interval if deadline is None
                       else max(0.0, min(interval, deadline - time.monotonic())))

    def retry(self) -> list[str]:
        """Submit the failed places again (only those); returns their places."""
        rows = self.rows() if self.doc["backend"] == "local" else self._ops.failed_rows(self)
        failed = [i for i, p in enumerate(self.places)
                  if (rows.get(p["job_id"]) or {}).get("status") == FAILED]
        if not failed:
            raise JobError(f"campaign {self.name!r} has no failed place to retry")
        reqs = [AnalysisRequest.from_dict(self.places[i]["request"], check_files=False)
                for i in failed]
        ids, arrays = self._ops.submit(reqs, self.name)
        for i, jid in zip(failed, ids):
            p = self.places[i]
            r = rows.get(p["job_id"]) or {}
            t0, t1 = parse_time(r.get("started_at")), parse_time(r.get("stopped_at"))
            if t0 and t1:
                p["previous_busy_s"] = float(p.get("previous_busy_s") or 0) + \
                    (t1 - t0).total_seconds()
            p["job_id"] = jid
            p["attempts"].append(jid)
        self.doc.setdefault("arrays", []).extend(arrays)
        self.doc.setdefault("retries", []).append({"at": _iso(), "places": len(failed)})
        self.doc["submitted_at"] = _iso()
        self._save()
        return [self.places[i]["place"] for i in failed]

    def cancel(self, reason: str | None = None) -> int:
        """Cancel this campaign's unfinished places (no other job is touched)."""
        return self._ops.cancel(self.job_ids, reason or f"campaign {self.name} cancelled")

    # ------------------------------------------------------------------ results
    def results(self) -> Any:
        """One row per place: every score, population, mileage, counts, run time, engine
        version (see :func:`pna_helpers.campaigns.results_table`)."""
        from pna_helpers.campaigns._table import results_table

        return results_table(self)


def parallel_places(client: Any) -> int:
    """Places running at once: the local concurrency, or on AWS the compute environment's
    vCPUs (max of desired and max) divided by the vCPUs of one job."""
    s = client.settings
    if client.name == "local":
        return int(s.concurrency)
    return max(1, int(max(s.max_vcpus, s.desired_vcpus) // max(1, s.job_vcpus)))


def _estimate_brief(est: dict[str, Any] | None) -> dict[str, Any] | None:
    if not est:
        return None
    return {k: est[k] for k in ("total_seconds", "wall_seconds", "vcpu_hours", "cost",
                                "price_per_vcpu_hour") if k in est}


def _ops(client: Any) -> Any:
    if client.name == "aws":
        from pna_helpers.campaigns._aws import AwsOps

        return AwsOps(client)
    from pna_helpers.campaigns._local import LocalOps

    return LocalOps(client)


# --------------------------------------------------------------------------- create / load
def create(name: str, requests: list[AnalysisRequest], client: Any = None, *,
           source: str = "", estimate: bool = True, submit: bool = True,
           methodology: str | None = None, max_array: int | None = None) -> Campaign:
    """Create a campaign from requests and submit it (AWS: array jobs).

    Parameters
    ----------
    name
        Unique campaign name (letters, digits, ``.``, ``_``, ``-``).
    requests
        One :class:`~pna_helpers.jobs.AnalysisRequest` per place (see
        :func:`~pna_helpers.campaigns.places_from_file`,
        :func:`~pna_helpers.campaigns.places_from_boundaries`,
        :func:`~pna_helpers.campaigns.demo_places`).
    client
        Job client (default :func:`pna_helpers.jobs.get_client`).
    estimate
        Store the pre-submit time/cost estimate (:mod:`._estimate`) with the campaign.
    max_array
        AWS: children per array job (default and maximum: Batch's 10,000).
    """
    from pna_helpers import jobs
    from pna_helpers.campaigns._store import campaign_store, check_name

    name = check_name(name)
    client = client or jobs.get_client()
    reqs = list(requests)
    if not reqs:
        raise JobError("a campaign needs at least one place")
    dup = [p for p, c in Counter(r.place for r in reqs).items() if c > 1]
    if dup:
        raise JobError(f"place names must be unique in a campaign; repeated: "
                       f"{', '.join(dup[:5])}")
    now = _iso()
    doc: dict[str, Any] = {
        "name": name, "backend": client.name, "created_at": now, "updated_at": now,
        "source": str(source), "methodology": methodology, "arrays": [], "retries": [],
        "max_array": max_array,
        "places": [{"place": r.place, "request": r.to_dict(), "job_id": None, "attempts": []}
                   for r in reqs],
    }
    if estimate:
        from pna_helpers.campaigns._estimate import estimate_campaign

        doc["estimate"] = estimate_campaign(reqs, client.name, client.settings.job_vcpus,
                                            client.settings.vcpu_hour_price,
                                            parallel_places(client))
    store = campaign_store(client)
    store.create(doc)  # the name is taken before anything runs
    camp = Campaign(doc, client)
    if submit:
        ids, arrays = camp._ops.submit(reqs, name)
        for p, jid in zip(doc["places"], ids):
            p["job_id"] = jid
            p["attempts"] = [jid]
        doc["arrays"] = arrays
        doc["submitted_at"] = _iso()
        camp._save()
    return camp


def load(name: str, client: Any = None) -> Campaign:
    """A campaign by name, from the store of the client's backend."""
    from pna_helpers import jobs
    from pna_helpers.campaigns._store import campaign_store, check_name

    client = client or jobs.get_client()
    doc = campaign_store(client).load(check_name(name))
    return Campaign(doc, client)


def list_campaigns(client: Any = None, status: bool = False) -> list[dict[str, Any]]:
    """Campaigns of the backend, newest first (``status=True`` adds their counts)."""
    from pna_helpers import jobs
    from pna_helpers.campaigns._store import campaign_store

    client = client or jobs.get_client()
    store = campaign_store(client)
    out = []
    for name, created in store.names():
        item: dict[str, Any] = {"name": name, "created_at": created}
        if status:
            c = Campaign(store.load(name), client)
            st = c.status(failures=False)
            item.update(places=st.places, done=st.done, succeeded=st.succeeded,
                        failed=st.failed, counts=st.counts)
        out.append(item)
    return out
