"""Asyncio client for the Ameyo CallBack REST APIs.

``AmeyoCallbacksClient`` lists callbacks (one page, or every page with
prefetch), deletes them one by one or in bulk, retries politely, and renews
sessions. ``ameyo_callbacks.testing`` holds a fake Ameyo server to test
against. The error tree is drawn in ``ameyo_callbacks.exceptions``.
"""

import importlib as _importlib
import logging as _logging
import typing as _typing

from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._bulk import BulkDeleteResult, BulkProgress, BulkTally
    from ._client import DEFAULT_TIMEOUT, AmeyoCallbacksClient, HttpBackend
    from ._convert import make_converter
    from ._filters import CallbackFilter, DateBound
    from ._models import CustomerCallback, Page
    from ._paging import CallbackIterator
    from ._retry import AnyioClock, BackoffGate, Clock, RetryPolicy
    from ._session import Credentials, LoginSession, SessionCalls, SessionProvider, StaticSession
    from .exceptions import (
        AmeyoError,
        AnswerTimeoutError,
        APIError,
        AuthenticationError,
        CallbackNotFoundError,
        ConnectionFailedError,
        ConnectionLostError,
        ConsistencyError,
        IncompleteDeleteError,
        RateLimitedError,
        ResponseFormatError,
        ResponseTooLargeError,
        ServerError,
        TLSError,
        TransportError,
    )

__all__ = [
    "DEFAULT_TIMEOUT",
    "APIError",
    "AmeyoCallbacksClient",
    "AmeyoError",
    "AnswerTimeoutError",
    "AnyioClock",
    "AuthenticationError",
    "BackoffGate",
    "BulkDeleteResult",
    "BulkProgress",
    "BulkTally",
    "CallbackFilter",
    "CallbackIterator",
    "CallbackNotFoundError",
    "Clock",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConsistencyError",
    "Credentials",
    "CustomerCallback",
    "DateBound",
    "HttpBackend",
    "IncompleteDeleteError",
    "LoginSession",
    "Page",
    "RateLimitedError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "SessionCalls",
    "SessionProvider",
    "StaticSession",
    "TLSError",
    "TransportError",
    "__version__",
    "make_converter",
]


# Where each public name lives. Importing the package loads none of them (style
# habit 15: `import ameyo_callbacks` costs nothing until a name is used); the
# first use imports every module, and with them httpx. aiohttp is imported only
# by a client built with http_backend="aiohttp".
_HOME = {
    "BulkDeleteResult": "._bulk",
    "BulkProgress": "._bulk",
    "BulkTally": "._bulk",
    "DEFAULT_TIMEOUT": "._client",
    "AmeyoCallbacksClient": "._client",
    "HttpBackend": "._client",
    "make_converter": "._convert",
    "CallbackFilter": "._filters",
    "DateBound": "._filters",
    "CustomerCallback": "._models",
    "Page": "._models",
    "CallbackIterator": "._paging",
    "AnyioClock": "._retry",
    "BackoffGate": "._retry",
    "Clock": "._retry",
    "RetryPolicy": "._retry",
    "Credentials": "._session",
    "LoginSession": "._session",
    "SessionCalls": "._session",
    "SessionProvider": "._session",
    "StaticSession": "._session",
    **{name: ".exceptions" for name in __all__ if name.endswith("Error")},
}


def __getattr__(name: str) -> _typing.Any:
    if name not in _HOME:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    _load()
    return globals()[name]


def _load() -> None:
    """Import every public name at once, and show each at its public path (httpx does
    this: reprs, tracebacks and docs say ``ameyo_callbacks.X``)."""
    for name, home in _HOME.items():
        value = getattr(_importlib.import_module(home, __name__), name)
        if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
            value.__module__ = __name__  # classes, functions and aliases; never a value
        globals()[name] = value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# A library logs, the application decides where to: without its own logging
# set up, our retry warnings are not printed (the stdlib's "last resort").
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
