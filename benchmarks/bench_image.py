"""The job image: its size and how long a container takes from start to its first phase.

    python benchmarks/bench_image.py [--repeat 5] [--cold]

Builds the image first when needed (``tools/image.py``: buildah, vfs storage, chroot isolation;
``--cold`` removes the cached base and image first and times a build from nothing). Then, in one
working container of the image, runs the Helsinki demo job ``--repeat`` times as Batch would
(``pna-engine run-job``, request in ``PNA_REQUEST``, inputs mounted read-only, results to the
container's ``/tmp``) and prints the medians of:

* ``true``: ``buildah run``'s own start (chroot runtime), the floor of every measure below;
* ``engine --version``: interpreter + CLI start in the container (``pna-engine --version``);
* ``to job start``: from starting the container process to the runner's first line (imports
  done, request read);
* ``to first phase``: to ``phase import`` (inputs fetched, the engine started);
* ``whole job``: to the process exit.

Also ``buildah from`` (creating the working container: with vfs storage a full copy of the
image, which overlay storage or Docker does not make). Prints numbers, asserts nothing. Skips
cleanly where buildah cannot build (not root, not installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("pna_image_tools", REPO / "tools" / "image.py")
image_tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_tools)


def _timed_job(ctr: str, argv: list[str], env: dict[str, str],
               volumes: dict[str, str]) -> dict[str, float]:
    """Start the job in the container and time its stderr milestones."""
    t0 = time.perf_counter()
    p = subprocess.Popen(image_tools.run_argv(ctr, argv, env, volumes), env=image_tools.environ(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marks: dict[str, float] = {}
    lines = []
    for line in p.stderr:
        lines.append(line)
        now = time.perf_counter() - t0
        if line.startswith("[pna-job] job "):
            marks.setdefault("job_start_s", now)
        if line.startswith("[pna-job] phase "):
            marks.setdefault("first_phase_s", now)
    p.wait()
    marks["whole_job_s"] = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"the job failed in the container (exit {p.returncode}):\n"
                         + "".join(lines[-20:]))
    return marks


def _cold() -> None:
    for ref in (f"{image_tools.IMAGE}:{image_tools.engine_version()}", image_tools.base_tag()):
        image_tools.buildah("rmi", "--force", ref, check=False)
    for line in image_tools.buildah("images", "--format", "{{.Name}}:{{.Tag}}",
                                    "--filter", f"reference={image_tools.IMAGE}").splitlines():
        image_tools.buildah("rmi", "--force", line.strip(), check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cold", action="store_true",
                    help="remove the cached base and image first: time a build from nothing")
    a = ap.parse_args(argv)
    reason = image_tools.unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    if a.cold:
        _cold()
    t0 = time.perf_counter()
    tag = image_tools.build(quiet=True)
    build_s = time.perf_counter() - t0
    info = image_tools.inspect(tag)
    layers = json.loads(json.loads(image_tools.buildah("inspect", "--type", "image", tag))
                        ["Manifest"])["layers"]

    from pna_engine.demo import prepare_demo_inputs
    from pna_helpers.paths import outputs_dir

    demo = prepare_demo_inputs(outputs_dir() / "demo-inputs")
    folder = Path(demo["boundary"]).parent
    request = {k: (f"/inputs/{Path(v).name}" if k in ("boundary", "osm", "population") else v)
               for k, v in demo.items()}
    request["offline"] = True
    env = {"PNA_REQUEST": json.dumps(request), "PNA_RESULTS_URI": "/tmp/bench-results"}
    job = image_tools.job_argv(info["config"])

    t1 = time.perf_counter()
    ctr = image_tools.create(tag)
    create_s = time.perf_counter() - t1
    try:
        bare, version, runs = [], [], []
        for _ in range(a.repeat):
            for argv, times in ((["true"], bare), (["pna-engine", "--version"], version)):
                t2 = time.perf_counter()
                subprocess.run(image_tools.run_argv(ctr, argv), env=image_tools.environ(),
                               check=True, capture_output=True)
                times.append(time.perf_counter() - t2)
            runs.append(_timed_job(ctr, job, env, {str(folder): "/inputs"}))
    finally:
        image_tools.remove(ctr)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"image {tag}")
    print("| measure | value |\n|---|--:|")
    print(f"| image size (uncompressed, sum of {len(layers)} layers) | "
          f"{info['size'] / 1e6:.0f} MB |")
    print(f"| base layer | {int(layers[0]['size']) / 1e6:.0f} MB |")
    print(f"| build ({'cold: base + image' if a.cold else 'cached or incremental'}) | "
          f"{build_s:.0f} s |")
    print(f"| `buildah from` (vfs copy of the image) | {create_s:.1f} s |")
    print(f"| `buildah run` of `true` (the runtime's own start, median of {a.repeat}) | "
          f"{statistics.median(bare):.2f} s |")
    print(f"| `pna-engine --version` in the container (median of {a.repeat}) | "
          f"{statistics.median(version):.2f} s |")
    print(f"| start → job start (median) | {med('job_start_s'):.2f} s |")
    print(f"| start → first phase (median) | {med('first_phase_s'):.2f} s |")
    print(f"| start → exit, whole Helsinki demo job (median) | {med('whole_job_s'):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
