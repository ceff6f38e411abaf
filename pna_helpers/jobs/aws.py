"""The AWS Batch backend (boto3).

* ``submit``: local inputs are uploaded to ``s3://BUCKET/inputs/<digest>/<name>`` (the digest
  of the file, or of a shapefile's whole set: :func:`~pna_helpers.jobs.storage.input_digest`), then
  ``submit_job`` on the queue with the job definition, container overrides (command
  ``run-job`` and the environment of the container contract, see :mod:`pna_engine.jobrunner`),
  a ``retryStrategy`` and a timeout.
* ``submit_many``: one array job; its manifest (the JSON list of requests) is stored at
  ``s3://BUCKET/manifests/<id>.json`` and copied to ``s3://BUCKET/results/<parent id>/``; child
  ``i`` (id ``<parent>:<i>``) runs request ``i`` via ``AWS_BATCH_JOB_ARRAY_INDEX``.
* ``list``: ``list_jobs`` page by page, then ``describe_jobs`` in chunks of 100. Every
  ``nextToken``-style pagination (``list_jobs``, CloudWatch log pages, S3 listings) goes
  through :func:`token_pages`.
* Every call backs off on throttling and 5xx errors (exponential with jitter).
* ``logs``: CloudWatch Logs group ``/aws/batch/job``, the job's ``logStreamName`` (``tail``:
  read back from the end, page by page; ``tail=0``: ``""``).
* Results: ``s3://BUCKET/results/<job_id>/`` (the engine's ``status.json`` there gives the phase).

``AWS_ENDPOINT_URL`` (or ``Settings.endpoint_url``) points everything at an emulator.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pna_engine.errors import InputError
from pna_engine.remote import aws_client, split_s3, timeout_message
from pna_helpers.config import Settings
from pna_helpers.jobs.base import (
    JobBackend,
    JobError,
    register_backend,
    since_filter,
    status_filter,
    tail_lines,
)
from pna_helpers.jobs.model import (
    BATCH_STATUSES,
    FAILED,
    RUNNING,
    STARTING,
    SUBMITTED,
    Job,
    parse_time,
    utcnow,
)
from pna_helpers.jobs.request import AnalysisRequest
from pna_helpers.paths import slugify

LOG_GROUP = "/aws/batch/job"
DESCRIBE_CHUNK = 100
#: Most events ``get_log_events`` returns in one page (CloudWatch's own limit).
LOG_PAGE = 10_000
#: Token names of token-paginated operations that do not use ``nextToken`` both ways
#: (argument, response field).
TOKENS: dict[tuple[str, str], tuple[str, str]] = {
    ("s3", "list_objects_v2"): ("ContinuationToken", "NextContinuationToken"),
}
RETRY_CODES = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
    "SlowDown", "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
    "InternalFailure", "InternalServerError", "ServerException", "RequestTimeout",
})
MAX_ATTEMPTS = 8


def aws_error(exc: Exception, what: str, *, connect_timeout: float | None = None,
              read_timeout: float | None = None, max_attempts: int | None = None) -> InputError:
    """A one-line, actionable error for a failed AWS call (any exception: one without an HTTP
    response, like a timeout, too). The limits are those of the client that failed.

    Parameters
    ----------
    exc : Exception
        The exception raised by boto3 / botocore.
    what : str
        What was being done, e.g. ``"listing jobs"``; starts the message.
    connect_timeout, read_timeout : float or None, optional
        The failing client's timeouts in seconds, quoted in a timeout message.
    max_attempts : int or None, optional
        The failing client's attempts, quoted in a timeout message.

    Returns
    -------
    InputError
        The error to raise (it is not raised here): missing credentials, timeout, unreachable
        endpoint, access denied, missing bucket, or ``what: code: message``.
    """
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"):
        return InputError(f"{what}: no AWS credentials found - set AWS_PROFILE or "
                          "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an IAM role is "
                          "available (PNA never stores credentials)")
    silent = timeout_message(exc, what, connect_timeout=connect_timeout,
                             read_timeout=read_timeout, max_attempts=max_attempts)
    if silent is not None:
        return InputError(silent)
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return InputError(f"{what}: cannot reach the AWS endpoint ({exc}); check the network, "
                          "the region and AWS_ENDPOINT_URL")
    err = (getattr(exc, "response", None) or {}).get("Error") or {}
    code, msg = err.get("Code", name), err.get("Message", str(exc))
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken"):
        return InputError(f"{what}: AWS refused ({code}: {msg}); check the credentials and the "
                          "IAM permissions listed in the README (AWS setup)")
    if code == "NoSuchBucket" or "NoSuchBucket" in str(exc):
        return InputError(f"{what}: the S3 bucket does not exist - run 'pna stack up' or set "
                          "PNA_RESULTS_BUCKET")
    return InputError(f"{what}: {code}: {msg}")


def check_endpoint_url(url: str | None) -> None:
    """Refuse an endpoint that is not an ``http(s)://host[:port]`` URL, in one line saying
    what to do (boto3 says only ``ValueError: Invalid endpoint: ...``).

    Parameters
    ----------
    url : str or None
        ``AWS_ENDPOINT_URL`` / ``Settings.endpoint_url``; None (AWS itself) passes.

    Raises
    ------
    InputError
        Not an http(s) URL with a host.
    """
    if not url:
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is not a number raises
    except ValueError:
        ok = False
    if not ok:
        raise InputError(f"the AWS endpoint {url!r} (AWS_ENDPOINT_URL or endpoint_url) is not an "
                         "http(s) URL: give e.g. http://localhost:4566 for an emulator, or "
                         "unset it to use AWS")


def token_pages(fetch: Callable[..., dict[str, Any]], *, token_arg: str = "nextToken",
                token_field: str = "nextToken", items: str | None = None,
                **kw: Any) -> Iterator[dict[str, Any]]:
    """Every page of a token-paginated AWS operation: the one loop of PNA over ``nextToken``.

    ``fetch(**kw)`` gives the first page; each next page is asked with the previous page's
    ``token_field`` passed as ``token_arg``. It stops after a page without a token, a token
    seen before (CloudWatch Logs answers the end of a stream with the token it was given), or,
    when ``items`` is given, a page whose ``items`` list is empty.

    Parameters
    ----------
    fetch : callable
        One call of the operation (e.g. ``functools.partial(aws.call, "batch", "list_jobs")``),
        taking the keyword arguments and returning the response dict.
    token_arg : str, optional
        The argument carrying the token (default ``nextToken``).
    token_field : str, optional
        The response field with the next token (default ``nextToken``; ``nextForwardToken``
        / ``nextBackwardToken`` for ``get_log_events``).
    items : str or None, optional
        The list in each page; an empty one ends the pages (default: not checked).
    **kw : Any
        The operation's arguments, the same for every page.

    Yields
    ------
    dict
        Each response, in order.
    """
    seen: set[str] = set()
    token: str | None = None
    while True:
        page = fetch(**kw, **({token_arg: token} if token else {}))
        yield page
        nxt = page.get(token_field)
        if not nxt or nxt in seen or nxt == token or (items is not None and not page.get(items)):
            return
        if token:
            seen.add(token)
        token = nxt


class Aws:
    """boto3 clients for one settings object, with backoff on throttling and 5xx."""

    def __init__(self, settings: Settings, sleep=time.sleep):
        self.settings = settings
        self._clients: dict[str, Any] = {}
        self._sleep = sleep
        self._account: str | None = None

    def client(self, service: str) -> Any:
        """The boto3 client of ``service`` (:func:`pna_engine.remote.aws_client`: the settings'
        timeouts and bounded retries, a read timeout not retried; :meth:`call` adds its own
        backoff on throttling).

        Parameters
        ----------
        service : str
            The boto3 service name, e.g. ``"batch"``, ``"s3"``, ``"logs"``.

        Returns
        -------
        Any
            The client, made once per service and reused.
        """
        if service not in self._clients:
            s = self.settings
            check_endpoint_url(s.endpoint_url)
            self._clients[service] = aws_client(
                service, region=s.aws_region, endpoint_url=s.endpoint_url,
                connect_timeout=s.aws_connect_timeout, read_timeout=s.aws_read_timeout,
                max_attempts=s.aws_max_attempts)
        return self._clients[service]

    def error(self, exc: Exception, what: str) -> InputError:
        """:func:`aws_error` with this client's limits.

        Parameters
        ----------
        exc : Exception
            The exception of the failed call.
        what : str
            What was being done.

        Returns
        -------
        InputError
            The error to raise.
        """
        s = self.settings
        return aws_error(exc, what, connect_timeout=s.aws_connect_timeout,
                         read_timeout=s.aws_read_timeout, max_attempts=s.aws_max_attempts)

    def call(self, service: str, op: str, what: str | None = None, **kw: Any) -> Any:
        """``client(service).op(**kw)`` retried with exponential backoff on throttling / 5xx.

        Up to :data:`MAX_ATTEMPTS` attempts, sleeping 0.5 s doubling (at most 20 s, with
        jitter) between them.

        Parameters
        ----------
        service : str
            The boto3 service name.
        op : str
            The client method, e.g. ``"describe_jobs"``.
        what : str or None, optional
            What is being done, for the error message (default ``"<service> <op>"``).
        **kw : Any
            The operation's arguments.

        Returns
        -------
        Any
            The operation's response.

        Raises
        ------
        InputError
            A botocore error without an HTTP response (no credentials, timeout, unreachable
            endpoint), as :meth:`error`.
        botocore.exceptions.ClientError
            An error response that is not retried, or the last attempt's; it is not converted.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        fn = getattr(self.client(service), op)
        for attempt in range(MAX_ATTEMPTS):
            try:
                return fn(**kw)
            except ClientError as exc:
                meta = exc.response.get("ResponseMetadata", {})
                code = exc.response.get("Error", {}).get("Code", "")
                retriable = code in RETRY_CODES or int(meta.get("HTTPStatusCode") or 0) >= 500
                if not retriable or attempt == MAX_ATTEMPTS - 1:
                    raise
            except BotoCoreError as exc:
                raise self.error(exc, what or f"{service} {op}") from exc
            self._sleep(min(20.0, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")

    def pages(self, service: str, op: str, *, items: str | None = None,
              token: tuple[str, str] | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
        """Every page of a token-paginated operation (:func:`token_pages` over :meth:`call`:
        each page backs off on throttling and 5xx).

        Parameters
        ----------
        service : str
            The boto3 service name.
        op : str
            The operation, e.g. ``"list_jobs"``.
        items : str or None, optional
            The list in each page; an empty one ends the pages.
        token : tuple of (str, str) or None, optional
            (argument, response field) of the token; default :data:`TOKENS` for the
            operation, else ``nextToken`` both ways.
        **kw : Any
            The operation's arguments.

        Yields
        ------
        dict
            Each response.
        """
        arg, fld = token or TOKENS.get((service, op), ("nextToken", "nextToken"))

        def fetch(**args: Any) -> dict[str, Any]:
            return self.call(service, op, **args)

        yield from token_pages(fetch, token_arg=arg, token_field=fld, items=items, **kw)

    def paginate(self, service: str, op: str, key: str, **kw: Any) -> list[Any]:
        """Every item under ``key`` of every page of ``op`` (:meth:`pages`).

        Parameters
        ----------
        service : str
            The boto3 service name.
        op : str
            A paginated operation, e.g. ``"list_jobs"``.
        key : str
            The list in each page, e.g. ``"jobSummaryList"``.
        **kw : Any
            The operation's arguments.

        Returns
        -------
        list
            The items of all pages, in order.

        Raises
        ------
        InputError
            A botocore error without an HTTP response, as :meth:`error`.
        botocore.exceptions.ClientError
            An error response (not converted).
        """
        return [item for page in self.pages(service, op, **kw) for item in page.get(key, [])]

    @property
    def account(self) -> str:
        """The AWS account id of the credentials (``sts get-caller-identity``, asked once).

        Returns
        -------
        str

        Raises
        ------
        InputError
            The call failed (e.g. no credentials), as :meth:`error`.
        """
        if self._account is None:
            try:
                self._account = self.call("sts", "get_caller_identity")["Account"]
            except Exception as exc:
                raise self.error(exc, "finding the AWS account") from exc
        return self._account

    @property
    def bucket(self) -> str:
        """The results bucket (default ``pna-<account>-<region>``).

        Returns
        -------
        str
            ``settings.results_bucket`` if set, else ``pna-<account>-<region>``.

        Raises
        ------
        InputError
            No bucket is set and the account cannot be found.
        """
        return self.settings.results_bucket or f"pna-{self.account}-{self.settings.aws_region}"


@register_backend("aws")
class AwsBackend(JobBackend):
    """AWS Batch (see the module docstring)."""

    name = "aws"
    default_poll = 5.0
    max_poll = 60.0

    def __init__(self, settings: Settings | None = None, sleep=time.sleep):
        super().__init__(settings or Settings.load(backend="aws"))
        self.aws = Aws(self.settings, sleep=sleep)
        self._checked = False
        self._manifests: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ checks
    def _guard(self, what: str, fn, *a, **kw):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*a, **kw)
        except (ClientError, BotoCoreError) as exc:
            raise self.aws.error(exc, what) from exc

    def check_ready(self) -> None:
        """The queue and job definition exist (else: run ``pna stack up``).

        Checked once per client; later calls return at once.

        Raises
        ------
        JobError
            The job queue is missing or not ENABLED, or there is no ACTIVE job definition.
        InputError
            The AWS calls failed (credentials, permissions, network).
        """
        if self._checked:
            return
        s = self.settings
        queues = self._guard("checking the job queue", self.aws.call, "batch",
                             "describe_job_queues", jobQueues=[s.job_queue])["jobQueues"]
        if not queues:
            raise JobError(f"AWS Batch job queue {s.job_queue!r} does not exist in "
                           f"{s.aws_region}: run 'pna stack up' or set PNA_JOB_QUEUE")
        if queues[0].get("state") != "ENABLED":
            raise JobError(f"job queue {s.job_queue!r} is {queues[0].get('state')}: run "
                           "'pna stack up' to enable it")
        defs = self._guard("checking the job definition", self.aws.call, "batch",
                           "describe_job_definitions", jobDefinitionName=s.job_definition,
                           status="ACTIVE")["jobDefinitions"]
        if not defs:
            raise JobError(f"AWS Batch job definition {s.job_definition!r} does not exist in "
                           f"{s.aws_region}: run 'pna stack up' or set PNA_JOB_DEFINITION")
        self._checked = True

    # ------------------------------------------------------------------ submit
    def results_prefix(self) -> str:
        """The S3 prefix under which every job's results folder is.

        Returns
        -------
        str
            ``s3://BUCKET/results/``.

        Raises
        ------
        InputError
            No bucket is set and the account cannot be found.
        """
        return f"s3://{self.aws.bucket}/results/"

    def _submit_kwargs(self, name: str, env: dict[str, str]) -> dict[str, Any]:
        s = self.settings
        return dict(
            jobName=slugify(name)[:128],
            jobQueue=s.job_queue,
            jobDefinition=s.job_definition,
            containerOverrides={
                "command": ["run-job"],
                "environment": [{"name": k, "value": v} for k, v in env.items()],
            },
            retryStrategy={"attempts": max(1, s.retry_attempts), "evaluateOnExit": [
                {"onStatusReason": "Host EC2*", "action": "RETRY"},
                {"onReason": "CannotPullContainerError*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ]},
            timeout={"attemptDurationSeconds": max(60, s.job_timeout_s)},
            tags={"pna:place": name[:256], "pna:client": "pna"},
            propagateTags=True,
        )

    def _stage(self, requests: list[AnalysisRequest]) -> list[AnalysisRequest]:
        from pna_helpers.jobs.storage import stage_request

        s3 = self.aws.client("s3")
        out = []
        for r in requests:
            try:
                out.append(stage_request(r, s3, self.aws.bucket))
            except InputError:
                raise
            except Exception as exc:  # ClientError, S3UploadFailedError, BotoCoreError
                raise self.aws.error(exc, f"uploading the inputs of {r.place!r} to "
                                     f"s3://{self.aws.bucket}") from exc
        return out

    def submit(self, request: AnalysisRequest) -> Job:
        """Submit one request as one Batch job.

        Local inputs are uploaded first (see :func:`~pna_helpers.jobs.storage.stage_request`).
        See :meth:`JobBackend.submit`.

        Parameters
        ----------
        request : AnalysisRequest
            What to analyse.

        Returns
        -------
        Job
            The new job, as Batch describes it right after submission.

        Raises
        ------
        JobError
            ``request`` is not an :class:`AnalysisRequest`, or the queue or job definition is
            missing (see :meth:`check_ready`).
        InputError
            An upload or AWS call failed.
        """
        if not isinstance(request, AnalysisRequest):
            raise JobError(f"expected an AnalysisRequest, got {type(request).__name__}")
        self.check_ready()
        staged = self._stage([request])[0]
        env = {"PNA_REQUEST": staged.to_json(),
               "PNA_RESULTS_URI": self.results_prefix() + "{job_id}/",
               "PNA_REGION": self.settings.aws_region,
               "PNA_PLACE": staged.place}
        resp = self._guard("submitting the job", self.aws.call, "batch", "submit_job",
                           **self._submit_kwargs(staged.place, env))
        return self.get(resp["jobId"])

    def submit_many(self, requests: Iterable[AnalysisRequest]) -> list[Job]:
        """Submit many requests as ONE array job; returns its children, in request order.

        A single request is submitted as a plain job (:meth:`submit`); no requests: ``[]``,
        without any AWS call. The manifest goes to ``s3://BUCKET/manifests/<uuid>.json`` and
        ``s3://BUCKET/results/<parent>/manifest.json``. The children's records are made from
        the submission itself (``SUBMITTED``, their requests, results locations): Batch creates
        the children a while after the parent, so they are not described here.
        See :meth:`JobBackend.submit_many`.

        Parameters
        ----------
        requests : Iterable of AnalysisRequest
            The requests, e.g. from :func:`~pna_helpers.jobs.read_places`.

        Returns
        -------
        list of Job
            The children ``<parent>:0`` ... ``<parent>:<n-1>``, one per request (for a
            single request: its plain job; none: ``[]``).

        Raises
        ------
        JobError
            An item that is not an :class:`AnalysisRequest`, or the queue or job definition
            is missing.
        InputError
            An upload or AWS call failed.
        """
        reqs = list(requests)
        for r in reqs:
            if not isinstance(r, AnalysisRequest):
                raise JobError(f"expected an AnalysisRequest, got {type(r).__name__}")
        if not reqs:
            return []
        if len(reqs) == 1:  # Batch array jobs need at least 2 children
            return [self.submit(reqs[0])]
        self.check_ready()
        staged = self._stage(reqs)
        manifest = [r.to_dict() for r in staged]
        body = json.dumps(manifest, indent=1).encode()
        key = f"manifests/{uuid.uuid4().hex}.json"
        self._guard("storing the manifest", self.aws.call, "s3", "put_object",
                    Bucket=self.aws.bucket, Key=key, Body=body, ContentType="application/json")
        env = {"PNA_MANIFEST": f"s3://{self.aws.bucket}/{key}",
               "PNA_RESULTS_URI": self.results_prefix() + "{job_id}/",
               "PNA_REGION": self.settings.aws_region,
               "PNA_PLACE": f"{len(reqs)} places"}
        kw = self._submit_kwargs(f"pna-array-{len(reqs)}", env)
        kw["arrayProperties"] = {"size": len(reqs)}
        created = utcnow()
        resp = self._guard("submitting the array job", self.aws.call, "batch", "submit_job", **kw)
        parent = resp["jobId"]
        self._guard("storing the manifest", self.aws.call, "s3", "put_object",
                    Bucket=self.aws.bucket, Key=f"results/{parent}/manifest.json", Body=body,
                    ContentType="application/json")
        self._manifests[env["PNA_MANIFEST"]] = manifest
        template = env["PNA_RESULTS_URI"]
        return [Job(job_id=f"{parent}:{i}", place=req["place"], status=SUBMITTED,
                    created_at=created, results_uri=template.replace("{job_id}", f"{parent}:{i}"),
                    backend="aws", array_parent=parent, array_index=i, request=req,
                    extra={"log_stream": None, "exit_code": None, "array_summary": None})
                for i, req in enumerate(manifest)]

    # ------------------------------------------------------------------ read
    def _describe(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(job_ids), DESCRIBE_CHUNK):
            chunk = job_ids[i:i + DESCRIBE_CHUNK]
            resp = self._guard("describing jobs", self.aws.call, "batch", "describe_jobs",
                               jobs=chunk)
            out.update({d["jobId"]: d for d in resp.get("jobs", [])})
        return out

    def get(self, job_id: str) -> Job:
        """The job's current state (Batch status, engine phase from ``status.json``).

        See :meth:`JobBackend.get`.

        Parameters
        ----------
        job_id : str
            A Batch job id (``<parent>:<index>`` for an array child).

        Returns
        -------
        Job

        Raises
        ------
        JobError
            Batch does not know the id.
        InputError
            An AWS call failed.
        """
        return self.get_many([str(job_id)])[0]

    def get_many(self, job_ids: list[str]) -> list[Job]:
        """Jobs by id, in order (``describe_jobs`` in chunks of 100).

        See :meth:`JobBackend.get_many`.

        Parameters
        ----------
        job_ids : list of str
            Batch job ids.

        Returns
        -------
        list of Job

        Raises
        ------
        JobError
            Batch does not know one of the ids (all unknown ones are named).
        InputError
            An AWS call failed.
        """
        ids = [str(j) for j in job_ids]
        found = self._describe(ids)
        found.update(self._unborn_children([j for j in ids if j not in found]))
        missing = [j for j in ids if j not in found]
        if missing:
            raise JobError(f"unknown job id(s) {', '.join(missing)} in AWS Batch "
                           f"({self.settings.aws_region}); see 'pna list --backend aws'")
        return [self._to_job(found[j]) for j in ids]

    def _unborn_children(self, job_ids: list[str],
                         parents: dict[str, dict[str, Any]] | None = None
                         ) -> dict[str, dict[str, Any]]:
        """Descriptions of array children Batch has not created yet, from their parent's.

        Batch creates an array job's children a while after the parent; until then, a child
        ``<parent>:<i>`` (``i`` < the array size) reads as its parent: the parent's status and
        reason, the child's own id, index, request (from the manifest) and results location,
        no log stream.

        Parameters
        ----------
        job_ids : list of str
            Ids ``describe_jobs`` did not know; those that are not ``<parent>:<index>`` of a
            known array are left out.
        parents : dict or None, optional
            Parent descriptions already at hand (id -> description); the others are described.

        Returns
        -------
        dict
            Child id -> a description for :meth:`_to_job`.
        """
        wanted: dict[str, tuple[str, int]] = {}
        for j in job_ids:
            parent, sep, index = j.rpartition(":")
            if sep and parent and index.isdigit():
                wanted[j] = (parent, int(index))
        if not wanted:
            return {}
        parents = dict(parents or {})
        ask = sorted({p for p, _ in wanted.values() if p not in parents})
        if ask:
            parents.update(self._describe(ask))
        out: dict[str, dict[str, Any]] = {}
        for j, (parent, index) in wanted.items():
            d = parents.get(parent)
            size = ((d or {}).get("arrayProperties") or {}).get("size")
            if d is None or size is None or index >= int(size):
                continue
            container = {k: v for k, v in (d.get("container") or {}).items()
                         if k in ("environment", "command")}
            out[j] = {**{k: v for k, v in d.items() if k not in ("startedAt", "stoppedAt")},
                      "jobId": j, "arrayProperties": {"index": index},
                      "container": container, "_unborn": int(size)}
        return out

    def _manifest(self, uri: str) -> list[dict[str, Any]]:
        if uri not in self._manifests:
            bucket, key = split_s3(uri)
            try:
                body = self.aws.call("s3", "get_object", Bucket=bucket, Key=key)["Body"].read()
                self._manifests[uri] = json.loads(body)
            except Exception:
                self._manifests[uri] = []
        return self._manifests[uri]

    def _engine_status(self, results_uri: str) -> dict[str, Any]:
        bucket, prefix = split_s3(results_uri)
        try:
            body = self.aws.call("s3", "get_object", Bucket=bucket,
                                 Key=prefix.rstrip("/") + "/status.json")["Body"].read()
            return json.loads(body)
        except Exception:
            return {}

    def _to_job(self, d: dict[str, Any]) -> Job:
        container = d.get("container") or {}
        env = {e["name"]: e["value"] for e in container.get("environment", [])}
        job_id = d["jobId"]
        arr = d.get("arrayProperties") or {}
        index = arr.get("index")
        parent = job_id.rsplit(":", 1)[0] if index is not None or ":" in job_id else None
        if parent is not None and index is None:
            index = int(job_id.rsplit(":", 1)[1])
        request: dict[str, Any] | None = None
        if env.get("PNA_REQUEST"):
            try:
                request = json.loads(env["PNA_REQUEST"])
            except ValueError:
                request = None
        elif env.get("PNA_MANIFEST") and index is not None:
            items = self._manifest(env["PNA_MANIFEST"])
            request = items[index] if 0 <= index < len(items) else None
        place = (request or {}).get("place") or (d.get("tags") or {}).get("pna:place") \
            or env.get("PNA_PLACE") or d.get("jobName")
        uri_t = env.get("PNA_RESULTS_URI") or self.results_prefix() + "{job_id}/"
        results_uri = uri_t.replace("{job_id}", job_id)
        status = d.get("status", "SUBMITTED")
        reason = d.get("statusReason")
        phase = None
        is_parent = "size" in arr and index is None
        if not is_parent and not d.get("_unborn") and status in (STARTING, RUNNING, FAILED):
            st = self._engine_status(results_uri)
            phase = st.get("phase")
            if status == FAILED and st.get("error"):
                reason = f"{reason}; engine: {st['error']}" if reason else st["error"]
        job = Job(
            job_id=job_id, place=place, status=status, phase=phase, reason=reason,
            created_at=parse_time(d.get("createdAt")), started_at=parse_time(d.get("startedAt")),
            stopped_at=parse_time(d.get("stoppedAt")), results_uri=results_uri, backend="aws",
            array_parent=parent, array_index=index, request=request,
            array_size=arr.get("size") if is_parent else None,
            extra={"log_stream": container.get("logStreamName"),
                   "exit_code": container.get("exitCode"), "array_summary":
                   arr.get("statusSummary") if is_parent else None,
                   **({"status_from_parent": True, "parent_array_size": d["_unborn"]}
                      if d.get("_unborn") else {})},
        )
        return job

    def list(self, status: str | Iterable[str] | None = None, place: str | None = None,
             since: _dt.datetime | str | None = None) -> list[Job]:
        """Jobs of the queue, newest first.

        ``list_jobs`` is paginated for every Batch status (an array parent's status lags its
        children's, so the status filter is applied to the described jobs); array parents are
        replaced by their children (``<parent>:<index>``, one per place); ``describe_jobs``
        runs in chunks of 100. See :meth:`JobBackend.list`.

        Parameters
        ----------
        status : str or Iterable of str or None, optional
            One status or several (``ACTIVE`` = not finished); None (default): all.
        place : str or None, optional
            Only jobs of this place (compared as file-safe names, :func:`slugify`).
        since : datetime.datetime or str or None, optional
            Only jobs created since (of an array job: when the parent was created): a
            datetime, ISO text, or e.g. ``2h`` / ``3d``.

        Returns
        -------
        list of Job
            Newest first (equal creation times: descending array index).

        Raises
        ------
        JobError
            An unknown status, a bad ``since``, or the job queue does not exist.
        InputError
            An AWS call failed.
        """
        wanted = status_filter(status)
        t = since_filter(since)
        summaries: dict[str, dict[str, Any]] = {}
        for st in BATCH_STATUSES:
            try:
                items = self.aws.paginate("batch", "list_jobs", "jobSummaryList",
                                          jobQueue=self.settings.job_queue, jobStatus=st)
            except InputError:
                raise
            except Exception as exc:
                err = self.aws.error(exc, "listing jobs")
                if "does not exist" in str(err):
                    raise JobError(f"AWS Batch job queue {self.settings.job_queue!r} does not "
                                   f"exist in {self.settings.aws_region}: run 'pna stack up' or "
                                   "set PNA_JOB_QUEUE") from exc
                raise err from exc
            for s in items:
                summaries[s["jobId"]] = s
        if t is not None:
            ms = t.timestamp() * 1000
            summaries = {k: v for k, v in summaries.items() if (v.get("createdAt") or 0) >= ms}
        described = self._describe(list(summaries))
        children = [f"{jid}:{i}" for jid, d in described.items()
                    if ":" not in jid and "size" in (d.get("arrayProperties") or {})
                    for i in range(int(d["arrayProperties"]["size"]))]
        missing = [c for c in children if c not in described]
        described.update(self._describe(missing))
        described.update(self._unborn_children([c for c in children if c not in described],
                                               parents=described))
        jobs = [self._to_job(d) for d in described.values()]
        jobs = [j for j in jobs if not j.array_size]  # parents: their children stand for them
        if wanted:
            jobs = [j for j in jobs if j.status in wanted]
        if place:
            jobs = [j for j in jobs if j.place and slugify(j.place) == slugify(place)]
        jobs.sort(key=lambda j: (j.created_at or _dt.datetime.min.replace(tzinfo=_dt.UTC),
                                 j.array_index or 0), reverse=True)
        return jobs

    # ------------------------------------------------------------------ control
    def _refuse_uncancellable(self, jobs: list[Job]) -> None:
        """A child Batch has not created yet cannot be cancelled on its own: only by cancelling
        its array (the parent), which stops every child - so that is done only when the
        request names every child of the array."""
        unborn: dict[str, list[Job]] = {}
        for j in jobs:
            if j.extra.get("status_from_parent") and j.array_parent:
                unborn.setdefault(j.array_parent, []).append(j)
        for parent, kids in sorted(unborn.items()):
            size = kids[0].extra["parent_array_size"]  # an unborn child reads as its parent
            if len({k.array_index for k in kids}) < size:
                first = f"{parent}:{min(int(k.array_index or 0) for k in kids)}"
                raise JobError(
                    f"job {first} is not created yet by AWS Batch (its array job {parent} is "
                    f"{kids[0].status}): a child cannot be cancelled on its own before it "
                    f"exists; cancel the whole array ('pna cancel {parent}', all {size} "
                    "places) or try again once it runs")

    def _cancel_many(self, jobs: list[Job], reason: str) -> None:
        """Cancel the jobs; children Batch has not created yet by cancelling their array
        parent, once (Batch then fails every child with it)."""
        parents = sorted({j.array_parent for j in jobs
                          if j.extra.get("status_from_parent") and j.array_parent})
        for parent in parents:
            self._guard(f"cancelling array job {parent}", self.aws.call, "batch", "cancel_job",
                        jobId=parent, reason=reason)
        for j in jobs:
            if not (j.extra.get("status_from_parent") and j.array_parent):
                self._cancel_one(j, reason)

    def _cancel_one(self, job: Job, reason: str) -> None:
        op = "cancel_job" if job.status in ("SUBMITTED", "PENDING", "RUNNABLE") else "terminate_job"
        self._guard(f"cancelling {job.job_id}", self.aws.call, "batch", op, jobId=job.job_id,
                    reason=reason)

    def logs(self, job_id: str, tail: int | None = None) -> str:
        """The job's CloudWatch log (``/aws/batch/job``); last ``tail`` lines if given.

        See :meth:`JobBackend.logs`.

        Parameters
        ----------
        job_id : str
            A Batch job id; of an array job, a child's (``<parent>:<index>``).
        tail : int or None, optional
            Only the last ``tail`` log events (lines; 0: none); None (default): the whole
            stream.

        Returns
        -------
        str
            The log messages, one per line; "" for a job that has no log stream (it has not
            started, or never did).

        Raises
        ------
        JobError
            Unknown id, an array parent, a stream CloudWatch no longer has, or ``tail``
            negative or not a whole number.
        InputError
            An AWS call failed.
        """
        tail = tail_lines(tail)
        job = self.get(job_id)
        stream = job.extra.get("log_stream")
        if not stream:
            if job.array_size:
                raise JobError(f"{job_id} is an array job: ask for a child's log, e.g. "
                               f"'pna logs {job_id}:0'")
            return ""  # not started yet (or never did): no log, as on the local backend
        if tail == 0:
            return ""
        where = {"logGroupName": LOG_GROUP, "logStreamName": stream}
        try:
            if tail is None:  # forward from the head, page by page
                events = [e["message"] for page in self.aws.pages(
                    "logs", "get_log_events", items="events",
                    token=("nextToken", "nextForwardToken"), startFromHead=True, **where)
                    for e in page.get("events", [])]
            else:  # backward from the end until ``tail`` events are read
                pages: list[list[str]] = []
                got = 0
                for page in self.aws.pages("logs", "get_log_events", items="events",
                                           token=("nextToken", "nextBackwardToken"),
                                           startFromHead=False, limit=min(tail, LOG_PAGE),
                                           **where):
                    msgs = [e["message"] for e in page.get("events", [])]
                    pages.insert(0, msgs)
                    got += len(msgs)
                    if got >= tail:
                        break
                events = [m for msgs in pages for m in msgs][-tail:]
        except Exception as exc:
            if "ResourceNotFound" in str(exc):
                if job.done:  # not "yet": it will not come
                    raise JobError(f"job {job_id} ({job.status}) has no log: its stream {stream} "
                                   f"is not in {LOG_GROUP} (deleted by the log group's "
                                   "retention, or the container never wrote to it)") from exc
                return ""  # named, but not written yet: no log so far
            raise self.aws.error(exc, f"reading the log of {job_id}") from exc
        return "".join(m if m.endswith("\n") else m + "\n" for m in events)

    def results_location(self, job_id: str) -> str:
        """The job's results prefix. See :meth:`JobBackend.results_location`.

        Parameters
        ----------
        job_id : str
            A Batch job id.

        Returns
        -------
        str
            ``s3://BUCKET/results/<job_id>/`` (as given to the container).

        Raises
        ------
        JobError
            Batch does not know the id.
        """
        return self.get(job_id).results_uri or ""

    def container_environment(self, job_id: str) -> tuple[list[str], dict[str, str]]:
        """(command, environment) of a submitted job, as ``describe_jobs`` reports them.

        Parameters
        ----------
        job_id : str
            A Batch job id.

        Returns
        -------
        tuple of (list of str, dict)
            The container command and its environment variables (name -> value).

        Raises
        ------
        JobError
            Batch does not know the id.
        InputError
            The AWS call failed.
        """
        d = self._describe([job_id]).get(job_id)
        if d is None:
            raise JobError(f"unknown job id {job_id!r}")
        c = d.get("container") or {}
        return list(c.get("command") or []), {e["name"]: e["value"]
                                              for e in c.get("environment", [])}
