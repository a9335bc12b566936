"""Asyncio client for the Ameyo CallBack REST APIs.

``AmeyoCallbacksClient`` lists callbacks (one page, or every page with
prefetch), deletes them one by one or in bulk, retries politely, and renews
sessions. ``ameyo_callbacks.testing`` holds a fake Ameyo server to test
against. The error tree is drawn in ``ameyo_callbacks.exceptions``.
"""

from ._bulk import BulkDeleteResult, BulkProgress, BulkTally
from ._client import DEFAULT_TIMEOUT, AmeyoCallbacksClient
from ._convert import make_converter
from ._models import CustomerCallback, Page
from ._paging import CallbackIterator
from ._retry import BackoffGate, RetryPolicy
from ._session import LoginSession, SessionProvider, StaticSession
from ._version import __version__
from .exceptions import (
    AmeyoError,
    APIError,
    AuthenticationError,
    CallbackNotFoundError,
    IncompleteDeleteError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "APIError",
    "AmeyoCallbacksClient",
    "AmeyoError",
    "AuthenticationError",
    "BackoffGate",
    "BulkDeleteResult",
    "BulkProgress",
    "BulkTally",
    "CallbackIterator",
    "CallbackNotFoundError",
    "CustomerCallback",
    "IncompleteDeleteError",
    "LoginSession",
    "Page",
    "RateLimitedError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "SessionProvider",
    "StaticSession",
    "TransportError",
    "__version__",
    "make_converter",
]
