"""Retries: the retry decision, Retry-After through the shared gate, the lost DELETE answer."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import aiohttp
import httpx
import pytest
import respx
from _support import BASE, CALLBACK_ID, CAMPAIGN_PATH, DELETE_PATH, SESSION, spec_record

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AmeyoError,
    APIError,
    AuthenticationError,
    BackoffGate,
    CallbackFilter,
    CallbackNotFoundError,
    RateLimitedError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from ameyo_callbacks._protocol import NOT_FOUND_KEY, build_delete_request
from ameyo_callbacks._retry import RetryDecision, decide
from ameyo_callbacks._transport import failure
from ameyo_callbacks._transport._aiohttp import aiohttp_kind
from ameyo_callbacks.testing import FakeAmeyo, Fault, no_retry_waits

LIST_PATH = CAMPAIGN_PATH
RECORD = spec_record()
HTML_500 = b"<html><body><h1>HTTP Status 500 - Internal Server Error</h1></body></html>"
NOT_FOUND = {
    "message": None,
    "info": json.dumps([NOT_FOUND_KEY, CALLBACK_ID]),
    "status": 512,
    "errorCode": 5001,
}
NO_WAIT = RetryPolicy(attempts=3, wait_initial=0, wait_max=0, wait_jitter=0)


class FakeClock:
    """A Clock that never really sleeps.

    ``auto=True``: a sleep moves the time forward at once. ``auto=False``: a
    sleep blocks until the test calls :meth:`advance` far enough.
    ``log`` is shared with the fake server so sends and sleeps can be ordered.
    """

    def __init__(self, *, auto: bool = True, log: list[tuple[str, float]] | None = None) -> None:
        self.time = 1000.0
        self.auto = auto
        self.sleeps: list[float] = []
        self.pending = 0
        self.log = log if log is not None else []
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.log.append(("sleep", seconds))
        if self.auto:
            self.time += seconds
            await asyncio.sleep(0)
            return
        target = self.time + seconds
        self.pending += 1
        try:
            while self.time < target:
                await self._moved.wait()
        finally:
            self.pending -= 1

    def advance(self, seconds: float) -> None:
        self.time += seconds
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the other tasks run until ``condition()`` holds (fails after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not reached")
        await asyncio.sleep(0)


def make_client(**kwargs: Any) -> AmeyoCallbacksClient:
    kwargs.setdefault("session_id", SESSION)
    return AmeyoCallbacksClient(BASE, http_backend="httpx", **kwargs)


def ok_list() -> httpx.Response:
    return httpx.Response(200, json=[RECORD])


async def list_once(**kwargs: Any) -> Any:
    async with make_client(**kwargs) as client:
        return await client.get_callbacks(CallbackFilter.campaign(6), limit=10)


async def delete_once(**kwargs: Any) -> None:
    async with make_client(**kwargs) as client:
        await client.delete_callback(CALLBACK_ID)


# --------------------------------------------------------------------------
# RetryPolicy


def test_policy_defaults_match_the_issue() -> None:
    """Six attempts, exponential back-off with jitter under a cap, a 60 s budget per call."""
    policy = RetryPolicy()
    assert policy.attempts == 6
    assert policy.timeout == 60.0
    assert policy.wait_jitter > 0
    assert policy.backoff(2) == 2 * policy.backoff(1)
    assert policy.backoff(3) == 4 * policy.backoff(1)
    assert policy.backoff(50) == policy.wait_max


def test_policy_none_sends_once() -> None:
    """RetryPolicy.none() is a policy of exactly one attempt."""
    assert RetryPolicy.none().attempts == 1


@pytest.mark.parametrize(
    ("attempts", "exc", "message"),
    [
        (0, ValueError, "attempts must be >= 1"),
        (-1, ValueError, "attempts must be >= 1"),
        (1.5, TypeError, "attempts must be an int"),
        (True, TypeError, "attempts must be an int"),
        ("3", TypeError, "attempts must be an int"),
        (None, TypeError, "attempts must be an int"),
    ],
)
def test_policy_rejects_attempts_that_are_not_a_positive_int(
    attempts: Any, exc: type[Exception], message: str
) -> None:
    """attempts must be an int (bool and float refused: TypeError) >= 1 (ValueError)."""
    with pytest.raises(exc, match=message):
        RetryPolicy(attempts=attempts)


@pytest.mark.parametrize(
    "field", ["wait_initial", "wait_max", "wait_jitter", "timeout", "max_retry_after"]
)
def test_policy_rejects_negative_waits(field: str) -> None:
    """Every wait and budget is a number >= 0."""
    kwargs: dict[str, Any] = {field: -0.5}
    with pytest.raises(ValueError, match=f"RetryPolicy.{field} must be a number >= 0"):
        RetryPolicy(**kwargs)


def test_policy_accepts_zero_waits_and_no_budget() -> None:
    """Zero waits and timeout=None are valid (no back-off, no time budget)."""
    policy = RetryPolicy(wait_initial=0, wait_max=0, wait_jitter=0, timeout=None)
    assert policy.backoff(3) == 0
    assert policy.timeout is None


# --------------------------------------------------------------------------
# decide(): the table


def _transport(cause: Exception) -> TransportError:
    return TransportError("failed", method="POST", path=LIST_PATH, cause=cause)


def _api(
    cls: type[APIError], status: int, *, envelope: bool = False, after: float | None = None
) -> APIError:
    return cls(
        f"HTTP {status}",
        status_code=status,
        method="POST",
        path=LIST_PATH,
        from_envelope=envelope,
        retry_after=after,
    )


_REQ = httpx.Request("POST", BASE + LIST_PATH)
DECIDE_TABLE = [
    pytest.param(_transport(httpx.ConnectError("refused", request=_REQ)), True, id="connect"),
    pytest.param(_transport(httpx.ReadTimeout("slow", request=_REQ)), True, id="read-timeout"),
    pytest.param(
        _transport(httpx.RemoteProtocolError("dropped", request=_REQ)), True, id="dropped"
    ),
    pytest.param(_transport(httpx.ReadError("reset", request=_REQ)), True, id="read-error"),
    pytest.param(_api(RateLimitedError, 429), True, id="429"),
    pytest.param(_api(ServerError, 502), True, id="502"),
    pytest.param(_api(ServerError, 503), True, id="503"),
    pytest.param(_api(ServerError, 504), True, id="504"),
    pytest.param(_api(ServerError, 500), True, id="500-html"),
    pytest.param(_api(ServerError, 500, envelope=True), False, id="500-envelope"),
    pytest.param(_api(ServerError, 501), False, id="501"),
    pytest.param(_api(APIError, 512, envelope=True), False, id="512-envelope"),
    pytest.param(_api(CallbackNotFoundError, 512, envelope=True), False, id="512-not-found"),
    pytest.param(_api(APIError, 400, envelope=True), False, id="400"),
    pytest.param(_api(APIError, 404), False, id="404"),
    pytest.param(_api(APIError, 405, envelope=True), False, id="405"),
    pytest.param(_api(AuthenticationError, 403, envelope=True), False, id="403-session"),
    pytest.param(_api(AuthenticationError, 401, envelope=True), False, id="401-login"),
    pytest.param(ResponseFormatError("garbled", status_code=200), True, id="list-undecodable"),
    pytest.param(ResponseFormatError("garbled", status_code=200), True, id="login-undecodable"),
    pytest.param(ResponseFormatError("garbled", status_code=200), True, id="delete-undecodable"),
]


@pytest.mark.parametrize(("exc", "retry"), DECIDE_TABLE)
def test_decide_table(exc: AmeyoError, retry: bool) -> None:
    """Each failure class is retried or not as the issue lists, for every kind of call."""
    decision = decide(exc, policy=RetryPolicy())
    assert decision.retry is retry
    assert decision.reason


def test_decide_names_the_transport_cause() -> None:
    """The reason of a transport failure names the httpx exception."""
    decision = decide(_transport(httpx.ReadTimeout("slow", request=_REQ)), policy=RetryPolicy())
    assert decision == RetryDecision(retry=True, reason="ReadTimeout")


@pytest.mark.parametrize("status", [429, 503])
def test_decide_carries_retry_after_within_the_cap(status: int) -> None:
    """A Retry-After up to max_retry_after is retried, and the wait is handed on."""
    cls = RateLimitedError if status == 429 else ServerError
    decision = decide(_api(cls, status, after=30), policy=RetryPolicy(max_retry_after=30))
    assert decision.retry is True
    assert decision.retry_after == 30


def test_decide_gives_up_on_retry_after_above_the_cap() -> None:
    """A Retry-After above max_retry_after is not waited for; the reason says why."""
    decision = decide(_api(RateLimitedError, 429, after=61), policy=RetryPolicy())
    assert decision.retry is False
    assert decision.retry_after == 61
    assert "above the 60 s cap" in decision.reason


# --------------------------------------------------------------------------
# The client: what is retried


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect"),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("server disconnected"), id="dropped"),
        pytest.param(httpx.ReadError("connection reset"), id="read-error"),
        pytest.param(httpx.Response(429), id="429"),
        pytest.param(httpx.Response(502, text="Bad Gateway"), id="502"),
        pytest.param(httpx.Response(503, text="Service Unavailable"), id="503"),
        pytest.param(httpx.Response(504, text="Gateway Timeout"), id="504"),
        pytest.param(httpx.Response(500, content=HTML_500), id="500-html"),
        pytest.param(httpx.Response(200, content=b""), id="200-empty"),
        pytest.param(
            httpx.Response(200, content=b'[{"customerCallbackId": "d8'), id="200-truncated"
        ),
        pytest.param(httpx.Response(200, content=b"\xff\xfe{]garbage"), id="200-garbled"),
    ],
)
async def test_list_failure_is_retried(router: respx.MockRouter, first: Any) -> None:
    """A retryable failure of a list call is followed by a second send that succeeds."""
    route = router.post(LIST_PATH).mock(side_effect=[first, ok_list()])
    records = await list_once(retry=NO_WAIT)
    assert route.call_count == 2
    assert [r.customer_callback_id for r in records] == [CALLBACK_ID]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(
            httpx.Response(400, json={"message": "InvalidInput", "code": 40001}), APIError, id="400"
        ),
        pytest.param(httpx.Response(404, text="Not Found"), APIError, id="404"),
        pytest.param(
            httpx.Response(405, json={"message": "method.not.allowed"}), APIError, id="405"
        ),
        pytest.param(
            httpx.Response(512, json={"message": "Something failed", "status": 512}),
            APIError,
            id="512",
        ),
        pytest.param(
            httpx.Response(500, json={"message": "NullPointerException", "status": 500}),
            ServerError,
            id="500-envelope",
        ),
        pytest.param(httpx.Response(501, text="Not Implemented"), ServerError, id="501"),
    ],
)
async def test_list_failure_is_not_retried(
    router: respx.MockRouter, answer: httpx.Response, error: type[AmeyoError]
) -> None:
    """4xx other than 429, 512 and Ameyo envelopes end the call after one send."""
    route = router.post(LIST_PATH).mock(side_effect=[answer, ok_list()])
    with pytest.raises(error) as info:
        await list_once(retry=NO_WAIT)
    assert route.call_count == 1
    assert info.value.attempts == 1
    assert "attempts" not in str(info.value)


async def test_delete_undecodable_2xx_is_asked_again(router: respx.MockRouter) -> None:
    """A DELETE's 2xx with an unexpected body may have been carried out: the retry decides.

    Here the retry's "OK" is plain success (its "not found" would be the first
    attempt's doing: see the lost-answer test below).
    """
    route = router.delete(DELETE_PATH).mock(
        side_effect=[
            httpx.Response(200, text="<html>welcome</html>"),
            httpx.Response(200, text="OK"),
        ]
    )
    await delete_once(retry=NO_WAIT)
    assert route.call_count == 2


async def test_not_found_after_an_html_2xx_is_still_not_found(router: respx.MockRouter) -> None:
    """A 2xx HTML page may come from a proxy that never passed the DELETE on: asked again,
    a "not found" then is the truth about the id, not a delete of this call's."""
    route = router.delete(DELETE_PATH).mock(
        side_effect=[
            httpx.Response(200, text="<html>welcome</html>"),
            httpx.Response(512, json=NOT_FOUND),
        ]
    )
    with pytest.raises(CallbackNotFoundError):
        await delete_once(retry=NO_WAIT)
    assert route.call_count == 2


async def test_delete_undecodable_2xx_every_time_is_a_format_error(
    router: respx.MockRouter,
) -> None:
    """An answer that never says "OK" ends as ResponseFormatError after every attempt."""
    route = router.delete(DELETE_PATH).mock(return_value=httpx.Response(200, text=""))
    with pytest.raises(ResponseFormatError) as info:
        await delete_once(retry=NO_WAIT)
    assert route.call_count == 3
    assert info.value.attempts == 3
    assert info.value.status_code == 200


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.get_callbacks(CallbackFilter.campaign(0)), id="campaign-0"),
        pytest.param(
            lambda c: c.get_callbacks(CallbackFilter.campaign(6), limit=500), id="limit-500"
        ),
        pytest.param(lambda c: c.delete_callback(""), id="blank-id"),
    ],
)
async def test_argument_errors_send_nothing(router: respx.MockRouter, call: Any) -> None:
    """Argument mistakes raise ValueError before any request, and are not retried."""
    route = router.route().mock(return_value=ok_list())
    async with make_client(retry=NO_WAIT) as client:
        with pytest.raises(ValueError):
            await call(client)
    assert route.call_count == 0


async def test_policy_none_turns_retries_off(router: respx.MockRouter) -> None:
    """With RetryPolicy.none() a 503 is raised after one send."""
    route = router.post(LIST_PATH).mock(side_effect=[httpx.Response(503), ok_list()])
    with pytest.raises(ServerError) as info:
        await list_once(retry=RetryPolicy.none())
    assert route.call_count == 1
    assert info.value.attempts == 1


async def test_default_policy_sends_six_times_then_gives_up(router: respx.MockRouter) -> None:
    """The default policy sends a failing call six times, then raises the last error."""
    statuses = [503, 502, 504, 429, 503, 502]
    route = router.post(LIST_PATH).mock(side_effect=[httpx.Response(s) for s in statuses])
    with pytest.raises(ServerError) as info:
        await list_once(clock=FakeClock())  # the back-off waits on the client's clock
    assert route.call_count == 6
    assert info.value.status_code == 502  # the last answer, not the first
    assert info.value.attempts == 6
    assert "(after 6 attempts)" in str(info.value)


async def test_exhausted_transport_errors_report_attempts(router: respx.MockRouter) -> None:
    """Three dropped connections give a TransportError carrying attempts=3."""
    route = router.post(LIST_PATH).mock(
        side_effect=httpx.RemoteProtocolError("server disconnected")
    )
    with pytest.raises(TransportError) as info:
        await list_once(retry=NO_WAIT)
    assert route.call_count == 3
    assert info.value.attempts == 3
    assert isinstance(info.value.cause, httpx.RemoteProtocolError)
    assert "after 3 attempts" in str(info.value)


async def test_time_budget_ends_the_retries(router: respx.MockRouter) -> None:
    """RetryPolicy.timeout bounds a call's retries and waits, whatever attempts says."""
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(503))
    policy = RetryPolicy(attempts=100, timeout=0.1, wait_initial=0.03, wait_max=0.03, wait_jitter=0)
    started = time.perf_counter()
    with pytest.raises(ServerError) as info:
        await list_once(retry=policy)
    assert time.perf_counter() - started < 2.0  # 100 attempts would take 3 s of back-off
    assert route.call_count < 10
    assert info.value.attempts == route.call_count


# --------------------------------------------------------------------------
# Retry-After


async def test_retry_after_seconds_is_waited_on_the_clock(router: respx.MockRouter) -> None:
    """Retry-After: 7 -> the client sleeps 7 s on its clock between the two sends."""
    log: list[tuple[str, float]] = []
    clock = FakeClock(log=log)

    def server(request: httpx.Request) -> httpx.Response:
        log.append(("send", clock.now()))
        if len(log) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return ok_list()

    router.post(LIST_PATH).mock(side_effect=server)
    await list_once(retry=NO_WAIT, clock=clock)
    assert log == [("send", 1000.0), ("sleep", 7.0), ("send", 1007.0)]


async def test_retry_after_http_date_is_waited_on_the_clock(router: respx.MockRouter) -> None:
    """Retry-After as an HTTP date 30 s ahead -> a sleep of about 30 s before the next send."""
    clock = FakeClock()
    when = formatdate(time.time() + 30, usegmt=True)
    route = router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": when}), ok_list()]
    )
    await list_once(retry=NO_WAIT, clock=clock)
    assert route.call_count == 2
    assert len(clock.sleeps) == 1
    # The date drops the fraction of a second (up to 1 s less), and a stall
    # between formatting it and the client reading it comes off too: 25 s
    # leaves room for a loaded machine and still tells 30 s from none.
    assert 25.0 < clock.sleeps[0] <= 30.0


async def test_retry_after_replaces_the_computed_backoff(router: respx.MockRouter) -> None:
    """With Retry-After the back-off is skipped: only the server's wait is slept, on the clock."""
    clock = FakeClock()
    route = router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3"}), ok_list()]
    )
    policy = RetryPolicy(attempts=2, wait_initial=5.0, wait_max=5.0, wait_jitter=0)
    await list_once(retry=policy, clock=clock)
    assert clock.sleeps == [3.0]
    assert route.call_count == 2


async def test_retry_after_above_the_cap_gives_up_at_once(router: respx.MockRouter) -> None:
    """Retry-After above max_retry_after -> RateLimitedError with retry_after, after one send."""
    clock = FakeClock()
    route = router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3600"}), ok_list()]
    )
    with pytest.raises(RateLimitedError) as info:
        await list_once(clock=clock)
    assert route.call_count == 1
    assert info.value.retry_after == 3600
    assert info.value.attempts == 1
    assert clock.sleeps == []


async def test_max_retry_after_is_configurable(router: respx.MockRouter) -> None:
    """A larger max_retry_after honours a Retry-After the default cap refuses."""
    clock = FakeClock()
    route = router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "120"}), ok_list()]
    )
    await list_once(retry=RetryPolicy(max_retry_after=300, timeout=600), clock=clock)
    assert route.call_count == 2
    assert clock.sleeps == [120.0]


async def test_retry_after_past_the_call_budget_gives_up_at_once(
    router: respx.MockRouter,
) -> None:
    """Retry-After 50 s with 30 s of budget left: raised after one send, no wait, no second try."""
    clock = FakeClock()
    route = router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "50"}), ok_list()]
    )
    with pytest.raises(ServerError) as info:
        await list_once(retry=RetryPolicy(timeout=30), clock=clock)
    assert route.call_count == 1
    assert info.value.attempts == 1
    assert clock.sleeps == []


# --------------------------------------------------------------------------
# The DELETE whose answer was lost


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("server disconnected"), id="dropped"),
        pytest.param(httpx.Response(502), id="502"),
        pytest.param(httpx.Response(504), id="504"),
        pytest.param(httpx.Response(500, content=HTML_500), id="500-html"),
        pytest.param(httpx.Response(200, content=b""), id="200-empty"),
        pytest.param(httpx.Response(200, content=b'"O'), id="200-ok-cut-short"),
    ],
)
async def test_lost_answer_then_not_found_counts_as_deleted(
    router: respx.MockRouter, first: Any
) -> None:
    """An attempt whose answer was lost, then 512 not-found: the first attempt deleted it."""
    route = router.delete(DELETE_PATH).mock(
        side_effect=[first, httpx.Response(512, json=NOT_FOUND)]
    )
    async with make_client(retry=NO_WAIT) as client:
        result = await client.delete_callback(CALLBACK_ID)  # type: ignore[func-returns-value]
    assert result is None
    assert route.call_count == 2


async def test_delete_not_found_alone_raises(router: respx.MockRouter) -> None:
    """A DELETE whose only answer is 512 not-found raises CallbackNotFoundError, sent once."""
    route = router.delete(DELETE_PATH).mock(return_value=httpx.Response(512, json=NOT_FOUND))
    with pytest.raises(CallbackNotFoundError) as info:
        await delete_once(retry=NO_WAIT)
    assert route.call_count == 1
    assert info.value.callback_id == CALLBACK_ID


async def test_delete_unavailable_then_not_found_raises(router: respx.MockRouter) -> None:
    """A 503 means the server did not act: a not-found retry after it is still an error."""
    route = router.delete(DELETE_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(512, json=NOT_FOUND)]
    )
    with pytest.raises(CallbackNotFoundError) as info:
        await delete_once(retry=NO_WAIT)
    assert route.call_count == 2
    assert info.value.attempts == 2


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        pytest.param(httpx.ConnectTimeout("no route"), id="connect-timeout"),
    ],
)
async def test_never_connected_then_not_found_raises(router: respx.MockRouter, first: Any) -> None:
    """A connection never made sent nothing: a not-found retry after it is still an error."""
    route = router.delete(DELETE_PATH).mock(
        side_effect=[first, httpx.Response(512, json=NOT_FOUND)]
    )
    with pytest.raises(CallbackNotFoundError):
        await delete_once(retry=NO_WAIT)
    assert route.call_count == 2


def test_aiohttp_connector_error_counts_as_never_sent() -> None:
    """On the aiohttp stack, a refused connection is told apart from a dropped one."""
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        OSError(111, "refused"),
    )
    dropped = aiohttp.ServerDisconnectedError()
    spec = build_delete_request("d810-1")
    kinds = [aiohttp_kind(exc) for exc in (refused, dropped)]
    assert kinds == ["connection_refused", "connection_lost"]
    assert failure("connection_refused", refused, spec=spec).request_sent is False
    assert failure("connection_lost", dropped, spec=spec).request_sent is True


# --------------------------------------------------------------------------
# Logging


async def test_logs_each_attempt_and_each_retry(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """One DEBUG line per attempt (method, path, status, ms) and one WARNING per retry."""
    caplog.set_level(logging.DEBUG, logger="ameyo_callbacks")
    router.post(LIST_PATH).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(503), ok_list()]
    )
    await list_once(retry=NO_WAIT)
    ours = [r for r in caplog.records if r.name == "ameyo_callbacks"]
    debug = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert len(debug) == 3
    assert re.fullmatch(rf"POST {LIST_PATH} -> ConnectError after \d+\.\d ms", debug[0])
    assert re.fullmatch(rf"POST {LIST_PATH} -> 503 in \d+\.\d ms", debug[1])
    assert re.fullmatch(rf"POST {LIST_PATH} -> 200 in \d+\.\d ms", debug[2])
    assert len(warnings) == 2
    assert "ConnectError" in warnings[0]
    assert "HTTP 503" in warnings[1]
    assert all(f"POST {LIST_PATH}" in w and "back-off" in w for w in warnings)
    assert all(SESSION not in r.getMessage() for r in caplog.records)


async def test_one_warning_per_retry_whatever_logs_it(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Two retries give two WARNING records in all, both ours."""
    caplog.set_level(logging.WARNING)
    router.post(LIST_PATH).mock(side_effect=[httpx.Response(503), httpx.Response(502), ok_list()])
    await list_once(retry=NO_WAIT)
    warnings = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert [name for name, _ in warnings] == ["ameyo_callbacks", "ameyo_callbacks"]
    assert ["HTTP 503" in text for _, text in warnings] == [True, False]


async def test_a_retried_call_leaves_other_libraries_as_it_found_them(
    router: respx.MockRouter,
) -> None:
    """A retried call adds no filter to any logger and leaves httpx's attributes alone."""
    stamina_filters = list(logging.getLogger("stamina").filters)
    root_filters = list(logging.getLogger().filters)
    httpx_main = httpx.main
    router.post(LIST_PATH).mock(side_effect=[httpx.Response(503), ok_list()])
    await list_once(retry=NO_WAIT)
    assert logging.getLogger("stamina").filters == stamina_filters
    assert logging.getLogger().filters == root_filters
    assert httpx.main is httpx_main


async def test_retry_warning_names_the_retry_after_wait(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The WARNING of a Retry-After retry gives the server's wait, not a back-off."""
    caplog.set_level(logging.DEBUG, logger="ameyo_callbacks")
    router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "4"}), ok_list()]
    )
    await list_once(retry=NO_WAIT, clock=FakeClock())
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "ameyo_callbacks" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert "HTTP 429" in warnings[0]
    assert "Retry-After 4 s" in warnings[0]


async def test_no_warning_when_nothing_is_retried(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """An error that is not retried logs its one attempt and no retry WARNING."""
    caplog.set_level(logging.DEBUG, logger="ameyo_callbacks")
    router.post(LIST_PATH).mock(return_value=httpx.Response(400, json={"message": "InvalidInput"}))
    with pytest.raises(APIError):
        await list_once(retry=NO_WAIT)
    levels = [r.levelno for r in caplog.records if r.name == "ameyo_callbacks"]
    assert levels == [logging.DEBUG]


# --------------------------------------------------------------------------
# The shared gate


def test_gate_defer_never_brings_the_moment_closer() -> None:
    """defer() keeps the later of the current moment and the new one."""
    clock = FakeClock()
    gate = BackoffGate(clock)
    assert gate.not_before == -math.inf
    gate.defer(10)
    assert gate.not_before == 1010.0
    gate.defer(3)
    assert gate.not_before == 1010.0
    clock.time = 1005.0
    gate.defer(20)
    assert gate.not_before == 1025.0


async def test_gate_wait_returns_at_once_when_open() -> None:
    """An open gate (never deferred, or its moment passed) does not sleep."""
    clock = FakeClock()
    gate = BackoffGate(clock)
    await gate.wait()
    gate.defer(2)
    clock.time += 2
    await gate.wait()
    assert clock.sleeps == []


async def test_gate_wait_sleeps_until_the_moment() -> None:
    """wait() sleeps exactly the time left until the deferred moment."""
    clock = FakeClock()
    gate = BackoffGate(clock)
    gate.defer(5)
    clock.time += 2
    await gate.wait()
    assert clock.sleeps == [3.0]
    assert clock.time == gate.not_before


async def test_gate_wait_loops_when_deferred_meanwhile() -> None:
    """A defer() during the wait makes wait() sleep again for the new moment."""
    clock = FakeClock()
    gate = BackoffGate(clock)
    real_sleep = clock.sleep

    async def sleep_and_defer(seconds: float) -> None:
        await real_sleep(seconds)
        if len(clock.sleeps) == 1:
            gate.defer(4)  # another request got a Retry-After while we slept

    clock.sleep = sleep_and_defer  # type: ignore[method-assign]
    gate.defer(5)
    await gate.wait()
    assert clock.sleeps == [5.0, 4.0]
    assert clock.time == 1009.0


async def test_retry_after_holds_the_other_requests_of_the_client(router: respx.MockRouter) -> None:
    """A 429 Retry-After on one request holds another request's next send until the moment."""
    clock = FakeClock(auto=False)
    sends: list[tuple[str, float]] = []
    b_in_flight = asyncio.Event()
    release_b = asyncio.Event()

    async def server(request: httpx.Request) -> httpx.Response:
        which = "A" if request.url.params["offset"] == "0" else "B"
        sends.append((which, clock.now()))
        first = sum(1 for w, _ in sends if w == which) == 1
        if which == "B" and first:
            b_in_flight.set()
            await release_b.wait()
            return httpx.Response(503)
        if which == "A" and first:
            await b_in_flight.wait()
            return httpx.Response(429, headers={"Retry-After": "5"})
        return httpx.Response(200, json=[])

    router.post(LIST_PATH).mock(side_effect=server)
    # The gate alone: with the adaptive rate (on by default) the two resume spaced
    # apart instead of together (tests/test_limits.py shows that).
    async with make_client(retry=NO_WAIT, clock=clock, adaptive_rate=False) as client:
        tasks = [
            asyncio.create_task(
                client.get_callbacks(CallbackFilter.campaign(6), offset=0, limit=100)
            ),
            asyncio.create_task(
                client.get_callbacks(CallbackFilter.campaign(6), offset=100, limit=100)
            ),
        ]
        await until(lambda: client.gate.not_before == 1005.0)
        release_b.set()  # B's first answer (a 503 without Retry-After) arrives after the 429
        await until(lambda: clock.pending == 2)
        assert sorted(sends) == [("A", 1000.0), ("B", 1000.0)]  # nobody sent again yet
        clock.advance(5)
        results = await asyncio.gather(*tasks)
    assert results == [[], []]
    assert sorted(sends[2:]) == [("A", 1005.0), ("B", 1005.0)]
    assert clock.sleeps == [5.0, 5.0]


async def test_fake_server_sees_no_request_before_the_retry_after_moment() -> None:
    """Against the fake: after a 429 Retry-After: 1, no request arrives before that moment."""
    fake = FakeAmeyo.seeded(250, latency=0.05)  # latency: both requests are in flight at once
    fake.script("list", Fault.rate_limited(retry_after=1), Fault.unavailable(retry_after=None))
    # no_retry_waits: the 503's back-off is 0 s, the Retry-After is still waited
    with no_retry_waits():
        async with fake.client(retry=RetryPolicy(attempts=3)) as client:
            pages = await asyncio.gather(
                client.get_callbacks(CallbackFilter.campaign(6), offset=0, limit=10),
                client.get_callbacks(CallbackFilter.campaign(6), offset=10, limit=10),
            )
    assert [len(p) for p in pages] == [10, 10]
    log = sorted(fake.requests, key=lambda e: e.seq)
    assert [e.status for e in log[:2]] == [429, 503]
    limited = log[0]
    later = [e for e in log if e.started > limited.ended]
    # the 429'd request's retry and the 503'd request's retry (at least)
    assert [e.status for e in later].count(200) == 2
    # 50 ms of slack for the loop's clock; a send that ignored the gate would be ~1 s early.
    assert all(e.started >= limited.ended + 1.0 - 0.05 for e in later)


async def test_back_off_waits_on_the_clients_clock(router: respx.MockRouter) -> None:
    """Every wait between attempts is a sleep of the client's clock, growing as the policy says."""
    clock = FakeClock()
    router.post(LIST_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(503), ok_list()]
    )
    policy = RetryPolicy(attempts=4, wait_initial=1.0, wait_max=3.0, wait_jitter=0)
    await list_once(retry=policy, clock=clock)
    assert clock.sleeps == [1.0, 2.0, 3.0]


async def test_no_retry_waits_zeroes_the_back_off_and_sets_the_attempts(
    router: respx.MockRouter,
) -> None:
    """Inside no_retry_waits(attempts=2) a call waits for nothing and sends twice at most."""
    clock = FakeClock()
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(503))
    with no_retry_waits(attempts=2), pytest.raises(ServerError) as info:
        await list_once(retry=RetryPolicy(wait_initial=5.0, wait_jitter=0), clock=clock)
    assert route.call_count == 2
    assert info.value.attempts == 2
    assert clock.sleeps == []
