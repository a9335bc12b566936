"""The exceptions raised by ``ameyo_callbacks``.

Every error the library raises for a server, a transport or a response is an
:class:`AmeyoError`; argument mistakes are plain :class:`ValueError` or
:class:`TypeError`, raised before any request is sent::

    AmeyoError                      one root: ``except AmeyoError`` catches them all
    ├── TransportError              no usable HTTP answer (``kind`` says which, ``cause`` why)
    │   ├── ConnectionFailedError   no connection made, nothing sent: refused, connect timeout
    │   ├── TLSError                TLS failed or on one side only: certificate, hostname, scheme
    │   ├── AnswerTimeoutError      no whole answer in time: read timeout, attempt or call deadline
    │   ├── ConnectionLostError     the connection dropped after sending, or the answer is not HTTP
    │   └── ResponseTooLargeError   the answer is larger than ``max_response_bytes``
    ├── APIError                    the server answered with an error status
    │   ├── AuthenticationError     401, or 403 with ``invalid.session.id``
    │   ├── CallbackNotFoundError   key ``CallBackManager.invalid.campcust.callback.id``
    │   ├── RateLimitedError        429 (``retry_after`` in seconds, or None)
    │   └── ServerError             5xx other than Ameyo's generic 512
    ├── ResponseFormatError         a 2xx body that is not what the call returns
    ├── ConsistencyError            a walk met what no strategy can page through (see its reasons)
    └── IncompleteDeleteError       a bulk delete whose outcome is unknown or not carried out

Every exception carries structured attributes (``method``, ``path``, and for
API errors ``status_code``, ``error_code``, ``key``, ``key_args``, ``message``)
so callers never have to parse the text. ``attempts`` says how many times the
request was sent before the error was given up on.

Every ``TransportError`` has a ``kind`` (the same on every HTTP backend; the
errors page of the documentation lists them, from the one table that the
classifiers and the retry decision read) and ``request_sent``: False when the failure
came before the request left (nothing can have been done on the server).

Every exception pickles with its attributes (``cause`` included when it
pickles itself), so errors cross process boundaries (multiprocessing, task
queues).

No exception text ever contains the session id or a login token: the request
headers are never rendered, and response snippets are scrubbed of known
secrets before they are stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._kinds import Kind

__all__ = [
    "APIError",
    "AmeyoError",
    "AnswerTimeoutError",
    "AuthenticationError",
    "CallbackNotFoundError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConsistencyError",
    "IncompleteDeleteError",
    "RateLimitedError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "ServerError",
    "TLSError",
    "TransportError",
]


def _rebuild(cls: type[AmeyoError], args: tuple[Any, ...]) -> AmeyoError:
    """Unpickle an error: an instance with ``args``; pickle then restores its attributes."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


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

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default rebuilds with cls(*args), which our keyword-only
        # attributes cannot survive: rebuild bare, then restore every attribute.
        return (_rebuild, (type(self), self.args), dict(vars(self)))

    def __str__(self) -> str:
        text = super().__str__()
        if self.attempts > 1:
            return f"{text} (after {self.attempts} attempts)"
        return text


class TransportError(AmeyoError):
    """No usable HTTP answer: the connection failed, dropped, timed out, or the answer was unfit.

    ``kind`` says what happened, the same on every HTTP backend (a
    ``Literal``, listed with what to check on the documentation's errors
    page); the subclasses group the kinds. The exception the HTTP
    stack raised is kept in ``cause`` (and ``__cause__``). ``request_sent``
    is False when the failure came before the request left, so the server
    cannot have acted on it.
    """

    _DEFAULT_KIND: ClassVar[Kind] = "other"
    _NOT_SENT: ClassVar[bool] = False

    cause: Exception | None
    kind: Kind
    request_sent: bool

    def __init__(
        self,
        text: str,
        *,
        method: str | None = None,
        path: str | None = None,
        cause: Exception | None = None,
        kind: Kind | None = None,
        request_sent: bool | None = None,
    ) -> None:
        super().__init__(text, method=method, path=path)
        self.cause = cause
        self.kind = self._DEFAULT_KIND if kind is None else kind
        self.request_sent = not self._NOT_SENT if request_sent is None else request_sent

    @property
    def is_timeout(self) -> bool:
        """True when a timeout or deadline ran out (connect, pool, read, write, attempt, call)."""
        from ._kinds import KINDS  # noqa: PLC0415  (the table names the classes defined here)

        return KINDS[self.kind].timeout


class ConnectionFailedError(TransportError):
    """No connection was made, so nothing was sent.

    Kinds: ``connection_refused`` (nothing listens at that host and port),
    ``connect_timeout``, ``name_not_resolved``, ``connect_error`` (another
    reason: network unreachable, ...), ``proxy_error``, ``pool_timeout`` (no
    free connection of the client's pool in time).
    """

    _DEFAULT_KIND: ClassVar[Kind] = "connect_error"
    _NOT_SENT: ClassVar[bool] = True


class TLSError(TransportError):
    """The TLS handshake failed, so nothing was sent.

    Kinds: ``tls_certificate`` (not trusted, expired), ``tls_hostname`` (the
    certificate is for another name), ``tls_protocol`` (no version and
    cipher in common, or no TLS at that port), and the scheme mismatches:
    ``https_expected`` (``http://`` to a port that speaks TLS) and
    ``http_expected`` (``https://`` to a plain-HTTP port). Not retried: the
    next attempt would fail the same way.
    """

    _DEFAULT_KIND: ClassVar[Kind] = "tls_certificate"
    _NOT_SENT: ClassVar[bool] = True


class AnswerTimeoutError(TransportError):
    """The whole answer did not arrive in time.

    Kinds: ``read_timeout`` (no byte for the read timeout), ``write_timeout``,
    ``attempt_deadline`` (the answer took longer than
    ``RetryPolicy.attempt_timeout``: status line, headers and body),
    ``call_deadline`` (the call's budget, ``RetryPolicy.timeout``, ran out).
    ``seconds`` is the deadline that ran out, when one did.
    """

    _DEFAULT_KIND: ClassVar[Kind] = "read_timeout"

    seconds: float | None

    def __init__(self, text: str, *, seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.seconds = seconds


class ConnectionLostError(TransportError):
    """The connection dropped after the request was sent, or the answer was not HTTP.

    Kinds: ``connection_lost`` (closed or reset before the whole answer
    arrived: the server may have acted), ``protocol_error`` (what came back is
    not an HTTP answer).
    """

    _DEFAULT_KIND: ClassVar[Kind] = "connection_lost"


class ResponseTooLargeError(TransportError):
    """The answer is larger than the client's ``max_response_bytes`` (``limit``).

    The body is not read past the limit, so memory stays bounded. Not retried.
    """

    _DEFAULT_KIND: ClassVar[Kind] = "too_large"

    limit: int | None

    def __init__(self, text: str, *, limit: int | None = None, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.limit = limit


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


class ConsistencyError(AmeyoError):
    """A walk met what no strategy can page through: it stopped rather than skip callbacks.

    Raised by ``iter_callbacks`` (and what uses it) when more than a page of
    callbacks were added in one millisecond and the server lists them in a
    new order on every answer (``reason="ties_unstable"``); when an ordered
    walk that already trusted the server's ``dateAdded`` order (4,096
    callbacks in it) meets a page out of that order (``"order_changed"``);
    or when ``start_offset`` is given to a server that does not list by
    ``dateAdded`` (``"unordered_offset"``, raised in either mode); or when
    the server lists callbacks outside the ``fromDateAdded``/``toDateAdded``
    it was asked for (``"date_filter_ignored"``, either mode: no window
    can be walked on it). ``offset`` is the page's offset.
    ``iter_callbacks(..., on_inconsistency="warn")`` warns once instead of
    the first two and walks on past them.
    """

    offset: int | None
    reason: str

    def __init__(self, text: str, *, offset: int | None = None, reason: str = "") -> None:
        super().__init__(text)
        self.offset = offset
        self.reason = reason


class IncompleteDeleteError(AmeyoError):
    """A bulk delete whose outcome is unknown, or that the server did not carry out.

    Never raised at the caller: it is the error recorded in
    ``BulkDeleteResult.failed`` for an id whose request was cancelled in
    flight (deleting it again is safe), an input that is not a callback id,
    or an id the server confirmed deleted but still lists.
    """
