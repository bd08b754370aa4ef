"""What the container executors share, tested without a container: the entry's log protocol
and how the entry process starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cowaitlib.executors.containers import ENVELOPE_MARK, LogLines
from tests import tasks_for_tests as t
from tests.conftest import ROOT


def test_log_lines_are_whole_across_chunks() -> None:
    lines = LogLines()
    text = "première ligne\nsecond\n".encode()
    split = text.index("è".encode()) + 1  # in the middle of a two-byte character
    assert lines.feed(text[:split]) == []
    assert lines.feed(text[split:]) == ["première ligne", "second"]
    assert lines.feed(b"no newline at the end") == []
    assert lines.close() == ["no newline at the end"]
    assert lines.close() == []


def test_a_mark_is_split_off_the_line_it_ends() -> None:
    lines = LogLines()
    got = lines.feed(f"progress 50%{ENVELOPE_MARK}{{}}\n{ENVELOPE_MARK}[]\n".encode())
    assert got == ["progress 50%", ENVELOPE_MARK + "{}", ENVELOPE_MARK + "[]"]


def test_the_entry_leaves_settings_unbuilt_for_a_task_that_reads_none(tmp_path: Path) -> None:
    """A short task's container time is mostly start-up: a plain function task must not pay
    for building the settings models or importing kernel machinery."""
    spec = t.add(a=1, b=2).spec.model_dump_json()
    probe = (
        "import sys; from cowaitlib.entrypoint import main; "
        f"code = main(['env:SPEC', {str(tmp_path / 'result.json')!r}]); "
        "import cowaitlib.config as c; "
        "print(code, c.Settings.__pydantic_complete__, 'cowaitlib.kernel' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"SPEC": spec, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *output, probed = done.stdout.splitlines()
    envelope = json.loads(output[-1].removeprefix(ENVELOPE_MARK))
    assert envelope["status"] == "ok" and envelope["result"] == 3
    assert json.loads((tmp_path / "result.json").read_text()) == envelope
    assert probed == "0 False False"
