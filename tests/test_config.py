"""Settings precedence, and errors that name where a bad value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

import cowaitlib as cw
from cowaitlib import config
from tests import tasks_for_tests as t


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "sub").mkdir(parents=True)
    monkeypatch.chdir(root / "sub")  # settings are found from the working directory upwards
    config.reset()
    return root


def write(path: Path, text: str) -> None:
    path.write_text(text)
    config.reset()  # forget cached project files


def test_defaults() -> None:
    settings = cw.current_settings()
    assert settings.executor == "inprocess" and settings.timeout is None


def test_each_layer_overrides_the_one_before(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.reset()
    write(
        project / "pyproject.toml",
        "[tool.cowaitlib]\ntimeout = 10\ncell_timeout = 1\nkernel_name = 'a'\n",
    )
    assert cw.current_settings().timeout == 10

    write(project / "cowaitlib.toml", "timeout = 20\nkernel_name = 'b'\n")
    assert cw.current_settings().timeout == 20
    assert cw.current_settings().cell_timeout == 1  # untouched keys come from lower layers

    monkeypatch.setenv("COWAITLIB_TIMEOUT", "30")
    assert cw.current_settings().timeout == 30

    cw.configure(timeout=40)
    assert cw.current_settings().timeout == 40

    with cw.override(timeout=50) as inside:
        assert inside.timeout == 50
        assert cw.current_settings().timeout == 50
        assert cw.current_settings(timeout=60).timeout == 60  # per-call options win
    assert cw.current_settings().timeout == 40  # the override ended with its block
    assert cw.current_settings().kernel_name == "b"


def test_options_reach_the_task_spec() -> None:
    handle = t.add.options(timeout=12)(a=1)
    assert handle.settings.timeout == 12
    assert handle.spec.settings["timeout"] == 12
    handle = t.add(a=1)
    assert handle.settings.timeout is None


def test_environment_values_are_coerced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COWAITLIB_LOGS", "false")
    monkeypatch.setenv("COWAITLIB_CELL_TIMEOUT", "2.5")
    settings = cw.current_settings()
    assert settings.logs is False and settings.cell_timeout == 2.5


def test_bad_file_value_names_file_and_key(project: Path) -> None:
    write(project / "pyproject.toml", "[tool.cowaitlib]\ntimeout = 'soon'\n")
    with pytest.raises(cw.ConfigError) as caught:
        cw.current_settings()
    message = str(caught.value)
    assert str(project / "pyproject.toml") in message and "[tool.cowaitlib]" in message
    assert "key 'timeout'" in message and "'soon'" in message


def test_unknown_key_in_a_file_is_an_error(project: Path) -> None:
    write(project / "cowaitlib.toml", "exectuor = 'docker'\n")
    with pytest.raises(cw.ConfigError, match=r"cowaitlib.toml: key 'exectuor': Extra inputs"):
        cw.current_settings()


def test_broken_toml_names_the_file(project: Path) -> None:
    write(project / "cowaitlib.toml", "timeout = = 3\n")
    with pytest.raises(cw.ConfigError, match=r"cowaitlib.toml: not valid TOML"):
        cw.current_settings()


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COWAITLIB_EXECUTOR", "cloud")
    with pytest.raises(cw.ConfigError, match=r"environment: COWAITLIB_EXECUTOR: Input should be"):
        cw.current_settings()
    monkeypatch.setenv("COWAITLIB_EXECUTOR", "inprocess")
    monkeypatch.setenv("COWAITLIB_TIMEOT", "3")
    with pytest.raises(cw.ConfigError, match="COWAITLIB_TIMEOT"):
        cw.current_settings()


def test_configure_rejects_bad_values_at_once() -> None:
    with pytest.raises(cw.ConfigError, match=r"configure\(\): key 'cell_timeout'"):
        cw.configure(cell_timeout=0)


def test_unknown_executor_lists_the_known_ones() -> None:
    from cowaitlib.executors import get_executor

    with pytest.raises(cw.ExecutorUnavailable, match="'inprocess', 'docker' or 'kubernetes'"):
        get_executor("moon")


def test_environment_keeps_case_inside_dict_settings_and_parses_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COWAITLIB_DOCKER__ENV__API_TOKEN", "abc")
    monkeypatch.setenv("COWAITLIB_DOCKER__VOLUMES", '["/data:/data:ro"]')
    monkeypatch.setenv("COWAITLIB_DOCKER__MEMORY", "256m")
    docker = cw.current_settings().docker
    assert docker.env == {"API_TOKEN": "abc"}
    assert docker.volumes == ["/data:/data:ro"] and docker.memory == "256m"


def test_bad_nested_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COWAITLIB_DOCKER__PULL", "sometimes")
    with pytest.raises(cw.ConfigError, match="COWAITLIB_DOCKER__PULL"):
        cw.current_settings()


def test_notebook_options_are_checked_when_given() -> None:
    from tests.conftest import NOTEBOOKS

    with pytest.raises(cw.ConfigError, match="'cell_timeout'"):
        cw.notebook(NOTEBOOKS / "add.ipynb", cell_timeout="soon")
