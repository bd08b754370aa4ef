"""Settings: one pydantic model, filled from layers where later layers win.

    1. built-in defaults
    2. `[tool.cowaitlib]` in the project's pyproject.toml, then a cowaitlib.toml beside it
       (the project is the nearest folder, from the working directory up, holding either file)
    3. environment variables `COWAITLIB_<KEY>` (nested keys: `COWAITLIB_<SECTION>__<KEY>`)
    4. settings inherited from the parent task (inside a task's own process only)
    5. `cowaitlib.configure(...)` for the whole process, then `with cowaitlib.override(...)`
    6. per-call `task.options(...)`

Each layer is validated on its own, so an invalid value is reported with the file or variable it
came from and its key.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "COWAITLIB_"

ExecutorName = Literal["inprocess", "docker", "kubernetes"]


class DockerSettings(BaseModel):
    """How tasks run as local Docker containers, and how their image is built."""

    # Built on first use: a task that reads no settings does not pay for them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    image: str = Field("cowaitlib-task:latest", description="the image tasks run in")
    base_image: str = Field(
        "python:3.11-slim", description="what build_image() builds on: a Python image with pip"
    )
    pull: Literal["missing", "always", "never"] = Field(
        "missing", description="when to pull the task image from its registry"
    )
    project_dir: str | None = Field(
        None,
        description="the project folder put into the image (default: the nearest folder, "
        "from the working directory up, holding pyproject.toml or cowaitlib.toml)",
    )
    dev_mount: bool = Field(
        False, description="mount project_dir into containers instead of the copy in the image"
    )
    mount_docker_socket: bool = Field(
        False,
        description="give containers the Docker socket so tasks can start child tasks; this "
        "gives task code full control of the Docker engine (root on the host)",
    )
    socket: str = Field("/var/run/docker.sock", description="the Docker socket to mount")
    cpus: PositiveFloat | None = Field(None, description="CPU limit per container")
    memory: str | None = Field(
        None, pattern=r"^[0-9]+[bkmgBKMG]?$", description="memory limit per container, e.g. '512m'"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    volumes: list[str] = Field(
        default_factory=list, description="extra volumes, 'host-path:container-path[:ro]'"
    )
    network: str | None = Field(None, description="the Docker network containers join")


class KubernetesSettings(BaseModel):
    """How tasks run as Kubernetes Jobs. The image is the same task image as for Docker."""

    # Built on first use: a task that reads no settings does not pay for them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    namespace: str | None = Field(
        None,
        description="the namespace Jobs are created in (default: the kubeconfig context's "
        "namespace; in a pod, the pod's own; else 'default')",
    )
    kubeconfig: str | None = Field(
        None,
        description="kubeconfig file (default: in a pod, its service account; else KUBECONFIG "
        "or ~/.kube/config)",
    )
    context: str | None = Field(None, description="kubeconfig context (default: current)")
    image: str | None = Field(None, description="the task image (default: docker.image)")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: list[str] = Field(default_factory=list)
    service_account: str | None = Field(None, description="the service account task pods use")
    backoff_limit: int = Field(0, ge=0, description="retries of a failed pod (default: none)")
    ttl_seconds_after_finished: int = Field(
        600, ge=0, description="finished Jobs are removed after this even if the caller died"
    )
    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    env_from_secrets: list[str] = Field(
        default_factory=list, description="Secrets whose keys become environment variables"
    )
    unschedulable_grace: PositiveFloat = Field(
        60, description="seconds a pod may stay unschedulable before the task fails"
    )
    start_grace: PositiveFloat = Field(
        60, description="seconds a Job may go without a pod before the task fails"
    )


class Settings(BaseModel):
    """Everything a user can set. Unknown keys are errors, not silently ignored."""

    # Built on first use: a task that reads no settings does not pay for them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    executor: ExecutorName = Field("inprocess", description="where tasks run")
    timeout: PositiveFloat | None = Field(None, description="seconds a task may run in all")
    cell_timeout: PositiveFloat | None = Field(
        None, description="seconds one notebook cell may run"
    )
    output_dir: str = Field(
        ".cowaitlib/notebooks",
        description="where executed notebooks are saved (relative to the working directory)",
    )
    kernel_name: str = Field("python3", description="the Jupyter kernel notebooks run on")
    logs: bool = Field(True, description="forward task output to the caller, prefixed per task")
    progress: bool | None = Field(
        None, description="show join progress; default: on in a terminal or notebook, off in CI"
    )
    docker: DockerSettings = Field(default_factory=lambda: DockerSettings.model_validate({}))
    kubernetes: KubernetesSettings = Field(
        default_factory=lambda: KubernetesSettings.model_validate({})
    )


# --- the layers ----------------------------------------------------------------------------

_process_layer: dict[str, Any] = {}
_inherited_layer: dict[str, Any] = {}
_scoped_layer: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "cowaitlib_scoped_settings",
    default={},  # noqa: B039 - never mutated, only replaced
)
_file_cache: dict[Path, tuple[dict[str, Any], str]] = {}
_inherited_checked = True


def current_settings(**overrides: Any) -> Settings:
    """The settings in force here, with `overrides` (per-call options) on top."""
    from . import context

    context.current()  # in a task's own process: adopt the parent's settings first
    _check_inherited()
    merged: dict[str, Any] = {}
    _merge(merged, _project_file_layer(Path.cwd())[0])  # checked when the files were read
    # The environment may change at any time, so it is checked each time it is read.
    _merge(merged, _check(_environment_layer(os.environ), "environment"))
    for layer in (_inherited_layer, _process_layer, _scoped_layer.get()):  # checked when set
        _merge(merged, layer)
    check_options(overrides)
    _merge(merged, overrides)
    return Settings.model_validate(merged)


def configure(**settings: Any) -> None:
    """Set settings for the whole process (above files and environment)."""
    _check(settings, "configure()")
    _merge(_process_layer, settings)


def check_options(options: Mapping[str, Any]) -> None:
    """Fail now, naming the key, on a bad per-call option (`task.options(...)`)."""
    if options:
        _check(dict(options), "options()")


def reset() -> None:
    """Forget `configure()` calls and cached files (for tests and long-lived processes)."""
    _process_layer.clear()
    _file_cache.clear()


@contextlib.contextmanager
def override(**settings: Any) -> Iterator[Settings]:
    """Within the block (and tasks started in it), use these settings on top of the rest."""
    _check(settings, "override()")
    with layered(settings):
        yield current_settings()


@contextlib.contextmanager
def layered(settings: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, `settings` on top of the rest, unchecked: a task's own settings,
    which were checked where the task was started."""
    layer = dict(_scoped_layer.get())
    _merge(layer, settings)
    token = _scoped_layer.set(layer)
    try:
        yield
    finally:
        _scoped_layer.reset(token)


def inherit(settings: Mapping[str, Any]) -> None:
    """Adopt a parent task's settings: used by workers before running a task. They are checked
    when first read, so that a task that reads no settings does not pay for building them."""
    global _inherited_checked
    _inherited_layer.clear()
    _inherited_layer.update(settings)
    _inherited_checked = False


def _check_inherited() -> None:
    global _inherited_checked
    if not _inherited_checked:
        _check(_inherited_layer, "the parent task's settings")
        _inherited_checked = True


def _project_file_layer(start: Path) -> tuple[dict[str, Any], str]:
    if start not in _file_cache:
        _file_cache[start] = _read_project_files(start)
    return _file_cache[start]


def project_root(start: Path | None = None) -> Path:
    """The nearest folder, from `start` (the working directory) up, that holds pyproject.toml
    or cowaitlib.toml; `start` itself if none does."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() or (folder / "cowaitlib.toml").is_file():
            return folder
    return start


def _read_project_files(start: Path) -> tuple[dict[str, Any], str]:
    for folder in (start, *start.parents):
        pyproject, own = folder / "pyproject.toml", folder / "cowaitlib.toml"
        if not (pyproject.is_file() or own.is_file()):
            continue
        merged: dict[str, Any] = {}
        sources = []
        if pyproject.is_file():
            table = _read_toml(pyproject).get("tool", {}).get("cowaitlib", {})
            _merge(merged, _check(table, f"{pyproject} [tool.cowaitlib]"))
            sources.append(f"{pyproject} [tool.cowaitlib]")
        if own.is_file():
            _merge(merged, _check(_read_toml(own), str(own)))
            sources.append(str(own))
        return merged, " and ".join(sources)
    return {}, "no project file"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
            return document
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _environment_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """COWAITLIB_A__B=v as {"a": {"b": v}}. Keys inside a dict-valued setting (docker.env) keep
    their case; a value that is a JSON list or object (docker.volumes) is parsed."""
    layer: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or not value:
            continue
        path = _setting_path(name[len(ENV_PREFIX) :].split("__"))
        target = layer
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _env_value(value)
    return layer


def _setting_path(parts: list[str]) -> list[str]:
    model: Any = Settings
    path: list[str] = []
    for index, part in enumerate(parts):
        fields = getattr(model, "model_fields", None)
        if fields is None:  # inside a dict-valued setting: names as written
            return path + parts[index:]
        path.append(part.lower())
        field = fields.get(part.lower())
        model = field.annotation if field is not None else None
    return path


def _env_value(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _check(layer: dict[str, Any], source: str) -> dict[str, Any]:
    """Validate one layer alone so that errors name where the bad value came from."""
    try:
        Settings.model_validate(layer)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            if source == "environment":
                where = ENV_PREFIX + "__".join(str(p).upper() for p in error["loc"])
            else:
                where = f"key {key!r}"
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
        known = ", ".join(Settings.model_fields)
        raise ConfigError(
            f"invalid cowaitlib setting in {source}: "
            + "; ".join(problems)
            + f". Known settings: {known}."
        ) from None
    return layer


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
