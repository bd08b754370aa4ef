"""Shared fixtures: each test gets fresh settings and its own output folder, and no test may
leave a kernel process behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cowaitlib as cw
from cowaitlib import config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = Path(__file__).parent / "notebooks"
#: The base image task images are built from in tests (CI builds it offline, see infra/).
TEST_BASE_IMAGE = os.environ.get("COWAITLIB_TEST_BASE_IMAGE", "cowaitlib/python-base:3.11")
TEST_IMAGE = "cowaitlib-test:latest"
TASK_LABEL = "cowaitlib.task-id"


def missing_infrastructure(what: str) -> None:
    """Skip here; fail in CI, where every suite must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available here (bash infra/up.sh starts it)")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client of a real Docker engine; after the session no task container may be left."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # no SDK, no engine
        missing_infrastructure(f"a Docker engine ({exc})")
    yield client
    left = client.containers.list(all=True, filters={"label": TASK_LABEL})
    assert left == [], f"task containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="session")
def task_image(docker_client: Any) -> str:
    """The project's task image, built once per session (cached layers make rebuilds quick)."""
    try:
        docker_client.images.get(TEST_BASE_IMAGE)
    except Exception:
        missing_infrastructure(f"the base image {TEST_BASE_IMAGE}")
    lines: list[str] = []
    cw.build_image(
        image=TEST_IMAGE,
        base_image=TEST_BASE_IMAGE,
        project_dir=ROOT,
        requirements=["matplotlib"],
        output=lines.append,
    )
    return TEST_IMAGE


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
