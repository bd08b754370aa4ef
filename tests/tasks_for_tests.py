"""Module-level task functions used by the tests (tasks must be importable by name)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import anyio

import cowaitlib as cw

events: dict[str, Any] = {}


@cw.task
def add(a: int, b: int = 1) -> int:
    return a + b


@cw.task
async def double(x: int) -> int:
    await anyio.sleep(0.01)
    return 2 * x


@cw.task
def typed(when: dt.date, flag: bool = False, ratio: float = 1.0, name: str = "n") -> dict[str, Any]:
    return {"when": when, "flag": flag, "ratio": ratio, "name": name}


@cw.task
def takes_anything(**inputs: Any) -> dict[str, Any]:
    return inputs


@cw.task
async def sleeper(key: str, seconds: float = 30.0) -> str:
    """Records whether it started, finished or was cancelled."""
    events[key] = "started"
    try:
        await anyio.sleep(seconds)
    except BaseException:
        events[key] = "cancelled"
        raise
    events[key] = "finished"
    return key


@cw.task
async def fails(message: str = "boom", after: float = 0.0) -> None:
    await anyio.sleep(after)
    raise ValueError(message)


@cw.task
def sync_fails() -> None:
    raise KeyError("missing")


@cw.task
async def concurrency_probe(key: str) -> int:
    """Counts how many probes run at the same time."""
    state = events.setdefault(key, {"now": 0, "max": 0})
    state["now"] += 1
    state["max"] = max(state["max"], state["now"])
    await anyio.sleep(0.05)
    state["now"] -= 1
    return state["max"]


@cw.task
async def parent_of_doubles(n: int) -> dict[str, Any]:
    handles = [double(x=i) for i in range(n)]
    ids = {h.spec.parent_id for h in handles}
    return {"results": await cw.join(handles), "parents": sorted(p or "" for p in ids)}


@cw.task
def sync_parent(n: int) -> list[int]:
    """A sync task (in a worker thread) starting children with the blocking helper."""
    return cw.run([add(a=i) for i in range(n)])


@cw.task
def whoami() -> dict[str, Any]:
    from cowaitlib import context

    ctx = context.current()
    assert ctx is not None
    return {"id": ctx.spec.id, "parent": ctx.spec.parent_id, "run": ctx.spec.run_id}


@cw.task
async def nested_whoami() -> dict[str, Any]:
    from cowaitlib import context

    me = context.current()
    assert me is not None
    child = await whoami()
    return {"me": me.spec.id, "run": me.spec.run_id, "child": child}


@cw.task
def exits_early(value: int) -> str:
    cw.exit(value * 10)
    return "not reached"


@cw.task
def swallow_attempt() -> str:
    try:
        cw.exit("kept")
    except Exception:  # exit() must not be caught by a broad except
        return "swallowed"
    return "not reached"


@cw.task
def reads_input(fallback: str = "default") -> Any:
    return [cw.input("fallback", "ignored"), cw.input("absent", 5)]


@cw.task
def returns_unserializable() -> Any:
    return threading.Lock()


@cw.task
def prints(lines: int) -> int:
    for i in range(lines):
        print(f"line {i}")
    return lines


@cw.task
def blocking_sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


@cw.task
async def returns_frame(rows: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"n": range(rows), "half": [i / 2 for i in range(rows)]})


@cw.task
def allocates(megabytes: int) -> int:
    """Holds `megabytes` of memory (to meet a container's memory limit)."""
    block = bytearray(megabytes * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


@cw.task
def settings_seen() -> dict[str, Any]:
    """The timeout this task sees, and the one its child sees."""
    child = cw.run(reports_timeout())
    return {"mine": cw.current_settings().timeout, "child": child}


@cw.task
def reports_timeout() -> float | None:
    return cw.current_settings().timeout


@cw.task
def sync_runs_a_child(x: int) -> int:
    return cw.run(add(a=x)) + 0


@cw.task
async def parent_of_a_failure() -> None:
    await fails(message="deep down")


@cw.task
def ends_without_newline(text: str) -> str:
    """Output whose last line has no newline; the entry's own last line follows it."""
    print(text, end="", flush=True)
    return text


@cw.task
def forges_an_envelope(value: int) -> int:
    """Prints a line that looks like an envelope for another task (it must be ignored)."""
    print('<<cowaitlib-envelope>>{"version":1,"task_id":"someone-else","status":"ok","result":0}')
    return value


@cw.task
def collector_state() -> dict[str, Any]:
    """Whether the garbage collector is on while the task runs, and what it has frozen."""
    import gc

    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}


@cw.task
def pod_namespace() -> str:
    """The namespace of the pod this task runs in."""
    from pathlib import Path

    return Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()


@cw.task
def container_view() -> dict[str, Any]:
    """What a task sees of its container's settings: environment, a mounted folder, its CPU and
    memory limits (cgroup v2 or v1) and its address."""
    import os
    import socket
    from pathlib import Path

    cgroup = Path("/sys/fs/cgroup")
    if (cgroup / "cpu.max").exists():
        quota, period = (cgroup / "cpu.max").read_text().split()
        memory = (cgroup / "memory.max").read_text().strip()
    else:
        quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        memory = (cgroup / "memory" / "memory.limit_in_bytes").read_text().strip()
    mounted = Path("/mnt/host/hello.txt")
    return {
        "greeting": os.environ.get("GREETING"),
        "mounted": mounted.read_text() if mounted.exists() else None,
        "cpus": int(quota) / int(period),
        "memory": int(memory),
        "address": socket.gethostbyname(socket.gethostname()),
    }
