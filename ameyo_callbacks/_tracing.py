"""The library's own spans: one per operation, with events for what happened inside it.

An operation is a walk (``iter_callbacks`` in any form), ``delete_callbacks``,
``delete_matching``, or one call of ``get_callbacks`` / ``delete_callback``.
Each gets one span (kind ``INTERNAL``) from the tracer ``ameyo_callbacks``;
the HTTP client spans of the httpx or aiohttp instrumentation nest under it.
Its attributes say the operation's figures at its end (``ameyo.records``,
``ameyo.requests``, ``ameyo.deleted`` ...); its events, what happened on the
way (``ameyo.retry``, ``ameyo.retry_after``, ``ameyo.throttled``,
``ameyo.concurrency``, ``ameyo.walk.strategy``), each with its reason and
seconds. Names and meanings: ``docs/guides/observability.md``.

OpenTelemetry is never imported here: spans are made only when the
application has imported ``opentelemetry.trace`` itself (it has, to set a
tracer provider), so ``import ameyo_callbacks`` stays light and a user
without OpenTelemetry pays one dictionary look-up per operation. Nothing a
span holds comes from a session provider: no session id, token or JWT.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["Operation", "Value", "begin", "current", "event", "operation", "request_sent"]

#: A span attribute's value, as OpenTelemetry takes it.
Value = str | bool | int | float

#: The operation the running code belongs to (copied into the tasks it starts).
_CURRENT: ContextVar[Operation | None] = ContextVar("ameyo_callbacks_operation", default=None)


class Operation:
    """One operation's span: its attributes, its events, its request count.

    Made by :func:`operation` (a block) or :func:`begin` (a walk, which ends
    when its iteration does); :meth:`current` makes it the parent of what
    runs inside.
    """

    __slots__ = ("_span", "pages", "requests")

    def __init__(self, span: Span) -> None:
        self._span = span
        #: Requests sent for this operation so far (attempts, retries included).
        self.requests = 0
        #: Pages handed out (a walk).
        self.pages = 0

    def set(self, attributes: Mapping[str, Value | None]) -> None:
        """Set attributes (a None value is left out)."""
        self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def event(self, name: str, attributes: Mapping[str, Value | None]) -> None:
        """Add an event (a None value is left out)."""
        self._span.add_event(name, {k: v for k, v in attributes.items() if v is not None})

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Inside the block this span is the current one (and the parent of HTTP spans)."""
        trace = sys.modules["opentelemetry.trace"]
        token = _CURRENT.set(self)
        try:
            # The operation records its own outcome (end): a request's cancellation
            # inside, or an error the walk goes on from, is not the span's status.
            with trace.use_span(
                self._span,
                end_on_exit=False,
                record_exception=False,
                set_status_on_exception=False,
            ):
                yield
        finally:
            _CURRENT.reset(token)

    def end(self, error: Exception | None = None) -> None:
        """End the span with the request count; an error sets ``error.type`` and the status.

        The error is recorded without its chain: a cause is the HTTP library's
        exception as it was raised, whose text the library did not scrub.
        """
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:  # interpreter shutdown
            return
        self._span.set_attribute("ameyo.requests", self.requests)
        if self.pages:
            self._span.set_attribute("ameyo.pages", self.pages)
        if error is not None:
            self._span.set_attribute("error.type", type(error).__qualname__)
            stack = traceback.format_exception(type(error), error, error.__traceback__, chain=False)
            self._span.record_exception(error, {"exception.stacktrace": "".join(stack)})
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__qualname__))
        self._span.end()


def current(op: Operation | None) -> contextlib.AbstractContextManager[None]:
    """``op.current()``, or nothing to do when there is no span."""
    return _NOTHING if op is None else op.current()


_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def _tracer() -> Any | None:
    """The tracer of this library, when the application uses OpenTelemetry (else None)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    return trace.get_tracer("ameyo_callbacks", __version__)


def begin(name: str, attributes: Mapping[str, Value | None]) -> Operation | None:
    """Start an operation's span, a child of the current span (None: no OpenTelemetry).

    The caller ends it (:meth:`Operation.end`) and runs its requests inside
    :meth:`Operation.current`.
    """
    tracer = _tracer()
    if tracer is None:
        return None
    trace = sys.modules["opentelemetry.trace"]
    span = tracer.start_span(
        name,
        kind=trace.SpanKind.INTERNAL,
        attributes={k: v for k, v in attributes.items() if v is not None},
    )
    return Operation(span)


@contextlib.contextmanager
def operation(name: str, attributes: Mapping[str, Value | None]) -> Iterator[Operation | None]:
    """An operation's span around the block, current inside it (None: no OpenTelemetry)."""
    op = begin(name, attributes)
    if op is None:
        yield None
        return
    error: Exception | None = None
    try:
        with op.current():
            yield op
    except Exception as exc:
        error = exc
        raise
    except BaseException:  # cancelled (a timeout, a break, Ctrl-C): not a failure of its own
        op.set({"ameyo.cancelled": True})
        raise
    finally:
        op.end(error)


def event(name: str, attributes: Mapping[str, Value | None]) -> None:
    """Add an event to the current operation's span, if there is one."""
    op = _CURRENT.get()
    if op is not None:
        op.event(name, attributes)


def request_sent() -> None:
    """Count one request against the current operation, if there is one."""
    op = _CURRENT.get()
    if op is not None:
        op.requests += 1
