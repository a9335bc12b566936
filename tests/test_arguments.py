"""Every numeric, boolean and iterable parameter of the public API refuses bad arguments alike.

The rule (``ameyo_callbacks._checks``): a wrong *type* is a ``TypeError``, a
wrong *value* a ``ValueError``, the message names the parameter, and nothing
is sent. Each row below gives a parameter, the call that passes it a value,
values of a wrong type and values of a wrong kind. The last tests read the
public signatures, so a parameter added later without a row here fails.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import pytest
import respx
from _support import BASE, SESSION, VirtualClock

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    CallbackFilter,
    CallbackIterator,
    CustomerCallback,
    LoginSession,
    RetryPolicy,
    StaticSession,
)
from ameyo_callbacks._paging import Answered
from ameyo_callbacks._planner import MIN_DATE, PageRequest

WHERE = CallbackFilter.campaign(6)
NOT_INT = ("3", 1.5, True, None)  # bool is an int subclass, refused all the same
NOT_OPTIONAL_INT = ("3", 1.5, True)
NOT_NUMBER = ("1", True, None)
NOT_OPTIONAL_NUMBER = ("1", True)
NOT_BOOL = ("yes", 1, None)
NOT_DATE = (1.5e12, "1521539038782", True)
BAD_DATE = (datetime(2020, 1, 1), 10**20)  # naive; beyond what a datetime holds
NOT_USER_IDS = ("asha", b"asha", 5, ["asha", 5])
BAD_USER_IDS = ([], ["asha", " "])
NOT_SESSION = (12345, None, b"5e55-10n1d")
BAD_SESSION = ("", "   ", " 5e55-10n1d", "5e55\n")

Call = Callable[[AmeyoCallbacksClient, Any], object]


def client_of(**kwargs: Any) -> AmeyoCallbacksClient:
    kwargs.setdefault("session_id", SESSION)
    kwargs.setdefault("clock", VirtualClock())  # a retried answer (a DELETE's `[]`) waits no time
    return AmeyoCallbacksClient(BASE, **kwargs)


def ctor(name: str) -> Call:
    """Pass the value as the client constructor's ``name``."""
    return lambda _, value: client_of(**{name: value})


def built(make: Callable[..., object], name: str, *args: object, **fixed: object) -> Call:
    """Pass the value as ``make(*args, **fixed, name=value)``."""
    return lambda _, value: make(*args, **fixed, **{name: value})


def get(name: str) -> Call:
    return lambda c, value: c.get_callbacks(WHERE, **{name: value})


def walk(name: str) -> Call:
    return lambda c, value: c.iter_callbacks(WHERE, **{name: value})


def bulk(name: str) -> Call:
    return lambda c, value: c.delete_callbacks(["d806-1"], **{name: value})


def matching(name: str) -> Call:
    return lambda c, value: c.delete_matching(WHERE, **{name: value})


PAGES_ASKED: list[tuple[int, int]] = []


async def no_pages(request: PageRequest, _answered: Answered) -> list[CustomerCallback]:
    """The fetch of a CallbackIterator built directly: it logs the page asked, serves none."""
    PAGES_ASKED.append((request.offset, request.limit))
    return []


def retry_policy(name: str) -> tuple[str, Call, tuple[object, ...], tuple[object, ...]]:
    """A RetryPolicy field's row: attempts is an int >= 1, the others seconds >= 0."""
    call = built(RetryPolicy, name)
    if name == "attempts":
        return f"RetryPolicy.{name}", call, NOT_INT, (0, -1)
    optional = name in ("timeout", "attempt_timeout")
    types = NOT_OPTIONAL_NUMBER if optional else NOT_NUMBER
    return f"RetryPolicy.{name}", call, types, (-0.5, math.nan)


# name in the error, call, wrong types, wrong values; keyed "<callable>.<parameter>".
CASES: dict[str, tuple[str, Call, tuple[object, ...], tuple[object, ...]]] = {
    "AmeyoCallbacksClient.session_id": ("session_id", ctor("session_id"), NOT_SESSION, BAD_SESSION),
    "AmeyoCallbacksClient.timeout": ("timeout", ctor("timeout"), ("30", True), (-1, math.nan)),
    "AmeyoCallbacksClient.verify": ("verify", ctor("verify"), (1, None), ()),
    "AmeyoCallbacksClient.list_method": ("list_method", ctor("list_method"), (None, 5), ("PUT",)),
    "AmeyoCallbacksClient.tenant_callbacks_path": (
        "tenant_callbacks_path",
        ctor("tenant_callbacks_path"),
        (5, None),
        ("", "/"),
    ),
    "AmeyoCallbacksClient.retry": ("retry", ctor("retry"), (3, "none"), ()),
    "AmeyoCallbacksClient.http_backend": (
        "http_backend",
        ctor("http_backend"),
        (None, 5),
        ("x", "auto"),
    ),
    "AmeyoCallbacksClient.max_connections": (
        "max_connections",
        ctor("max_connections"),
        NOT_INT,
        (0,),
    ),
    "AmeyoCallbacksClient.max_rate": ("max_rate", ctor("max_rate"), ("5", True), (0, -1, math.nan)),
    "AmeyoCallbacksClient.adaptive_rate": ("adaptive_rate", ctor("adaptive_rate"), NOT_BOOL, ()),
    "AmeyoCallbacksClient.max_concurrency": (
        "max_concurrency",
        ctor("max_concurrency"),
        NOT_INT,
        (0,),
    ),
    "AmeyoCallbacksClient.max_response_bytes": (
        "max_response_bytes",
        ctor("max_response_bytes"),
        NOT_INT,
        (0, -1),
    ),
    "AmeyoCallbacksClient.trust_env": ("trust_env", ctor("trust_env"), NOT_BOOL, ()),
    "AmeyoCallbacksClient.proxy": ("proxy", ctor("proxy"), (5, b"http://proxy:3128"), ()),
    "get_callbacks.where": ("where", lambda c, v: c.get_callbacks(v), ({"campaign_id": 6}, 6), ()),
    "get_callbacks.limit": ("limit", get("limit"), NOT_INT, (0, -1, 101)),
    "get_callbacks.offset": ("offset", get("offset"), NOT_INT, (-1,)),
    "get_callbacks.info": ("info", get("info"), ("true", 1), ()),
    "iter_callbacks.where": ("where", lambda c, v: c.iter_callbacks(v), (None, 6), ()),
    "iter_callbacks.page_size": ("page_size", walk("page_size"), NOT_INT, (0, 101)),
    "iter_callbacks.prefetch": ("prefetch", walk("prefetch"), NOT_INT, (0, -1)),
    "iter_callbacks.max_items": ("max_items", walk("max_items"), NOT_OPTIONAL_INT, (-1,)),
    "iter_callbacks.start_offset": ("start_offset", walk("start_offset"), NOT_INT, (-1,)),
    "iter_callbacks.info": ("info", walk("info"), ("false", 0), ()),
    "iter_callbacks.resume_from": ("resume_from", walk("resume_from"), (5, b"x"), ("", "junk")),
    "iter_callbacks.on_inconsistency": (
        "on_inconsistency",
        walk("on_inconsistency"),
        (None, 5),
        ("ignore",),
    ),
    "delete_callback.customer_callback_id": (
        "customer_callback_id",
        lambda c, v: c.delete_callback(v),
        (None, 5, b"d806-1"),
        ("", "  \t"),
    ),
    "delete_callbacks.ids": (
        "ids",
        lambda c, v: c.delete_callbacks(v),
        ("d806-abc", b"d806-abc", 5, None),
        (),
    ),
    "delete_callbacks.concurrency": ("concurrency", bulk("concurrency"), (*NOT_INT, "8"), (0, -1)),
    "delete_matching.where": ("where", lambda c, v: c.delete_matching(v), (None, 6), ()),
    "delete_matching.concurrency": ("concurrency", matching("concurrency"), (*NOT_INT, "8"), (0,)),
    "delete_matching.dry_run": ("dry_run", matching("dry_run"), NOT_BOOL, ()),
    "CallbackFilter.campaign.campaign_id": (
        "campaign_id",
        built(CallbackFilter.campaign, "campaign_id"),
        ("6", 6.0, True, None),
        (0, -6),
    ),
    "StaticSession.session_id": (
        "session_id",
        built(StaticSession, "session_id"),
        NOT_SESSION,
        BAD_SESSION,
    ),
    "StaticSession.jwt": (
        "jwt",
        built(StaticSession, "jwt", "5e55-10n1d"),
        (12345, b"eyJ"),
        BAD_SESSION,
    ),
    "LoginSession.user_id": ("user_id", built(LoginSession, "user_id", token="t"), (5,), ("",)),
    "LoginSession.token": ("token", built(LoginSession, "token", "admin"), (5, b"t"), (" ",)),
    "LoginSession.domain": ("domain", built(LoginSession, "domain", "admin", "t"), (5,), ()),
    "LoginSession.login_path": (
        "login_path",
        built(LoginSession, "login_path", "admin", "t"),
        (5, None),
        ("login",),
    ),
    "LoginSession.refresh_path": (
        "refresh_path",
        built(LoginSession, "refresh_path", "admin", "t"),
        (5, None),
        ("refreshToken",),
    ),
    "LoginSession.force_login": (
        "force_login",
        built(LoginSession, "force_login", "admin", "t"),
        NOT_BOOL,
        (),
    ),
    **{
        f"CallbackIterator.{name}": (name, built(CallbackIterator, name, no_pages), types, values)
        for name, types, values in [
            ("page_size", NOT_INT, (0, 101)),
            ("start_offset", NOT_INT, (-1,)),
            ("max_items", NOT_OPTIONAL_INT, (-1,)),
            ("prefetch", NOT_INT, (0,)),
            ("from_date", NOT_OPTIONAL_INT, (MIN_DATE - 1,)),
            ("to_date", NOT_OPTIONAL_INT, (MIN_DATE - 1,)),
            ("resume_from", (5,), ("junk",)),
            ("on_inconsistency", (5,), ("ignore",)),
        ]
    },
    **{
        f"CallbackFilter.{scope}.{name}": (name, built(make, name, *args), types, values)
        for scope, make, args in [
            ("campaign", CallbackFilter.campaign, (6,)),
            ("tenant", CallbackFilter.tenant, ()),
        ]
        for name, types, values in [
            ("user_ids", NOT_USER_IDS, BAD_USER_IDS),
            ("from_date_added", NOT_DATE, BAD_DATE),
            ("to_date_added", NOT_DATE, BAD_DATE),
            ("from_date_scheduled", NOT_DATE, BAD_DATE),
            ("to_date_scheduled", NOT_DATE, BAD_DATE),
        ]
    },
    **{f"RetryPolicy.{f.name}": retry_policy(f.name) for f in attrs.fields(RetryPolicy)},
}


def params() -> list[Any]:
    return [
        pytest.param(name, call, exc, value, id=f"{key}={value!r}")
        for key, (name, call, types, values) in CASES.items()
        for exc, bad in ((TypeError, types), (ValueError, values))
        for value in bad
    ]


async def invoke(call: Call, client: AmeyoCallbacksClient, value: object) -> None:
    """Run a call to its end: await a coroutine, walk an iterator, close a built client."""
    result = call(client, value)
    if inspect.isawaitable(result):
        await result
    elif isinstance(result, CallbackIterator):
        async for _ in result:
            pass
    elif isinstance(result, AmeyoCallbacksClient):
        await result.aclose()


@pytest.mark.parametrize(("name", "call", "exc", "value"), params())
async def test_bad_argument_is_refused_by_type_or_value_and_nothing_is_sent(
    router: respx.MockRouter, name: str, call: Call, exc: type[Exception], value: object
) -> None:
    """A value of the wrong type is a TypeError, a wrong value a ValueError; both name it."""
    router.route().respond(200, json=[])
    PAGES_ASKED.clear()
    async with client_of() as client:
        with pytest.raises(exc, match=rf"(?<![\w.]){re.escape(name)}\b") as caught:
            await invoke(call, client, value)
    assert type(caught.value) is exc  # not a subclass standing in for the other kind
    assert router.calls.call_count == 0
    assert PAGES_ASKED == []


# --------------------------------------------------------------------------
# The table covers the public signatures


CHECKED = ("int", "float", "bool", "Iterable", "DateBound", "str", "Literal")
PUBLIC_CALLABLES: dict[str, Callable[..., object]] = {
    "AmeyoCallbacksClient": AmeyoCallbacksClient,
    "get_callbacks": AmeyoCallbacksClient.get_callbacks,
    "iter_callbacks": AmeyoCallbacksClient.iter_callbacks,
    "delete_callback": AmeyoCallbacksClient.delete_callback,
    "delete_callbacks": AmeyoCallbacksClient.delete_callbacks,
    "delete_matching": AmeyoCallbacksClient.delete_matching,
    "CallbackFilter.campaign": CallbackFilter.campaign,
    "CallbackFilter.tenant": CallbackFilter.tenant,
    "CallbackIterator": CallbackIterator,
    "StaticSession": StaticSession,
    "LoginSession": LoginSession,
    "RetryPolicy": RetryPolicy,
}
# Parameters of those types with no row, and why.
NOT_IN_THE_TABLE = {
    "AmeyoCallbacksClient.base_url": "its own tests (test_client.py: URL forms)",
    "CallbackIterator.scope": "a label the client passes for checkpoints, not a user input",
    "CallbackIterator.span_attributes": "what the client puts on the walk's span (test_tracing.py)",
    "delete_callbacks.on_progress": "a callable",
    "delete_matching.on_progress": "a callable",
}


def checked_parameters() -> set[str]:
    found = set()
    for owner, func in PUBLIC_CALLABLES.items():
        for param in inspect.signature(func).parameters.values():
            annotation = str(param.annotation)
            if param.name != "self" and any(word in annotation for word in CHECKED):
                found.add(f"{owner}.{param.name}")
    return found


def test_every_checked_parameter_of_the_public_api_has_a_row() -> None:
    """Each int/float/bool/str/iterable parameter of a public callable is in CASES."""
    missing = checked_parameters() - set(CASES) - set(NOT_IN_THE_TABLE)
    assert missing == set()


def test_every_row_names_a_real_parameter() -> None:
    """No row is left over from a parameter that no longer exists."""
    stale = {
        key
        for key in CASES
        if key.rpartition(".")[2]
        not in inspect.signature(PUBLIC_CALLABLES[key.rpartition(".")[0]]).parameters
    }
    assert stale == set()


def default_of(key: str) -> object:
    """The default of the parameter a row names (``inspect.Parameter.empty`` when required)."""
    owner, _, param = key.rpartition(".")
    return inspect.signature(PUBLIC_CALLABLES[owner]).parameters[param].default


@pytest.mark.parametrize(
    "key", [key for key in sorted(CASES) if default_of(key) is not inspect.Parameter.empty]
)
async def test_the_default_passes_where_the_bad_values_are_refused(
    router: respx.MockRouter, key: str
) -> None:
    """Each row's call is right but for the value: with the parameter's default it runs."""
    router.route().respond(200, json=[])
    async with client_of() as client:
        await invoke(CASES[key][1], client, default_of(key))
