"""Function tasks on the in-process executor: results, inputs, join, timeouts, nesting."""

from __future__ import annotations

import datetime as dt

import anyio
import pandas as pd
import pytest

import cowaitlib as cw
from tests import tasks_for_tests as t

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clear_events() -> None:
    t.events.clear()


# --- results and inputs ---------------------------------------------------------------------


async def test_sync_and_async_tasks_return_their_results() -> None:
    assert await t.add(a=2, b=3) == 5
    assert await t.double(x=21) == 42


async def test_inputs_are_coerced_to_annotations() -> None:
    result = await t.typed(when="2021-01-02", flag="true", ratio="2", name=7)
    assert result == {"when": dt.date(2021, 1, 2), "flag": True, "ratio": 2.0, "name": "7"}


def test_bad_inputs_fail_before_the_task_starts() -> None:
    with pytest.raises(cw.InputError, match=r"task 'add': input 'a': .*valid integer.*'x'"):
        t.add(a="x")
    with pytest.raises(cw.InputError, match=r"task 'add' got unknown input 'c'; it takes: a, b"):
        t.add(a=1, c=2)
    with pytest.raises(cw.InputError, match=r"task 'add' is missing required input 'a'"):
        t.add(b=2)
    with pytest.raises(cw.InputError, match="keyword inputs only"):
        t.add(1)  # type: ignore[call-arg]


def test_inputs_that_cannot_cross_the_boundary_fail_at_the_call() -> None:
    with pytest.raises(cw.SerializationError, match="input 'x' of task 'takes_anything'"):
        t.takes_anything(x=object())


async def test_var_keyword_tasks_accept_any_input() -> None:
    assert await t.takes_anything(x=1, y="two") == {"x": 1, "y": "two"}


async def test_input_inside_a_function_task_reads_its_inputs() -> None:
    assert await t.reads_input(fallback="given") == ["given", 5]


def test_input_outside_a_task_gives_the_default() -> None:
    assert cw.input("date", "20200101") == "20200101"
    assert cw.input("maybe", None) is None
    with pytest.raises(cw.InputError, match=r"cowaitlib.input\('date'\) has no default"):
        cw.input("date")


async def test_exit_ends_a_task_with_its_value_and_cannot_be_swallowed() -> None:
    assert await t.exits_early(value=4) == 40
    assert await t.swallow_attempt() == "kept"


async def test_dataframe_result_comes_back_whole() -> None:
    frame = await t.returns_frame(rows=5)
    pd.testing.assert_frame_equal(
        frame, pd.DataFrame({"n": range(5), "half": [i / 2 for i in range(5)]})
    )


# --- failures -----------------------------------------------------------------------------


async def test_failure_raises_task_error_with_remote_details() -> None:
    handle = t.fails(message="bad day")
    with pytest.raises(cw.TaskError) as caught:
        await handle
    error = caught.value
    assert error.task_id == handle.id and error.task_name == "fails"
    assert error.error_type == "ValueError" and error.message == "bad day"
    assert "raise ValueError(message)" in error.traceback
    assert "cowaitlib/worker.py" not in error.traceback  # our own frames are left out
    text = str(error)
    assert f"task 'fails' ({handle.id}) failed: ValueError: bad day" in text


async def test_sync_failure_is_reported_the_same_way() -> None:
    with pytest.raises(cw.TaskError, match="KeyError: 'missing'"):
        await t.sync_fails()


async def test_unserializable_result_fails_in_the_child_naming_the_type() -> None:
    with pytest.raises(
        cw.TaskError,
        match=r"SerializationError: the result of task .returns_unserializable. of type _thread",
    ):
        await t.returns_unserializable()


# --- handles and join ---------------------------------------------------------------------


async def test_handles_start_eagerly_when_a_loop_is_running() -> None:
    handle = t.sleeper(key="eager", seconds=0.01)
    await anyio.sleep(0.1)  # not awaiting the handle
    assert t.events["eager"] == "finished"
    assert await handle == "eager"


def test_handles_start_lazily_without_a_loop() -> None:
    handle = t.sleeper(key="lazy", seconds=0.01)
    assert "lazy" not in t.events
    assert cw.run(handle) == "lazy"
    assert t.events["lazy"] == "finished"


async def test_join_returns_results_in_the_given_order() -> None:
    handles = [t.sleeper(key=f"k{i}", seconds=0.05 * (5 - i)) for i in range(5)]
    assert await cw.join(handles) == [f"k{i}" for i in range(5)]


async def test_join_cancels_the_rest_on_first_failure_and_raises_it() -> None:
    handles = [t.sleeper(key="a"), t.fails(message="first", after=0.05), t.sleeper(key="b")]
    with pytest.raises(cw.TaskError, match="first"):
        await cw.join(handles)
    assert t.events == {"a": "cancelled", "b": "cancelled"}
    assert all(h.done() for h in handles)


async def test_join_with_return_exceptions_gathers_everything() -> None:
    results = await cw.join(
        [t.add(a=1), t.fails(message="x"), t.double(x=2)], return_exceptions=True
    )
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], cw.TaskError) and results[1].message == "x"


async def test_join_limit_bounds_concurrency() -> None:
    results = await cw.join([t.concurrency_probe(key="p") for _ in range(8)], limit=3)
    assert t.events["p"]["max"] == 3
    assert max(results) <= 3
    unlimited = await cw.join([t.concurrency_probe(key="q") for _ in range(8)])
    assert max(unlimited) == 8


async def test_join_rejects_things_that_are_not_handles() -> None:
    with pytest.raises(TypeError, match="item 1 is a int"):
        await cw.join([t.add(a=1), 5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least 1"):
        await cw.join([], limit=0)


async def test_cancelling_the_caller_cancels_its_tasks() -> None:
    handles = [t.sleeper(key="c1"), t.sleeper(key="c2")]
    with anyio.move_on_after(0.2):
        await cw.join(handles)
    assert t.events == {"c1": "cancelled", "c2": "cancelled"}
    single = t.sleeper(key="c3")
    with anyio.move_on_after(0.2):
        await single
    assert t.events["c3"] == "cancelled" and single.done()


# --- timeouts -----------------------------------------------------------------------------


async def test_timeout_stops_the_task_with_a_clear_error() -> None:
    handle = t.sleeper.options(timeout=0.2)(key="slow")
    with pytest.raises(cw.TaskTimeoutError, match=r"timeout of 0.2 s and was cancelled"):
        await handle
    assert t.events["slow"] == "cancelled"


async def test_timeout_applies_to_sync_tasks_too() -> None:
    with anyio.fail_after(5):
        with pytest.raises(cw.TaskTimeoutError):
            await t.blocking_sleep.options(timeout=0.2)(seconds=1.0)


def test_options_are_validated_when_given() -> None:
    with pytest.raises(cw.ConfigError, match=r"options\(\).*'timeout'"):
        t.add.options(timeout=-1)
    with pytest.raises(cw.ConfigError, match="'executor'"):
        t.add.options(executor="moon")


# --- nesting ------------------------------------------------------------------------------


async def test_children_know_their_parent_and_share_its_run() -> None:
    tree = await t.nested_whoami()
    assert tree["child"]["parent"] == tree["me"]
    assert tree["child"]["run"] == tree["run"]


async def test_async_parent_joins_its_children() -> None:
    result = await t.parent_of_doubles(n=4)
    assert result["results"] == [0, 2, 4, 6]
    assert len(result["parents"]) == 1 and result["parents"][0].startswith("parent_of_doubles-")


async def test_sync_parent_runs_children_with_the_blocking_helper() -> None:
    assert await t.sync_parent(n=3) == [1, 2, 3]


async def test_run_refuses_to_nest_inside_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="event loop is already running"):
        cw.run(t.add(a=1))


# --- output -------------------------------------------------------------------------------


async def test_task_output_reaches_the_caller_prefixed(capsys: pytest.CaptureFixture[str]) -> None:
    handle = t.prints(lines=2)
    await handle
    print("caller's own line")
    out = capsys.readouterr().out.splitlines()
    assert out == [f"[{handle.id}] line 0", f"[{handle.id}] line 1", "caller's own line"]


async def test_output_can_be_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    await t.prints.options(logs=False)(lines=2)
    assert capsys.readouterr().out == ""


# --- progress -----------------------------------------------------------------------------


async def test_join_can_show_progress(capsys: pytest.CaptureFixture[str]) -> None:
    await cw.join([t.add(a=1), t.fails(), t.add(a=2)], return_exceptions=True, progress=True)
    err = capsys.readouterr().err
    assert "\rcowaitlib: 1/3 tasks done" in err
    assert err.endswith("cowaitlib: 3/3 tasks done, 1 failed\n")


async def test_progress_is_off_by_default_in_ci(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    await cw.join([t.add(a=1)])
    assert "tasks done" not in capsys.readouterr().err
    cw.configure(progress=True)  # the setting wins over the guess
    await cw.join([t.add(a=1)])
    assert "1/1 tasks done" in capsys.readouterr().err


def test_exit_in_a_plain_script_prints_the_value_and_exits_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text("import cowaitlib as cw\ncw.exit({'v': 1})\nprint('not reached')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout == "{'v': 1}\n"


# --- regressions --------------------------------------------------------------------------


async def test_per_call_options_reach_the_task_and_its_children() -> None:
    assert await t.settings_seen.options(timeout=77)() == {"mine": 77, "child": 77}


async def test_many_sync_parents_with_sync_children_do_not_deadlock() -> None:
    with anyio.fail_after(60):
        results = await cw.join([t.sync_runs_a_child(x=i) for i in range(60)])
    assert results == [i + 1 for i in range(60)]


async def test_local_task_functions_with_one_name_stay_apart() -> None:
    def make(offset: int) -> cw.FunctionTask[int]:
        @cw.task
        def shifted(x: int) -> int:
            return x + offset

        return shifted

    one, two = make(1), make(2)
    assert await cw.join([one(x=1), two(x=1)]) == [2, 3]


async def test_a_child_failure_reads_well_in_the_parent() -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.parent_of_a_failure()
    error = caught.value
    assert error.error_type == "TaskError"
    assert (
        error.message.startswith("task 'fails' (fails-")
        and "ValueError: deep down" in error.message
    )
    assert error.traceback.count("raise ValueError(message)") == 1
