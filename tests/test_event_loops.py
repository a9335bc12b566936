"""No asyncio event loop outlives the test run that made it, at the declared pytest-asyncio.

pytest-asyncio before 1.4 (its issue #724) fetched the "old" loop with
``asyncio.get_event_loop()`` around every async test. On the main thread of a
fresh process that call *creates* a loop, which pytest-asyncio then left as the
current loop, never closed. A sync test that later calls ``asyncio.run()``
(every CLI command does, through click's CliRunner) unsets it, and the garbage
collector finds it at some later moment, inside whatever test is running then:
an unraisable ``ResourceWarning`` for the loop's self-pipe (an unclosed AF_UNIX
socket), an error under ``-W error``. That was the flaky failure of
``nox -s lowest`` at pytest-asyncio 1.0. Here the same sequence runs in a child
pytest with the collection forced, so that a leaking pytest-asyncio fails every
time instead of one run in two.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _support import unmeasured_env

INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

SEQUENCE = """\
import asyncio
import gc


async def test_an_async_test_runs_first():
    await asyncio.sleep(0)


def test_then_a_sync_test_runs_asyncio_run_and_collects():
    async def main():
        return 7

    assert asyncio.run(main()) == 7
    gc.collect()  # any loop left unclosed is found here, in this test
"""


def test_async_test_then_asyncio_run_leaves_no_unclosed_loop(tmp_path: Path) -> None:
    """An async test, then asyncio.run() and gc in a sync test: both pass under -W error."""
    (tmp_path / "pytest.ini").write_text(INI, encoding="utf-8")
    (tmp_path / "test_sequence.py").write_text(SEQUENCE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_sequence.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=unmeasured_env(),  # the child runs none of the package: nothing to measure
    )
    report = done.stdout + done.stderr
    assert "unclosed" not in report, report
    assert done.returncode == 0, report
    assert "2 passed" in done.stdout, report
