"""Fault injection for the fake server: what can go wrong, and when it does.

A :class:`Fault` is one misbehaviour (a 503, a dropped connection, ...). A
:class:`FaultPlan` picks faults at a rate from a mix, deterministically from a
seed; scripted faults (``FakeAmeyo.script``) come first, in order, per
endpoint. :class:`FaultInjector` is the fake's mutable state for both.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from email.utils import formatdate
from typing import Literal, get_args

import attrs
import httpx

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "OVERSIZED_BYTES",
    "DroppedConnection",
    "Endpoint",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "fault_response",
]

FaultKind = Literal[
    "unavailable",
    "rate_limited",
    "html_500",
    "empty",
    "truncated",
    "drop",
    "slow",
    "close",
    "trickle",
    "oversized",
]
Endpoint = Literal["list", "tenant", "delete", "login", "refresh"]

FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
# Left out of the default mix: "slow" and "trickle" outlast any sane timeout by
# default, "oversized" sends megabytes, "close" leaves a delete's outcome unknown.
_DEFAULT_MIX: tuple[FaultKind, ...] = tuple(
    k for k in FAULT_KINDS if k not in {"slow", "trickle", "oversized", "close"}
)
#: The default size of an ``"oversized"`` answer: four times the client's default cap.
OVERSIZED_BYTES = 32 * 1024 * 1024

_HTML_500 = (
    b'<!doctype html><html lang="en"><head><title>HTTP Status 500 - Internal Server Error'
    b"</title></head><body><h1>HTTP Status 500 - Internal Server Error</h1><hr><p><b>Type</b>"
    b" Exception Report</p><p><b>Description</b> The server encountered an unexpected "
    b"condition that prevented it from fulfilling the request.</p><hr>"
    b"<h3>Apache Tomcat</h3></body></html>"
)


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the fake app to drop a connection mid-response (an injected fault).

    On a real socket the server has sent the status line, a ``Content-Length``
    and part of the body; raising makes uvicorn close the connection, and the
    client sees a body cut short (httpx: ``RemoteProtocolError``). In-process,
    ``httpx.ASGITransport`` re-raises the app's exception in the client, and
    because this *is* an ``httpx.RemoteProtocolError`` the client sees the same
    transport error class as on a socket.
    """

    def __init__(self) -> None:
        super().__init__(
            "the fake Ameyo server dropped the connection mid-response (injected fault)"
        )


def _retry_after(value: int | None) -> int | None:
    if value is not None and (type(value) is not int or value < 0):
        msg = f"retry_after must be a whole number of seconds >= 0 or None, got {value!r}"
        raise ValueError(msg)
    return value


def _delay(value: float) -> float:
    if not value >= 0:
        msg = f"delay must be >= 0 seconds, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _count(value: int) -> int:
    if type(value) is not int or value < 1:
        msg = f"chunk and size must be whole numbers of bytes >= 1, got {value!r}"
        raise ValueError(msg)
    return value


@attrs.frozen
class Fault:
    """One misbehaviour of the server, for one request.

    Kinds:

    - ``"unavailable"``: 503 with ``Retry-After`` (seconds, or an HTTP date
      when ``http_date``; no header when ``retry_after`` is None), plain text.
    - ``"rate_limited"``: 429, same ``Retry-After`` rules.
    - ``"html_500"``: a bare 500 HTML error page, as an app server sends it.
    - ``"empty"``: 200 with an empty body.
    - ``"truncated"``: the real answer's status and headers, body cut in half,
      ``Content-Length`` matching the cut body (valid HTTP, broken JSON).
    - ``"drop"``: the real answer's status and full ``Content-Length``, half the
      body, then the connection is dropped (see :class:`DroppedConnection`).
    - ``"slow"``: the real answer, after ``delay`` seconds (abandoned if the
      client goes away first). On a socket a shorter client timeout fires;
      in-process, ``httpx.ASGITransport`` enforces no timeouts, so the answer
      is only late (cancel the call, e.g. ``anyio.fail_after``, to give up).
    - ``"close"``: the status line and headers, then the connection closes
      before any body byte. With ``apply_before_fault=True`` it is the delete
      carried out whose answer is lost: a client must not call it not found.
    - ``"trickle"``: the real answer, its body ``chunk`` bytes every
      ``interval`` seconds: no read timeout fires, only a deadline for the
      whole answer ends it (on a socket; in-process the transport collects it).
    - ``"oversized"``: 200 with a ``size``-byte body (streamed, chunked, never
      held whole by the fake): a client must stop reading at its cap.

    ``apply_before_fault`` says whether the request takes effect although its
    answer is faulted: True models "the server deleted it but the answer was
    lost". By default a faulted request changes nothing (a delete is not
    performed, a login opens no session); for ``"slow"`` the effect happens
    when the late answer is sent, or at arrival when ``apply_before_fault``.
    """

    kind: FaultKind = attrs.field(validator=attrs.validators.in_(FAULT_KINDS))
    retry_after: int | None = attrs.field(default=1, converter=_retry_after)
    http_date: bool = False
    delay: float = attrs.field(default=30.0, converter=_delay)
    apply_before_fault: bool = False
    interval: float = attrs.field(default=0.5, converter=_delay)
    chunk: int = attrs.field(default=1, converter=_count)
    size: int = attrs.field(default=OVERSIZED_BYTES, converter=_count)

    @classmethod
    def unavailable(cls, retry_after: int | None = 1, *, http_date: bool = False) -> Fault:
        """503 Service Unavailable with ``Retry-After``."""
        return cls("unavailable", retry_after=retry_after, http_date=http_date)

    @classmethod
    def rate_limited(cls, retry_after: int | None = 1, *, http_date: bool = False) -> Fault:
        """429 Too Many Requests with ``Retry-After``."""
        return cls("rate_limited", retry_after=retry_after, http_date=http_date)

    @classmethod
    def html_500(cls, *, apply_before_fault: bool = False) -> Fault:
        """A bare 500 HTML page."""
        return cls("html_500", apply_before_fault=apply_before_fault)

    @classmethod
    def empty(cls, *, apply_before_fault: bool = False) -> Fault:
        """200 with an empty body."""
        return cls("empty", apply_before_fault=apply_before_fault)

    @classmethod
    def truncated(cls, *, apply_before_fault: bool = False) -> Fault:
        """The real answer with its body cut in half (``Content-Length`` matching)."""
        return cls("truncated", apply_before_fault=apply_before_fault)

    @classmethod
    def drop(cls, *, apply_before_fault: bool = False) -> Fault:
        """Half an answer, then the connection drops."""
        return cls("drop", apply_before_fault=apply_before_fault)

    @classmethod
    def slow(cls, delay: float = 30.0, *, apply_before_fault: bool = False) -> Fault:
        """The real answer, ``delay`` seconds late."""
        return cls("slow", delay=delay, apply_before_fault=apply_before_fault)

    @classmethod
    def close(cls, *, apply_before_fault: bool = False) -> Fault:
        """Headers, then the connection closes; ``apply_before_fault=True``: after acting."""
        return cls("close", apply_before_fault=apply_before_fault)

    @classmethod
    def trickle(
        cls, interval: float = 0.5, chunk: int = 1, *, apply_before_fault: bool = False
    ) -> Fault:
        """The real answer, its body ``chunk`` bytes every ``interval`` seconds."""
        return cls("trickle", interval=interval, chunk=chunk, apply_before_fault=apply_before_fault)

    @classmethod
    def oversized(cls, size: int = OVERSIZED_BYTES) -> Fault:
        """200 with a ``size``-byte body, streamed."""
        return cls("oversized", size=size)


def as_fault(value: Fault | str) -> Fault:
    """A :class:`Fault`, or a kind name meaning that kind with its defaults."""
    if isinstance(value, Fault):
        return value
    if value not in FAULT_KINDS:
        msg = f"unknown fault kind {value!r}: use one of {', '.join(FAULT_KINDS)}"
        raise ValueError(msg)
    return Fault(value)


def _faults(values: Iterable[Fault | str]) -> tuple[Fault, ...]:
    return tuple(as_fault(v) for v in values)


def _rate(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        msg = f"rate must be between 0 and 1, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _endpoints(values: Iterable[str] | None) -> frozenset[Endpoint] | None:
    if values is None:
        return None
    chosen = frozenset(values)
    unknown = chosen - set(ENDPOINTS)
    if unknown:
        msg = f"unknown endpoint(s) {sorted(unknown)}: use some of {', '.join(ENDPOINTS)}"
        raise ValueError(msg)
    return chosen  # type: ignore[return-value]  # checked against ENDPOINTS above


@attrs.frozen
class FaultPlan:
    """Faults at a rate, from a mix, deterministically from ``seed``.

    Each request to one of ``endpoints`` (all four when None) draws from a
    ``random.Random(seed)``: with probability ``rate`` it gets a fault chosen
    from ``kinds``. The same seed and the same order of requests give the same
    faults. ``kinds`` takes :class:`Fault` values or kind names; by default
    every kind but ``"slow"``.

    >>> FaultPlan(rate=0.2, kinds=["unavailable", "drop"], seed=1)  # doctest: +SKIP
    """

    rate: float = attrs.field(default=0.0, converter=_rate)
    kinds: tuple[Fault, ...] = attrs.field(default=_DEFAULT_MIX, converter=_faults)
    seed: int = 0
    endpoints: frozenset[Endpoint] | None = attrs.field(default=None, converter=_endpoints)

    @kinds.validator
    def _check_kinds(self, _: object, value: tuple[Fault, ...]) -> None:
        if not value:
            msg = "kinds must name at least one fault"
            raise ValueError(msg)


class FaultInjector:
    """The fake's fault state: the plan's random stream and the scripted queues."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Fault | None]] = {}
        self.plan = plan or FaultPlan()

    @property
    def plan(self) -> FaultPlan:
        """The rate plan; setting it restarts its random stream from its seed."""
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)

    def script(self, endpoint: str, faults: Iterable[Fault | str | None]) -> None:
        """Queue faults (None = serve normally) for the next requests to ``endpoint``."""
        if endpoint != "any":
            _endpoints([endpoint])
        queued = [None if f is None else as_fault(f) for f in faults]
        with self._lock:
            self._scripts.setdefault(endpoint, deque()).extend(queued)

    def clear(self) -> None:
        """No scripted faults and a zero rate."""
        with self._lock:
            self._scripts.clear()
        self.plan = FaultPlan()

    def pending(self, endpoint: str) -> int:
        """How many scripted entries are still queued for ``endpoint`` (or ``"any"``)."""
        with self._lock:
            return len(self._scripts.get(endpoint, ()))

    def pick(self, endpoint: Endpoint) -> Fault | None:
        """The fault for the next request to ``endpoint``, or None."""
        with self._lock:
            for key in (endpoint, "any"):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
            plan = self._plan
            if plan.rate <= 0.0 or (plan.endpoints is not None and endpoint not in plan.endpoints):
                return None
            if self._rng.random() >= plan.rate:
                return None
            return self._rng.choice(plan.kinds)


def _retry_after_header(fault: Fault) -> list[tuple[bytes, bytes]]:
    if fault.retry_after is None:
        return []
    if fault.http_date:
        when = formatdate(math.ceil(time.time()) + fault.retry_after, usegmt=True)
        return [(b"retry-after", when.encode())]
    return [(b"retry-after", str(fault.retry_after).encode())]


def fault_response(fault: Fault) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a fault that replaces the answer outright."""
    if fault.kind == "unavailable":
        return (
            503,
            [(b"content-type", b"text/plain"), *_retry_after_header(fault)],
            b"Service Unavailable",
        )
    if fault.kind == "rate_limited":
        return (
            429,
            [(b"content-type", b"text/plain"), *_retry_after_header(fault)],
            b"Too Many Requests",
        )
    if fault.kind == "html_500":
        return 500, [(b"content-type", b"text/html;charset=utf-8")], _HTML_500
    if fault.kind == "empty":
        return 200, [(b"content-type", b"application/json")], b""
    msg = f"fault {fault.kind!r} does not replace the answer"
    raise ValueError(msg)
