"""A notebook task, run cell by cell on a real Jupyter kernel through nbclient.

The notebook's inputs never enter its code: the kernel process has an environment variable
naming a JSON file, written here, that holds the task spec; `cowaitlib.input()` inside the kernel
reads it. `cowaitlib.exit(value)` writes the result envelope to a file beside it and stops the
run. Kernels come from `kernel` (new, or warm from a pool).

Whatever happens (a failing cell, a dead kernel, a timeout, cancellation) the kernel is shut
down and the executed notebook, outputs included, is saved; its path is on the envelope.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .config import Settings
from .kernel import kernel_for
from .logs import TaskOutput, strip_ansi
from .spec import ResultEnvelope, TaskSpec
from .worker import failure


async def run_notebook(spec: TaskSpec, output: TaskOutput | None) -> ResultEnvelope:
    """Execute the notebook `spec.target` as the task `spec`."""
    settings = Settings.model_validate(spec.settings)
    path = Path(spec.target)
    saved = Path(settings.output_dir) / f"{spec.id}.ipynb"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return failure(spec, exc)

    index = -1
    envelope: ResultEnvelope | None = None
    try:
        async with kernel_for(settings.kernel_name, path.parent) as kernel:
            kernel.task_file.write_text(
                json.dumps(
                    {"spec": spec.model_dump(mode="json"), "result_file": str(kernel.result_file)}
                )
            )
            client = StreamingClient(
                nb, km=kernel.manager, output=output, timeout=settings.cell_timeout
            )
            client.kc = kernel.client
            try:
                for index, cell in enumerate(nb.cells):
                    await _execute_cell(client, cell, index)
            except CellExecutionError as exc:
                reply = client.last_error_reply or {}
                if not (reply.get("ename") == "TaskExit" and kernel.result_file.exists()):
                    envelope = _cell_failure(
                        spec,
                        exc,
                        nb,
                        index,
                        type=reply.get("ename", type(exc).__name__),
                        message=reply.get("evalue", ""),
                        traceback=strip_ansi("\n".join(reply.get("traceback") or [])) or str(exc),
                    )
            except DeadKernelError as exc:
                envelope = _cell_failure(
                    spec,
                    exc,
                    nb,
                    index,
                    kind="kernel_died",
                    traceback="",
                    message=f"the kernel died while running cell #{index + 1} (the cell may "
                    "have called os._exit(), or the kernel ran out of memory)",
                )
            except CellTimeoutError as exc:
                envelope = _cell_failure(
                    spec,
                    exc,
                    nb,
                    index,
                    kind="cell_timeout",
                    traceback="",
                    message=f"cell #{index + 1} ran longer than the cell timeout "
                    f"({settings.cell_timeout:g} s) and was stopped",
                )
            if envelope is None:
                envelope = _read_result(spec, kernel.result_file)
    except Exception as exc:  # the kernel would not start, or its setup failed
        envelope = failure(spec, exc)
    finally:
        saved.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, saved)
    return envelope.model_copy(update={"output_notebook": str(saved)})


async def _execute_cell(client: NotebookClient, cell: Any, index: int) -> None:
    """One cell, shielded from cancellation: nbclient would report a cancellation as a dead
    kernel, so a cancellation (timeout, failed sibling, Ctrl-C) stops waiting here instead and
    is passed on unchanged; the kernel is then shut down by the caller."""
    execution = asyncio.ensure_future(
        client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
    )
    try:
        await asyncio.shield(execution)
    except asyncio.CancelledError:
        execution.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([execution])
        if not execution.cancelled():
            execution.exception()  # retrieved: it is the cancellation's echo, not news
        raise


def _cell_failure(
    spec: TaskSpec, exc: Exception, nb: Any, index: int, **fields: Any
) -> ResultEnvelope:
    """A failure at cell `index`: the envelope names the cell and quotes its source."""
    return failure(spec, exc, cell_index=index, cell_source=nb.cells[index].source, **fields)


def _read_result(spec: TaskSpec, result_file: Path) -> ResultEnvelope:
    if not result_file.exists():  # the notebook ran to the end without cowaitlib.exit()
        return ResultEnvelope(task_id=spec.id, status="ok", result=None)
    return ResultEnvelope.model_validate_json(result_file.read_text())


class StreamingClient(NotebookClient):
    """nbclient, plus: stream output reaches the caller live, and the last error reply is kept
    whole (nbclient folds it into one message string)."""

    def __init__(self, nb: Any, *, output: TaskOutput | None, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.stream_to = output
        self.last_error_reply: dict[str, Any] | None = None
        self.on_cell_error = self._remember_error

    def _remember_error(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        self.last_error_reply = execute_reply["content"]

    def output(self, outs: Any, msg: Any, display_id: Any, cell_index: int) -> Any:
        if msg["msg_type"] == "stream" and self.stream_to is not None:
            self.stream_to.write(msg["content"]["name"], msg["content"]["text"])
        return super().output(outs, msg, display_id, cell_index)
