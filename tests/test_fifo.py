"""The shared waiter's half of a first-come, first-served permit queue (``_fifo.wait_turn``)."""

from __future__ import annotations

import asyncio
from collections import deque

import anyio
import pytest

from ameyo_callbacks._fifo import wait_turn


async def test_a_waiter_handed_its_turn_returns() -> None:
    """Setting the longest waiter's event ends its wait; nothing is passed on."""
    waiters: deque[anyio.Event] = deque()
    passed: list[str] = []
    done: list[str] = []

    async def waiter(name: str) -> None:
        await wait_turn(waiters, lambda: passed.append(name))
        done.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "first")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter, "second")
        await anyio.wait_all_tasks_blocked()
        assert len(waiters) == 2
        waiters.popleft().set()
        await anyio.wait_all_tasks_blocked()
        assert done == ["first"]
        waiters.popleft().set()
    assert done == ["first", "second"]
    assert passed == []


async def test_a_waiter_cancelled_in_line_just_leaves() -> None:
    """Cancelled while still queued: it leaves the line and passes nothing on."""
    waiters: deque[anyio.Event] = deque()
    passed: list[int] = []
    with anyio.move_on_after(0.01) as scope:
        await wait_turn(waiters, lambda: passed.append(1))
        pytest.fail("nobody handed a turn")
    assert scope.cancelled_caught
    assert not waiters
    assert passed == []


async def test_a_waiter_cancelled_after_its_turn_came_passes_it_on() -> None:
    """Handed a permit and cancelled before it resumed: ``pass_on`` gives the permit back.

    anyio does not cancel a task whose wait is already over, but asyncio's own
    ``Task.cancel`` (``asyncio.timeout``, ``wait_for``) does, so this can happen.
    """
    waiters: deque[anyio.Event] = deque()
    passed: list[int] = []
    task = asyncio.ensure_future(wait_turn(waiters, lambda: passed.append(1)))
    await anyio.wait_all_tasks_blocked()
    waiters.popleft().set()  # the hander counts the permit taken ...
    task.cancel()  # ... and the waiter is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert passed == [1]
    assert not waiters
