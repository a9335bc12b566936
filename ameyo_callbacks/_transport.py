"""The HTTP stack: which one, one request, what kind of failure it was.

- Which one (:meth:`Transport.open`): a caller's ``httpx.AsyncClient`` (used
  as is) or transport (wrapped); otherwise ``http_backend="auto"`` drives
  aiohttp directly on asyncio (:class:`_AiohttpStack`) and plain httpx on trio.
  aiohttp is imported here, when the first client builds its stack, never
  by ``import ameyo_callbacks``. Proxies and CA files come from the
  environment when ``trust_env`` (as httpx does), the same on both stacks.
- One request (:meth:`Transport.send`): under one deadline for the whole
  answer (status line, headers, body), the sooner of
  ``RetryPolicy.attempt_timeout`` and what is left of the call's budget;
  the body is read up to ``max_response_bytes`` and no further.
- What kind of failure (:func:`classify`): whatever either stack raised
  becomes one :class:`TransportError` subclass with a ``kind`` and a
  message saying what to check, the stack's exception kept as the cause.

aiohttp re-sends an idempotent request (DELETE included) by itself when a
kept-alive connection drops, below every retry rule of ours, so a delete it
carried out would come back as "not found". The session built here has a
middleware that turns that drop into a failure of the attempt: the client's
own retry, and its rule for a DELETE whose answer was lost, see it.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import anyio
import attrs
import httpx
import sniffio

from ._compat import BaseExceptionGroup
from ._protocol import RequestSpec, scrub
from ._version import __version__
from .exceptions import (
    AnswerTimeoutError,
    ConnectionFailedError,
    ConnectionLostError,
    ResponseTooLargeError,
    TLSError,
    TransportError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "HttpBackend",
    "StackSettings",
    "Transport",
    "classify",
    "env_proxy",
]

HttpBackend = Literal["auto", "aiohttp", "httpx"]

#: connect 10 s; read, write and pool 30 s each.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: 8 MiB: a page of 100 callbacks is about 30 KB.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024

_DEFAULT_HEADERS = {
    "Accept": "application/json, */*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"ameyo-callbacks/{__version__}",
}
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = frozenset({62, 64})


@attrs.frozen
class StackSettings:
    """What the client's own HTTP stack is built from (checked by the client)."""

    base_url: str
    timeout: httpx.Timeout
    verify: bool | str | ssl.SSLContext
    backend: HttpBackend
    max_connections: int
    trust_env: bool
    proxy: str | None
    max_response_bytes: int
    attempt_timeout: float | None
    call_timeout: float | None = None


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``).

    The same reading on every backend (the one aiohttp uses: urllib's).
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or _bypassed(parts.hostname or "", parts.port, proxies.get("no", "")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (``*``, hosts and domains, each maybe with a port) covers ``host``."""
    host = host.lower().strip("[]")
    for entry in no_proxy.lower().replace(" ", "").split(","):
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def ssl_context(verify: bool | str | ssl.SSLContext, *, trust_env: bool) -> ssl.SSLContext:
    """``verify`` as a context: True reads ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when ``trust_env``."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=trust_env)


class Transport:
    """One client's HTTP stack: built on first use, one request at a time, closed once."""

    __slots__ = (
        "_aio",
        "_base",
        "_closed",
        "_direct",
        "_extensions",
        "_host",
        "_http",
        "_owns_http",
        "_secrets",
        "_settings",
    )

    def __init__(
        self,
        settings: StackSettings,
        *,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        secrets: Callable[[], Sequence[str]],
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._base = settings.base_url
        parts = urlsplit(settings.base_url)
        self._host = f"{parts.hostname}:{parts.port}"
        self._closed = False
        self._owns_http = http_client is None
        self._http: httpx.AsyncClient | None = http_client
        # With a transport of our own (or one given to us), requests go to it
        # straight: httpx.AsyncClient's per-request machinery (cookies, auth,
        # redirects, hooks) is unused here and costs about a third of the
        # client's CPU per request. The AsyncClient still owns its life cycle.
        self._direct: httpx.AsyncBaseTransport | None = transport
        if transport is not None:
            self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout)
        self._extensions = {"timeout": settings.timeout.as_dict()}
        self._aio: _AiohttpStack | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    @property
    def backend(self) -> str:
        """The stack in use: "aiohttp", "httpx", "custom", or "" before it is built."""
        if self._aio is not None:
            return "aiohttp"
        if self._http is None:
            return ""
        transport = self._direct
        if transport is None:
            transport = getattr(self._http, "_transport", None)
        if isinstance(transport, httpx.AsyncHTTPTransport):
            return "httpx"
        return "custom"

    def open(self) -> None:
        """Build the stack if not built yet (needs the running event loop to pick one)."""
        if self._http is not None or self._aio is not None:
            return
        if self._closed:
            msg = "this AmeyoCallbacksClient is closed; create a new one"
            raise RuntimeError(msg)
        settings = self._settings
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        context = ssl_context(settings.verify, trust_env=settings.trust_env)
        proxy = settings.proxy
        if proxy is None and settings.trust_env:
            proxy = env_proxy(settings.base_url)
        if settings.backend == "aiohttp" or (
            settings.backend == "auto" and sniffio.current_async_library() == "asyncio"
        ):
            self._aio = _AiohttpStack(settings, context, limits, proxy)
            return
        transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, proxy=proxy)
        self._direct = transport
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout)

    async def aclose(self) -> None:
        """Close the connections we opened (a caller's ``http_client`` is left open)."""
        self._closed = True
        http, self._http = self._http, None
        aio, self._aio = self._aio, None
        if aio is not None:
            await aio.aclose()
        if http is not None and self._owns_http:
            await http.aclose()

    async def send(
        self, spec: RequestSpec, session_id: str | None, call_end: float | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request and its whole answer, within the attempt's deadline, or a TransportError.

        The deadline is ``attempt_timeout`` from now, or ``call_end`` (the
        clock time the call's budget runs out) when that comes first.
        """
        seconds = self._settings.attempt_timeout
        kind = "attempt_deadline"
        if call_end is not None:
            left = call_end - anyio.current_time()
            if seconds is None or left <= seconds:
                seconds, kind = left, "call_deadline"
        try:
            if seconds is None:
                return await self._exchange(spec, session_id)
            if seconds > 0:
                with anyio.move_on_after(seconds):
                    return await self._exchange(spec, session_id)
        except TransportError:
            raise
        except Exception as exc:
            error = classify(exc, spec=spec, where=self._host, settings=self._settings)
            if error is None:
                raise
            error.args = (scrub(str(error.args[0]), self._secrets()),)
            raise error from exc
        raise _deadline_error(spec, kind, self._settings)

    async def _exchange(
        self, spec: RequestSpec, session_id: str | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.open()
        aio = self._aio
        if aio is not None:
            return await aio.exchange(spec, session_id)
        url = self._base + spec.path
        params = spec.params or None
        transport = self._direct
        if transport is None:  # a caller's http_client: its headers, hooks and auth apply
            http = self._http
            assert http is not None  # noqa: S101  (open() built it)
            request = http.build_request(
                spec.method,
                url,
                params=params,
                json=spec.body,
                headers=None if session_id is None else {"sessionId": session_id},
            )
            response = await http.send(request, stream=True)
        else:
            request = httpx.Request(
                spec.method,
                url,
                params=params,
                json=spec.body,
                headers=_DEFAULT_HEADERS
                if session_id is None
                else {**_DEFAULT_HEADERS, "sessionId": session_id},
                extensions=self._extensions,
            )
            response = await transport.handle_async_request(request)
        try:
            body = await self._read(spec, response)
        finally:
            await response.aclose()
        return response.status_code, response.headers, body

    async def _read(self, spec: RequestSpec, response: httpx.Response) -> bytes:
        """The body, decoded, and never more than ``max_response_bytes`` of it in memory."""
        length = response.headers.get("content-length")
        announced = int(length) if length is not None and length.isdigit() else None
        return await _capped(spec, self._settings, announced, response.aiter_bytes())


async def _capped(
    spec: RequestSpec,
    settings: StackSettings,
    announced: int | None,
    chunks: AsyncIterator[bytes],
) -> bytes:
    """A body read chunk by chunk, never more than ``max_response_bytes`` of it in memory."""
    cap = settings.max_response_bytes
    if announced is not None and announced > cap:
        raise _too_large(spec, settings, f"it announces {announced:,} bytes")
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise _too_large(spec, settings, f"more than {cap:,} bytes arrived")
        parts.append(chunk)
    return b"".join(parts)


def _too_large(spec: RequestSpec, settings: StackSettings, seen: str) -> ResponseTooLargeError:
    cap = settings.max_response_bytes
    msg = (
        f"{spec.method} {spec.path}: the answer is larger than max_response_bytes={cap:,} "
        f"({seen}; stopped reading): ask for smaller pages or raise max_response_bytes"
    )
    return ResponseTooLargeError(msg, method=spec.method, path=spec.path, limit=cap)


def _deadline_error(spec: RequestSpec, kind: str, settings: StackSettings) -> AnswerTimeoutError:
    if kind == "attempt_deadline":
        seconds = settings.attempt_timeout
        msg = (
            f"{spec.method} {spec.path}: no whole answer within {seconds:g} s "
            "(RetryPolicy.attempt_timeout; status line, headers and body): the server is "
            "slow or trickles its answer; raise attempt_timeout if it is just slow"
        )
    else:
        seconds = settings.call_timeout
        msg = (
            f"{spec.method} {spec.path}: the call's time budget"
            + (f" of {seconds:g} s" if seconds is not None else "")
            + " ran out during the attempt (RetryPolicy.timeout, retries and waits "
            "included): raise timeout, or check why the server is this slow"
        )
    return AnswerTimeoutError(msg, method=spec.method, path=spec.path, kind=kind, seconds=seconds)


# ----------------------------------------------------------------------
# aiohttp, imported when the first client builds it

_NO_RESEND: Any = None


class _AiohttpStack:
    """aiohttp driven straight from a :class:`RequestSpec`: no httpx request or response.

    Building an ``httpx.Request`` (URL parsing and validation) and converting
    it and its answer to and from aiohttp cost about a third of a request's
    client time; this spends none of it. The session keeps aiohttp's own
    trace hooks (OpenTelemetry's aiohttp instrumentation sees every request)
    and has the no-resend middleware; redirects are not followed (as on the
    httpx stack) and gzip answers are decompressed before the size cap.
    """

    __slots__ = ("_base", "_headers", "_proxy", "_session", "_settings", "_url")

    def __init__(
        self,
        settings: StackSettings,
        context: ssl.SSLContext,
        limits: httpx.Limits,
        proxy: str | None,
    ) -> None:
        import aiohttp  # noqa: PLC0415  (loaded when a client first builds its stack)
        import yarl  # noqa: PLC0415

        self._settings = settings
        self._url = yarl.URL
        # The base URL once parsed and encoded; each request appends its
        # (already percent-encoded) path and query to it as text.
        self._base = str(yarl.URL(settings.base_url))
        self._headers = dict(_DEFAULT_HEADERS)
        self._proxy = proxy
        timeout = settings.timeout
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            middlewares=(_no_resend_middleware(aiohttp),),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=timeout.connect,
                sock_read=timeout.read,
                connect=timeout.pool,
            ),
            auto_decompress=True,
        )

    async def exchange(
        self, spec: RequestSpec, session_id: str | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        text = self._base + spec.path
        if spec.params:
            text += "?" + urlencode(spec.params)
        headers = self._headers
        if session_id is not None:
            headers = {**headers, "sessionId": session_id}
        data = None
        if spec.body is not None:
            data = json.dumps(
                spec.body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers = {**headers, "Content-Type": "application/json"}
        async with self._session.request(
            spec.method,
            self._url(text, encoded=True),
            headers=headers,
            data=data,
            proxy=self._proxy,
            allow_redirects=False,
        ) as response:
            body = await _capped(
                spec, self._settings, response.content_length, response.content.iter_any()
            )
            return response.status, response.headers, body

    async def aclose(self) -> None:
        await self._session.close()


def _no_resend_middleware(aiohttp_module: Any) -> Any:
    """An aiohttp client middleware that stops aiohttp's own re-send of a dropped request."""
    global _NO_RESEND  # noqa: PLW0603  (built once, on first use: aiohttp loads lazily)
    if _NO_RESEND is not None:
        return _NO_RESEND
    client_error: type[Exception] = aiohttp_module.ClientError
    connector_error: type[Exception] = aiohttp_module.ClientConnectorError
    dropped = (aiohttp_module.ServerDisconnectedError, aiohttp_module.ClientOSError)

    class AnswerLostError(client_error):  # type: ignore[valid-type,misc]
        """The connection dropped with the request sent: not re-sent below our retry rules."""

    async def no_resend(request: Any, handler: Any) -> Any:
        # aiohttp re-sends a request after ServerDisconnectedError or
        # ClientOSError when its method is idempotent, and lets every other
        # ClientError through. A connect error is no drop (nothing was sent).
        try:
            return await handler(request)
        except connector_error:
            raise
        except dropped as exc:
            raise AnswerLostError(str(exc) or type(exc).__name__) from exc

    _NO_RESEND = no_resend
    return no_resend


# ----------------------------------------------------------------------
# What kind of failure


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it came from (``__cause__``, else unsuppressed context)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 12 and current not in seen:
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            seen.extend(current.exceptions[:4])
        cause = current.__cause__
        if cause is None and current.args and isinstance(current.args[0], BaseException):
            cause = current.args[0]  # httpcore wraps the OS error as its argument
        if cause is None and not current.__suppress_context__:
            cause = current.__context__
        current = cause
    return seen


# aiohttp's exceptions by name (aiohttp loads lazily), the first match wins:
# subclasses before their bases (ClientConnectorError is a ClientOSError).
_AIOHTTP_KINDS: tuple[tuple[str, str | Callable[[Any], str]], ...] = (
    ("ClientConnectorCertificateError", lambda exc: _certificate_kind(exc.certificate_error)),
    ("ClientProxyConnectionError", "proxy_error"),
    ("ClientHttpProxyError", "proxy_error"),
    ("ClientConnectorSSLError", "tls_protocol"),
    ("ConnectionTimeoutError", "connect_timeout"),
    ("SocketTimeoutError", "read_timeout"),
    ("ClientConnectorError", lambda exc: _os_kind(exc.os_error) or "connect_error"),
    ("ClientResponseError", "protocol_error"),  # the parser refused the status line or headers
    ("ClientOSError", "connection_lost"),
    ("ClientPayloadError", "connection_lost"),
    ("ServerDisconnectedError", "connection_lost"),
)


def _aiohttp_kind(chain: list[BaseException]) -> str | None:
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None:
        return None
    for exc in chain:
        if not isinstance(exc, aiohttp.ClientError):
            continue
        for name, kind in _AIOHTTP_KINDS:
            if isinstance(exc, getattr(aiohttp, name)):
                return kind if isinstance(kind, str) else kind(exc)
        if type(exc).__name__ == "AnswerLostError":
            return "connection_lost"
    return None


def _connect_phase(chain: list[BaseException]) -> bool:
    aiohttp = sys.modules.get("aiohttp")
    for exc in chain:
        if aiohttp is not None and isinstance(exc, aiohttp.ClientConnectorError):
            return True
        if aiohttp is not None and isinstance(exc, aiohttp.ClientError):
            return False  # a ClientError that is no connector error came after connecting
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True
    return False


def _certificate_kind(exc: BaseException) -> str:
    # aiohttp's ClientConnectorCertificateError is an ssl.CertificateError too,
    # without the verify fields: the ssl error it wraps has them.
    exc = getattr(exc, "certificate_error", exc)
    code = getattr(exc, "verify_code", None)
    text = str(getattr(exc, "verify_message", None) or exc)
    if code in _NAME_MISMATCH_CODES or "mismatch" in text.lower():
        return "tls_hostname"
    return "tls_certificate"


def _os_kind(exc: BaseException) -> str | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_kind(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls_protocol"
    if isinstance(exc, socket.gaierror):
        return "name_not_resolved"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "connection_refused"
    return None


# httpx's timeouts, subclasses first; TimeoutError: an OS or asyncio timeout.
_TIMEOUT_KINDS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (httpx.ConnectTimeout, "connect_timeout"),
    (httpx.PoolTimeout, "pool_timeout"),
    (httpx.WriteTimeout, "write_timeout"),
    ((httpx.ReadTimeout, httpx.TimeoutException, TimeoutError), "read_timeout"),
)


def _kind(chain: list[BaseException]) -> str:
    """What happened, from the exception chain; the same answer for either stack."""
    for exc in chain:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return _certificate_kind(exc)
    if any(isinstance(exc, httpx.ProxyError) for exc in chain[:1]):
        return "proxy_error"
    # An aiohttp exception anywhere in the chain says what happened.
    found = _aiohttp_kind(chain)
    if found is not None:
        return found
    connecting = _connect_phase(chain)
    for exc in chain:
        if isinstance(exc, ssl.SSLError) and connecting:
            return "tls_protocol"
        if isinstance(exc, socket.gaierror):
            return "name_not_resolved"
        if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
            return "connection_refused"
    top = chain[0]
    for types, kind in _TIMEOUT_KINDS:
        if isinstance(top, types):
            return kind
    if connecting:
        return "connect_error"
    if isinstance(top, httpx.RemoteProtocolError):
        text = str(top).lower()
        closed = "disconnected" in text or "closed" in text or "incomplete" in text
        return "connection_lost" if closed else "protocol_error"
    if isinstance(top, (httpx.DecodingError, httpx.LocalProtocolError)):
        return "protocol_error"
    if isinstance(top, (httpx.NetworkError, OSError)):
        return "connection_lost"
    return "other"


def _is_transport_failure(exc: BaseException) -> bool:
    """httpx's request errors, OS and timeout errors, and what aiohttp lets through unmapped."""
    if isinstance(exc, (httpx.RequestError, OSError, TimeoutError)):
        return True
    aiohttp = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


_CLASSES: dict[str, type[TransportError]] = {
    "connection_refused": ConnectionFailedError,
    "connect_timeout": ConnectionFailedError,
    "name_not_resolved": ConnectionFailedError,
    "connect_error": ConnectionFailedError,
    "proxy_error": ConnectionFailedError,
    "pool_timeout": ConnectionFailedError,
    "tls_certificate": TLSError,
    "tls_hostname": TLSError,
    "tls_protocol": TLSError,
    "read_timeout": AnswerTimeoutError,
    "write_timeout": AnswerTimeoutError,
    "connection_lost": ConnectionLostError,
    "protocol_error": ConnectionLostError,
}


def _advice(kind: str, where: str, settings: StackSettings | None) -> str:
    timeout = settings.timeout if settings is not None else None
    plain = settings is not None and settings.base_url.startswith("http://")
    connect = f" within {timeout.connect:g} s" if timeout and timeout.connect else ""
    read = f"{timeout.read:g} s" if timeout and timeout.read else "the read timeout"
    advice = {
        "connection_refused": f"nothing listens at {where}: check the base URL and port",
        "connect_timeout": (
            f"no connection to {where}{connect}: check the host, the port and any "
            "firewall, or raise timeout= (connect)"
        ),
        "name_not_resolved": f"the host of {where} does not resolve: check the base URL",
        "connect_error": f"cannot connect to {where}: check the base URL and the network",
        "proxy_error": (
            "the proxy failed: check proxy= or HTTP(S)_PROXY / NO_PROXY "
            "(trust_env=False ignores the environment)"
        ),
        "pool_timeout": (
            "no free connection in time: raise max_connections or timeout= (pool), "
            "or send fewer requests at once"
        ),
        "tls_certificate": (
            f"certificate of {where} not trusted: pass verify= a CA bundle "
            "(a path or an ssl.SSLContext) that signs it"
        ),
        "tls_hostname": (
            f"certificate of {where} is not valid for that host: use a host name "
            "the certificate holds in the base URL"
        ),
        "tls_protocol": (
            f"TLS handshake with {where} failed: check that this port speaks https "
            "(use http:// for a plain port)"
        ),
        "read_timeout": f"no data from {where} for {read}: the server is slow or stalled",
        "write_timeout": f"could not send to {where} in time: the server does not read",
        "connection_lost": (
            f"the connection to {where} dropped before the whole answer: the server "
            "may have acted on the request"
            + (" (if this port speaks https, use https://)" if plain else "")
        ),
        "protocol_error": (
            f"the answer from {where} is not HTTP: check the base URL's scheme and port"
        ),
    }
    return advice.get(kind, f"the request to {where} failed")


def classify(
    exc: BaseException,
    *,
    spec: RequestSpec,
    where: str,
    settings: StackSettings | None = None,
) -> TransportError | None:
    """The :class:`TransportError` for what an HTTP stack raised, or None if it is no such failure.

    ``where`` is ``host:port`` for the message. The kind is read from the
    whole exception chain, so an aiohttp exception decides, as the ssl or OS
    error under httpx's does.
    """
    if not isinstance(exc, Exception) or not _is_transport_failure(exc):
        return None
    chain = _chain(exc)
    kind = _kind(chain)
    cls = _CLASSES.get(kind, TransportError)
    msg = f"{spec.method} {spec.path}: {_advice(kind, where, settings)} ({type(exc).__name__}: "
    msg += f"{_detail(chain)})"
    return cls(msg, method=spec.method, path=spec.path, cause=exc, kind=kind)


def _detail(chain: list[BaseException]) -> str:
    """The most telling text in the chain: the deepest non-empty one, shortened."""
    for exc in reversed(chain):
        message = getattr(exc, "verify_message", None)
        if isinstance(exc, ssl.SSLCertVerificationError) and message:
            return str(message)
        text = str(exc)
        if text and not isinstance(exc, BaseExceptionGroup):
            return text[:200]
    return "no detail"
