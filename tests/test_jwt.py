"""JWT servers: the JWT from the login answer on every call, renewed once, never shown.

Against the fake's secure mode in-process (httpx through ``ASGITransport``)
and on a loopback socket over both HTTP stacks; the wire details against
respx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import respx
from _support import BASE, CAMPAIGN_PATH, SESSION, TOKEN, fake_http

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AuthenticationError,
    CallbackFilter,
    LoginSession,
    ResponseFormatError,
    ServerError,
    SessionProvider,
    StaticSession,
)
from ameyo_callbacks._protocol import (
    DEFAULT_LOGIN_PATH,
    DEFAULT_REFRESH_PATH,
    Answer,
    build_login_request,
    build_refresh_request,
    decode_login_response,
    decode_refresh_response,
)
from ameyo_callbacks.testing import FakeAmeyo, serve

pytestmark = pytest.mark.usefixtures("zero_backoff")

USER = "admin"
CAMPAIGN = CallbackFilter.campaign(6)
#: Every JWT the fake hands out starts with this (the base64url of '{"alg"...').
JWT_START = "eyJ"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLW9uZQ"
NEW_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXR3bw"
JWT_REFUSED = {"message": "invalid.authentication.token", "code": 909090, "status": 401}

#: "inprocess": httpx through ASGITransport, no socket; the others: uvicorn on 127.0.0.1.
STACKS = [
    "inprocess",
    pytest.param("httpx", marks=pytest.mark.integration),
    pytest.param("aiohttp", marks=pytest.mark.integration),
]


def secure_fake(**options: Any) -> FakeAmeyo:
    """A JWT server holding 250 callbacks, accepting USER's login."""
    fake = FakeAmeyo.seeded(250, secure_mode=True, **options)
    fake.add_user(USER, TOKEN)
    return fake


@asynccontextmanager
async def client_of(
    fake: FakeAmeyo, stack: str, session: str | SessionProvider
) -> AsyncIterator[AmeyoCallbacksClient]:
    """A client of ``fake`` in-process, or over a socket on the named HTTP stack."""
    if stack == "inprocess":
        async with fake.client(session_id=session) as client:
            yield client
        return
    with serve(fake) as base:
        async with AmeyoCallbacksClient(
            base, session_id=session, http_backend=stack, tenant_callbacks_path=fake.tenant_path
        ) as client:
            yield client


def calls_after_login(fake: FakeAmeyo) -> list[Any]:
    return [e for e in fake.requests if e.endpoint not in {"login", "refresh"}]


# ----------------------------------------------------------------------
# Against the fake's secure mode, on both stacks


@pytest.mark.parametrize("stack", STACKS)
async def test_login_gives_a_jwt_that_every_call_carries(stack: str) -> None:
    """The JWT of the login answer goes with every call; the server finds it valid each time."""
    fake = secure_fake()
    async with client_of(fake, stack, LoginSession(USER, TOKEN)) as client:
        page = await client.get_callbacks(CAMPAIGN, limit=5)
        await client.get_callbacks(CallbackFilter.tenant(), limit=5)
        await client.delete_callback(page[0].customer_callback_id)
    assert fake.login_count == 1
    calls = calls_after_login(fake)
    assert [(e.endpoint, e.status) for e in calls] == [
        ("list", 200),
        ("tenant", 200),
        ("delete", 200),
    ]
    assert {(e.session, e.jwt) for e in calls} == {("valid", "valid")}


@pytest.mark.parametrize("stack", STACKS)
async def test_fifty_calls_on_an_expired_jwt_share_one_refresh(stack: str) -> None:
    """Fifty calls that meet an expired JWT cause one renewal, no login, and all succeed."""
    fake = secure_fake(latency=0.01)  # latency: all fifty are in flight at once
    async with client_of(fake, stack, LoginSession(USER, TOKEN)) as client:
        await client.get_callbacks(CAMPAIGN, limit=1)
        fake.expire_jwt()
        fake.clear_requests()
        pages = await asyncio.gather(
            *(client.get_callbacks(CAMPAIGN, offset=n, limit=1) for n in range(50))
        )
    assert [len(p) for p in pages] == [1] * 50
    log = fake.requests
    refreshes = [e for e in log if e.endpoint == "refresh"]
    assert [(e.status, e.session, e.jwt) for e in refreshes] == [(200, "valid", "expired")]
    assert json.loads(refreshes[0].body or b"") == {"userId": USER}
    assert fake.refresh_count == 1
    assert fake.login_count == 1  # the first login only
    lists = [e for e in log if e.endpoint == "list"]
    assert sum(1 for e in lists if e.jwt == "expired" and e.status == 401) == 50
    assert sum(1 for e in lists if e.jwt == "valid" and e.status == 200) == 50
    assert len(lists) == 100


async def test_the_session_id_stays_a_secret_through_many_renewals() -> None:
    """After each of ten JWT renewals in one session, the session id and JWT in use are secrets."""
    fake = secure_fake()
    session = LoginSession(USER, TOKEN)
    sent: list[tuple[str, str]] = []

    async def capture(request: httpx.Request) -> None:
        if "sessionId" in request.headers:
            sent.append((request.headers["sessionId"], request.headers["Authorization"]))

    async with fake.client(session_id=session) as client:
        assert client.http_client is not None
        client.http_client.event_hooks["request"].append(capture)
        await client.get_callbacks(CAMPAIGN, limit=1)
        held = []
        for _ in range(10):
            fake.expire_jwt()
            await client.get_callbacks(CAMPAIGN, limit=1)
            held.append(sent[-1][0] in session.secrets() and sent[-1][1] in session.secrets())
    assert held == [True] * 10
    assert fake.refresh_count == 10
    assert fake.login_count == 1
    (session_id,) = {sid for sid, _ in sent}
    last_jwt = sent[-1][1]
    assert len({jwt for _, jwt in sent}) == 11
    assert session_id in session.secrets()
    assert last_jwt in session.secrets()


@pytest.mark.parametrize("stack", STACKS)
async def test_a_refused_refresh_leads_to_one_login(stack: str) -> None:
    """When the renewal is refused, the client logs in once more, and every call succeeds."""
    fake = secure_fake(latency=0.01, refuse_refresh=True)
    async with client_of(fake, stack, LoginSession(USER, TOKEN)) as client:
        await client.get_callbacks(CAMPAIGN, limit=1)
        fake.expire_jwt()
        fake.clear_requests()
        pages = await asyncio.gather(
            *(client.get_callbacks(CAMPAIGN, offset=n, limit=1) for n in range(10))
        )
    assert [len(p) for p in pages] == [1] * 10
    log = fake.requests
    assert [e.status for e in log if e.endpoint == "refresh"] == [401]
    assert [e.status for e in log if e.endpoint == "login"] == [200]
    assert fake.login_count == 2
    assert fake.refresh_count == 0
    lists = [e for e in log if e.endpoint == "list"]
    assert sum(1 for e in lists if e.status == 200 and e.jwt == "valid") == 10


@pytest.mark.parametrize("stack", STACKS)
async def test_no_text_shows_a_jwt(stack: str, caplog: pytest.LogCaptureFixture) -> None:
    """Through a login, a renewal, a refused renewal and a refused login, no JWT shows anywhere.

    Errors, reprs, the log (DEBUG included) and the fake's request log hold
    no JWT: every JWT the fake hands out starts with ``eyJ``.
    """
    caplog.set_level(logging.DEBUG)
    fake = secure_fake()
    session = LoginSession(USER, TOKEN)
    async with client_of(fake, stack, session) as client:
        await client.get_callbacks(CAMPAIGN, limit=1)
        fake.expire_jwt()
        await client.get_callbacks(CAMPAIGN, limit=1)  # renewed
        fake.refuse_refresh = True
        fake.expire_jwt()
        await client.get_callbacks(CAMPAIGN, limit=1)  # logged in again
        fake.add_user(USER, "another-token")  # the next login is refused
        fake.expire_jwt()
        with pytest.raises(AuthenticationError) as caught:
            await client.get_callbacks(CAMPAIGN, limit=1)
        texts = [str(caught.value), repr(caught.value), repr(vars(caught.value))]
        texts += [repr(client), repr(session), repr(fake.requests)]
    assert fake.refresh_count == 1
    assert fake.login_count == 2
    assert caught.value.key == "invalid.authentication.token"
    jwts = [s for s in session.secrets() if s.startswith(JWT_START)]
    assert len(jwts) >= 3  # the renewal's and both logins' were handed out
    texts += [r.getMessage() for r in caplog.records] + [repr(r.__dict__) for r in caplog.records]
    assert [t for t in texts if JWT_START in t] == []


async def test_a_static_session_with_the_fakes_jwt_works_and_one_without_is_refused() -> None:
    """A fixed session id with its JWT is served; without the JWT, 401 and no renewal."""
    fake = secure_fake()
    async with fake.client() as client:  # the fake's session and JWT
        assert len(await client.get_callbacks(CAMPAIGN, limit=3)) == 3
    async with fake.client(session_id=StaticSession(fake.session_id)) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_callbacks(CAMPAIGN, limit=3)
    assert (caught.value.status_code, caught.value.key) == (401, "invalid.authentication.token")
    assert [(e.jwt, e.status) for e in fake.requests] == [("valid", 200), ("missing", 401)]


async def test_an_expired_session_on_a_jwt_server_ends_in_one_login() -> None:
    """An expired session answers 401 like a JWT; the renewal is refused, one login follows."""
    fake = secure_fake()
    session = LoginSession(USER, TOKEN)
    async with fake.client(session_id=session) as client:
        await client.get_callbacks(CAMPAIGN, limit=1)
        for old in session.secrets():
            if old != TOKEN and not old.startswith(JWT_START):
                fake.expire_session(old)
        fake.clear_requests()
        assert len(await client.get_callbacks(CAMPAIGN, limit=1)) == 1
    assert [(e.endpoint, e.status) for e in fake.requests] == [
        ("list", 401),
        ("refresh", 401),
        ("login", 200),
        ("list", 200),
    ]


async def test_the_refresh_path_exists_only_in_secure_mode() -> None:
    """Without secure mode the renewal path is unknown (404), and no Authorization is needed."""
    fake = FakeAmeyo.seeded(5)
    async with fake.client() as client:
        await client.get_callbacks(CAMPAIGN, limit=5)
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://ameyo.invalid") as http:
        response = await http.post(
            DEFAULT_REFRESH_PATH, json={"userId": USER}, headers={"sessionId": fake.session_id}
        )
    assert response.status_code == 404
    assert [(e.status, e.jwt) for e in fake.requests] == [(200, "missing"), (404, "missing")]


async def test_the_fakes_refresh_wants_a_post_with_a_user_id() -> None:
    """The fake's renewal path: GET is 405 (POST allowed), a body with no userId is 400."""
    fake = secure_fake()
    headers = {"sessionId": fake.session_id, "Authorization": fake.jwt}
    async with fake_http(fake) as http:
        get = await http.get(DEFAULT_REFRESH_PATH, headers=headers)
        not_json = await http.post(DEFAULT_REFRESH_PATH, content=b"{oops", headers=headers)
        no_user = await http.post(DEFAULT_REFRESH_PATH, json={"user": USER}, headers=headers)
    assert (get.status_code, get.headers.get("allow")) == (405, "POST")
    for answer in (not_json, no_user):
        assert answer.status_code == 400
        assert "parameter expected in input: userId" in answer.text
    assert fake.refresh_count == 0


async def test_the_fakes_jwt_is_bound_to_its_session_and_lives_jwt_ttl() -> None:
    """Another session's JWT is "unknown"; past jwt_ttl (settable) the JWT is "expired": 401s."""
    fake = secure_fake()
    assert fake.jwt_ttl == 900.0
    login = {"userId": USER, "token": TOKEN}
    async with fake_http(fake) as http:
        logged_in = await http.post(DEFAULT_LOGIN_PATH, json=login)
        other = logged_in.json()["authenticationState"]["authPolicyVsUserInfo"]
        other_jwt = other["auth.type.passwd"]["loginProperties"]["jwt"]
        fake.clear_requests()
        params = {"campaignId": "6", "offset": "0", "limit": "1"}
        answers = [await http.post(CAMPAIGN_PATH, params=params, headers={"Authorization": jwt})
                   for jwt in (fake.jwt, other_jwt)]  # fmt: skip
        fake.jwt_ttl = 0.0  # every JWT handed out is now older than its lifetime
        answers.append(
            await http.post(CAMPAIGN_PATH, params=params, headers={"Authorization": fake.jwt})
        )
    assert fake.jwt_ttl == 0.0
    assert [a.status_code for a in answers] == [200, 401, 401]
    assert [e.jwt for e in fake.requests] == ["valid", "unknown", "expired"]


# ----------------------------------------------------------------------
# The wire, against respx


def login_answer(session_id: str, jwt: str | None, lifetime: str = "900000") -> httpx.Response:
    """A 4.x login answer, with a JWT where JWT servers put it."""
    body: dict[str, Any] = {"userSessionInfo": {"sessionId": session_id, "userId": USER}}
    if jwt is not None:
        properties = {"jwt": jwt, "jwtTokenExpiryMs": lifetime, "accountId": "acct-1"}
        body["authenticationState"] = {
            "authPolicyVsUserInfo": {"auth.type.passwd": {"loginProperties": properties}}
        }
    return httpx.Response(200, json=body)


@contextmanager
def jwt_server(router: respx.MockRouter, *, refresh: httpx.Response | None = None) -> Iterator[Any]:
    """A list that takes JWT or NEW_JWT once renewed; the routes, to count calls."""
    current = {"jwt": JWT}

    def listing(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != current["jwt"]:
            return httpx.Response(401, json=JWT_REFUSED)
        return httpx.Response(200, json=[])

    def renew(request: httpx.Request) -> httpx.Response:
        if refresh is not None:
            return refresh
        current["jwt"] = NEW_JWT
        return httpx.Response(200, json={"jwtToken": NEW_JWT})

    routes = {
        "login": router.post(DEFAULT_LOGIN_PATH).mock(return_value=login_answer(SESSION, JWT)),
        "list": router.post(CAMPAIGN_PATH).mock(side_effect=listing),
        "refresh": router.post(DEFAULT_REFRESH_PATH).mock(side_effect=renew),
        "expire": lambda: current.update(jwt="nothing-valid"),
    }
    yield routes


async def test_the_jwt_goes_raw_in_authorization_beside_the_session(
    router: respx.MockRouter,
) -> None:
    """Authorization is the JWT itself, no "Bearer"; sessionId goes with it."""
    with jwt_server(router) as routes:
        async with AmeyoCallbacksClient(BASE, session_id=LoginSession(USER, TOKEN)) as client:
            await client.get_callbacks(CAMPAIGN)
    sent = routes["list"].calls.last.request.headers
    assert (sent["Authorization"], sent["sessionId"]) == (JWT, SESSION)
    assert "authorization" not in routes["login"].calls.last.request.headers


async def test_renewal_sends_the_user_and_the_session_then_repeats_once(
    router: respx.MockRouter,
) -> None:
    """The renewal posts {"userId"} with the session's headers; the call is repeated once."""
    with jwt_server(router) as routes:
        async with AmeyoCallbacksClient(BASE, session_id=LoginSession(USER, TOKEN)) as client:
            await client.get_callbacks(CAMPAIGN)
            routes["expire"]()
            assert await client.get_callbacks(CAMPAIGN) == []
    renewal = routes["refresh"].calls.last.request
    assert json.loads(renewal.content) == {"userId": USER}
    assert renewal.headers["sessionId"] == SESSION
    assert [c.request.headers["Authorization"] for c in routes["list"].calls] == [
        JWT,
        JWT,
        NEW_JWT,
    ]
    assert routes["login"].call_count == 1


async def test_a_renewal_at_another_path(router: respx.MockRouter) -> None:
    """refresh_path= moves the renewal, as login_path= moves the login."""
    other = "/ameyorestapi/v2/session/refreshToken"
    with jwt_server(router) as routes:
        moved = router.post(other).mock(return_value=httpx.Response(200, json={"jwtToken": JWT}))
        session = LoginSession(USER, TOKEN, refresh_path=other)
        async with AmeyoCallbacksClient(BASE, session_id=session) as client:
            await client.get_callbacks(CAMPAIGN)
            await client.get_callbacks(CAMPAIGN)  # still JWT: the list takes it
            routes["expire"]()
            with pytest.raises(AuthenticationError):
                await client.get_callbacks(CAMPAIGN)
    assert moved.call_count == 1
    assert routes["refresh"].call_count == 0


async def test_a_renewal_that_fails_on_the_server_is_not_a_login(
    router: respx.MockRouter,
) -> None:
    """A renewal answered 503 (after its retries) raises that error; no login is tried."""
    with jwt_server(router, refresh=httpx.Response(503)) as routes:
        async with AmeyoCallbacksClient(BASE, session_id=LoginSession(USER, TOKEN)) as client:
            await client.get_callbacks(CAMPAIGN)
            routes["expire"]()
            with pytest.raises(ServerError) as caught:
                await client.get_callbacks(CAMPAIGN)
    assert caught.value.path == DEFAULT_REFRESH_PATH
    assert routes["login"].call_count == 1
    assert routes["refresh"].call_count == 6  # the default policy's attempts


async def test_a_server_without_jwt_sends_no_authorization(router: respx.MockRouter) -> None:
    """A login answer without a JWT: no Authorization header, a 403 leads to a login as before."""
    login = router.post(DEFAULT_LOGIN_PATH).mock(return_value=login_answer(SESSION, None))
    route = router.post(CAMPAIGN_PATH).mock(return_value=httpx.Response(200, json=[]))
    async with AmeyoCallbacksClient(BASE, session_id=LoginSession(USER, TOKEN)) as client:
        await client.get_callbacks(CAMPAIGN)
    assert "authorization" not in route.calls.last.request.headers
    assert login.call_count == 1


async def test_a_static_jwt_is_sent_and_a_refusal_is_not_renewed(
    router: respx.MockRouter,
) -> None:
    """StaticSession(jwt=...) sends it; a 401 raises with no renewal and no login."""
    with jwt_server(router) as routes:
        async with AmeyoCallbacksClient(BASE, session_id=StaticSession(SESSION, jwt=JWT)) as client:
            await client.get_callbacks(CAMPAIGN)
            routes["expire"]()
            with pytest.raises(AuthenticationError):
                await client.get_callbacks(CAMPAIGN)
    assert routes["refresh"].call_count == routes["login"].call_count == 0
    assert routes["list"].calls[0].request.headers["Authorization"] == JWT


# ----------------------------------------------------------------------
# The decoders (sans-I/O)

LOGIN_SPEC = build_login_request(
    path=DEFAULT_LOGIN_PATH, user_id=USER, token=TOKEN, domain=None, force_login=False
)
REFRESH_SPEC = build_refresh_request(path=DEFAULT_REFRESH_PATH, user_id=USER)


def answer(spec: Any, status: int, body: object, secrets: tuple[str, ...] = ()) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, {}, raw, spec, 0.0, secrets)


def test_login_answer_gives_the_jwt_and_its_lifetime() -> None:
    """The JWT and jwtTokenExpiryMs are read where JWT servers put them; the repr hides both."""
    body = json.loads(login_answer(SESSION, JWT, lifetime="900000").content)
    got = decode_login_response(answer(LOGIN_SPEC, 200, body))
    assert (got.session_id, got.jwt, got.jwt_lifetime_ms) == (SESSION, JWT, 900_000)
    assert SESSION not in repr(got)
    assert JWT not in repr(got)


@pytest.mark.parametrize(
    "properties",
    [{}, {"jwt": ""}, {"jwt": " eyJ "}, {"jwt": "eyJ\nx"}, {"jwt": 5}, "not an object"],
    ids=["absent", "empty", "blanks", "line-break", "number", "not-an-object"],
)
def test_login_answer_without_a_usable_jwt_gives_none(properties: object) -> None:
    """A JWT that is absent or not fit for a header is left out; the session still counts."""
    body = {
        "sessionId": SESSION,
        "authenticationState": {
            "authPolicyVsUserInfo": {"auth.type.passwd": {"loginProperties": properties}}
        },
    }
    got = decode_login_response(answer(LOGIN_SPEC, 200, body))
    assert (got.session_id, got.jwt) == (SESSION, None)


def test_refresh_request_posts_the_user_id() -> None:
    """The renewal is POST refreshToken {"userId"}, a kind of its own."""
    assert (REFRESH_SPEC.method, REFRESH_SPEC.path, REFRESH_SPEC.kind) == (
        "POST",
        DEFAULT_REFRESH_PATH,
        "refresh",
    )
    assert REFRESH_SPEC.body == {"userId": USER}


def test_refresh_answer_gives_the_new_jwt() -> None:
    """{"jwtToken": ...} gives the JWT."""
    assert decode_refresh_response(answer(REFRESH_SPEC, 200, {"jwtToken": NEW_JWT})) == NEW_JWT


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"token": NEW_JWT}, ResponseFormatError),
        (200, b"<html>" + NEW_JWT.encode(), ResponseFormatError),
        (401, {**JWT_REFUSED, "info": NEW_JWT}, AuthenticationError),
        (503, b"", ServerError),
    ],
    ids=["other-field", "html", "401", "503"],
)
def test_refresh_answer_without_a_jwt_raises_without_quoting_it(
    status: int, body: object, error: type[Exception]
) -> None:
    """A renewal answer with no jwtToken raises; the error holds no token it saw."""
    with pytest.raises(error) as caught:
        decode_refresh_response(answer(REFRESH_SPEC, status, body, secrets=(NEW_JWT,)))
    assert NEW_JWT not in f"{caught.value} {vars(caught.value)}"
    if status == 401:
        assert "renewal was refused" in str(caught.value)


# ----------------------------------------------------------------------
# The command line


def test_the_command_line_sends_ameyo_jwt_with_a_fixed_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AMEYO_SESSION_ID with AMEYO_JWT makes a fixed session that holds both."""
    from ameyo_callbacks.cli import _config  # noqa: PLC0415  (the cli extra)

    monkeypatch.setenv("AMEYO_SESSION_ID", SESSION)
    monkeypatch.setenv("AMEYO_JWT", JWT)
    options = _config.ConnectionOptions(
        base_url=BASE,
        session_id=None,
        session_id_file=None,
        ca_bundle=None,
        timeout=None,
        retries=0,
        demo=False,
        verbose=False,
    )
    session = _config._session(options)
    assert isinstance(session, StaticSession)
    assert session.secrets() == (SESSION, JWT)
    monkeypatch.setenv("AMEYO_JWT", "eyJ\u00e9")
    with pytest.raises(_config.ConfigError) as caught:
        _config._session(options)
    assert "eyJ" not in str(caught.value)
