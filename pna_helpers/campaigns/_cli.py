"""``pna campaign ...``: campaigns from the command line (registered by :mod:`pna_helpers.cli`).

    pna campaign submit PLACES --name NAME [--osm EXTRACT]   # prints NAME
    pna campaign submit --demo --name NAME [--changed]       # the offline demo campaign
    pna campaign estimate PLACES [--osm EXTRACT]              # time and cost, nothing submitted
    pna campaign status NAME [--json]
    pna campaign wait NAME [--timeout S]                      # exit 0 only if every place SUCCEEDED
    pna campaign retry NAME                                   # the failed places only
    pna campaign cancel NAME
    pna campaign results NAME -o FILE.csv|.parquet|.gpkg [--map FILE.html]
    pna campaign compare NAME OTHER_NAME|TABLE.csv -o FILE.csv
    pna campaign list [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pna_engine.errors import InputError


def _client(args: argparse.Namespace) -> Any:
    from pna_helpers import jobs
    from pna_helpers.config import Settings

    return jobs.get_client(settings=Settings.load(config_file=args.config, backend=args.backend))


def _requests(args: argparse.Namespace) -> list[Any]:
    from pna_helpers import campaigns
    from pna_helpers.paths import outputs_dir

    if args.osm:  # a boundaries layer + one extract covering every place
        folder = outputs_dir() / "campaigns" / "places" / Path(args.places).stem
        return campaigns.places_from_boundaries(args.places, args.osm, folder,
                                                population=args.population,
                                                country=args.country, offline=args.offline)
    return campaigns.places_from_file(args.places)


def with_methodology(reqs: list[Any], methodology: str | None, quirks: list[str] | None
                     ) -> list[Any]:
    """Every request with the campaign's methodology profile (and quirk switches): these
    replace what the places file says, so the whole campaign is scored one way."""
    from pna_helpers.jobs.request import AnalysisRequest

    out = []
    for r in reqs:
        d = r.to_dict()
        d["methodology"] = methodology or d.get("methodology") or "reference"
        d["quirks"] = list(quirks or [])  # None: the profile's switches
        out.append(AnalysisRequest.from_dict(d))
    return out


def cmd_submit(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns
    from pna_helpers.paths import outputs_dir

    client = _client(args)
    if args.demo:
        if args.places:
            raise InputError("give either PLACES or --demo, not both")
        reqs = campaigns.demo_places(outputs_dir() / "demo-inputs" / "campaign",
                                     changed=args.changed)
        source = "demo (changed inputs)" if args.changed else "demo"
    else:
        if not args.places:
            raise InputError("give a places file (CSV or GeoPackage; a boundaries layer with "
                             "--osm EXTRACT) or --demo")
        reqs, source = _requests(args), str(Path(args.places).resolve())
    if args.methodology or args.quirks:
        reqs = with_methodology(reqs, args.methodology, args.quirks)
    camp = campaigns.create(args.name, reqs, client, source=source)
    est = camp.doc.get("estimate") or {}
    if est:
        print(f"{camp.name}: {len(reqs)} places submitted; estimate {est['wall_seconds']:.0f} s "
              f"wall, {est['vcpu_hours']:.3f} vCPU-h, ${est['cost']:.4f} at "
              f"${est['price_per_vcpu_hour']}/vCPU-h", file=sys.stderr)
    print(camp.name, flush=True)
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns
    from pna_helpers.campaigns._core import parallel_places

    client = _client(args)
    reqs = _requests(args)
    s = client.settings
    parallel = parallel_places(client)
    est = campaigns.estimate_campaign(reqs, client.name, s.job_vcpus, s.vcpu_hour_price,
                                      parallel)
    if args.json:
        print(json.dumps(est, indent=1, default=str))
        return 0
    for p in est["places"]:
        print(f"{p['place'][:40]:<40} {p['seconds']:8.1f} s  (from {p['basis']})")
    print(f"total {est['total_seconds']:.0f} s of runs, about {est['wall_seconds']:.0f} s wall "
          f"with {parallel} at once; {est['vcpu_hours']:.3f} vCPU-h = ${est['cost']:.4f} at "
          f"${est['price_per_vcpu_hour']}/vCPU-h")
    return 0


def _print_status(st: Any) -> None:
    from pna_helpers.campaigns._core import _duration

    print(f"campaign {st.name} ({st.backend}): {st.places} places")
    print("  " + "  ".join(f"{k} {v}" for k, v in st.counts.items()))
    if st.phases:
        print("  running by phase: " + ", ".join(f"{k} {v}" for k, v in st.phases.items()))
    thr = f"{st.throughput_per_hour:.1f} places/h" if st.throughput_per_hour else "-"
    eta = "finished" if st.finished else f"{_duration(st.eta_s)} ({st.eta_basis})"
    print(f"  throughput {thr}; ETA {eta}")
    print(f"  used {st.vcpu_hours:.4f} vCPU-h = ${st.cost:.4f} at "
          f"${st.price_per_vcpu_hour}/vCPU-h")
    if st.estimate:
        print(f"  estimated before submitting: {st.estimate['total_seconds']:.0f} s of runs, "
              f"${st.estimate['cost']:.4f}")
    for g in st.failures:
        print(f"  FAILED x{g['count']}: {g['reason']}")
        print(f"    places: {', '.join(g['places'][:8])}"
              + (f" and {len(g['places']) - 8} more" if len(g["places"]) > 8 else ""))
        for ln in (g.get("log_excerpt") or "").splitlines()[-4:]:
            print(f"    | {ln[:160]}")


def cmd_status(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns

    st = campaigns.load(args.name, _client(args)).status()
    if args.json:
        print(json.dumps(st.to_dict(), indent=1, default=str))
    else:
        _print_status(st)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns

    camp = campaigns.load(args.name, _client(args))
    from pna_helpers.cli import _progress

    st = camp.wait(timeout=args.timeout, progress=_progress(args))
    _print_status(st)
    return 0 if st.all_succeeded else 1


def cmd_retry(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns

    for p in campaigns.load(args.name, _client(args)).retry():
        print(p)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns

    n = campaigns.load(args.name, _client(args)).cancel()
    print(f"{args.name}: cancelled {n} unfinished place(s)")
    return 0


def _html_output(path: str | None, option: str) -> None:
    """Refuse a ``--map`` that is a folder or not an ``.html`` name, before any work (it failed
    after the table was written, naming a temporary file)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {path} is a folder: give an HTML file name, e.g. "
                         f"{p / 'map.html'}")
    if p.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"{option} {path}: give a file name ending in .html")


def cmd_results(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns
    from pna_helpers.maps import save_map

    _html_output(args.map, "--map")
    camp = campaigns.load(args.name, _client(args))
    table = campaigns.results_table(camp)
    out = campaigns.write_table(camp, args.output, table)
    ok = int((table["status"] == "SUCCEEDED").sum())
    print(f"{out}: {len(table)} places ({ok} with scores)", file=sys.stderr)
    if args.map:
        save_map(campaigns.places_map(camp, table), args.map)
        print(f"map: {args.map}", file=sys.stderr)
    print(out)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns

    client = _client(args)
    camp = campaigns.load(args.name, client)
    cmp = campaigns.compare(camp, args.other)
    out = campaigns.write_comparison(cmp, args.output,
                                     title=f"{camp.name} vs {Path(str(args.other)).name}")
    print(f"{out}: {int(cmp['matched'].sum())}/{len(cmp)} places matched, "
          f"{int(cmp['flagged'].sum())} flagged; views: {out.with_suffix('.html')}",
          file=sys.stderr)
    for _, r in cmp[cmp["flagged"]].iterrows():
        print(f"  {r['place']}: {r['flags']}", file=sys.stderr)
    print(out)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from pna_helpers import campaigns

    items = campaigns.list_campaigns(_client(args), status=True)
    if args.json:
        print(json.dumps(items, indent=1, default=str))
        return 0
    if not items:
        print("(no campaigns)")
        return 0
    from pna_helpers.cli import _when
    from pna_helpers.jobs.model import parse_time

    width = max(len("NAME"), *(len(c["name"]) for c in items))
    print(f"{'NAME':<{width}}  {'CREATED':<23}  PROGRESS")
    for c in items:
        print(f"{c['name']:<{width}}  {_when(parse_time(c['created_at'])):<23}  "
              f"{c['done']}/{c['places']} done, {c['succeeded']} SUCCEEDED, {c['failed']} FAILED")
    return 0


def register(sub: Any, common: argparse.ArgumentParser, js: argparse.ArgumentParser,
             wt: argparse.ArgumentParser) -> None:
    """Add ``pna campaign`` to the ``pna`` parser's subcommands."""
    p = sub.add_parser("campaign", help="run many places as one tracked campaign",
                       description="Campaigns: many places run, tracked and read together.")
    cs = p.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")

    def places_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--osm", default=None, metavar="EXTRACT",
                       help="PLACES is a boundaries layer (one polygon per place, FIPS/name from "
                            "its attributes); this OSM extract covers them all and is cut per place")
        q.add_argument("--population", default=None, help="with --osm: population file for all")
        q.add_argument("--country", default=None, help="with --osm: country of the places")
        q.add_argument("--offline", action="store_true", help="with --osm: never download")

    q = cs.add_parser("submit", parents=[common], help="create and submit a campaign; prints NAME")
    q.add_argument("places", nargs="?", help="places .csv / .gpkg (as submit-many), or a "
                                             "boundaries layer with --osm")
    q.add_argument("--name", required=True, help="campaign name (letters, digits, . _ -)")
    q.add_argument("--demo", action="store_true", help="the offline demo campaign (Helsinki "
                                                      "districts, one failing on purpose)")
    q.add_argument("--changed", action="store_true",
                   help="with --demo: the same places with changed inputs (year over year)")
    q.add_argument("--methodology", choices=["reference", "corrected"], default=None,
                   help="methodology profile of every place (default: each place's own, "
                        "else reference); recorded in each run.json")
    q.add_argument("--quirks", action="append", default=[], metavar="NAME=on|off",
                   help="experts: quirk switches on top of --methodology for every place "
                        "(as pna-engine run --quirks)")
    places_args(q)
    q.set_defaults(func=cmd_submit)

    q = cs.add_parser("estimate", parents=[common, js],
                      help="estimated time and cost of a places file (nothing is submitted)")
    q.add_argument("places", help="places .csv / .gpkg (as submit-many), or a boundaries layer "
                                  "with --osm")
    places_args(q)
    q.set_defaults(func=cmd_estimate)

    q = cs.add_parser("status", parents=[common, js], help="counts, phases, ETA, failures, cost")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_status)

    q = cs.add_parser("wait", parents=[common, wt],
                      help="wait; exit 0 only when every place SUCCEEDED")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_wait)

    q = cs.add_parser("retry", parents=[common], help="resubmit the failed places only")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_retry)

    q = cs.add_parser("cancel", parents=[common], help="cancel this campaign's unfinished places")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_cancel)

    q = cs.add_parser("results", parents=[common], help="one table, one row per place")
    q.add_argument("name", metavar="NAME")
    q.add_argument("-o", "--output", required=True, help="FILE.csv, FILE.parquet or FILE.gpkg")
    q.add_argument("--map", default=None, help="also write a map of the places (HTML)")
    q.set_defaults(func=cmd_results)

    q = cs.add_parser("compare", parents=[common],
                      help="year over year against a campaign or a published table")
    q.add_argument("name", metavar="NAME")
    q.add_argument("other", metavar="OTHER_NAME|TABLE.csv")
    q.add_argument("-o", "--output", required=True, help="FILE.csv (FILE.html: the views)")
    q.set_defaults(func=cmd_compare)

    q = cs.add_parser("list", parents=[common, js], help="campaigns, newest first")
    q.set_defaults(func=cmd_list)
