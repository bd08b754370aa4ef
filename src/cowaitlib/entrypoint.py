"""The command a task's container runs (internal, not a user command):

    python -m cowaitlib.entrypoint SPEC RESULT_FILE    Docker: SPEC is a file copied in, or
                                                       env:NAME; the result is copied out
    python -m cowaitlib.entrypoint --kubernetes             a pod: see executors.kubernetes

A module of its own, never imported by the package, so `-m` runs it without a second copy of
any module. The exit code is 0 whenever a result envelope was written, even for a failed task:
the envelope says how the task went.
"""

import os
import signal
import sys
import threading
from pathlib import Path


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
    if argv == ["--kubernetes"]:
        from cowaitlib.executors.kubernetes import pod_main

        return pod_main()
    from cowaitlib.spec import TaskSpec
    from cowaitlib.worker import run_in_this_process

    spec_source, result_file = argv
    if spec_source.startswith("env:"):
        text = os.environ[spec_source[len("env:") :]]
    else:
        text = Path(spec_source).read_text()
    envelope = run_in_this_process(TaskSpec.model_validate_json(text))
    Path(result_file).parent.mkdir(parents=True, exist_ok=True)
    Path(result_file).write_text(envelope.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
