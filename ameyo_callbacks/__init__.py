"""Asyncio client for the Ameyo CallBack REST APIs.

``AmeyoCallbacksClient`` lists callbacks (one page, or every page with
prefetch), deletes them one by one or in bulk, retries politely, and renews
sessions. ``ameyo_callbacks.testing`` holds a fake Ameyo server to test
against. The error tree is drawn in ``ameyo_callbacks.exceptions``.
"""

# First, before anything imports httpx: httpx without its command line (see there).
from . import _httpx_import  # noqa: F401

# isort: split
import logging

import httpx

from ._bulk import BulkDeleteResult, BulkProgress, BulkTally
from ._client import DEFAULT_TIMEOUT, AmeyoCallbacksClient, HttpBackend
from ._convert import make_converter
from ._filters import CallbackFilter, DateBound
from ._models import CustomerCallback, Page
from ._paging import CallbackIterator
from ._retry import AnyioClock, BackoffGate, Clock, RetryPolicy
from ._session import LoginSession, SessionProvider, StaticSession
from ._version import __version__
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
    "SessionProvider",
    "StaticSession",
    "TLSError",
    "TransportError",
    "__version__",
    "make_converter",
]


def _publish() -> None:
    """Show every public name at its public path (httpx does this): reprs, tracebacks, docs."""
    for name in __all__:
        value = globals()[name]
        if not isinstance(value, (str, httpx.Timeout)):
            value.__module__ = __name__


_publish()
# A library logs, the application decides where to: without its own logging
# set up, our retry warnings are not printed (the stdlib's "last resort").
logging.getLogger(__name__).addHandler(logging.NullHandler())
