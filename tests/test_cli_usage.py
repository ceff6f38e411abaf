"""`pna` as its users type it: option values, the jobs table. Fast (no job runs)."""

from __future__ import annotations

import datetime as _dt
import os
import time

import pytest

from pna_helpers import cli
from pna_helpers.jobs.model import Job


@pytest.mark.parametrize("argv,needle", [
    (["wait", "abc123", "--timeout", "abc"], "argument --timeout: expected a number of seconds > 0"
                                             " (e.g. 3600), got 'abc' (see 'pna wait --help')"),
    (["wait", "abc123", "--timeout", "-5"], "got '-5'"),
    (["wait", "abc123", "--timeout", "nan"], "got 'nan'"),
    (["campaign", "wait", "x", "--timeout", "0"], "got '0' (see 'pna campaign wait --help')"),
    (["demo", "--timeout", "inf"], "got 'inf'"),
    (["list", "--limit", "-1"], "argument --limit: expected a whole number >= 1, got '-1'"),
    (["list", "--limit", "0"], "got '0'"),
])
def test_bad_option_values_are_one_usage_line(argv, needle, capsys, tmp_path, monkeypatch):
    """A negative or NaN --timeout used to be taken (NaN: wait for ever; negative: time out
    at once), and `list --limit -1` silently dropped the last job (a Python slice)."""
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path))
    with pytest.raises(SystemExit) as ei:
        cli.main(argv)
    err = capsys.readouterr()
    assert ei.value.code == 2 and err.out == ""
    assert err.err.startswith("pna: error: ") and needle in err.err
    assert err.err.count("\n") == 1


def _job(**kw) -> Job:
    base = dict(job_id="0123456789ab", place="Springfield", status="SUCCEEDED", phase="export",
                created_at=_dt.datetime(2026, 12, 5, 7, 36, 27, tzinfo=_dt.UTC),
                started_at=_dt.datetime(2026, 12, 5, 7, 36, 28, tzinfo=_dt.UTC),
                stopped_at=_dt.datetime(2026, 12, 5, 9, 40, 1, tzinfo=_dt.UTC),
                backend="local")
    base.update(kw)
    return Job(**base)


def test_jobs_table_times_in_the_users_zone_and_clipped_cells(capsys, monkeypatch):
    """Times were UTC without saying so (a planner in Chicago read 07:36 as local time); long
    place names and reasons were cut mid-word without a mark; a reason with a newline broke
    the table."""
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        jobs = [_job(),
                _job(job_id="ba9876543210", place="A very long place name that goes on and on",
                     status="FAILED", phase="import", stopped_at=None, started_at=None,
                     reason="no census block of /x/pop.gpkg overlaps the boundary\nsecond "
                            "line " + "x" * 100)]
        cli._print_jobs(jobs, as_json=False)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    header, ok, bad = lines
    assert header.split() == ["JOB", "ID", "PLACE", "STATUS", "PHASE", "CREATED", "RAN",
                              "REASON"]
    assert "2026-12-05 01:36:27 CST" in ok and "2 h 03 min" in ok
    assert "A very long place name that g\u2026" in bad and bad[-1] == "\u2026"
    assert "overlaps the boundary second line" in bad
    # every column starts at the same offset on every line
    for col in ("STATUS", "CREATED", "RAN"):
        at = header.index(col)
        assert ok[at - 2:at] == "  " and ok[at] != " " and bad[at] != " ", col
    at = header.index("REASON")
    assert bad[at - 2:at] == "  " and bad[at:].startswith("no census block")
    assert ok == ok.rstrip() and len(ok) < at  # no reason: no trailing blanks


def test_json_output_is_json_alone(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path))
    assert cli.main(["list", "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("url", ["not a url", "localhost:4566", "http://localhost:abc"])
def test_endpoint_that_is_not_a_url_is_one_line_saying_what_to_do(url, capsys, monkeypatch,
                                                                  tmp_path):
    """It was `listing jobs: ValueError: Invalid endpoint: not a url` (or an unreachable
    endpoint after retries), naming neither the variable nor the fix."""
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path))
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for argv in (["--backend", "aws", "list"], ["stack", "status"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr()
        assert err.out == ""
        assert err.err == (f"pna: error: the AWS endpoint {url!r} (AWS_ENDPOINT_URL or "
                           "endpoint_url) is not an http(s) URL: give e.g. http://localhost:4566 "
                           "for an emulator, or unset it to use AWS\n")


def test_names_that_are_not_utf8_are_one_line(tmp_path, boundary):
    """Arguments in another encoding (Latin-1 file names, a place typed in a Latin-1
    terminal) arrive as surrogate escapes: `pna status`, `logs`, `cancel` ... crashed with a
    UnicodeEncodeError traceback in SQLite, `pna submit --place` too, and a boundary file so
    named was accepted and then killed the job's supervisor (`supervisor process died`)."""
    import subprocess
    import sys

    env = dict(os.environ, PNA_OUTPUTS=str(tmp_path / "out"), PNA_BACKEND="local")
    latin = os.fsencode(tmp_path) + b"/b\xf6.geojson"
    with open(latin, "wb") as f:
        f.write(boundary.read_bytes())
    (tmp_path / "sub").mkdir()

    def pna(*args: str | bytes) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pna_helpers.cli", *args], env=env,
                              capture_output=True, timeout=120, cwd=tmp_path / "sub")

    for cmd in ("status", "logs", "cancel", "results", "retry", "wait"):
        r = pna(cmd, b"K\xf6ln")
        assert r.returncode == 2 and r.stdout == b"", r.stderr
        assert r.stderr == (b"pna: error: unknown job id 'K\\udcf6ln' in the local job store "
                            + os.fsencode(tmp_path) + b"/out/jobs.sqlite (see 'pna list')\n")
    r = pna("submit", "--place", b"K\xf6ln", "--boundary", str(boundary), "--country",
            "Finland")
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.startswith(b"pna: error: request field 'place': 'K\\udcf6ln' is not UTF-8 "
                               b"text") and r.stderr.count(b"\n") == 1
    r = pna("submit", "--place", "X", "--boundary", latin, "--country", "Finland")
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.startswith(b"pna: error: request field 'boundary': '") and r.stderr.endswith(
        b"' is not UTF-8 text (a name in another encoding, e.g. Latin-1, with its bytes shown as"
        b" \\udcXX); rename the file (or folder) with UTF-8 characters\n")
    r = pna("list")
    assert r.returncode == 0 and r.stdout == b"(no jobs)\n"  # nothing was submitted


@pytest.mark.parametrize("given,needle", [
    ("{tmp}", "--map {tmp} is a folder: give an HTML file name, e.g. {tmp}/map.html"),
    ("{tmp}/map.png", "--map {tmp}/map.png: give a file name ending in .html"),
])
def test_campaign_results_map_option_checked_first(given, needle, capsys, tmp_path,
                                                   monkeypatch):
    """`campaign results NAME -o t.csv --map FOLDER` wrote the table, then failed with
    `Is a directory: /.tmp.XXXX.tmp`; the option is now checked before any work."""
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path / "out"))
    out = tmp_path / "t.csv"
    assert cli.main(["campaign", "results", "nosuch", "-o", str(out), "--map",
                     given.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"pna: error: {needle.format(tmp=tmp_path)}\n"
    assert not out.exists()


def test_submit_demo_takes_the_options_given(capsys, tmp_path, monkeypatch):
    """`pna submit --demo --city-speed-limit 40 --place X` silently ran the plain demo."""
    from pna_helpers import jobs

    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path))
    client = jobs.get_client("local", outputs=tmp_path)
    try:
        assert cli.main(["submit", "--demo"]) == 0
        plain = client.get(capsys.readouterr().out.strip())
        assert plain.request == jobs.demo_request().to_dict()
        assert cli.main(["submit", "--demo", "--city-speed-limit", "40", "--place",
                         "Demo at 40"]) == 0
        changed = client.get(capsys.readouterr().out.strip())
        want = {**jobs.demo_request().to_dict(), "city_speed_limit": 40, "place": "Demo at 40"}
        assert changed.request == want
    finally:
        client.cancel_all_active()


@pytest.mark.parametrize("command", ["qa", "plan", "explain", "report"])
def test_backend_and_config_after_every_command(command, capsys, tmp_path, monkeypatch):
    """README: every command takes --backend / --config; `pna qa JOB --backend aws` was
    `unrecognized arguments`, and before the command they were ignored by these four (the job
    id was looked up in the default backend). Applied for the one call only."""
    monkeypatch.setenv("PNA_OUTPUTS", str(tmp_path))
    monkeypatch.delenv("PNA_BACKEND", raising=False)
    monkeypatch.delenv("PNA_CONFIG", raising=False)
    args = [command, "nosuchjob"] + (["nosuchjob2"] if command == "explain" else [])
    missing = tmp_path / "missing.toml"
    for argv in (args + ["--config", str(missing)], ["--config", str(missing)] + args):
        assert cli.main(argv) == 2
        assert capsys.readouterr().err == (f"pna: error: PNA config file {missing} not found: "
                                           "fix PNA_CONFIG or create it\n")
    assert cli.main(args + ["--backend", "local"]) == 2
    assert "job id of the local backend" in capsys.readouterr().err
    assert "PNA_BACKEND" not in os.environ and "PNA_CONFIG" not in os.environ
