"""Server limits for the fake: a number of workers, and a token-bucket rate limit.

A real AppServer serves a few requests at a time and queues the rest; some
sit behind a rate limiter (nginx's ``limit_req``, an API gateway) that
answers 429 with ``Retry-After``. :class:`ServerLimits` models both, so that
tests and benchmarks can see what a client does to such a server:

- ``workers``: at most this many requests are served at once (the latency,
  ``FakeAmeyo(latency=...)``, is the service time, spent holding a worker);
  requests beyond it wait in arrival order, and each one's wait is recorded
  in :attr:`ServerLimits.queue_delays`.
- ``rate`` (tokens per second) and ``burst`` (the bucket size, default
  ``rate``): each arriving request takes a token; with none left it is
  answered at once with 429 and ``Retry-After: retry_after``, without taking
  a worker, and counted in :attr:`ServerLimits.rejected`. ``reject_after``
  (seconds, default 0) delays that answer: a real server's 429 takes a round
  trip, during which other requests are sent; in-process, a 429 at once comes
  back before the client's other waiting requests have even been sent.

Use it as ``FakeAmeyo(limits=ServerLimits(workers=8))`` (or assign
``fake.limits`` later); the fake consults it for every request to a known
endpoint: the token bucket first (a ``before_request`` hook of the pipeline),
then a worker held around the service (an ``around_service`` hook). A
request the bucket rejects is logged with status 429 and fault None.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from .._fifo import wait_turn
from ._answers import Answer
from ._faults import Fault, fault_response
from ._log import Exchange
from ._routing import Request

__all__ = ["ServerLimits"]

_RECORDED = 1_000_000  # the newest queueing delays and arrivals kept


def _optional_positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        msg = f"{name} must be a number > 0 or None, got {value!r}"
        raise ValueError(msg)
    return float(value)


class ServerLimits:
    """How much the fake server takes: ``workers`` at once, ``rate`` requests a second.

    Both are optional (None: no such limit). ``clock`` is ``time.monotonic``
    unless a test passes its own (the token bucket refills on it).
    Everything recorded is readable while the server runs:
    :attr:`queue_delays` (seconds each admitted request waited for a worker,
    in the order they got one), :attr:`arrivals` (clock time of every request,
    rejected ones included), :attr:`rejected` and :attr:`admitted` counts, and
    :attr:`max_busy` (the most workers busy at once).
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        rate: float | None = None,
        burst: int | None = None,
        retry_after: int = 1,
        reject_after: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers is not None and (type(workers) is not int or workers < 1):
            msg = f"workers must be an int >= 1 or None, got {workers!r}"
            raise ValueError(msg)
        self.workers = workers
        self.rate: float | None = _optional_positive("rate", rate)
        if burst is not None and (type(burst) is not int or burst < 1):
            msg = f"burst must be an int >= 1 or None, got {burst!r}"
            raise ValueError(msg)
        self.burst: int = burst if burst is not None else max(1, math.ceil(self.rate or 1))
        self.retry_after = retry_after
        if (
            isinstance(reject_after, bool)
            or not isinstance(reject_after, (int, float))
            or not (reject_after >= 0)
        ):
            msg = f"reject_after must be a number of seconds >= 0, got {reject_after!r}"
            raise ValueError(msg)
        self.reject_after: float = float(reject_after)
        status, headers, body = fault_response(Fault.rate_limited(retry_after))
        self._answer = Answer(status, tuple(headers), body)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._refilled = clock()
        self._busy = 0
        self._waiting: deque[anyio.Event] = deque()
        self.queue_delays: deque[float] = deque(maxlen=_RECORDED)
        self.arrivals: deque[float] = deque(maxlen=_RECORDED)
        self.rejected: int = 0
        self.admitted: int = 0
        self.max_busy: int = 0

    def __repr__(self) -> str:
        rate = f"{self.rate:g}/s (burst {self.burst})" if self.rate is not None else "none"
        return (
            f"<ServerLimits workers={self.workers} rate={rate} "
            f"admitted={self.admitted} rejected={self.rejected}>"
        )

    def reset(self) -> None:
        """Forget what was recorded and refill the bucket (the limits stay)."""
        with self._lock:
            self.queue_delays.clear()
            self.arrivals.clear()
            self.rejected = self.admitted = 0
            self.max_busy = self._busy
            self._tokens = float(self.burst)
            self._refilled = self._clock()

    async def before_request(self, req: Request, ex: Exchange) -> Answer | None:
        """The pipeline's hook: the 429 answer when the bucket is empty."""
        answer = self.throttle()
        if answer is not None and self.reject_after > 0:
            await anyio.sleep(self.reject_after)
        return answer

    def around_service(self, req: Request, ex: Exchange) -> AbstractAsyncContextManager[Any]:
        """The pipeline's hook: a worker held while the request is served."""
        return self.worker()

    def throttle(self) -> Answer | None:
        """Count an arriving request; the 429 answer if the bucket is empty, else None."""
        now = self._clock()
        with self._lock:
            self.arrivals.append(now)
            if self.rate is not None:
                self._tokens = min(
                    float(self.burst), self._tokens + (now - self._refilled) * self.rate
                )
                self._refilled = now
                if self._tokens < 1.0:
                    self.rejected += 1
                    return self._answer
                self._tokens -= 1.0
            self.admitted += 1
        return None

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[float]:
        """Hold a worker while the block runs (waiting in arrival order); yields the wait."""
        arrived = self._clock()
        if self.workers is not None and (self._busy >= self.workers or self._waiting):
            await wait_turn(self._waiting, self._release)  # _next() counts the worker taken
        else:
            self._busy += 1
        waited = self._clock() - arrived
        self.queue_delays.append(waited)
        self.max_busy = max(self.max_busy, self._busy)
        try:
            yield waited
        finally:
            self._release()

    def _release(self) -> None:
        """Free a worker and hand it on."""
        self._busy -= 1
        self._next()

    def _next(self) -> None:
        """Hand a free worker to the longest-waiting request."""
        if self._waiting and (self.workers is None or self._busy < self.workers):
            self._busy += 1  # taken on the waiter's behalf
            self._waiting.popleft().set()
