"""Tasks, their handles, and running many at once.

A `Task` is something that can run with inputs: a decorated function (`@task`) or a notebook
(`cowaitlib.notebook`). Calling it checks the inputs and returns a `TaskHandle`, an awaitable
that starts at once when an event loop is running (so several run while the caller goes on) and
otherwise when awaited or passed to `run()`.

`join()` is structured: results come back in the order given; the first failure cancels the
rest (their threads, kernels, containers are cleaned up) and is raised; cancelling the caller
cancels its tasks.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import anyio
import anyio.from_thread

from . import config, context, serialization, worker
from .errors import InputError, TaskTimeoutError
from .executors.base import get_executor
from .inputs import check_function_inputs
from .logs import TaskOutput
from .progress import Progress
from .spec import TaskKind, TaskSpec, new_task_id

R = TypeVar("R")
#: Seconds the caller waits past a task's timeout when the executor enforces it itself.
TIMEOUT_BACKSTOP = 30.0


class Task(ABC, Generic[R]):
    """Something that runs with keyword inputs and gives one result."""

    kind: TaskKind
    name: str
    target: str

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self._options: dict[str, Any] = dict(options or {})
        config.check_options(self._options)  # a bad option fails here, not at the call

    def options(self, **options: Any) -> Task[R]:
        """This task with per-call settings (executor, timeout, ...) on top of the others."""
        config.check_options(options)  # fail now on a bad option
        clone = copy.copy(self)
        clone._options = {**self._options, **options}
        return clone

    @abstractmethod
    def check_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Validate and coerce inputs; raise `InputError` naming the problem."""

    def __call__(self, **inputs: Any) -> TaskHandle[R]:
        return self._handle_class()._create(self, self.check_inputs(inputs))

    def _handle_class(self) -> type[TaskHandle[R]]:
        return TaskHandle


class FunctionTask(Task[R]):
    """A plain sync or async function that runs as a task."""

    kind: TaskKind = "function"

    def __init__(self, fn: Callable[..., R], options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.fn = fn
        self.name = fn.__name__
        self.target = f"{fn.__module__}:{fn.__qualname__}"
        if "<locals>" in fn.__qualname__:  # two such functions may share a qualname
            self.target += f"@{id(fn):x}"
        functools.update_wrapper(self, fn)
        worker.register(self.target, fn)

    def __call__(self, *args: Any, **inputs: Any) -> TaskHandle[R]:
        if args:
            raise InputError(
                f"task {self.name!r} takes keyword inputs only, e.g. {self.name}(name=value)"
            )
        return super().__call__(**inputs)

    def check_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return check_function_inputs(self.name, self.fn, inputs)

    def __repr__(self) -> str:
        return f"<cowaitlib task {self.target}>"


@overload
def task(fn: Callable[..., Awaitable[R]], /) -> FunctionTask[R]: ...
@overload
def task(fn: Callable[..., R], /) -> FunctionTask[R]: ...
@overload
def task(**options: Any) -> Callable[[Callable[..., Any]], FunctionTask[Any]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a module-level function a task: `@task` or `@task(timeout=30, executor=...)`."""
    if fn is None:
        return lambda f: FunctionTask(f, options)  # a bad option fails at decoration time
    return FunctionTask(fn, options)


class TaskHandle(Generic[R]):
    """One run of a task: await it for the result."""

    spec: TaskSpec

    @classmethod
    def _create(cls, task: Task[R], inputs: dict[str, Any]) -> TaskHandle[R]:
        handle = cls.__new__(cls)
        handle._setup(task, inputs)
        return handle

    def _setup(self, task: Task[R], inputs: dict[str, Any]) -> None:
        parent = context.current()
        self.settings = config.current_settings(**task._options)
        # Children may run elsewhere (another working directory): pin relative paths now.
        self.settings = self.settings.model_copy(
            update={"output_dir": str(Path(self.settings.output_dir).resolve())}
        )
        payloads = {
            name: serialization.encode(value, where=f"input {name!r} of task {task.name!r}")
            for name, value in inputs.items()
        }
        self.spec = TaskSpec(
            id=new_task_id(task.name),
            name=task.name,
            kind=task.kind,
            target=task.target,
            inputs=payloads,
            parent_id=parent.spec.id if parent else None,
            run_id=parent.spec.run_id if parent else f"run-{uuid.uuid4().hex[:8]}",
            settings=self.settings.model_dump(mode="json"),
        )
        #: Where the executed notebook was saved, once a notebook task has run.
        self.output_notebook: str | None = None
        self._limiter: anyio.Semaphore | None = None
        self._begun = False
        self._runner: asyncio.Task[R] | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop here: start when awaited or run()
        self._start()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    def done(self) -> bool:
        return self._runner is not None and self._runner.done()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running" if self._runner else "not started"
        return f"<TaskHandle {self.spec.id} {state}>"

    def __await__(self) -> Generator[Any, None, R]:
        return self._wait().__await__()

    async def cancel(self) -> None:
        """Stop the task and wait until everything it started is cleaned up."""
        if self._runner is None or self._runner.done():
            return
        self._runner.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([self._runner])

    # -- internals --------------------------------------------------------------------------

    def _start(self) -> asyncio.Task[R]:
        if self._runner is None:
            loop = asyncio.get_running_loop()
            self._runner = loop.create_task(self._run(), name=self.spec.id)
        return self._runner

    async def _wait(self) -> R:
        runner = self._start()
        try:
            return await asyncio.shield(runner)
        except asyncio.CancelledError:
            await self.cancel()
            raise

    async def _run(self) -> R:
        self._begun = True
        if self._limiter is None:
            return await self._execute()
        async with self._limiter:
            return await self._execute()

    async def _execute(self) -> R:
        executor = get_executor(self.settings.executor)
        output = TaskOutput(self.spec.id, enabled=self.settings.logs)
        timeout = self.settings.timeout
        # An executor that enforces the timeout itself (a Job's deadline) reports it; ours
        # is then only a backstop in case that report never comes.
        enforced = bool(getattr(executor, "enforces_timeout", False))
        backstop = timeout + TIMEOUT_BACKSTOP if timeout and enforced else timeout
        try:
            with anyio.fail_after(backstop):
                envelope = await executor.run(self.spec, output)
        except TimeoutError:
            saved = Path(self.settings.output_dir) / f"{self.spec.id}.ipynb"
            notebook = self.spec.kind == "notebook"
            self.output_notebook = str(saved) if notebook and saved.exists() else None
            raise TaskTimeoutError(
                task_id=self.spec.id,
                task_name=self.spec.name,
                error_type="TimeoutError",
                message=f"did not finish within its timeout of {timeout:g} s and was cancelled",
                notebook=self.spec.target if notebook else None,
                output_notebook=self.output_notebook,
            ) from None
        self.output_notebook = envelope.output_notebook
        envelope.raise_for_error(self.spec)
        result: R = serialization.decode(envelope.result)
        return result


async def join(
    handles: Iterable[TaskHandle[Any]],
    *,
    return_exceptions: bool = False,
    limit: int | None = None,
    progress: bool | None = None,
) -> list[Any]:
    """Wait for all `handles`; results in the order given.

    The first failure cancels the others and is raised, unless `return_exceptions` is set, in
    which case failures take their place in the list. `limit` bounds how many of the handles
    that have not started yet run at once. `progress` shows a progress line (default: settings).
    """
    handles = list(handles)
    for index, handle in enumerate(handles):
        if not isinstance(handle, TaskHandle):
            raise TypeError(
                f"join() takes task handles; item {index} is a {type(handle).__name__}. "
                "Call the task (e.g. volume(date=...)) to get a handle."
            )
    if limit is not None:
        if limit < 1:
            raise ValueError(f"join(limit=...) must be at least 1, got {limit}")
        limiter = anyio.Semaphore(limit)
        for handle in handles:
            if not handle._begun:
                handle._limiter = limiter
    results: list[Any] = [None] * len(handles)
    failures: list[BaseException] = []
    tracker = Progress.for_join(len(handles), progress)

    async def collect(index: int, handle: TaskHandle[Any], scope: anyio.CancelScope) -> None:
        try:
            results[index] = await handle
        except Exception as exc:
            tracker.advance(failed=True)
            if return_exceptions:
                results[index] = exc
            elif not failures:
                failures.append(exc)
                scope.cancel()
            return
        tracker.advance()

    try:
        async with anyio.create_task_group() as group:
            for index, handle in enumerate(handles):
                group.start_soon(collect, index, handle, group.cancel_scope)
    finally:
        # Whatever ended the join (a failure, the caller's cancellation), nothing outlives it.
        with anyio.CancelScope(shield=True):
            for handle in handles:
                await handle.cancel()
        tracker.close()
    if failures:
        raise failures[0]
    return results


@overload
def run(handles: TaskHandle[R], /) -> R: ...
@overload
def run(handles: Iterable[TaskHandle[Any]], /) -> list[Any]: ...


def run(handles: TaskHandle[Any] | Iterable[TaskHandle[Any]], /) -> Any:
    """Blocking helper for scripts: run a handle (or a list, as `join`) and return the result."""
    if isinstance(handles, TaskHandle):
        single = handles

        async def main() -> Any:
            return await single
    else:
        many = list(handles)

        async def main() -> Any:
            return await join(many)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "cowaitlib.run() cannot be called where an event loop is already running "
            "(a Jupyter notebook, an async function): use `await handle` or "
            "`await cowaitlib.join([...])` instead"
        )
    token = context.loop_token.get()
    if token is not None:  # inside a sync task's worker thread: run on the task's own loop
        return anyio.from_thread.run(main, token=token)  # type: ignore[arg-type]
    return anyio.run(main)
