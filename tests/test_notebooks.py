"""Notebook tasks on a real Jupyter kernel: inputs, exit values, errors, cleanup."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import anyio
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import cowaitlib as cw
from tests.conftest import NOTEBOOKS, child_kernels

pytestmark = [pytest.mark.anyio, pytest.mark.notebook]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def nb(name: str) -> str:
    return str(NOTEBOOKS / f"{name}.ipynb")


async def test_runner_returns_the_exit_value_with_coerced_inputs(fresh_settings: Path) -> None:
    runner = cw.NotebookRunner(nb("add"), a="5")
    assert await runner == 7
    saved = fresh_settings / f"{runner.id}.ipynb"
    assert runner.output_notebook == str(saved)
    executed = nbformat.read(saved, as_version=4)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("adding 5 and 2" in o.get("text", "") for o in outputs)
    # the cell after cowaitlib.exit() never ran
    assert executed.cells[-1].get("execution_count") is None


async def test_path_may_be_given_by_keyword() -> None:
    assert await cw.NotebookRunner(path=nb("add"), a=1, b=1) == 2


async def test_notebook_without_exit_returns_none() -> None:
    assert await cw.NotebookRunner(nb("no_exit")) is None


async def test_cells_keep_full_ipython_behaviour_and_run_in_the_notebook_folder() -> None:
    result = await cw.NotebookRunner(nb("ipython_features"))
    assert result == {"cwd": str(NOTEBOOKS), "x": 4.0, "shell": "from-the-shell"}


def test_inputs_are_checked_before_a_kernel_starts() -> None:
    with pytest.raises(
        cw.InputError, match=r"does not read input 'c'; it reads: a, b \(found by reading"
    ):
        cw.NotebookRunner(nb("add"), c=1)
    with pytest.raises(cw.InputError, match=r"input 'a': .*valid integer.*'five'"):
        cw.NotebookRunner(nb("add"), a="five")
    with pytest.raises(cw.InputError, match=r"missing required input 'name' .*cell #2"):
        cw.NotebookRunner(nb("required"))
    with pytest.raises(cw.InputError, match=r"notebook 'nope.ipynb' not found"):
        cw.NotebookRunner("nope.ipynb")
    assert child_kernels() == []


async def test_required_input_given() -> None:
    assert await cw.NotebookRunner(nb("required"), name="ada") == "hello ada"


async def test_failing_cell_names_notebook_cell_source_and_error(fresh_settings: Path) -> None:
    runner = cw.NotebookRunner(nb("fails"))
    with pytest.raises(cw.TaskError) as caught:
        await runner
    error = caught.value
    assert type(error) is cw.TaskError
    assert error.error_type == "ValueError" and error.message == "bad value 1"
    assert error.cell_index == 2 and error.cell_source is not None
    assert error.cell_source.startswith("def check(v):")
    assert error.notebook == nb("fails")
    assert "\x1b[" not in error.traceback and "----> 4 check(x)" in error.traceback
    assert error.output_notebook == str(fresh_settings / f"{runner.id}.ipynb")
    assert Path(error.output_notebook).exists()  # a failing run is saved too
    text = str(error)
    for part in ["ValueError: bad value 1", "fails.ipynb", "cell: #3", "| def check(v):"]:
        assert part in text


async def test_dead_kernel_is_its_own_error() -> None:
    with pytest.raises(cw.KernelDiedError, match=r"kernel died while running cell #2") as caught:
        await cw.NotebookRunner(nb("dies"))
    assert caught.value.cell_source == "os._exit(1)"


async def test_cell_timeout_is_its_own_error() -> None:
    started = time.monotonic()
    with pytest.raises(
        cw.CellTimeoutError, match=r"cell #2 ran longer than the cell timeout \(1 s\)"
    ):
        await cw.notebook(nb("sleeps"), cell_timeout=1)()
    assert time.monotonic() - started < 30


async def test_overall_timeout_stops_the_kernel(fresh_settings: Path) -> None:
    runner = cw.notebook(nb("sleeps"), timeout=3)()
    with pytest.raises(cw.TaskTimeoutError, match="timeout of 3 s"):
        await runner
    assert child_kernels() == []
    assert (fresh_settings / f"{runner.id}.ipynb").exists()


async def test_unserializable_exit_value_fails_in_the_notebook() -> None:
    with pytest.raises(
        cw.TaskError,
        match=r"SerializationError: the value given to cowaitlib.exit\(\) of type builtins.object",
    ):
        await cw.NotebookRunner(nb("bad_result"))


async def test_cancellation_shuts_the_kernel_down() -> None:
    with anyio.move_on_after(3):
        await cw.NotebookRunner(nb("sleeps"))
    assert child_kernels() == []


async def test_notebook_runs_its_own_child_notebooks() -> None:
    assert await cw.NotebookRunner(nb("parent"), n=3) == [10, 11, 12]


async def test_many_notebooks_side_by_side() -> None:
    results = await cw.join([cw.NotebookRunner(nb("add"), a=i, b=i) for i in range(4)])
    assert results == [0, 2, 4, 6]


def test_stock_jupyter_uses_defaults_and_exit_stops_with_a_short_message(tmp_path: Path) -> None:
    """Without cowaitlib running it, the notebook behaves as in Jupyter's "Run All"."""
    copy = tmp_path / "add.ipynb"
    shutil.copy(nb("add"), copy)
    notebook = nbformat.read(copy, as_version=4)
    client = NotebookClient(notebook, resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(
        CellExecutionError, match=r"cowaitlib.exit\(\): notebook finished"
    ) as caught:
        client.execute()
    assert caught.value.ename == "TaskExit"
    exit_cell, after = notebook.cells[3], notebook.cells[4]
    [error] = [o for o in exit_cell.outputs if o.output_type == "error"]
    assert error.ename == "TaskExit"
    assert error.traceback == ["cowaitlib.exit(): notebook finished with 3; later cells not run"]
    assert after.get("execution_count") is None  # "Run All" stopped at exit
    shown = [o for o in exit_cell.outputs if o.output_type == "display_data"]
    assert shown and shown[0].data["text/plain"] == "3"
    assert json.dumps(notebook.cells[2].outputs).count("adding 1 and 2") == 1


async def test_kernel_pool_serves_each_kernel_once_with_a_clean_namespace() -> None:
    cold = await cw.NotebookRunner(nb("namespace"))
    async with cw.kernel_pool(2):
        warm = [await cw.NotebookRunner(nb("namespace")) for _ in range(3)]
        children = await cw.NotebookRunner(nb("parent"), n=2)
    assert children == [10, 11]
    assert cold["seen"] is False and cold["cwd"] == str(NOTEBOOKS)
    for result in warm:
        assert result == cold  # no state from earlier tasks, no names from the warm-up
    assert child_kernels() == []  # kernels not taken were shut down with the block


async def test_kernel_pool_rejects_a_bad_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        async with cw.kernel_pool(0):
            pass


async def test_kernel_pool_fills_ahead_of_need() -> None:
    async with cw.kernel_pool(2) as pool:
        with anyio.fail_after(60):
            await pool.filled()
        assert pool.ready == 2
        assert len(child_kernels()) == 2
        assert await cw.NotebookRunner(nb("add"), a=2) == 4
    assert child_kernels() == []


async def test_the_kernel_sees_its_task_settings_before_any_input() -> None:
    assert await cw.notebook(nb("settings_probe"), cell_timeout=33)() == 33


async def test_overall_timeout_names_the_notebook_and_where_it_was_saved() -> None:
    with pytest.raises(cw.TaskTimeoutError) as caught:
        await cw.notebook(nb("sleeps"), timeout=3)()
    assert caught.value.notebook == nb("sleeps")
    assert caught.value.output_notebook and Path(caught.value.output_notebook).exists()
