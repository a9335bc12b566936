"""Session providers: where the ``sessionId`` header comes from, and how it is renewed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from ._checks import check_bool
from ._protocol import DEFAULT_LOGIN_PATH, RequestSpec, build_login_request

__all__ = ["LoginFn", "LoginSession", "SessionProvider", "StaticSession", "check_session_id"]

#: Sends a login request (without a session header) and returns the new session id.
LoginFn = Callable[[RequestSpec], Awaitable[str]]


def check_session_id(session_id: object) -> str:
    """A session id fit for a header: printable ASCII, no surrounding blanks.

    The message never quotes the value: it is a secret.
    """
    if not isinstance(session_id, str):
        msg = f"session_id must be a string (or a SessionProvider), got {type(session_id).__name__}"
        raise TypeError(msg)
    if not session_id.strip():
        msg = "session_id must be a non-empty string"
        raise ValueError(msg)
    if session_id != session_id.strip() or not (session_id.isascii() and session_id.isprintable()):
        msg = (
            "session_id has surrounding blanks, a line break or non-ASCII characters "
            "(read from a file? strip it)"
        )
        raise ValueError(msg)
    return session_id


class SessionProvider:
    """Base of the session providers.

    ``session_id()`` gives the id to send; ``refresh(stale)`` is called once
    when the server said that id is invalid, and returns a new one, or None
    when this provider cannot renew (the caller then raises
    ``AuthenticationError``). ``secrets()`` lists the strings to keep out of
    logs and exception texts.
    """

    __slots__ = ()

    async def session_id(self, login: LoginFn) -> str:
        """The session id to send now."""
        raise NotImplementedError

    async def refresh(self, stale: str, login: LoginFn) -> str | None:
        """A new session id after ``stale`` was refused, or None if there is none to get."""
        raise NotImplementedError

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider holds or has handed out."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class StaticSession(SessionProvider):
    """A fixed session id, as Ameyo's services team hands out. It cannot be renewed."""

    __slots__ = ("_session_id",)

    def __init__(self, session_id: str) -> None:
        check_session_id(session_id)
        self._session_id = session_id

    async def session_id(self, login: LoginFn) -> str:
        """The fixed id."""
        return self._session_id

    async def refresh(self, stale: str, login: LoginFn) -> str | None:
        """A fixed session cannot be renewed: always None."""
        return None

    def secrets(self) -> tuple[str, ...]:
        """The session id."""
        return (self._session_id,)


class LoginSession(SessionProvider):
    """Logs in with a user id and token (WIRE_NOTES' login call), and again on expiry.

    The first request logs in; when the server later answers that the session
    is invalid, the client calls :meth:`refresh` and repeats the request once.
    Refreshes are single-flight: fifty requests that all see the same expired
    session cause one login, and all fifty then use its session.
    """

    __slots__ = (
        "_current",
        "_domain",
        "_failure",
        "_force_login",
        "_lock",
        "_login_path",
        "_logins",
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
        if not isinstance(login_path, str):
            msg = f"login_path must be a path string, got {type(login_path).__name__}"
            raise TypeError(msg)
        if not login_path.startswith("/"):
            msg = f"login_path must start with '/', got {login_path!r}"
            raise ValueError(msg)
        check_bool("force_login", force_login)
        self._user_id = user_id
        self._token = token
        self._domain = domain
        self._login_path = login_path
        self._force_login = force_login
        self._current: str | None = None
        self._lock: anyio.Lock | None = None
        self._seen: list[str] = []
        self._logins = 0  # login attempts finished, failed or not
        self._failure: Exception | None = None

    def _spec(self) -> RequestSpec:
        return build_login_request(
            path=self._login_path,
            user_id=self._user_id,
            token=self._token,
            domain=self._domain,
            force_login=self._force_login,
        )

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def _login(self, login: LoginFn, logins_seen: int) -> str:
        """Log in, holding the lock; share the outcome with whoever waited meanwhile."""
        if self._logins != logins_seen and self._failure is not None:
            # A login finished while we waited for the lock, and failed:
            # fifty waiters must not make fifty more attempts in a row.
            raise self._failure
        try:
            session_id = await login(self._spec())
        except Exception as exc:
            self._logins += 1
            self._failure = exc
            raise
        self._logins += 1
        self._failure = None
        self._current = session_id
        self._seen.append(session_id)
        del self._seen[:-4]  # the last few, for scrubbing answers to in-flight requests
        return session_id

    async def session_id(self, login: LoginFn) -> str:
        """The current session, logging in first if there is none yet."""
        current = self._current
        if current is not None:
            return current
        logins_seen = self._logins
        async with self._get_lock():
            if self._current is not None:
                return self._current
            return await self._login(login, logins_seen)

    async def refresh(self, stale: str, login: LoginFn) -> str | None:
        """Log in again, unless another request already replaced ``stale``."""
        logins_seen = self._logins
        async with self._get_lock():
            if self._current is not None and self._current != stale:
                return self._current
            return await self._login(login, logins_seen)

    def secrets(self) -> tuple[str, ...]:
        """The token and the session ids handed out lately."""
        return (self._token, *self._seen)
