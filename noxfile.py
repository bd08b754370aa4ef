"""Sessions for tests, lint, type checking, the demo and the benchmarks: `nox -s NAME`."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (pass pytest arguments after --)."""
    session.install("-e", ".[dev,docker,kubernetes]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "examples", "bench", "scripts", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "src", "tests", "examples", "bench", "scripts", "noxfile.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev,docker,kubernetes]")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("python", "examples/volume/demo.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("python", "bench/notebooks.py", *session.posargs)
