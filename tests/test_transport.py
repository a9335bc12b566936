"""The transport room without sockets: failure kinds, proxies from the environment,
the answer-size cap, pickling every error, the library logger, and a light import.

Exception chains are built as each HTTP stack meets them (httpx over httpcore
over the OS or ssl error; aiohttp's own exceptions over the OS or ssl error),
and each stack's classifier is a pure function of them; the real sockets, on
both stacks, are in ``test_transport_socket.py``.
"""

from __future__ import annotations

import errno
import inspect
import json
import logging
import pickle
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
import respx
import yarl
from _support import BASE, DELETE_PATH, SESSION, examples, spec_record, stack_settings
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

import ameyo_callbacks
from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AnswerTimeoutError,
    CallbackFilter,
    ConnectionFailedError,
    ConnectionLostError,
    ResponseTooLargeError,
    RetryPolicy,
    TLSError,
    TransportError,
    exceptions,
)
from ameyo_callbacks._kinds import KINDS, Kind
from ameyo_callbacks._protocol import build_delete_request, build_list_request
from ameyo_callbacks._retry import decide
from ameyo_callbacks._transport import env_proxy, failure, httpx_kind
from ameyo_callbacks._transport._aiohttp import aiohttp_kind
from ameyo_callbacks._transport._base import stack_ssl_context
from ameyo_callbacks._transport._httpx import ShardedTransport
from ameyo_callbacks.testing import FakeAmeyo, Fault

SPEC = build_delete_request("d810-1")
WHERE = CallbackFilter.campaign(6)
NO_WAIT = RetryPolicy(attempts=3, wait_initial=0.0, wait_max=0.0, wait_jitter=0)
KEY = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)


def chained(top: BaseException, *below: BaseException) -> BaseException:
    """``top`` raised from ``below[0]``, raised from ``below[1]``, ..."""
    current = top
    for exc in below:
        current.__cause__ = exc
        current = exc
    return top


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code = code
    error.verify_message = message
    return error


def refused() -> OSError:
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")


def classify(exc: BaseException, *, where: str = "127.0.0.1:1") -> TransportError | None:
    """What a stack makes of ``exc``: its classifier's kind, then the error from the table."""
    is_aiohttp = any(isinstance(e, aiohttp.ClientError) for e in (exc, exc.__cause__))
    kind = (aiohttp_kind if is_aiohttp else httpx_kind)(exc)
    if kind is None:
        return None
    assert isinstance(exc, Exception)
    return failure(kind, exc, spec=SPEC, where=where)


CASES = [
    # httpx over httpcore over the OS error (the OS error is httpcore's argument)
    (
        "httpx-refused",  # anyio's "All connection attempts failed" over the OS error
        chained(httpx.ConnectError("All"), OSError("All connection attempts failed"), refused()),
        "connection_refused",
    ),
    (
        "httpx-dns",
        chained(httpx.ConnectError("x"), socket.gaierror(-2, "unknown")),
        "name_not_resolved",
    ),
    ("httpx-connect-timeout", httpx.ConnectTimeout("timed out"), "connect_timeout"),
    ("httpx-pool", httpx.PoolTimeout("pool"), "pool_timeout"),
    ("httpx-read-timeout", httpx.ReadTimeout("read"), "read_timeout"),
    ("httpx-write-timeout", httpx.WriteTimeout("write"), "write_timeout"),
    (
        "httpx-untrusted",
        chained(httpx.ConnectError("x"), cert_error(20, "unable to get local issuer certificate")),
        "tls_certificate",
    ),
    (
        "httpx-hostname",
        chained(httpx.ConnectError("x"), cert_error(62, "Hostname mismatch")),
        "tls_hostname",
    ),
    (
        "httpx-wrong-version",
        chained(httpx.ConnectError("x"), ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER]")),
        "http_expected",
    ),
    (
        "httpx-no-shared-cipher",
        chained(httpx.ConnectError("x"), ssl.SSLError(1, "[SSL: NO_SHARED_CIPHER]")),
        "tls_protocol",
    ),
    (
        "httpx-tls-bytes",
        httpx.RemoteProtocolError("illegal status line: bytearray(b'\\x15\\x03\\x03\\x00')"),
        "https_expected",
    ),
    (
        "httpx-disconnected",
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        "connection_lost",
    ),
    (
        "httpx-cut-body",
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        "connection_lost",
    ),
    (
        "httpx-reset",
        chained(httpx.ReadError("x"), ConnectionResetError(104, "reset")),
        "connection_lost",
    ),
    (
        "httpx-garbage",
        httpx.RemoteProtocolError("illegal status line: bytearray(b'SSH')"),
        "protocol_error",
    ),
    ("httpx-proxy", httpx.ProxyError("502 from proxy"), "proxy_error"),
    # aiohttp, as the aiohttp stack meets it
    ("aiohttp-refused", aiohttp.ClientConnectorError(KEY, refused()), "connection_refused"),
    (
        "aiohttp-dns",
        aiohttp.ClientConnectorError(KEY, socket.gaierror(-2, "unknown")),
        "name_not_resolved",
    ),
    ("aiohttp-connect-timeout", aiohttp.ConnectionTimeoutError("t"), "connect_timeout"),
    (
        "aiohttp-read-timeout",
        aiohttp.SocketTimeoutError("t"),
        "read_timeout",
    ),
    (
        "aiohttp-untrusted",
        aiohttp.ClientConnectorCertificateError(KEY, cert_error(20, "self-signed")),
        "tls_certificate",
    ),
    (
        "aiohttp-hostname",
        aiohttp.ClientConnectorCertificateError(KEY, cert_error(64, "IP address mismatch")),
        "tls_hostname",
    ),
    (
        "aiohttp-wrong-version",
        aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "WRONG_VERSION_NUMBER")),
        "http_expected",
    ),
    (
        "aiohttp-handshake-failure",
        aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "SSLV3_ALERT_HANDSHAKE_FAILURE")),
        "tls_protocol",
    ),
    (
        "aiohttp-tls-bytes",
        aiohttp.ClientResponseError(
            aiohttp.RequestInfo(yarl.URL("http://h"), "GET", CIMultiDictProxy(CIMultiDict())),
            (),
            status=400,
            message="Bad status line:\n  Expected HTTP/:\n\n  b'\\\\x15\\\\x03\\\\x03'",
        ),
        "https_expected",
    ),
    (
        "aiohttp-garbage",
        aiohttp.ClientResponseError(
            aiohttp.RequestInfo(yarl.URL("http://h"), "GET", CIMultiDictProxy(CIMultiDict())),
            (),
            status=400,
            message="Bad status line: b'SSH-2.0'",
        ),
        "protocol_error",
    ),
    ("aiohttp-disconnected", aiohttp.ServerDisconnectedError(), "connection_lost"),
    ("aiohttp-reset", aiohttp.ClientOSError(104, "reset"), "connection_lost"),
    (
        "aiohttp-payload",
        aiohttp.ClientPayloadError("not completed"),
        "connection_lost",
    ),
    (
        "aiohttp-proxy",
        aiohttp.ClientProxyConnectionError(KEY, refused()),
        "proxy_error",
    ),
]

EXPECTED_CLASS = {
    "connection_refused": ConnectionFailedError,
    "name_not_resolved": ConnectionFailedError,
    "connect_timeout": ConnectionFailedError,
    "pool_timeout": ConnectionFailedError,
    "proxy_error": ConnectionFailedError,
    "tls_certificate": TLSError,
    "tls_hostname": TLSError,
    "tls_protocol": TLSError,
    "https_expected": TLSError,
    "http_expected": TLSError,
    "read_timeout": AnswerTimeoutError,
    "write_timeout": AnswerTimeoutError,
    "connection_lost": ConnectionLostError,
    "protocol_error": ConnectionLostError,
}


@pytest.mark.parametrize(("exc", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_names_the_kind_from_either_stack(exc: Exception, kind: str) -> None:
    """Each stack's exception chain gives the same kind, class and cause."""
    error = classify(exc)
    assert error is not None
    assert error.kind == kind
    assert type(error) is EXPECTED_CLASS[kind]
    assert error.cause is exc
    assert error.request_sent is (type(error) not in (ConnectionFailedError, TLSError))
    assert error.method == "DELETE"
    assert error.path == SPEC.path


def test_classify_leaves_other_exceptions_alone() -> None:
    """A bug in our code (a TypeError) is no transport failure."""
    assert httpx_kind(TypeError("bug")) is None
    assert aiohttp_kind(TypeError("bug")) is None


def test_messages_say_what_to_check() -> None:
    """Refused names host and port; an untrusted certificate says to pass verify=."""
    error = classify(chained(httpx.ConnectError("x"), refused()))
    assert error is not None
    assert "nothing listens at 127.0.0.1:1: check the base URL and port" in str(error)
    untrusted = chained(httpx.ConnectError("x"), cert_error(20, "self-signed certificate"))
    error = classify(untrusted, where="h:8443")
    assert error is not None
    assert "certificate of h:8443 not trusted: pass verify= a CA bundle" in str(error)
    assert "self-signed certificate" in str(error)


@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        ("connection_refused", True),
        ("connect_timeout", True),
        ("read_timeout", True),
        ("attempt_deadline", True),
        ("connection_lost", True),
        ("tls_certificate", False),
        ("tls_hostname", False),
        ("tls_protocol", False),
        ("too_large", False),
        ("call_deadline", False),
    ],
)
def test_decide_retries_what_another_attempt_can_fix(kind: str, retried: bool) -> None:
    """TLS failures, an oversized answer and a spent budget are final; the rest retried."""
    error = TransportError("x", kind=kind)
    decision = decide(error, policy=RetryPolicy())
    assert decision.retry is retried
    assert kind.replace("_", " ") in decision.reason


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_is_retried_or_final_as_its_table_row_says(kind: Kind) -> None:
    """decide() reads the one table: a kind's ``retried`` is the retry decision."""
    error = KINDS[kind].error("x", kind=kind)
    assert decide(error, policy=RetryPolicy()).retry is KINDS[kind].retried
    assert error.is_timeout is KINDS[kind].timeout
    assert error.kind == kind


def test_the_errors_page_lists_exactly_the_table() -> None:
    """docs/errors.md's kinds table is the table: each kind's class, what happened, retried."""
    text = (Path(__file__).parents[1] / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| (.+?) \| (yes|no) \|$", text, re.MULTILINE)
    expected = [
        (kind, info.error.__name__, info.happened, "yes" if info.retried else "no")
        for kind, info in KINDS.items()
    ]
    assert rows == expected


# --------------------------------------------------------------------------
# Pickling


def _sample(cls: type[Exception]) -> Exception:
    """An instance of ``cls`` with every keyword given a non-default value."""
    values: dict[str, Any] = {
        "method": "DELETE",
        "path": "/p",
        "status_code": 512,
        "error_code": 5001,
        "key": "k",
        "key_args": ("a", "b"),
        "message": "m",
        "from_envelope": True,
        "snippet": "{...}",
        "retry_after": 2.5,
        "callback_id": "d810-1",
        "cause": httpx.ReadTimeout("slow"),
        "kind": "read_timeout",
        "request_sent": False,
        "seconds": 1.5,
        "limit": 1024,
        "field": "phone",
        "index": 3,
    }
    kwargs = {}
    for klass in cls.__mro__:  # down the classes whose __init__ passes **kwargs on
        params = inspect.signature(klass.__init__).parameters.values()
        for param in params:
            if param.kind is param.KEYWORD_ONLY and param.name not in kwargs:
                if param.name not in values:  # a class added later: a plain string will do
                    values[param.name] = f"value-{param.name}"
                kwargs[param.name] = values[param.name]
        if not any(param.kind is param.VAR_KEYWORD for param in params):
            break
    return cls("boom", **kwargs)


ERRORS = [
    getattr(exceptions, name)
    for name in exceptions.__all__
    if isinstance(getattr(exceptions, name), type)
    and issubclass(getattr(exceptions, name), exceptions.AmeyoError)
]


@pytest.mark.parametrize("cls", ERRORS, ids=[c.__name__ for c in ERRORS])
def test_every_error_pickles_with_its_attributes(cls: type[Exception]) -> None:
    """pickle round-trips each class: text, type and every attribute (cause included)."""
    error = _sample(cls)
    error.attempts = 3  # type: ignore[attr-defined]
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    own = {k: v for k, v in vars(error).items() if k != "cause"}
    assert {k: v for k, v in vars(copy).items() if k != "cause"} == own
    if "cause" in vars(error):
        assert type(copy.cause) is type(error.cause)  # type: ignore[attr-defined]
        assert str(copy.cause) == str(error.cause)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# Environment


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({"HTTPS_PROXY": "http://p:3128"}, "https://ameyo.example:8443", "http://p:3128"),
        ({"HTTPS_PROXY": "p:3128"}, "https://ameyo.example:8443", "http://p:3128"),
        ({"HTTP_PROXY": "http://p:1"}, "https://ameyo.example:8443", None),
        ({"ALL_PROXY": "http://p:2"}, "http://ameyo.example:8888", "http://p:2"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "example"}, "http://ameyo.example:8888", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": ".example"}, "http://ameyo.example:8888", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, "http://ameyo.example:8888", None),
        (
            {"HTTP_PROXY": "http://p:1", "NO_PROXY": "ameyo.example:9999"},
            "http://ameyo.example:8888",
            "http://p:1",
        ),
        (
            {"HTTP_PROXY": "http://p:1", "NO_PROXY": "other.example"},
            "http://ameyo.example:8888",
            "http://p:1",
        ),
    ],
)
def test_env_proxy_reads_proxy_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None
) -> None:
    """HTTP(S)_PROXY / ALL_PROXY pick the proxy for the scheme; NO_PROXY skips it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_proxy(url) == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"trust_env": "yes"}, TypeError),
        ({"proxy": 3128}, TypeError),
        ({"max_response_bytes": "1"}, TypeError),
        ({"max_response_bytes": 0}, ValueError),
    ],
)
def test_new_settings_are_checked(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """trust_env, proxy and max_response_bytes: wrong type TypeError, wrong value ValueError."""
    with pytest.raises(error):
        AmeyoCallbacksClient(BASE, session_id=SESSION, **kwargs)


@pytest.mark.parametrize(("value", "error"), [("1", TypeError), (0, ValueError), (-1, ValueError)])
def test_attempt_timeout_is_checked(value: Any, error: type[Exception]) -> None:
    """RetryPolicy.attempt_timeout is positive seconds or None."""
    with pytest.raises(error, match="attempt_timeout"):
        RetryPolicy(attempt_timeout=value)
    assert RetryPolicy(attempt_timeout=None).attempt_timeout is None


# --------------------------------------------------------------------------
# Answer size, through a caller's transport and a caller's http_client


async def _parts(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _big_page(n: int) -> bytes:
    return json.dumps([spec_record(customerCallbackId=f"d810-{i}") for i in range(n)]).encode()


@pytest.mark.parametrize("own_client", [False, True], ids=["transport", "http_client"])
@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "streamed"])
async def test_answer_over_the_cap_is_refused(own_client: bool, announced: bool) -> None:
    """A body over max_response_bytes: ResponseTooLargeError, sent once; at the cap: decoded."""
    body = _big_page(50)
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if announced:
            return httpx.Response(200, content=body)
        return httpx.Response(200, content=_parts(body[:1000], body[1000:]))

    for cap, ok in ((len(body) - 1, False), (len(body), True)):
        sent.clear()
        mock = httpx.MockTransport(answer)
        http = httpx.AsyncClient(transport=mock) if own_client else None
        stack: dict[str, Any] = {"http_client": http} if own_client else {"transport": mock}
        async with AmeyoCallbacksClient(
            BASE, session_id=SESSION, max_response_bytes=cap, retry=NO_WAIT, **stack
        ) as client:
            if ok:
                assert len(await client.get_callbacks(WHERE)) == 50
            else:
                with pytest.raises(ResponseTooLargeError) as info:
                    await client.get_callbacks(WHERE)
                assert info.value.attempts == 1
                assert info.value.limit == cap
        if http is not None:
            await http.aclose()
        assert len(sent) == 1


# --------------------------------------------------------------------------
# The fake's new faults, in-process


async def test_fake_close_after_acting_counts_as_deleted() -> None:
    """Fault.close(apply_before_fault=True): done, answer lost; the retry's 512 is success."""
    fake = FakeAmeyo.seeded(3, campaigns=(6,), seed=1)
    target = sorted(fake.ids())[0]
    fake.script("delete", Fault.close(apply_before_fault=True))
    async with fake.client(retry=NO_WAIT) as client:
        await client.delete_callback(target)
    assert target not in fake.ids()
    assert [entry.fault for entry in fake.requests] == ["close", None]


async def test_fake_close_before_acting_is_retried_and_done() -> None:
    """Fault.close(): nothing done; the retry deletes it."""
    fake = FakeAmeyo.seeded(3, campaigns=(6,), seed=1)
    target = sorted(fake.ids())[0]
    fake.script("delete", Fault.close())
    async with fake.client(retry=NO_WAIT) as client:
        await client.delete_callback(target)
    assert target not in fake.ids()
    assert len(fake.requests) == 2


async def test_fake_oversized_answer_is_refused_in_process() -> None:
    """Fault.oversized(size): a list answer over the cap is ResponseTooLargeError."""
    fake = FakeAmeyo.seeded(3, campaigns=(6,), seed=1)
    fake.script("list", Fault.oversized(size=300_000))
    async with fake.client(retry=NO_WAIT, max_response_bytes=100_000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.get_callbacks(WHERE)
        assert len(await client.get_callbacks(WHERE)) == 3


def test_fake_fault_values_are_checked() -> None:
    """trickle's chunk and oversized's size are whole numbers >= 1; interval >= 0."""
    with pytest.raises(ValueError, match="chunk"):
        Fault.trickle(chunk=0)
    with pytest.raises(ValueError, match="size"):
        Fault.oversized(size=0)
    with pytest.raises(ValueError, match="delay"):
        Fault.trickle(interval=-1)


# --------------------------------------------------------------------------
# Logging and import cost


def test_library_logger_has_a_null_handler() -> None:
    """Without logging set up, our warnings reach no "last resort" stderr handler."""
    handlers = logging.getLogger("ameyo_callbacks").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_only_an_aiohttp_client_loads_aiohttp() -> None:
    """A default client's requests load no aiohttp; ``http_backend="aiohttp"`` does."""
    code = (
        "import sys, asyncio\n"
        "import ameyo_callbacks as a\n"
        "async def main():\n"
        "    async with a.AmeyoCallbacksClient('http://127.0.0.1:9', session_id='s') as c:\n"
        "        print(c.http_backend, 'aiohttp' in sys.modules)\n"
        "    async with a.AmeyoCallbacksClient(\n"
        "        'http://127.0.0.1:9', session_id='s', http_backend='aiohttp'\n"
        "    ) as c:\n"
        "        print(c.http_backend, 'aiohttp' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(  # noqa: S603  (this interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    assert out[:2] == ["httpx False", "aiohttp True"]


def test_aiohttp_without_the_extra_names_the_extra() -> None:
    """Without aiohttp installed, http_backend="aiohttp" is an ImportError naming the extra."""
    code = (
        "import sys\n"
        "sys.modules['aiohttp'] = None  # as if not installed\n"
        "import ameyo_callbacks as a\n"
        "a.AmeyoCallbacksClient('http://127.0.0.1:9', session_id='s')  # the default: fine\n"
        "try:\n"
        "    a.AmeyoCallbacksClient('http://127.0.0.1:9', session_id='s', http_backend='aiohttp')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(  # noqa: S603  (this interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "pip install 'ameyo-callbacks[aiohttp]'" in out


def test_public_names_include_the_transport_errors() -> None:
    """The TransportError subclasses are exported from the package."""
    for name in (
        "AnswerTimeoutError",
        "ConnectionFailedError",
        "ConnectionLostError",
        "ResponseTooLargeError",
        "TLSError",
    ):
        assert name in ameyo_callbacks.__all__
        assert issubclass(getattr(ameyo_callbacks, name), TransportError)


async def test_delete_after_a_dropped_connection_counts_as_deleted_via_respx() -> None:
    """A dropped connection, then 512: deleted (the rule lives with the delete)."""
    with respx.mock(base_url=BASE) as mock:
        not_found = {
            "message": None,
            "info": json.dumps(["CallBackManager.invalid.campcust.callback.id", "x"]),
            "status": 512,
        }
        route = mock.delete(DELETE_PATH).mock(
            side_effect=[
                httpx.RemoteProtocolError("Server disconnected without sending a response."),
                httpx.Response(512, json=not_found),
            ]
        )
        async with AmeyoCallbacksClient(BASE, session_id=SESSION, retry=NO_WAIT) as client:
            await client.delete_callback(DELETE_PATH.rsplit("/", 1)[1])
        assert route.call_count == 2


# --------------------------------------------------------------------------
# The default stack's pools


async def test_the_default_stack_sends_each_request_to_its_least_busy_pool() -> None:
    """10 connections are pools of 4, 4 and 2; six requests in flight go two to each; all freed."""
    transport = ShardedTransport(verify=ssl.create_default_context(), max_connections=10)
    release = anyio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=[])

    with respx.mock(base_url="http://ameyo.example:8888") as mock:
        mock.get("/x").mock(side_effect=held)
        async with httpx.AsyncClient(transport=transport) as http, anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(http.get, "http://ameyo.example:8888/x")
            with anyio.fail_after(5):  # a bound, not a timing: the six start at once
                while sum(transport._busy) < 6:
                    await anyio.sleep(0)
            assert transport._busy == [2, 2, 2]
            release.set()
    assert transport._busy == [0, 0, 0]


@settings(max_examples=examples(50), deadline=None)
@given(
    user_ids=st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=3),
    offset=st.integers(0, 10**9),
)
@example(user_ids=["0 "], offset=0)  # a space: %20 from httpx 0.27, + from 0.28 on
async def test_the_list_url_is_the_one_httpx_params_would_build(
    user_ids: list[str], offset: int
) -> None:
    """Query strings the stack encodes itself reach the wire as httpx's ``params=`` builds them."""
    where = CallbackFilter.campaign(6, user_ids=user_ids, from_date_added=1, to_date_added=2)
    spec = build_list_request(
        method="POST", tenant_path="/t", where=where, limit=100, offset=offset
    )
    seen: list[httpx.URL] = []
    with respx.mock(base_url=BASE) as router:
        router.post(path=spec.path).mock(
            side_effect=lambda request: seen.append(request.url) or httpx.Response(200, json=[])
        )
        async with AmeyoCallbacksClient(BASE, session_id=SESSION) as client:
            assert await client.get_callbacks(where, offset=offset) == []
    with httpx.Client() as plain:
        expected = plain.build_request("POST", BASE + spec.path, params=spec.params).url
    # httpx before 0.28 writes a space as %20, later as + (both decode to a space): the
    # stack writes +, so on httpx 0.27 (the floor) the two differ in that alone
    assert len(seen) == 1
    assert str(seen[0]).replace("%20", "+") == str(expected).replace("%20", "+")
    assert "%20" not in str(seen[0])


@pytest.mark.parametrize(
    ("base_url", "proxy", "loads"),
    [
        ("http://ameyo.example:8888", None, False),
        ("http://ameyo.example:8888", "http://proxy.example:3128", False),
        ("http://ameyo.example:8888", "https://proxy.example:3129", True),
        ("https://ameyo.example:8443", None, True),
    ],
)
def test_only_a_connection_that_can_use_tls_loads_the_ca_certificates(
    base_url: str, proxy: str | None, loads: bool
) -> None:
    """Plain http (no https proxy) skips the CA bundle (30 ms a client) and still trusts no one."""
    context = stack_ssl_context(stack_settings(base_url), proxy)
    assert (context.cert_store_stats()["x509_ca"] > 0) is loads
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    given = ssl.create_default_context()
    assert (
        stack_ssl_context(stack_settings(base_url, verify=given), proxy) is given
    )  # a caller's, as is
