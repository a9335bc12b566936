"""FakeAmeyo: an in-memory Ameyo CallBack API server, as a raw ASGI 3 application.

It follows ``ameyo-callback-apis.txt`` first and WIRE_NOTES where the spec is
silent. It imports the models, the converter and the protocol constants,
never the client: ``FakeAmeyo.client()`` reaches the client through
``_helpers`` at call time.

Routes (all under ``/ameyorestapi``)::

    POST|GET  /voice/customerCallbacks/getFiltered              a campaign's callbacks
    POST|GET  /voice/customerCallbacks/getTenantUserCallbacks   the tenant's callbacks
    DELETE    /voice/customerCallbacks/<percent-encoded id>     delete one callback
    POST      /userLogin/login                                  {"userSessionInfo": {"sessionId"}}
    POST      /session/userLogin                                {"sessionId"} (Exotel's shape)
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote, unquote_to_bytes

import anyio
import attrs

from .._models import CustomerCallback
from .._protocol import CALLBACKS_PREFIX, DEFAULT_LOGIN_PATH, NOT_FOUND_KEY
from ._faults import DroppedConnection, Endpoint, Fault, FaultInjector, FaultPlan, fault_response
from ._store import CallbackStore, Filter, seed_store

if TYPE_CHECKING:
    from .._client import AmeyoCallbacksClient

__all__ = [
    "DEFAULT_USERS",
    "FLAT_LOGIN_PATH",
    "LIST_PATH",
    "FakeAmeyo",
    "RequestLogEntry",
    "SessionState",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SessionState = Literal["missing", "valid", "unknown", "expired"]
DeleteOkBody = Literal['"OK"', '"ok"', "OK", "ok"]

LIST_PATH = f"{CALLBACKS_PREFIX}/getFiltered"
FLAT_LOGIN_PATH = "/ameyorestapi/session/userLogin"
DEFAULT_USERS = ("stieve", "asha", "ravi", "li", "maria")
NOT_FOUND_ERROR_CODE = 5121

_PREFIX = CALLBACKS_PREFIX.encode() + b"/"
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_JSON = (b"content-type", b"application/json")
_TEXT = (b"content-type", b"text/plain;charset=utf-8")


@attrs.frozen
class RequestLogEntry:
    """One request the fake served (or failed to), for assertions.

    ``status`` is None when no complete answer went out: a dropped connection,
    or a client that went away first. ``fault`` is the injected fault's kind.
    ``session`` says how the ``sessionId`` header looked, never its value.
    ``body`` is the request body, except for login calls (None: it carries a
    token). ``started``/``ended`` are ``time.monotonic()`` readings, ``seq`` the
    arrival number.
    """

    seq: int
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    endpoint: Endpoint | None
    status: int | None
    fault: str | None
    session: SessionState
    body: bytes | None
    started: float
    ended: float

    @property
    def duration(self) -> float:
        """Seconds from arrival to the last byte (or the drop)."""
        return self.ended - self.started

    def params(self, name: str) -> list[str]:
        """Every value of one query parameter, in order."""
        return [v for k, v in self.query if k == name]


@attrs.frozen
class _Request:
    method: str
    raw_path: bytes
    path: str
    query: tuple[tuple[str, str], ...]
    session: str | None = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)

    def first(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def every(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@attrs.frozen
class _Answer:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@attrs.define
class _Exchange:
    """What the log records about one request, filled in as it goes."""

    endpoint: Endpoint | None = None
    status: int | None = None
    fault: str | None = None
    session: SessionState = "missing"
    body: bytes | None = None


def _json(status: int, payload: object, *headers: tuple[bytes, bytes]) -> _Answer:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _Answer(status, (_JSON, *headers), body)


def _invalid_input(info: str) -> _Answer:
    return _json(400, {"message": "InvalidInput", "code": 40001, "info": info})


def _not_found(text: str) -> _Answer:
    return _Answer(404, (_TEXT,), text.encode())


def _method_not_allowed(allowed: Iterable[str]) -> _Answer:
    envelope = {"message": "method.not.allowed", "info": None, "status": 405, "errorCode": 405}
    return _json(405, envelope, (b"allow", ", ".join(sorted(allowed)).encode()))


def _java_int(text: str, bounds: tuple[int, int]) -> int | None:
    """Integer.valueOf / Long.valueOf: optional sign, ASCII digits, in range; else None."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    return value if bounds[0] <= value <= bounds[1] else None


async def _sleep_unless_gone(delay: float, receive: Receive) -> bool:
    """Sleep ``delay`` seconds; False (early) if the client disconnects meanwhile."""
    gone = False

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal gone
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
                scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, tg.cancel_scope)
        await anyio.sleep(delay)
        tg.cancel_scope.cancel()
    return not gone


class FakeAmeyo:
    """An in-memory Ameyo CallBack API server, as an ASGI 3 application.

    Plug it into ``httpx.ASGITransport`` (see :meth:`client`) or serve it on a
    loopback socket with :func:`~ameyo_callbacks.testing.serve`. It holds
    callbacks in compact columns, so :meth:`seeded` with a million records is
    cheap, and serves them in a stable order: date added, then id.

    Options (all keyword-only, all also plain attributes you may change later
    unless noted):

    - ``list_methods``: methods the two list endpoints accept (default POST and
      GET); the other answers 405 ``method.not.allowed``.
    - ``tenant_path``: the tenant list's path segment under the callbacks
      prefix (or an absolute path); fixed at construction.
    - ``max_limit``: a larger ``limit`` is served as this many (spec: 100).
    - ``delete_ok_body``: the success body of a delete: ``'"OK"'`` (the spec's,
      JSON-quoted) or bare ``"OK"``/``"ok"`` (Exotel's) or ``'"ok"'``.
    - ``info_supported``: False answers ``info=true`` with 405, as some servers do.
    - ``secure_mode``: an invalid session answers 401 ``invalid.authentication.token``
      instead of 403 ``invalid.session.id``.
    - ``session_ttl``: seconds a session lives unused (None: forever).
    - ``latency``, ``jitter``: every request waits ``latency`` plus up to
      ``jitter`` seconds (``anyio.sleep``, so requests overlap).
    - ``faults``: a :class:`FaultPlan` (see also :meth:`script`).
    - ``seed``: drives session ids and jitter.
    - ``log_limit``: the request log keeps this many newest entries (None: all).
    """

    def __init__(
        self,
        callbacks: Iterable[CustomerCallback | Mapping[str, Any]] = (),
        *,
        seed: int = 0,
        list_methods: Iterable[str] = ("POST", "GET"),
        tenant_path: str = "getTenantUserCallbacks",
        max_limit: int = 100,
        delete_ok_body: DeleteOkBody = '"OK"',
        info_supported: bool = True,
        secure_mode: bool = False,
        session_ttl: float | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
        faults: FaultPlan | None = None,
        log_limit: int | None = 100_000,
    ) -> None:
        self.list_methods = frozenset(m.upper() for m in list_methods)
        if not self.list_methods or not self.list_methods <= {"POST", "GET"}:
            msg = f"list_methods must be some of POST and GET, got {sorted(self.list_methods)}"
            raise ValueError(msg)
        self._tenant_path = tenant_path
        self._tenant_raw = (
            tenant_path.rstrip("/")
            if tenant_path.startswith("/")
            else f"{CALLBACKS_PREFIX}/{tenant_path.strip('/')}"
        ).encode()
        if max_limit < 1:
            msg = f"max_limit must be >= 1, got {max_limit}"
            raise ValueError(msg)
        self.max_limit = max_limit
        self.delete_ok_body: DeleteOkBody = delete_ok_body
        self.info_supported = info_supported
        self.secure_mode = secure_mode
        self.session_ttl = session_ttl
        self.latency = latency
        self.jitter = jitter

        self._lock = threading.RLock()
        self._store = CallbackStore()
        self._faults = FaultInjector(faults)
        self._log: deque[RequestLogEntry] = deque(maxlen=log_limit)
        self._seq = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._logins = 0
        self._jitter_rng = random.Random(f"ameyo-fake-latency-{seed}")
        self._session_rng = random.Random(f"ameyo-fake-session-{seed}")
        self._sessions: dict[str, float] = {}
        self._expired: set[str] = set()
        self._credentials: dict[str, tuple[str, str | None]] = {}
        self._session_id = self.new_session()
        self.add(*callbacks)

    def __repr__(self) -> str:
        return f"<FakeAmeyo {len(self)} callbacks, {len(self._log)} requests logged>"

    @property
    def tenant_path(self) -> str:
        """Where the tenant list is served (as given to the constructor)."""
        return self._tenant_path

    @classmethod
    def seeded(
        cls,
        n: int,
        *,
        campaigns: Iterable[int] = (6, 7, 8),
        users: Iterable[str] = DEFAULT_USERS,
        seed: int = 0,
        **options: Any,
    ) -> FakeAmeyo:
        """A fake holding ``n`` deterministic callbacks (same seed, same records).

        Spread over ``campaigns`` and ``users`` (one in five is a campaign
        callback: ``selfCallback`` false, ``userId`` null), added over 30 days
        from 2024-01-01 UTC and scheduled 10 minutes to 14 days later. Ids look
        like ``d806-59423051-cm-17`` and are unique. ``options`` go to the
        constructor. A million records seed in a few seconds.
        """
        fake = cls(seed=seed, **options)
        seed_store(fake._store, n, campaigns=tuple(campaigns), users=tuple(users), seed=seed)
        fake._store.select(Filter())  # sort once now, not in the first request
        return fake

    # ------------------------------------------------------------------
    # State, for tests

    @property
    def callbacks(self) -> list[CustomerCallback]:
        """Every callback held, in serving order (date added, then id)."""
        return self._store.records()

    def ids(self) -> set[str]:
        """The ids of every callback held."""
        return self._store.ids()

    def ordered_ids(self) -> list[str]:
        """The ids of every callback held, in serving order; much cheaper than
        :attr:`callbacks` for a million records."""
        return self._store.ordered_ids()

    def get(self, callback_id: str) -> CustomerCallback | None:
        """One callback by id, or None."""
        return self._store.get(callback_id)

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, callback_id: object) -> bool:
        return callback_id in self._store

    @property
    def version(self) -> int:
        """A counter bumped by every add and remove."""
        return self._store.version

    def add(self, *callbacks: CustomerCallback | Mapping[str, Any], replace: bool = False) -> None:
        """Add callbacks, as records or wire dicts (camelCase keys, epoch ms).

        Wire dicts are type-checked as the client checks them; fields the
        record does not model are kept and served as given. An id already held
        raises ValueError unless ``replace``.
        """
        for callback in callbacks:
            if isinstance(callback, CustomerCallback):
                self._store.add_record(callback, replace=replace)
            else:
                self._store.add_wire(callback, replace=replace)

    def remove(self, *callback_ids: str) -> None:
        """Remove callbacks by id; KeyError (removing none) if one is not held."""
        self._store.remove_all(callback_ids)

    def clear(self) -> None:
        """Remove every callback."""
        self._store.clear()

    # ------------------------------------------------------------------
    # Sessions and logins

    @property
    def session_id(self) -> str:
        """The fake's default session id (valid until :meth:`expire_session`)."""
        return self._session_id

    def new_session(self) -> str:
        """Open and return a new valid session id."""
        session = str(uuid.UUID(int=self._session_rng.getrandbits(128), version=4))
        with self._lock:
            self._sessions[session] = time.monotonic()
        return session

    def expire_session(self, session_id: str | None = None) -> None:
        """Expire a session (the default one when None): it now answers 403."""
        session = self._session_id if session_id is None else session_id
        with self._lock:
            self._sessions.pop(session, None)
            self._expired.add(session)

    def add_user(self, user_id: str, token: str, *, domain: str | None = None) -> None:
        """Accept logins for ``user_id`` with ``token`` (and ``domain``, if given)."""
        with self._lock:
            self._credentials[user_id] = (token, domain)

    @property
    def login_count(self) -> int:
        """Successful logins so far."""
        return self._logins

    # ------------------------------------------------------------------
    # Faults and latency

    @property
    def faults(self) -> FaultPlan:
        """The fault plan; assigning one restarts its random stream."""
        return self._faults.plan

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        self._faults.plan = plan

    def script(self, endpoint: Endpoint | Literal["any"], *faults: Fault | str | None) -> None:
        """Queue faults for the next requests to ``endpoint``, in order.

        ``endpoint`` is ``"list"``, ``"tenant"``, ``"delete"``, ``"login"`` or
        ``"any"``; each entry is a :class:`Fault`, a kind name, or None (serve
        that request normally). Scripted entries are used before the plan's
        rate, an endpoint's own queue before ``"any"``.
        """
        self._faults.script(endpoint, faults)

    def pending_faults(self, endpoint: Endpoint | Literal["any"]) -> int:
        """Scripted entries not used yet for ``endpoint``."""
        return self._faults.pending(endpoint)

    def clear_faults(self) -> None:
        """Drop scripted faults and set a zero-rate plan."""
        self._faults.clear()

    # ------------------------------------------------------------------
    # Request log

    @property
    def requests(self) -> list[RequestLogEntry]:
        """The request log, oldest first (entries are added when a request ends)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    @property
    def in_flight(self) -> int:
        """Requests being served right now."""
        return self._in_flight

    @property
    def max_concurrency(self) -> int:
        """The most requests in flight at once since the last reset."""
        return self._max_in_flight

    def reset_max_concurrency(self) -> None:
        """Restart the high-water mark from the requests in flight now."""
        with self._lock:
            self._max_in_flight = self._in_flight

    # ------------------------------------------------------------------
    # Clients

    def client(self, **kwargs: Any) -> AmeyoCallbacksClient:
        """An ``AmeyoCallbacksClient`` wired to this app in-process (no socket).

        Uses this fake's :attr:`session_id`, list method and tenant path unless
        given; other keyword arguments go to the client.
        """
        from ._helpers import make_client  # noqa: PLC0415  (the client is imported on use)

        return make_client(self, **kwargs)

    # ------------------------------------------------------------------
    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point (``http`` and ``lifespan`` scopes)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            msg = f"the fake Ameyo server speaks HTTP only, not {scope['type']!r}"
            raise RuntimeError(msg)
        await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        raw = scope.get("raw_path") or quote(scope["path"], safe="/").encode()
        raw_path = bytes(raw).split(b"?", 1)[0]
        query = tuple(
            parse_qsl(
                bytes(scope.get("query_string", b"")).decode("latin-1"), keep_blank_values=True
            )
        )
        method = str(scope["method"]).upper()
        ex = _Exchange()
        try:
            body = await self._read_body(receive)
            if body is None:
                return
            session = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"sessionid"),
                None,
            )
            req = _Request(method, raw_path, scope["path"], query, session, body)
            ex.endpoint = self._route(method, raw_path)
            ex.session = self._session_state(session, touch=False)
            ex.body = None if ex.endpoint == "login" else body
            fault = self._faults.pick(ex.endpoint) if ex.endpoint is not None else None
            ex.fault = fault.kind if fault is not None else None
            delay = self.latency + (self.jitter * self._jitter_rng.random() if self.jitter else 0.0)
            if delay > 0 and not await _sleep_unless_gone(delay, receive):
                return
            await self._respond(req, ex, fault, receive, send)
        finally:
            ended = time.monotonic()
            entry = RequestLogEntry(
                seq=seq,
                method=method,
                path=scope["path"],
                query=query,
                endpoint=ex.endpoint,
                status=ex.status,
                fault=ex.fault,
                session=ex.session,
                body=ex.body,
                started=started,
                ended=ended,
            )
            with self._lock:
                self._in_flight -= 1
                self._log.append(entry)

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _respond(
        self, req: _Request, ex: _Exchange, fault: Fault | None, receive: Receive, send: Send
    ) -> None:
        endpoint = ex.endpoint
        if fault is None:
            await self._send(send, self._handle(req, endpoint, commit=True), ex)
        elif fault.kind == "slow":
            early = self._handle(req, endpoint, commit=True) if fault.apply_before_fault else None
            if await _sleep_unless_gone(fault.delay, receive):
                answer = early or self._handle(req, endpoint, commit=True)
                await self._send(send, answer, ex)
        elif fault.kind in ("truncated", "drop"):
            answer = self._handle(req, endpoint, commit=fault.apply_before_fault)
            half = answer.body[: len(answer.body) // 2]
            if fault.kind == "truncated":
                await self._send(send, _Answer(answer.status, answer.headers, half), ex)
                return
            length = (b"content-length", str(len(answer.body)).encode())
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": [*answer.headers, length],
                }
            )
            await send({"type": "http.response.body", "body": half, "more_body": True})
            raise DroppedConnection
        else:
            if fault.apply_before_fault:
                self._handle(req, endpoint, commit=True)
            status, headers, body = fault_response(fault)
            await self._send(send, _Answer(status, tuple(headers), body), ex)

    @staticmethod
    async def _send(send: Send, answer: _Answer, ex: _Exchange) -> None:
        length = (b"content-length", str(len(answer.body)).encode())
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [*answer.headers, length],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
        ex.status = answer.status

    # ------------------------------------------------------------------
    # Routing and handlers (pure but for the store and the sessions)

    def _route(self, method: str, raw_path: bytes) -> Endpoint | None:
        if raw_path in (DEFAULT_LOGIN_PATH.encode(), FLAT_LOGIN_PATH.encode()):
            return "login"
        if method != "DELETE":
            if raw_path == LIST_PATH.encode():
                return "list"
            if raw_path == self._tenant_raw:
                return "tenant"
        segment = raw_path[len(_PREFIX) :]
        if raw_path.startswith(_PREFIX) and segment and b"/" not in segment:
            return "delete"
        return None

    def _session_state(self, session: str | None, *, touch: bool) -> SessionState:
        if session is None:
            return "missing"
        with self._lock:
            last_used = self._sessions.get(session)
            if last_used is None:
                return "expired" if session in self._expired else "unknown"
            now = time.monotonic()
            if self.session_ttl is not None and now - last_used > self.session_ttl:
                del self._sessions[session]
                self._expired.add(session)
                return "expired"
            if touch:
                self._sessions[session] = now
            return "valid"

    def _handle(self, req: _Request, endpoint: Endpoint | None, *, commit: bool) -> _Answer:
        if endpoint is None:
            return _not_found(f"Could not find resource for full path: {req.path}")
        if endpoint == "login":
            if req.method != "POST":
                return _method_not_allowed(("POST",))
            return self._login(req, commit=commit)
        if self._session_state(req.session, touch=True) != "valid":
            if self.secure_mode:
                return _json(
                    401,
                    {
                        "message": "invalid.authentication.token",
                        "code": 909090,
                        "info": None,
                        "status": 401,
                    },
                )
            return _json(
                403, {"message": None, "code": 99999, "info": "invalid.session.id", "status": 403}
            )
        if endpoint == "delete":
            if req.method != "DELETE":
                return _method_not_allowed(("DELETE",))
            return self._delete(req, commit=commit)
        if req.method not in self.list_methods:
            return _method_not_allowed(self.list_methods)
        return self._list(req, tenant=endpoint == "tenant")

    def _list(self, req: _Request, *, tenant: bool) -> _Answer:
        # JAX-RS binds every parameter before the method runs: a value that is
        # not a number is a 404 from the framework, a missing one a 400 from Ameyo.
        numbers: dict[str, int | None] = {}
        names = ("limit", "offset") if tenant else ("limit", "campaignId", "offset")
        dates = ("fromDateAdded", "toDateAdded", "fromDateScheduled", "toDateScheduled")
        for name in (*names, *dates):
            raw = req.first(name)
            if raw is None:
                numbers[name] = None
                continue
            numbers[name] = _java_int(raw, _INT64 if name in dates else _INT32)
            if numbers[name] is None:
                return _not_found(
                    "Unable to extract parameter from http request: "
                    f"javax.ws.rs.QueryParam(\"{name}\") value is '{raw}'"
                )
        for name in ("campaignId", "limit", "offset") if not tenant else ("limit", "offset"):
            if numbers[name] is None:
                return _invalid_input(f"parameter expected in input: {name}")
        limit, offset = numbers["limit"] or 0, numbers["offset"] or 0  # both present here
        for name, value in (("limit", limit), ("offset", offset)):
            if value < 0:
                return _invalid_input(f"invalid value in input: {name}")
        info = (req.first("info") or "").lower() == "true"
        if info and not self.info_supported:
            return _method_not_allowed(())
        users = req.every("userIds")
        flt = Filter(
            campaign_id=None if tenant else numbers["campaignId"],
            user_ids=frozenset(users) if users else None,
            from_added=numbers["fromDateAdded"],
            to_added=numbers["toDateAdded"],
            from_scheduled=numbers["fromDateScheduled"],
            to_scheduled=numbers["toDateScheduled"],
        )
        body = self._store.page_json(flt, offset, min(limit, self.max_limit), info=info)
        return _Answer(200, (_JSON,), body)

    def _delete(self, req: _Request, *, commit: bool) -> _Answer:
        try:  # decoded from the raw path exactly once: "%252F" is the id "%2F"
            callback_id = unquote_to_bytes(req.raw_path[len(_PREFIX) :]).decode("utf-8")
        except UnicodeDecodeError:
            return _not_found(f"Could not find resource for full path: {req.path}")
        found = self._store.discard(callback_id) if commit else callback_id in self._store
        if not found:
            return _json(
                512,
                {
                    "message": None,
                    "info": json.dumps([NOT_FOUND_KEY, callback_id]),
                    "status": 512,
                    "errorCode": NOT_FOUND_ERROR_CODE,
                },
            )
        quoted = self.delete_ok_body.startswith('"')
        return _Answer(200, (_JSON if quoted else _TEXT,), self.delete_ok_body.encode())

    def _login(self, req: _Request, *, commit: bool) -> _Answer:
        try:
            payload = json.loads(req.body) if req.body.strip() else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _invalid_input("a JSON object is expected in input")
        for name in ("userId", "token"):
            if not isinstance(payload.get(name), str):
                return _invalid_input(f"parameter expected in input: {name}")
        user_id, token, domain = payload["userId"], payload["token"], payload.get("domain")
        with self._lock:
            known = self._credentials.get(user_id)
        if known is None or known[0] != token or known[1] not in (None, domain):
            return _json(
                401,
                {
                    "message": "invalid.authentication.token",
                    "code": 909090,
                    "info": None,
                    "status": 401,
                },
            )
        if commit:
            session = self.new_session()
            with self._lock:
                self._logins += 1
        else:  # a faulted login opens no session: answer with one that will never work
            session = str(uuid.UUID(int=0))
        if req.raw_path == FLAT_LOGIN_PATH.encode():
            return _json(200, {"sessionId": session, "userId": user_id})
        return _json(
            200,
            {
                "userSessionInfo": {"sessionId": session, "userId": user_id, "domain": domain},
                "forceLogin": payload.get("forceLogin", False),
            },
        )
