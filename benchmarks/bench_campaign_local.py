"""A campaign of many small synthetic places on the local backend: orchestration overhead per
place beyond the engine's own work.

    python benchmarks/bench_campaign_local.py [--places 1000] [--concurrency 2] [--population 2000]
        [--places-per-worker 50]

Every place is the same small synthetic city (``synthetic_city.py``, seeded) under its own
name, run offline. Printed:

* wall time from submit to the last place finished, places per hour;
* the engine's own work per place (``run.json`` total: import ... export inside the engine);
* overhead per place = (wall x concurrency - sum of engine work) / places: process start-up
  and imports of the job container command, the supervisor, the store, dispatch;
* a dashboard refresh (``Campaign.status()`` + its HTML) at this size.

Nothing is asserted. Uses its own ``PNA_OUTPUTS`` under ``outputs/bench/campaign-local``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--places", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--population", type=int, default=2000, help="people per synthetic place")
    ap.add_argument("--places-per-worker", type=int, default=1,
                    help="places one worker process runs (engine imported once; 1 = a process "
                         "per place)")
    ap.add_argument("--out", default=str(HERE.parent / "outputs" / "bench" / "campaign-local"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out / "store", ignore_errors=True)
    os.environ["PNA_OUTPUTS"] = str(out / "store")
    os.environ["PNA_CONCURRENCY"] = str(a.concurrency)
    sys.path.insert(0, str(HERE))
    from synthetic_city import generate

    city = generate(out / f"city-{a.population}", population=a.population, seed=1)
    from pna_helpers import campaigns, jobs
    from pna_helpers.jobs import AnalysisRequest

    base = dict(boundary=str(city.boundary), osm=str(city.osm), population=str(city.blocks),
                jobs=[str(j) for j in city.jobs], country="United States", state="CO",
                state_fips="08", city_fips="0899999", city_speed_limit=25, offline=True)
    reqs = [AnalysisRequest(place=f"Synthetic {i:04d}", **base) for i in range(a.places)]
    client = jobs.get_client("local", concurrency=a.concurrency,
                             places_per_worker=a.places_per_worker)
    t0 = time.perf_counter()
    camp = campaigns.create("bench-local", reqs, client, estimate=False)
    t_submit = time.perf_counter() - t0
    st = camp.wait(progress=True, poll=1.0)
    wall = time.perf_counter() - t0
    engine = []
    for p in camp.places:
        run = Path(client.results_location(p["job_id"])) / "run.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            engine.append(json.loads(run.read_text())["timings_s"]["total"])
    t1 = time.perf_counter()
    st2 = camp.status()
    html = campaigns.status_html(st2)
    t_refresh = time.perf_counter() - t1
    work = sum(engine)
    print(f"\n{a.places} places x {a.population:,} people, concurrency {a.concurrency}, "
          f"{a.places_per_worker} place(s) per worker process, {os.cpu_count()} cores")
    print(f"  submit (store + estimate off): {t_submit:.2f} s")
    print(f"  wall, submit -> all finished: {wall:.1f} s ({a.places / wall * 3600:,.0f} places/h)")
    print(f"  succeeded {st.succeeded}, failed {st.failed}")
    print(f"  engine's own work: {work / max(1, len(engine)):.3f} s/place (run.json total)")
    print(f"  orchestration overhead: {(wall * a.concurrency - work) / a.places:.3f} s/place "
          "(wall x concurrency - engine work, per place)")
    print(f"  dashboard refresh (status + HTML, {len(html):,} chars): {t_refresh:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
