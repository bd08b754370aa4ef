"""Runs tasks in the caller's own process: the worker is called directly, no boundary but the
serialization layer, which is still applied so a task behaves here as it does in a container."""

from __future__ import annotations

from .. import worker
from ..logs import TaskOutput
from ..spec import ResultEnvelope, TaskSpec


class InProcessExecutor:
    """Async functions run on the caller's loop, sync ones in a worker thread, notebooks in a
    kernel process started (and always shut down) by the caller."""

    async def run(self, spec: TaskSpec, output: TaskOutput) -> ResultEnvelope:
        return await worker.run_task(spec, output)
