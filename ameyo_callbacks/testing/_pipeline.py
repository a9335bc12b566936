"""The per-request steps of the fake: the one place where server-side behaviour hooks in.

:meth:`Pipeline.serve` runs, for every HTTP request, in this order::

    log.start -> read body -> route -> before_request hooks (live changes, a rate limit)
    -> pick a fault -> around_service hooks (a worker pool) wrapping:
       latency -> answer (handlers) or perform the fault
    -> log.finish (just before an answer's body goes out, or when the request ends)

A new per-request behaviour hooks in at one of two points, for requests to a
known endpoint: a :class:`RequestHook` in ``before_request`` runs once the
endpoint is known and may answer in place of the handlers (return an
:class:`Answer`, e.g. a 429) or return None to go on; a
:class:`ServiceHook` in ``around_service`` is an async context manager
held while the request is served (latency included), e.g. a worker taken
from a pool. A new fault kind is performed in :meth:`Pipeline._perform`
(and declared in ``_faults.FaultKind``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, Protocol

from ._answers import Answer
from ._asgi import (
    Receive,
    Scope,
    Send,
    read_body,
    scope_parts,
    send_answer,
    send_half_then_drop,
    send_head_then_drop,
    send_oversized,
    send_trickle,
    session_header,
    sleep_unless_gone,
)
from ._faults import DroppedConnection, Fault, FaultInjector, fault_response
from ._handlers import Handlers
from ._log import Exchange, RequestLog
from ._routing import Request

__all__ = ["Pipeline", "RequestHook", "ServiceHook", "TimingOptions"]

#: A step run before each routed request: it may return an answer to send instead.
RequestHook = Callable[[Request, Exchange], Awaitable[Answer | None]]
#: Held (``async with``) around the service of each routed request.
ServiceHook = Callable[[Request, Exchange], AbstractAsyncContextManager[Any]]


class TimingOptions(Protocol):
    """What the pipeline reads at each request (``FakeAmeyo`` has them)."""

    latency: float
    jitter: float


class Pipeline:
    """Serves one HTTP request at a time, through the steps in the module docstring."""

    def __init__(
        self,
        *,
        handlers: Handlers,
        faults: FaultInjector,
        log: RequestLog,
        timing: TimingOptions,
        seed: int,
    ) -> None:
        self.handlers = handlers
        self.faults = faults
        self.log = log
        self.timing = timing
        self.before_request: list[RequestHook] = []
        self.around_service: list[ServiceHook] = []
        self._jitter_rng = random.Random(f"ameyo-fake-latency-{seed}")

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI ``http`` scope: one request, logged whatever happens."""
        method, raw_path, query = scope_parts(scope)
        ex = self.log.start(method, scope["path"], query)
        try:
            body = await read_body(receive)
            if body is None:
                return
            req = Request(
                method,
                raw_path,
                scope["path"],
                query,
                session_header(scope),
                body,
                session_header(scope, b"authorization"),
            )
            ex.endpoint = self.handlers.router.route(method, raw_path)
            sessions = self.handlers.sessions
            ex.session = sessions.state(req.session, touch=False)
            ex.jwt = sessions.jwt_state(req.session, req.jwt)
            ex.body = None if ex.endpoint == "login" else body
            if ex.endpoint is not None:
                for hook in self.before_request:
                    early = await hook(req, ex)
                    if early is not None:
                        await self._send(send, early, ex)
                        return
            fault = self.faults.pick(ex.endpoint) if ex.endpoint is not None else None
            ex.fault = fault.kind if fault is not None else None
            if ex.endpoint is None or not self.around_service:
                await self._serve(req, ex, fault, receive, send)
                return
            async with AsyncExitStack() as stack:
                for around in self.around_service:
                    await stack.enter_async_context(around(req, ex))
                await self._serve(req, ex, fault, receive, send)
        finally:
            self.log.finish(ex)  # no-op when the answer's send already logged it

    async def _serve(
        self, req: Request, ex: Exchange, fault: Fault | None, receive: Receive, send: Send
    ) -> None:
        if not await self._wait_latency(receive):
            return
        if fault is None:
            await self._send(send, self._answer(req, ex, commit=True), ex)
        else:
            await self._perform(fault, req, ex, receive, send)

    def _answer(self, req: Request, ex: Exchange, *, commit: bool) -> Answer:
        return self.handlers.handle(req, ex.endpoint, commit=commit)

    async def _wait_latency(self, receive: Receive) -> bool:
        timing = self.timing
        delay = timing.latency + (timing.jitter * self._jitter_rng.random() if timing.jitter else 0)
        return delay <= 0 or await sleep_unless_gone(delay, receive)

    async def _perform(
        self, fault: Fault, req: Request, ex: Exchange, receive: Receive, send: Send
    ) -> None:
        """Answer with ``fault`` in place of (or around) the real answer."""
        if fault.kind == "slow":
            early = self._answer(req, ex, commit=True) if fault.apply_before_fault else None
            if await sleep_unless_gone(fault.delay, receive):
                await self._send(send, early or self._answer(req, ex, commit=True), ex)
        elif fault.kind == "truncated":
            answer = self._answer(req, ex, commit=fault.apply_before_fault)
            await self._send(send, answer.cut(), ex)
        elif fault.kind == "drop":
            answer = self._answer(req, ex, commit=fault.apply_before_fault)
            await send_half_then_drop(send, answer, DroppedConnection())
        elif fault.kind == "close":
            answer = self._answer(req, ex, commit=fault.apply_before_fault)
            await send_head_then_drop(send, answer, DroppedConnection())
        elif fault.kind == "trickle":
            answer = self._answer(req, ex, commit=True)
            await send_trickle(
                send,
                answer,
                receive,
                interval=fault.interval,
                chunk=fault.chunk,
                before_last=self._logger(ex, answer.status),
            )
        elif fault.kind == "oversized":
            await send_oversized(send, fault.size, before_last=self._logger(ex, 200))
        else:
            if fault.apply_before_fault:
                self._answer(req, ex, commit=True)
            status, headers, body = fault_response(fault)
            await self._send(send, Answer(status, tuple(headers), body), ex)

    def _logger(self, ex: Exchange, status: int) -> Callable[[], None]:
        """Log ``ex`` as answered with ``status``: run just before the last body bytes go out.

        So a client that has its whole answer finds the request in
        ``fake.requests`` (over a socket, the client can otherwise read the
        log before the server has written to it).
        """

        def logged() -> None:
            ex.status = status
            self.log.finish(ex)

        return logged

    async def _send(self, send: Send, answer: Answer, ex: Exchange) -> None:
        await send_answer(send, answer, before_last=self._logger(ex, answer.status))
