"""The Docker executor against a real Docker engine and a real registry (see infra/)."""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import nbformat
import pandas as pd
import pytest

import cowaitlib as cw
from cowaitlib.executors import docker as docker_executor
from tests import tasks_for_tests as t
from tests.conftest import NOTEBOOKS, REGISTRY, ROOT, TASK_LABEL, interrupt_script_mid_task

pytestmark = [pytest.mark.anyio, pytest.mark.docker]
EXAMPLE = ROOT / "examples" / "volume"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def in_docker(task_image: str) -> str:
    cw.configure(
        executor="docker", docker={"image": task_image, "project_dir": str(ROOT), "pull": "never"}
    )
    return task_image


def task_containers(docker_client: Any, task_id: str) -> list[Any]:
    return docker_client.containers.list(all=True, filters={"label": f"{TASK_LABEL}={task_id}"})


# --- running tasks ------------------------------------------------------------------------


async def test_function_task_runs_in_a_container(in_docker: str) -> None:
    assert await t.add(a=2, b=40) == 42
    frame = await t.returns_frame(rows=4)
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"n": range(4), "half": [0, 0.5, 1, 1.5]}))


async def test_notebook_task_runs_in_a_container(
    in_docker: str, fresh_settings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = cw.NotebookRunner(NOTEBOOKS / "add.ipynb", a="5")
    assert await runner == 7
    assert f"[{runner.id}] adding 5 and 2" in capsys.readouterr().out  # cell output, live
    saved = fresh_settings / f"{runner.id}.ipynb"
    assert runner.output_notebook == str(saved)
    executed = nbformat.read(saved, as_version=4)
    assert "adding 5 and 2" in str(executed.cells[2].outputs)
    result = await cw.NotebookRunner(NOTEBOOKS / "ipython_features.ipynb")
    assert result["cwd"] == "/project/tests/notebooks" and result["shell"] == "from-the-shell"


async def test_output_streams_to_the_caller_prefixed(
    in_docker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = t.prints(lines=3)
    assert await handle == 3
    out = capsys.readouterr().out.splitlines()
    assert [f"[{handle.id}] line {i}" for i in range(3)] == [o for o in out if "line" in o]


async def test_result_comes_back_whether_or_not_it_fits_the_log(
    in_docker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Small envelopes come back as the log's last line, which the user never sees; a large one
    # only in the result file copied out after exit. Either way the task's own output is intact.
    handle = t.ends_without_newline(text="half a line")
    assert await handle == "half a line"
    forger = t.forges_an_envelope(value=7)
    assert await forger == 7  # a look-alike line is output, not the envelope
    frame = await t.returns_frame(rows=5000)  # an envelope far over the log line's limit
    assert len(frame) == 5000 and frame["half"].iloc[-1] == 2499.5
    out = capsys.readouterr().out
    assert f"[{handle.id}] half a line\n" in out
    envelope_lines = [line for line in out.splitlines() if "<<cowaitlib-envelope>>" in line]
    assert len(envelope_lines) == 1 and envelope_lines[0].startswith(f"[{forger.id}] ")
    assert "someone-else" in envelope_lines[0]


async def test_a_log_line_longer_than_the_engine_splits_comes_back_whole(
    in_docker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine cuts log lines into 16 KiB pieces; a 43 KB envelope must be joined again, and
    # taken from the log: the copy out of the container is not needed (and here would fail).
    def no_copy(self: Any) -> Any:
        raise AssertionError("the result should have come from the log")

    monkeypatch.setattr(docker_executor.ContainerRun, "copy_out", no_copy)
    frame = await t.returns_frame(rows=2000)
    assert len(frame) == 2000 and frame["half"].iloc[-1] == 999.5


async def test_the_task_runs_with_the_garbage_collector_on(in_docker: str) -> None:
    state = await t.collector_state()  # off while the entry imports, on again for the task
    assert state["enabled"] is True and state["frozen"] > 0


async def test_limits_env_volumes_and_network_reach_the_container(
    in_docker: str, docker_client: Any, tmp_path: Path
) -> None:
    import ipaddress

    (tmp_path / "hello.txt").write_text("from the host")
    network = docker_client.networks.create(f"cowaitlib-test-{uuid.uuid4().hex[:8]}")
    try:
        view = await t.container_view.options(
            docker={
                "cpus": 0.5,
                "memory": "256m",
                "env": {"GREETING": "hi"},
                "volumes": [f"{tmp_path}:/mnt/host:ro"],
                "network": network.name,
            }
        )()
        network.reload()
        subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
    finally:
        network.remove()
    assert view["greeting"] == "hi" and view["mounted"] == "from the host"
    assert view["cpus"] == 0.5 and view["memory"] == 256 * 1024 * 1024
    assert ipaddress.ip_address(view["address"]) in ipaddress.ip_network(subnet)


async def test_failure_carries_the_remote_traceback(in_docker: str) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.fails(message="in a box")
    error = caught.value
    assert error.error_type == "ValueError" and error.message == "in a box"
    assert 'File "/project/tests/tasks_for_tests.py"' in error.traceback


async def test_failing_notebook_cell_in_a_container(in_docker: str) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await cw.NotebookRunner(NOTEBOOKS / "fails.ipynb")
    assert caught.value.cell_index == 2 and caught.value.error_type == "ValueError"
    assert caught.value.output_notebook and Path(caught.value.output_notebook).exists()


async def test_twenty_tasks_at_once(in_docker: str) -> None:
    results = await cw.join([t.add(a=i, b=i) for i in range(20)])
    assert results == [2 * i for i in range(20)]


# --- nested tasks -------------------------------------------------------------------------


async def test_batch_notebook_runs_its_days_as_sibling_containers(
    in_docker: str, fresh_settings: Path
) -> None:
    from trades import expected_volume  # examples/volume is on sys.path (see pyproject)

    cw.configure(docker={"mount_docker_socket": True})
    runner = cw.NotebookRunner(EXAMPLE / "notebook_batch.ipynb", start_day="2", end_day="4")
    volumes = await runner
    assert volumes == {d: expected_volume(d) for d in ["20200102", "20200103", "20200104"]}
    saved = sorted(p.name for p in fresh_settings.glob("*.ipynb"))
    assert f"{runner.id}.ipynb" in saved
    assert len([s for s in saved if s.startswith("volume-")]) == 3  # the children's, copied out


async def test_child_failure_in_a_container_fails_the_parent(in_docker: str) -> None:
    cw.configure(docker={"mount_docker_socket": True})
    with pytest.raises(cw.TaskError) as caught:
        await cw.NotebookRunner(NOTEBOOKS / "parent_of_failing.ipynb")
    assert caught.value.error_type == "TaskError"
    assert (
        "task 'fails'" in caught.value.message and "ValueError: bad value 1" in caught.value.message
    )


# --- failures of the container itself -----------------------------------------------------


async def test_out_of_memory_is_named(in_docker: str) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.allocates.options(docker={"memory": "64m"})(megabytes=256)
    assert caught.value.error_type == "OutOfMemory"
    assert "ran out of memory (limit 64m)" in caught.value.message


async def test_missing_image_fails_within_seconds(in_docker: str) -> None:
    started = time.monotonic()
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(
            docker={"image": f"{REGISTRY}/cowaitlib/no-such:image", "pull": "missing"}
        )(a=1)
    assert time.monotonic() - started < 30
    assert caught.value.error_type == "ImageNotFound"
    assert f"image '{REGISTRY}/cowaitlib/no-such:image' is not on this Docker engine" in str(
        caught.value
    )
    with pytest.raises(cw.TaskError, match=r"build it with cowaitlib\.build_image"):
        await t.add.options(docker={"image": "cowaitlib-nothing:here", "pull": "never"})(a=1)


async def test_cancellation_stops_and_removes_the_container(
    in_docker: str, docker_client: Any
) -> None:
    handle = t.sleeper(key="boxed", seconds=60)
    with anyio.fail_after(60):
        while not task_containers(docker_client, handle.id):
            await anyio.sleep(0.1)
    [container] = task_containers(docker_client, handle.id)
    assert container.name == f"cowaitlib-{handle.id}"
    assert container.labels["cowaitlib.run-id"] == handle.spec.run_id
    assert container.labels["cowaitlib.task-name"] == "sleeper"
    with anyio.move_on_after(1):
        await handle
    assert task_containers(docker_client, handle.id) == []


def test_ctrl_c_stops_and_removes_the_container(
    task_image: str, docker_client: Any, tmp_path: Path
) -> None:
    settings = {
        "executor": "docker",
        "docker": {"image": task_image, "project_dir": str(ROOT), "pull": "never"},
    }

    def running(task_id: str) -> bool:
        return any(c.status == "running" for c in task_containers(docker_client, task_id))

    task_id, ended = interrupt_script_mid_task(settings, running, tmp_path)
    assert ended.returncode != 0 and "KeyboardInterrupt" in ended.stderr, ended.stderr
    assert task_containers(docker_client, task_id) == []  # removed before the script ended


async def test_timeout_removes_the_container(in_docker: str, docker_client: Any) -> None:
    handle = t.sleeper.options(timeout=8)(key="late", seconds=60)
    with pytest.raises(cw.TaskTimeoutError):
        await handle
    assert task_containers(docker_client, handle.id) == []


async def test_engine_not_running_says_how_to_start_it(
    in_docker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_executor, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/cowaitlib-no-engine.sock")
    with pytest.raises(
        cw.ExecutorUnavailable, match=r"cannot reach the Docker engine .* Is it running\?"
    ):
        await t.add(a=1)
    monkeypatch.setattr(docker_executor, "_client", None)  # the next test gets a working client


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(cw.ExecutorUnavailable, match=r"pip install 'cowaitlib\[docker\]'"):
        docker_executor.sdk()


def test_notebook_outside_the_project_is_refused(in_docker: str, tmp_path: Path) -> None:
    (tmp_path / "lone.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    with pytest.raises(cw.TaskError, match="outside the project folder"):
        cw.run(cw.NotebookRunner(tmp_path / "lone.ipynb"))


# --- dev mode -----------------------------------------------------------------------------


async def test_dev_mount_sees_local_edits_without_a_rebuild(in_docker: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cowaitlib.toml").write_text("")
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import cowaitlib as cw\ncw.exit(open('value.txt').read())")
        ]
    )
    nbformat.write(notebook, project / "dev.ipynb")
    (project / "value.txt").write_text("first")
    with cw.override(docker={"project_dir": str(project), "dev_mount": True}):
        assert await cw.NotebookRunner(project / "dev.ipynb") == "first"
        (project / "value.txt").write_text("edited")
        assert await cw.NotebookRunner(project / "dev.ipynb") == "edited"
    with cw.override(docker={"project_dir": str(project)}), pytest.raises(cw.TaskError):
        await cw.NotebookRunner(project / "dev.ipynb")  # not in the image without the mount


# --- images -------------------------------------------------------------------------------


def test_build_with_cowaitlib_from_a_package_index(
    base_image: str, docker_client: Any, tmp_path: Path
) -> None:
    """cowaitlib_from="index": cowaitlib comes from the package index pip is pointed at (here a
    real PEP 503 index over HTTP holding a wheel of this checkout), not from the checkout."""
    import functools
    import http.server
    import subprocess
    import sys
    import threading

    from cowaitlib import __version__

    folder = tmp_path / "index" / "simple" / "cowaitlib"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)],
        check=True,
    )
    wheel = next(folder.glob("cowaitlib-*.whl")).name
    (folder / "index.html").write_text(f'<a href="{wheel}">{wheel}</a>\n')
    fetched: list[str] = []

    class Index(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            fetched.append(self.path)

    handler = functools.partial(Index, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"cowaitlib-test-index:{uuid.uuid4().hex[:8]}"
    log: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PIP_EXTRA_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
            cw.build_image(
                image=name,
                base_image=base_image,
                project_dir=ROOT,
                requirements=["matplotlib"],
                cowaitlib_from="index",
                output=log.append,
            )
        assert f"/simple/cowaitlib/{wheel}" in fetched
        assert not any(line.startswith("packing cowaitlib") for line in log)
        installed = docker_client.containers.run(
            name,
            ["python", "-c", "import importlib.metadata as m; print(m.version('cowaitlib'))"],
            remove=True,
        )
        assert installed.decode().strip() == __version__
        with cw.override(executor="docker", docker={"image": name, "pull": "never"}):
            assert cw.run(t.add(a=20, b=22)) == 42
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(Exception):
            docker_client.images.remove(name)


def test_build_push_remove_then_run_pulls_from_the_registry(
    task_image: str, base_image: str, docker_client: Any, registry: str
) -> None:
    name = f"{registry}/cowaitlib-test:{uuid.uuid4().hex[:8]}"
    log: list[str] = []
    cw.build_image(
        image=name,
        base_image=base_image,
        project_dir=ROOT,
        requirements=["matplotlib"],
        push=True,
        output=log.append,
    )
    assert f"pushed {name}" in log
    docker_client.images.remove(name)
    try:
        cw.configure(executor="docker", docker={"image": name, "project_dir": str(ROOT)})
        assert cw.run(t.add(a=20, b=1)) == 21  # pull: missing -> pulled from the registry
        assert docker_client.images.get(name)
    finally:
        docker_client.images.remove(name, force=True)


def test_failed_build_names_the_step(docker_client: Any, base_image: str, tmp_path: Path) -> None:
    broken = "cowaitlib-test-nopip:latest"
    dockerfile = f"FROM {base_image}\nRUN rm -rf /opt/venv/lib/python3.11/site-packages/pip\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=broken, rm=True)
    (tmp_path / "cowaitlib.toml").write_text("")
    try:
        with pytest.raises(
            cw.ImageError, match=r"failed at Step \d+/\d+ : RUN python3 -m pip"
        ) as caught:
            cw.build_image(
                image="cowaitlib-test-broken:x",
                base_image=broken,
                project_dir=tmp_path,
                output=lambda line: None,
            )
        assert "No module named pip" in str(caught.value)  # the step's own output is quoted
    finally:
        docker_client.images.remove(broken, force=True)


def test_push_to_an_unreachable_registry_says_so(task_image: str, docker_client: Any) -> None:
    name = "127.0.0.1:5999/cowaitlib-test:unreachable"
    docker_client.images.get(task_image).tag(name)
    try:
        with pytest.raises(cw.ImageError, match="cannot be reached"):
            cw.push_image(name, output=lambda line: None)
    finally:
        docker_client.images.remove(name)


def test_push_without_a_login_says_to_log_in(
    task_image: str, docker_client: Any, registry_requiring_login: str
) -> None:
    name = f"{registry_requiring_login}/cowaitlib-test:private"
    docker_client.images.get(task_image).tag(name)
    try:
        with pytest.raises(cw.ImageError) as caught:
            cw.push_image(name, output=lambda line: None)
    finally:
        docker_client.images.remove(name)
    message = str(caught.value)
    assert message.startswith(f"pushing {name} failed: ")
    assert message.endswith(
        f"log in to {registry_requiring_login} first (docker login {registry_requiring_login})"
    )


async def test_a_container_that_cannot_start_is_a_task_error(in_docker: str) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(docker={"network": "cowaitlib-no-such-network"})(a=1)
    assert caught.value.error_type == "DockerError"
    assert "could not start the task's container" in caught.value.message
    assert "cowaitlib-no-such-network" in caught.value.message


def test_memory_limit_is_checked_when_set() -> None:
    with pytest.raises(cw.ConfigError, match=r"docker\.memory"):
        cw.configure(docker={"memory": "lots"})


def test_base_image_without_python_is_refused_cleanly(docker_client: Any, tmp_path: Path) -> None:
    (tmp_path / "cowaitlib.toml").write_text("")
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(cw.ImageError, match="has no working python3"):
        cw.build_image(
            image="cowaitlib-test-nopython:x",
            base_image="k8s.gcr.io/pause:3.2",
            project_dir=tmp_path,
            output=lambda line: None,
        )
    assert {c.id for c in docker_client.containers.list(all=True)} == before
