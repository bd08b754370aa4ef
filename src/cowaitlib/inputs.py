"""Checking and coercing a task's inputs with pydantic, before anything starts.

Functions are checked against their signature's annotations; notebook inputs against the type of
their `cowaitlib.input(name, default)` default. Either way "7" becomes 7 for an int, "true"
becomes True for a bool, and anything that does not fit is an `InputError` naming the task, the
input and what was expected.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, create_model

from .errors import InputError

_LAX = ConfigDict(arbitrary_types_allowed=True, coerce_numbers_to_str=True)


def check_function_inputs(
    task_name: str, fn: Callable[..., Any], inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate keyword inputs against `fn`'s signature; return them coerced."""
    parameters = inspect.signature(fn).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    named = {
        n: p for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    unknown = [name for name in inputs if name not in named]
    if unknown and not accepts_any:
        raise InputError(
            f"task {task_name!r} got unknown input {unknown[0]!r}; "
            f"it takes: {', '.join(named) or 'no inputs'}"
        )
    missing = [n for n, p in named.items() if p.default is p.empty and n not in inputs]
    if missing:
        raise InputError(f"task {task_name!r} is missing required input {missing[0]!r}")
    model = _signature_model(fn)
    try:
        validated = model.model_validate({k: v for k, v in inputs.items() if k in named})
    except ValidationError as exc:
        raise _input_error(task_name, exc) from None
    coerced = {name: getattr(validated, name) for name in inputs if name in named}
    coerced.update({k: v for k, v in inputs.items() if k not in named})
    return coerced


@cache
def _signature_model(fn: Callable[..., Any]) -> Any:
    hints = _resolved_hints(fn)
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        annotation = hints.get(name, Any if p.annotation is p.empty else p.annotation)
        fields[name] = (annotation, ... if p.default is p.empty else p.default)
    return create_model(f"{fn.__name__}_inputs", __config__=_LAX, **fields)


def _resolved_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Annotations with string forward references (from __future__ annotations) resolved."""
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:  # an annotation that cannot be evaluated: fall back to the raw ones
        return {}
    hints.pop("return", None)
    return hints


def coerce_to_default(task_name: str, name: str, value: Any, default: Any) -> Any:
    """Coerce a notebook input to the type of its default (None accepts anything)."""
    if default is None:
        return value
    try:
        kind: Any = type(default)
        return _adapter(kind).validate_python(value)
    except ValidationError as exc:
        raise _input_error(task_name, exc, name=name) from None


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind, config=_LAX)


def _input_error(task_name: str, exc: ValidationError, name: str | None = None) -> InputError:
    problems = []
    for error in exc.errors():
        where = name or str(error["loc"][0])
        problems.append(f"input {where!r}: {error['msg']} (got {error.get('input')!r})")
    return InputError(f"task {task_name!r}: " + "; ".join(problems))
