"""Campaigns on AWS Batch against the moto server: array jobs split at a limit, the campaign
document in S3 and its tag on every job, counts from the parents' statusSummary (real moto),
intermediate states and phases with botocore's Stubber (moto finishes jobs at submit), cancel
and results read from S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("moto")
from botocore.stub import ANY, Stubber  # noqa: E402
from test_jobs_aws import _settings, stack_up  # noqa: E402, F401

from pna_helpers import campaigns  # noqa: E402
from pna_helpers.jobs.aws import AwsBackend  # noqa: E402

pytestmark = pytest.mark.aws


@pytest.fixture
def client(moto_url, stack_up):  # noqa: F811
    return AwsBackend(_settings(moto_url), sleep=lambda s: None)


def _requests(tmp_path: Path, n: int) -> list:
    from pna_helpers.jobs import AnalysisRequest

    out = []
    for i in range(n):
        b = tmp_path / f"b{i}.geojson"
        b.write_text(json.dumps({"type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"i": i}, "geometry": {"type": "Polygon",
            "coordinates": [[[24.9, 60.1], [24.91, 60.1], [24.91, 60.11], [24.9, 60.1]]]}}]}))
        out.append(AnalysisRequest(place=f"Place {i}", boundary=str(b), country="Finland",
                                   offline=True))
    return out


def test_campaign_is_split_into_arrays_and_persisted_in_s3(client, tmp_path) -> None:
    camp = campaigns.create("aws-split", _requests(tmp_path, 7), client, max_array=3)
    arrays = camp.doc["arrays"]
    assert [a["size"] for a in arrays] == [3, 3, 1] and arrays[2]["single"]
    parents = [a["job_id"] for a in arrays]
    assert camp.job_ids[:3] == [f"{parents[0]}:{i}" for i in range(3)]
    assert camp.job_ids[6] == parents[2]
    batch = client.aws.client("batch")
    for jid in parents:  # every job carries the campaign tag
        d = batch.describe_jobs(jobs=[jid])["jobs"][0]
        assert d["tags"]["pna:campaign"] == "aws-split"
    # each array's manifest holds its own places, in order
    d = batch.describe_jobs(jobs=[parents[1]])["jobs"][0]
    env = {e["name"]: e["value"] for e in d["container"]["environment"]}
    bucket, key = env["PNA_MANIFEST"][5:].split("/", 1)
    manifest = json.loads(client.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [m["place"] for m in manifest] == ["Place 3", "Place 4", "Place 5"]
    assert manifest[0]["boundary"].startswith("s3://")
    # the campaign document is in S3: another client (a notebook days later) loads it
    other = AwsBackend(_settings(client.settings.endpoint_url), sleep=lambda s: None)
    again = campaigns.load("aws-split", other)
    assert again.job_ids == camp.job_ids and again.doc["max_array"] == 3
    assert "aws-split" in [c["name"] for c in campaigns.list_campaigns(other)]
    with pytest.raises(Exception, match="already exists"):
        campaigns.create("aws-split", _requests(tmp_path, 2), client)
    # a status refresh describes the 3 parents in one call; no child is described
    seen: list[str] = []
    other.aws.client("batch").meta.events.register(
        "before-call.batch", lambda model, **kw: seen.append(model.name))
    st = again.status(failures=False)
    assert sum(st.counts.values()) == 7
    assert seen.count("DescribeJobs") == 1 and "ListJobs" not in seen
    assert st.api_calls <= 2


def test_status_from_the_summary_with_intermediate_states(client, tmp_path) -> None:
    camp = campaigns.create("aws-summary", _requests(tmp_path, 5), client, max_array=3)
    p0, p1 = (a["job_id"] for a in camp.doc["arrays"])
    camp = campaigns.load("aws-summary", client)
    batch = camp._ops.client.aws.client("batch")

    def parent(jid: str, status: str, summary: dict) -> dict:
        return {"jobId": jid, "jobName": "x", "jobQueue": "q", "status": status,
                "jobDefinition": "d", "startedAt": 1, "createdAt": 1,
                "arrayProperties": {"size": sum(summary.values()),
                                    "statusSummary": summary}}

    with Stubber(batch) as stub:
        stub.add_response("describe_jobs", {"jobs": [
            parent(p0, "RUNNING", {"RUNNING": 2, "RUNNABLE": 1}),
            parent(p1, "PENDING", {"SUBMITTED": 0, "PENDING": 2})]},
            {"jobs": [p0, p1]})
        # phases: one list_jobs of the running children of the first array (S3 stays real)
        stub.add_response("list_jobs", {"jobSummaryList": [
            {"jobId": f"{p0}:0", "jobName": "x"}, {"jobId": f"{p0}:1", "jobName": "x"}]},
            {"arrayJobId": p0, "jobStatus": "RUNNING", "maxResults": 1000})
        s3 = client.aws.client("s3")
        s3.put_object(Bucket="pna-test", Key=f"results/{p0}:0/status.json",
                      Body=json.dumps({"state": "running", "phase": "connectivity"}).encode())
        st = camp.status(failures=False)
        stub.assert_no_pending_responses()
    assert st.counts["RUNNING"] == 2 and st.counts["RUNNABLE"] == 1
    assert st.counts["PENDING"] == 2 and st.counts["SUCCEEDED"] == 0
    assert st.phases == {"connectivity": 1}
    assert st.done == 0 and st.eta_basis == "pre-submit estimate" and st.eta_s > 0
    # then: one failed child; the failure group carries the engine's error from S3
    s3.put_object(Bucket="pna-test", Key=f"results/{p1}:1/status.json",
                  Body=json.dumps({"state": "failed", "error": "no census block of "
                                   "/scratch/x/blocks.zip overlaps the boundary"}).encode())
    with Stubber(batch) as stub:
        stub.add_response("describe_jobs", {"jobs": [
            parent(p0, "SUCCEEDED", {"SUCCEEDED": 3}),
            parent(p1, "FAILED", {"SUCCEEDED": 1, "FAILED": 1})]}, {"jobs": [p0, p1]})
        stub.add_response("describe_jobs", {"jobs": [
            parent(p0, "SUCCEEDED", {"SUCCEEDED": 3}),
            parent(p1, "FAILED", {"SUCCEEDED": 1, "FAILED": 1})]}, {"jobs": [p0, p1]})
        for jid, status, items in (
                (p0, "SUCCEEDED", [(f"{p0}:{i}", None) for i in range(3)]),
                (p1, "SUCCEEDED", [(f"{p1}:0", None)]),
                (p1, "FAILED", [(f"{p1}:1", "Essential container in task exited")])):
            stub.add_response("list_jobs", {"jobSummaryList": [
                {"jobId": j, "jobName": "x", "startedAt": 1_000_000, "stoppedAt": 1_060_000,
                 **({"statusReason": r} if r else {})} for j, r in items]},
                {"arrayJobId": jid, "jobStatus": status, "maxResults": 1000})
        stub.add_response("describe_jobs", {"jobs": [  # the log excerpt of the group
            {"jobId": f"{p1}:1", "jobName": "x", "jobQueue": "q", "status": "FAILED",
             "jobDefinition": "d", "startedAt": 1, "createdAt": 1}]}, {"jobs": [f"{p1}:1"]})
        st = camp.status()
    assert st.counts == {"SUBMITTED": 0, "PENDING": 0, "RUNNABLE": 0, "STARTING": 0,
                         "RUNNING": 0, "SUCCEEDED": 4, "FAILED": 1}
    [g] = st.failures
    assert g["count"] == 1 and "overlaps the boundary" in g["reason"] and "<file>" in g["reason"]
    assert st.vcpu_hours == pytest.approx(5 * 60 * 2 / 3600, rel=1e-3)
    assert st.cost == pytest.approx(st.vcpu_hours * 0.02, abs=1e-4)
    assert st.throughput_per_hour > 0


def test_cancel_stops_only_this_campaigns_arrays(client, tmp_path) -> None:
    camp = campaigns.create("aws-cancel", _requests(tmp_path, 4), client, max_array=2)
    p0, p1 = (a["job_id"] for a in camp.doc["arrays"])
    batch = camp._ops.client.aws.client("batch")
    with Stubber(batch) as stub:
        stub.add_response("describe_jobs", {"jobs": [
            {"jobId": p0, "jobName": "x", "jobQueue": "q", "status": "RUNNING",
             "jobDefinition": "d", "startedAt": 1, "createdAt": 1,
             "arrayProperties": {"size": 2, "statusSummary": {"RUNNING": 1, "SUCCEEDED": 1}}},
            {"jobId": p1, "jobName": "x", "jobQueue": "q", "status": "SUCCEEDED",
             "jobDefinition": "d", "startedAt": 1, "createdAt": 1,
             "arrayProperties": {"size": 2, "statusSummary": {"SUCCEEDED": 2}}}]},
            {"jobs": ANY})
        stub.add_response("terminate_job", {}, {"jobId": p0, "reason": ANY})
        assert camp.cancel() == 1
        stub.assert_no_pending_responses()


def test_results_table_reads_scores_from_s3(client, tmp_path) -> None:
    """moto finishes the children: their results (written here as the container would)
    become one table row per place, read straight from S3."""
    camp = campaigns.create("aws-results", _requests(tmp_path, 3), client, max_array=10)
    s3 = client.aws.client("s3")
    for i, jid in enumerate(camp.job_ids):
        prefix = f"results/{jid}/"
        s3.put_object(Bucket="pna-test", Key=prefix + "neighborhood_overall_scores.csv",
                      Body=("id,score_id,score_original,score_normalized,human_explanation\n"
                            f"1,people,0.5,50.0,\n2,overall_score,0.{i + 4},{i + 4}0.0,\n"
                            "3,population_total,1200,,\n4,total_miles_low_stress,3.5,3.5,\n"
                            "5,total_miles_high_stress,1.5,1.5,\n").encode())
        s3.put_object(Bucket="pna-test", Key=prefix + "run.json", Body=json.dumps(
            {"engine_version": "0.1.0", "timings_s": {"total": 2.5},
             "counts": {"blocks": 12}}).encode())
    table = camp.results()
    assert list(table["status"]) == ["SUCCEEDED"] * 3
    assert list(table["bna_overall_score"]) == [40.0, 50.0, 60.0]
    assert list(table["rank"]) == [3, 2, 1]
    assert (table["population"] == 1200).all() and (table["blocks"] == 12).all()
    assert (table["bna_total_low_stress_miles"] == 3.5).all()
    out = campaigns.write_table(camp, tmp_path / "t.gpkg", table)
    import geopandas as gpd

    assert len(gpd.read_file(out)) == 3
