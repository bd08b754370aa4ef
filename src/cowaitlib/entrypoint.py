"""The command a task's container runs (internal, not a user command):

    python -m cowaitlib.entrypoint SPEC_FILE RESULT_FILE

A module of its own, never imported by the package, so `-m` runs it without a second copy of
`worker` (see `worker.main`).
"""

import sys

from cowaitlib.worker import main

if __name__ == "__main__":
    sys.exit(main())
