"""A task's output reaching the caller, one line at a time, prefixed with the task's id.

Executors hand each chunk of a task's stdout/stderr to its `TaskOutput`, which cuts it into lines
and writes them to the caller's own stdout/stderr as `[task-id] line`. In-process tasks print to
the same `sys.stdout` as the caller, so `capture()` swaps in a stream that routes each write to
the `TaskOutput` of the task whose code made it (found through a context variable, so threads
and concurrent tasks each reach their own).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import re
import sys
import threading
from collections.abc import Iterator
from typing import Literal, TextIO

StreamName = Literal["stdout", "stderr"]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (notebook tracebacks, build output)."""
    return _ANSI.sub("", text)


class TaskOutput:
    """Line-buffered, prefixed output of one task (no prefix: passed through as it is, as a
    task's own container does; its executor adds the prefix on the caller's side)."""

    def __init__(self, prefix: str | None, enabled: bool = True) -> None:
        self.prefix = prefix
        self.enabled = enabled
        self._partial: dict[StreamName, str] = {"stdout": "", "stderr": ""}
        self._lock = threading.Lock()

    def write(self, stream: StreamName, text: str) -> None:
        if not self.enabled or not text:
            return
        with self._lock:
            text = self._partial[stream] + text
            *lines, self._partial[stream] = text.split("\n")
        for line in lines:
            self._emit(stream, line)

    def close(self) -> None:
        """Write out any unterminated last line."""
        for stream in ("stdout", "stderr"):
            with self._lock:
                rest, self._partial[stream] = self._partial[stream], ""
            if rest:
                self._emit(stream, rest)

    def _emit(self, stream: StreamName, line: str) -> None:
        target = _real_stream(stream)
        line = line.rstrip("\r")
        target.write(f"[{self.prefix}] {line}\n" if self.prefix is not None else line + "\n")
        target.flush()


_route: contextvars.ContextVar[TaskOutput | None] = contextvars.ContextVar(
    "cowaitlib_task_output", default=None
)


class _RoutingStream(io.TextIOBase):
    """Stands in for sys.stdout/stderr: writes from inside a task go to that task's output."""

    def __init__(self, name: StreamName, underlying: TextIO) -> None:
        self.name_ = name
        self.underlying = underlying

    def write(self, text: str) -> int:
        output = _route.get()
        if output is None:
            return self.underlying.write(text)
        output.write(self.name_, text)
        return len(text)

    def flush(self) -> None:
        self.underlying.flush()

    def isatty(self) -> bool:
        return self.underlying.isatty()

    def fileno(self) -> int:
        return self.underlying.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.underlying, "encoding", "utf-8")


_install_lock = threading.Lock()
_install_count = 0


def _real_stream(stream: StreamName) -> TextIO:
    current = getattr(sys, stream)
    real: TextIO = current.underlying if isinstance(current, _RoutingStream) else current
    return real


@contextlib.contextmanager
def capture(output: TaskOutput) -> Iterator[None]:
    """Route what code in this block prints (this context only) to `output`."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            for name in ("stdout", "stderr"):
                if not isinstance(getattr(sys, name), _RoutingStream):
                    setattr(sys, name, _RoutingStream(name, getattr(sys, name)))
        _install_count += 1
    token = _route.set(output)
    try:
        yield
    finally:
        _route.reset(token)
        output.close()
        with _install_lock:
            _install_count -= 1
            if _install_count == 0:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _RoutingStream):
                        setattr(sys, name, stream.underlying)
