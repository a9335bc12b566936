"""Running a command's event loop so that Ctrl-C is a cancellation, on every Python.

Python 3.11's ``asyncio.run`` handles SIGINT by cancelling the main task
(``asyncio.Runner``): the interrupt reaches the code at an ``await``, task
groups and ``finally`` blocks unwind as for any cancellation, and the run
then raises ``KeyboardInterrupt``. Python 3.10's raises ``KeyboardInterrupt``
wherever the main thread happens to be, inside the event loop's own code
too, and then waits for every task to finish cancelling: a task caught
half-way can keep that wait going for ever (an interrupted export seen
hanging, not exiting, on 3.10 under load). :func:`run` gives 3.10 the
3.11 behaviour: the first Ctrl-C cancels the main task, a second one raises
``KeyboardInterrupt`` at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with Ctrl-C cancelling ``main`` (then ``KeyboardInterrupt``)."""
    if sys.version_info >= (3, 11) or not _sigint_is_default():
        # 3.11+ does this itself; an ignored (or custom) SIGINT is left as it is.
        return asyncio.run(main)
    return asyncio.run(_cancelled_by_sigint(main))


def _sigint_is_default() -> bool:
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


async def _cancelled_by_sigint(main: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses > 1:  # the second Ctrl-C: stop waiting for the clean-up
            raise KeyboardInterrupt
        task.cancel()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await task
    except asyncio.CancelledError:
        if presses == 1:  # the clean-up is over: say why the run ended
            raise KeyboardInterrupt from None
        raise  # not ours, or asyncio.run cancelling what a second Ctrl-C left
    finally:
        loop.remove_signal_handler(signal.SIGINT)
