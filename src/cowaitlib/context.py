"""The current task, as seen from code running inside it: its inputs and its way out.

`input()` and `exit()` behave the same wherever the code runs. Inside a task they read the task's
inputs and end it with a value; outside any task (a notebook opened in stock Jupyter, a plain
script) `input()` returns its default and `exit()` shows the value and stops.

A function task's context lives in a context variable (so concurrent tasks in one process each
see their own). A notebook task's kernel, or a container running one task, is wholly that task:
the worker points an environment variable at a JSON file holding the spec, and the context is
read from it on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config, serialization
from .errors import InputError, TaskExit
from .inputs import coerce_to_default
from .spec import ResultEnvelope, TaskSpec

#: Names the JSON file ({"spec": ..., "result_file": ...}) of the task this process runs.
TASK_FILE_ENV = "_COWAITLIB_TASK_FILE"

_MISSING: Any = object()


@dataclass
class TaskContext:
    """One running task as its own code sees it."""

    spec: TaskSpec
    inputs: dict[str, Any]
    #: Where `exit()` writes the result envelope, for tasks whose result is read by another
    #: process (a notebook kernel). None when the worker gets the value directly.
    result_file: Path | None = None
    inputs_read: set[str] = field(default_factory=set)


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "cowaitlib_current_task", default=None
)
#: The event loop a sync task's thread was started from, so `cowaitlib.run()` there can use it.
loop_token: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "cowaitlib_loop_token", default=None
)
_process_context: TaskContext | None = None
_process_context_loaded = False


def current() -> TaskContext | None:
    """The task this code runs in, or None outside any task."""
    ctx = _current.get()
    if ctx is not None:
        return ctx
    return _load_process_context()


@contextlib.contextmanager
def entered(ctx: TaskContext) -> Iterator[TaskContext]:
    """Make `ctx` the current task for this block (and what it starts)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def _load_process_context() -> TaskContext | None:
    global _process_context, _process_context_loaded
    if not _process_context_loaded:
        _process_context_loaded = True
        path = os.environ.get(TASK_FILE_ENV)
        if path:
            document = json.loads(Path(path).read_text())
            spec = TaskSpec.model_validate(document["spec"])
            config.inherit(spec.settings)
            inputs = {k: serialization.decode(v) for k, v in spec.inputs.items()}
            _process_context = TaskContext(
                spec=spec, inputs=inputs, result_file=Path(document["result_file"])
            )
    return _process_context


def input(name: str, default: Any = _MISSING) -> Any:
    """The task's input `name`, coerced to the type of `default`; outside a task, `default`."""
    ctx = current()
    if ctx is not None and name in ctx.inputs:
        ctx.inputs_read.add(name)
        value = ctx.inputs[name]
        if default is _MISSING:
            return value
        return coerce_to_default(ctx.spec.name, name, value, default)
    if default is _MISSING:
        where = f"task {ctx.spec.name!r} was not given it" if ctx else "no task is running"
        raise InputError(
            f"cowaitlib.input({name!r}) has no default and {where}: give a default, "
            f"e.g. cowaitlib.input({name!r}, 'some value'), or pass {name}=... to the task"
        )
    return default


def exit(value: Any = None) -> None:
    """End the current task now, with `value` as its result."""
    ctx = current()
    if ctx is not None and ctx.result_file is not None:
        payload = serialization.encode(value, where="the value given to cowaitlib.exit()")
        envelope = ResultEnvelope(task_id=ctx.spec.id, status="ok", result=payload)
        ctx.result_file.write_text(envelope.model_dump_json())
    if ctx is None and _ipython() is None:
        # A plain script outside any task: show the value and stop like sys.exit().
        print(repr(value))
        raise SystemExit(0)
    if ctx is None:
        from IPython.display import display

        display(value)
    raise TaskExit(value)


def _ipython() -> Any:
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def install_ipython_exit_handler() -> None:
    """In IPython/Jupyter, show `exit()` as one short line instead of a traceback.

    The cell still counts as failed, so "Run All" stops there, which is what exit means.
    """
    shell = _ipython()
    if shell is None or TaskExit in getattr(shell, "custom_exceptions", ()):
        return

    def show_exit(shell: Any, etype: type, value: TaskExit, tb: Any, tb_offset: Any = None) -> Any:
        ctx = current()
        where = f"task {ctx.spec.name!r} finished" if ctx else "notebook finished"
        message = f"cowaitlib.exit(): {where} with {_short_repr(value.value)}; later cells not run"
        shell._showtraceback(etype, value, [message])
        return [message]

    shell.set_custom_exc((TaskExit,), show_exit)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
