"""The fake refuses malformed requests the way Ameyo does, so clients meet real error shapes.

Negative paging numbers and malformed login bodies are 400 ``InvalidInput``
naming what is wrong; a GET on the login path is 405 with ``Allow: POST``; a
callback path with more segments, or an id that is not UTF-8, is the
framework's plain-text 404; a
websocket is refused outright. In-process (httpx.ASGITransport): no socket.
"""

from __future__ import annotations

import httpx
import pytest
from _support import CAMPAIGN_PATH, fake_http

from ameyo_callbacks._protocol import DEFAULT_LOGIN_PATH
from ameyo_callbacks.testing import FakeAmeyo


@pytest.fixture
def fake() -> FakeAmeyo:
    fake = FakeAmeyo.seeded(20, campaigns=(6,))
    fake.add_user("asha", "t0ken")
    return fake


def assert_invalid_input(answer: httpx.Response, info: str) -> None:
    assert answer.status_code == 400
    assert answer.json() == {"message": "InvalidInput", "code": 40001, "info": info}


@pytest.mark.parametrize("name", ["limit", "offset"])
async def test_a_negative_paging_number_is_400_naming_it(
    fake: FakeAmeyo, http: httpx.AsyncClient, name: str
) -> None:
    """limit=-1 or offset=-1 is refused as an invalid value, naming the parameter."""
    params = {"campaignId": "6", "limit": "10", "offset": "0", name: "-1"}
    answer = await http.post(CAMPAIGN_PATH, params=params)
    assert_invalid_input(answer, f"invalid value in input: {name}")


async def test_get_on_the_login_path_is_405_allowing_post(fake: FakeAmeyo) -> None:
    """Login is POST only: a GET is 405 with Allow: POST, and makes no session."""
    async with fake_http(fake, session=False) as http:
        answer = await http.get(DEFAULT_LOGIN_PATH)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["message"] == "method.not.allowed"
    assert fake.login_count == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"userId=asha&token=t0ken", id="a-form-not-json"),
        pytest.param(b'["asha", "t0ken"]', id="a-json-list"),
    ],
)
async def test_a_login_body_that_is_no_json_object_is_400(fake: FakeAmeyo, body: bytes) -> None:
    """A login body that is not a JSON object: 400 InvalidInput saying one is expected."""
    async with fake_http(fake, session=False) as http:
        answer = await http.post(DEFAULT_LOGIN_PATH, content=body)
    assert_invalid_input(answer, "a JSON object is expected in input")
    assert fake.login_count == 0


@pytest.mark.parametrize(
    ("payload", "missing"),
    [
        pytest.param({"token": "t0ken"}, "userId", id="no-user"),
        pytest.param({"userId": "asha"}, "token", id="no-token"),
        pytest.param({"userId": "asha", "token": 12345}, "token", id="token-not-a-string"),
    ],
)
async def test_a_login_without_user_or_token_is_400_naming_it(
    fake: FakeAmeyo, payload: dict[str, object], missing: str
) -> None:
    """A login object without a string userId or token: 400 naming the first one missing."""
    async with fake_http(fake, session=False) as http:
        answer = await http.post(DEFAULT_LOGIN_PATH, json=payload)
    assert_invalid_input(answer, f"parameter expected in input: {missing}")
    assert fake.login_count == 0


async def test_delete_on_a_path_below_a_callback_is_the_frameworks_404(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """DELETE .../customerCallbacks/<id>/extra is no callback path: plain-text 404, none deleted."""
    first = fake.ordered_ids()[0]
    before = len(fake)
    path = f"/ameyorestapi/voice/customerCallbacks/{first}/extra"
    answer = await http.delete(path)
    assert answer.status_code == 404
    assert answer.text == f"Could not find resource for full path: {path}"
    assert len(fake) == before
    assert first in fake.ordered_ids()


async def test_delete_of_an_id_that_is_not_utf8_is_the_frameworks_404(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """An id percent-encoding bytes that are not UTF-8 names no callback: 404, none deleted."""
    before = len(fake)
    path = "/ameyorestapi/voice/customerCallbacks/%FF%FE"
    answer = await http.delete(path)
    assert answer.status_code == 404
    assert answer.text.startswith("Could not find resource for full path: ")
    assert len(fake) == before


async def test_a_websocket_scope_is_refused_as_not_http(fake: FakeAmeyo) -> None:
    """The fake speaks HTTP only: a websocket connection is a RuntimeError saying so."""

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        pytest.fail(f"the fake answered a websocket: {message}")  # pragma: no cover

    scope = {"type": "websocket", "path": "/", "headers": []}
    with pytest.raises(RuntimeError, match="speaks HTTP only, not 'websocket'"):
        await fake(scope, receive, send)
