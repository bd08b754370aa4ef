"""Kubernetes executor round trips against kubectl, side by side on the same cluster and image.

    python3 scripts/dev.py bench-kubernetes [--repeat 5]

(1) one trivial task:  `kubectl create job` + `kubectl wait --for=condition=complete`
                        vs  cw.run(add(a=1, b=1)) with executor="kubernetes" (which also reads
                        the result back and deletes the Job)
(2) 20 tasks at once:  20 x `kubectl create job` + one `kubectl wait` on all of them
                        vs  cw.join of 20 tasks
Also counts the API requests cowaitlib makes per task. Medians, ratios cowaitlib/kubectl, and
the request count go to the screen and to bench/results/kubernetes.json. Needs a cluster
(KUBECONFIG, default the test cluster's) whose node can use the task image built here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes

import cowaitlib as cw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import task_image  # noqa: E402  (bench/task_image.py)
from tests import tasks_for_tests as t  # noqa: E402  (a module the image holds too)

IMAGE = "cowaitlib-bench:bench"  # not :latest, which kubectl would always pull
NAMESPACE = "cowaitlib-bench"
BATCH = 20


def kubectl(config: str, *args: str) -> str:
    command = ["kubectl", "--kubeconfig", config, "-n", NAMESPACE, *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def by_hand(config: str, count: int) -> None:
    run = uuid.uuid4().hex[:6]
    names = [f"bench-{run}-{i}" for i in range(count)]
    for name in names:
        kubectl(
            config, "create", "job", name, f"--image={IMAGE}", "--", "python", "-c", "print(1 + 1)"
        )
    kubectl(
        config,
        "wait",
        "--for=condition=complete",
        "--timeout=300s",
        *[f"job/{name}" for name in names],
    )
    return None


def cleanup_by_hand(config: str) -> None:
    kubectl(config, "delete", "jobs", "--all", "--wait=false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base-image", default="cowaitlib/python-base:3.11")
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", "/var/lib/cowaitlib-kube/admin.kubeconfig"),
    )
    args = parser.parse_args()
    config = args.kubeconfig
    subprocess.run(
        ["kubectl", "--kubeconfig", config, "create", "namespace", NAMESPACE], capture_output=True
    )
    task_image.build(IMAGE, args.base_image)
    cw.configure(
        executor="kubernetes",
        logs=False,
        progress=False,
        docker={"image": IMAGE, "project_dir": str(ROOT)},
        kubernetes={
            "kubeconfig": config,
            "namespace": NAMESPACE,
            "image_pull_policy": "IfNotPresent",
        },
    )

    def ours(count: int) -> None:
        assert cw.run([t.add(a=i, b=1) for i in range(count)]) == [i + 1 for i in range(count)]

    calls: list[str] = []
    original = kubernetes.client.ApiClient.call_api

    def counting(self: Any, method: str, url: str, *a: Any, **k: Any) -> Any:
        calls.append(f"{method} {url}")
        return original(self, method, url, *a, **k)

    try:
        by_hand(config, 1)
        ours(1)  # warm-up: image in the node's cache, client connected
        times: dict[str, list[float]] = {
            k: [] for k in ["kubectl_one", "cowaitlib_one", "kubectl_batch", "cowaitlib_batch"]
        }
        for round_ in range(args.repeat):
            for who in ("kubectl", "cowaitlib") if round_ % 2 else ("cowaitlib", "kubectl"):
                for size, label in ((1, "one"), (BATCH, "batch")):
                    started = time.perf_counter()
                    if who == "kubectl":
                        by_hand(config, size)
                    else:
                        ours(size)
                    times[f"{who}_{label}"].append(time.perf_counter() - started)
                    if who == "kubectl":
                        cleanup_by_hand(config)
                    time.sleep(2)  # let the node settle between runs
            print(f"round {round_ + 1}/{args.repeat} done", file=sys.stderr)
        kubernetes.client.ApiClient.call_api = counting  # type: ignore[method-assign]
        ours(BATCH)
        kubernetes.client.ApiClient.call_api = original  # type: ignore[method-assign]
    finally:
        cleanup_by_hand(config)
    med = {k: statistics.median(v) for k, v in times.items()}
    per_task = len(calls) / BATCH
    print(f"\nmedian of {args.repeat} runs")
    print(f"{'case':<26}{'kubectl':>10}{'cowaitlib':>12}{'ratio':>8}")
    for label, name in (("one", "(1) one task"), ("batch", f"(2) {BATCH} tasks at once")):
        k, c = med[f"kubectl_{label}"], med[f"cowaitlib_{label}"]
        print(f"{name:<26}{k:>9.2f}s{c:>11.2f}s{c / k:>8.2f}")
    print(f"API requests per task (cowaitlib, {BATCH} at once): {per_task:.2f}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "kubernetes.json").write_text(
        json.dumps(
            {"times": times, "median": med, "requests_per_task": per_task, "calls": calls}, indent=2
        )
    )


if __name__ == "__main__":
    main()
