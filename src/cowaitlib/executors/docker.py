"""Tasks as containers on the local Docker engine, through the official `docker` SDK.

One container per task. The spec rides in the container's environment (copied in as a file
when large), and the container runs `python -m cowaitlib.entrypoint`. The entry writes the
result envelope to a file and, when small, prints it as the log's last line: the caller takes
it from there, and copies the file out of the stopped container when that line is missing or
cut, so the result never depends on the stream. Executed notebooks are copied out after exit.
The caller needs no network path into the container. Output streams to the caller while it
runs. The container is removed once its result is read, and on cancellation, whatever cancels.

Paths are rewritten on the way in (see `containers`); executed notebooks are copied from the
container to the caller's `output_dir`.
"""

from __future__ import annotations

import collections
import contextlib
import io
import re
import tarfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import anyio.to_thread

from ..config import Settings
from ..errors import ExecutorUnavailable
from ..logs import TaskOutput
from ..spec import ResultEnvelope, TaskSpec
from ..worker import failure
from .containers import (
    ENTRY,
    ENVELOPE_MARK,
    OUTPUT_DIR,
    PROJECT,
    SPEC_ENV,
    TASK_DIR,
    LogLines,
    container_spec,
    host_project_dir,
)

SPEC_FILE = TASK_DIR / "spec.json"
RESULT_FILE = TASK_DIR / "result.json"
#: Inside a task's container: the project folder as the Docker engine sees it (for dev mounts
#: of child containers, whose paths the engine resolves on the host).
HOST_PROJECT_ENV = "_COWAITLIB_HOST_PROJECT_DIR"
LABEL_PREFIX = "cowaitlib."
LOG_TAIL_LINES = 40


def sdk() -> Any:
    """The docker SDK, or an error saying how to install it."""
    try:
        import docker
    except ImportError:
        raise ExecutorUnavailable(
            "the docker executor needs the docker package: pip install 'cowaitlib[docker]'"
        ) from None
    return docker


_client: Any = None
_client_lock = threading.Lock()


def client() -> Any:
    """A docker client for this process (blocking: call it in a worker thread)."""
    global _client
    with _client_lock:
        if _client is None:
            docker = sdk()
            _check_socket_exists()
            candidate = None
            try:
                candidate = docker.from_env()
                candidate.ping()
            except docker.errors.DockerException as exc:
                if candidate is not None:
                    candidate.close()
                raise _engine_unreachable(str(exc)) from None
            _client = candidate
    return _client


def _check_socket_exists() -> None:
    """Fail fast and clearly when the engine's socket is not there (the engine is not running)."""
    import os

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
        if os.environ.get(HOST_PROJECT_ENV):  # we are a task in a container ourselves
            raise ExecutorUnavailable(
                "this task runs in a container without the Docker socket, so it cannot start "
                "child containers: set docker.mount_docker_socket=True (see its security note)"
            )
        raise _engine_unreachable(f"no socket at {host}")


def _engine_unreachable(detail: str) -> ExecutorUnavailable:
    return ExecutorUnavailable(
        f"cannot reach the Docker engine ({detail}). Is it running? Start it (for example "
        "`sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at it."
    )


class PullFailed(Exception):
    """The task image could not be pulled (no such image, registry unreachable, denied)."""


class DockerExecutor:
    """Runs each task in its own container; see the module docstring."""

    async def run(self, spec: TaskSpec, output: TaskOutput) -> ResultEnvelope:
        settings = Settings.model_validate(spec.settings)
        try:
            inner = container_spec(spec, settings)
        except ValueError as exc:
            return failure(spec, exc)
        docker_client = await anyio.to_thread.run_sync(client)
        run = ContainerRun(docker_client, spec, inner, settings, output)
        try:
            return await run.execute()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(run.remove)


class ContainerRun:
    """One task's container, from creation to removal (blocking methods: run in threads)."""

    def __init__(
        self,
        docker_client: Any,
        spec: TaskSpec,
        inner: TaskSpec,
        settings: Settings,
        output: TaskOutput,
    ) -> None:
        self.client = docker_client
        self.spec = spec
        self.inner = inner
        self.settings = settings
        self.output = output
        self.container: Any = None
        self.spec_json = inner.model_dump_json()  # as the container gets it
        # A small spec rides in the environment (one API call fewer); a large one is copied in.
        self.spec_in_env = len(self.spec_json) <= 64 * 1024
        self.log_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        #: The envelope the entry printed as the log's last line, when it fits there.
        self.logged_envelope: ResultEnvelope | None = None

    async def execute(self) -> ResultEnvelope:
        docker = sdk()
        try:
            await anyio.to_thread.run_sync(self.create)
        except (docker.errors.ImageNotFound, PullFailed) as exc:
            return self.image_missing(exc)
        except docker.errors.APIError as exc:
            return failure(
                self.spec,
                exc,
                type="DockerError",
                traceback="",
                message=f"could not create the task's container: {_short(exc)}",
            )
        try:
            if not self.spec_in_env:
                await anyio.to_thread.run_sync(
                    self.container.put_archive, "/", _spec_archive(self.spec_json)
                )
            await anyio.to_thread.run_sync(self.container.start)
        except docker.errors.APIError as exc:  # e.g. a network or volume that does not exist
            return failure(
                self.spec,
                exc,
                type="DockerError",
                traceback="",
                message=f"could not start the task's container: {_short(exc)}",
            )
        logs_done = anyio.Event()

        async def pump_logs() -> None:
            try:
                await anyio.to_thread.run_sync(self.pump_logs, abandon_on_cancel=True)
            finally:
                logs_done.set()

        async with anyio.create_task_group() as group:
            group.start_soon(pump_logs)
            exit_status = await anyio.to_thread.run_sync(
                self.container.wait, abandon_on_cancel=True
            )
            with anyio.move_on_after(5):  # the rest of the log, now that the container exited
                await logs_done.wait()
            group.cancel_scope.cancel()
        return await anyio.to_thread.run_sync(self.collect, exit_status)

    def create(self) -> None:
        """Create the container. Sets `self.container` here, in the thread, so that a
        cancellation arriving meanwhile still finds it to remove."""
        docker = sdk()
        config = self.settings.docker
        if config.pull == "always":
            self.pull()
        arguments = self.container_arguments()
        try:
            self.container = self.client.containers.create(**arguments)
        except docker.errors.ImageNotFound:
            if config.pull == "never":
                raise
            self.pull()
            self.container = self.client.containers.create(**arguments)

    def pull(self) -> None:
        repository, _, tag = self.settings.docker.image.rpartition(":")
        if not repository or "/" in tag:  # no tag given (a ':' in a registry host:port)
            repository, tag = self.settings.docker.image, "latest"
        try:
            self.client.images.pull(repository, tag=tag)
        except sdk().errors.APIError as exc:
            raise PullFailed(_short(exc)) from None

    def container_arguments(self) -> dict[str, Any]:
        config = self.settings.docker
        environment = {"PYTHONUNBUFFERED": "1", **config.env}
        if self.spec_in_env:
            environment[SPEC_ENV] = self.spec_json
        host_project = _engine_side_project_dir(self.settings)
        environment[HOST_PROJECT_ENV] = str(host_project)
        volumes = list(config.volumes)
        if config.dev_mount:
            volumes.append(f"{host_project}:{PROJECT}")
        if config.mount_docker_socket:
            volumes.append(f"{config.socket}:/var/run/docker.sock")
        labels = {
            LABEL_PREFIX + "task-id": self.spec.id,
            LABEL_PREFIX + "task-name": self.spec.name,
            LABEL_PREFIX + "parent-id": self.spec.parent_id or "",
            LABEL_PREFIX + "run-id": self.spec.run_id,
        }
        arguments: dict[str, Any] = {
            "image": config.image,
            "command": [
                *ENTRY,
                f"env:{SPEC_ENV}" if self.spec_in_env else str(SPEC_FILE),
                str(RESULT_FILE),
            ],
            "name": "cowaitlib-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", self.spec.id),
            "labels": labels,
            "environment": environment,
            "working_dir": PROJECT,
            "volumes": volumes,
            "detach": True,
        }
        if config.memory:
            arguments["mem_limit"] = config.memory
            arguments["memswap_limit"] = config.memory  # no swap: over the limit is over
        if config.cpus:
            arguments["nano_cpus"] = int(config.cpus * 1e9)
        if config.network:
            arguments["network"] = config.network
        return arguments

    def pump_logs(self) -> None:
        lines = LogLines()
        for chunk in self.container.logs(stream=True, follow=True):
            for line in lines.feed(chunk):
                self.log_line(line)
        for line in lines.close():
            self.log_line(line)

    def log_line(self, line: str) -> None:
        if line.startswith(ENVELOPE_MARK):
            envelope = self.envelope_in(line[len(ENVELOPE_MARK) :])
            if envelope is not None:
                self.logged_envelope = envelope
                return
        self.log_tail.append(line)
        self.output.write("stdout", line + "\n")

    def collect(self, exit_status: dict[str, Any]) -> ResultEnvelope:
        envelope = self.logged_envelope
        saved: dict[str, str] = {}
        if envelope is None or self.spec.kind == "notebook":
            result, saved = self.copy_out()
            envelope = None if result is None else ResultEnvelope.model_validate_json(result)
        tail = "\n".join(self.log_tail)
        if envelope is not None and envelope.status == "ok":
            state: dict[str, Any] = {}  # it went well: no need to ask how the container ended
        else:
            self.container.reload()
            state = self.container.attrs["State"]
        if state.get("OOMKilled"):
            limit = self.settings.docker.memory or "the engine's"
            return failure(
                self.spec,
                MemoryError(),
                type="OutOfMemory",
                traceback=tail,
                message=f"the task's container ran out of memory (limit {limit}) and was killed",
            )
        if envelope is None:
            code = exit_status.get("StatusCode")
            return failure(
                self.spec,
                RuntimeError(),
                type="ContainerExited",
                traceback=tail,
                message=f"the task's container exited with code {code} without a result; "
                "its last output is below",
            )
        if envelope.output_notebook is not None:
            name = PurePosixPath(envelope.output_notebook).name
            envelope = envelope.model_copy(update={"output_notebook": saved.get(name)})
        return envelope

    def envelope_in(self, text: str) -> ResultEnvelope | None:
        """This task's envelope, if `text` is one (a cut or look-alike line is output)."""
        try:
            envelope = ResultEnvelope.model_validate_json(text)
        except ValueError:
            return None
        return envelope if envelope.task_id == self.inner.id else None

    def copy_out(self) -> tuple[str | None, dict[str, str]]:
        """The result file, and executed notebooks saved into the caller's output folder."""
        try:
            stream, _ = self.container.get_archive(str(TASK_DIR))
        except sdk().errors.NotFound:
            return None, {}
        result, saved = None, {}
        target = Path(self.settings.output_dir)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            for member in archive.getmembers():
                path = PurePosixPath("/", member.name)
                data = archive.extractfile(member) if member.isfile() else None
                if data is None:
                    continue
                if path == RESULT_FILE:
                    result = data.read().decode()
                elif path.parent == OUTPUT_DIR and path.suffix == ".ipynb":
                    target.mkdir(parents=True, exist_ok=True)
                    (target / path.name).write_bytes(data.read())
                    saved[path.name] = str(target / path.name)
        return result, saved

    def image_missing(self, exc: Exception) -> ResultEnvelope:
        image = self.settings.docker.image
        return failure(
            self.spec,
            exc,
            type="ImageNotFound",
            traceback="",
            message=f"image {image!r} is not on this Docker engine and could not be pulled "
            f"({_short(exc)}); build it with cowaitlib.build_image(), or set docker.image",
        )

    def remove(self) -> None:
        if self.container is None:
            return
        with contextlib.suppress(sdk().errors.NotFound):
            self.container.remove(force=True)


def _engine_side_project_dir(settings: Settings) -> Path:
    import os

    outer = os.environ.get(HOST_PROJECT_ENV)  # set when we are ourselves in a task's container
    return Path(outer) if outer else host_project_dir(settings)


def _spec_archive(spec_json: str) -> bytes:
    buffer = io.BytesIO()
    data = spec_json.encode()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folder = tarfile.TarInfo(str(TASK_DIR).lstrip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o777
        archive.addfile(folder)
        info = tarfile.TarInfo(str(SPEC_FILE).lstrip("/"))
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300]
