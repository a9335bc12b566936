"""A scheme that does not fit the port, on real loopback sockets over both HTTP stacks.

``http://`` to a port that speaks TLS (uvicorn with a trustme certificate,
a raw asyncio TLS server that closes before any HTTP answer, a server that
answers TLS bytes, nginx's 400 page) and ``https://`` to a plain port each
end at once with ``TLSError`` of kind ``https_expected`` or
``http_expected``, a message naming the scheme to use, in at most two
connections (counted where the server accepts them) and under 3 s, the
bound the issue sets.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import httpx
import pytest
import trustme
from _raw_servers import CountingRelay, RawServer, Request, TlsAlertServer, respond
from _support import stack_settings

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    CallbackFilter,
    ConnectionLostError,
    HttpBackend,
    RetryPolicy,
    TLSError,
)
from ameyo_callbacks._transport._base import TlsProbe
from ameyo_callbacks.testing import FakeAmeyo, serve

pytestmark = pytest.mark.integration

#: Six attempts with no back-off: a retried kind would show in the connection count.
RETRYING = RetryPolicy(attempts=6, wait_initial=0.01, wait_max=0.01, wait_jitter=0, timeout=20.0)
WHERE = CallbackFilter.campaign(6)
NGINX_400 = (
    b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n"
    b"<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
    b"<center>The plain HTTP request was sent to HTTPS port</center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.fixture(params=["aiohttp", "httpx"])
def backend(request: pytest.FixtureRequest) -> HttpBackend:
    return cast("HttpBackend", request.param)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextmanager
def fake_on(ca: trustme.CA, *, tls: bool) -> Iterator[int]:
    """The fake on uvicorn, with TLS (a trustme certificate) or without: its port."""
    fake = FakeAmeyo.seeded(20)
    if not tls:
        with serve(fake) as base:
            yield int(base.rsplit(":", 1)[1])
        return
    with (
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.tempfile() as pem,
        serve(fake, ssl_certfile=pem) as base,
    ):
        yield int(base.rsplit(":", 1)[1])


async def failing_list(url: str, backend: HttpBackend, error: type[Exception]) -> Any:
    """The ``error`` one listing at ``url`` raises (retried as RETRYING allows), and the seconds."""
    async with AmeyoCallbacksClient(
        url, session_id="sid-scheme-0001", http_backend=backend, retry=RETRYING
    ) as client:
        started = time.perf_counter()
        with pytest.raises(error) as caught:
            await client.get_callbacks(WHERE)
        return caught.value, time.perf_counter() - started


def assert_says_use(error: TLSError, kind: str, scheme: str) -> None:
    assert error.kind == kind
    assert f"use {scheme}:// in the base URL" in str(error)
    assert error.request_sent is False
    assert error.attempts == 1


@asynccontextmanager
async def relayed(port: int) -> AsyncIterator[CountingRelay]:
    async with CountingRelay(port) as relay:
        yield relay


async def test_plain_http_to_uvicorn_over_tls_says_use_https(
    backend: HttpBackend, ca: trustme.CA
) -> None:
    """uvicorn with TLS closes a plain request unanswered: https_expected, at most 2 connections."""
    with fake_on(ca, tls=True) as port:
        async with relayed(port) as relay:
            error, seconds = await failing_list(relay.url("http"), backend, TLSError)
    assert_says_use(error, "https_expected", "https")
    assert relay.connections <= 2
    assert seconds < 3


async def test_plain_http_to_a_tls_server_that_closes_says_use_https(
    backend: HttpBackend, ca: trustme.CA
) -> None:
    """A raw asyncio TLS server that closes before any HTTP answer: https_expected."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def never(request: Request, *_: Any) -> bool:
        raise AssertionError("a plain request must never be read as HTTP here")

    async with RawServer(never, ssl_context=context) as server:
        url = server.url.replace("https://", "http://")
        error, seconds = await failing_list(url, backend, TLSError)
    assert_says_use(error, "https_expected", "https")
    assert server.requests == []
    assert server.connections <= 2
    assert seconds < 3


async def test_plain_http_answered_with_tls_bytes_says_use_https(backend: HttpBackend) -> None:
    """A port that answers with a TLS alert record: https_expected, at most 2 connections."""
    async with TlsAlertServer() as server:
        error, seconds = await failing_list(server.url, backend, TLSError)
    assert_says_use(error, "https_expected", "https")
    assert server.connections <= 2
    assert seconds < 3


async def test_nginx_plain_http_page_says_use_https(backend: HttpBackend) -> None:
    """nginx's 400 "The plain HTTP request was sent to HTTPS port": https_expected, 1 connection."""

    async def nginx(request: Request, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(respond(400, NGINX_400, reason="Bad Request", extra="Connection: close\r\n"))
        await writer.drain()
        return False

    async with RawServer(nginx) as server:
        error, seconds = await failing_list(server.url, backend, TLSError)
    assert_says_use(error, "https_expected", "https")
    assert "sent to HTTPS port" in str(error)
    assert server.connections == 1
    assert seconds < 3


async def test_https_to_plain_uvicorn_says_use_http(backend: HttpBackend, ca: trustme.CA) -> None:
    """https:// to uvicorn without TLS: http_expected, at most 2 connections."""
    with fake_on(ca, tls=False) as port:
        async with relayed(port) as relay:
            error, seconds = await failing_list(relay.url("https"), backend, TLSError)
    assert_says_use(error, "http_expected", "http")
    assert relay.connections <= 2
    assert seconds < 3


async def test_https_to_a_plain_raw_server_says_use_http(backend: HttpBackend) -> None:
    """https:// to a raw plain-HTTP server (it answers the hello with a 400): http_expected."""

    async def never(request: Request, *_: Any) -> bool:
        raise AssertionError("no HTTP request arrives over a failed handshake")

    async with RawServer(never) as server:
        url = server.url.replace("http://", "https://")
        error, seconds = await failing_list(url, backend, TLSError)
    assert_says_use(error, "http_expected", "http")
    assert server.connections <= 2
    assert seconds < 3


async def test_a_plain_server_that_drops_the_request_is_still_a_lost_answer(
    backend: HttpBackend,
) -> None:
    """A plain port that closes without answering stays connection_lost, retried; asked once."""

    async def close(request: Request, *_: Any) -> bool:
        return False

    async with RawServer(close) as server:
        error, _ = await failing_list(server.url, backend, ConnectionLostError)
    assert error.kind == "connection_lost"
    assert error.attempts == RETRYING.attempts
    assert len(server.requests) == RETRYING.attempts
    assert server.connections == RETRYING.attempts + 1  # and one TLS hello, answered 400


async def test_the_tls_probe_keeps_an_answer_not_a_silence() -> None:
    """A port too busy to answer the probe is asked again at the next failure; an answer is kept."""
    async with TlsAlertServer(silent=1) as server:
        # (the probe waits up to the connect timeout)
        probe = TlsProbe(stack_settings(server.url, timeout=httpx.Timeout(30.0, connect=0.2)))
        assert await probe.speaks_tls() is False  # no answer within 0.2 s: not kept
        assert await probe.speaks_tls() is True  # asked again: a TLS record
        assert await probe.speaks_tls() is True  # kept: not asked a third time
        assert server.connections == 2
