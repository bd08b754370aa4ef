"""Notebooks as tasks, seen from the caller: which inputs a notebook reads, and its handle.

A notebook's inputs are found by reading it, not running it: every `cowaitlib.input("name",
default)` call in its code cells (magics and `!` lines are understood) names an input, and a
literal default gives its type. So an unknown input, a missing required one, or a value of the
wrong type fails before any kernel starts. If some call's name is not a literal string, the
notebook's inputs cannot all be known, and unknown names are let through.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InputError
from .inputs import coerce_to_default
from .spec import TaskKind
from .task import Task, TaskHandle

_NO_DEFAULT: Any = object()
_UNKNOWN_DEFAULT: Any = object()


@dataclass(frozen=True)
class NotebookInput:
    """One `cowaitlib.input(...)` call found in a notebook."""

    name: str
    default: Any  # _NO_DEFAULT: required; _UNKNOWN_DEFAULT: not a literal
    cell_index: int


@dataclass(frozen=True)
class NotebookInputs:
    """What reading a notebook tells about its inputs."""

    inputs: dict[str, NotebookInput]
    complete: bool  # False when some input's name is not a literal string


class NotebookTask(Task[Any]):
    """A notebook file that runs as a task."""

    kind: TaskKind = "notebook"

    def __init__(self, path: str | Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        resolved = Path(path).expanduser().resolve()
        if not resolved.is_file():
            raise InputError(
                f"notebook {str(path)!r} not found (looked at {resolved}); paths are relative "
                "to the working directory"
            )
        self.path = resolved
        self.name = resolved.stem
        self.target = str(resolved)

    def check_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        found = read_notebook_inputs(self.path)
        if found.complete:
            unknown = [name for name in inputs if name not in found.inputs]
            if unknown:
                reads = ", ".join(sorted(found.inputs)) or "none"
                raise InputError(
                    f"notebook {self.name!r} does not read input {unknown[0]!r}; it reads: "
                    f"{reads} (found by reading its cowaitlib.input(...) calls)"
                )
        coerced = dict(inputs)
        for name, spec in found.inputs.items():
            if name in inputs:
                if spec.default not in (_NO_DEFAULT, _UNKNOWN_DEFAULT):
                    coerced[name] = coerce_to_default(self.name, name, inputs[name], spec.default)
            elif spec.default is _NO_DEFAULT:
                raise InputError(
                    f"notebook {self.name!r} is missing required input {name!r} (its "
                    f"cowaitlib.input({name!r}) in cell #{spec.cell_index + 1} has no default)"
                )
        return coerced

    def _handle_class(self) -> type[TaskHandle[Any]]:
        return NotebookRunner

    def __repr__(self) -> str:
        return f"<cowaitlib notebook {self.target}>"


def notebook(path: str | Path, **options: Any) -> NotebookTask:
    """The notebook at `path` as a task; call it with inputs to run it."""
    return NotebookTask(path, options)


class NotebookRunner(TaskHandle[Any]):
    """`await NotebookRunner("volume.ipynb", date="20210101")` runs a notebook as a task and
    gives its `cowaitlib.exit()` value (None if it never calls exit)."""

    def __init__(self, path: str | Path | None = None, /, **inputs: Any) -> None:
        if path is None:
            if "path" not in inputs:
                raise InputError("NotebookRunner needs the notebook's path: NotebookRunner(path)")
            path = inputs.pop("path")
        task = NotebookTask(path)
        self._setup(task, task.check_inputs(inputs))


def read_notebook_inputs(path: Path) -> NotebookInputs:
    """The `cowaitlib.input` calls in the notebook at `path`."""
    return _read_inputs_cached(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _read_inputs_cached(path: Path, mtime_ns: int) -> NotebookInputs:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    sources = [(i, cell.source) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    trees = [(i, _parse(source)) for i, source in sources]
    module_names, input_names = _cowaitlib_aliases([t for _, t in trees if t is not None])
    found: dict[str, NotebookInput] = {}
    complete = all(t is not None for _, t in trees)
    for index, tree in trees:
        if tree is None:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _is_input_call(node, module_names, input_names)):
                continue
            name = node.args[0] if node.args else _keyword(node, "name")
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                complete = False
                continue
            default_node = node.args[1] if len(node.args) > 1 else _keyword(node, "default")
            found.setdefault(name.value, NotebookInput(name.value, _literal(default_node), index))
    return NotebookInputs(found, complete)


def _parse(source: str) -> ast.Module | None:
    """A cell's code as Python, with IPython syntax (magics, !commands) turned into calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _cowaitlib_aliases(trees: list[ast.Module]) -> tuple[set[str], set[str]]:
    """Names bound to the cowaitlib module, and to its `input` function, by imports."""
    modules, functions = {"cowaitlib", "cw"}, set[str]()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.asname or a.name for a in node.names if a.name == "cowaitlib")
            elif isinstance(node, ast.ImportFrom) and node.module == "cowaitlib":
                functions.update(a.asname or a.name for a in node.names if a.name == "input")
    return modules, functions


def _is_input_call(node: ast.Call, modules: set[str], functions: set[str]) -> bool:
    func = node.func
    if isinstance(func, ast.Attribute):
        return (
            func.attr == "input" and isinstance(func.value, ast.Name) and func.value.id in modules
        )
    return isinstance(func, ast.Name) and func.id in functions


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return _NO_DEFAULT
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _UNKNOWN_DEFAULT
