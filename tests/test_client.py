"""The client over the wire: requests as sent, arguments, life cycle, surfaced errors.

Requests are checked with respx (httpx's transport mocked; no socket is
opened), so every client here uses ``http_backend="httpx"`` unless the test
is about the backend choice itself.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import unquote

import anyio
import attrs
import httpx
import pytest
import respx
from _support import (
    BASE,
    CALLBACK_ID,
    CALLBACKS_PREFIX,
    CAMPAIGN_PATH,
    DELETE_PATH,
    NOT_FOUND_KEY,
    SAMPLE_DT,
    SAMPLE_MS,
    SESSION,
    SPEC_CALLBACK,
    TENANT_PATH,
    last_request,
    spec_record,
)

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AuthenticationError,
    CallbackFilter,
    CallbackNotFoundError,
    CustomerCallback,
    RetryPolicy,
    TransportError,
)

PREFIX = CALLBACKS_PREFIX
HOUR_MS = 3_600_000
WIRE_RECORD = spec_record(callbackTime=SAMPLE_MS + HOUR_MS)
EXPECTED_RECORD = attrs.evolve(SPEC_CALLBACK, callback_time=SAMPLE_DT + timedelta(hours=1))


def make_client(base_url: str = BASE, **kwargs: Any) -> AmeyoCallbacksClient:
    kwargs.setdefault("session_id", SESSION)
    kwargs.setdefault("http_backend", "httpx")
    kwargs.setdefault("retry", RetryPolicy.none())
    return AmeyoCallbacksClient(base_url, **kwargs)


@pytest.fixture
async def client(router: respx.MockRouter) -> AsyncIterator[AmeyoCallbacksClient]:
    async with make_client() as opened:
        yield opened


# --------------------------------------------------------------------------
# The list calls on the wire


async def test_campaign_list_posts_spec_sample_in_query(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """getFiltered is a POST with the spec's sample values in the query, no body."""
    router.post(CAMPAIGN_PATH).respond(200, json=[WIRE_RECORD])

    records = await client.get_callbacks(
        CallbackFilter.campaign(
            6,
            user_ids=["Stieve"],
            from_date_added=SAMPLE_MS,
            to_date_added=SAMPLE_MS,
            from_date_scheduled=SAMPLE_MS,
            to_date_scheduled=SAMPLE_MS,
        ),
        limit=1,
        offset=0,
        info=False,
    )

    request = last_request(router)
    assert request.method == "POST"
    assert request.url.path == CAMPAIGN_PATH
    assert sorted(request.url.params.multi_items()) == sorted(
        [
            ("limit", "1"),
            ("campaignId", "6"),
            ("offset", "0"),
            ("userIds", "Stieve"),
            ("fromDateAdded", str(SAMPLE_MS)),
            ("toDateAdded", str(SAMPLE_MS)),
            ("fromDateScheduled", str(SAMPLE_MS)),
            ("toDateScheduled", str(SAMPLE_MS)),
            ("info", "false"),
        ]
    )
    assert request.headers["sessionId"] == SESSION
    assert request.content == b""
    assert records == [EXPECTED_RECORD]


async def test_decoded_records_carry_aware_utc_datetimes(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """Epoch milliseconds on the wire come back as aware UTC datetimes, field by field."""
    router.post(CAMPAIGN_PATH).respond(200, json=[WIRE_RECORD])

    (record,) = await client.get_callbacks(CallbackFilter.campaign(6), limit=1)

    for value in (record.callback_time, record.date_added):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert record.date_added == SAMPLE_DT
    assert record.callback_time == SAMPLE_DT + timedelta(hours=1)
    assert dict(record.extra) == {}


async def test_user_ids_are_repeated_query_parameters(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """Several user ids go out as userIds=a&userIds=b, not one comma-joined value."""
    router.post(CAMPAIGN_PATH).respond(200, json=[])

    await client.get_callbacks(CallbackFilter.campaign(6, user_ids=["Stieve", "Maria", "a,b"]))

    request = last_request(router)
    assert request.url.params.get_list("userIds") == ["Stieve", "Maria", "a,b"]
    assert b"userIds=Stieve&userIds=Maria" in request.url.query


@pytest.mark.parametrize("list_method", ["GET", "get"])
async def test_list_method_get_sends_the_same_query_as_get(
    router: respx.MockRouter, list_method: str
) -> None:
    """list_method="GET" sends getFiltered as a GET with the same query and no body."""
    router.get(CAMPAIGN_PATH).respond(200, json=[WIRE_RECORD])

    async with make_client(list_method=list_method) as client:
        records = await client.get_callbacks(
            CallbackFilter.campaign(6, user_ids=["Stieve"]), limit=1, offset=0
        )

    request = last_request(router)
    assert request.method == "GET"
    assert sorted(request.url.params.multi_items()) == sorted(
        [("limit", "1"), ("campaignId", "6"), ("offset", "0"), ("userIds", "Stieve")]
    )
    assert request.headers["sessionId"] == SESSION
    assert request.content == b""
    assert records == [EXPECTED_RECORD]


async def test_unset_optional_filters_are_not_sent(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """With only a campaign id the query holds limit, campaignId and offset, nothing else."""
    router.post(CAMPAIGN_PATH).respond(200, json=[])

    await client.get_callbacks(CallbackFilter.campaign(6))

    request = last_request(router)
    assert sorted(request.url.params.multi_items()) == sorted(
        [("limit", "100"), ("campaignId", "6"), ("offset", "0")]
    )


@pytest.mark.parametrize(
    ("info", "expected"),
    [(None, []), (False, ["false"]), (True, ["true"])],
)
async def test_info_is_sent_only_when_given(
    router: respx.MockRouter,
    client: AmeyoCallbacksClient,
    info: bool | None,
    expected: list[str],
) -> None:
    """info is left out unless given; info=False sends info=false."""
    router.post(CAMPAIGN_PATH).respond(200, json=[])

    await client.get_callbacks(CallbackFilter.campaign(6), info=info)

    assert last_request(router).url.params.get_list("info") == expected


async def test_aware_datetimes_become_epoch_milliseconds(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """Aware datetimes in any zone are sent as epoch milliseconds of the same instant."""
    router.post(CAMPAIGN_PATH).respond(200, json=[])
    india = timezone(timedelta(hours=5, minutes=30))

    await client.get_callbacks(
        CallbackFilter.campaign(
            6,
            from_date_added=SAMPLE_DT.astimezone(india),
            to_date_added=SAMPLE_DT + timedelta(hours=1),
            from_date_scheduled=SAMPLE_DT + timedelta(microseconds=999),
            to_date_scheduled=SAMPLE_DT + timedelta(days=1),
        )
    )

    params = last_request(router).url.params
    assert params["fromDateAdded"] == str(SAMPLE_MS)
    assert params["toDateAdded"] == str(SAMPLE_MS + HOUR_MS)
    assert params["fromDateScheduled"] == str(SAMPLE_MS)
    assert params["toDateScheduled"] == str(SAMPLE_MS + 24 * HOUR_MS)


async def test_tenant_list_has_its_default_path_and_no_campaign_id(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """The tenant list POSTs getFiltered's query, minus campaignId, to getTenantUserCallbacks."""
    router.post(TENANT_PATH).respond(200, json=[WIRE_RECORD])

    records = await client.get_callbacks(
        CallbackFilter.tenant(user_ids=["Stieve"]), limit=1, offset=0
    )

    request = last_request(router)
    assert request.method == "POST"
    assert request.url.path == TENANT_PATH
    assert sorted(request.url.params.multi_items()) == sorted(
        [("limit", "1"), ("offset", "0"), ("userIds", "Stieve")]
    )
    assert request.headers["sessionId"] == SESSION
    assert request.content == b""
    assert records == [EXPECTED_RECORD]


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("tenantCallbacks", f"{PREFIX}/tenantCallbacks"),
        ("nested/tenant/", f"{PREFIX}/nested/tenant"),
        ("/custom/api/tenantCallbacks", "/custom/api/tenantCallbacks"),
        ("/custom/api/tenantCallbacks/", "/custom/api/tenantCallbacks"),
    ],
)
async def test_tenant_list_at_custom_path(
    router: respx.MockRouter, setting: str, path: str
) -> None:
    """tenant_callbacks_path is below the callbacks prefix, or absolute when it starts with /."""
    router.post(path).respond(200, json=[])

    async with make_client(tenant_callbacks_path=setting) as client:
        await client.get_callbacks(CallbackFilter.tenant(), limit=1)

    request = last_request(router)
    assert request.url.path == path
    assert request.headers["sessionId"] == SESSION


# --------------------------------------------------------------------------
# The delete call on the wire


@pytest.mark.parametrize(
    ("callback_id", "segment"),
    [
        (CALLBACK_ID, CALLBACK_ID),
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("?x", "%3Fx"),
        ("#x", "%23x"),
        ("%2F", "%252F"),
        ("a b", "a%20b"),
    ],
)
async def test_delete_sends_id_as_one_segment_and_in_body(
    router: respx.MockRouter, client: AmeyoCallbacksClient, callback_id: str, segment: str
) -> None:
    """DELETE puts the id percent-encoded as exactly one path segment and in the JSON body."""
    router.route(method="DELETE").respond(200, text="OK")

    assert await client.delete_callback(callback_id) is None

    request = last_request(router)
    assert request.method == "DELETE"
    assert request.url.raw_path == f"{PREFIX}/{segment}".encode()
    assert request.url.query == b""
    assert request.url.fragment == ""
    last_segment = request.url.raw_path.decode().removeprefix(f"{PREFIX}/")
    assert "/" not in last_segment
    assert unquote(last_segment) == callback_id
    assert request.headers["sessionId"] == SESSION
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"customerCallbackId": callback_id}


@pytest.mark.parametrize("body", [b"OK", b"ok", b'"OK"', b'"ok"'])
async def test_delete_accepts_every_ok_answer(
    router: respx.MockRouter, client: AmeyoCallbacksClient, body: bytes
) -> None:
    """DELETE succeeds on OK and ok, bare or JSON-quoted, after one request."""
    route = router.delete(f"{PREFIX}/{CALLBACK_ID}").respond(200, content=body)

    assert await client.delete_callback(CALLBACK_ID) is None
    assert route.call_count == 1


# --------------------------------------------------------------------------
# Base URL


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("http://ameyo.example", "http://ameyo.example:8888"),
        ("https://ameyo.example", "https://ameyo.example:8443"),
        ("http://ameyo.example:9000", "http://ameyo.example:9000"),
        ("https://ameyo.example:443", "https://ameyo.example:443"),
        ("http://ameyo.example:80", "http://ameyo.example:80"),
        ("http://ameyo.example/", "http://ameyo.example:8888"),
        ("http://ameyo.example/ameyo/", "http://ameyo.example:8888/ameyo"),
        ("https://ameyo.example:8443/a/b", "https://ameyo.example:8443/a/b"),
        ("http://[::1]", "http://[::1]:8888"),
    ],
)
def test_base_url_gets_the_spec_default_port(given: str, normalised: str) -> None:
    """No port gives 8888 (http) or 8443 (https); an explicit port and a prefix are kept."""
    assert make_client(given).base_url == normalised


async def test_base_url_prefix_is_kept_in_requests() -> None:
    """A base URL prefix goes in front of the API path of every request."""
    with respx.mock(assert_all_called=False) as router:
        router.route().respond(200, json=[])
        async with make_client("http://ameyo.example/gateway/") as client:
            await client.get_callbacks(CallbackFilter.campaign(6), limit=1)

        assert str(last_request(router).url).startswith(
            f"http://ameyo.example:8888/gateway{CAMPAIGN_PATH}?"
        )


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("ameyo.example:8888", "expected http"),
        ("ameyo.example", "expected http"),
        ("ftp://ameyo.example", "expected http"),
        ("http://", "expected http"),
        ("http://ameyo.example?tenant=1", "expected http"),
        ("http://ameyo.example#top", "expected http"),
        ("http://admin:s3cr3t-pw@ameyo.example", "LoginSession"),
    ],
)
def test_bad_base_url_says_what_is_expected(base_url: str, expected: str) -> None:
    """A base URL without http(s) scheme and host, or with credentials or a query, is refused."""
    with pytest.raises(ValueError, match="base_url") as caught:
        make_client(base_url)
    assert expected in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "base_url",
    ["ftp://ameyo.example/?sessionId=s3cr3t-pw", "http://ameyo.example/?sessionId=s3cr3t-pw"],
)
def test_bad_base_url_error_does_not_echo_its_query(base_url: str) -> None:
    """A refused base URL is never quoted with its query string (it may hold a secret)."""
    with pytest.raises(ValueError, match="base_url") as caught:
        make_client(base_url)
    assert "s3cr3t-pw" not in str(caught.value)


def test_base_url_of_wrong_type_is_refused() -> None:
    """A base URL that is not a string is a TypeError naming base_url."""
    with pytest.raises(TypeError, match="base_url"):
        make_client(b"http://ameyo.example")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Bad arguments: refused before any request


# Each numeric, boolean and iterable argument: tests/test_arguments.py.


async def test_http_client_and_transport_together_are_refused() -> None:
    """Passing both http_client and transport is a ValueError naming both."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=[]))
    async with httpx.AsyncClient(transport=transport) as http_client:
        with pytest.raises(ValueError, match="http_client or transport"):
            make_client(http_client=http_client, transport=transport)


def test_timeout_in_seconds_is_accepted() -> None:
    """A plain number of seconds is a valid timeout (only wrong types are refused)."""
    assert make_client(timeout=5).base_url == BASE


# --------------------------------------------------------------------------
# Life cycle


class RecordingTransport(httpx.MockTransport):
    """A mock transport that records its requests and whether it was closed."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.closed = False
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=[WIRE_RECORD])

    async def aclose(self) -> None:
        self.closed = True


async def test_async_with_opens_and_closes_the_http_client(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entering opens an httpx client; leaving closes it and marks the client closed."""
    closed: list[httpx.AsyncClient] = []
    original = httpx.AsyncClient.aclose

    async def spy(self: httpx.AsyncClient) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(httpx.AsyncClient, "aclose", spy)
    client = make_client()
    assert client.http_backend == "httpx"

    async with client as entered:
        assert entered is client
        assert client.http_backend == "httpx"
        assert repr(client).endswith(" open>")
        assert closed == []

    assert len(closed) == 1
    assert closed[0].is_closed
    assert repr(client).endswith(" closed>")


async def test_call_after_aclose_raises_runtime_error(router: respx.MockRouter) -> None:
    """After aclose() a call raises RuntimeError and sends nothing."""
    router.route().respond(200, json=[])
    client = make_client()
    async with client:
        pass
    await client.aclose()  # closing twice is harmless

    with pytest.raises(RuntimeError, match="closed"):
        await client.get_callbacks(CallbackFilter.campaign(6))
    with pytest.raises(RuntimeError, match="closed"):
        await client.delete_callback(CALLBACK_ID)
    assert router.calls.call_count == 0


async def test_caller_http_client_is_used_and_left_open() -> None:
    """A caller's http_client carries the requests and is not closed by the client."""
    transport = RecordingTransport()
    async with httpx.AsyncClient(transport=transport) as http_client:
        async with make_client(http_client=http_client) as client:
            records = await client.get_callbacks(CallbackFilter.campaign(6), limit=1)
            assert client.http_backend == "custom"

        assert records == [EXPECTED_RECORD]
        assert len(transport.requests) == 1
        assert transport.requests[0].headers["sessionId"] == SESSION
        assert not http_client.is_closed
        assert not transport.closed
        response = await http_client.get("http://ameyo.example:8888/still-usable")
        assert response.status_code == 200


async def test_transport_is_wrapped_and_closed_by_the_client() -> None:
    """A transport= is wrapped in an httpx client the client owns and closes."""
    transport = RecordingTransport()

    async with make_client(transport=transport) as client:
        records = await client.get_callbacks(CallbackFilter.campaign(6), limit=1)
        assert not transport.closed

    assert records == [EXPECTED_RECORD]
    assert [r.url.path for r in transport.requests] == [CAMPAIGN_PATH]
    assert transport.closed


@pytest.fixture
async def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Creating a socket or resolving a name fails the test (and is recorded).

    Async, so that it runs once the test's event loop (and its own sockets) exist.
    """
    tried: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: object, **kwargs: object) -> Any:
            tried.append(what)
            msg = f"{what}: a unit test opens no socket"
            raise AssertionError(msg)

        return refused

    monkeypatch.setattr(socket.socket, "__init__", refuse("socket"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    return tried


async def test_respx_with_its_default_settings_mocks_a_default_client(
    no_sockets: list[str],
) -> None:
    """``respx.mock(base_url=...)``, nothing else, answers a client built without HTTP arguments."""
    with respx.mock(base_url=BASE) as mock:
        lists = mock.post(CAMPAIGN_PATH).respond(200, json=[WIRE_RECORD])
        deletes = mock.delete(DELETE_PATH).respond(200, text='"OK"')
        async with AmeyoCallbacksClient(BASE, session_id=SESSION) as client:
            assert await client.get_callbacks(CallbackFilter.campaign(6), limit=1) == [
                EXPECTED_RECORD
            ]
            await client.delete_callback(CALLBACK_ID)
    assert (lists.call_count, deletes.call_count) == (1, 1)
    assert deletes.calls.last.request.headers["sessionId"] == SESSION
    assert no_sockets == []


async def test_event_hooks_of_the_default_client_see_every_request(
    router: respx.MockRouter,
) -> None:
    """Hooks added to ``client.http_client`` run once per request and once per answer."""
    router.post(CAMPAIGN_PATH).respond(200, json=[])
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(f"request {request.method}")

    async def on_response(response: httpx.Response) -> None:
        seen.append(f"response {response.status_code}")

    async with AmeyoCallbacksClient(BASE, session_id=SESSION) as client:
        http = client.http_client
        assert http is not None
        http.event_hooks["request"].append(on_request)
        http.event_hooks["response"].append(on_response)
        for _ in range(2):
            await client.get_callbacks(CallbackFilter.campaign(6))
    assert seen == ["request POST", "response 200"] * 2


async def test_aiohttp_backend_has_no_httpx_client() -> None:
    """``http_backend="aiohttp"`` is named as such and exposes no httpx client."""
    async with AmeyoCallbacksClient(BASE, session_id=SESSION, http_backend="aiohttp") as client:
        assert client.http_backend == "aiohttp"
        assert client.http_client is None


async def test_http_backend_httpx_forces_httpx_on_asyncio(router: respx.MockRouter) -> None:
    """http_backend="httpx" uses httpx's own transport on asyncio (so respx sees it)."""
    route = router.post(CAMPAIGN_PATH).respond(200, json=[])

    async with AmeyoCallbacksClient(BASE, session_id=SESSION, http_backend="httpx") as client:
        assert client.http_backend == "httpx"
        assert await client.get_callbacks(CallbackFilter.campaign(6)) == []

    assert route.call_count == 1


def test_default_client_works_on_trio_with_respx() -> None:
    """On trio the default client is the same httpx stack, and respx (default settings) mocks it."""

    async def main() -> tuple[str, list[CustomerCallback], int]:
        with respx.mock(base_url=BASE) as router:
            route = router.post(CAMPAIGN_PATH).respond(200, json=[WIRE_RECORD])
            async with AmeyoCallbacksClient(BASE, session_id=SESSION) as client:
                backend = client.http_backend
                records = await client.get_callbacks(CallbackFilter.campaign(6), limit=1)
            calls = route.call_count
        return backend, records, calls

    assert anyio.run(main, backend="trio") == ("httpx", [EXPECTED_RECORD], 1)


# --------------------------------------------------------------------------
# Errors surfaced through the client


async def test_invalid_session_with_fixed_id_is_authentication_error(
    router: respx.MockRouter,
) -> None:
    """403 invalid.session.id with a fixed session raises AuthenticationError saying what to do."""
    route = router.post(CAMPAIGN_PATH).respond(
        403, json={"message": None, "code": 99999, "info": "invalid.session.id", "status": 403}
    )

    async with make_client(retry=RetryPolicy()) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_callbacks(CallbackFilter.campaign(6))

    error = caught.value
    assert error.status_code == 403
    assert error.key == "invalid.session.id"
    assert error.error_code == 99999
    text = str(error)
    assert "expired or invalid" in text
    assert "log in again" in text
    assert "LoginSession" in text
    assert route.call_count == 1  # a fixed session is neither retried nor renewed


async def test_unknown_callback_id_is_callback_not_found(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """512 with the invalid-callback key raises CallbackNotFoundError carrying the id."""
    router.delete(f"{PREFIX}/{CALLBACK_ID}").respond(
        512,
        json={
            "message": None,
            "info": json.dumps([NOT_FOUND_KEY, CALLBACK_ID]),
            "status": 512,
            "errorCode": 512,
        },
    )

    with pytest.raises(CallbackNotFoundError) as caught:
        await client.delete_callback(CALLBACK_ID)

    error = caught.value
    assert error.callback_id == CALLBACK_ID
    assert error.status_code == 512
    assert error.key == NOT_FOUND_KEY
    assert error.method == "DELETE"
    assert error.path == f"{PREFIX}/{CALLBACK_ID}"


async def test_connect_error_is_transport_error_wrapping_it(
    router: respx.MockRouter, client: AmeyoCallbacksClient
) -> None:
    """A connection failure raises TransportError with the httpx error as its cause."""
    route = router.post(CAMPAIGN_PATH).mock(side_effect=httpx.ConnectError)

    with pytest.raises(TransportError) as caught:
        await client.get_callbacks(CallbackFilter.campaign(6))

    error = caught.value
    assert isinstance(error.cause, httpx.ConnectError)
    assert error.__cause__ is error.cause
    assert not error.is_timeout
    assert error.attempts == 1
    assert (error.method, error.path) == ("POST", CAMPAIGN_PATH)
    assert "ConnectError" in str(error)
    assert route.call_count == 1
