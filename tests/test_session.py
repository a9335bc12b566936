"""Sessions: a fixed id, login and single-flight re-login, and secrets kept out of texts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx
from _support import BASE, CAMPAIGN_PATH, SESSION, TOKEN

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    APIError,
    AuthenticationError,
    CallbackFilter,
    LoginSession,
    StaticSession,
)
from ameyo_callbacks._protocol import DEFAULT_LOGIN_PATH
from ameyo_callbacks.testing import FakeAmeyo

pytestmark = pytest.mark.usefixtures("zero_backoff")
LIST_PATH = CAMPAIGN_PATH
USER = "admin"
INVALID_SESSION = {"message": None, "code": 99999, "info": "invalid.session.id", "status": 403}


def make_client(session: Any, **kwargs: Any) -> AmeyoCallbacksClient:
    return AmeyoCallbacksClient(BASE, session_id=session, http_backend="httpx", **kwargs)


def logged_in(session_id: str) -> httpx.Response:
    """The login answer of Ameyo 4.x (WIRE_NOTES)."""
    return httpx.Response(
        200, json={"userSessionInfo": {"sessionId": session_id, "userId": USER}, "status": "ok"}
    )


def refuse(sessions: set[str]) -> Any:
    """A list endpoint that answers 403 invalid.session.id to these session ids, [] otherwise."""

    def server(request: httpx.Request) -> httpx.Response:
        if request.headers.get("sessionId") in sessions:
            return httpx.Response(403, json=INVALID_SESSION)
        return httpx.Response(200, json=[])

    return server


def sent_sessions(route: respx.Route) -> list[str | None]:
    return [call.request.headers.get("sessionId") for call in route.calls]


# --------------------------------------------------------------------------
# A fixed session id


async def test_static_session_is_sent_on_every_call(router: respx.MockRouter) -> None:
    """A string session_id goes out as the sessionId header, unchanged, on each call."""
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(SESSION) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))
        await client.get_callbacks(CallbackFilter.campaign(6), offset=100)
    assert sent_sessions(route) == [SESSION, SESSION]


async def test_static_session_expired_raises_authentication_error(router: respx.MockRouter) -> None:
    """A fixed session refused with 403 invalid.session.id: AuthenticationError, not retried."""
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(403, json=INVALID_SESSION))
    async with make_client(SESSION) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_callbacks(CallbackFilter.campaign(6))
    assert route.call_count == 1
    text = str(info.value)
    assert "expired or invalid" in text
    assert "log in again" in text
    assert "LoginSession" in text
    assert info.value.key == "invalid.session.id"
    assert SESSION not in text


async def test_session_echoed_in_an_error_is_scrubbed(router: respx.MockRouter) -> None:
    """A server that echoes the session id in an error body does not leak it into the exception."""
    body = {"message": f"No rights for session {SESSION}", "info": None, "status": 512}
    router.post(LIST_PATH).mock(return_value=httpx.Response(512, json=body))
    async with make_client(SESSION) as client:
        with pytest.raises(APIError) as info:
            await client.get_callbacks(CallbackFilter.campaign(6))
    assert "No rights for session" in str(info.value)
    assert SESSION not in str(info.value)
    assert SESSION not in info.value.snippet
    assert SESSION not in (info.value.message or "")


def test_static_session_rejects_a_blank_id() -> None:
    """StaticSession needs a non-empty string."""
    with pytest.raises(ValueError, match="non-empty"):
        StaticSession("  ")


# --------------------------------------------------------------------------
# LoginSession


async def test_first_call_logs_in_then_sends_the_new_session(router: respx.MockRouter) -> None:
    """The first call POSTs the login JSON without a session, then sends sessionId: S1."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(return_value=logged_in("S1"))
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    session = LoginSession(USER, TOKEN, domain="ameyo", force_login=True)
    async with make_client(session) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))
    assert DEFAULT_LOGIN_PATH == "/ameyorestapi/userLogin/login"
    assert login.call_count == 1
    request = login.calls[0].request
    assert request.method == "POST"
    assert json.loads(request.content) == {
        "domain": "ameyo",
        "userId": USER,
        "token": TOKEN,
        "forceLogin": True,
    }
    assert "sessionId" not in request.headers
    assert sent_sessions(route) == ["S1"]


async def test_login_defaults_leave_out_domain_and_do_not_force(router: respx.MockRouter) -> None:
    """Without domain= the body has no domain, and forceLogin is false."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(return_value=logged_in("S1"))
    router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))
    assert json.loads(login.calls[0].request.content) == {
        "userId": USER,
        "token": TOKEN,
        "forceLogin": False,
    }


async def test_login_accepts_a_flat_session_id_at_another_path(router: respx.MockRouter) -> None:
    """A login_path answering {"sessionId": ...} (Exotel's shape) works as well."""
    path = "/ameyorestapi/session/userLogin"
    login = router.post(path).mock(return_value=httpx.Response(200, json={"sessionId": "S9"}))
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(LoginSession(USER, TOKEN, login_path=path)) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))
    assert login.call_count == 1
    assert sent_sessions(route) == ["S9"]


async def test_session_is_reused_across_calls(router: respx.MockRouter) -> None:
    """Once logged in, later calls reuse the session without logging in again."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(side_effect=[logged_in("S1"), logged_in("S2")])
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        for offset in (0, 100, 200):
            await client.get_callbacks(CallbackFilter.campaign(6), offset=offset)
    assert login.call_count == 1
    assert sent_sessions(route) == ["S1", "S1", "S1"]


async def test_login_answered_503_is_retried(router: respx.MockRouter) -> None:
    """The login call follows the retry policy like a read: a 503 then a session."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(side_effect=[httpx.Response(503), logged_in("S1")])
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))
    assert login.call_count == 2
    assert sent_sessions(route) == ["S1"]


async def test_expired_session_logs_in_again_and_repeats_once(router: respx.MockRouter) -> None:
    """403 invalid.session.id -> one new login, and the request repeated with the new id."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(side_effect=[logged_in("S1"), logged_in("S2")])
    route = router.post(LIST_PATH).mock(side_effect=refuse({"S1"}))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        assert await client.get_callbacks(CallbackFilter.campaign(6)) == []
    assert login.call_count == 2
    assert sent_sessions(route) == ["S1", "S2"]


async def test_repeat_refused_again_raises_without_looping(router: respx.MockRouter) -> None:
    """When the fresh session is refused too, AuthenticationError is raised: no third login."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(
        side_effect=[logged_in("S1"), logged_in("S2"), logged_in("S3")]
    )
    route = router.post(LIST_PATH).mock(side_effect=refuse({"S1", "S2", "S3"}))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_callbacks(CallbackFilter.campaign(6))
    assert login.call_count == 2
    assert sent_sessions(route) == ["S1", "S2"]
    assert "S2" not in str(info.value)


async def test_fifty_concurrent_expiries_cause_one_login(router: respx.MockRouter) -> None:
    """Fifty requests that all see the session expire share one re-login, and all succeed."""
    calls = 50
    expired = False
    refused = 0
    all_refused = asyncio.Event()

    async def server(request: httpx.Request) -> httpx.Response:
        nonlocal refused
        if expired and request.headers.get("sessionId") == "S1":
            refused += 1
            if refused == calls:
                all_refused.set()
            await all_refused.wait()  # every request is in flight on S1 before any refusal
            return httpx.Response(403, json=INVALID_SESSION)
        return httpx.Response(200, json=[])

    login = router.post(DEFAULT_LOGIN_PATH).mock(
        side_effect=[logged_in(f"S{n}") for n in range(1, 10)]
    )
    route = router.post(LIST_PATH).mock(side_effect=server)
    async with make_client(LoginSession(USER, TOKEN)) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))  # logs in: S1
        expired = True
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    client.get_callbacks(CallbackFilter.campaign(6), offset=100 * n)
                    for n in range(calls)
                )
            ),
            timeout=5,
        )
    assert results == [[]] * calls
    assert login.call_count == 2
    sessions = sent_sessions(route)
    assert sessions.count("S1") == 1 + calls
    assert sessions.count("S2") == calls


async def test_fifty_concurrent_expiries_cause_one_login_on_the_fake() -> None:
    """Against the fake: fifty requests on an expired session cause one login, and all succeed."""
    fake = FakeAmeyo.seeded(250, latency=0.01)  # latency: all fifty are in flight at once
    fake.add_user(USER, TOKEN, domain="ameyo")
    session = LoginSession(USER, TOKEN, domain="ameyo")
    async with fake.client(session_id=session) as client:
        await client.get_callbacks(CallbackFilter.campaign(6), limit=1)
        for old in session.secrets():
            if old != TOKEN:
                fake.expire_session(old)
        fake.clear_requests()
        pages = await asyncio.gather(
            *(
                client.get_callbacks(CallbackFilter.campaign(6), offset=n, limit=1)
                for n in range(50)
            )
        )
    assert [len(p) for p in pages] == [1] * 50
    log = fake.requests
    assert sum(1 for e in log if e.endpoint == "login") == 1
    assert fake.login_count == 2  # the first login and the one refresh
    lists = [e for e in log if e.endpoint == "list"]
    assert sum(1 for e in lists if e.session == "expired" and e.status == 403) == 50
    assert sum(1 for e in lists if e.session == "valid" and e.status == 200) == 50


async def test_failing_login_raises_without_the_token(router: respx.MockRouter) -> None:
    """A login refused with 401 invalid.authentication.token: AuthenticationError, token hidden."""
    body = {
        "message": "invalid.authentication.token",
        "code": 909090,
        "info": f"token {TOKEN} is not valid for {USER}",
        "status": 401,
    }
    login = router.post(DEFAULT_LOGIN_PATH).mock(return_value=httpx.Response(401, json=body))
    route = router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_callbacks(CallbackFilter.campaign(6))
    error = info.value
    assert error.key == "invalid.authentication.token"
    assert error.status_code == 401
    assert login.call_count == 1
    assert route.call_count == 0
    for text in (str(error), repr(error), error.snippet, error.message or ""):
        assert TOKEN not in text


async def test_failing_relogin_surfaces_as_authentication_error(router: respx.MockRouter) -> None:
    """When the re-login after an expiry is refused, its AuthenticationError reaches the caller."""
    refused = httpx.Response(
        401, json={"message": "invalid.authentication.token", "code": 909090, "status": 401}
    )
    login = router.post(DEFAULT_LOGIN_PATH).mock(side_effect=[logged_in("S1"), refused])
    route = router.post(LIST_PATH).mock(side_effect=refuse({"S1"}))
    async with make_client(LoginSession(USER, TOKEN)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_callbacks(CallbackFilter.campaign(6))
    assert info.value.key == "invalid.authentication.token"
    assert login.call_count == 2
    assert route.call_count == 1


async def test_reprs_hide_secrets(router: respx.MockRouter) -> None:
    """repr of StaticSession, LoginSession and the client never shows a token or session id."""
    router.post(DEFAULT_LOGIN_PATH).mock(return_value=logged_in("S1-secret-session"))
    router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    static = StaticSession(SESSION)
    assert SESSION not in repr(static)
    assert repr(static) == "StaticSession(<redacted>)"
    session = LoginSession(USER, TOKEN, domain="ameyo")
    async with make_client(session) as client:
        await client.get_callbacks(CallbackFilter.campaign(6))
        texts = [repr(session), repr(client)]
    assert TOKEN in session.secrets()
    assert "S1-secret-session" in session.secrets()
    for text in texts:
        assert TOKEN not in text
        assert "S1-secret-session" not in text
    assert repr(session) == "LoginSession(<redacted>)"


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        pytest.param(("", TOKEN), {}, "user_id", id="blank-user"),
        pytest.param((USER, " "), {}, "token", id="blank-token"),
        pytest.param((USER, TOKEN), {"login_path": "login"}, "login_path", id="relative-path"),
    ],
)
def test_login_session_rejects_bad_arguments(
    args: tuple[str, str], kwargs: dict[str, Any], match: str
) -> None:
    """LoginSession checks its arguments before any request."""
    with pytest.raises(ValueError, match=match):
        LoginSession(*args, **kwargs)


async def test_failed_login_is_shared_by_the_requests_waiting_on_it(
    router: respx.MockRouter,
) -> None:
    """Ten calls waiting on one login that fails: one login attempt, ten errors, no stampede."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(
        return_value=httpx.Response(401, json={"message": "invalid.authentication.token"})
    )
    router.post(LIST_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client(LoginSession("agent", "tok-1")) as client:
        results = await asyncio.gather(
            *(client.get_callbacks(CallbackFilter.campaign(6)) for _ in range(10)),
            return_exceptions=True,
        )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert login.call_count == 1


@pytest.mark.parametrize("bad", ["SECRET-abc\n", " SECRET-abc", "SECRET\x00abc", "SÉCRET"])
def test_static_session_refuses_unsendable_ids_without_quoting_them(bad: str) -> None:
    """A session id with blanks, control or non-ASCII characters is refused, never echoed."""
    with pytest.raises(ValueError, match="strip it") as info:
        StaticSession(bad)
    assert "SECRET" not in str(info.value)
    assert "CRET" not in str(info.value)
