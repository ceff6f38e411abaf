"""The AWS Batch backend and the stack against a moto server on loopback, and the container
contract end to end without Docker.

moto's simple Batch (``{"batch": {"use_docker": false}}``) finishes jobs at submit time, so
state sequences it cannot show (RUNNING -> SUCCEEDED, throttling, pagination, active cancel)
use botocore's Stubber on the batch client only; S3, IAM, EC2 and CloudWatch Logs stay real.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("moto")
from botocore.stub import Stubber  # noqa: E402

from pna_engine.errors import InputError  # noqa: E402
from pna_helpers import jobs  # noqa: E402
from pna_helpers.config import Settings  # noqa: E402
from pna_helpers.jobs.aws import AwsBackend  # noqa: E402
from pna_helpers.jobs.stack import Stack  # noqa: E402
from pna_helpers.jobs.storage import input_digest, upload_input  # noqa: E402

pytestmark = pytest.mark.aws
REGION = "eu-west-1"


def _settings(url: str, **kw) -> Settings:
    base = dict(backend="aws", endpoint_url=url, region=REGION, results_bucket="pna-test")
    base.update(kw)
    return Settings.load(**base)


@pytest.fixture(scope="module")
def stack_up(moto_url):
    st = Stack(_settings(moto_url))
    return st.up()


@pytest.fixture
def client(moto_url, stack_up):
    return AwsBackend(_settings(moto_url), sleep=lambda s: None)


@pytest.fixture
def boundary(tmp_path) -> Path:
    p = tmp_path / "city.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return p


def _capture(client_obj, op: str) -> list[dict]:
    seen: list[dict] = []

    def hook(params, **kw):
        seen.append(json.loads(json.dumps(params, default=str)))

    client_obj.meta.events.register(f"provide-client-params.batch.{op}", hook)
    return seen


def _s3_get(client: AwsBackend, uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return client.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


# --------------------------------------------------------------------------- stack
def test_stack_up_twice_is_a_no_op_the_second_time(moto_url):
    s = _settings(moto_url, compute_environment="ce-idem", job_queue="q-idem",
                  job_definition="jd-idem", results_bucket="pna-idem")
    first = Stack(s).up()
    assert set(first.values()) <= {"created", "unchanged"}
    for key in ("compute-environment:ce-idem", "job-queue:q-idem", "job-definition:jd-idem",
                "s3://pna-idem"):
        assert first[key] == "created"
    assert any(k.startswith("iam-role:pna-batch-job-role") for k in first)
    second = Stack(s).up()
    assert set(second.values()) == {"unchanged"} and second.keys() == first.keys()
    status = Stack(s).status()
    assert status["compute_environment"]["state"] == "ENABLED"
    assert status["compute_environment"]["type"] == "SPOT"
    assert status["job_queue"]["state"] == "ENABLED"
    rev = status["job_definition"]["revision"]
    # the default network is the default VPC's subnets and its default security group
    ce = Stack(s).aws.client("batch").describe_compute_environments(
        computeEnvironments=["ce-idem"])["computeEnvironments"][0]["computeResources"]
    ec2 = Stack(s).aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = {x["SubnetId"] for x in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}
    assert set(ce["subnets"]) == subnets and ce["instanceRole"].endswith(
        "instance-profile/pna-batch-instance-profile")
    # a changed job definition content registers one new revision, the rest stays
    s2 = _settings(moto_url, compute_environment="ce-idem", job_queue="q-idem",
                   job_definition="jd-idem", results_bucket="pna-idem", job_vcpus=4)
    third = Stack(s2).up()
    assert third["job-definition:jd-idem"] == "updated"
    assert [k for k, v in third.items() if v != "unchanged"] == ["job-definition:jd-idem"]
    assert Stack(s2).status()["job_definition"]["revision"] == rev + 1
    assert set(Stack(s2).up().values()) == {"unchanged"}


def test_stack_scale_down_and_delete(moto_url):
    s = _settings(moto_url, compute_environment="ce-scale", job_queue="q-scale",
                  job_definition="jd-scale", results_bucket="pna-scale")
    st = Stack(s)
    with pytest.raises(InputError, match="run 'pna stack up' first"):
        st.scale(0, 4, 8)
    st.up()
    seen = _capture(st.aws.client("batch"), "UpdateComputeEnvironment")
    st.scale(min_vcpus=0, desired_vcpus=32, max_vcpus=256)
    assert seen[-1]["computeResources"] == {"minvCpus": 0, "desiredvCpus": 32, "maxvCpus": 256}
    with pytest.raises(InputError, match="min"):
        st.scale(8, 4, 2)
    assert st.down() == {"compute-environment:ce-scale": "scaled to 0"}
    assert seen[-1]["computeResources"]["desiredvCpus"] == 0
    assert seen[-1]["computeResources"]["minvCpus"] == 0
    out = st.down(delete=True)
    assert out["job-queue:q-scale"] == "deleted"
    status = st.status()
    assert status["job_queue"] is None and status["compute_environment"] is None
    assert status["job_definition"] is None


# --------------------------------------------------------------------------- submit
def test_submit_uploads_inputs_and_sets_the_container_contract(client, boundary, tmp_path):
    shp = tmp_path / "blocks.shp"
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        (tmp_path / f"blocks{ext}").write_bytes(ext.encode() * 10)
    seen = _capture(client.aws.client("batch"), "SubmitJob")
    req = jobs.AnalysisRequest(place="Test City", boundary=str(boundary), population=str(shp),
                               country="Finland", city_speed_limit=30)
    job = client.submit(req)
    assert job.backend == "aws" and job.place == "Test City" and job.status in jobs.STATUSES
    assert job.results_uri == f"s3://pna-test/results/{job.job_id}/"
    sub = seen[-1]
    assert sub["jobQueue"] == "pna-queue" and sub["jobDefinition"] == "pna-engine"
    assert sub["containerOverrides"]["command"] == ["run-job"]
    assert sub["retryStrategy"]["attempts"] >= 1 and sub["timeout"]["attemptDurationSeconds"] > 0
    cmd, env = client.container_environment(job.job_id)
    assert cmd == ["run-job"]
    sent = json.loads(env["PNA_REQUEST"])
    sha = hashlib.sha256(boundary.read_bytes()).hexdigest()
    assert sent["boundary"] == f"s3://pna-test/inputs/{sha}/city.geojson"
    assert _s3_get(client, sent["boundary"]) == boundary.read_bytes()
    shp_sha = input_digest(shp)  # of the .shp and all its sidecars
    assert sent["population"] == f"s3://pna-test/inputs/{shp_sha}/blocks.shp"
    for ext in (".shx", ".dbf", ".prj"):  # sidecars travel with the shapefile
        assert _s3_get(client, f"s3://pna-test/inputs/{shp_sha}/blocks{ext}") == ext.encode() * 10
    assert env["PNA_RESULTS_URI"] == "s3://pna-test/results/{job_id}/"
    assert job.request == sent
    assert client.results_location(job.job_id) == job.results_uri


def test_shapefile_prefix_hashes_every_sidecar(client, tmp_path):
    """A changed .dbf (or a new .cpg) is a new upload prefix: the container never fetches a
    .shp with a sidecar of another version (the engine caches by location)."""
    shp = tmp_path / "blocks.shp"
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        (tmp_path / f"blocks{ext}").write_bytes(ext.encode() * 10)
    (tmp_path / "blocks-other.dbf").write_bytes(b"not part of the set")
    s3 = client.aws.client("s3")
    first = upload_input(s3, "pna-test", shp)
    assert first == f"s3://pna-test/inputs/{input_digest(shp)}/blocks.shp"
    assert input_digest(shp) != hashlib.sha256(shp.read_bytes()).hexdigest()
    (tmp_path / "blocks.dbf").write_bytes(b"new attributes")
    second = upload_input(s3, "pna-test", shp)
    assert second != first
    assert _s3_get(client, second[:-4] + ".dbf") == b"new attributes"
    assert _s3_get(client, first[:-4] + ".dbf") == b".dbf" * 10  # the old set is untouched
    (tmp_path / "blocks.cpg").write_text("UTF-8")
    third = upload_input(s3, "pna-test", shp)
    assert third not in (first, second) and _s3_get(client, third[:-4] + ".cpg") == b"UTF-8"
    # a single file's prefix is its own SHA-256 (unchanged by sidecar rules)
    geo = tmp_path / "city.geojson"
    geo.write_text("{}")
    assert input_digest(geo) == hashlib.sha256(b"{}").hexdigest()


def test_array_submit_one_job_with_a_manifest(client, boundary):
    seen = _capture(client.aws.client("batch"), "SubmitJob")
    reqs = [jobs.AnalysisRequest(place=f"Place {i}", boundary=str(boundary)) for i in range(3)]
    children = client.submit_many(reqs)
    assert len(seen) == 1 and seen[0]["arrayProperties"] == {"size": 3}
    parent = children[0].array_parent
    assert [c.job_id for c in children] == [f"{parent}:{i}" for i in range(3)]
    assert [c.place for c in children] == ["Place 0", "Place 1", "Place 2"]
    assert [c.array_index for c in children] == [0, 1, 2]
    manifest = json.loads(_s3_get(client, f"s3://pna-test/results/{parent}/manifest.json"))
    assert [m["place"] for m in manifest] == ["Place 0", "Place 1", "Place 2"]
    assert children[2].results_uri == f"s3://pna-test/results/{parent}:2/"
    listed = client.list(place="Place 1")
    assert [j.job_id for j in listed] == [f"{parent}:1"]


def _desc(job_id: str, status: str, **kw) -> dict:
    d = {"jobId": job_id, "jobName": "p", "jobQueue": "q", "status": status,
         "createdAt": 1_700_000_000_000, "jobDefinition": "jd", "startedAt": 1_700_000_001_000,
         "container": {"environment": [
             {"name": "PNA_REQUEST", "value": json.dumps({"place": f"P {job_id}",
                                                          "boundary": "s3://b/x.geojson"})},
             {"name": "PNA_RESULTS_URI", "value": "s3://pna-test/results/{job_id}/"}]}}
    d.update(kw)
    return d


def test_list_paginates_and_describes_in_chunks_of_100(client):
    ids = [f"job-{i:03d}" for i in range(150)]
    summaries = [{"jobId": j, "jobName": "p", "createdAt": 1_700_000_000_000 + i}
                 for i, j in enumerate(ids)]
    batch = client.aws.client("batch")
    with Stubber(batch) as stub:
        for st in jobs.BATCH_STATUSES:  # every status is listed, page by page
            if st != "RUNNABLE":
                stub.add_response("list_jobs", {"jobSummaryList": []},
                                  {"jobQueue": "pna-queue", "jobStatus": st})
                continue
            stub.add_response("list_jobs", {"jobSummaryList": summaries[:100], "nextToken": "t1"},
                              {"jobQueue": "pna-queue", "jobStatus": st})
            stub.add_response("list_jobs", {"jobSummaryList": summaries[100:]},
                              {"jobQueue": "pna-queue", "jobStatus": st, "nextToken": "t1"})
        descs = [_desc(s["jobId"], "RUNNABLE", createdAt=s["createdAt"]) for s in summaries]
        stub.add_response("describe_jobs", {"jobs": descs[:100]}, {"jobs": ids[:100]})
        stub.add_response("describe_jobs", {"jobs": descs[100:]}, {"jobs": ids[100:]})
        listed = client.list(status="RUNNABLE")
        stub.assert_no_pending_responses()
    assert len(listed) == 150 and listed[0].job_id == "job-149"  # newest first
    assert listed[-1].place == "P job-000"


def test_cancel_active_and_finished_jobs(client, boundary):
    batch = client.aws.client("batch")
    with Stubber(batch) as stub:
        stub.add_response("describe_jobs", {"jobs": [_desc("a", "RUNNING"), _desc("b", "RUNNABLE")]},
                          {"jobs": ["a", "b"]})
        stub.add_response("terminate_job", {}, {"jobId": "a", "reason": "cancelled by user"})
        stub.add_response("cancel_job", {}, {"jobId": "b", "reason": "cancelled by user"})
        for j in ("a", "b"):
            stub.add_response("describe_jobs", {"jobs": [_desc(j, "FAILED",
                                                                statusReason="cancelled by user")]},
                              {"jobs": [j]})
        out = client.cancel(["a", "b"])
        stub.assert_no_pending_responses()
    assert [j.status for j in out] == ["FAILED", "FAILED"]
    assert out[0].reason.startswith("cancelled by user")
    job = client.submit(jobs.AnalysisRequest(place="Done", boundary=str(boundary)))
    assert client.get(job.job_id).status == "SUCCEEDED"  # moto finishes at submit
    with pytest.raises(jobs.JobError, match="cannot cancel finished"):
        client.cancel(job.job_id)


def test_backoff_on_throttling_and_5xx(moto_url, stack_up):
    sleeps: list[float] = []
    c = AwsBackend(_settings(moto_url), sleep=sleeps.append)
    batch = c.aws.client("batch")
    with Stubber(batch) as stub:
        stub.add_client_error("describe_jobs", "TooManyRequestsException", http_status_code=429)
        stub.add_client_error("describe_jobs", "ThrottlingException", http_status_code=400)
        stub.add_client_error("describe_jobs", "ServerError", http_status_code=503)
        stub.add_response("describe_jobs", {"jobs": [_desc("x", "SUCCEEDED")]}, {"jobs": ["x"]})
        assert c.get("x").status == "SUCCEEDED"
        stub.add_client_error("describe_jobs", "ClientException", "bad request",
                              http_status_code=400)
        with pytest.raises(InputError, match="ClientException: bad request"):
            c.get("y")
    assert len(sleeps) == 3 and sleeps[0] < 0.6 and max(sleeps) > 0.9  # exponential


def test_wait_follows_running_to_succeeded_with_the_engine_phase(client):
    s3 = client.aws.client("s3")
    s3.put_object(Bucket="pna-test", Key="results/r1/status.json",
                  Body=json.dumps({"state": "running", "phase": "connectivity"}).encode())
    batch = client.aws.client("batch")
    with Stubber(batch) as stub:
        for st in ("RUNNABLE", "STARTING", "RUNNING"):
            stub.add_response("describe_jobs", {"jobs": [_desc("r1", st)]}, {"jobs": ["r1"]})
        stub.add_response("describe_jobs", {"jobs": [_desc("r1", "SUCCEEDED",
                                                           stoppedAt=1_700_000_100_000)]},
                          {"jobs": ["r1"]})
        first = client.get("r1")
        assert first.status == "RUNNABLE" and first.phase is None
        [done] = client.wait(["r1"], timeout=30, progress=True, poll=0.01)
        stub.assert_no_pending_responses()
    assert done.status == "SUCCEEDED" and done.duration_s == 99.0


def test_failed_job_reason_includes_the_engine_error(client):
    client.aws.client("s3").put_object(
        Bucket="pna-test", Key="results/f1/status.json",
        Body=json.dumps({"state": "failed", "phase": "import", "error": "boundary is empty"}))
    with Stubber(client.aws.client("batch")) as stub:
        stub.add_response("describe_jobs", {"jobs": [_desc(
            "f1", "FAILED", statusReason="Essential container in task exited")]}, {"jobs": ["f1"]})
        job = client.get("f1")
    assert job.phase == "import"
    assert job.reason == "Essential container in task exited; engine: boundary is empty"


def test_logs_from_cloudwatch(client, boundary):
    job = client.submit(jobs.AnalysisRequest(place="Logged", boundary=str(boundary)))
    stream = job.extra["log_stream"]
    assert stream
    logs = client.aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/aws/batch/job")
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    lines = ["[pna-job] phase import", "[pna-job] phase features", "[pna-job] done in 1.0 s"]
    logs.put_log_events(logGroupName="/aws/batch/job", logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": m}
                                   for i, m in enumerate(lines)])
    assert client.logs(job.job_id) == "\n".join(lines) + "\n"
    assert client.logs(job.job_id, tail=1) == lines[-1] + "\n"
    assert client.logs(job.job_id, tail=0) == ""  # no lines, not the whole log
    for bad in (-1, "3", 1.5):
        with pytest.raises(jobs.JobError, match="^tail must be") as ei:
            client.logs(job.job_id, tail=bad)
        assert "\n" not in str(ei.value)


def test_logs_of_a_job_that_has_not_started_are_empty_as_on_the_local_backend(client):
    """No stream yet is no log (``pna logs`` says why on stderr), not an error: a notebook
    printing a queued job's log must not fail."""
    with Stubber(client.aws.client("batch")) as stub:
        stub.add_response("describe_jobs", {"jobs": [_desc("q1", "RUNNABLE")]}, {"jobs": ["q1"]})
        assert client.logs("q1") == ""
        stub.assert_no_pending_responses()


def test_log_tail_reads_back_page_by_page(client, boundary, monkeypatch):
    """A tail longer than one page of get_log_events goes back page by page (CloudWatch
    gives at most 10,000 events a page); the whole log goes forward the same way."""
    import pna_helpers.jobs.aws as aws_mod

    job = client.submit(jobs.AnalysisRequest(place="Long log", boundary=str(boundary)))
    stream = job.extra["log_stream"]
    logs = client.aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/aws/batch/job")
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    lines = [f"line {i}" for i in range(7)]
    logs.put_log_events(logGroupName="/aws/batch/job", logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": m}
                                   for i, m in enumerate(lines)])
    seen = []
    logs.meta.events.register("provide-client-params.logs.GetLogEvents",
                              lambda params, **kw: seen.append(dict(params)))
    monkeypatch.setattr(aws_mod, "LOG_PAGE", 2)
    assert client.logs(job.job_id, tail=5) == "".join(m + "\n" for m in lines[-5:])
    assert len(seen) == 3 and all(s["limit"] == 2 for s in seen)
    assert "nextToken" in seen[1] and seen[2]["nextToken"] != seen[1]["nextToken"]
    assert client.logs(job.job_id, tail=50) == "".join(m + "\n" for m in lines)


def test_token_pages_stops_on_the_last_token_a_repeat_or_an_empty_page():
    from pna_helpers.jobs.aws import token_pages

    def pages(answers):
        calls = []

        def fetch(**kw):
            calls.append(kw)
            return answers[len(calls) - 1]
        return calls, fetch

    calls, fetch = pages([{"items": [1], "nextToken": "a"}, {"items": [2], "nextToken": "b"},
                          {"items": [3]}])
    got = [p["items"] for p in token_pages(fetch, jobQueue="q")]
    assert got == [[1], [2], [3]]
    assert calls == [{"jobQueue": "q"}, {"jobQueue": "q", "nextToken": "a"},
                     {"jobQueue": "q", "nextToken": "b"}]
    # CloudWatch Logs: the end of a stream answers with the token it was given
    calls, fetch = pages([{"events": [1], "nextForwardToken": "f1"},
                          {"events": [2], "nextForwardToken": "f1"}])
    assert len(list(token_pages(fetch, token_field="nextForwardToken", items="events"))) == 2
    calls, fetch = pages([{"events": [1], "nextForwardToken": "f1"},
                          {"events": [], "nextForwardToken": "f2"}])
    assert len(list(token_pages(fetch, token_field="nextForwardToken", items="events"))) == 2
    calls, fetch = pages([{"Contents": [1], "NextContinuationToken": "c"}, {"Contents": [2]}])
    list(token_pages(fetch, token_arg="ContinuationToken", token_field="NextContinuationToken"))
    assert calls[1] == {"ContinuationToken": "c"}


def test_submit_many_of_nothing_calls_no_aws(moto_url):
    # an endpoint nobody answers: any call would fail
    c = AwsBackend(_settings("http://127.0.0.1:9", aws_max_attempts=1), sleep=lambda s: None)
    assert c.submit_many([]) == []
    assert c.submit_many(iter([])) == []
    with pytest.raises(jobs.JobError, match="expected an AnalysisRequest"):
        c.submit_many(["not a request", "x"])


def test_array_children_are_made_without_describing_them(client, boundary):
    described = _capture(client.aws.client("batch"), "DescribeJobs")
    reqs = [jobs.AnalysisRequest(place=f"Unborn {i}", boundary=str(boundary)) for i in range(3)]
    children = client.submit_many(reqs)
    assert described == []  # Batch creates the children later: nothing to describe yet
    parent = children[0].array_parent
    assert [c.job_id for c in children] == [f"{parent}:{i}" for i in range(3)]
    assert [c.status for c in children] == ["SUBMITTED"] * 3
    assert [c.place for c in children] == ["Unborn 0", "Unborn 1", "Unborn 2"]
    assert children[1].request["place"] == "Unborn 1"
    assert children[1].results_uri == f"s3://pna-test/results/{parent}:1/"
    assert children[0].created_at is not None
    # the records are what Batch reports once the children exist (moto: at once)
    got = client.get(children[2].job_id)
    assert (got.place, got.array_index, got.results_uri, got.request) == (
        children[2].place, 2, children[2].results_uri, children[2].request)


def test_a_child_batch_has_not_created_yet_reads_as_its_parent(client):
    manifest = [{"place": f"Kid {i}", "boundary": "s3://b/x.geojson"} for i in range(3)]
    client.aws.client("s3").put_object(Bucket="pna-test", Key="manifests/unborn.json",
                                       Body=json.dumps(manifest).encode())

    def parent(status, **kw):
        return _desc("par", status, arrayProperties={"size": 3}, container={"environment": [
            {"name": "PNA_MANIFEST", "value": "s3://pna-test/manifests/unborn.json"},
            {"name": "PNA_RESULTS_URI", "value": "s3://pna-test/results/{job_id}/"}]}, **kw)

    with Stubber(client.aws.client("batch")) as stub:
        stub.add_response("describe_jobs", {"jobs": []}, {"jobs": ["par:1"]})
        stub.add_response("describe_jobs", {"jobs": [parent("PENDING")]}, {"jobs": ["par"]})
        kid = client.get("par:1")
        # wait: not created yet (the parent's RUNNABLE), then the child itself
        stub.add_response("describe_jobs", {"jobs": []}, {"jobs": ["par:1"]})
        stub.add_response("describe_jobs", {"jobs": [parent("RUNNABLE")]}, {"jobs": ["par"]})
        stub.add_response("describe_jobs", {"jobs": [_desc("par:1", "SUCCEEDED", arrayProperties={
            "index": 1}, stoppedAt=1_700_000_100_000)]}, {"jobs": ["par:1"]})
        [done] = client.wait(["par:1"], timeout=30, progress=False, poll=0.01)
        # an index past the array's size is unknown
        stub.add_response("describe_jobs", {"jobs": []}, {"jobs": ["par:7"]})
        stub.add_response("describe_jobs", {"jobs": [parent("PENDING")]}, {"jobs": ["par"]})
        with pytest.raises(jobs.JobError, match="unknown job id.*par:7"):
            client.get("par:7")
        stub.assert_no_pending_responses()
    assert (kid.job_id, kid.status, kid.array_parent, kid.array_index) == ("par:1", "PENDING",
                                                                           "par", 1)
    assert kid.place == "Kid 1" and kid.request == manifest[1]
    assert kid.results_uri == "s3://pna-test/results/par:1/"
    assert kid.extra["log_stream"] is None and kid.extra["status_from_parent"]
    assert done.status == "SUCCEEDED"


def test_a_child_batch_has_not_created_yet_is_cancelled_only_with_its_whole_array(client):
    def parent(status):
        return _desc("arr", status, arrayProperties={"size": 2})

    with Stubber(client.aws.client("batch")) as stub:
        # one child of two: refused before anything is cancelled, the whole array named
        stub.add_response("describe_jobs", {"jobs": []}, {"jobs": ["arr:1"]})
        stub.add_response("describe_jobs", {"jobs": [parent("PENDING")]}, {"jobs": ["arr"]})
        with pytest.raises(jobs.JobError) as ei:
            client.cancel(["arr:1"])
        # both children: the parent is cancelled, once, and the children read as it
        stub.add_response("describe_jobs", {"jobs": []}, {"jobs": ["arr:0", "arr:1"]})
        stub.add_response("describe_jobs", {"jobs": [parent("RUNNABLE")]}, {"jobs": ["arr"]})
        stub.add_response("cancel_job", {}, {"jobId": "arr", "reason": "cancelled by user"})
        for kid in ("arr:0", "arr:1"):
            stub.add_response("describe_jobs", {"jobs": []}, {"jobs": [kid]})
            stub.add_response("describe_jobs", {"jobs": [parent("FAILED")]}, {"jobs": ["arr"]})
        out = client.cancel(["arr:0", "arr:1"])
        stub.assert_no_pending_responses()
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("job arr:1 is not created yet by AWS Batch")
    assert "'pna cancel arr', all 2 places" in msg
    assert [(j.job_id, j.status) for j in out] == [("arr:0", "FAILED"), ("arr:1", "FAILED")]


def test_user_errors_are_one_line_messages(moto_url, stack_up, monkeypatch, tmp_path, boundary):
    c = AwsBackend(_settings(moto_url), sleep=lambda s: None)
    with pytest.raises(jobs.JobError, match="unknown job id"):
        c.get(str(uuid.uuid4()))
    other = AwsBackend(_settings(moto_url, job_queue="no-such-queue"))
    with pytest.raises(jobs.JobError, match="job queue 'no-such-queue' does not exist.*pna stack up"):
        other.submit(jobs.AnalysisRequest(place="X", boundary=str(boundary)))
    with pytest.raises(jobs.JobError, match="does not exist"):
        other.list()
    nobucket = AwsBackend(_settings(moto_url, results_bucket="pna-no-such-bucket"))
    with pytest.raises(InputError, match="bucket does not exist - run 'pna stack up'"):
        nobucket.submit(jobs.AnalysisRequest(place="X", boundary=str(boundary)))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    nocreds = AwsBackend(_settings(moto_url))
    with pytest.raises(InputError, match="no AWS credentials found") as ei:
        nocreds.get("anything")
    assert "\n" not in str(ei.value)
    with pytest.raises(InputError, match="^batch list_jobs: no AWS credentials found"):
        nocreds.list()


def test_cli_against_the_emulator(moto_url, stack_up, boundary):
    env = dict(os.environ, PNA_BACKEND="aws", PNA_RESULTS_BUCKET="pna-test")

    def pna(*args):
        return subprocess.run([sys.executable, "-m", "pna_helpers.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    r = pna("submit", "--place", "CLI city", "--boundary", str(boundary), "--country", "Finland")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    assert len(r.stdout.splitlines()) == 1 and len(job_id) == 36
    r = pna("wait", job_id, "--no-progress", "--timeout", "30")
    assert r.returncode == 0, r.stderr  # moto's jobs succeed at once
    r = pna("results", job_id)
    assert r.stdout.strip() == f"s3://pna-test/results/{job_id}/"
    r = pna("list", "--json", "--place", "CLI city")
    assert [j["job_id"] for j in json.loads(r.stdout)] == [job_id]
    r = pna("stack", "status")
    assert r.returncode == 0 and json.loads(r.stdout)["job_queue"]["state"] == "ENABLED"
    types = json.loads(r.stdout)["compute_environment"]["instance_types"]
    r = pna("stack", "scale", "--max", "64")
    assert r.returncode == 0 and f"instance_types: {', '.join(types)}\n" in r.stdout  # no repr
    r = pna("status", "no-such-job")
    assert r.returncode == 2 and r.stderr.startswith("pna: error: unknown job id")
    # moto's finished job has a stream name but no stream: not "no log stream ... yet"
    r = pna("logs", job_id, "--tail", "5")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"pna: error: job {job_id} (SUCCEEDED) has no log: its stream ")
    assert "retention" in r.stderr and r.stderr.count("\n") == 1


# --------------------------------------------------------------------------- container contract
def _run_container(cmd: list[str], env: dict[str, str], scratch: Path) -> subprocess.CompletedProcess:
    """Run the job's command as the image would (entrypoint ``pna-engine``), without Docker."""
    full = dict(os.environ)
    full.update(env)
    full["PNA_SCRATCH"] = str(scratch)  # the job definition's /tmp
    scratch.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pna_engine", *cmd], env=full,
                          capture_output=True, text=True, timeout=600)


def test_container_contract_failure_is_visible_in_s3(client, tmp_path):
    bad = tmp_path / "garbage.geojson"
    bad.write_text("not a boundary")
    job = client.submit(jobs.AnalysisRequest(place="Garbage", boundary=str(bad), offline=True))
    cmd, env = client.container_environment(job.job_id)
    assert env["AWS_BATCH_JOB_ID"] == job.job_id
    r = _run_container(cmd, env, tmp_path / "scratch")
    assert r.returncode in (1, 2), r.stderr
    status = json.loads(_s3_get(client, job.results_uri + "status.json"))
    assert status["state"] == "failed" and status["error"]
    keys = [o["Key"] for o in client.aws.client("s3").list_objects_v2(
        Bucket="pna-test", Prefix=f"results/{job.job_id}/").get("Contents", [])]
    assert keys == [f"results/{job.job_id}/status.json"]  # nothing that looks complete
    assert not list((tmp_path / "scratch").iterdir())  # scratch cleaned


def test_container_contract_array_child_reads_its_manifest_entry(client, tmp_path):
    reqs = []
    for i in range(2):
        p = tmp_path / f"b{i}.geojson"
        p.write_text(f"broken {i}")
        reqs.append(jobs.AnalysisRequest(place=f"Child {i}", boundary=str(p), offline=True))
    children = client.submit_many(reqs)
    cmd, env = client.container_environment(children[1].job_id)
    env = dict(env, AWS_BATCH_JOB_ARRAY_INDEX="1")  # Batch sets it in child 1
    r = _run_container(cmd, env, tmp_path / "scratch")
    assert r.returncode in (1, 2)
    assert "Child 1" in r.stderr and "Child 0" not in r.stderr
    status = json.loads(_s3_get(client, children[1].results_uri + "status.json"))
    assert status["state"] == "failed"


@pytest.mark.slow
def test_container_contract_end_to_end(client, tmp_path):
    from pna_helpers.results import load_results

    job = client.submit(jobs.demo_request())
    cmd, env = client.container_environment(job.job_id)
    r = _run_container(cmd, env, tmp_path / "scratch")
    assert r.returncode == 0, r.stderr[-3000:]
    status = json.loads(_s3_get(client, job.results_uri + "status.json"))
    assert status["state"] == "succeeded"
    res = load_results(client.results_location(job.job_id))
    scores = res.overall_scores
    assert "overall_score" in set(scores["score_id"])
    run = json.loads(_s3_get(client, job.results_uri + "run.json"))
    assert run["parameters"]["country"] == "Finland"


def test_container_upload_failure_never_looks_complete(client, tmp_path, monkeypatch):
    from pna_engine import jobrunner

    job = client.submit(jobs.demo_request())
    cmd, env = client.container_environment(job.job_id)
    assert cmd == ["run-job"]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PNA_SCRATCH", str(tmp_path))
    real_put = jobrunner.ResultsSink.put

    def flaky_put(self, path, name=None):  # the network drops during the results upload
        if (name or path.name).startswith("neighborhood_ways"):
            raise OSError("connection reset by peer")
        return real_put(self, path, name)

    monkeypatch.setattr(jobrunner.ResultsSink, "put", flaky_put)
    assert jobrunner.main() == 1
    status = json.loads(_s3_get(client, job.results_uri + "status.json"))
    assert status["state"] == "failed"
    assert status["error"] == "results upload failed: connection reset by peer"
    keys = {o["Key"] for o in client.aws.client("s3").list_objects_v2(
        Bucket="pna-test", Prefix=f"results/{job.job_id}/").get("Contents", [])}
    assert f"results/{job.job_id}/run.json" not in keys  # uploaded last, so never here
    assert not list(tmp_path.iterdir())  # scratch cleaned


def test_stack_fargate(moto_url):
    s = _settings(moto_url, compute_type="FARGATE", compute_environment="ce-fg", job_queue="q-fg",
                  job_definition="jd-fg", results_bucket="pna-fg")
    out = Stack(s).up()
    assert "instance-profile:pna-batch-instance-profile" not in out  # no EC2 hosts to profile
    st = Stack(s)
    assert st.status()["compute_environment"]["type"] == "FARGATE"
    jd = st.aws.client("batch").describe_job_definitions(
        jobDefinitionName="jd-fg", status="ACTIVE")["jobDefinitions"][0]
    assert jd["platformCapabilities"] == ["FARGATE"]
    res = {r["type"]: int(r["value"]) for r in jd["containerProperties"]["resourceRequirements"]}
    assert res["MEMORY"] % 1024 == 0 and 2048 * res["VCPU"] <= res["MEMORY"] <= 8192 * res["VCPU"]
    assert jd["containerProperties"]["executionRoleArn"].endswith("role/pna-batch-execution-role")


def test_container_fetches_shapefiles_with_their_sidecars(client, tmp_path):
    """S3 and HTTP inputs: a .shp comes with its .shx/.dbf/.prj (the engine needs them)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from pna_engine.remote import fetch
    from pna_helpers.jobs.storage import upload_input

    src = tmp_path / "src"
    src.mkdir()
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        (src / f"zones{ext}").write_bytes(f"content of {ext}".encode())
    uri = upload_input(client.aws.client("s3"), "pna-test", src / "zones.shp")
    got = fetch(uri, tmp_path / "from-s3")
    assert got.name == "zones.shp"
    assert sorted(p.name for p in got.parent.iterdir()) == ["zones.dbf", "zones.prj",
                                                            "zones.shp", "zones.shx"]
    assert (got.parent / "zones.prj").read_bytes() == b"content of .prj"

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(Quiet, directory=str(src)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        got = fetch(f"http://127.0.0.1:{httpd.server_address[1]}/zones.shp", tmp_path / "http")
    finally:
        httpd.shutdown()
    assert sorted(p.name for p in got.parent.iterdir()) == ["zones.dbf", "zones.prj",
                                                            "zones.shp", "zones.shx"]
    with pytest.raises(InputError, match="does not exist"):
        fetch("s3://pna-test/inputs/nope/missing.geojson", tmp_path / "x")
