"""The default stack's network backend (``_transport._asyncio_net``) against real sockets.

Each test talks to a small asyncio server on 127.0.0.1 that it starts and
stops itself: what httpcore asks of a connection (read, write, TLS, close,
"is it readable"), the flow control both ways, and the errors httpx maps.
The whole stack over this backend is what the other socket tests run.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpcore
import psutil
import pytest
import trustme
from _raw_servers import closed_port

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter
from ameyo_callbacks._transport import _asyncio_net
from ameyo_callbacks._transport._asyncio_net import AsyncioBackend, AsyncioStream
from ameyo_callbacks._transport._httpx import ShardedTransport
from ameyo_callbacks.testing import FakeAmeyo, serve


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def peer(handler: Handler, port: int = 0, **kwargs: object) -> AsyncIterator[int]:
    """A server on 127.0.0.1 (``port``, or a free one) running ``handler`` per connection.

    Yields its port; on exit it stops, its handlers cancelled.
    """
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", port, **kwargs)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A peer that accepts and then does nothing (reads nothing, sends nothing)."""
    await asyncio.sleep(10)


async def _connect(port: int) -> AsyncioStream:
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    assert isinstance(stream, AsyncioStream)
    return stream


def test_a_proxied_client_keeps_httpx_s_own_backend() -> None:
    """Through a proxy the pools stay as httpx builds them (httpcore's proxy classes)."""
    transport = ShardedTransport(
        verify=ssl.create_default_context(), max_connections=4, proxy="http://127.0.0.1:9"
    )
    assert all(type(p._pool) is not httpcore.AsyncConnectionPool for p in transport._pools)
    assert all(type(p._pool._network_backend) is not AsyncioBackend for p in transport._pools)
    plain = ShardedTransport(verify=ssl.create_default_context(), max_connections=6)
    assert [type(p._pool._network_backend) for p in plain._pools] == [AsyncioBackend] * 2


async def test_a_large_answer_is_read_whole_while_at_most_high_water_waits() -> None:
    """4 MB sent at once, read slowly: every byte in order, never much over HIGH_WATER buffered."""
    body = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB

    async def send_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(body)
        await writer.drain()

    async with peer(send_all) as port:
        stream = await _connect(port)
        protocol = stream._protocol
        got = bytearray()
        most = 0
        while len(got) < len(body):
            for _ in range(20):  # let the peer fill what it can
                await asyncio.sleep(0)
            most = max(most, protocol.buffered)
            got += await stream.read(65536, timeout=5)
        await stream.aclose()
    assert bytes(got) == body
    assert most > 65536  # it did fill up
    assert most <= _asyncio_net.HIGH_WATER + 256 * 1024  # one more read of asyncio's at most


async def test_the_end_of_an_answer_reads_as_empty_and_marks_the_stream_readable() -> None:
    """An idle connection the peer closed is "readable" (httpcore drops it); reads then give b""."""
    closed = asyncio.Event()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await closed.wait()

    async with peer(hang_up) as port:
        stream = await _connect(port)
        assert stream.get_extra_info("is_readable") is False
        closed.set()
        with anyio.fail_after(5):
            while not stream.get_extra_info("is_readable"):
                await asyncio.sleep(0.01)
        assert await stream.read(100, timeout=1) == b""
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"x", timeout=1)
        await stream.aclose()


async def test_a_silent_peer_is_a_read_timeout() -> None:
    """No answer within the read's timeout: httpcore.ReadTimeout, and the stream still closes."""

    async with peer(idle) as port:
        stream = await _connect(port)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.05)
        assert stream._protocol.waiter is None
        await stream.aclose()


async def test_a_peer_that_never_reads_is_a_write_timeout() -> None:
    """Writes wait only while the socket's buffers are full; past the timeout, WriteTimeout."""

    async with peer(idle) as port:
        stream = await _connect(port)
        await stream.write(b"small", timeout=0.05)  # goes out at once

        async def fill() -> None:
            for _ in range(64):  # up to 64 MiB, far past loopback's buffers
                await stream.write(b"x" * 1024 * 1024, timeout=0.2)

        with pytest.raises(httpcore.WriteTimeout):
            await fill()
        await stream.aclose()


async def test_a_reset_connection_is_a_read_error_holding_the_os_error() -> None:
    """A reset: httpcore.ReadError with the ConnectionResetError as its argument."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with peer(reset) as port:
        stream = await _connect(port)
        await stream.write(b"x", timeout=1)
        with pytest.raises(httpcore.ReadError) as info:
            await stream.read(100, timeout=5)
        await stream.aclose()
    assert isinstance(info.value.args[0], ConnectionResetError)


async def test_nothing_listening_is_a_connect_error_holding_the_refusal() -> None:
    """A refused connect: httpcore.ConnectError with ConnectionRefusedError as its argument."""
    with closed_port() as port, pytest.raises(httpcore.ConnectError) as info:
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    assert isinstance(info.value.args[0], ConnectionRefusedError)


async def test_close_has_closed_the_socket_when_it_returns() -> None:
    """aclose() leaves no socket for the garbage collector, even if the loop ends right after."""

    async with peer(idle) as port:
        stream = await _connect(port)
        sock = stream.get_extra_info("socket")
        assert sock.fileno() >= 0
        await stream.aclose()
        assert sock.fileno() == -1
        await stream.aclose()  # twice is harmless


async def test_tls_on_the_stream_reports_its_ssl_object_and_addresses(ca: trustme.CA) -> None:
    """start_tls: the same stream then speaks TLS; httpcore's extra infos answer."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()

    async with peer(echo, ssl=server_ctx) as port:
        stream = await _connect(port)
        assert stream.get_extra_info("ssl_object") is None
        tls = await stream.start_tls(client_ctx, "127.0.0.1", timeout=5)
        await tls.write(b"ping", timeout=5)
        assert await tls.read(100, timeout=5) == b"ping"
        assert isinstance(tls.get_extra_info("ssl_object"), ssl.SSLObject)
        assert tls.get_extra_info("server_addr") == ("127.0.0.1", port)
        assert tls.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert tls.get_extra_info("no such info") is None
        await tls.aclose()


async def test_an_untrusted_certificate_is_a_connect_error_holding_the_ssl_error(
    ca: trustme.CA,
) -> None:
    """A failed handshake: ConnectError with the SSLCertVerificationError; the socket closed."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

    async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)

    async with peer(idle, ssl=server_ctx) as port:
        stream = await _connect(port)
        sock = stream.get_extra_info("socket")
        with pytest.raises(httpcore.ConnectError) as info:
            await stream.start_tls(ssl.create_default_context(), "127.0.0.1", timeout=5)
    assert isinstance(info.value.args[0], ssl.SSLCertVerificationError)
    assert sock.fileno() == -1


async def test_a_silent_tls_port_is_a_connect_timeout() -> None:
    """A handshake the peer never answers: ConnectTimeout within the timeout given."""

    async with peer(idle) as port:
        stream = await _connect(port)
        with anyio.fail_after(5), pytest.raises(httpcore.ConnectTimeout):
            await stream.start_tls(ssl.create_default_context(), "127.0.0.1", timeout=0.1)


def test_on_trio_httpcore_s_own_backend_connects() -> None:
    """Off asyncio, connect_tcp hands over to httpcore's backend for that library."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> type:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        try:
            return type(stream)
        finally:
            await stream.aclose()

    try:
        kind = anyio.run(main, backend="trio")
    finally:
        listener.close()
    assert kind is not AsyncioStream
    assert kind.__module__.startswith("httpcore")


async def test_a_peer_that_answered_and_hung_up_leaves_no_socket_when_closed() -> None:
    """The peer answers early and half-closes without reading: aclose() still closes the socket.

    asyncio begins closing on the peer's end itself, and then waits for what
    is queued to send, which this peer never takes.
    """

    async def answer_and_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
        await asyncio.sleep(10)  # (never reads)

    async with peer(answer_and_hang_up) as port:
        stream = await _connect(port)
        sock = stream.get_extra_info("socket")
        await stream.write(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", timeout=1)

        async def upload() -> None:
            for _ in range(64):
                await stream.write(b"x" * 1024 * 1024, timeout=0.2)

        with pytest.raises((httpcore.WriteTimeout, httpcore.WriteError)):
            await upload()
        assert (await stream.read(65536, timeout=5)).startswith(b"HTTP/1.1 413")
        await stream.aclose()
        assert sock.fileno() == -1


async def test_a_cancel_at_any_step_of_connect_and_tls_is_never_lost(ca: trustme.CA) -> None:
    """Cancelled at each loop step of connect_tcp + start_tls: cancelled, and no socket left.

    (``asyncio.wait_for`` before Python 3.12 can drop a cancellation that
    arrives as what it waits for completes: the call would go on.)
    """
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    finished = cancelled = 0
    async with peer(idle, ssl=server_ctx) as port:
        for step in range(60):

            async def attempt() -> None:
                stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
                try:
                    await stream.start_tls(client_ctx, "127.0.0.1", timeout=5)
                    await asyncio.sleep(0)  # a cancel that was not lost lands here at the latest
                finally:
                    await stream.aclose()

            task = asyncio.ensure_future(attempt())
            for _ in range(step):
                await asyncio.sleep(0)
            if task.done():
                finished += 1
                continue
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            cancelled += 1
        await asyncio.sleep(0.05)
        mine = [c for c in psutil.Process().net_connections() if c.raddr and c.raddr.port == port]
    assert cancelled > 10  # steps inside the connect and the handshake were tried
    assert finished > 0  # and the sweep went past the end
    assert mine == []


async def test_an_unreachable_ipv6_address_costs_a_quarter_second_not_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name with an IPv6 address that drops SYNs, then IPv4: Happy Eyeballs reaches IPv4 soon."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        v6 = socket.socket(socket.AF_INET6)
        v6.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    port = v6.getsockname()[1]
    v6.listen(0)
    backlog = []
    for _ in range(3):  # the accept queue full: further SYNs are dropped
        s = socket.socket(socket.AF_INET6)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("::1", port))
        backlog.append(s)
    loop = asyncio.get_running_loop()

    async def resolve(
        host: str | bytes, port_: int, *args: object, **kwargs: object
    ) -> list[object]:
        assert host in ("dual.invalid", b"dual.invalid")  # (AnyIO passes it encoded)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port_, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_)),
        ]

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    try:
        async with peer(idle, port=port):
            began = loop.time()
            stream = await AsyncioBackend().connect_tcp("dual.invalid", port, timeout=3)
            took = loop.time() - began
            address = stream.get_extra_info("server_addr")
            await stream.aclose()
    finally:
        for s in backlog:
            s.close()
        v6.close()
    assert address[0] == "127.0.0.1"
    assert took < 1.5


async def test_a_walk_and_a_bulk_delete_go_through_this_backend() -> None:
    """The default client over a served fake: a walk and a bulk delete, every stream ours."""
    fake = FakeAmeyo.seeded(300, campaigns=(6,))
    connected: list[object] = []
    original = AsyncioBackend.connect_tcp

    async def spy(self: AsyncioBackend, *args: object, **kwargs: object) -> object:
        stream = await original(self, *args, **kwargs)  # type: ignore[arg-type]
        connected.append(stream)
        return stream

    with pytest.MonkeyPatch.context() as mp, serve(fake) as url:
        mp.setattr(AsyncioBackend, "connect_tcp", spy)
        async with AmeyoCallbacksClient(url, session_id=fake.session_id) as c:
            got = [cb async for cb in c.iter_callbacks(CallbackFilter.campaign(6), prefetch=4)]
            ids = [cb.customer_callback_id for cb in got[:40]]
            result = await c.delete_callbacks(ids, concurrency=8)
    assert len(got) == 300
    assert sorted(result.deleted) == sorted(ids)
    assert len(fake.callbacks) == 260
    assert connected
    assert all(type(s) is AsyncioStream for s in connected)


@pytest.mark.parametrize(
    "case",
    [
        test_a_walk_and_a_bulk_delete_go_through_this_backend,
        test_a_large_answer_is_read_whole_while_at_most_high_water_waits,
        test_the_end_of_an_answer_reads_as_empty_and_marks_the_stream_readable,
        test_a_silent_peer_is_a_read_timeout,
        test_a_peer_that_never_reads_is_a_write_timeout,
        test_a_reset_connection_is_a_read_error_holding_the_os_error,
        test_close_has_closed_the_socket_when_it_returns,
        test_a_peer_that_answered_and_hung_up_leaves_no_socket_when_closed,
    ],
    ids=lambda case: case.__name__.removeprefix("test_").removeprefix("_")[:40],
)
def test_on_uvloop(case: Callable[[], Awaitable[None]]) -> None:
    """The same on uvloop's event loop, which many services run: its transports, same results."""
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(case())


def test_tls_on_uvloop(ca: trustme.CA) -> None:
    """TLS on uvloop: a trusted handshake works, an untrusted one holds its SSL error."""
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(test_tls_on_the_stream_reports_its_ssl_object_and_addresses(ca))
    uvloop.run(test_an_untrusted_certificate_is_a_connect_error_holding_the_ssl_error(ca))


async def test_a_name_that_does_not_resolve_is_a_connect_error_after_one_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lookup's gaierror is what the ConnectError holds (the kind "name not resolved")."""
    loop = asyncio.get_running_loop()
    lookups: list[object] = []

    async def resolve(host: str, port: int, *args: object, **kw: object) -> list[object]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    with pytest.raises(httpcore.ConnectError) as info:
        await AsyncioBackend().connect_tcp("nosuch.invalid", 80, timeout=5)
    assert isinstance(info.value.args[0], socket.gaierror)
    assert lookups == ["nosuch.invalid"]


async def test_a_slow_lookup_counts_against_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lookup slower than the timeout: ConnectTimeout at the timeout, not after the lookup."""
    loop = asyncio.get_running_loop()

    async def resolve(host: str, port: int, *args: object, **kw: object) -> list[object]:
        await asyncio.sleep(5)
        raise AssertionError  # (never reached)

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    began = loop.time()
    with pytest.raises(httpcore.ConnectTimeout):
        await AsyncioBackend().connect_tcp("slow.invalid", 80, timeout=0.1)
    assert loop.time() - began < 2


async def test_the_os_s_own_connect_timeout_is_a_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ETIMEDOUT from the OS is ConnectTimeout, as from httpcore's own backend."""
    loop = asyncio.get_running_loop()

    async def timed_out(*args: object, **kwargs: object) -> object:
        raise TimeoutError(110, "Connection timed out")

    monkeypatch.setattr(loop, "create_connection", timed_out)
    with pytest.raises(httpcore.ConnectTimeout) as info:
        await AsyncioBackend().connect_tcp("127.0.0.1", 9, timeout=5)
    assert isinstance(info.value.args[0], TimeoutError)
