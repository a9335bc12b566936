"""The opt-in HTTP stack for bulk jobs: aiohttp, driven straight from a :class:`RequestSpec`.

Installed with the ``aiohttp`` extra (``pip install 'ameyo-callbacks[aiohttp]'``)
and chosen with ``http_backend="aiohttp"``; this module is imported only then.
aiohttp spends about a quarter of httpx's CPU per request and stays flat past
64 requests in flight; it runs on asyncio only, and it is not httpx: respx and
httpx's instrumentation do not see it (OpenTelemetry's aiohttp instrumentation
does).

aiohttp re-sends an idempotent request (DELETE included) by itself when a
kept-alive connection drops, below every retry rule of ours, so a delete it
carried out would come back as "not found". The session built here has a
middleware (:func:`_no_resend`) that turns that drop into a failure of the
attempt: the client's own retry, and its rule for a DELETE whose answer was
lost, see it.

:func:`aiohttp_kind` reads the kind of failure from what aiohttp raised:
pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

import aiohttp
import yarl

from .._kinds import Kind
from .._protocol import RequestSpec
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

__all__ = ["AiohttpStack", "AnswerLostError", "aiohttp_kind"]


class AnswerLostError(aiohttp.ClientError):
    """The connection dropped with the request sent: not re-sent below our retry rules."""


async def _no_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Stop aiohttp's own re-send of a request whose connection dropped."""
    # aiohttp re-sends a request after ServerDisconnectedError or ClientOSError
    # when its method is idempotent, and lets every other ClientError through.
    # A connect error is no drop (nothing was sent).
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise AnswerLostError(str(exc) or type(exc).__name__) from exc


class AiohttpStack:
    """One ``aiohttp.ClientSession``: no httpx request or response built.

    The session keeps aiohttp's own trace hooks and has the no-resend
    middleware; redirects are not followed (as on the httpx stack) and gzip
    answers are decompressed before the size cap.
    """

    __slots__ = ("_base", "_probe", "_proxy", "_session", "_settings")

    def __init__(self, settings: StackSettings) -> None:
        self._settings = settings
        # The base URL once parsed and encoded; each request appends its
        # (already percent-encoded) path and query to it as text.
        self._base = str(yarl.URL(settings.base_url))
        self._proxy = proxy_for(settings)
        self._probe = TlsProbe(settings)
        timeout = settings.timeout
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            keepalive_timeout=5.0,
            ssl=stack_ssl_context(settings, self._proxy),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            middlewares=(_no_resend,),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=timeout.connect,
                sock_read=timeout.read,
                connect=timeout.pool,
            ),
            auto_decompress=True,
        )

    async def send(self, spec: RequestSpec, auth: Mapping[str, str] | None) -> Reply:
        """One request and its whole answer, or a TransportError."""
        text = self._base + spec.path
        if spec.params:
            text += "?" + urlencode(spec.params)
        headers = DEFAULT_HEADERS
        if auth:
            headers = {**headers, **auth}
        data = None
        if spec.body is not None:
            data = json.dumps(
                spec.body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers = {**headers, "Content-Type": "application/json"}
        try:
            async with self._session.request(
                spec.method,
                yarl.URL(text, encoded=True),
                headers=headers,
                data=data,
                proxy=self._proxy,
                allow_redirects=False,
            ) as response:
                body = await capped(
                    spec, self._settings, response.content_length, response.content.iter_any()
                )
                return response.status, response.headers, body
        except Exception as exc:
            kind = aiohttp_kind(exc)
            if kind is None:
                raise
            began = any(isinstance(link, aiohttp.ClientPayloadError) for link in chain(exc))
            kind = await probed_kind(kind, self._probe, answer_began=began)
            raise failure(kind, exc, spec=spec, settings=self._settings) from exc

    async def aclose(self) -> None:
        """Close the session and its connections."""
        await self._session.close()


# aiohttp's exceptions, the first match wins: subclasses before their bases
# (ClientConnectorError is a ClientOSError).
_Rule = tuple[type[aiohttp.ClientError], Kind | Callable[[aiohttp.ClientError], Kind]]
_KINDS: tuple[_Rule, ...] = (
    (
        aiohttp.ClientConnectorCertificateError,
        lambda exc: certificate_kind(exc.certificate_error),  # type: ignore[attr-defined]
    ),
    (aiohttp.ClientProxyConnectionError, "proxy_error"),
    (aiohttp.ClientHttpProxyError, "proxy_error"),
    (
        aiohttp.ClientConnectorSSLError,
        lambda exc: os_kind(exc.os_error) or "tls_protocol",  # type: ignore[attr-defined]
    ),
    (aiohttp.ConnectionTimeoutError, "connect_timeout"),
    (aiohttp.SocketTimeoutError, "read_timeout"),
    (
        aiohttp.ClientConnectorError,
        lambda exc: os_kind(exc.os_error) or "connect_error",  # type: ignore[attr-defined]
    ),
    (
        aiohttp.ClientResponseError,  # the parser refused the status line: TLS bytes?
        lambda exc: "https_expected" if tls_record(str(exc)) else "protocol_error",
    ),
    (AnswerLostError, "connection_lost"),
    (aiohttp.ClientOSError, "connection_lost"),
    (aiohttp.ClientPayloadError, "connection_lost"),
    (aiohttp.ServerDisconnectedError, "connection_lost"),
)


def aiohttp_kind(exc: BaseException) -> Kind | None:
    """The kind of failure aiohttp (or the OS under it) raised, or None for no transport failure."""
    if not isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
        return None
    for link in chain(exc):
        if not isinstance(link, aiohttp.ClientError):
            continue
        for cls, kind in _KINDS:
            if isinstance(link, cls):
                return kind if isinstance(kind, str) else kind(link)
    for link in chain(exc):
        found = os_kind(link)
        if found is not None and found != "tls_protocol":
            return found
    if isinstance(exc, TimeoutError):
        return "read_timeout"
    if isinstance(exc, OSError):
        return "connection_lost"
    return "other"
