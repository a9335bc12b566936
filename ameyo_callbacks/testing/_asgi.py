"""The ASGI 3 adapter: scopes and messages in, :class:`Answer` values out.

Nothing here knows about Ameyo: it reads a request, sends an answer (whole,
or cut short for a dropped connection), sleeps unless the client goes away,
and answers the ``lifespan`` protocol uvicorn speaks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio

from ._answers import Answer

__all__ = [
    "HttpHandler",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "asgi_entry",
    "read_body",
    "scope_parts",
    "send_answer",
    "send_half_then_drop",
    "send_head_then_drop",
    "send_oversized",
    "send_trickle",
    "session_header",
    "sleep_unless_gone",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
HttpHandler = Callable[[Scope, Receive, Send], Awaitable[None]]


async def asgi_entry(scope: Scope, receive: Receive, send: Send, http: HttpHandler) -> None:
    """Dispatch one ASGI scope: ``http`` to ``http``, ``lifespan`` answered here."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        msg = f"the fake Ameyo server speaks HTTP only, not {scope['type']!r}"
        raise RuntimeError(msg)
    await http(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def scope_parts(scope: Scope) -> tuple[str, bytes, tuple[tuple[str, str], ...]]:
    """Method, raw path (still percent-encoded, no query) and decoded query pairs."""
    raw = scope.get("raw_path") or quote(scope["path"], safe="/").encode()
    raw_path = bytes(raw).split(b"?", 1)[0]
    query_text = bytes(scope.get("query_string", b"")).decode("latin-1")
    query = tuple(parse_qsl(query_text, keep_blank_values=True))
    return str(scope["method"]).upper(), raw_path, query


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected before sending it all."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def session_header(scope: Scope, name: bytes = b"sessionid") -> str | None:
    """The ``sessionId`` header's value (or another's, by lower-case ``name``), or None."""
    return next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == name), None)


async def _start(send: Send, answer: Answer, length: int) -> None:
    headers = [*answer.headers, (b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})


async def send_answer(send: Send, answer: Answer, *, before_last: Callable[[], None]) -> None:
    """Send ``answer`` whole, with a matching ``Content-Length``.

    ``before_last`` runs just before the body goes out: once the client has
    the last byte, whatever it did (logging the request) is already done.
    """
    await _start(send, answer, len(answer.body))
    before_last()
    await send({"type": "http.response.body", "body": answer.body})


async def send_half_then_drop(send: Send, answer: Answer, error: BaseException) -> None:
    """Announce the full length, send half the body, then raise ``error`` (uvicorn closes)."""
    await _start(send, answer, len(answer.body))
    half = answer.body[: len(answer.body) // 2]
    await send({"type": "http.response.body", "body": half, "more_body": True})
    raise error


async def send_head_then_drop(send: Send, answer: Answer, error: BaseException) -> None:
    """Announce the full length, send no body byte, then raise ``error`` (uvicorn closes)."""
    await _start(send, answer, len(answer.body))
    raise error


async def send_trickle(
    send: Send,
    answer: Answer,
    receive: Receive,
    *,
    interval: float,
    chunk: int,
    before_last: Callable[[], None],
) -> None:
    """Send ``answer`` with its body ``chunk`` bytes every ``interval`` s, until the client goes.

    ``before_last`` runs just before the last chunk goes out (as for
    :func:`send_answer`): with it the client has the whole body.
    """
    await _start(send, answer, len(answer.body))
    body = answer.body
    *parts, last = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    for part in parts:
        await send({"type": "http.response.body", "body": part, "more_body": True})
        if not await sleep_unless_gone(interval, receive):
            return
    before_last()
    await send({"type": "http.response.body", "body": last})


async def send_oversized(send: Send, size: int, *, before_last: Callable[[], None]) -> None:
    """200, chunked, ``size`` bytes of JSON whitespace then ``[]``: never held whole.

    ``before_last`` runs just before the closing ``[]`` goes out.
    """
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    block = b" " * 65536
    left = size - 2
    while left > 0:
        part = block if left >= len(block) else block[:left]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        left -= len(part)
    before_last()
    await send({"type": "http.response.body", "body": b"[]"})


async def sleep_unless_gone(delay: float, receive: Receive) -> bool:
    """Sleep ``delay`` seconds; False (early) if the client disconnects meanwhile.

    Waiting on ``receive`` itself, under a deadline: no watcher task, so the
    latency every request pays costs one cancel scope (a task group per
    request was a third of the fake's CPU).
    """
    with anyio.move_on_after(delay):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
    return True
