"""The async client: one thin coroutine per endpoint over one layered send path.

The send path, outermost first, one concern each:

1. ``_call``: the session's headers (``sessionId``, and ``Authorization``
   on a JWT server); on ``AuthenticationError`` a provider that can renew
   does so (single-flight: a new JWT, or a new login) and the request is
   repeated once.
2. ``_with_retries``: the retry loop, every attempt the same (the first
   included): the retry decision of ``_retry.decide``, the back-off on the
   client's clock, Retry-After through the shared gate, the call's time
   budget (its end passed down, so it bounds the attempt in progress too);
   each failed attempt is shown to the caller's ``on_failure``.
3. ``_attempt``: one request: wait at the gate and the rate limits, send
   through ``_transport.Transport`` (which picks the HTTP stack, holds the
   attempt's deadline, caps the answer and classifies failures), log one
   DEBUG line; a 2xx answer is announced to the caller's ``on_answer``
   before it is decoded (a walk sends its next request meanwhile).
4. the pure decoders of ``_protocol``.

A DELETE whose earlier answer was lost and whose retry finds the id gone
counts as deleted: that rule is the delete's own (``_DeleteRule``), fed by
``on_failure``, not the retry loop's.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import anyio
import attrs
import httpx

from . import _tracing
from ._bulk import BulkDeleteResult, BulkProgress, BulkTally, delete_callbacks, delete_matching
from ._checks import check_bool, check_choice, check_float, check_int
from ._convert import make_converter
from ._filters import CallbackFilter
from ._limits import DEFAULT_MAX_CONCURRENCY, AdaptiveConcurrency, RequestLimits
from ._models import CustomerCallback
from ._paging import (
    Answered,
    CallbackIterator,
    OnInconsistency,
    PageFetcher,
    PageRequest,
    walk_scope,
)
from ._protocol import (
    MAX_LIMIT,
    Answer,
    LoginAnswer,
    RequestSpec,
    build_delete_request,
    build_list_request,
    decode_delete_response,
    decode_list_response,
    decode_login_response,
    decode_refresh_response,
    is_cut_short_ok,
    likely_full,
    tenant_list_path,
)
from ._retry import AnyioClock, BackoffGate, Clock, RetryDecision, RetryPolicy, decide
from ._session import Credentials, SessionCalls, SessionProvider, StaticSession
from ._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    HttpBackend,
    StackSettings,
    Transport,
)
from .exceptions import (
    AmeyoError,
    AuthenticationError,
    CallbackNotFoundError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = ["DEFAULT_TIMEOUT", "AmeyoCallbacksClient", "HttpBackend"]

logger = logging.getLogger("ameyo_callbacks")

T = TypeVar("T")
Decoder = Callable[[Answer], T]
OnFailure = Callable[[AmeyoError], None]
#: Awaited with a 2xx answer's body before it is decoded (a walk sends its next request).
OnAnswer = Callable[[bytes], Awaitable[None]]

#: Connections per client: above any sensible concurrency, below a server's patience.
DEFAULT_MAX_CONNECTIONS = 100
_DEFAULT_PORTS = {"http": 8888, "https": 8443}
# A lost DELETE answer: the server may have done it (see _DeleteRule).
_AMBIGUOUS_STATUSES = frozenset({500, 502, 504})


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
    if "%" in url.host or any(c.isspace() for c in url.host):
        msg = f"base_url {_shown(base_url)!r} has a space or an escape in its host: {expected}"
        raise ValueError(msg)
    # httpx.URL drops a port equal to the scheme's usual one (":80", ":443"),
    # but an explicit port is kept: read it back from the text.
    port = url.port if url.port is not None else urlsplit(base_url.strip()).port
    if port is None:
        port = _DEFAULT_PORTS[url.scheme]
    elif not 0 < port < 65536:
        msg = f"base_url {_shown(base_url)!r} has no valid port (1 to 65535): {expected}"
        raise ValueError(msg)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{port}{url.raw_path.decode('ascii').rstrip('/')}"


@attrs.define(slots=True, repr=False)
class _Settings:
    base_url: str
    list_method: str
    tenant_path: str
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY


class AmeyoCallbacksClient:
    """Async client for the Ameyo CallBack APIs. Use it as ``async with``.

    ``base_url`` is ``http(s)://host[:port][/prefix]``; without a port, 8888
    (http) or 8443 (https). ``session_id`` is the ``sessionId`` header sent on
    every call: a string, or a :class:`SessionProvider` such as
    :class:`LoginSession` that logs in and renews an expired session. It is
    never shown in a repr, a log line or an exception.

    ``timeout`` defaults to :data:`DEFAULT_TIMEOUT` (connect 10 s, read 30 s
    per read); ``retry`` to :class:`RetryPolicy()` (6 attempts, 60 s budget
    per call, 30 s for each attempt's whole answer). ``verify`` is True,
    False, a CA bundle path or an ``ssl.SSLContext``. ``max_response_bytes``
    (8 MiB) caps an answer, enforced while reading. ``trust_env`` (True, as
    httpx) takes proxies from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` and
    CAs from ``SSL_CERT_FILE``/``SSL_CERT_DIR``; ``proxy`` names one outright.

    The HTTP stack: with ``http_client`` (used as is, never closed by us: its
    own connection limits and transport then bound concurrency) or
    ``transport`` (wrapped in an ``httpx.AsyncClient`` we own), requests go
    there. Otherwise ``http_backend="httpx"`` (the default) is an
    ``httpx.AsyncClient`` of ours (:attr:`http_client`) over small httpx
    pools, so respx, httpx's OpenTelemetry instrumentation and event hooks
    see every request, on asyncio and trio; ``http_backend="aiohttp"`` (the
    ``aiohttp`` extra, asyncio only) spends less CPU per request for bulk
    jobs at 32 or more in flight (see the documentation's performance page).

    ``max_rate`` (requests per second, evenly spaced) caps every request of
    the client; ``adaptive_rate`` (on) lowers the client's own rate when the
    server throttles and climbs back; ``max_concurrency`` (32) bounds
    ``concurrency="auto"`` (see the guide "Going easy on a production
    server" in the documentation).

    ``list_method`` is ``"POST"`` as the spec says, or ``"GET"`` for servers
    that want GET. ``tenant_callbacks_path`` is where the tenant-wide list
    lives: the spec names that API but documents no wire format, so it
    follows getFiltered's conventions (same filters, no ``campaignId``) at
    this path below ``/ameyorestapi/voice/customerCallbacks/``, or at this
    absolute path when it starts with ``/``.
    """

    __slots__ = (
        "_calls",
        "_clock",
        "_converter",
        "_gate",
        "_limits",
        "_retry",
        "_session",
        "_settings",
        "_transport",
        "_walks",
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
        http_backend: HttpBackend = "httpx",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        clock: Clock | None = None,
        max_rate: float | None = None,
        adaptive_rate: bool = True,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        trust_env: bool = True,
        proxy: str | None = None,
    ) -> None:
        base = normalize_base_url(base_url)
        method = list_method.upper() if isinstance(list_method, str) else list_method
        check_choice("list_method", method, ("POST", "GET"))
        tenant_path = tenant_list_path(tenant_callbacks_path)
        if http_client is not None and transport is not None:
            msg = "pass http_client or transport, not both"
            raise ValueError(msg)
        check_choice("http_backend", http_backend, ("httpx", "aiohttp"))
        check_int("max_connections", max_connections, minimum=1)
        check_int("max_response_bytes", max_response_bytes, minimum=1)
        check_bool("trust_env", trust_env)
        if not isinstance(verify, (bool, str, ssl.SSLContext)):
            msg = (
                "verify must be True, False, a CA bundle path or an ssl.SSLContext, "
                f"got {type(verify).__name__}"
            )
            raise TypeError(msg)
        if proxy is not None and not isinstance(proxy, str):
            msg = f"proxy must be a URL such as 'http://proxy:3128', got {type(proxy).__name__}"
            raise TypeError(msg)
        check_int("max_concurrency", max_concurrency, minimum=1)
        check_bool("adaptive_rate", adaptive_rate)
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            timeout = httpx.Timeout(check_float("timeout", timeout))
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

        self._settings = _Settings(base_url=base, list_method=method, tenant_path=tenant_path)
        self._session = session_id
        self._calls = SessionCalls(login=self._login, refresh_jwt=self._refresh_jwt)
        self._retry = retry if retry is not None else RetryPolicy()
        stack = StackSettings(
            base_url=base,
            timeout=timeout,
            verify=verify,
            backend=http_backend,
            max_connections=max_connections,
            trust_env=trust_env,
            proxy=proxy,
            max_response_bytes=max_response_bytes,
            attempt_timeout=self._retry.attempt_timeout,
            call_timeout=self._retry.timeout,
        )
        self._transport = Transport(
            stack, http_client=http_client, transport=transport, secrets=session_id.secrets
        )
        clock = clock if clock is not None else AnyioClock()
        self._clock = clock
        self._gate = BackoffGate(clock)
        self._limits = RequestLimits(clock, self._gate, max_rate=max_rate, adaptive=adaptive_rate)
        self._settings.max_concurrency = max_concurrency
        self._converter = make_converter()
        # Walks of this client: told of its deletes, stopped when it closes.
        self._walks: weakref.WeakSet[CallbackIterator] = weakref.WeakSet()

    def __repr__(self) -> str:
        state = "closed" if self._transport.closed else "open"
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
    def limits(self) -> RequestLimits:
        """The pace shared by every request of this client: ``max_rate`` and the throttled rate."""
        return self._limits

    @property
    def http_backend(self) -> str:
        """The HTTP stack: "httpx", "aiohttp", or "custom" (``http_client``/``transport`` given)."""
        return self._transport.backend

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The ``httpx.AsyncClient`` every request goes through (None with ``"aiohttp"``).

        Built on first use. Add event hooks to it, or hand it to
        ``HTTPXClientInstrumentor.instrument_client``; close this client, not it.
        """
        return self._transport.http_client

    # ------------------------------------------------------------------
    # Life cycle

    async def __aenter__(self) -> AmeyoCallbacksClient:
        self._transport.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (a caller's ``http_client`` is left open).

        The requests of walks still running are cancelled; iterating such a
        walk further raises ``RuntimeError`` (it never ends as if complete).
        """
        for walk in list(self._walks):
            walk.client_closed()
            await walk.aclose()
        await self._transport.aclose()

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
        where = _check_where(where)
        spec = self._list_spec(where, limit, offset, _check_info(info))
        attributes = {"ameyo.page.limit": limit, "ameyo.page.offset": offset}
        with _tracing.operation(
            "ameyo.get_callbacks", self._span_attributes(where, attributes)
        ) as op:
            records = await self._call(spec, self._decode_list)
            if op is not None:
                op.set({"ameyo.records": len(records)})
            return records

    def iter_callbacks(
        self,
        where: CallbackFilter,
        *,
        page_size: int = MAX_LIMIT,
        prefetch: int = 4,
        max_items: int | None = None,
        start_offset: int = 0,
        info: bool | None = None,
        resume_from: str | None = None,
        on_inconsistency: OnInconsistency = "raise",
    ) -> CallbackIterator:
        """Every callback ``where`` selects, exactly once even while the list changes.

        ``async for cb in client.iter_callbacks(where): ...`` walks pages of
        ``page_size`` on any server order: offset pages that re-read the end
        of the one before while the server lists by ``dateAdded``, seeks by
        ``fromDateAdded`` when deletes move the list, date windows that each
        fit in a page when it does not (logged once). Up to ``prefetch``
        requests run while the loop body does (on asyncio; on trio, in
        waves); ``max_items`` caps the total. ``.pages()`` yields
        :class:`Page` records: ``resume_from=page.checkpoint`` resumes
        exactly after one. What no strategy can page through (more than a
        page added in one millisecond and listed in a new order each time, a
        server that ignores the date filters) raises
        :class:`ConsistencyError` (``on_inconsistency="warn"``: warn once,
        walk on where it can). Deletes made through this client meanwhile
        are told to the walk. See :class:`CallbackIterator`.
        """
        where = _check_where(where)
        info = _check_info(info)
        walk = CallbackIterator(
            self._walk_fetcher(where, info),
            page_size=page_size,
            start_offset=start_offset,
            max_items=max_items,
            prefetch=prefetch,
            resume_from=resume_from,
            on_inconsistency=on_inconsistency,
            scope=walk_scope(where.campaign_id, [*where.params(), ("info", str(info))]),
            from_date=where.from_date_added,
            to_date=where.to_date_added,
            span_attributes=self._span_attributes(where, {}),
        )
        self._walks.add(walk)
        return walk

    async def delete_callback(self, customer_callback_id: str) -> None:
        """Delete one callback (DELETE ``.../customerCallbacks/<id>``).

        Raises :class:`CallbackNotFoundError` when the id does not exist. When
        an earlier attempt's answer was lost (dropped connection, timeout, a
        gateway 500/502/504, a 2xx whose ``OK`` came empty or cut short) and
        the retry finds the id gone, the delete is reported as done: that
        attempt most likely did it.
        """
        attributes = {"ameyo.callback_id": customer_callback_id}
        with _tracing.operation("ameyo.delete_callback", self._span_attributes(None, attributes)):
            await self._send_delete(customer_callback_id)

    async def _delete_one(self, customer_callback_id: str) -> None:
        """The bulk deletes' sender: no span of its own (the bulk operation's is current)."""
        await self._send_delete(customer_callback_id)

    async def _send_delete(self, customer_callback_id: str) -> None:
        """One delete, with the rule for an answer that was lost; the walks are told."""
        rule = _DeleteRule(decode_delete_response)
        spec = build_delete_request(customer_callback_id)
        await self._call(spec, rule.decode, on_failure=rule.attempt_failed)
        for walk in list(self._walks):
            walk.forget(customer_callback_id)  # offsets moved: the walk seeks instead

    async def delete_callbacks(
        self,
        ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int | Literal["auto"] = 8,
        on_progress: Callable[[BulkProgress], None] | None = None,
        tally: BulkTally | None = None,
    ) -> BulkDeleteResult:
        """Delete many callbacks, ``concurrency`` at a time, with an outcome for every id.

        ``ids`` (an iterable or async iterable of strings, not a single
        string) is read lazily. API and transport failures become outcomes in
        the result, never an exception; on cancellation, ``tally.result()`` of
        a :class:`BulkTally` passed in still accounts for every id read.
        ``concurrency="auto"`` follows the server: it starts at 1 and climbs
        while the latency holds, up to the client's ``max_concurrency``.
        """
        tally = BulkTally() if tally is None else tally
        with self._bulk("ameyo.delete_callbacks", None, concurrency, tally, {}) as limit:
            return await delete_callbacks(
                self._delete_one,
                ids,
                concurrency=limit,
                on_progress=on_progress,
                tally=tally,
            )

    async def delete_matching(
        self,
        where: CallbackFilter,
        *,
        concurrency: int | Literal["auto"] = 8,
        dry_run: bool = False,
        on_progress: Callable[[BulkProgress], None] | None = None,
        tally: BulkTally | None = None,
    ) -> BulkDeleteResult:
        """Delete every callback ``where`` selects, skipping none.

        Walking offset pages while deleting would skip records (each delete
        shifts the later pages); this does not: see :func:`delete_matching`
        in the bulk module for the strategy and its bound. ``dry_run``
        returns what would be deleted, deleting nothing. ``concurrency="auto"``
        as in :meth:`delete_callbacks`.
        """
        where = _check_where(where)
        fetch = self._walk_fetcher(where, None)
        tally = BulkTally() if tally is None else tally
        more = {"ameyo.dry_run": dry_run}
        with self._bulk("ameyo.delete_matching", where, concurrency, tally, more) as limit:
            return await delete_matching(
                fetch,
                self._delete_one,
                concurrency=limit,
                dry_run=dry_run,
                on_progress=on_progress,
                tally=tally,
            )

    @contextlib.contextmanager
    def _bulk(
        self,
        name: str,
        where: CallbackFilter | None,
        concurrency: int | Literal["auto"],
        tally: BulkTally,
        more: Mapping[str, _tracing.Value],
    ) -> Iterator[int | AdaptiveConcurrency]:
        """A bulk delete's span (its counts from ``tally``, a cancellation too) and its limit."""
        attributes = {"ameyo.concurrency": str(concurrency), **more}
        with _tracing.operation(name, self._span_attributes(where, attributes)) as op:
            try:
                with self._concurrency(concurrency) as limit:
                    yield limit
            finally:
                if op is not None:
                    op.set({f"ameyo.{k}": n for k, n in tally.result().counts.items()})

    def _span_attributes(
        self, where: CallbackFilter | None, more: Mapping[str, _tracing.Value]
    ) -> dict[str, _tracing.Value | None]:
        """An operation span's first attributes: the server, the filter in words, ``more``."""
        url = urlsplit(self.base_url)
        return {
            "server.address": url.hostname,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "ameyo.filter": None if where is None else repr(where)[len("<CallbackFilter ") : -1],
            "ameyo.campaign_id": None if where is None else where.campaign_id,
            **more,
        }

    @contextlib.contextmanager
    def _concurrency(
        self, concurrency: int | Literal["auto"]
    ) -> Iterator[int | AdaptiveConcurrency]:
        """A fixed ``concurrency`` as is; ``"auto"``: a limiter fed by every attempt meanwhile."""
        if isinstance(concurrency, str) and concurrency != "auto":
            msg = f"concurrency must be an int >= 1 or 'auto', got the string {concurrency!r}"
            raise TypeError(msg)
        if concurrency != "auto":
            yield concurrency
            return
        limiter = AdaptiveConcurrency(max_limit=self._settings.max_concurrency)
        with self._limits.watch(limiter):
            yield limiter

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

    def _walk_fetcher(self, where: CallbackFilter, info: bool | None) -> PageFetcher:
        """Pages of ``where`` narrowed to a request's added dates (a walk's planner picks them)."""

        async def fetch(request: PageRequest, answered: Answered) -> list[CustomerCallback]:
            low = _tighter(max, where.from_date_added, request.from_date)
            high = _tighter(min, where.to_date_added, request.to_date)
            if low is not None and high is not None and low > high:
                return []  # nothing can match: no request
            narrowed = (
                where
                if low == where.from_date_added and high == where.to_date_added
                else attrs.evolve(where, from_date_added=low, to_date_added=high)
            )
            spec = self._list_spec(narrowed, request.limit, request.offset, info)

            async def announce(body: bytes) -> None:
                await answered(likely_full(body, request.limit))

            return await self._call(spec, self._decode_dated, on_answer=announce)

        return fetch

    def _decode_list(self, answer: Answer) -> list[CustomerCallback]:
        return decode_list_response(answer, self._converter)

    def _decode_dated(self, answer: Answer) -> list[CustomerCallback]:
        return decode_list_response(answer, self._converter, dated=True)

    async def _login(self, spec: RequestSpec) -> LoginAnswer:
        """Send a session provider's login request (no session headers), with retries."""
        return await self._with_retries(spec, decode_login_response, None)

    async def _refresh_jwt(self, spec: RequestSpec, stale: Credentials) -> str:
        """Send a session provider's JWT renewal with the session's headers, with retries."""
        return await self._with_retries(spec, decode_refresh_response, stale)

    async def _call(
        self,
        spec: RequestSpec,
        decode: Decoder[T],
        on_failure: OnFailure | None = None,
        on_answer: OnAnswer | None = None,
    ) -> T:
        session = self._session
        credentials = await session.credentials(self._calls)
        try:
            return await self._with_retries(spec, decode, credentials, on_failure, on_answer)
        except AuthenticationError as refused:
            renewed = await session.renew(credentials, refused, self._calls)
            if renewed is None:
                raise
            logger.info(
                "session renewed after %s %s was refused; repeating it", spec.method, spec.path
            )
            return await self._with_retries(spec, decode, renewed, on_failure, on_answer)

    async def _with_retries(
        self,
        spec: RequestSpec,
        decode: Decoder[T],
        credentials: Credentials | None,
        on_failure: OnFailure | None = None,
        on_answer: OnAnswer | None = None,
    ) -> T:
        policy = self._retry
        attempts = policy.attempts_now()
        # The budget's end, passed to every attempt: it bounds the one in progress too.
        call_end = None if policy.timeout is None else anyio.current_time() + policy.timeout
        number = 0
        while True:
            number += 1
            try:
                return await self._attempt(spec, decode, credentials, call_end, on_answer)
            except AmeyoError as exc:
                exc.attempts = number
                if on_failure is not None:
                    on_failure(exc)
                if number >= attempts or _spent(call_end):
                    raise
                decision = decide(exc, policy=policy)
                if not decision.retry or _outlasts(decision.retry_after, call_end):
                    raise  # (a Retry-After past the call's budget: waiting would only fail later)
                await self._pause(spec, decision, number, attempts, call_end)
                if _spent(call_end):
                    raise  # the budget went on the back-off: this failure says why

    async def _pause(
        self,
        spec: RequestSpec,
        decision: RetryDecision,
        number: int,
        attempts: int,
        call_end: float | None,
    ) -> None:
        """Log the retry; wait its back-off on the clock, or defer the gate by Retry-After."""
        after = decision.retry_after
        # The back-off, drawn now (its jitter too), or the server's Retry-After.
        seconds = self._retry.wait(number) if after is None else after
        if after is not None:
            wait = f"Retry-After {after:g} s (all requests of this client wait)"
        else:
            wait = f"back-off ~{self._retry.backoff(number):.2f} s"
        logger.warning(
            "retrying %s %s after %s (attempt %d of %d, %s)",
            spec.method,
            spec.path,
            decision.reason,
            number + 1,
            attempts,
            wait,
        )
        _tracing.event(
            "ameyo.retry",
            {
                "ameyo.attempt": number + 1,
                "ameyo.attempts": attempts,
                "ameyo.reason": decision.reason,
                "ameyo.wait_s": seconds,
                "http.request.method": spec.method,
            },
        )
        if after is not None:
            _tracing.event(
                "ameyo.retry_after", {"ameyo.wait_s": after, "ameyo.reason": decision.reason}
            )
            self._gate.defer(after)  # the next attempt waits at the gate, with every other
            return
        if seconds <= 0:
            return
        # The back-off never outlasts the call's budget (a real-time deadline).
        left = None if call_end is None else call_end - anyio.current_time()
        with anyio.move_on_after(left if left is not None else float("inf")):
            await self._clock.sleep(seconds)

    async def _attempt(
        self,
        spec: RequestSpec,
        decode: Decoder[T],
        credentials: Credentials | None,
        call_end: float | None,
        on_answer: OnAnswer | None = None,
    ) -> T:
        """One request: the gate, the rate limits, one send through the transport, the decoder."""
        await self._gate.wait()
        sent = await self._limits.acquire()  # max_rate and the throttled rate (_limits.py)
        _tracing.request_sent()
        started = time.perf_counter()
        try:
            auth = credentials.headers() if credentials is not None else None
            status, headers, body = await self._transport.send(spec, auth, call_end)
            self._limits.observe(sent, status, headers)  # feeds the rates and "auto" (_limits)
        except TransportError as exc:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %s after %.1f ms",
                    spec.method,
                    spec.path,
                    type(exc.cause).__name__ if exc.cause is not None else exc.kind,
                    (time.perf_counter() - started) * 1000,
                )
            raise
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.1f ms",
                spec.method,
                spec.path,
                status,
                (time.perf_counter() - started) * 1000,
            )
        if on_answer is not None and 200 <= status < 300:
            await on_answer(body)
        return decode(Answer(status, headers, body, spec, time.time(), self._session.secrets()))


def _outlasts(seconds: float | None, call_end: float | None) -> bool:
    """Whether a wait of ``seconds`` from now ends at or after the call's budget."""
    return (
        seconds is not None
        and call_end is not None
        and (anyio.current_time() + seconds >= call_end)
    )


def _spent(call_end: float | None) -> bool:
    """Whether the call's budget is used up."""
    return call_end is not None and anyio.current_time() >= call_end


def _tighter(pick: Callable[[int, int], int], a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else pick(a, b)


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


class _DeleteRule:
    """A DELETE's answers, and its rule for one whose earlier answer was lost.

    A retry that finds the id gone after an attempt that may have been
    carried out (the connection dropped or timed out after sending, a
    gateway's 500/502/504, a 2xx whose ``OK`` came empty or cut short)
    counts as deleted: that attempt most likely did it (the rule cannot tell
    who did). A connection never made or a failed TLS handshake sent
    nothing, and a 2xx HTML page may come from a proxy that never passed the
    request on, so a not-found after those is still an error.
    """

    __slots__ = ("_answer_lost", "_decode")

    def __init__(self, decode: Decoder[None]) -> None:
        self._decode = decode
        self._answer_lost = False

    def attempt_failed(self, exc: AmeyoError) -> None:
        """Told of every failed attempt of this delete."""
        if isinstance(exc, TransportError):
            self._answer_lost |= exc.request_sent
        elif isinstance(exc, ServerError):
            self._answer_lost |= exc.status_code in _AMBIGUOUS_STATUSES

    def decode(self, answer: Answer) -> None:
        """The delete's decoder; not-found after a lost answer is success."""
        try:
            self._decode(answer)
        except ResponseFormatError:
            # A 2xx whose "OK" lost its end on the way: the server acted, most likely.
            self._answer_lost |= is_cut_short_ok(answer.body)
            raise
        except CallbackNotFoundError:
            if not self._answer_lost:
                raise
            logger.info(
                "%s %s: gone after an attempt whose answer was lost; counted as deleted",
                answer.spec.method,
                answer.spec.path,
            )
