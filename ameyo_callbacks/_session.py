"""Session providers: where ``sessionId`` (and a JWT) come from, and how they are renewed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import attrs

from ._checks import check_bool
from ._protocol import (
    DEFAULT_LOGIN_PATH,
    DEFAULT_REFRESH_PATH,
    JWT_REFUSED_KEY,
    LoginAnswer,
    RequestSpec,
    build_login_request,
    build_refresh_request,
    session_headers,
)
from .exceptions import (
    APIError,
    AuthenticationError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)

__all__ = [
    "Credentials",
    "LoginFn",
    "LoginSession",
    "RefreshFn",
    "SessionCalls",
    "SessionProvider",
    "StaticSession",
    "check_session_id",
]

logger = logging.getLogger("ameyo_callbacks")


@attrs.frozen(repr=False)
class Credentials:
    """What one call carries: the session id, and the session's JWT on a JWT server."""

    session_id: str
    jwt: str | None = None

    def headers(self) -> dict[str, str]:
        """``sessionId``, and ``Authorization: <jwt>`` when there is a JWT."""
        return session_headers(self.session_id, self.jwt)

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"


#: Sends a login request (without session headers) and returns what it gave.
LoginFn = Callable[[RequestSpec], Awaitable[LoginAnswer]]
#: Sends a JWT renewal with a session's headers and returns the new JWT.
RefreshFn = Callable[[RequestSpec, Credentials], Awaitable[str]]


@attrs.frozen
class SessionCalls:
    """The two calls a provider may make, given by the client (retries included)."""

    login: LoginFn
    refresh_jwt: RefreshFn


def check_session_id(session_id: object, name: str = "session_id") -> str:
    """A session id (or a JWT: ``name``) fit for a header: printable ASCII, no surrounding blanks.

    The message never quotes the value: it is a secret.
    """
    if not isinstance(session_id, str):
        what = "(or a SessionProvider)" if name == "session_id" else "or None"
        msg = f"{name} must be a string {what}, got {type(session_id).__name__}"
        raise TypeError(msg)
    if not session_id.strip():
        msg = f"{name} must be a non-empty string"
        raise ValueError(msg)
    if session_id != session_id.strip() or not (session_id.isascii() and session_id.isprintable()):
        msg = (
            f"{name} has surrounding blanks, a line break or non-ASCII characters "
            "(read from a file? strip it)"
        )
        raise ValueError(msg)
    return session_id


def _check_path(name: str, path: object) -> str:
    if not isinstance(path, str):
        msg = f"{name} must be a path string, got {type(path).__name__}"
        raise TypeError(msg)
    if not path.startswith("/"):
        msg = f"{name} must start with '/', got {path!r}"
        raise ValueError(msg)
    return path


def jwt_refused(error: AuthenticationError) -> bool:
    """Whether ``error`` is a JWT server's 401 ``invalid.authentication.token``."""
    return error.status_code == 401 and error.key == JWT_REFUSED_KEY


class SessionProvider:
    """Base of the session providers.

    ``credentials()`` gives what to send now (a :class:`Credentials`: the
    session id, and a JWT on servers that hand one out); ``renew(stale,
    refused)`` is called once when the server refused ``stale`` with
    ``refused`` (an :class:`AuthenticationError`), and returns new
    credentials, or None when this provider cannot renew (the caller then
    raises ``refused``). Both may make the calls of :class:`SessionCalls`.
    ``secrets()`` lists the strings to keep out of logs and exception texts.
    """

    __slots__ = ()

    async def credentials(self, calls: SessionCalls) -> Credentials:
        """The session id (and JWT) to send now."""
        raise NotImplementedError

    async def renew(
        self, stale: Credentials, refused: AuthenticationError, calls: SessionCalls
    ) -> Credentials | None:
        """New credentials after ``stale`` was refused, or None if there are none to get."""
        raise NotImplementedError

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider holds or has handed out."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class StaticSession(SessionProvider):
    """A fixed session id, as Ameyo's services team hands out, and its JWT if the server wants one.

    ``jwt`` is sent as a raw ``Authorization`` header beside ``sessionId``.
    Neither can be renewed: a refusal raises ``AuthenticationError``.
    """

    __slots__ = ("_credentials",)

    def __init__(self, session_id: str, *, jwt: str | None = None) -> None:
        check_session_id(session_id)
        if jwt is not None:
            check_session_id(jwt, "jwt")
        self._credentials = Credentials(session_id, jwt)

    async def credentials(self, calls: SessionCalls) -> Credentials:
        """The fixed id (and JWT)."""
        return self._credentials

    async def renew(
        self, stale: Credentials, refused: AuthenticationError, calls: SessionCalls
    ) -> Credentials | None:
        """A fixed session cannot be renewed: always None."""
        return None

    def secrets(self) -> tuple[str, ...]:
        """The session id and the JWT."""
        jwt = self._credentials.jwt
        return (self._credentials.session_id, *(() if jwt is None else (jwt,)))


class LoginSession(SessionProvider):
    """Logs in with a user id and token (WIRE_NOTES' login call), and again on expiry.

    The first request logs in; when the server later answers that the session
    is invalid, the client calls :meth:`renew` and repeats the request once.
    A JWT server's login answer also holds a JWT: it goes on every call as
    ``Authorization``; when the server refuses it (401
    ``invalid.authentication.token``) it is renewed at ``refresh_path``
    (``{"userId"}`` answered ``{"jwtToken"}``), and when that renewal is
    refused, the session logs in again. Renewals are single-flight: fifty
    requests that all see the same expired session or JWT cause one login
    (or one JWT renewal), and all fifty then use what it gave.
    """

    __slots__ = (
        "_current",
        "_domain",
        "_failure",
        "_force_login",
        "_lock",
        "_login_path",
        "_refresh_path",
        "_renewals",
        "_seen",
        "_token",
        "_user_id",
    )

    def __init__(
        self,
        user_id: str,
        token: str,
        *,
        domain: str | None = None,
        login_path: str = DEFAULT_LOGIN_PATH,
        refresh_path: str = DEFAULT_REFRESH_PATH,
        force_login: bool = False,
    ) -> None:
        for name, value in (("user_id", user_id), ("token", token)):
            if not isinstance(value, str):
                msg = f"{name} must be a string, got {type(value).__name__}"
                raise TypeError(msg)
            if not value.strip():
                msg = f"{name} must be a non-empty string"
                raise ValueError(msg)
        if domain is not None and not isinstance(domain, str):
            msg = f"domain must be a string or None, got {type(domain).__name__}"
            raise TypeError(msg)
        check_bool("force_login", force_login)
        self._user_id = user_id
        self._token = token
        self._domain = domain
        self._login_path = _check_path("login_path", login_path)
        self._refresh_path = _check_path("refresh_path", refresh_path)
        self._force_login = force_login
        self._current: Credentials | None = None
        self._lock: anyio.Lock | None = None
        self._seen: list[str] = []
        self._renewals = 0  # logins and JWT renewals finished, failed or not
        self._failure: Exception | None = None

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _remember(self, *secrets: str | None) -> None:
        """Keep the newest few secrets handed out; one handed out again moves to the end."""
        for secret in secrets:
            if secret is not None:
                if secret in self._seen:
                    self._seen.remove(secret)
                self._seen.append(secret)
        del self._seen[:-8]  # the last few, for scrubbing answers to in-flight requests

    async def _renew(
        self, calls: SessionCalls, stale: Credentials | None, renewals_seen: int, *, jwt_only: bool
    ) -> Credentials:
        """Log in, or first renew the JWT when only it was refused, holding the lock.

        A failure is shared with whoever waited for the lock meanwhile.
        """
        if self._renewals != renewals_seen and self._failure is not None:
            # A renewal finished while we waited for the lock, and failed:
            # fifty waiters must not make fifty more attempts in a row.
            raise self._failure
        try:
            if jwt_only and stale is not None and stale.jwt is not None:
                renewed = await self._refresh_jwt(calls, stale)
                if renewed is not None:
                    return self._done(renewed)
            answer = await calls.login(
                build_login_request(
                    path=self._login_path,
                    user_id=self._user_id,
                    token=self._token,
                    domain=self._domain,
                    force_login=self._force_login,
                )
            )
        except Exception as exc:
            self._renewals += 1
            self._failure = exc
            raise
        return self._done(Credentials(answer.session_id, answer.jwt))

    def _done(self, current: Credentials) -> Credentials:
        self._renewals += 1
        self._failure = None
        self._current = current
        self._remember(current.session_id, current.jwt)
        return current

    async def _refresh_jwt(self, calls: SessionCalls, stale: Credentials) -> Credentials | None:
        """A new JWT for ``stale``'s session, or None when the server refused to give one."""
        spec = build_refresh_request(path=self._refresh_path, user_id=self._user_id)
        try:
            jwt = await calls.refresh_jwt(spec, stale)
        except (ServerError, RateLimitedError):
            raise  # the server is unwell, not refusing: logging in would not help
        except (APIError, ResponseFormatError) as exc:
            logger.info("the JWT renewal was refused (%s); logging in again", type(exc).__name__)
            return None
        return Credentials(stale.session_id, jwt)

    async def credentials(self, calls: SessionCalls) -> Credentials:
        """The current session (and JWT), logging in first if there is none yet."""
        current = self._current
        if current is not None:
            return current
        renewals_seen = self._renewals
        async with self._get_lock():
            if self._current is not None:
                return self._current
            return await self._renew(calls, None, renewals_seen, jwt_only=False)

    async def renew(
        self, stale: Credentials, refused: AuthenticationError, calls: SessionCalls
    ) -> Credentials | None:
        """Renew the JWT (when that is what was refused) or log in again.

        Nothing is sent when another request already replaced ``stale``.
        """
        renewals_seen = self._renewals
        async with self._get_lock():
            if self._current is not None and self._current != stale:
                return self._current
            return await self._renew(calls, stale, renewals_seen, jwt_only=jwt_refused(refused))

    def secrets(self) -> tuple[str, ...]:
        """The token, the credentials in use, and the session ids and JWTs handed out lately."""
        current = self._current
        in_use = () if current is None else (current.session_id, current.jwt)
        return (self._token, *(s for s in in_use if s is not None), *self._seen)
