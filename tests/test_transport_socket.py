"""Real sockets on 127.0.0.1: every transport failure, on both HTTP backends, told apart.

Each test runs a small raw asyncio server (``_raw_servers``) that misbehaves
one way, and asserts the outcome: the exception class and ``kind``, the
message's advice, whether it was retried, how long the call took, and what
the server really got.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import logging
import ssl
import subprocess
import sys
import time
import warnings
from typing import Any, TypeVar, cast

import anyio
import anyio.lowlevel
import httpx
import pytest
import trustme
from _raw_servers import (
    BlackHole,
    DeleteServer,
    RawServer,
    RecordingProxy,
    Request,
    closed_port,
    respond,
)
from _support import CALLBACK_ID, spec_record, unmeasured_env

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AmeyoError,
    AnswerTimeoutError,
    CallbackFilter,
    ConnectionFailedError,
    ConnectionLostError,
    HttpBackend,
    ResponseTooLargeError,
    RetryPolicy,
    TLSError,
)
from ameyo_callbacks.testing import FakeAmeyo, Fault, FaultPlan, serve

pytestmark = pytest.mark.integration

BACKENDS: list[HttpBackend] = ["aiohttp", "httpx"]
SESSION = "sid-transport-31c4"
FAST = RetryPolicy(
    attempts=3, wait_initial=0.01, wait_max=0.01, wait_jitter=0, timeout=10.0, attempt_timeout=5.0
)
WHERE = CallbackFilter.campaign(6)
PAGE = json.dumps([spec_record()]).encode()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> HttpBackend:
    return cast("HttpBackend", request.param)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def client(url: str, backend: HttpBackend, **kwargs: Any) -> AmeyoCallbacksClient:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("session_id", SESSION)
    return AmeyoCallbacksClient(url, http_backend=backend, **kwargs)


async def _tls_failure(url: str, backend: HttpBackend, **kwargs: Any) -> TLSError:
    """The TLSError that one listing through ``client(url, backend, **kwargs)`` raises."""
    async with client(url, backend, **kwargs) as c:
        with pytest.raises(TLSError) as info:
            await c.get_callbacks(WHERE)
    return info.value


E = TypeVar("E", bound=Exception)


async def _timed_failure(
    kind: type[E], url: str, backend: HttpBackend, **kwargs: Any
) -> tuple[E, float]:
    """The ``kind`` error one listing through ``client(url, backend, **kwargs)`` raises,
    and the seconds that listing took."""
    async with client(url, backend, **kwargs) as c:
        started = time.perf_counter()
        with pytest.raises(kind) as info:
            await c.get_callbacks(WHERE)
        elapsed = time.perf_counter() - started
    return info.value, elapsed


async def answer_page(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    writer.write(respond(200, PAGE))
    await writer.drain()
    return True


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ameyo_callbacks" and r.levelno == logging.WARNING
    ]


# --------------------------------------------------------------------------
# Connecting


async def test_refused_says_nothing_listens_and_warns_once_per_retry(
    backend: HttpBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """A closed port: ConnectionFailedError kind connection_refused, one WARNING per retry."""
    caplog.set_level(logging.DEBUG)
    with closed_port() as port:
        async with client(f"http://127.0.0.1:{port}", backend) as c:
            with pytest.raises(ConnectionFailedError) as info:
                await c.get_callbacks(WHERE)
    error = info.value
    assert error.kind == "connection_refused"
    assert error.request_sent is False
    assert f"nothing listens at 127.0.0.1:{port}: check the base URL and port" in str(error)
    assert error.attempts == 3
    assert error.cause is not None
    warned = warnings_of(caplog)
    assert len(warned) == 2
    assert all("connection refused" in w for w in warned)
    assert len(set(warned)) == 2  # attempt numbers differ: no line repeated


async def test_connect_timeout_is_its_own_kind(backend: HttpBackend) -> None:
    """A listener that never completes the handshake: kind connect_timeout."""
    with BlackHole() as hole:
        async with client(
            hole.url, backend, timeout=httpx.Timeout(5.0, connect=0.3), retry=RetryPolicy.none()
        ) as c:
            started = time.perf_counter()
            with pytest.raises(ConnectionFailedError) as info:
                await c.get_callbacks(WHERE)
    assert info.value.kind == "connect_timeout"
    assert info.value.is_timeout
    assert time.perf_counter() - started < 3.0


#: Loop steps to cancel a call after: from before its connect starts to after the
#: server has read its request (the test checks that the range spans both).
CANCEL_STEPS = 60


async def test_a_call_cancelled_at_any_step_of_its_connect_leaves_no_socket_open(
    backend: HttpBackend,
) -> None:
    """Cancelled after 0, 1, 2... loop steps, through the connect: no socket is left unclosed.

    Walks and bulk deletes cancel requests in flight. anyio before 4.16 dropped
    the socket of a connect_tcp() cancelled just after it connected (httpx's
    path), leaving it to the garbage collector: a ResourceWarning for the
    transport and one for the socket, at whatever moment the collector ran.
    """

    async def never_answer(request: Request, reader: Any, writer: Any) -> bool:
        return True  # read on: the call waits for an answer until it is cancelled

    arrived = []
    async with RawServer(never_answer) as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for steps in range(CANCEL_STEPS):
                before = len(server.requests)
                async with client(server.url, backend, retry=RetryPolicy.none()) as c:
                    async with anyio.create_task_group() as group:
                        group.start_soon(c.get_callbacks, WHERE)
                        for _ in range(steps):
                            await anyio.lowlevel.checkpoint()
                        group.cancel_scope.cancel()
                arrived.append(len(server.requests) - before)
            gc.collect()
    assert arrived[0] == 0  # cancelled before the connect began
    assert arrived[-1] == 1  # cancelled after the request was sent: the connect was crossed
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# --------------------------------------------------------------------------
# TLS


async def test_untrusted_certificate_is_not_retried(backend: HttpBackend, ca: trustme.CA) -> None:
    """A certificate the client does not trust: TLSError tls_certificate, one attempt."""
    async with RawServer(answer_page, ssl_context=_server_context(ca, "127.0.0.1")) as server:
        error = await _tls_failure(server.url, backend)
    assert error.kind == "tls_certificate"
    assert "not trusted: pass verify= a CA bundle" in str(error)
    assert error.attempts == 1
    assert server.requests == []


async def test_hostname_mismatch_is_not_retried(
    backend: HttpBackend, ca: trustme.CA, ca_file: str
) -> None:
    """A trusted certificate for another name: TLSError tls_hostname, one attempt."""
    context = _server_context(ca, "other.example")
    async with RawServer(answer_page, ssl_context=context) as server:
        error = await _tls_failure(server.url, backend, verify=ca_file)
    assert error.kind == "tls_hostname"
    assert "not valid for that host" in str(error)
    assert error.attempts == 1
    assert server.requests == []


async def test_https_to_a_plain_port_is_a_scheme_mismatch(backend: HttpBackend) -> None:
    """https:// to a port that speaks plain HTTP: TLSError http_expected, one attempt."""
    async with RawServer(answer_page) as server:
        url = server.url.replace("http://", "https://")
        error = await _tls_failure(url, backend)
    assert error.kind == "http_expected"
    assert "use http:// in the base URL" in str(error)
    assert error.attempts == 1


async def test_trusted_certificate_works_with_a_ca_file(
    backend: HttpBackend, ca: trustme.CA, ca_file: str
) -> None:
    """The same TLS server with verify= its CA answers (the failures above are the cert's)."""
    async with RawServer(answer_page, ssl_context=_server_context(ca, "127.0.0.1")) as server:
        async with client(server.url, backend, verify=ca_file) as c:
            page = await c.get_callbacks(WHERE)
    assert [cb.customer_callback_id for cb in page] == [CALLBACK_ID]


async def test_ssl_cert_file_is_read_unless_trust_env_is_off(
    backend: HttpBackend, ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE names the CA by default; trust_env=False ignores it."""
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    async with RawServer(answer_page, ssl_context=_server_context(ca, "127.0.0.1")) as server:
        async with client(server.url, backend) as c:
            assert len(await c.get_callbacks(WHERE)) == 1
        error = await _tls_failure(server.url, backend, trust_env=False)
    assert error.kind == "tls_certificate"


# --------------------------------------------------------------------------
# The answer


async def close_after_reading(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    return False


async def test_connection_lost_after_sending_is_retried_and_never_resent_below(
    backend: HttpBackend,
) -> None:
    """Closed with the request read: ConnectionLostError; one request reaches it per attempt."""
    async with RawServer(close_after_reading) as server:
        async with client(server.url, backend) as c:
            with pytest.raises(ConnectionLostError) as info:
                await c.delete_callback("d810-1")
    error = info.value
    assert error.kind == "connection_lost"
    assert error.request_sent is True
    assert error.attempts == 3
    # aiohttp would re-send an idempotent DELETE itself; the client stops that.
    assert len(server.requests) == 3


async def test_not_http_is_a_protocol_error(backend: HttpBackend) -> None:
    """An answer that is not HTTP: ConnectionLostError kind protocol_error."""

    async def garbage(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        return False

    async with RawServer(garbage) as server:
        async with client(server.url, backend, retry=RetryPolicy.none()) as c:
            with pytest.raises(ConnectionLostError) as info:
                await c.get_callbacks(WHERE)
    assert info.value.kind == "protocol_error"
    assert "is not HTTP" in str(info.value)


async def test_silent_server_is_a_read_timeout(backend: HttpBackend) -> None:
    """No byte for the read timeout: AnswerTimeoutError kind read_timeout."""

    async def silent(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await anyio.sleep(5)
        return False

    async with RawServer(silent) as server:
        async with client(
            server.url, backend, timeout=httpx.Timeout(0.3), retry=RetryPolicy.none()
        ) as c:
            with pytest.raises(AnswerTimeoutError) as info:
                await c.get_callbacks(WHERE)
    assert info.value.kind == "read_timeout"
    assert info.value.is_timeout


def trickler(*, status_line: bool, every: float = 0.1) -> RawServer:
    async def trickle(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        answer = respond(200, PAGE * 20)
        head, _, body = answer.partition(b"\r\n\r\n")
        start = b"" if status_line else head + b"\r\n\r\n"
        writer.write(start)
        for byte in (answer if status_line else body)[len(start) if status_line else 0 :]:
            writer.write(bytes([byte]))
            await writer.drain()
            await anyio.sleep(every)
        return True

    return RawServer(trickle)


@pytest.mark.parametrize("status_line", [False, True], ids=["body", "status-line"])
@pytest.mark.parametrize(
    ("policy", "kind", "says"),
    [
        pytest.param(
            RetryPolicy(attempts=1, attempt_timeout=0.5, timeout=None),
            "attempt_deadline",
            "RetryPolicy.attempt_timeout",
            id="attempt",
        ),
        pytest.param(
            RetryPolicy(attempts=2, attempt_timeout=5.0, timeout=0.5),
            "call_deadline",
            "the call's time budget of 0.5 s ran out",
            id="call",
        ),
    ],
)
async def test_trickling_answer_meets_the_deadline_that_comes_first(
    backend: HttpBackend, status_line: bool, policy: RetryPolicy, kind: str, says: str
) -> None:
    """One byte every 0.1 s (never a read timeout): the sooner deadline ends it, and is named."""
    async with trickler(status_line=status_line) as server:
        error, elapsed = await _timed_failure(AnswerTimeoutError, server.url, backend, retry=policy)
    assert error.kind == kind
    assert error.seconds == 0.5
    assert says in str(error)
    assert 0.5 <= elapsed < 1.5


async def test_trickling_answer_ends_the_call_within_its_budget(backend: HttpBackend) -> None:
    """With retries, the call's budget ends the attempt in progress: budget + 1 s at most."""
    # Attempts start at 0 and 0.95 s: the second has 0.55 s to reach the server
    # before the budget ends it (at 0.6 s a third started at 1.3 s had 0.2 s,
    # thin on a loaded machine for requests == attempts below).
    policy = RetryPolicy(
        attempts=10, timeout=1.5, attempt_timeout=0.9, wait_initial=0.05, wait_jitter=0
    )
    async with trickler(status_line=False) as server:
        error, elapsed = await _timed_failure(AnswerTimeoutError, server.url, backend, retry=policy)
    assert elapsed < 1.5 + 1.0
    assert error.kind in {"call_deadline", "attempt_deadline"}
    assert error.attempts >= 2
    assert len(server.requests) == error.attempts


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
async def test_oversized_answer_stops_reading_at_the_cap(
    backend: HttpBackend, announced: bool
) -> None:
    """Over max_response_bytes: ResponseTooLargeError, not retried, the body left unread."""
    sent: list[int] = []

    async def huge(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        block = b"x" * 65536
        if announced:
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(block) * 1000}\r\n\r\n"
        else:
            head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        writer.write(head.encode())
        total = 0
        for _ in range(1000):
            chunk = block if announced else b"%x\r\n%s\r\n" % (len(block), block)
            writer.write(chunk)
            await writer.drain()
            total += len(block)
            sent.append(total)
        return False

    async with RawServer(huge) as server:
        async with client(server.url, backend, max_response_bytes=256 * 1024) as c:
            with pytest.raises(ResponseTooLargeError) as info:
                await c.get_callbacks(WHERE)
    assert info.value.kind == "too_large"
    assert info.value.limit == 256 * 1024
    assert info.value.attempts == 1
    assert len(server.requests) == 1
    assert "max_response_bytes=262,144" in str(info.value)
    assert not sent or sent[-1] < 65536 * 1000, "the client must stop reading, not drain it"


def gzip_server(body: bytes) -> RawServer:
    """A server answering every request with ``body`` gzip-encoded (as nginx's gzip does)."""
    packed = gzip.compress(body)

    async def handler(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(respond(200, packed, extra="Content-Encoding: gzip\r\n"))
        await writer.drain()
        return True

    return RawServer(handler)


async def test_a_gzip_answer_is_decoded(backend: HttpBackend) -> None:
    """A gzip-encoded page (what nginx's gzip sends) decodes to the same records."""
    async with gzip_server(PAGE) as server, client(server.url, backend) as c:
        records = await c.get_callbacks(WHERE)
    assert [r.customer_callback_id for r in records] == [CALLBACK_ID]
    assert "gzip" in server.requests[0].headers.get("accept-encoding", "")


async def test_the_size_cap_counts_decompressed_bytes(backend: HttpBackend) -> None:
    """A small gzip body that inflates past max_response_bytes is refused, not inflated whole."""
    body = b"[" + b" " * 2_000_000 + b"]"
    assert len(gzip.compress(body)) < 10_000
    async with (
        gzip_server(body) as server,
        client(server.url, backend, max_response_bytes=100_000) as c,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await c.get_callbacks(WHERE)
    assert info.value.limit == 100_000
    assert "more than 100,000 bytes arrived" in str(info.value)


async def test_a_redirect_is_not_followed(backend: HttpBackend) -> None:
    """A 302 is the server's answer, not a second request somewhere else (on either stack)."""

    async def handler(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(respond(302, b"", extra="Location: /elsewhere\r\n"))
        await writer.drain()
        return True

    async with RawServer(handler) as server, client(server.url, backend) as c:
        with pytest.raises(AmeyoError) as info:
            await c.get_callbacks(WHERE)
    assert [r.target.split("?")[0] for r in server.requests] == [
        "/ameyorestapi/voice/customerCallbacks/getFiltered"
    ]
    assert "302" in str(info.value)


# --------------------------------------------------------------------------
# DELETE outcomes


@pytest.mark.parametrize("mode", ["after", "before", "empty"])
@pytest.mark.parametrize("seed", [1, 2])
async def test_deleted_is_exactly_what_is_gone(backend: HttpBackend, mode: str, seed: int) -> None:
    """Connections closed after (or before) carrying out a delete, or a 200 with no body
    after it: every outcome is true."""
    ids = {f"d810-{n}" for n in range(120)}
    policy = RetryPolicy(attempts=8, wait_initial=0.001, wait_max=0.005, wait_jitter=0)
    async with DeleteServer(ids, mode=mode, rate=0.25, seed=seed) as server:
        async with client(server.url, backend, retry=policy) as c:
            result = await c.delete_callbacks(sorted(ids), concurrency=8)
    gone = ids - server.ids
    assert server.faults >= 10, "the server must have dropped connections"
    assert max(server.faults_of.values()) >= 2, "some id must have lost two answers"
    assert sorted(result.deleted) == sorted(gone)  # a list: an id counted twice fails
    assert result.not_found == ()
    assert not result.failed
    assert gone == ids


async def test_not_found_without_a_lost_answer_is_still_reported(backend: HttpBackend) -> None:
    """An id that never existed is not_found (the rule needs a lost answer first)."""
    async with DeleteServer({"d810-1"}, mode="none", rate=0.0) as server:
        async with client(server.url, backend) as c:
            result = await c.delete_callbacks(["d810-1", "d810-404"])
    assert result.deleted == ("d810-1",)
    assert list(result.not_found) == ["d810-404"]


# --------------------------------------------------------------------------
# Proxies


async def test_proxy_from_the_environment_is_used_unless_trust_env_is_off(
    backend: HttpBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY routes requests through the proxy; trust_env=False and NO_PROXY bypass it."""
    async with RawServer(answer_page) as server, RecordingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with client(server.url, backend) as c:
            assert len(await c.get_callbacks(WHERE)) == 1
        assert len(proxy.seen) == 1
        assert proxy.seen[0].startswith(f"POST {server.url}/ameyorestapi/")
        async with client(server.url, backend, trust_env=False) as c:
            await c.get_callbacks(WHERE)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        async with client(server.url, backend) as c:
            await c.get_callbacks(WHERE)
    assert len(proxy.seen) == 1
    assert len(server.requests) == 3


async def test_explicit_proxy_tunnels_https(
    backend: HttpBackend, ca: trustme.CA, ca_file: str
) -> None:
    """proxy= sends https through a CONNECT tunnel (even with trust_env=False)."""
    context = _server_context(ca, "127.0.0.1")
    async with RawServer(answer_page, ssl_context=context) as server, RecordingProxy() as proxy:
        async with client(
            server.url, backend, verify=ca_file, proxy=proxy.url, trust_env=False
        ) as c:
            assert len(await c.get_callbacks(WHERE)) == 1
    assert proxy.seen == [f"CONNECT 127.0.0.1:{server.port}"]
    assert len(server.requests) == 1


async def test_dead_proxy_is_a_proxy_error(backend: HttpBackend) -> None:
    """A proxy that is not there: ConnectionFailedError naming the proxy settings."""
    async with RawServer(answer_page) as server:
        with closed_port() as proxy_port:
            async with client(
                server.url,
                backend,
                proxy=f"http://127.0.0.1:{proxy_port}",
                retry=RetryPolicy.none(),
            ) as c:
                with pytest.raises(ConnectionFailedError) as info:
                    await c.get_callbacks(WHERE)
    assert info.value.kind in {"proxy_error", "connection_refused"}
    assert server.requests == []


# --------------------------------------------------------------------------
# The fake's faults on a real socket (uvicorn)


async def test_fake_close_after_acting_on_a_socket(backend: HttpBackend) -> None:
    """Fault.close(apply_before_fault=True) over uvicorn: the delete done is reported done."""
    fake = FakeAmeyo.seeded(20, campaigns=(6,), seed=2)
    ids = sorted(fake.ids())
    # The plan's draws go to whichever delete arrives next, an order that changes
    # from run to run. Seed 3 draws 6 faults before its 20th answer: fewer than
    # the 8 attempts, so no id can meet a fault on every one (seed 4 drew 14:
    # one id could meet 8 of them and be honestly failed); every run sees the
    # same 6 closes in 26 requests.
    fake.faults = FaultPlan(
        rate=0.3, kinds=[Fault.close(apply_before_fault=True)], seed=3, endpoints=["delete"]
    )
    policy = RetryPolicy(attempts=8, wait_initial=0.001, wait_max=0.005, wait_jitter=0)
    with serve(fake) as url:
        async with client(url, backend, session_id=fake.session_id, retry=policy) as c:
            result = await c.delete_callbacks(ids, concurrency=4)
    assert sum(entry.fault == "close" for entry in fake.requests) >= 3
    assert result.not_found == ()
    assert set(result.deleted) == set(ids) - fake.ids() == set(ids)


async def test_fake_trickle_and_oversized_on_a_socket(backend: HttpBackend) -> None:
    """Fault.trickle meets the attempt deadline; Fault.oversized the size cap; then answers."""
    fake = FakeAmeyo.seeded(20, campaigns=(6,), seed=2)
    fake.script("list", Fault.trickle(interval=0.05), Fault.oversized(size=4 * 1024 * 1024))
    policy = RetryPolicy(attempts=1, attempt_timeout=0.5, timeout=None)
    with serve(fake) as url:
        async with client(
            url, backend, session_id=fake.session_id, retry=policy, max_response_bytes=2**20
        ) as c:
            started = time.perf_counter()
            with pytest.raises(AnswerTimeoutError) as trickled:
                await c.get_callbacks(WHERE)
            assert time.perf_counter() - started < 1.5
            with pytest.raises(ResponseTooLargeError):
                await c.get_callbacks(WHERE)
            assert len(await c.get_callbacks(WHERE)) == 20
    assert trickled.value.kind == "attempt_deadline"


# --------------------------------------------------------------------------
# Memory

RSS_SCRIPT = r"""
import asyncio, sys
from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter, ResponseTooLargeError

SIZE = 300 * 1024 * 1024
sent = 0

async def handle(reader, writer):
    global sent
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    block = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    try:
        while sent < SIZE:
            writer.write(block)
            await writer.drain()
            sent += 65536
    except ConnectionError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with AmeyoCallbacksClient(f"http://127.0.0.1:{port}", session_id="sid-rss-1f2e",
                                    http_backend=sys.argv[1]) as client:
        try:
            await client.get_callbacks(CallbackFilter.campaign(6))
        except ResponseTooLargeError as exc:
            print("too_large", exc.limit)
    server.close()
    await server.wait_closed()

asyncio.run(main())
# VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a child of a
# big pytest process would report its parent's size; VmHWM is this image's own.
with open("/proc/self/status") as status:
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print("peak_mb", hwm_kb // 1024)
"""


def test_a_300_mb_answer_keeps_peak_memory_bounded(backend: HttpBackend) -> None:
    """A server sending a 300 MB body: the default cap stops reading; peak RSS < 100 MB."""
    out = subprocess.run(  # noqa: S603  (this interpreter, our own script)
        [sys.executable, "-c", RSS_SCRIPT, backend],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=unmeasured_env(),  # the cap's code is measured in-process; coverage adds its own size
    ).stdout.split()
    assert out[:2] == ["too_large", str(8 * 1024 * 1024)]
    assert out[2] == "peak_mb"
    assert int(out[3]) < 100
