"""Faults around a real engine run: unusable output folders, a full disk, bad values in the
LODES and population files. Each gives ONE line ``pna-engine: error: ...`` and exit 2, and a
failed run never leaves files that look complete.

Read-only and full file systems are real: a tmpfs mounted in a private mount namespace
(``unshare -m``, as root); those tests skip where that is not allowed. The same paths are also
checked in-process with the error injected, so they run everywhere.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pna_engine import cli, export
from pna_engine.errors import InputError
from pna_engine.jobsdata import read_lodes

REPO = Path(__file__).resolve().parent.parent


def _engine(args: list[str], wrap: str | None = None, timeout: float = 120):
    """``python -m pna_engine ARGS``, inside ``unshare -m sh -c WRAP`` when given (``"$@"``
    is the engine command there)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pna_engine", *args]
    if wrap is not None:
        cmd = ["unshare", "-m", "sh", "-c", wrap, "sh", *cmd]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("pna-engine: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory) -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to mount a private tmpfs")
    d = tmp_path_factory.mktemp("mnt")
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {d}"],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    return True


# --------------------------------------------------------------------------- --output
def test_output_that_is_a_file(demo_args, tmp_path, capsys):
    f = tmp_path / "results.csv"
    f.write_text("keep me")
    assert cli.main([*demo_args, "--output", str(f)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(f) in line and "is a file, not a folder" in line
    assert f.read_text() == "keep me"


def test_output_whose_parent_is_a_file(demo_args, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("")
    assert cli.main([*demo_args, "--output", str(f / "sub" / "out")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{f} is a file, not a folder" in line


def test_output_on_a_read_only_file_system(demo_args, tmp_path, can_mount):
    ro = tmp_path / "ro"
    ro.mkdir()
    r = _engine([*demo_args, "--output", str(ro / "out")],
                wrap=f"mount -t tmpfs -o size=1m,ro tmpfs {ro} && exec \"$@\"")
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert f"--output {ro / 'out'}" in line and "read-only" in line


def test_output_folder_read_only_in_process(demo_args, tmp_path, capsys, monkeypatch):
    """The same check without a mount: the write probe fails with EROFS."""
    import tempfile

    def refuse(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out" / ".probe"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert cli.main([*demo_args, "--output", str(tmp_path / "out")]) == 2
    assert "the file system is read-only" in _one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- full disk
def _assert_failed_folder(out: Path, needle: str) -> None:
    names = sorted(p.name for p in out.iterdir())
    assert names == ["status.json"], names  # no staging folder, no export file
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "failed" and needle in st["error"]


def test_disk_full_during_export(demo_args, tmp_path, can_mount):
    """A real ENOSPC: a 600 KB tmpfs, the demo's export is about 1 MB."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    out = mnt / "out"
    r = _engine([*demo_args, "--output", str(out)],
                wrap=f"mount -t tmpfs -o size=600k tmpfs {mnt} && \"$@\"; rc=$?; "
                     f"cp -r {out} {tmp_path}/copy; exit $rc")
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert "the disk is full" in line and str(out) in line
    assert "it needed more than the" in line and "free there now" in line
    _assert_failed_folder(tmp_path / "copy", "the disk is full")


def test_disk_full_in_process(demo_args, tmp_path, capsys, monkeypatch):
    """ENOSPC raised by the export after it wrote a file: one line with the amount written."""
    real = export.write_export

    def fill_up(s):
        (s.staging / "neighborhood_ways.geojson").write_bytes(b"x" * 300_000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "write_export", fill_up)
    out = tmp_path / "out"
    assert cli.main([*demo_args, "--output", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "the disk is full" in line and "293.0 KB" in line
    _assert_failed_folder(out, "the disk is full")
    monkeypatch.setattr(export, "write_export", real)


# --------------------------------------------------------------------------- LODES values
@pytest.mark.parametrize("value, line", [("abc", 3), ("-4", 3), ("", 3), ("1.5", 3)])
def test_lodes_count_that_is_not_a_whole_number(tmp_path, value, line):
    f = tmp_path / "ma_od_main_JT00_2022.csv"
    f.write_text("w_geocode,h_geocode,S000\n250010001001000,250010001001001,3\n"
                 f"250010001001001,250010001001001,{value}\n")
    with pytest.raises(InputError) as e:
        read_lodes(f)
    msg = str(e.value)
    assert f"{f}, line {line}" in msg and "S000" in msg and repr(value) in msg


def test_lodes_valid_file_still_sums(tmp_path):
    f = tmp_path / "ma_od_aux_JT00_2022.csv"
    f.write_text("w_geocode,S000\n25001000100100,3\n25001000100100,4\n250010001001001,+2\n")
    assert read_lodes(f).to_dict() == {"250010001001000": 7, "250010001001001": 2}


def test_lodes_bad_value_through_the_cli(demo_args, tmp_path, capsys):
    f = tmp_path / "ma_od_main_JT00_2022.csv"
    f.write_text("w_geocode,h_geocode,S000\n250010001001000,250010001001001,lots\n")
    args = [a for a in demo_args]
    args[args.index("--country") + 1] = "United States"
    out = tmp_path / "out"
    rc = cli.main([*args, "--state", "MA", "--jobs", str(f), "--output", str(out)])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{f}, line 2: S000" in line
    _assert_failed_folder(out, "S000")


# --------------------------------------------------------------------------- population values
@pytest.mark.parametrize("value", ["many", "-3", "inf"])
def test_population_value_checked(tmp_path, value):
    import geopandas as gpd
    from shapely.geometry import box

    from pna_engine.population import read_blocks

    gdf = gpd.GeoDataFrame({"GEOID20": ["250010001001000", "250010001001001"],
                            "POP20": ["12", value]},
                           geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    f = tmp_path / "blocks.gpkg"
    gdf.to_file(f, driver="GPKG")
    with pytest.raises(InputError) as e:
        read_blocks(f)
    msg = str(e.value)
    assert f"{f}, feature 2 (block 250010001001001): POP20 is {value!r}" in msg
