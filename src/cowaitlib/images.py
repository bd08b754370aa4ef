"""Building and pushing the task image that Docker containers and Kubernetes Jobs run.

The image is: a Python base image, cowaitlib with its docker and kubernetes extras, the project's
requirements, and the project folder at `/project`. Packages are resolved and downloaded on this
machine into a cached wheelhouse (for the base image's Python version and platform) and
installed in the image with `pip --no-index`: the build needs no network of its own and two
builds of the same inputs install the same files. Dependencies and cowaitlib sit in layers of
their own, so editing the project rebuilds only the last layer.

Ignored when copying the project: `.dockerignore` patterns, and always `.git`, virtualenvs,
caches and cowaitlib's own output folder.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .config import current_settings, project_root
from .errors import ImageError
from .executors.docker import client, sdk
from .logs import strip_ansi

ALWAYS_IGNORED = [
    ".git",
    ".hg",
    ".venv",
    "venv",
    ".nox",
    ".tox",
    ".cowaitlib",
    "**/__pycache__",
    "**/*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "*.egg-info",
    "build",
    "dist",
]
EXTRAS = "docker,kubernetes"
WHEELHOUSE = Path.home() / ".cache" / "cowaitlib" / "wheels"

Printer = Callable[[str], None]


def build_image(
    *,
    image: str | None = None,
    base_image: str | None = None,
    project_dir: str | Path | None = None,
    requirements: str | Path | Iterable[str] | None = None,
    cowaitlib_from: str = "auto",
    push: bool = False,
    output: Printer | None = None,
) -> str:
    """Build the task image and return its name (blocking; output streams to `output`).

    image, base_image, project_dir: default to the `docker` settings.
    requirements: a requirements file (default: the project's requirements.txt, if any) or a
        list of requirement strings.
    cowaitlib_from: "local" (a wheel of the cowaitlib this process runs, for development),
        "index" (the same version from the package index), or "auto" (local when running from
        a source checkout).
    push: also push the image to the registry its name points at.
    """
    settings = current_settings().docker
    image = image or settings.image
    base_image = base_image or settings.base_image
    project = Path(project_dir or settings.project_dir or project_root()).resolve()
    say = output or _print
    docker_client = client()
    docker = sdk()

    python, platforms = _base_python(docker_client, base_image, say)
    with tempfile.TemporaryDirectory(prefix="cowaitlib-build-") as scratch:
        context = Path(scratch)
        ours = _wheelhouse(context, python, platforms, requirements, project, cowaitlib_from, say)
        dockerfile = _dockerfile(base_image, ours)
        archive = _context_archive(project, context, dockerfile)
        say(f"building {image} from {base_image} with project {project}")
        previous = _image_id(docker_client, image)
        last_step = "the start"
        step_output: collections.deque[str] = collections.deque(maxlen=12)
        try:
            for chunk in docker_client.api.build(
                fileobj=archive,
                custom_context=True,
                tag=image,
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "stream" in chunk:
                    for line in chunk["stream"].splitlines():
                        if line.startswith("Step "):
                            last_step = line
                            step_output.clear()
                        elif line.strip():
                            step_output.append(line)
                        if line.strip():
                            say(line)
                if "error" in chunk:
                    said = strip_ansi("\n".join(f"  | {line}" for line in step_output))
                    raise ImageError(
                        f"building {image} failed at {last_step}: {chunk['error']}\n{said}"
                    )
        except docker.errors.APIError as exc:
            raise ImageError(f"building {image} failed at {last_step}: {exc}") from None
    if previous is not None and previous != _image_id(docker_client, image):
        # The image this name pointed at before: untagged now, remove it unless still in use.
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(previous)
    if push:
        push_image(image, output=say)
    return image


def _short_api(exc: Exception) -> str:
    return str(getattr(exc, "explanation", None) or exc).strip().splitlines()[0]


def _image_id(docker_client: Any, image: str) -> str | None:
    try:
        return str(docker_client.images.get(image).id)
    except sdk().errors.ImageNotFound:
        return None


def push_image(image: str | None = None, *, output: Printer | None = None) -> str:
    """Push the task image to the registry in its name (blocking)."""
    image = image or current_settings().docker.image
    say = output or _print
    docker = sdk()
    repository, tag = _split(image)
    registry = repository.split("/")[0] if "/" in repository else "docker.io"
    try:
        for chunk in client().images.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise ImageError(_push_error(image, registry, chunk["error"]))
            if chunk.get("status") and chunk.get("id") is None:
                say(chunk["status"])
    except docker.errors.APIError as exc:
        raise ImageError(_push_error(image, registry, str(exc))) from None
    say(f"pushed {image}")
    return image


def _push_error(image: str, registry: str, detail: str) -> str:
    lowered = detail.lower()
    # "unauthorized: authentication required", "denied: requested access to the resource is
    # denied", "no basic auth credentials" (a registry that wants a login nobody gave)
    if any(word in lowered for word in ("unauthorized", "denied", "authentication", "auth cred")):
        hint = f"log in to {registry} first (docker login {registry})"
    elif any(
        word in lowered
        for word in (
            "no such host",
            "connection refused",
            "dial tcp",
            "timeout",
            "server gave http response",
        )
    ):
        hint = f"the registry {registry} cannot be reached: check the image name and the registry"
    else:
        hint = "see the registry's message above"
    return f"pushing {image} failed: {detail.strip()}; {hint}"


def _split(image: str) -> tuple[str, str]:
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return image, "latest"
    return repository, tag


def _print(line: str) -> None:
    print(f"[build] {line}", flush=True)


def _base_python(docker_client: Any, base_image: str, say: Printer) -> tuple[str, list[str]]:
    """The base image's Python version ("3.11") and the wheel platforms it accepts."""
    docker = sdk()
    probe = (
        "import json, platform, sys; print(json.dumps([f'{sys.version_info[0]}."
        "{sys.version_info[1]}', platform.libc_ver()[1], platform.machine()]))"
    )
    try:
        docker_client.images.get(base_image)
    except docker.errors.ImageNotFound:
        say(f"pulling {base_image}")
        repository, tag = _split(base_image)
        try:
            docker_client.images.pull(repository, tag=tag)
        except docker.errors.APIError as exc:
            raise ImageError(
                f"base image {base_image!r} is not here and cannot be pulled: {exc}"
            ) from None
    # python3 as the entrypoint: the image's own entrypoint (if any) is not what we ask about.
    container = docker_client.containers.create(base_image, ["-c", probe], entrypoint=["python3"])
    try:
        container.start()
        code = container.wait(timeout=120).get("StatusCode")
        raw = container.logs(stdout=True, stderr=False)
        if code != 0:
            raise ImageError(f"base image {base_image!r} has no working python3 (exit {code})")
    except docker.errors.APIError as exc:
        raise ImageError(
            f"base image {base_image!r} has no working python3: {_short_api(exc)}"
        ) from None
    finally:
        container.remove(force=True)
    version, libc, machine = json.loads(raw)
    glibc_minor = int((libc or "2.17").split(".")[1])
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 16, -1)]
    platforms += [f"manylinux{legacy}_{machine}" for legacy in ("2014", "2010", "1")]
    return version, platforms


def _wheelhouse(
    context: Path,
    python: str,
    platforms: list[str],
    requirements: Any,
    project: Path,
    cowaitlib_from: str,
    say: Printer,
) -> str:
    """Fill context/deps (dependencies, with context/requirements.txt) and context/wheels
    (cowaitlib); return the name of cowaitlib's wheel."""
    wheels = context / "wheels"
    deps = context / "deps"
    wheels.mkdir()
    deps.mkdir()
    lines = _requirement_lines(requirements, project)
    source = _cowaitlib_source() if cowaitlib_from in ("auto", "local") else None
    if cowaitlib_from == "local" and source is None:
        raise ImageError(
            "cowaitlib_from='local' needs cowaitlib installed from a source "
            "checkout (pip install -e); use cowaitlib_from='index'"
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    if source is not None:
        say(f"packing cowaitlib from {source}")
        # A fixed timestamp makes the wheel the same bytes each time, so an unchanged
        # cowaitlib does not invalidate the image layers built on it.
        _run(
            [*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(source)],
            env={"SOURCE_DATE_EPOCH": "315532800"},
        )
        wanted = [f"{next(wheels.glob('cowaitlib-*.whl'))}[{EXTRAS}]", *lines]
    else:
        from . import __version__

        wanted = [f"cowaitlib[{EXTRAS}]=={__version__}", *lines]
    cache = WHEELHOUSE / f"py{python}-{platforms[0]}"
    cache.mkdir(parents=True, exist_ok=True)
    say(f"resolving packages for Python {python} on {platforms[0]}")
    platform_options = [option for tag in platforms for option in ("--platform", tag)]
    _run(
        [
            *pip,
            "download",
            "--quiet",
            "--dest",
            str(deps),  # just what this image needs (from the cache where it can)
            "--find-links",
            str(cache),
            "--only-binary=:all:",
            "--python-version",
            python,
            *platform_options,
            "--implementation",
            "cp",
            *wanted,
        ]
    )
    for wheel in list(deps.iterdir()):
        if wheel.name.startswith("cowaitlib-"):
            # cowaitlib goes in a layer of its own (wheels/), never cached: it is either this
            # checkout (packed above) or whatever the index holds now.
            if source is None:
                shutil.move(wheel, wheels / wheel.name)
            else:
                wheel.unlink()
        elif not (cache / wheel.name).exists():
            shutil.copy2(wheel, cache / wheel.name)
    (context / "requirements.txt").write_text("\n".join(lines) + "\n")
    return next(wheels.glob("cowaitlib-*.whl")).name


def _requirement_lines(requirements: Any, project: Path) -> list[str]:
    if requirements is None:
        default = project / "requirements.txt"
        return _read_requirements(default) if default.is_file() else []
    if isinstance(requirements, (str, Path)):
        return _read_requirements(Path(requirements))
    return list(requirements)


def _read_requirements(path: Path) -> list[str]:
    if not path.is_file():
        raise ImageError(f"requirements file {path} not found")
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _cowaitlib_source() -> Path | None:
    """The source checkout this cowaitlib runs from, if it runs from one."""
    root = Path(__file__).resolve().parent.parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "src").is_dir() else None


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    environment = {**os.environ, **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise ImageError(f"{' '.join(command[2:5])} ... failed:\n{done.stderr.strip()}")


def _dockerfile(base_image: str, ours: str) -> str:
    install = "python3 -m pip install --no-cache-dir --no-index --find-links /tmp/cw/deps"
    ours_install = f"{install} '/tmp/cw/wheels/{ours}[{EXTRAS}]'"
    return "\n".join(
        [
            f"FROM {base_image}",
            "COPY deps /tmp/cw/deps",
            "COPY requirements.txt /tmp/cw/requirements.txt",
            # Everything but cowaitlib first: this layer stays cached while cowaitlib changes.
            f"RUN {install} -r /tmp/cw/requirements.txt "
            + " ".join(f"'{name}'" for name in _dependency_names()),
            "COPY wheels /tmp/cw/wheels",
            f"RUN {ours_install} && rm -rf /tmp/cw",
            "COPY project /project",
            "WORKDIR /project",
            "ENV PYTHONPATH=/project PYTHONUNBUFFERED=1",
            "LABEL cowaitlib.image=1",
            "",
        ]
    )


def _dependency_names() -> list[str]:
    """cowaitlib's own requirements (with the extras the image needs), as installed here."""
    from importlib.metadata import requires

    names = []
    for requirement in requires("cowaitlib") or []:
        name, _, marker = requirement.partition(";")
        if "extra ==" in marker and not any(f'"{e}"' in marker for e in EXTRAS.split(",")):
            continue
        if "python_version" in marker:
            continue
        names.append(name.strip())
    return names


def _context_archive(project: Path, context: Path, dockerfile: str) -> io.BytesIO:
    exclude_paths = sdk().utils.build.exclude_paths
    ignore_file = project / ".dockerignore"
    patterns = list(ALWAYS_IGNORED)
    if ignore_file.is_file():
        patterns += [
            p.strip()
            for p in ignore_file.read_text().splitlines()
            if p.strip() and not p.startswith("#")
        ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        for name in ("deps", "wheels", "requirements.txt"):
            archive.add(context / name, arcname=name)
        for relative in sorted(exclude_paths(str(project), patterns)):
            archive.add(project / relative, arcname=f"project/{relative}", recursive=False)
    buffer.seek(0)
    return buffer
