"""The notebooks tested with ordinary pytest: await the runner, check the known volume."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from trades import expected_volume

import cowaitlib as cw

HERE = Path(__file__).parent

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_compute_volume() -> None:
    volume = await cw.NotebookRunner(HERE / "volume.ipynb", date="20210101")
    assert volume == expected_volume("20210101")


async def test_other_symbol() -> None:
    volume = await cw.NotebookRunner(HERE / "volume.ipynb", date="20210101", symbol="ETHUSD")
    assert volume == expected_volume("20210101", "ETHUSD")


async def test_batch_runs_one_child_per_day_and_charts_them(tmp_path: Path) -> None:
    with cw.override(output_dir=str(tmp_path)):
        runner = cw.NotebookRunner(HERE / "notebook_batch.ipynb", start_day="7", end_day="9")
        volumes = await runner
    assert volumes == {d: expected_volume(d) for d in ["20200107", "20200108", "20200109"]}
    saved = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert saved == sorted([f"{runner.id}.ipynb"] + [p for p in saved if p.startswith("volume-")])
    assert len(saved) == 4  # the batch notebook and its three children
    executed = nbformat.read(tmp_path / f"{runner.id}.ipynb", as_version=4)
    images = [
        o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) == 1  # the chart is in the saved notebook


def test_batch_notebook_runs_interactively_with_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In stock Jupyter (no task around it), "Run All" uses the defaults and stops at exit."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(HERE / "notebook_batch.ipynb", as_version=4)
    client = NotebookClient(notebook, resources={"metadata": {"path": str(HERE)}})
    monkeypatch.setenv("COWAITLIB_OUTPUT_DIR", str(tmp_path))  # reaches the kernel's children
    with pytest.raises(CellExecutionError) as caught:
        client.execute()
    assert caught.value.ename == "TaskExit"
    printed = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    total = sum(expected_volume(f"202001{day:02d}") for day in range(1, 11))
    assert f"total:    {total:>12,}" in printed
    assert len(list(tmp_path.glob("volume-*.ipynb"))) == 10
