"""Routing: which endpoint a request is for, from its method and raw path.

Routes (all under ``/ameyorestapi``)::

    POST|GET  /voice/customerCallbacks/getFiltered              a campaign's callbacks
    POST|GET  /voice/customerCallbacks/getTenantUserCallbacks   the tenant's callbacks
    DELETE    /voice/customerCallbacks/<percent-encoded id>     delete one callback
    POST      /userLogin/login                                  {"userSessionInfo": {"sessionId"}}
    POST      /session/userLogin                                {"sessionId"} (Exotel's shape)
    POST      /session/refreshToken                             {"jwtToken"} (secure mode)

The tenant list's place follows :func:`ameyo_callbacks._protocol.tenant_list_path`,
the rule the client uses too.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import attrs

from .._protocol import (
    CALLBACKS_PREFIX,
    CAMPAIGN_LIST_PATH,
    DEFAULT_LOGIN_PATH,
    DEFAULT_REFRESH_PATH,
    tenant_list_path,
)
from ._faults import Endpoint

__all__ = ["FLAT_LOGIN_PATH", "Request", "Router"]

FLAT_LOGIN_PATH = "/ameyorestapi/session/userLogin"

_PREFIX = CALLBACKS_PREFIX.encode() + b"/"
_LOGINS = (DEFAULT_LOGIN_PATH.encode(), FLAT_LOGIN_PATH.encode())
_REFRESH = DEFAULT_REFRESH_PATH.encode()


@attrs.frozen
class Request:
    """One request as the handlers see it (session, JWT and body kept out of the repr)."""

    method: str
    raw_path: bytes
    path: str
    query: tuple[tuple[str, str], ...]
    session: str | None = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    jwt: str | None = attrs.field(default=None, repr=False)

    def first(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def every(self, name: str) -> list[str]:
        """Every value of a query parameter, in order."""
        return [v for k, v in self.query if k == name]

    @property
    def flat_login(self) -> bool:
        """True for Exotel's ``/session/userLogin`` (it answers a flat ``sessionId``)."""
        return self.raw_path == FLAT_LOGIN_PATH.encode()


class Router:
    """Maps (method, raw path) to an endpoint; the tenant list's place is fixed here."""

    def __init__(self, tenant_path: str) -> None:
        self.tenant_path = tenant_path
        self._list = CAMPAIGN_LIST_PATH.encode()
        self._tenant = tenant_list_path(tenant_path).encode()

    def route(self, method: str, raw_path: bytes) -> Endpoint | None:
        """The endpoint, or None (a 404). Any method reaches its endpoint, which may 405."""
        if raw_path in _LOGINS:
            return "login"
        if raw_path == _REFRESH:
            return "refresh"
        if method != "DELETE":
            if raw_path == self._list:
                return "list"
            if raw_path == self._tenant:
                return "tenant"
        segment = raw_path[len(_PREFIX) :]
        if raw_path.startswith(_PREFIX) and segment and b"/" not in segment:
            return "delete"
        return None

    @staticmethod
    def callback_id(raw_path: bytes) -> str | None:
        """The id of a delete path, percent-decoded exactly once ("%252F" is "%2F"); None
        when the bytes are not UTF-8."""
        try:
            return unquote_to_bytes(raw_path[len(_PREFIX) :]).decode("utf-8")
        except UnicodeDecodeError:
            return None
