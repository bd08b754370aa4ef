"""The command a task's container runs (internal, not a user command):

    python -m cowaitlib.entrypoint SPEC RESULT_FILE    Docker: SPEC is a file copied in, or
                                                       env:NAME; the result is written to
                                                       RESULT_FILE, and printed as the log's
                                                       last line when small
    python -m cowaitlib.entrypoint --kubernetes             a pod: see executors.kubernetes

A module of its own, never imported by the package, so `-m` runs it without a second copy of
any module. The exit code is 0 whenever a result envelope was written, even for a failed task:
the envelope says how the task went.
"""

import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

#: Envelopes up to this size are also printed to the log, the executor's quick way back.
LOGGED_ENVELOPE_LIMIT = 64 * 1024


def _terminate(signum: int, frame: object) -> None:
    # Unwinding stops child tasks and kernels; a sync task's thread cannot be interrupted, so
    # if unwinding has not ended the process in 10 s, end it anyway.
    watchdog = threading.Timer(10, os._exit, args=(128 + signum,))
    watchdog.daemon = True
    watchdog.start()
    sys.exit(128 + signum)


def main(argv: list[str]) -> int:
    # As PID 1 a process ignores SIGTERM unless it handles it: stop promptly when the pod or
    # container is stopped, unwinding so that kernels and child tasks are cleaned up.
    signal.signal(signal.SIGTERM, _terminate)
    # Start-up and shutdown are most of a short task's time in its container. The garbage
    # collector does nothing useful while modules are imported (they live until the end), nor
    # at exit (the container's memory goes with it): it is off while importing, and what
    # exists then (and at the end) is frozen out of its reach. The task runs with it on.
    gc.disable()
    try:
        if argv == ["--kubernetes"]:
            from cowaitlib.executors.kubernetes import pod_main as run
        else:
            spec_source, result_file = argv
            run = _prepare_docker_task(spec_source, Path(result_file))
    finally:
        gc.freeze()
        gc.enable()
    try:
        return run()
    finally:
        gc.freeze()


def _prepare_docker_task(spec_source: str, result_file: Path) -> Callable[[], int]:
    from cowaitlib.spec import TaskSpec
    from cowaitlib.worker import run_in_this_process

    if spec_source.startswith("env:"):
        text = os.environ[spec_source[len("env:") :]]
    else:
        text = Path(spec_source).read_text()
    spec = TaskSpec.model_validate_json(text)

    def run() -> int:
        envelope = run_in_this_process(spec).model_dump_json()
        result_file.parent.mkdir(parents=True, exist_ok=True)
        result_file.write_text(envelope)  # what the executor reads if the log line is missing
        if len(envelope) <= LOGGED_ENVELOPE_LIMIT:
            from cowaitlib.executors.containers import ENVELOPE_MARK

            print(ENVELOPE_MARK + envelope, flush=True)
        return 0

    return run


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
