"""FakeAmeyo: an in-memory Ameyo CallBack API server, as a raw ASGI 3 application.

It follows ``ameyo-callback-apis.txt`` first and WIRE_NOTES where the spec is
silent. This module is the facade over the rooms (``_asgi``, ``_routing``,
``_pipeline``: the per-request steps, ``_handlers``, ``_answers``, ``_sessions``,
``_log``, ``_store``, ``_faults``, ``_live``, ``_limits``). It never imports the
client: ``FakeAmeyo.client()`` reaches it through ``_helpers`` at call time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._models import CustomerCallback
from ._asgi import Receive, Scope, Send, asgi_entry
from ._columns import LIST_ORDERS, ListOrder, SortOrder
from ._faults import Endpoint, Fault, FaultInjector, FaultPlan
from ._handlers import DeleteOkBody, Handlers
from ._limits import ServerLimits
from ._live import LiveChanges, LiveControls
from ._log import RequestLog, RequestLogEntry
from ._pipeline import Pipeline
from ._routing import Router
from ._seed import DEFAULT_CAMPAIGNS, DEFAULT_USERS, seed_store
from ._sessions import SessionBook
from ._store import CallbackStore

if TYPE_CHECKING:
    from .._client import AmeyoCallbacksClient

__all__ = ["DEFAULT_USERS", "FakeAmeyo"]


class FakeAmeyo(LiveControls):
    """An in-memory Ameyo CallBack API server, as an ASGI 3 application.

    Plug it into ``httpx.ASGITransport`` (see :meth:`client`) or serve it on a
    loopback socket with :func:`~ameyo_callbacks.testing.serve`. It holds
    callbacks in compact columns, so :meth:`seeded` with a million records is
    cheap, and serves them in a stable order: date added, then id. In live
    mode (:meth:`live`, :meth:`change`) the list changes while it is read.

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
    - ``secure_mode``: a JWT server (WIRE_NOTES "Seen since"). A login answer
      also holds a JWT (``authenticationState.authPolicyVsUserInfo
      ["auth.type.passwd"].loginProperties.jwt``, with ``jwtTokenExpiryMs``);
      every other call needs it as a raw ``Authorization`` header beside
      ``sessionId``; a missing, expired or unknown JWT or session answers 401
      ``invalid.authentication.token`` (not 403 ``invalid.session.id``);
      ``POST /ameyorestapi/session/refreshToken`` ``{"userId"}`` answers a
      new ``{"jwtToken"}`` for a valid session. :attr:`jwt` is the default
      session's JWT; :meth:`expire_jwt` expires JWTs now.
    - ``jwt_ttl``: seconds a JWT lives from its issue (900, as
      ``jwtTokenExpiryMs`` ``"900000"``; None: forever).
    - ``refuse_refresh``: the JWT renewal answers 401 (the client then logs
      in again).
    - ``session_ttl``: seconds a session lives unused (None: forever).
    - ``latency``, ``jitter``: every request waits ``latency`` plus up to
      ``jitter`` seconds (``anyio.sleep``, so requests overlap).
    - ``faults``: a :class:`FaultPlan` (see also :meth:`script`).
    - ``order``: ``"dateAdded"`` (then id), ``"callbackTime"`` (then id),
      ``"ties"`` (by date added, each millisecond's ties in a new order per
      answer) or ``"unstable"`` (the whole list shuffled per answer).
    - ``to_date_added_inclusive``: False leaves out ``toDateAdded``'s own ms.
    - ``seed``: drives session ids, jitter and the shuffled orders.
    - ``log_limit``: the request log keeps this many newest entries (None: all).
    - ``limits``: a :class:`ServerLimits`: a number of workers (requests beyond
      it queue; the latency is the service time) and a token-bucket rate limit
      answering 429 with ``Retry-After``. None: neither.
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
        jwt_ttl: float | None = 900.0,
        refuse_refresh: bool = False,
        session_ttl: float | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
        faults: FaultPlan | None = None,
        log_limit: int | None = 100_000,
        order: ListOrder = "dateAdded",
        to_date_added_inclusive: bool = True,
        limits: ServerLimits | None = None,
    ) -> None:
        self.list_methods: frozenset[str] = frozenset(m.upper() for m in list_methods)
        if not self.list_methods or not self.list_methods <= {"POST", "GET"}:
            msg = f"list_methods must be some of POST and GET, got {sorted(self.list_methods)}"
            raise ValueError(msg)
        if max_limit < 1:
            msg = f"max_limit must be >= 1, got {max_limit}"
            raise ValueError(msg)
        self.max_limit = max_limit
        self.delete_ok_body: DeleteOkBody = delete_ok_body
        self.info_supported = info_supported
        self.secure_mode = secure_mode
        self.refuse_refresh = refuse_refresh
        self.latency = latency
        self.jitter = jitter
        self.order = order
        self.to_date_added_inclusive = to_date_added_inclusive

        self._store = CallbackStore()
        self._sessions = SessionBook(seed=seed, ttl=session_ttl, jwt_ttl=jwt_ttl)
        self._faults = FaultInjector(faults)
        self._log = RequestLog(log_limit)
        self._router = Router(tenant_path)
        self._pipeline = Pipeline(
            handlers=Handlers(self._store, self._sessions, self._router, self, seed=seed),
            faults=self._faults,
            log=self._log,
            timing=self,
            seed=seed,
        )
        self._live = LiveChanges(self._store)
        self._pipeline.before_request.append(self._live.before_request)
        self._limits: ServerLimits | None = None
        self.limits = limits
        self._session_id = self._sessions.open()
        self._jwt = self._sessions.issue_jwt(self._session_id, "fake")
        self.add(*callbacks)

    def __repr__(self) -> str:
        return f"<FakeAmeyo {len(self)} callbacks, {len(self._log)} requests logged>"

    @property
    def limits(self) -> ServerLimits | None:
        """The server's limits (workers, rate limit) and what they recorded; settable."""
        return self._limits

    @limits.setter
    def limits(self, limits: ServerLimits | None) -> None:
        if limits is not None and not isinstance(limits, ServerLimits):
            msg = f"limits must be a ServerLimits or None, got {type(limits).__name__}"
            raise TypeError(msg)
        pipeline, old = self._pipeline, self._limits
        if old is not None:
            pipeline.before_request.remove(old.before_request)
            pipeline.around_service.remove(old.around_service)
        if limits is not None:
            pipeline.before_request.append(limits.before_request)
            pipeline.around_service.append(limits.around_service)
        self._limits = limits

    @property
    def order(self) -> ListOrder:
        """The order of list answers (see the class docstring); settable."""
        return self._order

    @order.setter
    def order(self, order: ListOrder) -> None:
        if order not in LIST_ORDERS:
            msg = f"order must be one of {', '.join(LIST_ORDERS)}, got {order!r}"
            raise ValueError(msg)
        self._order: ListOrder = order

    @property
    def _sorted_by(self) -> SortOrder:
        return "callbackTime" if self._order == "callbackTime" else "dateAdded"

    @property
    def tenant_path(self) -> str:
        """Where the tenant list is served (as given to the constructor)."""
        return self._router.tenant_path

    @classmethod
    def seeded(
        cls,
        n: int,
        *,
        campaigns: Iterable[int] = DEFAULT_CAMPAIGNS,
        users: Iterable[str] = DEFAULT_USERS,
        seed: int = 0,
        bulk: int = 1,
        **options: Any,
    ) -> FakeAmeyo:
        """A fake holding ``n`` deterministic callbacks (same seed, same records).

        Spread over ``campaigns`` and ``users`` (one in five is a campaign
        callback: ``selfCallback`` false, ``userId`` null), added over 30 days
        from 2024-01-01 UTC and scheduled 10 minutes to 14 days later. Ids look
        like ``d806-59423051-cm-17`` and are unique. ``bulk`` > 1: runs of 1 to
        ``bulk`` callbacks share a millisecond (bulk uploads). ``options`` go to
        the constructor. A million records seed in a few seconds.
        """
        fake = cls(seed=seed, **options)
        campaigns, users = tuple(campaigns), tuple(users)
        seed_store(fake._store, n, campaigns=campaigns, users=users, seed=seed, bulk=bulk)
        fake._store.select(None, fake._sorted_by)  # sort once now, not in the first request
        return fake

    # ------------------------------------------------------------------
    # State, for tests

    @property
    def callbacks(self) -> list[CustomerCallback]:
        """Every callback held, in serving order (by date added, then id, when shuffled)."""
        return self._store.records(None, self._sorted_by)

    def ids(self) -> set[str]:
        """The ids of every callback held."""
        return self._store.ids()

    def ordered_ids(self) -> list[str]:
        """The ids of every callback held, in serving order; much cheaper than
        :attr:`callbacks` for a million records."""
        return self._store.ordered_ids(None, self._sorted_by)

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

    @property
    def session_ttl(self) -> float | None:
        """Seconds a session lives unused (None: forever); settable."""
        return self._sessions.ttl

    @session_ttl.setter
    def session_ttl(self, seconds: float | None) -> None:
        self._sessions.ttl = seconds

    def new_session(self) -> str:
        """Open and return a new valid session id."""
        return self._sessions.open()

    def expire_session(self, session_id: str | None = None) -> None:
        """Expire a session (the default one when None): it now answers 403."""
        self._sessions.expire(self._session_id if session_id is None else session_id)

    def add_user(self, user_id: str, token: str, *, domain: str | None = None) -> None:
        """Accept logins for ``user_id`` with ``token`` (and ``domain``, if given)."""
        self._sessions.add_user(user_id, token, domain)

    @property
    def login_count(self) -> int:
        """Successful logins so far."""
        return self._sessions.logins

    @property
    def jwt(self) -> str:
        """The default session's JWT (secure mode; valid until :meth:`expire_jwt`)."""
        return self._jwt

    @property
    def jwt_ttl(self) -> float | None:
        """Seconds a JWT lives from its issue (None: forever); settable."""
        return self._sessions.jwt_ttl

    @jwt_ttl.setter
    def jwt_ttl(self, seconds: float | None) -> None:
        self._sessions.jwt_ttl = seconds

    def expire_jwt(self, jwt: str | None = None) -> None:
        """Expire ``jwt``, or every JWT handed out so far when None: they now answer 401."""
        self._sessions.expire_jwt(jwt)

    @property
    def refresh_count(self) -> int:
        """Successful JWT renewals so far (secure mode)."""
        return self._sessions.refreshes

    # ------------------------------------------------------------------
    # Faults

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
        """The request log, oldest first.

        An entry is added just before its answer's last body bytes go out (so
        a client holding its answer finds it), or when a request ends
        unanswered (a fault, a client gone).
        """
        return self._log.entries()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._log.clear()

    @property
    def in_flight(self) -> int:
        """Requests being served right now (one leaves as its answer's last bytes go out)."""
        return self._log.in_flight

    @property
    def max_concurrency(self) -> int:
        """The most requests in flight at once since the last reset."""
        return self._log.max_in_flight

    def reset_max_concurrency(self) -> None:
        """Restart the high-water mark from the requests in flight now."""
        self._log.reset_max()

    # ------------------------------------------------------------------
    # Clients and ASGI

    def client(self, **kwargs: Any) -> AmeyoCallbacksClient:
        """An ``AmeyoCallbacksClient`` wired to this app in-process (no socket).

        Uses this fake's :attr:`session_id` (with its :attr:`jwt` in secure
        mode), list method and tenant path unless given; other keyword
        arguments go to the client.
        """
        from ._helpers import make_client  # noqa: PLC0415  (the client is imported on use)

        return make_client(self, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point (``http`` and ``lifespan`` scopes)."""
        await asgi_entry(scope, receive, send, self._pipeline.serve)
