"""``pna-engine``: the command line of the engine and the entry point of the job container.

    pna-engine run --boundary B --osm O --output DIR [options]
    pna-engine run-job            # inside a Batch container: request from the environment
"""

from __future__ import annotations

import argparse
import sys

from pna_engine import PHASES, __version__
from pna_engine.errors import InputError, OneLineArgumentParser, check_writable_folder
from pna_engine.params import Params, add_arguments, values_from_args
from pna_engine.stopping import EXIT_STOPPED, Stopped, stop_on_signals


def params_from_args(a: argparse.Namespace) -> Params:
    """The :class:`Params` of parsed ``pna-engine run`` arguments (validated there)."""
    return Params.from_dict(values_from_args(a))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="pna-engine",
        description="Bicycle Network Analysis (BNA) engine: reproduces brokenspoke-analyzer 3.2.4.",
    )
    parser.add_argument("--version", action="version", version=f"pna-engine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the analysis for one place",
                           description="Run the BNA for one place; phases: " + " -> ".join(PHASES))
    add_arguments(run_p)
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
            params.check_inputs()
            check_writable_folder(params.output, "--output")  # last: it creates the folder

            def on_phase(name: str) -> None:
                if not args.quiet:
                    print(f"[pna-engine] {name}", file=sys.stderr, flush=True)

            with stop_on_signals():  # SIGTERM / SIGHUP clean up as Ctrl-C does
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
    except Stopped as exc:
        print(f"pna-engine: {exc}", file=sys.stderr)
        return EXIT_STOPPED
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
