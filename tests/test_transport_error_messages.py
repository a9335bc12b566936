"""A failed request's message says what to check, with this client's own settings in it.

Through the public client over a transport that fails the way httpx does:
the message names ``host:port`` and the timeout the client was built with,
suggests https for a dropped plain-http connection, and never shows the
sessionId. No socket: the transport raises before anything is sent anywhere.
"""

from __future__ import annotations

import httpx
import pytest
from _support import BASE, SESSION

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AnswerTimeoutError,
    CallbackFilter,
    ConnectionFailedError,
    ConnectionLostError,
    RetryPolicy,
    TransportError,
)

WHERE = CallbackFilter.campaign(6)
HTTPS_BASE = "https://ameyo.example:8443"


class Failing(httpx.AsyncBaseTransport):
    """Raises ``exc`` for every request, counting them."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.exc


async def failure(
    exc: Exception, *, base_url: str = BASE, timeout: float | httpx.Timeout = 30.0
) -> TransportError:
    """The error ``get_callbacks`` raises when every request fails with ``exc`` (no retries)."""
    transport = Failing(exc)
    client = AmeyoCallbacksClient(
        base_url,
        session_id=SESSION,
        transport=transport,
        timeout=timeout,
        retry=RetryPolicy.none(),
    )
    async with client:
        with pytest.raises(TransportError) as caught:
            await client.get_callbacks(WHERE)
    assert transport.calls == 1
    assert SESSION not in str(caught.value)
    assert SESSION not in repr(caught.value)
    return caught.value


async def test_a_read_timeout_names_the_clients_read_timeout() -> None:
    """A stalled server: 'no data from host:port for <read timeout> s', as configured."""
    error = await failure(httpx.ReadTimeout("timed out"), timeout=httpx.Timeout(12.5))
    assert type(error) is AnswerTimeoutError
    assert error.kind == "read_timeout"
    assert "no data from ameyo.example:8888 for 12.5 s: the server is slow or stalled" in str(error)


async def test_a_read_timeout_without_a_read_limit_says_the_read_timeout() -> None:
    """With no read timeout set, the message says 'the read timeout' instead of a number."""
    error = await failure(httpx.ReadTimeout("timed out"), timeout=httpx.Timeout(5, read=None))
    assert "no data from ameyo.example:8888 for the read timeout" in str(error)


async def test_a_connect_timeout_names_the_clients_connect_timeout() -> None:
    """No connection in time: the connect timeout and what to check (host, port, firewall)."""
    error = await failure(httpx.ConnectTimeout("timed out"), timeout=httpx.Timeout(30, connect=2.5))
    assert type(error) is ConnectionFailedError
    assert error.request_sent is False
    message = str(error)
    assert "no connection to ameyo.example:8888 within 2.5 s" in message
    assert "check the host, the port and any firewall, or raise timeout= (connect)" in message


@pytest.mark.parametrize(
    ("base_url", "hinted"),
    [pytest.param(BASE, True, id="http"), pytest.param(HTTPS_BASE, False, id="https")],
)
async def test_a_dropped_plain_connection_suggests_https(base_url: str, hinted: bool) -> None:
    """Dropped mid-answer: 'may have acted'; on http:// only, a hint to try https://."""
    error = await failure(
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        base_url=base_url,
    )
    assert type(error) is ConnectionLostError
    assert error.request_sent is True
    message = str(error)
    assert "dropped before the whole answer: the server may have acted on the request" in message
    assert ("(if this port speaks https, use https://)" in message) is hinted


async def test_a_full_pool_says_how_to_make_room() -> None:
    """No free connection in time: raise max_connections or the pool timeout, or send fewer."""
    error = await failure(httpx.PoolTimeout("pool"))
    assert type(error) is ConnectionFailedError
    assert "raise max_connections or timeout= (pool), or send fewer requests at once" in str(error)


async def test_a_failing_proxy_names_the_settings_that_choose_it() -> None:
    """A proxy failure names proxy=, the environment variables and trust_env=False."""
    error = await failure(httpx.ProxyError("502 Bad Gateway from proxy"))
    assert error.kind == "proxy_error"
    message = str(error)
    for setting in ("proxy=", "HTTP(S)_PROXY / NO_PROXY", "trust_env=False"):
        assert setting in message
    assert "502 Bad Gateway from proxy" in message


async def test_the_message_starts_with_the_request_it_was() -> None:
    """The message begins with method and path, and ends with the stack's own words."""
    error = await failure(httpx.WriteTimeout("send stalled"))
    assert error.kind == "write_timeout"
    message = str(error)
    assert message.startswith(f"{error.method} {error.path}: ")
    assert "could not send to ameyo.example:8888 in time: the server does not read" in message
    assert message.endswith("(WriteTimeout: send stalled)")
