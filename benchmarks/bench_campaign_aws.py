"""A campaign of many places against the AWS emulator (a moto server on loopback): submit
time, API calls per status refresh, polling back-off, dashboard refresh time.

    python benchmarks/bench_campaign_aws.py [--places 2000] [--max-array 10000]

Each place has its own small boundary file (uploaded content-addressed, as for real). moto's
Batch (``use_docker: false``) finishes jobs at submit and fills ``statusSummary``, so the
refresh measured here is the one of a finished campaign; the call pattern of a running one is
the same (parents only) plus one ``list_jobs`` and at most 20 ``status.json`` reads for phases.
Nothing is asserted. Needs ``moto[server]`` (dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--places", type=int, default=2000)
    ap.add_argument("--max-array", type=int, default=10_000)
    a = ap.parse_args(argv)
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("moto[server] is not installed: skipped")
        return 0
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # AWS's managed policies exist
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    urllib.request.urlopen(urllib.request.Request(
        url + "/moto-api/config", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"batch": {"use_docker": False}}).encode()), timeout=10).read()
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1",
                      AWS_REGION="eu-west-1")
    os.environ.pop("AWS_PROFILE", None)
    from pna_helpers import campaigns
    from pna_helpers.campaigns._core import next_interval
    from pna_helpers.config import Settings
    from pna_helpers.jobs import AnalysisRequest
    from pna_helpers.jobs.aws import AwsBackend
    from pna_helpers.jobs.stack import Stack

    settings = Settings.load(backend="aws", endpoint_url=url, region="eu-west-1",
                             results_bucket="pna-bench")
    Stack(settings).up()
    client = AwsBackend(settings, sleep=lambda s: None)
    tmp = Path(tempfile.mkdtemp(prefix="pna-bench-aws-"))
    reqs = []
    for i in range(a.places):
        b = tmp / f"b{i}.geojson"
        x, y = 24.9 + (i % 50) * 0.01, 60.1 + (i // 50) * 0.01
        b.write_text(json.dumps({"type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
                [[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y]]]}}]}))
        reqs.append(AnalysisRequest(place=f"Place {i:05d}", boundary=str(b), country="Finland",
                                    offline=True))
    t0 = time.perf_counter()
    camp = campaigns.create("bench-aws", reqs, client, estimate=False, max_array=a.max_array)
    t_submit = time.perf_counter() - t0
    calls_submit = camp._ops.calls
    camp = campaigns.load("bench-aws", AwsBackend(settings, sleep=lambda s: None))
    t1 = time.perf_counter()
    st = camp.status(failures=False)
    t_quick = time.perf_counter() - t1
    t2 = time.perf_counter()
    full = camp.status(failures=True)
    html = campaigns.status_html(full)
    t_full = time.perf_counter() - t2
    t3 = time.perf_counter()
    again = camp.status(failures=True)
    t_again = time.perf_counter() - t3
    n_arrays = len(camp.doc["arrays"])
    print(f"\n{a.places} places, arrays of at most {a.max_array}: {n_arrays} array job(s)")
    print(f"  submit: {t_submit:.1f} s, {calls_submit:,} API calls "
          f"({calls_submit / a.places:.2f} per place: one HEAD + PUT per new input file, "
          "a manifest and a submit_job per array)")
    print(f"  status refresh (dashboard): {st.api_calls} API call(s) "
          f"({st.api_calls / n_arrays:.1f} per array), {t_quick:.3f} s; counts {st.counts}")
    print(f"  first full status (vCPU-hours, failure groups): {full.api_calls} API calls, "
          f"{t_full:.3f} s with the HTML dashboard ({len(html):,} chars)")
    print(f"  next full status, counts unchanged: {again.api_calls} API call(s), {t_again:.3f} s")
    iv, seq = client.default_poll, []
    for _ in range(10):
        seq.append(iv)
        iv = next_interval(iv, client.default_poll, client.max_poll, changed=False)
    print("  polling back-off while nothing changes (s): " + ", ".join(f"{v:g}" for v in seq))
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
