"""The session id and the login token never show: not in reprs, exceptions or logs.

Every failing answer below echoes the secrets the request carried (the way a
careless server or proxy does), so a leak anywhere on the way to the caller
would show up. Retries run under ``no_retry_waits`` (no back-off sleeps).
"""

from __future__ import annotations

import itertools
import json
import logging
import string
from collections.abc import Callable, Iterator
from typing import Any

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
    VirtualClock,
    examples,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    AmeyoError,
    APIError,
    AuthenticationError,
    CallbackFilter,
    CallbackNotFoundError,
    LoginSession,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    SessionProvider,
    StaticSession,
    TransportError,
)
from ameyo_callbacks._protocol import REDACTED
from ameyo_callbacks.testing import no_retry_waits

PREFIX = CALLBACKS_PREFIX
LIST_PATH = CAMPAIGN_PATH
LOGIN_PATH = "/ameyorestapi/userLogin/login"
SESSION = "sid-7f3a-SECRET-c0ffee-42"
TOKEN = "tok-XYZ"
ATTEMPTS = 3  # no_retry_waits: attempts per call, no waits
HTML = "text/html; charset=utf-8"

Answer = Callable[[httpx.Request, str], httpx.Response]


def html(status: int, echo: str) -> httpx.Response:
    page = f"<html><body><h1>Error</h1><pre>request sessionId={echo}</pre></body></html>"
    return httpx.Response(status, text=page, headers={"content-type": HTML})


def raise_(exc: type[httpx.TransportError]) -> Answer:
    def answer(request: httpx.Request, echo: str) -> httpx.Response:
        raise exc(f"connection to {echo} reset by peer", request=request)

    return answer


def envelope(http_status: int, **fields: object) -> Answer:
    """An Ameyo JSON error envelope; ``{echo}`` in a text field becomes the echoed text."""

    def answer(_: httpx.Request, echo: str) -> httpx.Response:
        body = {k: v.format(echo=echo) if isinstance(v, str) else v for k, v in fields.items()}
        return httpx.Response(http_status, json=body)

    return answer


@attrs.frozen
class Case:
    """One failing call: which endpoint, what the server does, what the caller gets."""

    target: str  # "list" or "delete"
    answer: Answer
    error: type[AmeyoError]
    retried: bool = False


NOT_FOUND_INFO = json.dumps([NOT_FOUND_KEY, CALLBACK_ID])
CASES: dict[str, Case] = {
    "403-invalid-session": Case(
        "list",
        envelope(403, message="session {echo} expired", info="invalid.session.id", status=403),
        AuthenticationError,
    ),
    "401-invalid-token": Case(
        "delete",
        envelope(401, message="invalid.authentication.token", code=909090, info="{echo}"),
        AuthenticationError,
    ),
    "500-html-list": Case("list", lambda _, echo: html(500, echo), ServerError, retried=True),
    "500-html-delete": Case("delete", lambda _, echo: html(500, echo), ServerError, retried=True),
    "512-not-found": Case(
        "delete",
        envelope(
            512, message="no such callback: {echo}", info=NOT_FOUND_INFO, status=512, errorCode=512
        ),
        CallbackNotFoundError,
    ),
    "512-secret-in-key-args": Case(
        "list",
        envelope(512, message=None, info='["CallBackManager.fetch.failed", "{echo}"]', errorCode=7),
        APIError,
    ),
    "429-retry-after": Case(
        "list",
        lambda _, echo: httpx.Response(
            429, text=f"slow down, {echo}", headers={"Retry-After": "0"}
        ),
        RateLimitedError,
        retried=True,
    ),
    "connect-error": Case("list", raise_(httpx.ConnectError), TransportError, retried=True),
    "read-timeout-delete": Case("delete", raise_(httpx.ReadTimeout), TransportError, retried=True),
    "format-html-list": Case(
        "list",
        lambda _, echo: html(200, echo),
        ResponseFormatError,
        retried=True,
    ),
    "format-misfit-record": Case(
        "list",
        lambda _, echo: httpx.Response(
            200, json=[{"customerCallbackId": echo, "campaignId": "six", "phone": echo}]
        ),
        ResponseFormatError,
        retried=True,
    ),
    "format-delete-body": Case(
        "delete",
        lambda _, echo: httpx.Response(200, text=f"Deleted for {echo}"),
        ResponseFormatError,
        retried=True,
    ),
    "2xx-envelope-list": Case(
        "list",
        envelope(200, message="failed: {echo}", info="CallBackManager.fetch.failed", status=512),
        APIError,
    ),
    "2xx-envelope-delete": Case(
        "delete",
        envelope(200, message="{echo}", info=None, status=500, errorCode=1),
        ServerError,
    ),
}


class FakeLogin:
    """The login endpoint: a fresh session id per login, each one remembered."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.tokens: list[str] = []
        self._numbers = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(json.loads(request.content)["token"])
        session_id = f"login-sid-{next(self._numbers):04d}-SECRET"
        self.issued.append(session_id)
        return httpx.Response(200, json={"userSessionInfo": {"sessionId": session_id}})


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    with no_retry_waits(attempts=ATTEMPTS):
        yield


def visible_texts(exc: BaseException) -> list[str]:
    """What a caller can see of an exception: str, repr, args and its attributes.

    ``cause`` is left out: it is the httpx exception exactly as httpx raised it.
    """
    attributes = {k: v for k, v in vars(exc).items() if k != "cause"}
    return [str(exc), repr(exc), repr(exc.args), repr(attributes)]


def log_texts(records: list[logging.LogRecord]) -> list[str]:
    """Every captured log record as a handler could render it, extras included."""
    formatter = logging.Formatter()
    texts = []
    for record in records:
        texts.append(record.getMessage())
        texts.append(repr(record.__dict__))
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    return texts


def assert_hidden(secrets: list[str], texts: list[str]) -> None:
    for secret in secrets:
        leaks = [text for text in texts if secret in text]
        assert leaks == [], f"{secret!r} leaked"


def route_for(router: respx.MockRouter, case: Case, also_echo: str) -> respx.Route:
    def side_effect(request: httpx.Request) -> httpx.Response:
        held = (request.headers.get(name, "") for name in ("sessionId", "Authorization"))
        echo = " ".join(part for part in (*held, also_echo) if part)
        return case.answer(request, echo)

    if case.target == "list":
        return router.post(LIST_PATH).mock(side_effect=side_effect)
    return router.delete(DELETE_PATH).mock(side_effect=side_effect)


async def run(session: str | SessionProvider, case: Case) -> tuple[AmeyoError, str]:
    """Make the case's failing call on a client of ``session``: its error and the client's repr."""
    async with AmeyoCallbacksClient(
        BASE, session_id=session, http_backend="httpx", clock=VirtualClock()
    ) as client:
        call = (
            client.get_callbacks(CallbackFilter.campaign(6), limit=1)
            if case.target == "list"
            else client.delete_callback(CALLBACK_ID)
        )
        with pytest.raises(case.error) as caught:
            await call
        return caught.value, repr(client)


def test_client_repr_hides_the_session_id() -> None:
    """repr() and str() of a client show the session kind, never the session id."""
    client = AmeyoCallbacksClient(
        BASE, session_id=SESSION, http_backend="httpx", clock=VirtualClock()
    )

    for text in (repr(client), str(client)):
        assert SESSION not in text
        assert "StaticSession(<redacted>)" in text


def test_session_provider_reprs_hide_secrets() -> None:
    """repr() of StaticSession and LoginSession shows neither the id nor the token."""
    login = LoginSession("agent", TOKEN, domain="ameyo")
    static = StaticSession(SESSION)

    assert repr(login) == "LoginSession(<redacted>)"
    assert repr(static) == "StaticSession(<redacted>)"
    client = AmeyoCallbacksClient(
        BASE, session_id=login, http_backend="httpx", clock=VirtualClock()
    )
    assert TOKEN not in repr(client)
    assert "LoginSession(<redacted>)" in repr(client)


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Case:
    """Each failure case in turn, with every log record of the run captured (DEBUG up)."""
    caplog.set_level(logging.DEBUG)
    return CASES[request.param]


async def test_fixed_session_id_never_shows_in_errors_or_logs(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture, case: Case
) -> None:
    """A failing call's exception and DEBUG logs (retries included) never hold the session id."""
    route = route_for(router, case, also_echo="")

    error, client_repr = await run(SESSION, case)

    assert route.call_count == (ATTEMPTS if case.retried else 1)
    assert all(call.request.headers["sessionId"] == SESSION for call in route.calls)
    assert any(r.name == "ameyo_callbacks" and r.levelno == logging.DEBUG for r in caplog.records)
    if case.retried:
        assert any("retrying" in r.getMessage() for r in caplog.records)
    assert_hidden([SESSION], [*visible_texts(error), *log_texts(caplog.records), client_repr])


async def test_login_token_and_sessions_never_show_in_errors_or_logs(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture, case: Case
) -> None:
    """With a LoginSession, neither the token nor any session id it got shows anywhere."""
    login = FakeLogin()
    router.post(LOGIN_PATH).mock(side_effect=login)
    route = route_for(router, case, also_echo=TOKEN)

    session = LoginSession("agent", TOKEN)
    error, client_repr = await run(session, case)

    renewed = issubclass(case.error, AuthenticationError)  # refused once, logged in again
    assert login.tokens == [TOKEN] * (2 if renewed else 1)
    sent = [call.request.headers["sessionId"] for call in route.calls]
    assert set(sent) == set(login.issued)
    assert any("retrying" in r.getMessage() for r in caplog.records) == case.retried
    secrets = [TOKEN, *login.issued]
    texts = [*visible_texts(error), *log_texts(caplog.records), client_repr, repr(session)]
    assert_hidden(secrets, texts)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            httpx.Response(
                401,
                json={"message": "invalid.authentication.token", "code": 909090, "info": TOKEN},
            ),
            AuthenticationError,
        ),
        (html(500, TOKEN), ServerError),
        (httpx.Response(200, json={"session": TOKEN, "userSessionInfo": {}}), ResponseFormatError),
    ],
    ids=["401-echo", "500-html-echo", "2xx-no-session"],
)
async def test_failed_login_never_shows_the_token(
    router: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    answer: httpx.Response,
    error: type[AmeyoError],
) -> None:
    """A login answer that fails and echoes the token keeps it out of the error and logs."""
    caplog.set_level(logging.DEBUG)
    login_route = router.post(LOGIN_PATH).mock(return_value=answer)
    list_route = router.post(LIST_PATH).respond(200, json=[])
    session = LoginSession("agent", TOKEN)

    async with AmeyoCallbacksClient(
        BASE, session_id=session, http_backend="httpx", clock=VirtualClock()
    ) as client:
        with pytest.raises(error) as caught:
            await client.get_callbacks(CallbackFilter.campaign(6))

    assert login_route.call_count >= 1
    assert json.loads(login_route.calls.last.request.content)["token"] == TOKEN
    assert list_route.call_count == 0
    assert_hidden([TOKEN], [*visible_texts(caught.value), *log_texts(caplog.records)])


async def test_bulk_delete_outcomes_never_show_the_session_id(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The per-id errors of a bulk delete, and its repr, keep the session id out."""
    caplog.set_level(logging.DEBUG)
    answers: dict[str, Any] = {
        "id-500": lambda echo: html(500, echo),
        "id-401": lambda echo: httpx.Response(
            401, json={"message": "invalid.authentication.token", "info": echo}
        ),
        "id-ok": lambda _: httpx.Response(200, text="OK"),
    }

    def side_effect(request: httpx.Request, cb_id: str) -> httpx.Response:
        return answers[cb_id](request.headers["sessionId"])  # type: ignore[no-any-return]

    router.delete(path__regex=rf"^{PREFIX}/(?P<cb_id>[^/]+)$").mock(side_effect=side_effect)

    async with AmeyoCallbacksClient(
        BASE, session_id=SESSION, http_backend="httpx", clock=VirtualClock()
    ) as client:
        result = await client.delete_callbacks(list(answers), concurrency=2)

    assert result.deleted == ("id-ok",)
    assert sorted(result.failed) == ["id-401", "id-500"]
    texts = [repr(result), *log_texts(caplog.records)]
    for failure in result.failed.values():
        texts.extend(visible_texts(failure))
    assert_hidden([SESSION], texts)


# ----------------------------------------------------------------------
# Any secret, however short or word-like


SECRET_ALPHABET = string.ascii_letters + string.digits + "-_.@"
#: What a careless server puts around the text it echoes: words that hold the
#: short secrets hypothesis draws ("s", "host", "se") without being them.
CONTEXT = "the host no-such-host.invalid refused session's sessionId"
#: Where the secret stood, in the same failure on a client with another session id.
MARK = "qqmarkqq"
#: That other session id: no text holds it.
BASELINE = "zz-baseline-session-000000000000"


def showings(secret: str, text: str) -> int:
    """How often ``secret`` shows in ``text``: anywhere at 8 characters or more; else alone.

    A short secret is alone where no letter or digit is glued to an end of it
    that is one itself; an apostrophe after a letter glues too (``s`` is
    alone in ``id: s`` and ``'s'``, not in ``host`` or ``session's``).
    """
    text = text.replace(REDACTED, " ")
    if len(secret) >= 8:
        return text.count(secret)
    count, start = 0, text.find(secret)
    while start >= 0:
        end = start + len(secret)
        glued_left = text[start - 1 : start].isalnum() or (
            text[start - 1 : start] == "'" and text[start - 2 : start - 1].isalnum()
        )
        left = not secret[0].isalnum() or not glued_left
        right = not secret[-1].isalnum() or not text[end : end + 1].isalnum()
        count += left and right
        start = text.find(secret, start + 1)
    return count


#: A base URL whose host holds short secrets too ("s", "ho"); respx answers it, no socket opens.
HOSTLIKE = "http://no-such-host.invalid:8888"


def failing_call_texts(session: str | SessionProvider, case: Case, echo: str) -> list[str]:
    """What the caller sees of the case's error, on a client of ``session`` at ``HOSTLIKE``."""

    async def call() -> AmeyoError:
        async with AmeyoCallbacksClient(
            HOSTLIKE, session_id=session, http_backend="httpx", clock=VirtualClock()
        ) as client:
            failing = (
                client.get_callbacks(CallbackFilter.campaign(6), limit=1)
                if case.target == "list"
                else client.delete_callback(CALLBACK_ID)
            )
            with pytest.raises(case.error) as caught:
                await failing
            return caught.value

    with respx.mock(base_url=HOSTLIKE, assert_all_called=False) as router:
        route_for(router, case, echo)
        return visible_texts(anyio.run(call))


#: The session id beside a JWT under test: long, so it never stands in a word by chance.
OTHER_SESSION = "zz-other-session-111111111111"


def holding(role: str, secret: str) -> str | SessionProvider:
    """A session whose ``role`` ("session_id" or "jwt") is ``secret``."""
    return secret if role == "session_id" else StaticSession(OTHER_SESSION, jwt=secret)


@given(
    secret=st.text(st.sampled_from(SECRET_ALPHABET), min_size=1, max_size=40),
    name=st.sampled_from(sorted(CASES)),
    role=st.sampled_from(["session_id", "jwt"]),
)
@settings(max_examples=examples(200))
# A secret that stands in the error's key ("invalid.session.id",
# "CallBackManager.invalid.campcust.callback"): the key as the wire gives it
# decides the error, so an expired session is still an AuthenticationError and
# a deleted callback a CallbackNotFoundError (the thorough profile found ".").
@example(secret=".", name="403-invalid-session", role="session_id")
@example(secret=".", name="401-invalid-token", role="jwt")
@example(secret=".", name="512-not-found", role="session_id")
@example(secret="session", name="403-invalid-session", role="session_id")
@example(secret="invalid", name="512-not-found", role="jwt")
def test_any_secret_is_hidden_and_every_other_word_stays_whole(
    secret: str, name: str, role: str
) -> None:
    """Secrets (session id or JWT) of 1 to 40 characters: none shows, other words stay whole.

    The server echoes the session's headers and a few words that hold the secret, at a host
    whose name holds it too. Beside the same failure on a client whose
    session id no text holds (the secret's place taken by a marker), the
    secret shows no more often (only where the client's own words hold it,
    as ``0`` in the callback id ``...-cm-0``), and every word of the echo and
    the host name that the secret does not stand alone in is still there.
    """
    seen = failing_call_texts(holding(role, secret), CASES[name], f"{CONTEXT} {secret}")
    baseline = failing_call_texts(holding(role, BASELINE), CASES[name], f"{CONTEXT} {MARK}")
    words = [*CONTEXT.split(), "no-such-host.invalid"]
    for before, after in zip(baseline, seen, strict=True):
        assert showings(secret, after) <= showings(secret, before), f"{secret!r} shows"
        kept = [word for word in words if word in before and not showings(secret, word)]
        assert [word for word in kept if word not in after] == []
