"""`pna demo` end to end (a real demo job on the local backend): --no-report writes neither
the report nor the map; a report folder that cannot be written is one error line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _demo(outputs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PNA_OUTPUTS=str(outputs))
    return subprocess.run([sys.executable, "-m", "pna_helpers.cli", "demo", "--no-progress",
                           "--timeout", "600", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def test_demo_no_report_writes_neither_report_nor_map(tmp_path: Path) -> None:
    p = _demo(tmp_path / "o", "--no-report")
    assert p.returncode == 0, p.stderr
    assert "BNA scores (0-100)" in p.stdout and "Overall" in p.stdout
    results = [ln.split(":", 1)[1].strip() for ln in p.stdout.splitlines()
               if ln.startswith("results:")]
    assert results and (Path(results[0]) / "run.json").exists()
    assert "report:" not in p.stdout and "map:" not in p.stdout
    assert not (tmp_path / "o" / "reports").exists()


def test_demo_report_folder_in_the_way_is_one_error_line(tmp_path: Path) -> None:
    outputs = tmp_path / "o"
    outputs.mkdir()
    (outputs / "reports").write_text("a file where the reports folder goes\n")
    p = _demo(outputs)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    errors = [ln for ln in p.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("pna: error: the demo report and map "
                                                     "cannot be written")
    assert f"{outputs / 'reports'} is a file" in errors[0] and "--no-report" in errors[0]
    assert "Overall" in p.stdout  # the analysis itself ran: scores printed, results kept
    assert (outputs / "reports").read_text().startswith("a file")  # left as it was
