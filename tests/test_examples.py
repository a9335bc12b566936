"""Every ```python example in README.md and docs/ runs, against the fake.

The convention (written down in docs/contributing.md):

- A ```python block is a complete program: its imports, its data, its
  ``anyio.run(main)``. It runs as written, except that every
  ``AmeyoCallbacksClient(base_url, session_id=...)`` it builds talks to an
  in-process ``FakeAmeyo.seeded(250)`` (campaigns 6, 7, 8; users "stieve",
  "asha", "ravi", "li", "maria") instead of ``base_url``: no socket, no
  server needed, and the session id of the example is replaced by the fake's.
- A block that defines ``test_*`` functions is a test module: it runs under
  plain pytest in a fresh directory, with no ini file of ours (so an example
  that needs an asyncio mode or a marker must say so itself) and only the
  plugins a user's tests would lean on (anyio's, pytest-asyncio's and ours),
  and each of its tests must pass.
- A block that cannot run (a fragment of a larger program, a sketch of a
  real server's setup) is preceded by ``<!-- no-run: the reason -->``. Use
  it only where running is truly impossible.
- ```sh / ```bash / ```text blocks are not run here.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
from _support import unmeasured_env

import ameyo_callbacks
from ameyo_callbacks.testing import FakeAmeyo

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(\S.*?)\s*-->")


@attrs.frozen
class Example:
    path: Path
    line: int
    code: str
    no_run: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_test_module(self) -> bool:
        tree = ast.parse(self.code)
        return any(
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
            for node in tree.body
        )


def example_files() -> list[Path]:
    docs = ROOT / "docs"
    return [ROOT / "README.md", *(sorted(docs.rglob("*.md")) if docs.is_dir() else [])]


def examples_in(path: Path) -> list[Example]:
    text = path.read_text("utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        reason = NO_RUN.fullmatch(before[-1].strip()) if before else None
        line = text.count("\n", 0, match.start()) + 2  # the block's first code line
        found.append(Example(path, line, match.group(1), reason.group(1) if reason else None))
    return found


EXAMPLES = [example for path in example_files() for example in examples_in(path)]


def wired_client_factory(fake: FakeAmeyo) -> Any:
    """Stands in for AmeyoCallbacksClient: any base URL and session go to ``fake``."""

    def client(base_url: str, **kwargs: Any) -> ameyo_callbacks.AmeyoCallbacksClient:
        assert base_url  # the example still has to say where its server is
        kwargs.pop("session_id", None)
        return fake.client(**kwargs)

    return client


def run_program(example: Example, monkeypatch: pytest.MonkeyPatch) -> str:
    fake = FakeAmeyo.seeded(250)
    monkeypatch.setattr(ameyo_callbacks, "AmeyoCallbacksClient", wired_client_factory(fake))
    code = compile(example.code, example.name, "exec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})  # noqa: S102  (our own documentation)
    return out.getvalue()


#: The pytest plugins a user's test module may lean on: anyio's marker, pytest-asyncio's,
#: and our ``ameyo_fake`` fixture. Only these load (not hypothesis, xdist or respx's,
#: which this environment also has): about a second less for each run.
USER_PLUGINS = ("anyio.pytest_plugin", "pytest_asyncio.plugin", "_ameyo_callbacks_pytestplugin")


def run_test_module(example: Example, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_example.py").write_text(example.code, encoding="utf-8")
    plugins = [arg for name in USER_PLUGINS for arg in ("-p", name)]
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
        env=unmeasured_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
    )


def test_the_collector_finds_the_quickstart() -> None:
    """The collector sees README's blocks (an empty collection would pass every check)."""
    readme = [e for e in EXAMPLES if e.path.name == "README.md"]
    assert readme
    assert any("async def main" in e.code and e.no_run is None for e in readme)


# The runnable blocks on each page. A block lost when text moves between the
# README and the docs, or a page the collector stops reading, fails the test
# below: change a count only together with its page.
RUNNABLE_PER_PAGE = {
    "README.md": 1,
    "docs/errors.md": 1,
    "docs/getting-started.md": 3,
    "docs/guides/export.md": 3,
    "docs/guides/live-lists.md": 3,
    "docs/guides/production.md": 2,
    "docs/guides/purge.md": 3,
    "docs/guides/observability.md": 2,
    "docs/guides/testing.md": 4,
}


def test_every_page_keeps_its_examples() -> None:
    """The collector finds exactly the runnable blocks each page is known to hold."""
    found = Counter(e.path.relative_to(ROOT).as_posix() for e in EXAMPLES if e.no_run is None)
    assert dict(found) == RUNNABLE_PER_PAGE


def test_the_site_lists_every_page() -> None:
    """Every page under docs/ is in mkdocs.yml's nav (a page left out is built but unreachable)."""
    nav = set(
        re.findall(r"^\s*- [^:\n]+: (\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text("utf-8"), re.M)
    )
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert nav
    assert pages == nav


def test_no_run_marks_give_a_reason() -> None:
    """A ``no-run`` mark without a reason does not count as one (the block then runs)."""
    path_text = "<!-- no-run: -->\n```python\nx = 1\n```\n"
    assert not NO_RUN.fullmatch(path_text.splitlines()[0])


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs(example: Example, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The block runs as written against the fake (or is marked no-run with a reason)."""
    if example.no_run is not None:
        pytest.skip(f"no-run: {example.no_run}")
    if example.is_test_module:
        result = run_test_module(example, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert " passed" in result.stdout
    else:
        run_program(example, monkeypatch)


def test_quickstart_prints_what_it_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Quickstart finds asha's callbacks on the fake and reports the missing id."""
    (quickstart,) = [
        e for e in EXAMPLES if e.path.name == "README.md" and "CallbackNotFoundError" in e.code
    ]
    printed = run_program(quickstart, monkeypatch).splitlines()
    assert printed[0] == "first page: 10 callbacks"
    records = [line for line in printed[1:] if line.startswith("d806-")]
    assert len(records) > 10  # every page, not only the first
    assert "no such callback: d810-59423051-cm-0" in printed
    assert "{'deleted': 2, 'not_found': 0, 'failed': 0, 'not_attempted': 0}" in printed
