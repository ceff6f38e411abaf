"""``pna-engine``: the command line of the engine and the entry point of the job container.

    pna-engine run --boundary B --osm O --output DIR [options]
    pna-engine run-job            # inside a Batch container: request from the environment
"""

from __future__ import annotations

import argparse
import sys

from pna_engine import PHASES, __version__
from pna_engine.errors import InputError, check_writable_folder
from pna_engine.params import DEFAULT_MAX_TRIP_DISTANCE, Params


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inputs")
    g.add_argument("--boundary", required=True,
                   help="place boundary: shapefile, zipped shapefile, GeoJSON or GeoPackage "
                        "(any CRS; a non-empty polygon layer)")
    g.add_argument("--osm", default=None,
                   help="OpenStreetMap extract (.osm.pbf, .osm, .osm.bz2, .osm.gz), path or URL; "
                        "default: download the Geofabrik extract covering the boundary")
    g.add_argument("--population", default=None,
                   help="census blocks (TIGER 2020/2010 zipped shapefile, shapefile or GeoPackage), "
                        "path or URL; default: TIGER (US), WorldPop or a synthetic grid (non-US)")
    g.add_argument("--jobs", action="append", default=[], metavar="PATH_OR_URL",
                   help="LODES *_od_main_JT00_*.csv / *_od_aux_JT00_*.csv (repeatable; US only); "
                        "default: download the latest LODES8 files of the state")
    g.add_argument("--output", required=True, help="output folder for the export")
    g = p.add_argument_group("place")
    g.add_argument("--place", default=None,
                   help="place name recorded in run.json and shown by reports (default: none; "
                        "readers then use the folder or job name)")
    g.add_argument("--country", default="United States",
                   help="country name or ISO code; US mode iff United States (default: %(default)s)")
    g.add_argument("--state", default=None,
                   help="US state postal code, e.g. MA (default: none; needed in the US to "
                        "download census blocks and jobs)")
    g.add_argument("--state-fips", default=None,
                   help="2-digit US state FIPS code (default: from --state)")
    g.add_argument("--city-fips", default=None,
                   help="7-digit US city FIPS code, state + place (default: none)")
    g.add_argument("--city-speed-limit", type=int, default=None,
                   help="residential default speed of the city, mph (default: US: the "
                        "--city-fips row of PeopleForBikes' city_fips_speed.csv, looked up "
                        "online; 30 elsewhere, as the reference tool)")
    g.add_argument("--state-speed-limit", type=int, default=None,
                   help="residential default speed of the state, mph (US only; default: the "
                        "state's row of PeopleForBikes' state_fips_speed.csv, looked up online)")
    g = p.add_argument_group("analysis")
    g.add_argument("--max-trip-distance", type=float, default=DEFAULT_MAX_TRIP_DISTANCE,
                   help="maximum trip distance, metres (default: %(default)s)")
    g.add_argument("--workers", type=int, default=None,
                   help="processes for the connectivity phase (default: all cores)")
    g.add_argument("--worldpop-year", type=int, default=None,
                   help="WorldPop year for non-US population (default: the current year)")
    g.add_argument("--lodes-year", type=int, default=None,
                   help="LODES year for US jobs (default: the latest available)")
    g = p.add_argument_group("downloads")
    g.add_argument("--offline", action="store_true",
                   help="never download: a missing input is an error naming the option to give")
    g.add_argument("--cache-dir", default=None,
                   help="folder for downloaded inputs (default: ~/.cache/pna)")


def params_from_args(a: argparse.Namespace) -> Params:
    return Params(
        boundary=a.boundary, place=a.place, osm=a.osm, population=a.population, jobs=list(a.jobs),
        output=a.output, country=a.country, state=a.state, state_fips=a.state_fips,
        city_fips=a.city_fips, city_speed_limit=a.city_speed_limit,
        state_speed_limit=a.state_speed_limit, max_trip_distance=a.max_trip_distance,
        workers=a.workers, offline=a.offline, cache_dir=a.cache_dir,
        worldpop_year=getattr(a, "worldpop_year", None), lodes_year=getattr(a, "lodes_year", None),
    )


def check_local_inputs(params: Params) -> None:
    """Fail early, before any output is written, when a local input file does not exist."""
    from pathlib import Path

    from pna_engine.download import is_remote

    named = [("--boundary", params.boundary), ("--osm", params.osm),
             ("--population", params.population)] + [("--jobs", j) for j in params.jobs]
    for option, value in named:
        if value and not is_remote(str(value)) and not Path(str(value)).expanduser().exists():
            raise InputError(f"{option} file not found: {value}")
    if params.workers is not None and params.workers < 1:
        raise InputError(f"--workers must be at least 1, got {params.workers}")
    check_writable_folder(params.output, "--output")  # last: it creates the folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pna-engine",
        description="Bicycle Network Analysis (BNA) engine: reproduces brokenspoke-analyzer 3.2.4.",
    )
    parser.add_argument("--version", action="version", version=f"pna-engine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the analysis for one place",
                           description="Run the BNA for one place; phases: " + " -> ".join(PHASES))
    _add_run_options(run_p)
    run_p.add_argument("--quiet", action="store_true", help="no progress output")
    sub.add_parser("run-job", help="run the request given in the environment (job container)",
                   description="Entry point of the job container: reads PNA_REQUEST (JSON) or, for "
                               "array jobs, PNA_MANIFEST + AWS_BATCH_JOB_ARRAY_INDEX; fetches inputs; "
                               "runs; uploads the export to PNA_RESULTS_URI.")
    return parser


#: Young-generation threshold of the garbage collector during a run (Python's default: 700).
BATCH_GC_THRESHOLD = 50_000


def batch_gc() -> tuple[int, int, int]:
    """Tune the garbage collector for one batch run in this process; returns the previous
    thresholds (``gc.set_threshold(*previous)`` restores them).

    A run builds millions of container objects (tag dicts, lists) that live until the end:
    with the default thresholds the collector scans them again and again (~0.1 s on
    Liechtenstein). At exit the remaining objects are frozen, so the interpreter's final
    collections skip them (~0.13 s of shut-down with pandas/geopandas/scipy loaded).
    """
    import atexit
    import gc

    previous = gc.get_threshold()
    gc.set_threshold(BATCH_GC_THRESHOLD, 20, 20)
    atexit.unregister(gc.freeze)  # once, however many runs this process makes
    atexit.register(gc.freeze)
    return previous


def main(argv: list[str] | None = None) -> int:
    import gc

    parser = build_parser()
    args = parser.parse_args(argv)
    previous_gc = batch_gc()
    try:
        if args.command == "run":
            from pna_engine import pipeline

            params = params_from_args(args)
            check_local_inputs(params)

            def on_phase(name: str) -> None:
                if not args.quiet:
                    print(f"[pna-engine] {name}", file=sys.stderr, flush=True)

            state = pipeline.run(params, on_phase=on_phase)
            if not args.quiet:
                for note in state.notes:  # also in run.json
                    print(f"[pna-engine] note: {note}", file=sys.stderr)
                print(f"[pna-engine] done in {state.timings.get('total', 0):.1f} s -> {params.output}",
                      file=sys.stderr)
            return 0
        if args.command == "run-job":
            from pna_engine import jobrunner

            return jobrunner.main()
    except InputError as exc:
        print(f"pna-engine: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pna-engine: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file the system refused (permissions, I/O): one line, not a trace
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"pna-engine: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    finally:
        gc.set_threshold(*previous_gc)
    return 1


if __name__ == "__main__":
    sys.exit(main())
