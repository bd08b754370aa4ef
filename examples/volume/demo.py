"""The volume example end to end: one batch notebook, one child notebook per day.

    python examples/volume/demo.py [--start-day 1] [--end-day 10]

Runs notebook_batch.ipynb as a task; it runs volume.ipynb once per day as its own child tasks
(side by side), then charts the volumes. Prints each day's volume and the total, checks them
against the data generator's known values, and says where the executed notebooks were saved.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from trades import expected_volume  # noqa: E402

import cowaitlib as cw  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-day", type=int, default=1)
    parser.add_argument("--end-day", type=int, default=10)
    args = parser.parse_args()

    started = time.perf_counter()
    batch = cw.NotebookRunner(
        HERE / "notebook_batch.ipynb", start_day=args.start_day, end_day=args.end_day
    )
    volumes: dict[str, int] = cw.run(batch)
    elapsed = time.perf_counter() - started

    print()
    for date, volume in volumes.items():
        print(f"{date}  XBTUSD volume {volume:>14,}")
    print(f"total     XBTUSD volume {sum(volumes.values()):>14,}")
    print(
        f"\n{len(volumes)} day notebooks in {elapsed:.1f} s; executed notebooks (with the chart):"
    )
    print(f"  {Path(cw.current_settings().output_dir).resolve() / (batch.id + '.ipynb')}")
    wrong = {d: v for d, v in volumes.items() if v != expected_volume(d)}
    if wrong:
        print(f"MISMATCH against the generator's known volumes: {wrong}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
