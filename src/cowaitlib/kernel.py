"""Jupyter kernels for notebook tasks: started, handed to one task, always shut down.

A kernel serves exactly one task and is never reused, so no task can see another's state.
Starting one takes most of a small notebook's run time, so `kernel_pool()` can start kernels
ahead of need: within the block, a notebook task takes a kernel that is already up, and the pool
starts the next. Idle kernels are shut down when the block ends.

Every kernel is started with an environment variable naming the JSON file that will hold its
task's spec (see `context`), so a warm kernel only has to be told which folder to work in.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .context import TASK_FILE_ENV

if TYPE_CHECKING:  # imported when a kernel is started: it weighs on every import otherwise
    from jupyter_client.manager import AsyncKernelManager


@dataclass
class Kernel:
    """A running kernel, its client, and the scratch folder holding its task's files."""

    manager: AsyncKernelManager
    client: Any
    scratch: Path

    @property
    def task_file(self) -> Path:
        return self.scratch / "task.json"

    @property
    def result_file(self) -> Path:
        return self.scratch / "result.json"


async def start_kernel(
    kernel_name: str, cwd: Path | None = None, warm_up: str | None = None
) -> Kernel:
    """Start a kernel working in `cwd` (default: its own empty scratch folder); on any failure
    nothing is left running."""
    from jupyter_client.manager import AsyncKernelManager

    scratch = Path(tempfile.mkdtemp(prefix="cowaitlib-"))
    # IPC sockets in the scratch folder: nothing listens on the network, nothing to encrypt.
    manager = AsyncKernelManager(
        kernel_name=kernel_name, transport="ipc", ip=str(scratch / "kernel")
    )
    kernel = Kernel(manager=manager, client=None, scratch=scratch)
    try:
        env = {**os.environ, TASK_FILE_ENV: str(kernel.task_file)}
        await manager.start_kernel(env=env, cwd=str(cwd or scratch))
        kernel.client = manager.client()
        kernel.client.start_channels()
        await kernel.client.wait_for_ready(timeout=60)
        kernel.client.allow_stdin = False
        if warm_up:
            await run_silently(kernel, warm_up)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stop_kernel(kernel)
        raise
    return kernel


async def run_silently(kernel: Kernel, code: str) -> None:
    """Run our own setup code in the kernel: not in its history, binding no user names."""
    reply = await kernel.client.execute_interactive(
        code, silent=True, store_history=False, timeout=60, output_hook=lambda msg: None
    )
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel setup failed: {reply['content'].get('evalue')}")


async def stop_kernel(kernel: Kernel) -> None:
    """Stop the kernel process for good and remove its scratch folder."""
    try:
        if kernel.client is not None:
            kernel.client.stop_channels()
        if kernel.manager.has_kernel:
            await _kill_now(kernel.manager)
            await kernel.manager.shutdown_kernel(now=True)  # finds it gone: just cleans up
    finally:
        shutil.rmtree(kernel.scratch, ignore_errors=True)


async def _kill_now(manager: AsyncKernelManager) -> None:
    """Kill the kernel process and wait for it closely (jupyter_client polls every 0.1 s)."""
    provisioner = manager.provisioner
    if provisioner is None:
        return
    await provisioner.kill()
    with anyio.move_on_after(5):
        while await provisioner.poll() is None:
            await anyio.sleep(0.005)


class KernelPool:
    """Keeps `size` kernels started ahead; `take()` hands each out once."""

    def __init__(self, size: int, kernel_name: str) -> None:
        if size < 1:
            raise ValueError(f"kernel_pool(size=...) must be at least 1, got {size}")
        self.size = size
        self.kernel_name = kernel_name
        self._send: MemoryObjectSendStream[Kernel]
        self._receive: MemoryObjectReceiveStream[Kernel]
        self._send, self._receive = anyio.create_memory_object_stream[Kernel](0)

    #: Kernels started and waiting to be taken.
    ready = 0

    async def take(self) -> Kernel:
        return await self._receive.receive()

    async def filled(self, poll: float = 0.05) -> None:
        """Wait until all `size` kernels are up (e.g. before a batch that should not wait)."""
        while self.ready < self.size:
            await anyio.sleep(poll)

    async def keep_one_ready(self) -> None:
        """Start a kernel, wait until a task takes it, start the next; forever."""
        while True:
            # Import cowaitlib ahead too: without binding a name, so the notebook sees nothing.
            kernel = await start_kernel(self.kernel_name, warm_up="__import__('cowaitlib')")
            self.ready += 1
            try:
                await self._send.send(kernel)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await stop_kernel(kernel)
                raise
            finally:
                self.ready -= 1


_current_pool: contextvars.ContextVar[KernelPool | None] = contextvars.ContextVar(
    "cowaitlib_kernel_pool", default=None
)


@contextlib.asynccontextmanager
async def kernel_pool(size: int = 2, kernel_name: str | None = None) -> AsyncIterator[KernelPool]:
    """Within the block, notebook tasks started here get kernels that are already running.

        async with cw.kernel_pool(4):
            results = await cw.join([cw.NotebookRunner("volume.ipynb", date=d) for d in days])

    Each kernel still serves one task only. Kernels not taken are shut down at the end.
    """
    from .config import current_settings

    pool = KernelPool(size, kernel_name or current_settings().kernel_name)
    group: TaskGroup
    with pool._send, pool._receive:
        async with anyio.create_task_group() as group:
            for _ in range(size):
                group.start_soon(pool.keep_one_ready)
            token = _current_pool.set(pool)
            try:
                yield pool
            finally:
                _current_pool.reset(token)
                group.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def kernel_for(kernel_name: str, cwd: Path) -> AsyncIterator[Kernel]:
    """A kernel for one task, working in `cwd`: from the pool in force if any, else new."""
    pool = _current_pool.get()
    if pool is not None and pool.kernel_name == kernel_name:
        kernel = await pool.take()
        try:
            await run_silently(kernel, f"__import__('os').chdir({str(cwd)!r})")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stop_kernel(kernel)
            raise
    else:
        kernel = await start_kernel(kernel_name, cwd)
    try:
        yield kernel
    finally:
        with anyio.CancelScope(shield=True):
            await stop_kernel(kernel)
