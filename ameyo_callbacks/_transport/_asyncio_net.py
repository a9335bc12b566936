"""httpcore's network layer on asyncio's own transports: the default stack's sockets.

httpcore reads and writes through a network backend; its default on asyncio
is AnyIO's socket streams, which put a cancel scope around every read and
write and ask the socket with ``select()`` whether an idle connection was
closed. :class:`AsyncioBackend` does the same work on asyncio's transport
and protocol directly: a read waits on one future, its timeout is one timer,
and "was it closed" is a flag the protocol keeps. It takes about a sixth of
the client's CPU off each request at 32 in flight (B5).

Everything above it is unchanged: httpcore's connection pool (which respx
mocks) under ``httpx.AsyncHTTPTransport`` (which OpenTelemetry's httpx
instrumentation wraps) under ``httpx.AsyncClient`` (event hooks). Off
asyncio (trio) and for unix sockets, httpcore's own backend serves instead.

Errors are httpcore's (``ConnectError``, ``ReadTimeout``, ...) holding the
``OSError`` or ``ssl.SSLError`` behind them as their argument, as httpcore's
own backends raise them (its pool re-raises ``from None``, which drops a
cause): httpx maps them and ``_httpx.httpx_kind`` reads them alike.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpcore
import sniffio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

__all__ = ["AsyncioBackend"]

T = TypeVar("T")

#: Bytes received and not yet read past which the socket stops being read
#: (the kernel's buffer and TCP's window then hold the sender back).
HIGH_WATER = 256 * 1024


class _Protocol(asyncio.Protocol):
    """What arrived on one connection, and whether it ended; wakes the one reader or writer."""

    __slots__ = (
        "buffered",
        "chunks",
        "drain",
        "ended",
        "error",
        "lost",
        "paused_reading",
        "paused_writing",
        "transport",
        "waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.ended = False
        self.lost = False  # connection_lost ran: the socket is closed
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.paused_reading = False
        self.paused_writing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (a stream connection's; uvloop's transports have its methods, not its class)
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        _wake(self.waiter)

    def eof_received(self) -> bool:
        self.ended = True
        _wake(self.waiter)
        return False  # asyncio closes the transport: HTTP/1.1 has no half-close

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.lost = True
        self.error = exc
        _wake(self.waiter)
        _wake(self.drain)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        _wake(self.drain)


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _expire(future: asyncio.Future[None], error: type[httpcore.TimeoutException]) -> None:
    if not future.done():
        future.set_exception(error("timed out"))


async def _wait(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[None],
    timeout: float | None,
    error: type[httpcore.TimeoutException],
) -> None:
    """Wait for ``future``; after ``timeout`` seconds (None: no limit) raise ``error``."""
    if timeout is None:
        await future
        return
    timer = loop.call_later(max(timeout, 0.0), _expire, future, error)
    try:
        await future
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection for httpcore: read, write, TLS, close (one reader, one writer at a time)."""

    __slots__ = ("_loop", "_protocol")

    def __init__(self, protocol: _Protocol, loop: asyncio.AbstractEventLoop) -> None:
        self._protocol = protocol
        self._loop = loop

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """What arrived, up to ``max_bytes``; waits up to ``timeout`` s for some; b"" at the end."""
        protocol = self._protocol
        chunks = protocol.chunks
        if not chunks and not protocol.ended:
            protocol.waiter = self._loop.create_future()
            try:
                await _wait(self._loop, protocol.waiter, timeout, httpcore.ReadTimeout)
            finally:
                protocol.waiter = None
        if not chunks:
            if protocol.error is not None:
                raise httpcore.ReadError(protocol.error) from protocol.error
            return b""
        data = chunks.popleft()
        if len(data) > max_bytes:
            chunks.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        elif chunks and len(data) < max_bytes:
            data = _join(data, chunks, max_bytes)
        protocol.buffered -= len(data)
        if protocol.paused_reading and protocol.buffered <= HIGH_WATER // 2:
            protocol.paused_reading = False
            if protocol.transport is not None and not protocol.transport.is_closing():
                protocol.transport.resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer``; waits up to ``timeout`` s only while the socket's buffer is full."""
        if not buffer:
            return
        protocol = self._protocol
        transport = protocol.transport
        if protocol.error is not None:
            raise httpcore.WriteError(protocol.error) from protocol.error
        if transport is None or transport.is_closing():
            msg = "the connection is closed"
            raise httpcore.WriteError(msg)
        transport.write(buffer)
        if protocol.paused_writing:
            protocol.drain = self._loop.create_future()
            try:
                await _wait(self._loop, protocol.drain, timeout, httpcore.WriteTimeout)
            finally:
                protocol.drain = None
            if protocol.error is not None:
                raise httpcore.WriteError(protocol.error) from protocol.error

    async def aclose(self) -> None:
        """Close the connection and its socket before returning.

        asyncio closes a transport's socket one loop step after ``close()``,
        and only once what is queued to send has gone: a loop that ended
        right after, or a peer that stopped reading (it answered early and
        hung up), would leave it open. So: close, one step, and unless the
        socket is closed by then, abort (what is queued is dropped) and one
        more step.
        """
        protocol = self._protocol
        transport = protocol.transport
        if transport is None or protocol.lost:
            return
        if not transport.is_closing():  # (asyncio may have begun closing: the peer's end)
            transport.close()
        try:
            await asyncio.sleep(0)
        finally:
            if not protocol.lost:
                transport.abort()
        if not protocol.lost:
            await asyncio.sleep(0)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The TLS handshake on this connection; this stream then reads and writes through TLS."""
        protocol = self._protocol
        assert protocol.transport is not None  # noqa: S101  (connected)
        handshake = self._loop.start_tls(
            protocol.transport, protocol, ssl_context, server_hostname=server_hostname
        )
        try:
            transport = await _within(handshake, timeout)
        except BaseException as exc:
            if sys.version_info < (3, 11):
                _close_tls_layer(protocol.transport)
            await self.aclose()
            if isinstance(exc, (_Expired, TimeoutError)):  # (TimeoutError: the OS's)
                raise httpcore.ConnectTimeout(exc) from exc
            if isinstance(exc, OSError):  # ssl.SSLError is one
                raise httpcore.ConnectError(exc) from exc
            raise
        if transport is None:  # the peer closed during the handshake
            await self.aclose()
            msg = "the connection was closed during the TLS handshake"
            raise httpcore.ConnectError(msg)
        protocol.transport = transport
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a connection: its TLS object, addresses, socket, "is_readable"."""
        protocol = self._protocol
        if info == "is_readable":  # data or the end arrived on an idle connection
            return bool(protocol.chunks) or protocol.ended
        transport = protocol.transport
        if transport is None:
            return None
        key = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if key in ("ssl_object", "sockname", "peername", "socket"):
            return transport.get_extra_info(key)
        return None


def _join(first: bytes, chunks: deque[bytes], max_bytes: int) -> bytes:
    """``first`` and the chunks after it, up to ``max_bytes`` in all (the rest stays queued)."""
    parts = [first]
    size = len(first)
    while chunks and size + len(chunks[0]) <= max_bytes:
        chunk = chunks.popleft()
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections as :class:`AsyncioStream` on asyncio; httpcore's own backend otherwise."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A TCP connection to ``host``:``port`` within ``timeout`` s (asyncio sets TCP_NODELAY)."""
        if socket_options is not None or sniffio.current_async_library() != "asyncio":
            return await _fallback().connect_tcp(host, port, timeout, local_address, socket_options)
        loop = asyncio.get_running_loop()
        began = loop.time()
        protocol = _Protocol()
        local = (local_address, 0) if local_address else None

        async def connect() -> bool:
            if await _several_families(loop, host, port):
                return False
            await loop.create_connection(lambda: protocol, host, port, local_addr=local)
            return True

        try:  # the name's lookup and the connect, within the one timeout
            connected = await _within(connect(), timeout)
        except (_Expired, TimeoutError) as exc:  # (TimeoutError: the OS's ETIMEDOUT)
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:  # socket.gaierror (the name) is one
            raise httpcore.ConnectError(exc) from exc
        if not connected:
            # IPv6 and IPv4: AnyIO's connect races them (Happy Eyeballs, RFC 8305), so an
            # unreachable IPv6 address costs 0.25 s, not the whole timeout. (asyncio's own
            # race, happy_eyeballs_delay, left a socket open when cancelled, on 3.12.1 here,
            # and uvloop has none.)
            left = None if timeout is None else max(timeout - (loop.time() - began), 0.0)
            return await _fallback().connect_tcp(host, port, left, local_address)
        return AsyncioStream(protocol, loop)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """httpcore's own backend's unix socket (the library never asks for one)."""
        return await _fallback().connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """httpcore's own backend's sleep."""
        await _fallback().sleep(seconds)


def _close_tls_layer(transport: asyncio.Transport) -> None:
    """Python 3.10: close the TLS layer a failed ``start_tls`` made and left open.

    Its ``start_tls`` closes the socket's transport when the handshake fails
    or is cancelled, but not the TLS transport it made over it, which warns
    "unclosed transport" (a ResourceWarning) when collected.
    """
    layer = getattr(transport.get_protocol(), "_app_transport", None)
    if layer is not None and not layer.is_closing():
        layer.close()


class _Expired(Exception):  # noqa: N818  (not raised to callers: each becomes httpcore's)
    """A connect or handshake took longer than its timeout."""


async def _within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``await awaitable``, raising :class:`_Expired` after ``timeout`` seconds (None: never).

    Not ``asyncio.wait_for``: before Python 3.12 it runs the awaitable in a
    task of its own, and a cancellation of the caller that arrives as that
    task finishes is lost (the call goes on, past a deadline's cancel). On
    3.10 (no ``asyncio.timeout``) the timer cancels the task itself; a
    cancel from outside in the very loop step the timer fires reads as the
    timeout, as with the ``async-timeout`` package there.
    """
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await awaitable
        except TimeoutError as exc:
            if scope.expired():  # (not an OS timeout from within)
                raise _Expired(timeout) from exc
            raise
    task = asyncio.current_task()
    assert task is not None  # noqa: S101  (called from a task)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(max(timeout, 0.0), expire)
    try:
        return await awaitable
    except asyncio.CancelledError as exc:
        if expired:
            raise _Expired(timeout) from exc
        raise
    finally:
        timer.cancel()


async def _several_families(loop: asyncio.AbstractEventLoop, host: str, port: int) -> bool:
    """Whether ``host`` is a name with addresses of more than one family (IPv4 and IPv6)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False  # an address: nothing to resolve
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return len({info[0] for info in infos}) > 1


def _fallback() -> httpcore.AsyncNetworkBackend:
    """httpcore's own backend for the running library, as its default would choose."""
    if sniffio.current_async_library() == "trio":
        return httpcore.TrioBackend()
    return httpcore.AnyIOBackend()
