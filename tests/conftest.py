"""Shared fixtures: each test gets fresh settings and its own output folder, and no test may
leave a kernel process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


KUBECONFIG = os.environ.get("COWAITLIB_TEST_KUBECONFIG", "/var/lib/cowaitlib-kube/admin.kubeconfig")
KUBE_NAMESPACE = "cowaitlib-test"
KUBE_LABEL = "cowaitlib.io/task-id"


@pytest.fixture(scope="session")
def kube(docker_client: Any) -> Iterator[Any]:
    """Clients of a real Kubernetes API server (with a real kubelet), and a namespace for the
    tests; after the session no Job or pod of a task may be left there."""
    try:
        import kubernetes

        api = kubernetes.config.new_client_from_config(config_file=KUBECONFIG)
        core = kubernetes.client.CoreV1Api(api)
        core.list_node(_request_timeout=10)
    except Exception as exc:
        missing_infrastructure(f"a Kubernetes cluster ({type(exc).__name__}: {exc})")
    batch = kubernetes.client.BatchV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": KUBE_NAMESPACE}})
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:  # 409: it is there already
            raise
    yield type("Kube", (), {"core": core, "batch": batch, "rbac": rbac, "api": api})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # deleted Jobs' pods go away shortly after
        jobs = batch.list_namespaced_job(KUBE_NAMESPACE, label_selector=KUBE_LABEL).items
        pods = core.list_namespaced_pod(KUBE_NAMESPACE, label_selector=KUBE_LABEL).items
        if not jobs and not pods:
            break
        time.sleep(2)
    assert not jobs and not pods, (
        f"left behind: {[j.metadata.name for j in jobs]} {[p.metadata.name for p in pods]}"
    )


REGISTRY = "127.0.0.1:5000"


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The base image task images are built from (infra/base-image.sh builds it offline)."""
    try:
        docker_client.images.get(TEST_BASE_IMAGE)
    except Exception:
        missing_infrastructure(f"the base image {TEST_BASE_IMAGE}")
    return TEST_BASE_IMAGE


@pytest.fixture(scope="session")
def registry() -> str:
    """A real registry the Docker engine and the cluster's node can push to and pull from."""
    import urllib.request

    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5)
    except OSError:
        missing_infrastructure(f"a registry at {REGISTRY}")
    return REGISTRY


@pytest.fixture
def registry_requiring_login(tmp_path: Path) -> Iterator[str]:
    """A second real registry (the same docker-registry as infra/ installs) that wants a login
    nobody here has: what pushing to a private registry without `docker login` meets."""
    import shutil
    import socket
    import urllib.error
    import urllib.request

    binary = shutil.which("docker-registry")
    if binary is None:
        missing_infrastructure("docker-registry (infra/registry-up.sh installs it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    (tmp_path / "htpasswd").write_text("someone:$2y$05$" + "x" * 53 + "\n")  # never matches
    (tmp_path / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nhttp: {{addr: '{address}'}}\n"
        f"storage: {{filesystem: {{rootdirectory: '{tmp_path / 'data'}'}}}}\n"
        f"auth: {{htpasswd: {{realm: cowaitlib-test, path: '{tmp_path / 'htpasswd'}'}}}}\n"
    )
    server = subprocess.Popen(
        [str(binary), "serve", str(tmp_path / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401, exc
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no registry"
                time.sleep(0.1)
        yield address
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def task_image(docker_client: Any, base_image: str) -> str:
    """The project's task image, built once per session (cached layers make rebuilds quick)."""
    lines: list[str] = []
    cw.build_image(
        image=TEST_IMAGE,
        base_image=base_image,
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


def interrupt_script_mid_task(
    settings: dict[str, Any], running: Callable[[str], bool], tmp_path: Path
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Ctrl-C, for real: a script runs a long task with `settings`; once `running(task_id)`
    holds, the script gets SIGINT. Returns the task id and how the script ended."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import cowaitlib as cw\n"
        "from tests import tasks_for_tests as t\n"
        f"cw.configure(**json.loads({json.dumps(settings)!r}))\n"
        "handle = t.sleeper(key='interrupted', seconds=120)\n"
        "print(handle.id, flush=True)\n"
        "cw.run(handle)\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        task_id = process.stdout.readline().strip()
        deadline = time.monotonic() + 90
        while not running(task_id):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"task {task_id} never got running"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return task_id, subprocess.CompletedProcess(process.args, process.returncode, out, err)
