"""`pna` as its users type it: option values, the jobs table. Fast (no job runs)."""

from __future__ import annotations

import datetime as _dt
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
