"""Every check this project runs: ``nox`` (tests, lint, typecheck), ``nox -s bench``."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
ROOT = Path(__file__).parent

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = False  # skip Pythons this machine lacks
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True

# pyenv keeps 3.10 to 3.13 on these machines, but its shims only answer for
# the selected version: put every installed 3.10+ straight on PATH.
for _bin in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9].*/bin"))):
    if _bin not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ.get('PATH', '')}"

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest on every installed Python, with branch coverage of the package."""
    session.install("-e", ".[cli]", *TEST_DEPS)
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report", "--fail-under=95")


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    # exceptiongroup: mypy checks the Python 3.10 branch (python_version = "3.10")
    session.install("-e", ".[cli]", "mypy>=1.13", "exceptiongroup>=1.2", *TEST_DEPS)
    session.run("mypy", "--strict", "ameyo_callbacks")


@nox.session(python="3.12")
def bench(session: nox.Session) -> None:
    """The benchmarks: ratios against plain httpx on the same loopback server.

    ``nox -s bench -- b2`` runs one; ``-- --runs 5`` takes medians of 5 runs.
    uvloop and httptools make the fake server (uvicorn, its own process) fast
    enough that the client is what gets measured.
    """
    session.install("-e", ".[cli]", *TEST_DEPS, "uvloop>=0.19", "httptools>=0.6")
    session.run("python", "benchmarks/run.py", *session.posargs)
