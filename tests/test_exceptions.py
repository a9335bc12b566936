"""The error tree of ameyo_callbacks.exceptions: shape, text and attributes."""

from __future__ import annotations

import inspect
import re

import httpx
import pytest

from ameyo_callbacks import exceptions
from ameyo_callbacks._kinds import Kind
from ameyo_callbacks.exceptions import (
    AmeyoError,
    APIError,
    AuthenticationError,
    CallbackNotFoundError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

API_ERRORS = [APIError, AuthenticationError, CallbackNotFoundError, RateLimitedError, ServerError]
ALL_ERRORS = [AmeyoError, TransportError, ResponseFormatError, *API_ERRORS]


def _drawn_tree() -> dict[str, str | None]:
    """Each exception name in the docstring's drawing -> the name drawn as its parent."""
    doc = exceptions.__doc__
    assert doc is not None
    drawing = doc.split("::", 1)[1].split("\n\n")[1]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in drawing.splitlines():
        match = re.match(r"^([\s│├└─]*)(\w+Error)\b", line)
        assert match is not None, line
        column, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((column, name))
    return parents


def _make(cls: type[AmeyoError], text: str = "boom") -> AmeyoError:
    if issubclass(cls, APIError):
        return cls(text, status_code=500)
    return cls(text)


def test_docstring_draws_every_public_exception() -> None:
    """The drawing in the module docstring names exactly the exceptions in __all__."""
    assert set(_drawn_tree()) == set(exceptions.__all__)


def test_all_is_sorted_and_lists_every_exception_class() -> None:
    """__all__ is sorted and names every exception class the module defines."""
    defined = {
        name
        for name, obj in vars(exceptions).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ != "builtins"  # defined here (shown as ameyo_callbacks), not imported
    }
    assert exceptions.__all__ == sorted(exceptions.__all__)
    assert set(exceptions.__all__) == defined


@pytest.mark.parametrize(("child", "parent"), sorted(_drawn_tree().items()))
def test_class_hierarchy_matches_the_drawing(child: str, parent: str | None) -> None:
    """Every class's direct base is the class drawn above it (the root's is Exception)."""
    cls = getattr(exceptions, child)
    expected = Exception if parent is None else getattr(exceptions, parent)
    assert cls.__bases__ == (expected,)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (TransportError, AmeyoError),
        (APIError, AmeyoError),
        (ResponseFormatError, AmeyoError),
        (AuthenticationError, APIError),
        (CallbackNotFoundError, APIError),
        (RateLimitedError, APIError),
        (ServerError, APIError),
    ],
)
def test_subclass_relations(child: type[Exception], parent: type[Exception]) -> None:
    """The tree's edges hold as issubclass relations."""
    assert issubclass(child, parent)


@pytest.mark.parametrize(
    ("cls", "not_parent"),
    [
        (ResponseFormatError, APIError),
        (TransportError, APIError),
        (ServerError, RateLimitedError),
        (RateLimitedError, ServerError),
        (CallbackNotFoundError, ServerError),
        (AuthenticationError, CallbackNotFoundError),
    ],
)
def test_branches_are_disjoint(cls: type[Exception], not_parent: type[Exception]) -> None:
    """Siblings do not catch each other: a format error is not an API error, and so on."""
    assert not issubclass(cls, not_parent)


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_except_ameyo_error_catches_every_error(cls: type[AmeyoError]) -> None:
    """One ``except AmeyoError`` catches every exception of the tree."""
    with pytest.raises(AmeyoError):
        raise _make(cls)


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_single_attempt_text_has_no_suffix(cls: type[AmeyoError]) -> None:
    """A request sent once renders its text unchanged, and attempts defaults to 1."""
    error = _make(cls, "GET /x answered HTTP 500")
    assert error.attempts == 1
    assert str(error) == "GET /x answered HTTP 500"


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_attempts_suffix_after_retries(cls: type[AmeyoError]) -> None:
    """After retries the text ends with how many attempts were made."""
    error = _make(cls, "GET /x answered HTTP 500")
    error.attempts = 3
    assert str(error) == "GET /x answered HTTP 500 (after 3 attempts)"
    assert error.args == ("GET /x answered HTTP 500",)


def test_root_keeps_method_and_path() -> None:
    """Every error carries the request method and path as attributes."""
    error = AmeyoError("boom", method="DELETE", path="/ameyorestapi/voice/customerCallbacks/x")
    assert (error.method, error.path) == ("DELETE", "/ameyorestapi/voice/customerCallbacks/x")
    assert (AmeyoError("boom").method, AmeyoError("boom").path) == (None, None)


def test_api_error_keeps_every_structured_attribute() -> None:
    """APIError stores status, error code, key, key args, message, snippet and Retry-After."""
    error = APIError(
        "boom",
        status_code=512,
        method="DELETE",
        path="/p",
        error_code=5001,
        key="CallBackManager.invalid.campcust.callback.id",
        key_args=("d810-59423051-cm-0",),
        message="no such callback",
        from_envelope=True,
        snippet='{"status": 512}',
        retry_after=2.5,
    )
    assert error.status_code == 512
    assert (error.method, error.path) == ("DELETE", "/p")
    assert error.error_code == 5001
    assert error.key == "CallBackManager.invalid.campcust.callback.id"
    assert error.key_args == ("d810-59423051-cm-0",)
    assert error.message == "no such callback"
    assert error.from_envelope is True
    assert error.snippet == '{"status": 512}'
    assert error.retry_after == 2.5


@pytest.mark.parametrize("cls", API_ERRORS)
def test_api_error_defaults_mean_not_decoded(cls: type[APIError]) -> None:
    """Without an envelope the API attributes are empty, not missing."""
    error = cls("boom", status_code=502)
    assert error.status_code == 502
    assert error.error_code is None
    assert error.key is None
    assert error.key_args == ()
    assert error.message is None
    assert error.from_envelope is False
    assert error.snippet == ""
    assert error.retry_after is None


def test_callback_not_found_keeps_callback_id_and_api_attributes() -> None:
    """CallbackNotFoundError adds callback_id and passes the rest to APIError."""
    error = CallbackNotFoundError(
        "gone", callback_id="d810-59423051-cm-0", status_code=512, key="k", error_code=7
    )
    assert error.callback_id == "d810-59423051-cm-0"
    assert (error.status_code, error.key, error.error_code) == (512, "k", 7)
    assert CallbackNotFoundError("gone", status_code=512).callback_id is None


def test_rate_limited_error_keeps_retry_after() -> None:
    """RateLimitedError carries the server's wait in seconds."""
    assert RateLimitedError("slow down", status_code=429, retry_after=30.0).retry_after == 30.0


def test_response_format_error_keeps_field_and_index() -> None:
    """ResponseFormatError names the status, the snippet and the offending record field."""
    error = ResponseFormatError(
        "bad", method="POST", path="/p", status_code=200, snippet="[{", field="phone", index=3
    )
    assert (error.status_code, error.snippet, error.field, error.index) == (200, "[{", "phone", 3)
    bare = ResponseFormatError("bad")
    assert (bare.status_code, bare.snippet, bare.field, bare.index) == (None, "", None, None)


def test_transport_error_keeps_cause() -> None:
    """TransportError keeps the httpx exception it wraps."""
    cause = httpx.ConnectError("refused")
    error = TransportError("connect failed", method="POST", path="/p", cause=cause)
    assert error.cause is cause
    assert TransportError("x").cause is None


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("connect_timeout", True),
        ("read_timeout", True),
        ("write_timeout", True),
        ("pool_timeout", True),
        ("attempt_deadline", True),
        ("call_deadline", True),
        ("connection_refused", False),
        ("connection_lost", False),
        ("other", False),
    ],
)
def test_transport_error_reports_timeouts(kind: Kind, expected: bool) -> None:
    """is_timeout is True exactly for the kinds where a timeout or deadline ran out."""
    assert TransportError("x", kind=kind).is_timeout is expected
