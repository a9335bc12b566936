"""What keeps the server healthy: a rate limit, slowing down when throttled, adaptive concurrency.

Two services, both on the client's :class:`~ameyo_callbacks._retry.Clock`
(tests swap in a fake one) and on anyio (asyncio and trio alike):

- :class:`RequestLimits`, one per client, paces every request the client
  sends (lists, deletes, logins, retries). Two rates apply, the lower wins:

  - ``max_rate``, the user's: requests per second, evenly spaced (one every
    ``1 / max_rate`` seconds, no burst), never exceeded;
  - the *throttled rate*, the client's own (on by default): when the server
    throttles (a 429, or a 503 with ``Retry-After``) it drops to 0.7x the
    rate the server was admitting (successful answers in the last second),
    then climbs back along a cubic curve while requests succeed, as the AWS
    SDKs' "adaptive" retry mode does. Until the first throttle, and once the
    curve is far above what the server last admitted, it does not apply.

  A paced request takes the next free slot; when :class:`BackoffGate` holds
  every request for a ``Retry-After``, the waiting requests take consecutive
  slots from the moment it opens, so they resume spread out, not all at once.

- :class:`AdaptiveConcurrency`, one per bulk delete with
  ``concurrency="auto"``: how many deletes may be in flight. It starts at 1,
  adds one each round trip while the server's latency stays near its unloaded
  baseline and the limit is in use, and backs off multiplicatively when the
  latency inflates (the server is queueing) or the server throttles (AIMD, as
  in Vector's adaptive request concurrency and Netflix's concurrency-limits).
  It learns from every attempt the client sends, through
  :meth:`RequestLimits.watch`.

Why not a library: aiolimiter and asynciolimiter are asyncio-only; the
anyio-based ones (aiometer schedules a whole run of tasks, rate-control is
little used) neither take an injectable clock nor share one rate across
unrelated calls. What is here is small and tested.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

import anyio

from . import _tracing
from ._checks import check_float, check_int
from ._fifo import wait_turn
from ._retry import BackoffGate, Clock

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "AdaptiveConcurrency",
    "LatencyWatcher",
    "RequestLimits",
    "check_max_rate",
    "is_throttle",
]

logger = logging.getLogger("ameyo_callbacks")

#: The upper bound of ``concurrency="auto"`` unless the client says otherwise.
DEFAULT_MAX_CONCURRENCY = 32

# The throttled rate (AWS SDK adaptive mode: beta 0.7, cubic scale 0.4, floor 0.5/s).
_BETA = 0.7  # after a throttle: this fraction of what the server admitted
_CUBIC_SCALE = 0.4  # how fast the rate climbs back: C in C * (t - K) ** 3 + W_max
_MIN_RATE = 1.0  # requests per second, the floor (a throttle with nothing admitted)
_RELEASE = 10.0  # the throttled rate stops applying above this many times W_max ...
_RELEASE_FLOOR = 100.0  # ... and above this many requests per second
_WINDOW = 1.0  # seconds of successful requests (by send time) that measure the admitted rate

# Adaptive concurrency.
_TOLERANCE = 0.08  # a round's mean RTT above baseline * (1 + this) is "inflated"
_LATENCY_DECREASE = 0.9  # the limit after inflated latency
_THROTTLE_DECREASE = 0.75  # the limit after a 429 / 503 Retry-After
_BASELINE_ROUNDS = 30  # the baseline: the least round mean RTT of this many recent rounds
_PROBE_STEP = 0.15  # the increase per round near the limit that last inflated (else 1)
_INFLATED_ROUNDS = 2  # this many inflated rounds in a row mean queueing (one may be noise)
_QUEUED = 0.75  # ... and so does the queue they imply: limit * (1 - baseline / mean)
_ROUND_SAMPLES = 8  # a round has at least this many answers, and `limit` of them (twice
# that once latency has inflated: near the knee a round must show the queue)


def check_max_rate(value: object) -> float | None:
    """None, or a number of requests per second > 0."""
    rate = check_float("max_rate", value, allow_none=True)
    if rate is not None and rate <= 0:
        msg = f"max_rate must be > 0 requests per second (or None for no limit), got {value!r}"
        raise ValueError(msg)
    return rate


def is_throttle(status: int, headers: Mapping[str, str]) -> bool:
    """A 429, or a 503 that says when to come back: the server asks for fewer requests."""
    if status == 429:
        return True
    return status == 503 and any(name.lower() == "retry-after" for name in headers)


class LatencyWatcher(Protocol):
    """What :meth:`RequestLimits.watch` feeds: one call per answered attempt."""

    def sample(self, sent: float, rtt: float, *, throttled: bool) -> None:
        """An attempt sent at clock time ``sent`` was answered ``rtt`` seconds later."""
        ...


class RequestLimits:
    """The pace of every request of one client: ``max_rate`` and the throttled rate.

    The client calls :meth:`acquire` right before each send (after the back-off
    gate) and :meth:`observe` with each answer's status. See the module
    docstring for the two rates.
    """

    __slots__ = (
        "_adaptive",
        "_admitted",
        "_clock",
        "_cut_at",
        "_cut_cap",
        "_cut_count",
        "_cut_sent",
        "_fill",
        "_gate",
        "_k",
        "_max_rate",
        "_next",
        "_peak",
        "_watchers",
    )

    def __init__(
        self,
        clock: Clock,
        gate: BackoffGate,
        *,
        max_rate: float | None = None,
        adaptive: bool = True,
    ) -> None:
        self._clock = clock
        self._gate = gate
        self._max_rate = check_max_rate(max_rate)
        self._adaptive = adaptive
        self._next = -math.inf  # the next free slot
        self._admitted: deque[float] = deque()  # send times of successful requests
        self._fill: float | None = None  # the throttled rate; None: not throttled
        self._peak = 0.0  # W_max: what the server admitted at the last throttle
        self._k = 0.0  # seconds from the last throttle until the curve is back at W_max
        self._cut_at = -math.inf  # clock time of the last throttle that lowered the rate
        self._cut_sent = -math.inf  # ... and the send time of the request it answered
        self._cut_cap = math.inf  # the rate in force before that cut
        self._cut_count = 0  # successes sent in the second before the throttled request
        self._watchers: list[LatencyWatcher] = []

    @property
    def max_rate(self) -> float | None:
        """The user's limit, requests per second (None: none)."""
        return self._max_rate

    @property
    def throttled_rate(self) -> float | None:
        """The client's own lowered rate after the server throttled (None: not lowered)."""
        return self._fill

    @property
    def rate(self) -> float | None:
        """The rate requests go at now: the lower of the two (None: as fast as they come)."""
        user, fill = self._max_rate, self._fill
        if fill is None:
            return user
        return fill if user is None else min(user, fill)

    def admitted_rate(self) -> float:
        """Successful requests per second, sent in the last second (measured when adaptive)."""
        now = self._clock.now()
        return sum(1 for t in self._admitted if t > now - _WINDOW) / _WINDOW

    # -- pacing --------------------------------------------------------------

    async def acquire(self) -> float:
        """Wait for this request's slot (and an open gate); the clock time it may go.

        Unpaced (no rate applies), it returns at once. Paced, it takes the
        next free slot, one interval after the previous one; a slot that
        falls inside a gate's pause is given up and a new one taken once the
        gate opens.
        """
        clock = self._clock
        while True:
            rate = self.rate
            now = clock.now()
            if rate is None:
                return now
            interval = 1.0 / rate
            slot = max(now, self._next)
            self._next = slot + interval
            if slot > now:
                try:
                    await clock.sleep(slot - now)
                except BaseException:
                    if self._next == slot + interval:  # nobody queued behind: give it back
                        self._next = slot
                    raise
                now = clock.now()
            if self._gate.not_before <= now:
                return now
            await self._gate.wait()

    # -- feedback ------------------------------------------------------------

    def observe(self, sent: float, status: int, headers: Mapping[str, str]) -> None:
        """An answer to the request :meth:`acquire` let go at ``sent``."""
        throttled = is_throttle(status, headers)
        if not self._watchers and not self._adaptive:
            return
        now = self._clock.now()
        for watcher in self._watchers:
            watcher.sample(sent, now - sent, throttled=throttled)
        if not self._adaptive:
            return
        if throttled:
            self._throttled(sent, now, status)
            return
        self._admitted.append(sent)
        self._prune(now)
        if self._fill is None:
            return
        if self._cut_sent - _WINDOW < sent <= self._cut_sent or (
            self._cut_sent < sent < self._cut_at
        ):
            # sent before the throttle, answered after it: the server admitted it too
            self._cut_count += 1
            self._set_peak(self._cut_count / _WINDOW)
        self._climb(now)

    @contextmanager
    def watch(self, watcher: LatencyWatcher) -> Iterator[None]:
        """Feed ``watcher`` every answered attempt's round trip while the block runs."""
        self._watchers.append(watcher)
        try:
            yield
        finally:
            self._watchers.remove(watcher)

    def _prune(self, now: float) -> None:
        # kept for two windows: a request's answer can come a while after it was sent
        admitted, horizon = self._admitted, now - 2 * _WINDOW
        while admitted and admitted[0] <= horizon:
            admitted.popleft()

    def _set_peak(self, admitted: float) -> None:
        """W_max from what the server admitted; the rate restarts at 0.7 x W_max."""
        self._peak = max(_MIN_RATE, min(admitted, self._cut_cap))
        self._fill = max(self._fill or _MIN_RATE, self._peak * _BETA)
        self._k = (self._peak * (1.0 - _BETA) / _CUBIC_SCALE) ** (1.0 / 3.0)

    def _throttled(self, sent: float, now: float, status: int) -> None:
        if sent < self._cut_at:
            return  # sent before the last cut: it tells nothing about the lowered rate
        self._prune(now)
        # Successful requests sent in the second before this one; those still in
        # flight are counted as their answers come (observe).
        count = sum(1 for t in self._admitted if sent - _WINDOW < t <= sent)
        self._cut_cap = math.inf if self._fill is None else self._fill
        self._cut_count, self._cut_sent, self._cut_at = count, sent, now
        self._fill = None
        self._set_peak(count / _WINDOW)
        admitted = count / _WINDOW
        logger.info(
            "the server throttled (HTTP %d): this client now sends at most %.1f requests/s "
            "(it admitted %.1f/s in the last second), climbing back while requests succeed",
            status,
            self._fill,
            admitted,
        )
        _tracing.event(
            "ameyo.throttled",
            {
                "http.response.status_code": status,
                "ameyo.rate": self._fill,
                "ameyo.admitted_rate": admitted,
            },
        )

    def _climb(self, now: float) -> None:
        rate = _CUBIC_SCALE * (now - self._cut_at - self._k) ** 3 + self._peak
        if rate >= max(_RELEASE * self._peak, _RELEASE_FLOOR):
            self._fill = None
            logger.info("the throttled rate is released: the server admitted every request")
            _tracing.event("ameyo.throttle_released", {"ameyo.reason": "every request admitted"})
            return
        self._fill = max(self._fill or _MIN_RATE, rate)


class AdaptiveConcurrency:
    """``concurrency="auto"``: a limit on requests in flight that follows the server.

    Use as ``async with limiter:`` around each request (a permit); feed it
    samples (:meth:`sample`) of every answered attempt. Rounds: a round ends
    once ``max(8, limit)`` answers to requests sent during it are in (about
    one round trip; twice that once latency has inflated once). At the end
    of a round:

    - the server throttled (429, 503 with Retry-After): ``limit * 0.75`` at
      once;
    - else, when two rounds in a row have a mean RTT 8% above the baseline
      (the least round mean of the last 30 rounds: the unloaded latency) and
      that inflation means at least 0.75 of a request waiting on the server
      (``limit * (1 - baseline / mean)``, as TCP Vegas counts it): the
      server is queueing, ``limit * 0.9``;
    - else, if the limit was reached during the round: ``limit + 1``, or
      ``+ 0.15`` when near the limit where latency last inflated (so that it
      spends little time above the server's capacity).

    The limit stays within ``[1, max_limit]``; it starts at ``initial``.
    """

    __slots__ = (
        "_count",
        "_in_use",
        "_inflated",
        "_knee",
        "_limit",
        "_max",
        "_means",
        "_round_start",
        "_rtt_sum",
        "_saturated",
        "_throttled",
        "_waiters",
        "adjustments",
    )

    def __init__(self, *, max_limit: int = DEFAULT_MAX_CONCURRENCY, initial: int = 1) -> None:
        self._max = check_int("max_concurrency", max_limit, minimum=1)
        self._limit = float(check_int("initial", initial, minimum=1, maximum=self._max))
        self._in_use = 0
        self._waiters: deque[anyio.Event] = deque()  # first come, first served
        self._means: deque[float] = deque(maxlen=_BASELINE_ROUNDS)
        self._round_start = -math.inf
        self._count = 0
        self._rtt_sum = 0.0
        self._knee = math.inf  # the limit at which latency last inflated
        self._inflated = 0  # inflated rounds in a row
        self._saturated = False
        self._throttled = False
        #: (limit after, why) of every change, newest last: for tests and curious users.
        self.adjustments: deque[tuple[int, str]] = deque(maxlen=1000)

    def __repr__(self) -> str:
        return f"<AdaptiveConcurrency limit={self.limit} of {self._max}, {self._in_use} in use>"

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return int(self._limit)

    @property
    def max_limit(self) -> int:
        """The upper bound of the limit."""
        return self._max

    @property
    def in_use(self) -> int:
        """Permits held now."""
        return self._in_use

    @property
    def baseline(self) -> float | None:
        """The unloaded round-trip time it compares against (None before the first round)."""
        return min(self._means) if self._means else None

    async def __aenter__(self) -> AdaptiveConcurrency:
        if self._waiters or self._in_use >= int(self._limit):

            def pass_on() -> None:
                self._in_use -= 1
                self._hand_over()

            await wait_turn(self._waiters, pass_on)  # _hand_over() counts the permit as taken
        else:
            self._in_use += 1
        if self._in_use >= int(self._limit):
            self._saturated = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._in_use -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free permits to the longest waiters, one each."""
        while self._waiters and self._in_use < int(self._limit):
            self._in_use += 1
            self._waiters.popleft().set()

    def sample(self, sent: float, rtt: float, *, throttled: bool) -> None:
        """One answered attempt, sent at ``sent`` (clock time), answered ``rtt`` s later."""
        if sent < self._round_start:
            return  # sent under the previous limit
        if throttled:
            self._throttled = True
        else:
            self._count += 1
            self._rtt_sum += rtt
        size = int(self._limit) if self._knee == math.inf else 2 * int(self._limit)
        if not self._throttled and self._count < max(_ROUND_SAMPLES, size):
            return
        self._adjust(sent + rtt)

    def _adjust(self, now: float) -> None:
        before = int(self._limit)
        mean = self._rtt_sum / self._count if self._count else None
        floor = min(self._means) if self._means else math.inf
        if mean is not None:
            self._means.append(mean)
        if (
            mean is not None
            and mean > floor * (1.0 + _TOLERANCE)
            and self._limit * (1.0 - floor / mean) >= _QUEUED
        ):
            self._inflated += 1
        elif mean is not None:
            self._inflated = 0
        inflated = self._inflated >= _INFLATED_ROUNDS
        if self._throttled:
            self._limit = max(1.0, self._limit * _THROTTLE_DECREASE)
            why = "throttled"
        elif inflated:
            self._knee = self._limit
            self._inflated = 0
            self._limit = max(1.0, self._limit * _LATENCY_DECREASE)
            why = "latency"
        elif self._saturated:
            step = _PROBE_STEP if self._limit >= self._knee * 0.8 else 1.0
            self._limit = min(float(self._max), self._limit + step)
            why = "ramp"
        else:
            why = ""
        self._round_start = now
        self._count, self._rtt_sum = 0, 0.0
        self._throttled = False
        self._saturated = self._in_use >= int(self._limit)
        if int(self._limit) != before:
            self.adjustments.append((int(self._limit), why))
            _tracing.event(
                "ameyo.concurrency", {"ameyo.limit": int(self._limit), "ameyo.reason": why}
            )
            if int(self._limit) > before:
                self._hand_over()
