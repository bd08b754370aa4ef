"""Notebook task speed, cowaitlib against papermill, side by side in one run.

    python3 scripts/dev.py bench [--repeat 5]

(a) one trivial notebook, one at a time: `papermill.execute_notebook` vs `await NotebookRunner`.
(b) 16 trivial notebooks at once: papermill in a process pool of 2 workers vs `cowaitlib.join`.

Both run the same trivial computation, each parametrized its own way (papermill: a `parameters`
cell it rewrites; cowaitlib: `cw.input`). cowaitlib runs twice: "cold" (each task starts its own
kernel, as papermill does) and "warm" (inside `cw.kernel_pool(...)`, which starts kernels ahead:
for (a) the pool has had time to refill between runs, as it would between a person's runs; for
(b) the pool holds 16 kernels, all up before the clock starts). Prints the median wall time of
each and the ratio cowaitlib/papermill (below 1.0: cowaitlib is faster), and writes them to
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import papermill

import cowaitlib as cw

HERE = Path(__file__).resolve().parent
PAPERMILL_NB = HERE / "trivial_papermill.ipynb"
COWAITLIB_NB = HERE / "trivial_cowaitlib.ipynb"
BATCH = 16
POOL = 2


def papermill_one(index: int, out_dir: str) -> None:
    papermill.execute_notebook(
        str(PAPERMILL_NB),
        f"{out_dir}/pm-{index}.ipynb",
        parameters={"x": index},
        progress_bar=False,
        log_output=False,
    )


async def cowaitlib_one(index: int) -> None:
    assert await cw.NotebookRunner(COWAITLIB_NB, x=index) == 2 * index


async def cowaitlib_batch() -> None:
    results = await cw.join([cw.NotebookRunner(COWAITLIB_NB, x=i) for i in range(BATCH)])
    assert results == [2 * i for i in range(BATCH)]


async def warm_rounds(repeat: int) -> tuple[list[float], list[float]]:
    """Timed runs inside kernel pools; the pools fill up before each clock starts."""
    one, batch = [], []
    async with cw.kernel_pool(1) as pool:
        for _ in range(repeat):
            await pool.filled()  # the pool has refilled, as between a person's runs
            started = time.perf_counter()
            await cowaitlib_one(1)
            one.append(time.perf_counter() - started)
    for _ in range(repeat):
        async with cw.kernel_pool(BATCH) as pool:
            await pool.filled()
            started = time.perf_counter()
            await cowaitlib_batch()
            batch.append(time.perf_counter() - started)
    return one, batch


def papermill_batch(pool: ProcessPoolExecutor, out_dir: str) -> None:
    list(pool.map(papermill_one, range(BATCH), [out_dir] * BATCH))


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in ["pm_one", "cw_one", "pm_batch", "cw_batch"]}
    with tempfile.TemporaryDirectory() as out_dir, ProcessPoolExecutor(POOL) as pool:
        cw.configure(output_dir=out_dir, logs=False, progress=False)
        # Warm up both (imports, kernelspec lookup, the pool's processes) outside the timing.
        papermill_one(0, out_dir)
        asyncio.run(cowaitlib_one(0))
        list(pool.map(papermill_one, range(POOL), [out_dir] * POOL))
        for round_ in range(args.repeat):
            # Alternate who goes first so drift on the machine hits both alike.
            order = ["pm", "cw"] if round_ % 2 == 0 else ["cw", "pm"]
            for who in order:
                if who == "pm":
                    times["pm_one"].append(timed(papermill_one, 1, out_dir))
                    times["pm_batch"].append(timed(papermill_batch, pool, out_dir))
                else:
                    times["cw_one"].append(timed(asyncio.run, cowaitlib_one(1)))
                    times["cw_batch"].append(timed(asyncio.run, cowaitlib_batch()))
            print(f"round {round_ + 1}/{args.repeat} done", file=sys.stderr)
        times["cw_one_warm"], times["cw_batch_warm"] = asyncio.run(warm_rounds(args.repeat))

    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        ("(a) one notebook, cold", med["pm_one"], med["cw_one"]),
        ("(a) one notebook, warm pool", med["pm_one"], med["cw_one_warm"]),
        (f"(b) {BATCH} at once, cold", med["pm_batch"], med["cw_batch"]),
        (f"(b) {BATCH} at once, warm pool", med["pm_batch"], med["cw_batch_warm"]),
    ]
    print(f"\nmedian of {args.repeat} runs on {platform.node()} ({platform.python_version()})")
    print(f"{'case':<32}{'papermill':>12}{'cowaitlib':>12}{'ratio':>8}")
    for name, pm, cwt in rows:
        print(f"{name:<32}{pm:>11.2f}s{cwt:>11.2f}s{cwt / pm:>8.2f}")
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "notebooks.json").write_text(
        json.dumps({"times": times, "median": med}, indent=2)
    )


if __name__ == "__main__":
    main()
