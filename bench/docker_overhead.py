"""Per-task overhead of the Docker executor against a bare `docker run`, side by side.

    python3 scripts/dev.py bench-docker [--repeat 20]

Both start a fresh container of the same task image, one at a time:
  bare:      docker run --rm IMAGE python -c "print(1 + 1)"   (the docker CLI)
  cowaitlib: await add(a=1, b=1) with executor="docker"        (spec in, envelope out)
Prints the median of each and the ratio cowaitlib/bare, and writes them to bench/results/.
The task image is built first (cached layers make that quick after the first time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cowaitlib as cw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import task_image  # noqa: E402  (bench/task_image.py)
from tests import tasks_for_tests as t  # noqa: E402  (a module the image holds too)

IMAGE = "cowaitlib-bench:latest"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--base-image", default="cowaitlib/python-base:3.11")
    args = parser.parse_args()
    task_image.build(IMAGE, args.base_image)
    cw.configure(
        executor="docker",
        logs=False,
        docker={"image": IMAGE, "project_dir": str(ROOT), "pull": "never"},
    )
    bare_command = ["docker", "run", "--rm", IMAGE, "python", "-c", "print(1 + 1)"]

    def bare() -> None:
        done = subprocess.run(bare_command, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "2"

    def ours() -> None:
        assert cw.run(t.add(a=1, b=1)) == 2

    bare()
    ours()  # warm-up: image layers in the page cache, the docker client connected
    times: dict[str, list[float]] = {"bare": [], "cowaitlib": []}
    for round_ in range(args.repeat):
        for name, run in (("bare", bare), ("cowaitlib", ours))[:: 1 if round_ % 2 else -1]:
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nper-task round trip, median of {args.repeat}, one at a time")
    print(f"  bare docker run:    {med['bare']:.2f} s")
    print(f"  cowaitlib (docker): {med['cowaitlib']:.2f} s")
    print(f"  ratio:              {med['cowaitlib'] / med['bare']:.2f}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "docker.json").write_text(json.dumps({"times": times, "median": med}, indent=2))


if __name__ == "__main__":
    main()
