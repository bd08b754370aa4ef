"""A progress line for `join`: one updating line in a terminal, one updating cell output in a
notebook, nothing in CI unless asked for."""

from __future__ import annotations

import os
import sys
from typing import Any

from . import config


class Progress:
    """Counts finished tasks out of a total and shows the count somewhere, or nowhere."""

    def __init__(self, total: int, show: Any = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self._show = show

    @classmethod
    def for_join(cls, total: int, enabled: bool | None) -> Progress:
        if enabled is None:
            enabled = config.current_settings().progress
        if enabled is None:
            enabled = _interactive()
        if not enabled or total == 0:
            return cls(total)
        progress = cls(total)
        progress._show = _notebook_display(progress.text()) or _terminal_line
        return progress

    def advance(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if self._show is not None:
            self._show(self.text(), final=False)

    def text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"cowaitlib: {self.done}/{self.total} tasks done{failed}"

    def close(self) -> None:
        if self._show is not None:
            self._show(self.text(), final=True)


def _interactive() -> bool:
    if os.environ.get("CI"):
        return False
    if _ipython_kernel() is not None:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _ipython_kernel() -> Any:
    if "ipykernel" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def _terminal_line(text: str, final: bool) -> None:
    sys.stderr.write("\r" + text + ("\n" if final else ""))
    sys.stderr.flush()


def _notebook_display(initial: str) -> Any:
    if _ipython_kernel() is None:
        return None
    from IPython.display import display

    handle = display({"text/plain": initial}, raw=True, display_id=True)

    def show(text: str, final: bool) -> None:
        handle.update({"text/plain": text}, raw=True)

    return show
