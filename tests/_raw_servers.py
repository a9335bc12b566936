"""Small raw asyncio servers on 127.0.0.1 that misbehave as uvicorn cannot.

Test modules import these (``from _raw_servers import ...``; pytest puts
``tests/`` on ``sys.path``). Each server is an async context manager that
binds 127.0.0.1 on a free port, counts what it got, and stops itself.

- :class:`RawServer`: runs ``handler(request, reader, writer)`` for every
  HTTP request read off a connection (keep-alive: several per connection).
- :class:`DeleteServer`: an Ameyo-like DELETE endpoint over a set of ids
  that can close the connection after carrying out a delete, or before.
- :class:`RecordingProxy`: an HTTP proxy (absolute-form requests and
  CONNECT tunnels) that records what it forwarded.
- :func:`closed_port`, :class:`BlackHole`: nothing listening (a port held
  bound for a ``with`` block); a listener that never completes a
  connection (connect timeout).
- :func:`reserved_port`: a port held for a server the test starts itself.
- :class:`CountingRelay`: a TCP relay in front of another loopback server
  (uvicorn) that counts the connections it accepted.
- :class:`TlsAlertServer`: answers whatever arrives with a TLS alert record
  and hangs up, as a TLS port does to a plain HTTP request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import attrs

__all__ = [
    "BlackHole",
    "CountingRelay",
    "DeleteServer",
    "RawServer",
    "RecordingProxy",
    "Request",
    "TlsAlertServer",
    "closed_port",
    "not_found_body",
    "read_request",
    "reserved_port",
    "respond",
]


def not_found_body(callback_id: str) -> bytes:
    """Ameyo's 512 envelope for an id it does not hold."""
    info = json.dumps(["CallBackManager.invalid.campcust.callback.id", callback_id])
    return json.dumps({"message": None, "info": info, "status": 512, "errorCode": 5001}).encode()


@attrs.frozen
class Request:
    """One HTTP request as the raw server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection, or None when the client closed it."""
    try:
        first = await reader.readexactly(1)
        if first == b"\x16":  # a TLS handshake record: https to this plain port
            return Request("TLS", "", {}, b"")
        head = first + await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


def respond(status: int, body: bytes, *, reason: str = "X", extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """A TCP server on 127.0.0.1 calling ``handler`` per request; it returns False to close.

    ``ssl_context`` makes it TLS. ``requests`` lists every request read;
    ``connections`` counts accepted connections.
    """

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.requests: list[Request] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _shut_down(self._server, self._tasks)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = _tracked(self._tasks)
        self.connections += 1
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                if request.method == "TLS":  # answer as HTTP servers do, then hang up
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    break
                self.requests.append(request)
                if not await self.handler(request, reader, writer):
                    break
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server stops: the connection task ends quietly (see _stop)
        finally:
            self._tasks.discard(task)
            _hang_up(writer)


def _hang_up(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()
    writer.close()


def _tracked(tasks: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
    """The running connection task, added to ``tasks`` (it discards itself at its end)."""
    task = asyncio.current_task()
    assert task is not None
    tasks.add(task)
    return task


async def _shut_down(server: asyncio.Server | None, tasks: set[asyncio.Task[Any]]) -> None:
    """Stop listening, end the connection tasks (see _stop), wait for the server to close."""
    assert server is not None
    server.close()
    await _stop(tasks)
    await server.wait_closed()


async def _stop(tasks: set[asyncio.Task[Any]]) -> None:
    """End every connection task: let new ones start first, so each sees its cancel."""
    await asyncio.sleep(0)
    for task in list(tasks):
        task.cancel()
    for task in list(tasks):
        with contextlib.suppress(BaseException):
            await task


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, held for the ``with`` block.

    The port stays bound (never listening) until the block ends: a connect
    to it is refused, and no other server can take it meanwhile, as it
    could a port bound and closed again before the client connects.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A loopback port for a server the test starts itself, held for the ``with`` block.

    The port stays bound with ``SO_REUSEADDR`` and never listens, so a
    server that also sets ``SO_REUSEADDR`` (the fake's does) can bind it and
    listen, while no other test (another xdist worker) can be handed it in
    between, as it could a port found free and closed again.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class BlackHole:
    """A listener whose accept queue is full: a new connection is never completed.

    Linux drops the SYN of a connection to a listener with a full queue, so
    the client waits out its connect timeout.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._fillers: list[socket.socket] = []
        self.port = 0

    def __enter__(self) -> BlackHole:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        for _ in range(8):  # fill the queue: these connect without a SYN being dropped
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self._fillers:
            sock.close()
        self._listener.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class DeleteServer(RawServer):
    """DELETE ``.../customerCallbacks/<id>`` over ``ids``, with a lost answer now and then.

    ``mode`` is "after" (carry the delete out, then close the connection
    without answering), "before" (close without carrying it out), "empty"
    (carry it out, then answer 200 with an empty body on a connection kept
    alive) or "none".
    ``rate`` is the share of requests that meet the fault; a fault other
    than "empty" closes the connection, which is how the aiohttp stack's own
    re-send would be triggered. Every answer is kept-alive otherwise. Whether the n-th request
    for an id meets the fault is drawn from ``random.Random`` seeded with
    ``(seed, id, n)``, not from one stream shared by all requests: concurrent
    requests arrive in an order that changes from run to run, and a shared
    stream handed its faults to different ids each time, so ``faults`` and
    ``faults_of`` are now the same on every run for a given seed. One id
    meets the fault at most ``max_faults_per_id`` times, so a client that
    retries more often than that always gets an answer: without the cap, one
    id in about 66,000 met eight faults in a row (the 25% rate, eight
    attempts) and its outcome was an honest ``failed``, not a flaw of the
    client.
    """

    def __init__(
        self,
        ids: set[str],
        *,
        mode: str,
        rate: float,
        seed: int = 1,
        max_faults_per_id: int = 3,
    ) -> None:
        super().__init__(self._delete)
        self.ids = set(ids)
        self.mode = mode
        self.rate = rate
        self.seed = seed
        self.faults = 0
        self.max_faults_per_id = max_faults_per_id
        self.faults_of: dict[str, int] = {}
        self.requests_of: dict[str, int] = {}

    async def __aenter__(self) -> DeleteServer:
        await super().__aenter__()
        return self

    async def _delete(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        callback_id = request.target.rsplit("/", 1)[1]
        nth = self.requests_of.get(callback_id, 0)
        self.requests_of[callback_id] = nth + 1
        draw = random.Random(f"{self.seed}:{callback_id}:{nth}").random()
        fault = self.mode != "none" and draw < self.rate
        fault = fault and self.faults_of.get(callback_id, 0) < self.max_faults_per_id
        if fault:
            self.faults_of[callback_id] = self.faults_of.get(callback_id, 0) + 1
        if fault and self.mode == "before":
            self.faults += 1
            return False
        existed = callback_id in self.ids
        self.ids.discard(callback_id)
        if fault:
            self.faults += 1
            if self.mode == "empty":
                writer.write(respond(200, b""))
                await writer.drain()
                return True
            return False
        if existed:
            writer.write(respond(200, b"OK"))
        else:
            writer.write(respond(512, not_found_body(callback_id)))
        await writer.drain()
        return True


_L = TypeVar("_L", bound="_Listener")


class _Listener:
    """A server on 127.0.0.1 (a free port) whose ``_connection`` serves each connection.

    Entered, it listens; left, it closes and cancels the connections still
    served (``_tracked``/``_shut_down``).
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self: _L) -> _L:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await _shut_down(self._server, self._tasks)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class RecordingProxy(_Listener):
    """An HTTP proxy on 127.0.0.1 that records each forwarded request line (or CONNECT target)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = _tracked(self._tasks)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                if request.method == "CONNECT":
                    self.seen.append(f"CONNECT {request.target}")
                    await self._tunnel(request.target, reader, writer)
                    return
                self.seen.append(f"{request.method} {request.target}")
                await self._forward(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy stops (see _stop)
        finally:
            self._tasks.discard(task)
            _hang_up(writer)

    async def _forward(self, request: Request, writer: asyncio.StreamWriter) -> None:
        # Absolute form: http://127.0.0.1:port/path?query -> to that loopback server.
        rest = request.target.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, port = hostport.rsplit(":", 1)
        assert host == "127.0.0.1", "the proxy forwards to loopback only"
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        headers = "".join(
            f"{name}: {value}\r\n"
            for name, value in request.headers.items()
            if name not in {"proxy-connection", "connection"}
        )
        up_writer.write(
            f"{request.method} /{path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n".encode()
            + request.body
        )
        try:
            await up_writer.drain()
            head = await up_reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            answer = head + await up_reader.readexactly(length)
        finally:
            _hang_up(up_writer)
        writer.write(answer)
        await writer.drain()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, port = target.rsplit(":", 1)
        assert host == "127.0.0.1", "the proxy tunnels to loopback only"
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            _hang_up(up_writer)


class CountingRelay(_Listener):
    """A TCP relay on 127.0.0.1 to ``port`` (loopback); ``connections`` counts accepted ones."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.target = port
        self.connections = 0

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = _tracked(self._tasks)
        self.connections += 1
        up_writer: asyncio.StreamWriter | None = None

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            _hang_up(dst)

        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            if up_writer is not None:
                _hang_up(up_writer)
            _hang_up(writer)


class TlsAlertServer(_Listener):
    """Answers the first bytes of every connection with a TLS alert record, then hangs up.

    ``silent``: that many first connections get no answer at all (a server
    too busy to reply); they are left open until the client gives up.
    """

    #: A TLS 1.2 fatal alert, "protocol version" (70).
    ALERT = b"\x15\x03\x03\x00\x02\x02\x46"

    def __init__(self, *, silent: int = 0) -> None:
        super().__init__()
        self.connections = 0
        self.silent = silent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = _tracked(self._tasks)
        self.connections += 1
        try:
            await reader.read(5)
            if self.connections <= self.silent:
                await reader.read()  # (until the client closes)
                return
            writer.write(self.ALERT)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
