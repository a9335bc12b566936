"""The async client: one thin coroutine per endpoint over one layered send path.

The send path, outermost first, one concern each:

1. ``_call``: session header; on ``AuthenticationError`` a provider that
   can renew does so (single-flight) and the request is repeated once.
2. ``_with_retries``: stamina's retry loop, the retry decision of
   ``_retry.decide``, Retry-After through the shared gate, and the
   DELETE whose first answer was lost.
3. ``_attempt``: wait at the gate, send one request, map transport errors,
   log one DEBUG line.
4. the pure decoders of ``_protocol``.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import attrs
import httpx
import sniffio
import stamina

from ._bulk import BulkDeleteResult, BulkProgress, BulkTally, delete_callbacks, delete_matching
from ._checks import check_int
from ._convert import make_converter
from ._filters import CallbackFilter
from ._models import CustomerCallback
from ._paging import CallbackIterator, PageFetcher
from ._protocol import (
    MAX_LIMIT,
    RequestSpec,
    build_delete_request,
    build_list_request,
    decode_delete_response,
    decode_list_response,
    decode_login_response,
    scrub,
    tenant_list_path,
)
from ._retry import AnyioClock, BackoffGate, Clock, RetryPolicy, decide
from ._session import SessionProvider, StaticSession
from ._version import __version__
from .exceptions import (
    AmeyoError,
    AuthenticationError,
    CallbackNotFoundError,
    ServerError,
    TransportError,
)

__all__ = ["DEFAULT_TIMEOUT", "AmeyoCallbacksClient", "HttpBackend"]

logger = logging.getLogger("ameyo_callbacks")

T = TypeVar("T")
HttpBackend = Literal["auto", "aiohttp", "httpx"]
Decoder = Callable[[RequestSpec, int, Mapping[str, str], bytes], T]

#: connect 10 s; read, write and pool 30 s each.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Connections per client: above any sensible concurrency, below a server's patience.
DEFAULT_MAX_CONNECTIONS = 100
_DEFAULT_PORTS = {"http": 8888, "https": 8443}
# A lost DELETE answer: the server may have done it (see _with_retries).
_AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
_DEFAULT_HEADERS = {
    "Accept": "application/json, */*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"ameyo-callbacks/{__version__}",
}

try:
    import aiohttp as _aiohttp
except ImportError:  # pragma: no cover  (a declared dependency; kept for vendored installs)
    _aiohttp = None  # type: ignore[assignment]


def _shown(base_url: str) -> str:
    """A base URL as an error message may show it: no query, no credentials."""
    text = base_url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def normalize_base_url(base_url: str) -> str:
    """``http(s)://host[:port][/prefix]`` -> the same with the spec's default port.

    No port: 8888 for http, 8443 for https (spec section 4). Anything else
    (no scheme, another scheme, credentials, a query) is a ValueError.
    """
    expected = "expected http(s)://host[:port][/prefix], e.g. https://ameyo.example.com:8443"
    if not isinstance(base_url, str):
        msg = f"base_url must be a str, {expected}"
        raise TypeError(msg)
    try:
        url = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        msg = f"base_url {_shown(base_url)!r} is not a URL: {expected}"
        raise ValueError(msg) from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        msg = f"base_url {_shown(base_url)!r} has no http or https scheme and host: {expected}"
        raise ValueError(msg)
    if url.userinfo:
        msg = "base_url must not hold credentials: pass session_id= or a LoginSession instead"
        raise ValueError(msg)
    if url.query or url.fragment:
        msg = f"base_url must not have a query or fragment: {expected}"
        raise ValueError(msg)
    # httpx.URL drops a port equal to the scheme's usual one (":80", ":443"),
    # but an explicit port is kept: read it back from the text.
    port = url.port or urlsplit(base_url.strip()).port or _DEFAULT_PORTS[url.scheme]
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{port}{url.raw_path.decode('ascii').rstrip('/')}"


def _ssl_context(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def _aiohttp_transport(
    verify: bool | ssl.SSLContext, limits: httpx.Limits
) -> httpx.AsyncBaseTransport | None:
    try:
        from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415  (optional at run time)
    except ImportError:  # pragma: no cover  (a declared dependency; kept for vendored installs)
        return None
    transport: httpx.AsyncBaseTransport = AiohttpTransport(verify=verify, limits=limits)
    return transport


@attrs.define(slots=True, repr=False)
class _Settings:
    base_url: str
    list_method: str
    tenant_path: str
    timeout: httpx.Timeout
    verify: bool | ssl.SSLContext
    backend: HttpBackend
    max_connections: int


class AmeyoCallbacksClient:
    """Async client for the Ameyo CallBack APIs. Use it as ``async with``.

    ``base_url`` is ``http(s)://host[:port][/prefix]``; without a port, 8888
    (http) or 8443 (https). ``session_id`` is the ``sessionId`` header sent on
    every call: a string, or a :class:`SessionProvider` such as
    :class:`LoginSession` that logs in and renews an expired session. It is
    never shown in a repr, a log line or an exception.

    ``timeout`` defaults to :data:`DEFAULT_TIMEOUT` (connect 10 s, read 30 s);
    ``retry`` to :class:`RetryPolicy()` (6 attempts, 60 s budget per call).
    ``verify`` is True, False, a CA bundle path or an ``ssl.SSLContext``.

    The HTTP stack: with ``http_client`` (used as is, never closed by us: its
    own connection limits and transport then bound concurrency) or
    ``transport`` (wrapped in an ``httpx.AsyncClient`` we own), requests go
    there. Otherwise ``http_backend="auto"`` picks an aiohttp-backed httpx
    transport on asyncio, which stays fast past 24 requests in flight where
    httpcore's pool becomes CPU-bound, and plain httpx on trio (see the
    README's performance section).

    ``list_method`` is ``"POST"`` as the spec says, or ``"GET"`` for servers
    that want GET. ``tenant_callbacks_path`` is where the tenant-wide list
    lives: the spec names that API but documents no wire format, so it
    follows getFiltered's conventions (same filters, no ``campaignId``) at
    this path below ``/ameyorestapi/voice/customerCallbacks/``, or at this
    absolute path when it starts with ``/``.
    """

    __slots__ = (
        "_closed",
        "_converter",
        "_direct",
        "_extensions",
        "_gate",
        "_http",
        "_owns_http",
        "_retry",
        "_session",
        "_settings",
    )

    def __init__(
        self,
        base_url: str,
        *,
        session_id: str | SessionProvider,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        list_method: Literal["POST", "GET"] = "POST",
        tenant_callbacks_path: str = "getTenantUserCallbacks",
        retry: RetryPolicy | None = None,
        http_backend: HttpBackend = "auto",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        clock: Clock | None = None,
    ) -> None:
        base = normalize_base_url(base_url)
        method = list_method.upper() if isinstance(list_method, str) else list_method
        if method not in ("POST", "GET"):
            msg = f"list_method must be 'POST' or 'GET', got {list_method!r}"
            raise ValueError(msg)
        tenant_path = tenant_list_path(tenant_callbacks_path)
        if http_client is not None and transport is not None:
            msg = "pass http_client or transport, not both"
            raise ValueError(msg)
        if http_backend not in ("auto", "aiohttp", "httpx"):
            msg = f"http_backend must be 'auto', 'aiohttp' or 'httpx', got {http_backend!r}"
            raise ValueError(msg)
        check_int("max_connections", max_connections, minimum=1)
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            timeout = httpx.Timeout(timeout)
        if not isinstance(timeout, httpx.Timeout):
            msg = "timeout must be seconds (a number) or an httpx.Timeout"
            raise TypeError(msg)
        if isinstance(session_id, str):
            session_id = StaticSession(session_id)
        if not isinstance(session_id, SessionProvider):
            msg = "session_id must be a string or a SessionProvider (StaticSession, LoginSession)"
            raise TypeError(msg)
        if retry is not None and not isinstance(retry, RetryPolicy):
            msg = "retry must be a RetryPolicy (RetryPolicy.none() turns retries off)"
            raise TypeError(msg)

        self._settings = _Settings(
            base_url=base,
            list_method=method,
            tenant_path=tenant_path,
            timeout=timeout,
            verify=_ssl_context(verify),
            backend=http_backend,
            max_connections=max_connections,
        )
        self._session = session_id
        self._retry = retry if retry is not None else RetryPolicy()
        self._gate = BackoffGate(clock if clock is not None else AnyioClock())
        self._converter = make_converter()
        self._closed = False
        self._owns_http = http_client is None
        self._http: httpx.AsyncClient | None = http_client
        # With a transport of our own (or one given to us), requests go to it
        # straight (see _send): httpx.AsyncClient's per-request machinery
        # (cookies, auth, redirects, hooks) is unused here and costs about a
        # third of the client's CPU per request. The AsyncClient still owns
        # the transport's life cycle.
        self._direct: httpx.AsyncBaseTransport | None = transport
        if transport is not None:
            self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._extensions = {"timeout": timeout.as_dict()}

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<AmeyoCallbacksClient base_url={self._settings.base_url!r} "
            f"session={type(self._session).__name__}(<redacted>) "
            f"list_method={self._settings.list_method!r} {state}>"
        )

    @property
    def base_url(self) -> str:
        """The normalised base URL (with the default port filled in)."""
        return self._settings.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy every call of this client follows."""
        return self._retry

    @property
    def gate(self) -> BackoffGate:
        """The back-off gate shared by every request of this client."""
        return self._gate

    @property
    def http_backend(self) -> str:
        """The HTTP stack in use: "aiohttp", "httpx", "custom", or "" before the first request."""
        if self._http is None:
            return ""
        transport = getattr(self._http, "_transport", None)
        if type(transport).__name__ == "AiohttpTransport":
            return "aiohttp"
        if isinstance(transport, httpx.AsyncHTTPTransport):
            return "httpx"
        return "custom"

    # ------------------------------------------------------------------
    # Life cycle

    async def __aenter__(self) -> AmeyoCallbacksClient:
        self._ensure_http()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (a caller's ``http_client`` is left open)."""
        self._closed = True
        http, self._http = self._http, None
        if http is not None and self._owns_http:
            await http.aclose()

    def _ensure_http(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        if self._closed:
            msg = "this AmeyoCallbacksClient is closed; create a new one"
            raise RuntimeError(msg)
        settings = self._settings
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        transport: httpx.AsyncBaseTransport | None = None
        if settings.backend == "aiohttp" or (
            settings.backend == "auto" and sniffio.current_async_library() == "asyncio"
        ):
            transport = _aiohttp_transport(settings.verify, limits)
        if transport is None:
            transport = httpx.AsyncHTTPTransport(verify=settings.verify, limits=limits)
        self._direct = transport
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout)
        return self._http

    # ------------------------------------------------------------------
    # Endpoints

    async def get_callbacks(
        self,
        where: CallbackFilter,
        *,
        limit: int = MAX_LIMIT,
        offset: int = 0,
        info: bool | None = None,
    ) -> list[CustomerCallback]:
        """One page of the callbacks ``where`` selects.

        A campaign filter calls getFiltered; a tenant filter calls the tenant
        list ("Get Tenant User Callback API": the spec names it without a
        wire format, so it follows getFiltered's conventions without
        ``campaignId``, at ``tenant_callbacks_path``). ``limit`` is 1..100
        (the server serves at most 100); ``info`` is sent only when given
        (some servers refuse it). To walk every page, use
        :meth:`iter_callbacks`.
        """
        spec = self._list_spec(_check_where(where), limit, offset, _check_info(info))
        return await self._call(spec, self._decode_list)

    def iter_callbacks(
        self,
        where: CallbackFilter,
        *,
        page_size: int = MAX_LIMIT,
        prefetch: int = 4,
        max_items: int | None = None,
        start_offset: int = 0,
        info: bool | None = None,
    ) -> CallbackIterator:
        """Every callback ``where`` selects, page after page.

        ``async for cb in client.iter_callbacks(where): ...`` walks
        offset/limit pages of ``page_size`` until a short page; ``prefetch``
        pages are requested at once; ``max_items`` caps the total;
        ``.pages()`` yields :class:`Page` records whose ``next_offset`` can be
        passed back as ``start_offset`` to resume. See :class:`CallbackIterator`.
        """
        return CallbackIterator(
            self._page_fetcher(_check_where(where), _check_info(info)),
            page_size=page_size,
            start_offset=start_offset,
            max_items=max_items,
            prefetch=prefetch,
        )

    async def delete_callback(self, customer_callback_id: str) -> None:
        """Delete one callback (DELETE ``.../customerCallbacks/<id>``).

        Raises :class:`CallbackNotFoundError` when the id does not exist. When
        an earlier attempt's answer was lost (dropped connection, timeout, a
        gateway 5xx) and the retry finds the id gone, the delete is reported
        as done: the first attempt did it.
        """
        spec = build_delete_request(customer_callback_id)
        await self._call(spec, self._decode_delete)

    async def delete_callbacks(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int = 8,
        on_progress: Callable[[BulkProgress], None] | None = None,
        tally: BulkTally | None = None,
    ) -> BulkDeleteResult:
        """Delete many callbacks, ``concurrency`` at a time, with an outcome for every id.

        ``ids`` (an iterable or async iterable of strings, not a single
        string) is read lazily. API and transport failures become outcomes in
        the result, never an exception; on cancellation, ``tally.result()`` of
        a :class:`BulkTally` passed in still accounts for every id read.
        """
        return await delete_callbacks(
            self.delete_callback,
            ids,
            concurrency=concurrency,
            on_progress=on_progress,
            tally=tally,
        )

    async def delete_matching(
        self,
        where: CallbackFilter,
        *,
        concurrency: int = 8,
        dry_run: bool = False,
        on_progress: Callable[[BulkProgress], None] | None = None,
        tally: BulkTally | None = None,
    ) -> BulkDeleteResult:
        """Delete every callback ``where`` selects, skipping none.

        Walking offset pages while deleting would skip records (each delete
        shifts the later pages); this does not: see :func:`delete_matching`
        in the bulk module for the strategy and its bound. ``dry_run``
        returns what would be deleted, deleting nothing.
        """
        return await delete_matching(
            self._page_fetcher(_check_where(where), None),
            self.delete_callback,
            concurrency=concurrency,
            dry_run=dry_run,
            on_progress=on_progress,
            tally=tally,
        )

    # ------------------------------------------------------------------
    # Send path

    def _list_spec(
        self, where: CallbackFilter, limit: int, offset: int, info: bool | None
    ) -> RequestSpec:
        settings = self._settings
        return build_list_request(
            method=settings.list_method,
            tenant_path=settings.tenant_path,
            where=where,
            limit=limit,
            offset=offset,
            info=info,
        )

    def _page_fetcher(self, where: CallbackFilter, info: bool | None) -> PageFetcher:
        async def fetch(offset: int, limit: int) -> list[CustomerCallback]:
            return await self._call(self._list_spec(where, limit, offset, info), self._decode_list)

        return fetch

    def _decode_list(
        self, spec: RequestSpec, status: int, headers: Mapping[str, str], body: bytes
    ) -> list[CustomerCallback]:
        return decode_list_response(
            status,
            headers,
            body,
            spec=spec,
            converter=self._converter,
            now=time.time(),
            secrets=self._session.secrets(),
        )

    def _decode_delete(
        self, spec: RequestSpec, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        decode_delete_response(
            status, headers, body, spec=spec, now=time.time(), secrets=self._session.secrets()
        )

    def _decode_login(
        self, spec: RequestSpec, status: int, headers: Mapping[str, str], body: bytes
    ) -> str:
        return decode_login_response(
            status, headers, body, spec=spec, now=time.time(), secrets=self._session.secrets()
        )

    async def _login(self, spec: RequestSpec) -> str:
        """Send a session provider's login request (no session header), with retries."""
        return await self._with_retries(spec, self._decode_login, None)

    async def _call(self, spec: RequestSpec, decode: Decoder[T]) -> T:
        session = self._session
        session_id = await session.session_id(self._login)
        try:
            return await self._with_retries(spec, decode, session_id)
        except AuthenticationError:
            renewed = await session.refresh(session_id, self._login)
            if renewed is None:
                raise
            logger.info(
                "session renewed after %s %s was refused; repeating it", spec.method, spec.path
            )
            return await self._with_retries(spec, decode, renewed)

    async def _with_retries(
        self, spec: RequestSpec, decode: Decoder[T], session_id: str | None
    ) -> T:
        policy = self._retry
        if policy.attempts == 1:
            return await self._attempt(spec, decode, session_id)

        number = 0
        answer_lost = False  # a DELETE was maybe done by an attempt whose answer we lack

        def backoff_hook(exc: Exception) -> bool | float:
            if not isinstance(exc, AmeyoError):
                return False
            decision = decide(exc, kind=spec.kind, policy=policy)
            if not decision.retry or number >= policy.attempts:
                return False
            if decision.retry_after is not None:
                self._gate.defer(decision.retry_after)
                wait = f"Retry-After {decision.retry_after:g} s (all requests of this client wait)"
                result: bool | float = 0.0  # the gate does the waiting
            else:
                wait = f"back-off ~{policy.backoff(number):.2f} s"
                result = True
            logger.warning(
                "retrying %s %s after %s (attempt %d of %d, %s)",
                spec.method,
                spec.path,
                decision.reason,
                number + 1,
                policy.attempts,
                wait,
            )
            return result

        try:
            async for attempt in stamina.retry_context(
                on=backoff_hook,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    number = attempt.num
                    try:
                        return await self._attempt(spec, decode, session_id)
                    except CallbackNotFoundError:
                        if answer_lost:
                            logger.info(
                                "%s %s: gone after an attempt whose answer was lost; "
                                "counted as deleted",
                                spec.method,
                                spec.path,
                            )
                            return None  # type: ignore[return-value]  # only DELETE sets answer_lost
                        raise
                    except (TransportError, ServerError) as exc:
                        if spec.kind == "delete" and _maybe_done(exc):
                            answer_lost = True
                        raise
        except AmeyoError as exc:
            exc.attempts = max(number, 1)
            raise
        msg = "unreachable: stamina either returns or raises"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    async def _attempt(self, spec: RequestSpec, decode: Decoder[T], session_id: str | None) -> T:
        await self._gate.wait()
        started = time.perf_counter()
        try:
            status, headers, body = await self._send(spec, session_id)
        except Exception as exc:
            if not _is_transport_failure(exc):
                raise
            text = scrub(f"{type(exc).__name__}: {exc}", self._session.secrets())
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %s after %.1f ms",
                    spec.method,
                    spec.path,
                    type(exc).__name__,
                    (time.perf_counter() - started) * 1000,
                )
            msg = f"{spec.method} {spec.path} failed: {text}"
            raise TransportError(
                msg,
                method=spec.method,
                path=spec.path,
                cause=exc,
            ) from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.1f ms",
                spec.method,
                spec.path,
                status,
                (time.perf_counter() - started) * 1000,
            )
        return decode(spec, status, headers, body)

    async def _send(
        self, spec: RequestSpec, session_id: str | None
    ) -> tuple[int, httpx.Headers, bytes]:
        """One request, one full answer: through our transport, or the caller's client."""
        http = self._ensure_http()
        url = self._settings.base_url + spec.path
        params = spec.params or None
        transport = self._direct
        if transport is None:  # a caller's http_client: its headers, hooks and auth apply
            headers = {"sessionId": session_id} if session_id is not None else None
            answer = await http.request(
                spec.method, url, params=params, json=spec.body, headers=headers
            )
            return answer.status_code, answer.headers, answer.content
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
            body = await response.aread()
        finally:
            await response.aclose()
        return response.status_code, response.headers, body


def _check_where(where: object) -> CallbackFilter:
    if not isinstance(where, CallbackFilter):
        msg = (
            f"where must be a CallbackFilter, got {type(where).__name__}: build one with "
            "CallbackFilter.campaign(campaign_id, ...) or CallbackFilter.tenant(...)"
        )
        raise TypeError(msg)
    return where


def _check_info(info: object) -> bool | None:
    if info is not None and not isinstance(info, bool):
        msg = f"info must be a bool or None, got {type(info).__name__}"
        raise TypeError(msg)
    return info


def _maybe_done(exc: TransportError | ServerError) -> bool:
    """Whether the server may have carried out a request that failed this way.

    Not when the connection was never made (the request was never sent);
    yes for a timeout or a dropped connection after sending, and for a
    gateway's 500/502/504 (the backend may have done it before failing).
    """
    if isinstance(exc, ServerError):
        return exc.status_code in _AMBIGUOUS_STATUSES
    cause = exc.cause
    origin = cause.__cause__ if cause is not None else None
    if _aiohttp is not None and isinstance(origin, _aiohttp.ClientError):
        # The aiohttp transport maps every connection error to ConnectTimeout;
        # the aiohttp exception it came from says which one it was.
        return not isinstance(origin, _aiohttp.ClientConnectorError)
    return not isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))


def _is_transport_failure(exc: Exception) -> bool:
    """httpx's request errors, and what the aiohttp transport lets through unmapped."""
    if isinstance(exc, (httpx.RequestError, OSError, TimeoutError)):
        return True
    return _aiohttp is not None and isinstance(exc, _aiohttp.ClientError)
