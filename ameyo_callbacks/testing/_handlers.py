"""The endpoint handlers: list (campaign and tenant), delete, login, JWT renewal; pure but
for state.

:meth:`Handlers.handle` turns one routed :class:`Request` into one
:class:`Answer`; it never sleeps or sends. ``commit=False`` computes the
answer without changing anything (the answer of a faulted request that must
not take effect). Error bodies come from :mod:`._answers`.

The list query is parsed into a :class:`~ameyo_callbacks.CallbackFilter`,
the value the client sends; a query the client would refuse to build (a
``from`` bound after its ``to``, a campaign id below 1, a blank user id) is
answered as a server would: a page that holds none of those callbacks.

In secure mode (a JWT server, WIRE_NOTES "Seen since") a login also hands
out a JWT, every other call needs it as a raw ``Authorization`` header
beside ``sessionId`` (401 ``invalid.authentication.token`` when it is
missing, expired or another session's), and ``POST /session/refreshToken``
``{"userId"}`` renews it for a valid session (``{"jwtToken"}``), unless
``refuse_refresh``. Without secure mode that path is unknown (404).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from typing import Literal, Protocol

from .._convert import datetime_to_epoch_ms
from .._filters import CallbackFilter
from ._answers import (
    JSON,
    TEXT,
    Answer,
    callback_not_found,
    invalid_input,
    invalid_session,
    invalid_token,
    jax_rs_not_found,
    json_answer,
    method_not_allowed,
)
from ._columns import ListOrder
from ._faults import Endpoint
from ._routing import Request, Router
from ._sessions import NO_JWT, NO_SESSION, SessionBook
from ._store import CallbackStore

__all__ = ["DeleteOkBody", "HandlerOptions", "Handlers", "wire_filter"]

DeleteOkBody = Literal['"OK"', '"ok"', "OK", "ok"]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_DATES = ("fromDateAdded", "toDateAdded", "fromDateScheduled", "toDateScheduled")
_MIN_MS = datetime_to_epoch_ms(datetime.min.replace(tzinfo=timezone.utc))
_MAX_MS = datetime_to_epoch_ms(datetime.max.replace(tzinfo=timezone.utc))


class HandlerOptions(Protocol):
    """The server options the handlers read at each request (``FakeAmeyo`` has them)."""

    list_methods: frozenset[str]
    max_limit: int
    delete_ok_body: DeleteOkBody
    info_supported: bool
    secure_mode: bool
    refuse_refresh: bool
    order: ListOrder
    to_date_added_inclusive: bool


def _java_int(text: str, bounds: tuple[int, int]) -> int | None:
    """Integer.valueOf / Long.valueOf: optional sign, ASCII digits, in range; else None."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    return value if bounds[0] <= value <= bounds[1] else None


def _clamp(low: int | None, high: int | None) -> tuple[int | None, int | None] | None:
    """Bounds within the dates a CallbackFilter holds; None when they keep nothing."""
    if (low is not None and low > _MAX_MS) or (high is not None and high < _MIN_MS):
        return None
    low = None if low is None or low < _MIN_MS else low
    high = None if high is None or high > _MAX_MS else high
    if low is not None and high is not None and low > high:
        return None
    return low, high


def wire_filter(
    campaign_id: int | None, user_ids: list[str], dates: dict[str, int | None]
) -> CallbackFilter | None:
    """The filter of a list query in wire form; None when it can match no callback.

    ``campaign_id`` None is the tenant list; ``dates`` maps the four wire
    names to epoch ms (or None). Bounds beyond the dates Python can show are
    dropped (a ``from`` before year 1 keeps everything) or match nothing.
    """
    if campaign_id is not None and campaign_id < 1:
        return None
    users = sorted({u for u in user_ids if u.strip()})
    if user_ids and not users:
        return None
    added = _clamp(dates["fromDateAdded"], dates["toDateAdded"])
    scheduled = _clamp(dates["fromDateScheduled"], dates["toDateScheduled"])
    if added is None or scheduled is None:
        return None
    return CallbackFilter(
        campaign_id,
        user_ids=users or None,
        from_date_added=added[0],
        to_date_added=added[1],
        from_date_scheduled=scheduled[0],
        to_date_scheduled=scheduled[1],
    )


class Handlers:
    """List, delete and login against the store and the sessions.

    In the ``"unstable"`` order each list answer is a page of the filtered
    list shuffled anew (from a stream seeded by ``seed``); in ``"ties"``,
    callbacks added in one millisecond come in a new order in each answer.
    """

    def __init__(
        self,
        store: CallbackStore,
        sessions: SessionBook,
        router: Router,
        options: HandlerOptions,
        *,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.router = router
        self.options = options
        self._shuffle_rng = random.Random(f"ameyo-fake-unstable-{seed}")

    def handle(self, req: Request, endpoint: Endpoint | None, *, commit: bool) -> Answer:
        """The answer to ``req``; it takes effect only when ``commit``."""
        if endpoint is None:
            return jax_rs_not_found(f"Could not find resource for full path: {req.path}")
        if endpoint == "login":
            if req.method != "POST":
                return method_not_allowed(("POST",))
            return self.login(req, commit=commit)
        secure = self.options.secure_mode
        if endpoint == "refresh":
            if not secure:
                return jax_rs_not_found(f"Could not find resource for full path: {req.path}")
            if req.method != "POST":
                return method_not_allowed(("POST",))
            return self.refresh(req, commit=commit)
        if self.sessions.state(req.session, touch=True) != "valid":
            return invalid_session(secure_mode=secure)
        if secure and self.sessions.jwt_state(req.session, req.jwt) != "valid":
            return invalid_token()
        if endpoint == "delete":
            if req.method != "DELETE":
                return method_not_allowed(("DELETE",))
            return self.delete(req, commit=commit)
        if req.method not in self.options.list_methods:
            return method_not_allowed(self.options.list_methods)
        return self.list(req, tenant=endpoint == "tenant")

    def list(self, req: Request, *, tenant: bool) -> Answer:
        """getFiltered or the tenant list: one page of the filtered order."""
        # JAX-RS binds every parameter before the method runs: a value that is
        # not a number is a 404 from the framework, a missing one a 400 from Ameyo.
        numbers: dict[str, int | None] = {}
        names = ("limit", "offset") if tenant else ("limit", "campaignId", "offset")
        for name in (*names, *_DATES):
            raw = req.first(name)
            if raw is None:
                numbers[name] = None
                continue
            numbers[name] = _java_int(raw, _INT64 if name in _DATES else _INT32)
            if numbers[name] is None:
                return jax_rs_not_found(
                    "Unable to extract parameter from http request: "
                    f"javax.ws.rs.QueryParam(\"{name}\") value is '{raw}'"
                )
        for name in ("campaignId", "limit", "offset") if not tenant else ("limit", "offset"):
            if numbers[name] is None:
                return invalid_input(f"parameter expected in input: {name}")
        limit, offset = numbers["limit"] or 0, numbers["offset"] or 0  # both present here
        for name, value in (("limit", limit), ("offset", offset)):
            if value < 0:
                return invalid_input(f"invalid value in input: {name}")
        info = (req.first("info") or "").lower() == "true"
        if info and not self.options.info_supported:
            return method_not_allowed(())
        dates = {name: numbers[name] for name in _DATES}
        to_added = dates["toDateAdded"]
        if to_added is not None and not self.options.to_date_added_inclusive:
            dates["toDateAdded"] = to_added - 1  # before that millisecond, not at it
        where = wire_filter(None if tenant else numbers["campaignId"], req.every("userIds"), dates)
        if where is None:
            return Answer(200, (JSON,), b"[]")
        limit = min(limit, self.options.max_limit)
        order = self.options.order
        if order == "callbackTime" or order == "dateAdded":  # noqa: PLR1714  (narrows for mypy)
            body = self.store.page_json(where, offset, limit, info=info, order=order)
        else:
            rng = random.Random(self._shuffle_rng.getrandbits(64))
            ties, shuffle = (rng, None) if order == "ties" else (None, rng)
            body = self.store.page_json(where, offset, limit, info=info, ties=ties, shuffle=shuffle)
        return Answer(200, (JSON,), body)

    def delete(self, req: Request, *, commit: bool) -> Answer:
        """Delete one callback by the id in the path."""
        callback_id = self.router.callback_id(req.raw_path)
        if callback_id is None:
            return jax_rs_not_found(f"Could not find resource for full path: {req.path}")
        found = self.store.discard(callback_id) if commit else callback_id in self.store
        if not found:
            return callback_not_found(callback_id)
        ok = self.options.delete_ok_body
        return Answer(200, (JSON if ok.startswith('"') else TEXT,), ok.encode())

    def login(self, req: Request, *, commit: bool) -> Answer:
        """Either login shape: a new session for known credentials, else 401."""
        try:
            payload = json.loads(req.body) if req.body.strip() else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return invalid_input("a JSON object is expected in input")
        for name in ("userId", "token"):
            if not isinstance(payload.get(name), str):
                return invalid_input(f"parameter expected in input: {name}")
        user_id, token, domain = payload["userId"], payload["token"], payload.get("domain")
        if not self.sessions.accepts(user_id, token, domain):
            return invalid_token()
        # A faulted login opens no session: it answers with one that will never work.
        session = self.sessions.login() if commit else NO_SESSION
        if req.flat_login:
            answer: dict[str, object] = {"sessionId": session, "userId": user_id}
        else:
            answer = {
                "userSessionInfo": {"sessionId": session, "userId": user_id, "domain": domain},
                "forceLogin": payload.get("forceLogin", False),
            }
        if self.options.secure_mode:
            jwt = self.sessions.issue_jwt(session, user_id) if commit else NO_JWT
            answer["authenticationState"] = {
                "authPolicyVsUserInfo": {"auth.type.passwd": {"loginProperties": self._jwt(jwt)}}
            }
        return json_answer(200, answer)

    def _jwt(self, jwt: str) -> dict[str, str]:
        """``loginProperties``' JWT and its lifetime (a string of milliseconds, as seen)."""
        properties = {"jwt": jwt}
        ttl = self.sessions.jwt_ttl
        if ttl is not None:
            properties["jwtTokenExpiryMs"] = str(round(ttl * 1000))
        return properties

    def refresh(self, req: Request, *, commit: bool) -> Answer:
        """A new JWT for a valid session (``{"userId"}`` -> ``{"jwtToken"}``), else 401."""
        session = req.session
        if session is None or self.sessions.state(session, touch=True) != "valid":
            return invalid_token()
        if self.options.refuse_refresh:
            return invalid_token()
        try:
            payload = json.loads(req.body) if req.body.strip() else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("userId"), str):
            return invalid_input("parameter expected in input: userId")
        jwt = self.sessions.refreshed(session, payload["userId"]) if commit else NO_JWT
        return json_answer(200, {"jwtToken": jwt})
