"""The exceptions raised by ``ameyo_callbacks``.

Every error the library raises for a server, a transport or a response is an
:class:`AmeyoError`; argument mistakes are plain :class:`ValueError` or
:class:`TypeError`, raised before any request is sent::

    AmeyoError                      one root: ``except AmeyoError`` catches them all
    ├── TransportError              no usable HTTP answer: connect, read, write, timeout
    ├── APIError                    the server answered with an error status
    │   ├── AuthenticationError     401, or 403 with ``invalid.session.id``
    │   ├── CallbackNotFoundError   key ``CallBackManager.invalid.campcust.callback.id``
    │   ├── RateLimitedError        429 (``retry_after`` in seconds, or None)
    │   └── ServerError             5xx other than Ameyo's generic 512
    ├── ResponseFormatError         a 2xx body that is not what the call returns
    └── IncompleteDeleteError       a bulk delete whose outcome is unknown or not carried out

Every exception carries structured attributes (``method``, ``path``, and for
API errors ``status_code``, ``error_code``, ``key``, ``key_args``, ``message``)
so callers never have to parse the text. ``attempts`` says how many times the
request was sent before the error was given up on.

No exception text ever contains the session id or a login token: the request
headers are never rendered, and response snippets are scrubbed of known
secrets before they are stored.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AmeyoError",
    "AuthenticationError",
    "CallbackNotFoundError",
    "IncompleteDeleteError",
    "RateLimitedError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
]


class AmeyoError(Exception):
    """Root of every error raised for a request, a response or the transport."""

    method: str | None
    path: str | None
    attempts: int

    def __init__(self, text: str, *, method: str | None = None, path: str | None = None) -> None:
        super().__init__(text)
        self.method = method
        self.path = path
        self.attempts = 1

    def __str__(self) -> str:
        text = super().__str__()
        if self.attempts > 1:
            return f"{text} (after {self.attempts} attempts)"
        return text


class TransportError(AmeyoError):
    """No usable HTTP answer: the connection failed, dropped, or timed out.

    The underlying ``httpx`` exception is kept in ``cause`` (and ``__cause__``).
    """

    cause: Exception | None

    def __init__(
        self,
        text: str,
        *,
        method: str | None = None,
        path: str | None = None,
        cause: Exception | None = None,
    ) -> None:
        super().__init__(text, method=method, path=path)
        self.cause = cause

    @property
    def is_timeout(self) -> bool:
        """True when the transport gave up waiting (connect, read, write or pool)."""
        import httpx  # noqa: PLC0415  (keep this module importable without side effects)

        return isinstance(self.cause, httpx.TimeoutException)


class APIError(AmeyoError):
    """The server answered with an error status.

    Attributes mirror Ameyo's error envelope (``{"message", "info", "status",
    "errorCode"}``): ``error_code`` is ``errorCode`` or ``code``; ``key`` and
    ``key_args`` are decoded from the JSON-array string Ameyo puts in
    ``message`` or ``info`` (``'["CallBackManager.invalid.campcust.callback.id",
    "d810-..."]'``); ``message`` is the envelope's human text, raw.
    ``from_envelope`` is False when the body was not an Ameyo envelope (an
    HTML fault page from a proxy, an empty body); ``snippet`` is the start of
    that body, capped and scrubbed of secrets.
    """

    status_code: int
    error_code: int | None
    key: str | None
    key_args: tuple[str, ...]
    message: str | None
    from_envelope: bool
    snippet: str
    retry_after: float | None

    def __init__(
        self,
        text: str,
        *,
        status_code: int,
        method: str | None = None,
        path: str | None = None,
        error_code: int | None = None,
        key: str | None = None,
        key_args: tuple[str, ...] = (),
        message: str | None = None,
        from_envelope: bool = False,
        snippet: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(text, method=method, path=path)
        self.status_code = status_code
        self.error_code = error_code
        self.key = key
        self.key_args = key_args
        self.message = message
        self.from_envelope = from_envelope
        self.snippet = snippet
        self.retry_after = retry_after


class AuthenticationError(APIError):
    """The session is missing, expired or unknown (401, or 403 ``invalid.session.id``).

    A fixed session id cannot recover from this: log in again (or pass a
    ``LoginSession`` so the client does it for you).
    """


class CallbackNotFoundError(APIError):
    """The callback id does not exist.

    Ameyo answers 512 with the key ``CallBackManager.invalid.campcust.callback.id``.
    """

    callback_id: str | None

    def __init__(self, text: str, *, callback_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.callback_id = callback_id


class RateLimitedError(APIError):
    """429 Too Many Requests; ``retry_after`` is the server's wait in seconds, or None."""


class ServerError(APIError):
    """A 5xx answer other than Ameyo's generic 512 (a fault page, a gateway error)."""


class ResponseFormatError(AmeyoError):
    """A successful status whose body is not what the call returns.

    An HTML page, an empty body, truncated or garbled JSON, an object where a
    list is due, a record missing a field. ``snippet`` holds the start of the
    body (capped, scrubbed of secrets); ``field`` and ``index`` name the
    offending record field when one record did not fit.
    """

    status_code: int | None
    snippet: str
    field: str | None
    index: int | None

    def __init__(
        self,
        text: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status_code: int | None = None,
        snippet: str = "",
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(text, method=method, path=path)
        self.status_code = status_code
        self.snippet = snippet
        self.field = field
        self.index = index


class IncompleteDeleteError(AmeyoError):
    """A bulk delete whose outcome is unknown, or that the server did not carry out.

    Never raised at the caller: it is the error recorded in
    ``BulkDeleteResult.failed`` for an id whose request was cancelled in
    flight (deleting it again is safe), an input that is not a callback id,
    or an id the server confirmed deleted but still lists.
    """
