"""The one protocol every executor implements, and how a name in the settings finds one.

An executor takes a `TaskSpec` and gives back a `ResultEnvelope`; nothing else crosses between
the caller and wherever the task runs. `run` covers the whole life of a task the structured way:

- start: `run` starts the task from its spec;
- logs: while it runs, its output goes to the `TaskOutput` passed in;
- wait: `run` returns the envelope once the task has finished;
- cancel: cancelling the scope around `run` (a timeout, a failed sibling in `join`, Ctrl-C) stops
  the task, and `run` releases what it made (thread, kernel, container, Job) before it unwinds.

Executors for Docker and Kubernetes import their SDKs lazily, so the core installs without them.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import ExecutorUnavailable
from ..logs import TaskOutput
from ..spec import ResultEnvelope, TaskSpec


class Executor(Protocol):
    """Runs one task from its spec to its result envelope.

    An executor whose backend enforces the task's timeout itself (a Job's deadline) may set
    `enforces_timeout = True`: the caller's timer then only backs it up, a little later."""

    async def run(self, spec: TaskSpec, output: TaskOutput) -> ResultEnvelope:
        """Run the task to the end; on cancellation, stop it and clean up before returning."""
        ...


def get_executor(name: str) -> Executor:
    """The executor called `name` in the settings."""
    if name == "inprocess":
        from .inprocess import InProcessExecutor

        return InProcessExecutor()
    if name == "docker":
        from .docker import DockerExecutor

        return DockerExecutor()
    if name == "kubernetes":
        from .kubernetes import KubernetesExecutor

        return KubernetesExecutor()
    raise ExecutorUnavailable(
        f"there is no executor {name!r}; use 'inprocess', 'docker' or 'kubernetes'"
    )
