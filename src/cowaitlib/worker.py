"""Spec in, envelope out: runs one task wherever it was sent (a thread, a kernel, a container).

Whatever happens inside the task, the worker answers with a `ResultEnvelope`: the result as a
payload, or the error as text (type, message, traceback). Exceptions never cross the boundary as
objects, so the caller sees the same `TaskError` from every executor.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from . import config, context, logs, serialization
from .errors import TaskError, TaskExit
from .spec import ErrorInfo, ResultEnvelope, TaskSpec

_registry: dict[str, Callable[..., Any]] = {}


def register(target: str, fn: Callable[..., Any]) -> None:
    """Remember a task function by its target, so this process can run it without importing."""
    _registry[target] = fn


def resolve_function(target: str) -> Callable[..., Any]:
    """The function a spec's target ('module:qualname') names."""
    if target in _registry:
        return _registry[target]
    module_name, _, qualname = target.partition(":")
    if module_name == "__main__":
        raise LookupError(
            f"task function {qualname!r} is defined in the script being run (__main__), which "
            "another process cannot import; move it into a module"
        )
    if "<locals>" in qualname:
        raise LookupError(
            f"task function {target!r} is defined inside another function, so another process "
            "cannot import it; define it at module level"
        )
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    function: Callable[..., Any] = getattr(obj, "fn", obj)  # @task-decorated: the plain one
    return function


async def run_task(spec: TaskSpec, output: logs.TaskOutput | None) -> ResultEnvelope:
    """Run the task `spec` describes and report how it went. `output`, if given, receives what
    the task prints (in-process); otherwise it goes to this process's own stdout/stderr."""
    if spec.kind == "notebook":
        from .notebook_execution import run_notebook

        return await run_notebook(spec, output)
    return await _run_function(spec, output)


async def _run_function(spec: TaskSpec, output: logs.TaskOutput | None) -> ResultEnvelope:
    try:
        fn = resolve_function(spec.target)
        inputs = {name: serialization.decode(p) for name, p in spec.inputs.items()}
    except Exception as exc:
        return failure(spec, exc)
    ctx = context.TaskContext(spec=spec, inputs=inputs)
    capture = logs.capture(output) if output is not None else contextlib.nullcontext()
    # The task's own settings (with its per-call options) are what it and its children see.
    with context.entered(ctx), config.layered(spec.settings), capture:
        try:
            if inspect.iscoroutinefunction(fn):
                value = await fn(**inputs)
            else:
                call = functools.partial(fn, **inputs)
                context.loop_token.set(anyio.lowlevel.current_token())
                # A thread cannot be interrupted: on cancellation the caller stops waiting and
                # the thread is left to finish on its own.
                value = await anyio.to_thread.run_sync(
                    call, abandon_on_cancel=True, limiter=_task_threads()
                )
        except TaskExit as stop:
            value = stop.value
        except Exception as exc:
            return failure(spec, exc)
    return success(spec, value)


def _task_threads() -> anyio.CapacityLimiter:
    """Sync tasks' threads are not capped: a sync parent waits in its thread for children that
    need threads of their own, and any cap would deadlock a wide enough tree. Bound how many
    run at once with join(limit=...) instead."""
    global _unbounded
    if _unbounded is None:
        _unbounded = anyio.CapacityLimiter(math.inf)
    return _unbounded


_unbounded: anyio.CapacityLimiter | None = None


def success(spec: TaskSpec, value: Any) -> ResultEnvelope:
    """An envelope carrying `value`, or the error if `value` cannot cross the boundary."""
    try:
        payload = serialization.encode(value, where=f"the result of task {spec.name!r}")
    except Exception as exc:
        return failure(spec, exc)
    return ResultEnvelope(task_id=spec.id, status="ok", result=payload)


def failure(spec: TaskSpec, exc: BaseException, **fields: Any) -> ResultEnvelope:
    """An envelope describing `exc` as text; `fields` override what is read off `exc`."""
    described = {
        "type": type(exc).__qualname__,
        "message": str(exc),
        "traceback": _user_traceback(exc),
    }
    if isinstance(exc, TaskError):  # a child task's failure: its own report is the traceback
        described.update(message=str(exc).splitlines()[0], traceback=str(exc))
    info = ErrorInfo.model_validate({**described, **fields})
    return ResultEnvelope(task_id=spec.id, status="error", error=info)


_MACHINERY = (str(Path(__file__).parent), str(Path(anyio.__file__).parent))


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the task's own code on: leading cowaitlib/anyio frames left out."""
    tb = exc.__traceback__
    while (
        tb is not None
        and tb.tb_next is not None
        and tb.tb_frame.f_code.co_filename.startswith(_MACHINERY)
    ):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_in_this_process(spec: TaskSpec) -> ResultEnvelope:
    """Run `spec` as the task this whole process exists for (a container's, a pod's): adopt
    its settings, let its output through unprefixed (the executor prefixes it), answer."""
    config.inherit(spec.settings)
    return anyio.run(run_task, spec, logs.TaskOutput(prefix=None))
