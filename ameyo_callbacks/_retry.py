"""Retry policy, the retry decision, Retry-After, the shared back-off gate, the clock.

The loop that uses them is the client's (``_client._with_retries``): every
attempt, the first included, goes through it, and every wait it makes (the
back-off, a ``Retry-After`` through the gate, the rate limits) is on the
client's :class:`Clock`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import anyio
import attrs

from ._checks import check_float, check_int
from ._kinds import KINDS
from .exceptions import (
    AmeyoError,
    APIError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = [
    "AnyioClock",
    "BackoffGate",
    "Clock",
    "RetryDecision",
    "RetryPolicy",
    "decide",
    "no_retry_waits",
]

_RETRIED_STATUSES = frozenset({429, 502, 503, 504})
_OPTIONAL = frozenset({"timeout", "attempt_timeout"})


def _positive(_: object, attribute: attrs.Attribute[float], value: float | None) -> None:
    check_float(f"RetryPolicy.{attribute.name}", value, allow_none=attribute.name in _OPTIONAL)


@attrs.frozen
class RetryPolicy:
    """How a call is retried. The defaults suit a bulk job against a busy server.

    - ``attempts`` (6): sends per call, the first included; 1 turns retries off.
    - ``wait_initial`` (0.2 s), ``wait_max`` (10 s), ``wait_jitter`` (0.5 s):
      exponential back-off, ``min(wait_max, wait_initial * 2 ** (n - 1)) +
      uniform(0, wait_jitter)`` before retry n.
    - ``timeout`` (60 s): the time budget of one call, retries and waits
      included; it ends the attempt in progress too (``AnswerTimeoutError``,
      kind ``call_deadline``). None for no budget.
    - ``attempt_timeout`` (30 s): the deadline of one attempt for its whole
      answer (status line, headers and body), however slowly it trickles in;
      read timeouts apply per read only. Over it: ``AnswerTimeoutError``, kind
      ``attempt_deadline``, retried while the budget lasts. None for none.
    - ``max_retry_after`` (60 s): a ``Retry-After`` up to this many seconds is
      honoured in place of the back-off; a longer one ends the call with the
      error (``RateLimitedError.retry_after`` carries the value) rather than
      sleeping for an hour.
    """

    attempts: int = attrs.field(default=6)
    wait_initial: float = attrs.field(default=0.2, validator=_positive)
    wait_max: float = attrs.field(default=10.0, validator=_positive)
    wait_jitter: float = attrs.field(default=0.5, validator=_positive)
    timeout: float | None = attrs.field(default=60.0, validator=_positive)
    attempt_timeout: float | None = attrs.field(default=30.0, validator=_positive)
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)

    @attempt_timeout.validator
    def _check_attempt_timeout(self, _: attrs.Attribute[float], value: float | None) -> None:
        if value == 0:
            msg = "RetryPolicy.attempt_timeout must be > 0 seconds, or None for no deadline"
            raise ValueError(msg)

    @attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: int) -> None:
        check_int("RetryPolicy.attempts", value, minimum=1)

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries: every call is sent once."""
        return cls(attempts=1)

    def backoff(self, retry_number: int) -> float:
        """The jitter-free back-off before retry ``retry_number`` (1-based), for messages."""
        try:
            return min(self.wait_max, self.wait_initial * 2.0 ** (retry_number - 1))
        except OverflowError:  # pragma: no cover  (needs ~1000 retries)
            return self.wait_max

    def wait(self, retry_number: int) -> float:
        """The back-off before retry ``retry_number``: :meth:`backoff` plus the jitter.

        0 inside :func:`no_retry_waits`.
        """
        if _TESTING.active:
            return 0.0
        return self.backoff(retry_number) + random.uniform(0, self.wait_jitter)  # noqa: S311

    def attempts_now(self) -> int:
        """``attempts``, or what :func:`no_retry_waits` sets in its block."""
        return _TESTING.attempts if _TESTING.attempts is not None else self.attempts


@attrs.define
class _Testing:
    active: bool = False
    attempts: int | None = None


_TESTING = _Testing()


@contextmanager
def no_retry_waits(*, attempts: int | None = None) -> Iterator[None]:
    """For tests: inside the block, every client's retry back-off is 0 s.

    With ``attempts``, every call makes up to that many attempts whatever its
    :class:`RetryPolicy` says. A ``Retry-After`` is still waited, on the
    client's ``clock=`` (pass a fake one to skip those waits as well).
    """
    if attempts is not None:
        check_int("attempts", attempts, minimum=1)
    before = attrs.evolve(_TESTING)
    _TESTING.active, _TESTING.attempts = True, attempts
    try:
        yield
    finally:
        _TESTING.active, _TESTING.attempts = before.active, before.attempts


@attrs.frozen
class RetryDecision:
    """What to do after a failed attempt: retry or not, why, and a server-given wait."""

    retry: bool
    reason: str
    retry_after: float | None = None


def _describe(exc: AmeyoError) -> str:
    if isinstance(exc, APIError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, TransportError):
        cause = None if exc.cause is None else type(exc.cause).__name__
        if exc.kind == "other":
            return cause or type(exc).__name__
        kind = exc.kind.replace("_", " ")
        return kind if cause is None else f"{kind} ({cause})"
    return type(exc).__name__


def decide(exc: AmeyoError, *, policy: RetryPolicy) -> RetryDecision:
    """Whether the failure of one attempt of a call (any kind) is worth another.

    Retried: transport failures (connect, read timeout, attempt deadline,
    dropped connection), 429, 502, 503, 504, a 500 whose body is not an Ameyo
    envelope, and a 2xx whose body cannot be decoded (a DELETE asks again:
    when that 2xx was its ``OK`` cut short, the client's delete rule counts a
    "not found" then as deleted, ``_client._DeleteRule``).
    Not retried: TLS failures (certificate, hostname, protocol), an answer
    over the size cap, the call's spent budget, other 4xx, 512 and other
    Ameyo envelopes, and a ``Retry-After`` longer than
    ``policy.max_retry_after``.
    """
    reason = _describe(exc)
    if isinstance(exc, TransportError):
        return RetryDecision(retry=KINDS[exc.kind].retried, reason=reason)
    if isinstance(exc, ResponseFormatError):
        what = "a 2xx" if exc.status_code is None else f"HTTP {exc.status_code}"
        return RetryDecision(retry=True, reason=f"{what} with a body this call does not return")
    if isinstance(exc, (RateLimitedError, ServerError)):
        status = exc.status_code
        retryable = status in _RETRIED_STATUSES or (status == 500 and not exc.from_envelope)
        after = exc.retry_after
        if not retryable:
            return RetryDecision(retry=False, reason=reason)
        if after is not None and after > policy.max_retry_after:
            return RetryDecision(
                retry=False,
                reason=f"{reason} with Retry-After {after:g} s, above the "
                f"{policy.max_retry_after:g} s cap",
                retry_after=after,
            )
        return RetryDecision(retry=True, reason=reason, retry_after=after)
    return RetryDecision(retry=False, reason=reason)


class Clock(Protocol):
    """Time source and sleep of the gate; tests swap in a fake one."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class AnyioClock:
    """The event loop's clock (``time.monotonic`` on asyncio) and ``anyio.sleep``."""

    def now(self) -> float:
        """The running event loop's monotonic time."""
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running event loop."""
        await anyio.sleep(seconds)


class BackoffGate:
    """One "not before" moment shared by every request of a client.

    When an answer says ``Retry-After``, :meth:`defer` moves the moment;
    every request then :meth:`wait` s for it before its next send, so a
    server that asked for a pause gets one from all of prefetch and bulk
    delete at once, not from each request after it finds out on its own.
    """

    __slots__ = ("_clock", "_not_before")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._not_before = -math.inf

    @property
    def not_before(self) -> float:
        """The clock time before which nothing is sent (-inf when open)."""
        return self._not_before

    def defer(self, seconds: float) -> None:
        """Hold every send until ``seconds`` from now (never brings the moment closer)."""
        self._not_before = max(self._not_before, self._clock.now() + seconds)

    async def wait(self) -> None:
        """Return once the gate is open; loops in case it is deferred meanwhile."""
        while (delay := self._not_before - self._clock.now()) > 0:
            await self._clock.sleep(delay)
