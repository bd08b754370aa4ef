"""cowaitlib: run Python notebooks and functions as parametrized, composable, testable tasks.

    import cowaitlib as cw

    @cw.task
    def volume(date: str) -> int: ...

    total = await cw.join([volume(date=d) for d in days])
    vol = await cw.NotebookRunner("volume.ipynb", date="20210101")

Inside a task (or a notebook opened in Jupyter), `cw.input(name, default)` reads an input and
`cw.exit(value)` ends the task with a value.
"""

from typing import TYPE_CHECKING

from . import context as _context
from .config import Settings, configure, current_settings, override
from .context import exit, input
from .errors import (
    CellTimeoutError,
    ConfigError,
    CowaitError,
    ExecutorUnavailable,
    ImageError,
    InputError,
    KernelDiedError,
    SerializationError,
    TaskError,
    TaskExit,
    TaskTimeoutError,
)
from .notebook import NotebookRunner, NotebookTask, notebook
from .task import FunctionTask, Task, TaskHandle, join, run, task

__version__ = "0.1.0"

__all__ = [
    "CellTimeoutError",
    "ConfigError",
    "CowaitError",
    "ExecutorUnavailable",
    "FunctionTask",
    "ImageError",
    "InputError",
    "KernelDiedError",
    "NotebookRunner",
    "NotebookTask",
    "SerializationError",
    "Settings",
    "Task",
    "TaskError",
    "TaskExit",
    "TaskHandle",
    "TaskTimeoutError",
    "__version__",
    "build_image",
    "configure",
    "current_settings",
    "exit",
    "input",
    "join",
    "kernel_pool",
    "kubernetes_rbac",
    "notebook",
    "override",
    "push_image",
    "run",
    "task",
]

#: Imported on first use: a notebook's `import cowaitlib` should not pay for image building,
#: kernels or the Kubernetes executor (every task in a container or kernel imports cowaitlib).
_LAZY = {
    "kernel_pool": ".kernel",
    "build_image": ".images",
    "push_image": ".images",
    "kubernetes_rbac": ".executors.kubernetes",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cowaitlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from .executors.kubernetes import kubernetes_rbac
    from .images import build_image, push_image
    from .kernel import kernel_pool

_context.install_ipython_exit_handler()
