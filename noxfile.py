"""Every check this project runs.

``nox`` runs tests, lint and typecheck; CI (``.ci/run``) adds ``thorough``,
``lowest``, ``build``, ``verifytypes`` and ``docs``; ``nox -s bench`` runs the
benchmarks.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
ROOT = Path(__file__).parent

nox.options.sessions = ["tests", "lint", "typecheck"]
# A Python of 3.10 to 3.13 that is missing fails the run instead of being
# skipped: a green CI must mean every supported Python passed.
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True

# pyenv keeps 3.10 to 3.13 on these machines, but its shims only answer for
# the selected version: put every installed 3.10+ straight on PATH.
for _bin in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9].*/bin"))):
    if _bin not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ.get('PATH', '')}"

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")


#: pytest-xdist: one worker per core (2 on the project's machines).
# worksteal: a worker that runs out of tests takes some of the other's (the slow
# subprocess and socket tests would otherwise leave one core idle at the end)
XDIST = ("-n", "logical", "--dist", "worksteal")

#: The test sessions write bytecode caches whatever the caller's environment
# says. uv installs without .pyc files, and with PYTHONDONTWRITEBYTECODE set
# (as on the project's machines) every Python the suite starts (two xdist
# workers, some 40 command-line, import-check and doc-example children)
# compiled every module it imported from source: about a second of CPU each,
# some 15% of the suite. The caches land in the session's own virtualenv and
# in __pycache__ folders that .gitignore (and so the sdist) leaves out.
WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest on every installed Python, over every core, with branch coverage of the package.

    Hypothesis runs its default profile (every property test and state
    machine, at a budget that takes seconds); ``nox -s thorough`` runs the
    full budgets.
    """
    session.install("-e", ".[cli]", *TEST_DEPS)
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *XDIST, *session.posargs, env=WRITE_BYTECODE)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report", "--fail-under=97")


@nox.session(python="3.12")
def thorough(session: nox.Session) -> None:
    """The test modules that hold property tests and state machines, at their full budgets.

    ``HYPOTHESIS_PROFILE=thorough`` gives each property test the budget it
    names (``tests/_support.examples``), ten times the default's.
    """
    session.install("-e", ".[cli]", *TEST_DEPS)
    modules = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").glob("test_*.py")
        if "from hypothesis" in path.read_text(encoding="utf-8")
    )
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        *XDIST,
        *modules,
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "thorough", **WRITE_BYTECODE},
    )


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    # exceptiongroup, tomli: mypy checks the Python 3.10 branches (python_version = "3.10")
    session.install("-e", ".[cli]", "mypy>=1.13", "exceptiongroup>=1.2", "tomli>=1.1", *TEST_DEPS)
    session.run("mypy", "--strict", "ameyo_callbacks", "_ameyo_callbacks_pytestplugin.py")


@nox.session(python="3.12")
def bench(session: nox.Session) -> None:
    """The benchmarks: ratios against plain httpx on the same loopback server.

    ``nox -s bench -- b2`` runs one; ``-- --runs 5`` takes medians of 5 runs.
    uvloop and httptools make the fake server (uvicorn, its own process) fast
    enough that the client is what gets measured.
    """
    # .[cli] brings the aiohttp extra: B1, B3 and B5 measure both stacks
    session.install("-e", ".[cli]", *TEST_DEPS, "uvloop>=0.19", "httptools>=0.6")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHONS[0], venv_backend="uv", reuse_venv=False)
def lowest(session: nox.Session) -> None:
    """The suite on the oldest Python with every direct dependency at its declared floor.

    uv's ``--resolution lowest-direct`` installs the lowest version that each
    floor allows (indirect dependencies at their newest); a fresh virtualenv
    every time, so nothing newer is left over. ``.ci/check_floors.py`` then
    fails if some floor could not be installed (another package forcing
    more), since no test would have run against it.
    """
    session.install("--resolution", "lowest-direct", "-e", ".[cli,fake,otel]", *TEST_DEPS)
    session.run("python", ".ci/check_floors.py")
    session.run("pytest", "-p", "no:cacheprovider", *XDIST, *session.posargs, env=WRITE_BYTECODE)


@nox.session(python="3.12")
def build(session: nox.Session) -> None:
    """sdist and wheel, checked: twine check --strict, check-wheel-contents, LICENSE in both."""
    session.install(
        "uv>=0.5",  # uv build, from this session's own virtualenv (CI has no uv on PATH)
        "twine>=6.1",
        "check-wheel-contents>=0.6",
        "trove-classifiers>=2024.10",
        "packaging>=24",
    )
    with tempfile.TemporaryDirectory() as out:
        session.run("uv", "build", "--out-dir", out)
        dists = sorted(glob.glob(os.path.join(out, "*")))
        session.run("twine", "check", "--strict", *dists)
        wheels = [d for d in dists if d.endswith(".whl")]
        session.run(
            "check-wheel-contents",
            "--toplevel",
            "ameyo_callbacks,_ameyo_callbacks_pytestplugin.py",
            *wheels,
        )
        session.run("python", ".ci/check_dist.py", *dists)


@nox.session(python="3.12")
def verifytypes(session: nox.Session) -> None:
    """pyright --verifytypes: at least 99% of the public API has known types."""
    session.install(".[cli,fake]", "pyright[nodejs]>=1.1.390")
    out = session.run(
        "pyright",
        "--verifytypes",
        "ameyo_callbacks",
        "--ignoreexternal",
        "--outputjson",
        silent=True,
        success_codes=[0, 1],
    )
    report = json.loads(str(out))["typeCompleteness"]
    score = report["completenessScore"]
    for symbol in report["symbols"]:
        if not symbol["isTypeKnown"] and symbol["isExported"]:
            session.log(f"type not known: {symbol['name']}")
    session.log(f"pyright --verifytypes completeness: {score:.2%}")
    if score < 0.99:
        session.error(f"type completeness {score:.2%} is below 99%")


@nox.session(python="3.12")
def docs(session: nox.Session) -> None:
    """The documentation site: mkdocs build --strict (API reference from the docstrings)."""
    session.install("-e", ".[cli,fake]", *nox.project.dependency_groups(PYPROJECT, "docs"))
    with tempfile.TemporaryDirectory() as site:
        session.run(
            "mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"}
        )
