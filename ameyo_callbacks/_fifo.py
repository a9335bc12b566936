"""Waiting in line for a permit, safe against cancellation.

Both the client's adaptive concurrency limit (``_limits``) and the fake
server's workers (``testing._limits``) hand permits to waiters in arrival
order: whoever frees a permit counts it as taken for the longest waiter and
sets that waiter's event. This is the waiter's half, in one place, so that the
fake (which never imports the client) and the client share it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import anyio

__all__ = ["wait_turn"]


async def wait_turn(waiters: deque[anyio.Event], pass_on: Callable[[], None]) -> None:
    """Queue at the end of ``waiters`` and wait until handed a permit.

    If the wait is cancelled while still queued, the waiter just leaves the
    line. If it is cancelled after being handed a permit (the event was set,
    the permit counted as taken), ``pass_on`` gives that permit back to the
    next waiter before the cancellation propagates, so no permit is lost.
    """
    turn = anyio.Event()
    waiters.append(turn)
    try:
        await turn.wait()
    except BaseException:
        if turn in waiters:
            waiters.remove(turn)
        else:  # handed a permit as we were cancelled: pass it on
            pass_on()
        raise
