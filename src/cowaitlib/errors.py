"""Every error cowaitlib raises, under one root so callers can catch them all.

    CowaitError
    ├── ConfigError            a setting is invalid (names the file/variable and the key)
    ├── InputError             a task's inputs are wrong; raised before the task starts
    ├── SerializationError     a value cannot cross a task boundary (names its type)
    ├── ExecutorUnavailable    an executor cannot be used here (missing extra, daemon down)
    ├── ImageError             building or pushing the task image failed
    └── TaskError              a task started and failed; carries the remote error
        ├── TaskTimeoutError       the task ran past its overall timeout
        ├── CellTimeoutError       a notebook cell ran past the per-cell timeout
        └── KernelDiedError        the notebook's kernel process died

`TaskExit` is not an error: it is how `cowaitlib.exit()` unwinds a task early, and it derives
from `BaseException` so that a user's `except Exception:` cannot swallow it.
"""

from __future__ import annotations

from typing import Any


class CowaitError(Exception):
    """Root of every cowaitlib error."""


class ConfigError(CowaitError):
    """A configuration value is invalid."""


class InputError(CowaitError, TypeError):
    """A task was given inputs it cannot accept. Raised before the task starts."""


class SerializationError(CowaitError, TypeError):
    """A value cannot be turned into a payload (or a payload back into a value)."""


class ExecutorUnavailable(CowaitError):
    """The chosen executor cannot run here; the message says how to fix that."""


class ImageError(CowaitError):
    """Building or pushing the task image failed; the message names the step or registry."""


class TaskError(CowaitError):
    """A task failed. Carries what the task's own process knew about the failure.

    Attributes mirror the result envelope's error record, so the same fields are there whether
    the task ran in-process, in a container or in a pod.
    """

    def __init__(
        self,
        *,
        task_id: str,
        task_name: str,
        error_type: str,
        message: str,
        traceback: str = "",
        cell_index: int | None = None,
        cell_source: str | None = None,
        notebook: str | None = None,
        output_notebook: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.task_name = task_name
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        self.cell_index = cell_index
        self.cell_source = cell_source
        self.notebook = notebook
        self.output_notebook = output_notebook
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [
            f"task {self.task_name!r} ({self.task_id}) failed: {self.error_type}: {self.message}"
        ]
        if self.notebook is not None:
            lines.append(f"  notebook: {self.notebook}")
        if self.cell_index is not None:
            lines.append(f"  cell: #{self.cell_index + 1} (index {self.cell_index})")
            if self.cell_source:
                excerpt = self.cell_source.splitlines()[:5]
                lines.extend(f"    | {line}" for line in excerpt)
                if len(self.cell_source.splitlines()) > 5:
                    lines.append("    | ...")
        if self.output_notebook is not None:
            lines.append(f"  executed notebook saved at: {self.output_notebook}")
        if self.traceback:
            lines.append("  remote traceback:")
            lines.extend(f"    {line}" for line in self.traceback.rstrip().splitlines())
        return "\n".join(lines)


class TaskTimeoutError(TaskError, TimeoutError):
    """The task ran past its overall timeout and was stopped."""


class CellTimeoutError(TaskError, TimeoutError):
    """A notebook cell ran past the per-cell timeout."""


class KernelDiedError(TaskError):
    """The notebook's kernel process died while running a cell."""


class TaskExit(BaseException):
    """Raised by `cowaitlib.exit()` to end the current task early with a value."""

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)
        self.value = value
