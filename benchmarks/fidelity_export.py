"""(H2) Export fidelity: run ``pna-engine`` on an oracle case and compare the export with the
reference tool's, file by file.

    python benchmarks/fidelity_export.py [../shared/oracle/helsinki ...]

Checks: the file set; every GeoJSON/shapefile's field names, feature count and geometry type;
every CSV's lines (order-insensitive; the mileage floats may differ in the last digit because
sums run in another order); the destination tables feature by feature (``blockid20`` as a set -
the reference's array order is the database's - ``osm_id``, population sheds). Prints a table,
exits 1 when something differs. Needs the oracle folder (``../shared``), never used by tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = [ROOT.parent / "shared" / "oracle" / c for c in ("helsinki", "helsinki-us")]
CATEGORIES = ("colleges", "community_centers", "dentists", "doctors", "hospitals", "parks",
              "pharmacies", "retail", "schools", "social_services", "supermarkets", "transit",
              "universities")


def run_case(case: Path, out: Path) -> None:
    inputs = case / "inputs"
    args = [ln.strip() for ln in (inputs / "run.args").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    args = [a if a.startswith("--") or not (inputs / a).exists() else str(inputs / a)
            for a in args]
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pna_engine", "run", *args, "--output", str(out),
                    "--quiet"], check=True)


def _dest_key(f: dict) -> tuple:
    p = f["properties"]
    score = p.get("pop_score")
    return (tuple(sorted(p.get("blockid20") or [])), p.get("osm_id"), p.get("pop_low_stress"),
            p.get("pop_high_stress"), None if score is None else round(score, 9))


def compare(out: Path, ref: Path) -> list[tuple[str, str]]:
    import pyogrio

    rows: list[tuple[str, str]] = []
    mine = {p.name for p in out.iterdir()} - {"run.json", "status.json"}
    theirs = {p.name for p in ref.iterdir() if p.is_file()}
    rows.append(("file set", "same" if mine == theirs else f"DIFF {sorted(mine ^ theirs)}"))
    for name in sorted(theirs & mine):
        if name.endswith((".geojson", ".shp")):
            a, b = pyogrio.read_info(out / name), pyogrio.read_info(ref / name)
            same = (list(a["fields"]) == list(b["fields"]) and a["features"] == b["features"]
                    and a["geometry_type"] == b["geometry_type"])
            rows.append((name, "same fields/count/type" if same else
                         f"DIFF {a['features']} vs {b['features']} features"))
        elif name.endswith(".csv"):
            la = sorted((out / name).read_text().splitlines())
            lb = sorted((ref / name).read_text().splitlines())
            rows.append((name, "same lines" if la == lb else
                         f"DIFF {len(set(la) ^ set(lb))} lines"))
    extras = ref / "extras" / "census_blocks_after_import_32635.csv"
    if extras.exists():
        import pandas as pd

        after = pd.read_csv(extras, dtype={"geoid20": str})
        blocks = json.loads((out / "neighborhood_census_blocks.geojson").read_text())["features"]
        got = {f["properties"]["geoid20"]: f["properties"]["pop20"] for f in blocks}
        want = dict(zip(after["geoid20"], after["pop20"].astype(float)))
        rows.append(("blocks after import (geoid20, pop20)",
                     f"{len(got)} vs {len(want)} " + ("same" if got == want else "DIFF")))
    for cat in CATEGORIES:
        fa = json.loads((out / f"neighborhood_{cat}.geojson").read_text())["features"]
        fb = json.loads((ref / f"neighborhood_{cat}.geojson").read_text())["features"]
        same = sorted(map(_dest_key, fa), key=repr) == sorted(map(_dest_key, fb), key=repr)
        rows.append((f"{cat} destinations", f"{len(fa)} vs {len(fb)} "
                     + ("same" if same else "DIFF")))
    return rows


def main(argv: list[str]) -> int:
    cases = [Path(a) for a in argv] or DEFAULT_CASES
    bad = False
    for case in cases:
        if not (case / "reference").is_dir():
            print(f"skip {case}: no reference folder")
            continue
        out = ROOT / "outputs" / "bench" / "fidelity-export" / case.name
        run_case(case, out)
        print(f"\n== {case.name}")
        for what, result in compare(out, case / "reference"):
            print(f"  {what:48s} {result}")
            bad |= "DIFF" in result and not what.startswith("mileage")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
