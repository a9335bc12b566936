"""Check what the sdist and the wheel carry: run by ``nox -s build`` after twine check.

The wheel: the package, ``py.typed``, the top-level pytest plugin module, the
LICENSE, the pytest11 entry point, the MIT licence expression and only
known trove classifiers. The sdist: the LICENSE, the tests, the docs.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser

from trove_classifiers import classifiers as known_classifiers


def check_wheel(path: str) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        metadata = Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    needed = (
        "ameyo_callbacks/__init__.py",
        "ameyo_callbacks/py.typed",
        "_ameyo_callbacks_pytestplugin.py",
        f"{dist_info}/licenses/LICENSE",
    )
    problems = [f"wheel lacks {name}" for name in needed if name not in names]
    if "ameyo_callbacks = _ameyo_callbacks_pytestplugin" not in entry_points:
        problems.append("wheel lacks the pytest11 entry point")
    if metadata.get("License-Expression") != "MIT":
        problems.append(f"wheel License-Expression is {metadata.get('License-Expression')!r}")
    problems += [
        f"unknown classifier {c!r}"
        for c in metadata.get_all("Classifier") or []
        if c not in known_classifiers
    ]
    if "Framework :: Pytest" not in (metadata.get_all("Classifier") or []):
        problems.append("wheel lacks the Framework :: Pytest classifier")
    return problems


def check_sdist(path: str) -> list[str]:
    with tarfile.open(path) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    tops = {n.split("/")[0] for n in names}
    return [
        f"sdist lacks {needed}"
        for needed in ("LICENSE", "README.md", "CHANGELOG.md", "tests", "docs", "mkdocs.yml")
        if needed not in tops
    ]


def main(paths: list[str]) -> int:
    problems = []
    for path in paths:
        problems += check_wheel(path) if path.endswith(".whl") else check_sdist(path)
        print(f"checked {path}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
