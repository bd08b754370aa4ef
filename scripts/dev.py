"""One entry point for people and CI, needing nothing but Python 3.10+:

    python3 scripts/dev.py demo     # run the volume example end to end
    python3 scripts/dev.py test     # run the whole test suite
    python3 scripts/dev.py bench    # notebook benchmark against papermill (see bench/)
    python3 scripts/dev.py bench-docker       # Docker executor overhead against `docker run`
    python3 scripts/dev.py bench-kubernetes   # Kubernetes Jobs against kubectl

It makes `.venv/` beside the project (once), installs the project into it with its development
extras (again only when pyproject.toml changed), then runs the command there. Extra arguments go
to the underlying tool (pytest for `test`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
EXTRAS = "dev,docker,kubernetes"

COMMANDS = {
    "demo": ["examples/volume/demo.py"],
    "test": ["-m", "pytest"],
    "bench": ["bench/notebooks.py"],
    "bench-docker": ["bench/docker_overhead.py"],
    "bench-kubernetes": ["bench/kubernetes_jobs.py"],
}


def ensure_environment() -> None:
    if not PYTHON.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(
                f"dev.py: could not create a virtual environment ({exc}); "
                "on Debian/Ubuntu: apt-get install python3-venv"
            )
    stamp = VENV / ".cowaitlib-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + EXTRAS.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("dev.py: installing cowaitlib and its development tools into .venv", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f".[{EXTRAS}]"], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_environment()
    command = [str(PYTHON), *COMMANDS[argv[0]], *argv[1:]]
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
