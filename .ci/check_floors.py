"""Check that `nox -s lowest` installed every direct dependency at its declared floor.

A floor that the lowest-direct resolution cannot install (because another
package asks for more) is a floor no test ever ran against: this says which,
so that it is raised, or what forces it lowered. Run by ``nox -s lowest``.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # the lowest session runs on 3.10; tomli comes with the cli extra there
    import tomli as tomllib

EXTRAS = ("aiohttp", "cli", "fake", "otel")


def direct_requirements(pyproject: dict[str, Any]) -> list[Requirement]:
    project = pyproject["project"]
    texts = list(project["dependencies"])
    for extra in EXTRAS:
        texts += project["optional-dependencies"][extra]
    texts += [t for t in pyproject["dependency-groups"]["test"] if isinstance(t, str)]
    return [Requirement(t) for t in texts]


def main() -> int:
    pyproject = tomllib.loads(Path("pyproject.toml").read_text("utf-8"))
    problems = []
    seen = set()
    for req in direct_requirements(pyproject):
        if req.marker is not None and not req.marker.evaluate():
            continue
        floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
        if not floors or (req.name, floors[0]) in seen:
            continue
        seen.add((req.name, floors[0]))
        try:
            installed = Version(version(req.name))
        except PackageNotFoundError:
            problems.append(f"{req.name}: not installed")
            continue
        mark = "ok" if installed == max(floors) else "ABOVE THE FLOOR"
        print(f"{req.name:<20} floor {max(floors)!s:<10} installed {installed!s:<12} {mark}")
        if installed != max(floors):
            problems.append(
                f"{req.name}: declared >={max(floors)} but {installed} was installed: another "
                f"requirement forces more; raise the floor or lower what forces it"
            )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
