"""What the container executors (Docker, Kubernetes) share: the task image's layout, and the
spec as a task's container must see it."""

from __future__ import annotations

import codecs
from pathlib import Path, PurePosixPath

from ..config import Settings, project_root
from ..spec import TaskSpec

#: The project folder inside the task image.
PROJECT = "/project"
#: Where a task's container keeps its spec, result and executed notebooks.
TASK_DIR = PurePosixPath("/cowaitlib")
OUTPUT_DIR = TASK_DIR / "output"
ENTRY = ["python", "-m", "cowaitlib.entrypoint"]
#: The environment variable a container's spec may travel in.
SPEC_ENV = "_COWAITLIB_SPEC"

#: Lines the entry prints after the task for the executor, not for the user: the result
#: envelope, and (Kubernetes) executed notebooks. Executors keep them out of the task's output.
MARK = "<<cowaitlib-"
ENVELOPE_MARK = MARK + "envelope>>"
NOTEBOOK_MARK = MARK + "notebook "


class LogLines:
    """A container's log, fed in chunks as they arrive, handed back in whole lines.

    A chunk may end mid-line or mid-character. A mark is split off the line it is on: a task
    whose last output had no newline leaves the entry's mark at the end of that line.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def feed(self, chunk: bytes) -> list[str]:
        *lines, self._partial = (self._partial + self._decoder.decode(chunk)).split("\n")
        return [part for line in lines for part in _split_mark(line)]

    def close(self) -> list[str]:
        rest, self._partial = self._partial + self._decoder.decode(b"", final=True), ""
        return _split_mark(rest) if rest else []


def _split_mark(line: str) -> list[str]:
    at = line.find(MARK)
    return [line] if at <= 0 else [line[:at], line[at:]]


def host_project_dir(settings: Settings) -> Path:
    """The project folder on this side (inside a task's container: `/project`)."""
    return Path(settings.docker.project_dir or project_root()).resolve()


def container_spec(spec: TaskSpec, settings: Settings, in_cluster: bool = False) -> TaskSpec:
    """The spec with its paths and settings as the task's container must see them.

    A notebook must be under the project folder (that is what the image holds); executed
    notebooks are written to OUTPUT_DIR, and the executor brings them back to `output_dir`.
    In a cluster's pod, Kubernetes children use the pod's own service account.
    Raises ValueError for a notebook outside the project.
    """
    project = host_project_dir(settings)
    target = spec.target
    if spec.kind == "notebook":
        path = Path(spec.target)
        if not path.is_relative_to(project):
            raise ValueError(
                f"notebook {spec.target} is outside the project folder {project}, so it is not "
                "in the task image; move it into the project or set docker.project_dir"
            )
        target = str(PurePosixPath(PROJECT) / path.relative_to(project).as_posix())
    inner = dict(spec.settings)
    inner["output_dir"] = str(OUTPUT_DIR)
    inner["docker"] = {**spec.settings.get("docker", {}), "project_dir": PROJECT}
    if in_cluster:
        inner["kubernetes"] = {**inner["kubernetes"], "kubeconfig": None, "context": None}
    return spec.model_copy(update={"target": target, "settings": inner})
