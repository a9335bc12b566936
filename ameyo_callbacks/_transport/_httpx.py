"""The default HTTP stack: an ``httpx.AsyncClient`` over several small httpx pools.

httpcore's connection pool does work per request that grows with the
connections it holds, so one pool of 100 connections becomes CPU-bound past
about 24 requests in flight. :class:`ShardedTransport` keeps the client's
``max_connections`` in pools of :data:`SHARD_SIZE` connections, each an
``httpx.AsyncHTTPTransport``, and gives each request to the least busy one,
so the work per request stays flat. Each request still goes through
``httpx.AsyncClient.send`` (event hooks run) and one
``httpx.AsyncHTTPTransport`` (OpenTelemetry's httpx instrumentation sees it)
over httpcore's pool (respx, with its default settings, mocks it), whose
connections are ``_asyncio_net``'s on asyncio (no proxy): a sixth less CPU
a request than AnyIO's socket streams.

:func:`httpx_kind` reads the kind of failure from what httpx raised: pure,
no I/O.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlencode

import httpcore
import httpx

from .._kinds import Kind
from .._protocol import RequestSpec
from ._asyncio_net import AsyncioBackend
from ._base import (
    DEFAULT_HEADERS,
    Reply,
    StackSettings,
    TlsProbe,
    capped,
    certificate_kind,
    chain,
    failure,
    os_kind,
    probed_kind,
    proxy_for,
    stack_ssl_context,
    tls_record,
)

__all__ = ["SHARD_SIZE", "HttpxStack", "ShardedTransport", "httpx_kind"]

#: Connections per pool of :class:`ShardedTransport`.
SHARD_SIZE = 4


class ShardedTransport(httpx.AsyncBaseTransport):
    """``max_connections`` spread over pools of :data:`SHARD_SIZE`; each request to the least busy.

    A request counts as busy on its pool until its answer's body is closed.
    Ties go to the first pool, so a few requests in flight keep reusing the
    same kept-alive connections.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext,
        max_connections: int,
        proxy: str | None = None,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        sizes = [SHARD_SIZE] * (max_connections // SHARD_SIZE)
        if max_connections % SHARD_SIZE:
            sizes.append(max_connections % SHARD_SIZE)
        self._pools = [
            httpx.AsyncHTTPTransport(
                verify=verify,
                limits=httpx.Limits(
                    max_connections=size,
                    max_keepalive_connections=size,
                    keepalive_expiry=keepalive_expiry,
                ),
                proxy=proxy,
            )
            for size in sizes
        ]
        if proxy is None:
            backend = AsyncioBackend()
            for pool, size in zip(self._pools, sizes, strict=True):
                _use_backend(pool, backend, verify, size, keepalive_expiry)
        self._busy = [0] * len(sizes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool with the fewest requests in flight."""
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            busy[index] -= 1
            raise
        response.stream = _Counted(response.stream, busy, index)
        return response

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in self._pools:
            await pool.aclose()


def _use_backend(
    transport: httpx.AsyncHTTPTransport,
    backend: httpcore.AsyncNetworkBackend,
    verify: ssl.SSLContext,
    size: int,
    keepalive_expiry: float | None,
) -> None:
    """``transport``'s httpcore pool, rebuilt as httpx built it but over ``backend``.

    ``httpx.AsyncHTTPTransport`` takes no network backend, so its pool
    (``_pool``, an ``httpcore.AsyncConnectionPool`` in every httpx from 0.27)
    is replaced with one built from the same settings. An httpx that kept its
    pool elsewhere would keep its own backend: slower, never wrong.
    """
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=size,
            max_keepalive_connections=size,
            keepalive_expiry=keepalive_expiry,
            network_backend=backend,
        )


class _Counted(httpx.AsyncByteStream):
    """An answer's body that frees its pool's place when closed (once)."""

    __slots__ = ("_busy", "_index", "_stream")

    def __init__(
        self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, busy: list[int], index: int
    ) -> None:
        self._stream = stream
        self._busy = busy
        self._index = index

    def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)  # noqa: S101  (an async transport's)
        return self._stream.__aiter__()  # (no generator of ours between)

    async def aclose(self) -> None:
        if self._index >= 0:
            self._busy[self._index] -= 1
            self._index = -1
        if isinstance(self._stream, httpx.AsyncByteStream):
            await self._stream.aclose()


class HttpxStack:
    """Requests through an ``httpx.AsyncClient``: ours (:class:`ShardedTransport`) or the caller's.

    Ours sends the library's default headers; a caller's ``http_client``
    keeps its own headers, hooks and auth, and is never closed here. Only
    ours asks the port whether it speaks TLS (:class:`TlsProbe`).
    """

    __slots__ = ("_base", "_http", "_owned", "_probe", "_settings")

    def __init__(
        self, settings: StackSettings, http: httpx.AsyncClient, *, owned: bool, probe: bool = False
    ) -> None:
        self._settings = settings
        self._http = http
        self._owned = owned
        self._base = settings.base_url
        self._probe = TlsProbe(settings, enabled=probe)

    @classmethod
    def build(
        cls, settings: StackSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> HttpxStack:
        """The library's own client, over ``transport`` or a new :class:`ShardedTransport`."""
        probe = transport is None
        if transport is None:
            proxy = proxy_for(settings)
            transport = ShardedTransport(
                verify=stack_ssl_context(settings, proxy),
                max_connections=settings.max_connections,
                proxy=proxy,
            )
        http = httpx.AsyncClient(
            transport=transport,
            timeout=settings.timeout,
            headers=DEFAULT_HEADERS,
            # proxies and CAs from the environment are read once, for every stack alike
            trust_env=False,
        )
        return cls(settings, http, owned=True, probe=probe)

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` every request goes through."""
        return self._http

    async def send(self, spec: RequestSpec, auth: Mapping[str, str] | None) -> Reply:
        """One request and its whole answer, or a TransportError."""
        http = self._http
        try:
            url = self._base + spec.path
            if spec.params:
                # Encoded here as httpx's params= would (test_transport: same URL), which
                # spares build_request parsing the URL twice: a tenth of a page's CPU (B1).
                url += "?" + urlencode(spec.params)
            request = http.build_request(spec.method, url, json=spec.body, headers=auth or None)
            response = await http.send(request, stream=True)
            try:
                length = response.headers.get("content-length")
                announced = int(length) if length is not None and length.isdigit() else None
                body = await capped(spec, self._settings, announced, response.aiter_bytes())
            finally:
                await response.aclose()
        except Exception as exc:
            kind = httpx_kind(exc)
            if kind is None:
                raise
            kind = await probed_kind(kind, self._probe, answer_began=_answer_began(exc))
            raise failure(kind, exc, spec=spec, settings=self._settings) from exc
        return response.status_code, response.headers, body

    async def aclose(self) -> None:
        """Close our client (a caller's is left open)."""
        if self._owned:
            await self._http.aclose()


# httpx's timeouts, subclasses first; TimeoutError: an OS or asyncio timeout.
_TIMEOUT_KINDS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Kind], ...] = (
    (httpx.ConnectTimeout, "connect_timeout"),
    (httpx.PoolTimeout, "pool_timeout"),
    (httpx.WriteTimeout, "write_timeout"),
    ((httpx.ReadTimeout, httpx.TimeoutException, TimeoutError), "read_timeout"),
)


def httpx_kind(exc: BaseException) -> Kind | None:
    """The kind of failure httpx (or the OS under it) raised, or None for no transport failure."""
    if not isinstance(exc, (httpx.RequestError, OSError, TimeoutError)):
        return None
    links = chain(exc)
    for link in links:
        if isinstance(link, ssl.SSLCertVerificationError):
            return certificate_kind(link)
    if isinstance(exc, httpx.ProxyError):
        return "proxy_error"
    connecting = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    for link in links:
        kind = os_kind(link)
        if kind == "tls_protocol" and not connecting:
            continue  # an ssl error after the handshake: the connection broke
        if kind is not None:
            return kind
    for types, kind in _TIMEOUT_KINDS:
        if isinstance(exc, types):
            return kind
    if connecting:
        return "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        if tls_record(str(exc)):
            return "https_expected"  # h11 quotes the status line: TLS bytes
        text = str(exc).lower()
        closed = "disconnected" in text or "closed" in text or "incomplete" in text
        return "connection_lost" if closed else "protocol_error"
    if isinstance(exc, (httpx.DecodingError, httpx.LocalProtocolError)):
        return "protocol_error"
    if isinstance(exc, (httpx.NetworkError, OSError)):
        return "connection_lost"
    return "other"


def _answer_began(exc: BaseException) -> bool:
    """Whether an HTTP answer had begun (its body cut short) when ``exc`` was raised."""
    text = str(exc).lower()
    return isinstance(exc, httpx.DecodingError) or (
        isinstance(exc, httpx.RemoteProtocolError) and "message body" in text
    )
