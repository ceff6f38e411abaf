"""``pna``: the command line over the jobs API (local backend or AWS Batch).

    pna demo                                  # run the Helsinki demo locally, print the scores
    pna submit --place NAME --boundary B ...  # prints the job id alone on stdout
    pna submit --demo
    pna submit-many PLACES.csv                # one job id per line
    pna list [--status S] [--place P] [--since 2h] [--json]
    pna status JOB... [--json]
    pna wait JOB... [--timeout S]             # exit 0 only if every job SUCCEEDED
    pna cancel JOB... | --all
    pna retry JOB...
    pna logs JOB [--tail N]
    pna results JOB                           # prints the results location
    pna stack up|status|scale|down            # AWS resources
    pna campaign submit|status|wait|retry|cancel|results|compare|list   # many places, tracked
    pna explain A B [--json] [-o REPORT.html] # why the scores moved from A to B

Every command takes ``--backend local|aws`` (default: ``PNA_BACKEND`` or the config file, else
local). Errors a user can cause print one line ``pna: error: ...`` and exit 2.

Each ``cmd_*`` function runs one subcommand: it takes the parsed command line and returns the
exit status (0 on success); the docstring says where a command differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pna_engine.errors import InputError, OneLineArgumentParser
from pna_engine.params import add_arguments, field_default, request_fields, values_from_args
from pna_helpers.paths import is_utf8


def _err(msg: str) -> None:
    print(f"pna: error: {msg}", file=sys.stderr, flush=True)


def _seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds > 0 (``abc``, ``-5``, ``nan``: a usage error)."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0 (e.g. 3600), got "
                                         f"{text!r}")
    return value


def _count(text: str) -> int:
    """``--limit``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _progress(args: argparse.Namespace) -> bool:
    """Show a progress bar: on a terminal, unless ``--no-progress``. Redirected to a file or a
    pipe (a batch script's log) a bar is only carriage-return noise."""
    return not args.no_progress and sys.stderr.isatty()


def _client(args: argparse.Namespace, **kw: Any):
    from pna_helpers import jobs
    from pna_helpers.config import Settings

    settings = Settings.load(config_file=args.config, backend=args.backend, **kw)
    return jobs.get_client(settings=settings)


def _clip(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters; a cut one ends with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def _when(t: Any) -> str:
    """A time in the user's time zone, with the zone: ``2026-12-05 08:36:27 CET``."""
    if t is None:
        return "-"
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _run_time(j: Any) -> str:
    """How long a job ran (is running): ``2 s``, ``4 min 05 s``, ``2 h 03 min``; ``-`` when
    it never started."""
    import datetime as _dt

    if j.started_at is None:
        return "-"
    end = j.stopped_at or (_dt.datetime.now(_dt.UTC) if not j.done else None)
    if end is None:
        return "-"
    s = max(0.0, (end - j.started_at).total_seconds())
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _print_jobs(jobs_: list, as_json: bool) -> None:
    if as_json:
        print(json.dumps([j.to_dict() for j in jobs_], indent=1, default=str))
        return
    if not jobs_:
        print("(no jobs)")
        return
    rows = [("JOB ID", "PLACE", "STATUS", "PHASE", "CREATED", "RAN", "REASON")]
    for j in jobs_:
        rows.append((j.job_id, _clip(j.place or "-", 30), j.status, j.phase or "-",
                     _when(j.created_at), _run_time(j), _clip(j.reason or "", 80)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print(("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]).rstrip())


# --------------------------------------------------------------------------- commands
def cmd_submit(args: argparse.Namespace) -> int:
    """``pna submit``: one analysis request (or the demo place); prints the job id.

    Returns
    -------
    int
        Exit status: 0, or with ``--wait`` 0 iff the job succeeded, 1 otherwise.

    Raises
    ------
    InputError
        Neither ``--boundary`` nor the demo place was given, or the request is invalid.
    """
    from pna_helpers import jobs
    from pna_helpers.jobs.request import DEMO_PLACE, slugify

    demo_named = (not args.boundary and args.place is not None
                  and slugify(args.place) == slugify(DEMO_PLACE))
    if args.demo or demo_named:
        # the options given go on top of the demo place (they were silently ignored)
        given = {f.name: getattr(args, f.name) for f in request_fields()
                 if hasattr(args, f.name) and getattr(args, f.name) != field_default(f)}
        req = jobs.demo_request()
        if given:
            req = jobs.AnalysisRequest.from_dict({**req.to_dict(), **given})
    else:
        if not args.boundary:
            raise InputError("give --boundary (and --place), or --demo (or --place "
                             f"\"{DEMO_PLACE}\") for the bundled demo place")
        req = jobs.AnalysisRequest.from_dict(values_from_args(args, request_fields()))
    client = _client(args)
    job = client.submit(req)
    print(job.job_id, flush=True)
    if args.wait:
        done = client.wait([job.job_id], timeout=args.timeout, progress=_progress(args))
        return _report_failures(done)
    return 0


def _report_failures(done: list) -> int:
    """One ``pna: error:`` line per job that did not succeed; the exit status (0 or 1)."""
    bad = [j for j in done if not j.succeeded]
    for j in bad:
        _err(f"{_job_outcome(j)}; see 'pna logs {j.job_id}'")
    return 0 if not bad else 1


def _job_outcome(j: Any) -> str:
    """``job ID (place) STATUS: reason`` on one line, whatever the engine said."""
    reason = " ".join(str(j.reason or "").split())
    return f"job {j.job_id} ({j.place}) {j.status}" + (f": {reason}" if reason else "")


def cmd_submit_many(args: argparse.Namespace) -> int:
    """``pna submit-many``: every place of a places file; prints the job ids."""
    from pna_helpers import jobs

    reqs = jobs.read_places(args.places)
    submitted = _client(args).submit_many(reqs)
    if args.json:
        _print_jobs(submitted, True)
    else:
        for j in submitted:
            print(j.job_id)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``pna list``: jobs, newest first, filtered by status, place and age."""
    listed = _client(args).list(status=args.status or None, place=args.place, since=args.since)
    if args.limit:
        listed = listed[: args.limit]
    _print_jobs(listed, args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``pna status``: the status of the given jobs."""
    _print_jobs(_client(args).get_many(args.job_ids), args.json)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    """``pna wait``: wait for the given jobs, with a progress bar.

    Returns
    -------
    int
        Exit status: 0 iff every job succeeded, 1 otherwise.
    """
    done = _client(args).wait(args.job_ids, timeout=args.timeout, progress=_progress(args))
    _print_jobs(done, args.json)
    return _report_failures(done)


def cmd_cancel(args: argparse.Namespace) -> int:
    """``pna cancel``: cancel the given jobs (or every active one with ``--all``).

    Raises
    ------
    InputError
        Neither job ids nor ``--all`` were given.
    """
    client = _client(args)
    if args.all:
        out = client.cancel_all_active()
    elif args.job_ids:
        out = client.cancel(args.job_ids)
    else:
        raise InputError("give job ids to cancel, or --all for every active job")
    _print_jobs(out, args.json)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """``pna retry``: resubmit failed or cancelled jobs; prints the new ids."""
    for j in _client(args).retry(args.job_ids):
        print(j.job_id)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """``pna logs``: a job's log (its last lines with ``--tail``; ``--tail 0``: none).

    Raises
    ------
    InputError
        A negative ``--tail``, or an unknown job.
    """
    if args.tail is not None and args.tail < 0:
        raise InputError(f"--tail must be 0 or more lines, got {args.tail}: give the number of "
                         "last lines to show (or leave --tail out for the whole log)")
    client = _client(args)
    text = client.logs(args.job_id, tail=args.tail)
    sys.stdout.write(text)
    if not text and args.tail != 0:  # say why nothing was printed (stdout stays the log)
        job = client.get(args.job_id)
        note = ("has no log yet: logs appear once it is RUNNING" if not job.done
                else "has no log: it stopped before writing any")
        print(f"pna: job {job.job_id} ({job.status}) {note}", file=sys.stderr)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """``pna results``: where a job's results are (folder or ``s3://`` prefix).

    Returns
    -------
    int
        0 the job SUCCEEDED; 1 it did not (yet): the location is still printed (its
        ``status.json`` and log say why) and one ``pna: error:`` line says the results there
        are not complete, so ``loc=$(pna results ID) && ...`` does not go on with them.
    """
    client = _client(args)
    job = client.get(args.job_id)
    print(client.results_location(args.job_id), flush=True)
    if job.succeeded:
        return 0
    if job.done:
        _err(f"{_job_outcome(job)}; its results are not complete (see 'pna logs {job.job_id}')")
    else:
        _err(f"job {job.job_id} ({job.place}) is {job.status}: its results are not complete "
             f"yet; 'pna wait {job.job_id}' waits for it")
    return 1


def cmd_stack(args: argparse.Namespace) -> int:
    """``pna stack up|status|scale|down``: the AWS resources of the aws backend.

    Raises
    ------
    InputError
        ``scale`` without ``--min``, ``--desired`` or ``--max``, or bad settings.
    """
    from pna_helpers.config import Settings
    from pna_helpers.jobs.stack import Stack

    st = Stack(Settings.load(config_file=args.config, backend="aws"))
    if args.action == "up":
        out: Any = st.up()
    elif args.action == "status":
        out = st.status()
    elif args.action == "scale":
        if args.min is None and args.desired is None and args.max is None:
            raise InputError("pna stack scale needs --min, --desired and/or --max (vCPUs)")
        out = st.scale(args.min, args.desired, args.max)
    else:
        out = st.down(delete=args.delete)
    if args.json or args.action == "status":
        print(json.dumps(out, indent=1, default=str))
    else:
        for k, v in out.items():  # a list as words, not a Python repr: ['m6id', 'r6id']
            print(f"{k}: {', '.join(map(str, v)) if isinstance(v, list | tuple) else v}")
        if args.action == "up":
            print(f"job image (PNA_IMAGE): {st.image}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the bundled demo place on the local backend and summarise it.

    ``pna demo``: submits the demo request, waits for it, prints the main scores and the
    results and log locations, then writes ``outputs/reports/helsinki-demo.html`` and
    ``outputs/reports/helsinki-demo-map.html`` (neither with ``--no-report``). A report or map
    that cannot be written is one ``pna: error:`` line and exit 2 (the results stay).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``config``, ``timeout``, ``no_progress``, ``no_report``).

    Returns
    -------
    int
        Exit status: 0 the demo job succeeded (and its report and map were written), 1 it
        did not, or the report notebook failed.

    Raises
    ------
    InputError
        The demo inputs are not available, bad settings, or the report or map cannot be
        written (``outputs/reports`` is a file, read-only, the disk is full, ...).
    WaitTimeout
        ``--timeout`` passed before the job finished (the job keeps running).
    """
    from pna_helpers import jobs
    from pna_helpers.config import Settings
    from pna_helpers.paths import outputs_dir

    client = jobs.get_client(settings=Settings.load(config_file=args.config, backend="local"))
    req = jobs.demo_request()
    job = client.submit(req)
    print(f"submitted {req.place} as job {job.job_id} (local backend)", file=sys.stderr)
    [job] = client.wait([job.job_id], timeout=args.timeout, progress=_progress(args))
    if not job.succeeded:
        _err(f"the demo job {job.job_id} {job.status}: {job.reason}; see 'pna logs "
             f"{job.job_id}'")
        return 1
    loc = client.results_location(job.job_id)
    _print_scores(loc)
    print(f"\nresults: {loc}")
    print(f"log:     {client.store.log_path(job.job_id)}")
    if args.no_report:
        return 0
    from pna_engine.errors import check_writable_folder, storage_error
    from pna_helpers import maps, reports

    folder = outputs_dir() / "reports"
    try:  # before the minute of rendering: a folder that cannot be written says so at once
        check_writable_folder(folder, "")
    except InputError as exc:
        raise InputError(f"the demo report and map cannot be written ({str(exc).split(';')[0]})"
                         "; move that out of the way, set PNA_OUTPUTS to a writable folder, or "
                         f"run 'pna demo --no-report'; the results are in {loc}") from None
    try:
        path = reports.render_report(loc, folder / "helsinki-demo.html")
        print(f"report:  {path}")
        m = maps.save_map(loc, folder / "helsinki-demo-map.html")
        print(f"map:     {m}")
    except OSError as exc:  # e.g. the disk filled while writing
        raise storage_error(exc, "the demo report and map") from None
    except RuntimeError as exc:  # a cell of the report notebook failed (names the cell)
        _err(f"{exc}; the results are in {loc}")
        return 1
    return 0


def _print_scores(location: str) -> None:
    import pandas as pd

    from pna_helpers.results import SCORE_INFO, SCORES_FILE

    df = pd.read_csv(f"{location}/{SCORES_FILE}")
    df = df.set_index("score_id")
    print("\nBNA scores (0-100)")
    for sid, info in SCORE_INFO.items():
        if info.get("main") and sid in df.index:
            v = df.loc[sid, "score_normalized"]
            print(f"  {info['label']:<14} {float(v):6.2f}")


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``pna`` command line (every subcommand and its options).

    Returns
    -------
    argparse.ArgumentParser
    """
    def _common(default: Any) -> argparse.ArgumentParser:
        c = argparse.ArgumentParser(add_help=False)
        c.add_argument("--backend", choices=["local", "aws"], default=default,
                       help="jobs backend (default: PNA_BACKEND, the config file, else local)")
        c.add_argument("--config", default=default, help="PNA config file (TOML; default "
                                                         "PNA_CONFIG or ~/.config/pna/config.toml)")
        return c

    # top level: defaults None; after the subcommand: SUPPRESS, so both positions work
    top, common = _common(None), _common(argparse.SUPPRESS)
    js = argparse.ArgumentParser(add_help=False)
    js.add_argument("--json", action="store_true", help="machine-readable JSON output")
    wt = argparse.ArgumentParser(add_help=False)
    wt.add_argument("--timeout", type=_seconds, default=None,
                    help="give up after this many seconds (the jobs keep running)")
    wt.add_argument("--no-progress", action="store_true",
                    help="no progress bar (there is none when stderr is not a terminal)")

    parser = OneLineArgumentParser(
        prog="pna", parents=[top],
        description="PNA jobs: run the Bicycle Network Analysis locally or on AWS Batch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common, wt], help="run the Helsinki demo locally")
    p.add_argument("--no-report", action="store_true",
                   help="write neither the HTML report nor the map (outputs/reports/): only "
                        "print the scores and where the results are")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("submit", parents=[common, wt], help="submit one place; prints the job id",
                       description="Submit one analysis; the job id alone goes to stdout.")
    p.add_argument("--demo", action="store_true", help="submit the bundled demo place")
    p.add_argument("--wait", action="store_true", help="wait for the job (exit 0 iff SUCCEEDED)")
    # every request field, as the options of pna-engine run (place required unless --demo)
    add_arguments(p, request_fields(), required=())
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("submit-many", parents=[common, js],
                       help="submit every place of a CSV or GeoPackage (AWS: one array job)")
    p.add_argument("places", help="places .csv (columns place, boundary, osm, ...) or .gpkg")
    p.set_defaults(func=cmd_submit_many)

    p = sub.add_parser("list", parents=[common, js], help="list jobs, newest first")
    p.add_argument("--status", action="append", default=[],
                   help="filter by status (repeatable; ACTIVE = not finished)")
    p.add_argument("--place", default=None,
                   help="filter by place name (as a file-safe name: 'Helsinki demo' = "
                        "'helsinki-demo')")
    p.add_argument("--since", default=None, help="created since (ISO time, or 2h / 3d)")
    p.add_argument("--limit", type=_count, default=None, help="at most this many (newest)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("status", parents=[common, js], help="status of jobs")
    p.add_argument("job_ids", nargs="+", metavar="JOB")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("wait", parents=[common, js, wt],
                       help="wait for jobs; exit 0 only if all SUCCEEDED")
    p.add_argument("job_ids", nargs="+", metavar="JOB")
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("cancel", parents=[common, js], help="cancel jobs")
    p.add_argument("job_ids", nargs="*", metavar="JOB")
    p.add_argument("--all", action="store_true", help="cancel every active job")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("retry", parents=[common], help="resubmit failed or cancelled jobs")
    p.add_argument("job_ids", nargs="+", metavar="JOB")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("logs", parents=[common], help="a job's log")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--tail", type=int, default=None, help="last N lines only (0: none)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("results", parents=[common], help="print where a job's results are")
    p.add_argument("job_id", metavar="JOB")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("stack", parents=[common, js], help="AWS resources: up|status|scale|down")
    p.add_argument("action", choices=["up", "status", "scale", "down"])
    p.add_argument("--min", type=int, default=None, help="scale: minimum vCPUs")
    p.add_argument("--desired", type=int, default=None, help="scale: desired vCPUs")
    p.add_argument("--max", type=int, default=None, help="scale: maximum vCPUs")
    p.add_argument("--delete", action="store_true",
                   help="down: delete queue, compute environment and job definitions")
    p.set_defaults(func=cmd_stack)

    from pna_helpers.campaigns._cli import register as register_campaign

    register_campaign(sub, common, js, wt)

    # `pna report` (engineer H5's module) registers itself when present.
    try:
        from pna_helpers import reports
    except ImportError:
        reports = None
    if reports is not None and hasattr(reports, "register"):
        reports.register(sub)
    from pna_helpers import explain, plan, qa

    plan.register(sub)
    qa.register(sub)
    explain.register(sub)
    # these take job ids too (resolved through the default backend): --backend / --config
    # after the command name are accepted as for every other command (main() applies them)
    for name in ("report", "plan", "qa", "explain"):
        q = sub.choices.get(name)
        if q is not None and not any("--backend" in a.option_strings for a in q._actions):
            for a in common._actions:
                if a.option_strings and a.dest in ("backend", "config"):
                    q.add_argument(*a.option_strings, choices=a.choices, default=a.default,
                                   help=a.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``pna`` with ``argv`` (default: ``sys.argv[1:]``).

    Parameters
    ----------
    argv
        The arguments after ``pna``.

    Returns
    -------
    int
        Exit status: 0 ok, 1 a job failed, 2 bad input (one line on stderr), 130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # --backend/--config may come before or after the subcommand
    for name in ("backend", "config"):
        if not hasattr(args, name):
            setattr(args, name, None)
    # commands that resolve job ids themselves (report, qa, plan, explain) read the default
    # settings: --backend / --config reach them through the environment, for this call only
    saved = {k: os.environ.get(k) for k in ("PNA_BACKEND", "PNA_CONFIG")}
    if args.backend:
        os.environ["PNA_BACKEND"] = args.backend
    if args.config:
        os.environ["PNA_CONFIG"] = args.config
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 2
    except UnicodeError as exc:  # an argument in another encoding reached a UTF-8 store/API
        given = sys.argv[1:] if argv is None else argv
        bad = [a for a in given if not is_utf8(a)]
        what = (f"argument {bad[0]!r} is not UTF-8 text" if bad else
                f"text that is not UTF-8 ({exc})")
        _err(f"{what} (a name in another encoding, e.g. Latin-1, its bytes shown as \\udcXX): "
             "type it in UTF-8, or rename the file with UTF-8 characters")
        return 2
    except KeyboardInterrupt:
        _err("interrupted (jobs keep running; see 'pna list')")
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file or folder the system refused: one line, not a trace
        _err(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 2
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    sys.exit(main())
