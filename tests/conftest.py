"""Shared fixtures: each test gets fresh settings and its own output folder, and no test may
leave a kernel process behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import cowaitlib as cw
from cowaitlib import config

NOTEBOOKS = Path(__file__).parent / "notebooks"


def child_kernels() -> list[int]:
    """Pids of ipykernel processes started by this test process (directly or below it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"ipykernel" in cmdline and _descends_from(ppid, os.getpid()):
            found.append(int(entry.name))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No settings leak between tests; executed notebooks go to the test's own folder."""
    for name in list(os.environ):
        if name.startswith("COWAITLIB_"):
            monkeypatch.delenv(name)
    config.reset()
    output_dir = tmp_path / "executed"
    cw.configure(output_dir=str(output_dir))
    yield output_dir
    config.reset()


@pytest.fixture(autouse=True)
def no_leaked_kernels() -> Iterator[None]:
    yield
    assert child_kernels() == [], "a kernel process outlived its task"
