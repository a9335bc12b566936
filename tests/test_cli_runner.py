"""The command line's event-loop runner: Ctrl-C cancels the main task, on every Python.

Each test sends SIGINT to this process; the runner under test must turn it
into a cancellation of the coroutine (which sees ``CancelledError`` at its
``await`` and may still await in its clean-up), then ``KeyboardInterrupt``.
``backport`` is the 3.10 path, run on every Python through a plain event
loop; ``run`` is what the commands call (on 3.11+ ``asyncio.run`` does it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from ameyo_callbacks.cli._runner import _cancelled_by_sigint, run

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


def backport(main: Coroutine[Any, Any, Any]) -> Any:
    """The 3.10 path in a loop of its own, closed as ``asyncio.run`` closes one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_cancelled_by_sigint(main))
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()


RUNNERS = [pytest.param(run, id="run"), pytest.param(backport, id="backport")]


@pytest.fixture(autouse=True)
def _default_sigint() -> Iterator[None]:
    """Every test starts and must end with Python's own SIGINT handler.

    Installed here: a suite started in the background (``&`` in a script,
    ``nohup``) inherits an ignored SIGINT, and Python then keeps it ignored.
    What the process had is put back after the test.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def ctrl_c_in(seconds: float) -> None:
    asyncio.get_running_loop().call_later(seconds, os.kill, os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_run_without_ctrl_c_returns_its_value(runner: Runner) -> None:
    async def main() -> int:
        await asyncio.sleep(0)
        return 42

    assert runner(main()) == 42


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    ("second_ctrl_c", "clean_up", "expected"),
    [
        pytest.param(False, 0.01, ["cancelled", "cleaned up"], id="clean-up-runs"),
        pytest.param(True, 30, ["cancelled"], id="second-ctrl-c-stops-a-slow-clean-up"),
    ],
)
def test_ctrl_c_cancels_the_main_task_then_raises_keyboard_interrupt(
    runner: Runner, second_ctrl_c: bool, clean_up: float, expected: list[str]
) -> None:
    """The coroutine is cancelled at its await and cleans up (awaiting too), then Ctrl-C;
    a second Ctrl-C during a slow clean-up raises at once."""
    seen: list[str] = []

    async def main() -> None:
        ctrl_c_in(0.05)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            if second_ctrl_c:
                ctrl_c_in(0.05)
            await asyncio.sleep(clean_up)
            seen.append("cleaned up")
            raise

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner(main())
    assert seen == expected
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("runner", RUNNERS)
def test_ctrl_c_between_two_awaits_waits_for_the_next_await(runner: Runner) -> None:
    """Ctrl-C while the coroutine's own code runs does not break into it there.

    Python 3.10's ``asyncio.run`` raised ``KeyboardInterrupt`` in the middle
    of that code (any line, a half-updated state); the runner delivers it as
    a cancellation at the next ``await``, as 3.11's ``asyncio.Runner`` does.
    """
    seen: list[str] = []

    async def main() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            busy_until = time.monotonic() + 0.2
            while time.monotonic() < busy_until:
                pass
            seen.append("ran to its await")
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        except KeyboardInterrupt:
            seen.append("interrupted mid-code")
            raise

    with pytest.raises(KeyboardInterrupt):
        runner(main())
    assert seen == ["ran to its await", "cancelled"]


def test_an_ignored_sigint_stays_ignored() -> None:
    """A job started with SIGINT ignored (``nohup``, ``&`` in a script) stays uninterruptible."""

    async def main() -> str:
        ctrl_c_in(0.01)
        await asyncio.sleep(0.2)
        return "finished"

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert run(main()) == "finished"
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
