"""The two documents that cross a process boundary: the task spec and the result envelope.

Both are plain, versioned JSON (pydantic models). A caller turns a task call into a `TaskSpec`;
an executor ships it to a worker (a thread, a kernel, a container, a pod); the worker answers
with a `ResultEnvelope`. Inputs and results inside them are payloads made by
`cowaitlib.serialization`, never pickles.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import (
    CellTimeoutError,
    KernelDiedError,
    TaskError,
    TaskTimeoutError,
)

TaskKind = Literal["function", "notebook"]


def new_task_id(name: str) -> str:
    """A readable, unique id: the task's name plus a short random suffix."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Document):
    """What to run, with which inputs, where it sits in the task tree, and under which settings."""

    version: Literal[1] = 1
    id: str
    name: str
    kind: TaskKind
    target: str = Field(description="'module:qualname' for functions, a path for notebooks")
    inputs: dict[str, Any] = Field(default_factory=dict, description="name -> payload")
    parent_id: str | None = None
    run_id: str
    settings: dict[str, Any] = Field(
        default_factory=dict, description="the effective settings, inherited by child tasks"
    )


class ErrorInfo(_Document):
    """What went wrong inside a task, as text: safe to read back from anywhere."""

    kind: Literal["error", "timeout", "cell_timeout", "kernel_died"] = "error"
    type: str
    message: str
    traceback: str = ""
    cell_index: int | None = None
    cell_source: str | None = None


class ResultEnvelope(_Document):
    """A worker's answer: a result payload, or an error record."""

    version: Literal[1] = 1
    task_id: str
    status: Literal["ok", "error"]
    result: Any = None
    error: ErrorInfo | None = None
    output_notebook: str | None = None

    def raise_for_error(self, spec: TaskSpec) -> None:
        """Raise the `TaskError` this envelope describes, if any."""
        if self.error is None:
            return
        error_class: type[TaskError] = {
            "timeout": TaskTimeoutError,
            "cell_timeout": CellTimeoutError,
            "kernel_died": KernelDiedError,
        }.get(self.error.kind, TaskError)
        raise error_class(
            task_id=spec.id,
            task_name=spec.name,
            error_type=self.error.type,
            message=self.error.message,
            traceback=self.error.traceback,
            cell_index=self.error.cell_index,
            cell_source=self.error.cell_source,
            notebook=spec.target if spec.kind == "notebook" else None,
            output_notebook=self.output_notebook,
        )
