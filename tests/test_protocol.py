"""Sans-I/O protocol: requests built and responses decoded as plain sync calls."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import format_datetime, formatdate
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from _support import (
    BASE,
    CALLBACK_ID,
    CALLBACKS_PREFIX,
    SAMPLE_MS,
    SESSION,
    TENANT_PATH,
    TOKEN,
    examples,
    spec_record,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ameyo_callbacks import (
    AmeyoError,
    APIError,
    AuthenticationError,
    CallbackFilter,
    CallbackNotFoundError,
    CustomerCallback,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    make_converter,
)
from ameyo_callbacks._protocol import (
    DEFAULT_LOGIN_PATH,
    JWT_REFUSED_KEY,
    MAX_LIMIT,
    NOT_FOUND_KEY,
    REDACTED,
    SNIPPET_CHARS,
    Answer,
    RequestSpec,
    build_delete_request,
    build_list_request,
    build_login_request,
    check_callback_id,
    decode_delete_response,
    decode_error,
    decode_list_response,
    decode_login_response,
    is_cut_short_ok,
    likely_full,
    parse_retry_after,
    scrub,
    tenant_list_path,
)
from ameyo_callbacks._session import jwt_refused

NOW = 1_700_000_000.0  # the decoders' clock, epoch seconds
CONVERTER = make_converter()
LIST_SPEC = build_list_request(
    method="POST", tenant_path=TENANT_PATH, where=CallbackFilter.campaign(6), limit=1, offset=0
)
DELETE_SPEC = build_delete_request(CALLBACK_ID)
LOGIN_SPEC = build_login_request(
    path=DEFAULT_LOGIN_PATH, user_id="admin", token=TOKEN, domain="ameyo", force_login=True
)
SPEC_RECORD = spec_record()
NOT_FOUND_INFO = json.dumps([NOT_FOUND_KEY, CALLBACK_ID])  # '["CallBackManager...", "d810-..."]'
HTML_500 = (
    b"<html><head><title>Error 500</title></head>"
    b"<body><h1>HTTP Status 500 - Internal Server Error</h1></body></html>"
)


def envelope(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _answer(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    spec: RequestSpec = DELETE_SPEC,
    secrets: Sequence[str] = (),
) -> Answer:
    return Answer(status, headers, body, spec=spec, now=NOW, secrets=secrets)


def _list(status: int, headers: dict[str, str], body: bytes, **kw: Any) -> Any:
    return decode_list_response(_answer(status, headers, body, LIST_SPEC, **kw), CONVERTER)


def _delete(status: int, headers: dict[str, str], body: bytes, **kw: Any) -> Any:
    return decode_delete_response(_answer(status, headers, body, **kw))


def _login(status: int, headers: dict[str, str], body: bytes, **kw: Any) -> Any:
    return decode_login_response(_answer(status, headers, body, LOGIN_SPEC, **kw))


def _error(status: int, headers: Mapping[str, str], body: bytes, **kw: Any) -> AmeyoError:
    return decode_error(_answer(status, headers, body, **kw))


DECODERS: dict[str, Callable[..., Any]] = {"list": _list, "delete": _delete, "login": _login}


# --------------------------------------------------------------------------
# (a) error answers -> exception class and attributes

ERROR_TABLE = [
    pytest.param(
        403,
        {},
        envelope(message=None, code=99999, info="invalid.session.id", status=403),
        AuthenticationError,
        {"key": "invalid.session.id", "key_args": (), "error_code": 99999, "from_envelope": True},
        id="403-invalid-session-id",
    ),
    pytest.param(
        401,
        {},
        envelope(message="invalid.authentication.token", code=909090, info=None, status=401),
        AuthenticationError,
        {"key": "invalid.authentication.token", "error_code": 909090, "from_envelope": True},
        id="401-invalid-authentication-token",
    ),
    pytest.param(
        401,
        {},
        b"Unauthorized",
        AuthenticationError,
        {"key": None, "from_envelope": False, "snippet": "Unauthorized"},
        id="401-plain-text",
    ),
    pytest.param(
        403,
        {},
        envelope(message="Forbidden", info="access.denied", status=403),
        APIError,
        {"key": "access.denied", "message": "Forbidden"},
        id="403-other-key-is-not-authentication",
    ),
    pytest.param(
        403,
        {},
        b"",
        APIError,
        {"key": None, "from_envelope": False, "snippet": ""},
        id="403-empty-body-is-not-authentication",
    ),
    pytest.param(
        512,
        {},
        envelope(message=None, info=NOT_FOUND_INFO, status=512, errorCode=5001),
        CallbackNotFoundError,
        {
            "key": NOT_FOUND_KEY,
            "key_args": (CALLBACK_ID,),
            "callback_id": CALLBACK_ID,
            "error_code": 5001,
            "from_envelope": True,
        },
        id="512-not-found-spec-sample",
    ),
    pytest.param(
        512,
        {},
        envelope(message=None, info=NOT_FOUND_INFO, status=512, code=5001),
        CallbackNotFoundError,
        {"key": NOT_FOUND_KEY, "error_code": 5001},
        id="512-number-named-code",
    ),
    pytest.param(
        512,
        {},
        envelope(message=None, info=NOT_FOUND_INFO, status=512, errorCode="5001"),
        CallbackNotFoundError,
        {"error_code": 5001},
        id="512-error-code-as-string",
    ),
    pytest.param(
        512,
        {},
        envelope(message=NOT_FOUND_INFO, info=None, status=512, errorCode=5001),
        CallbackNotFoundError,
        {"key": NOT_FOUND_KEY, "key_args": (CALLBACK_ID,), "callback_id": CALLBACK_ID},
        id="512-key-in-message",
    ),
    pytest.param(
        512,
        {},
        envelope(message="No such callback", info=NOT_FOUND_KEY, status=512),
        CallbackNotFoundError,
        {
            "key": NOT_FOUND_KEY,
            "key_args": (),
            "callback_id": CALLBACK_ID,  # from the request, as the body names none
            "message": "No such callback",
            "error_code": None,
        },
        id="512-bare-key-id-from-request",
    ),
    pytest.param(
        512,
        {},
        envelope(message=None, info='["CallBackManager.invalid', status=512),
        APIError,
        {
            "key": None,
            "key_args": (),
            "message": '["CallBackManager.invalid',
            "from_envelope": True,
        },
        id="512-key-not-json-raw-text-kept",
    ),
    pytest.param(
        512,
        {},
        envelope(
            message=None,
            info=json.dumps(["CampaignManager.invalid.campaign.id", "6"]),
            status=512,
            errorCode=512,
        ),
        APIError,
        {"key": "CampaignManager.invalid.campaign.id", "key_args": ("6",), "error_code": 512},
        id="512-other-key-is-plain-api-error",
    ),
    pytest.param(
        400,
        {},
        envelope(
            message="InvalidInput", code=40001, info="parameter expected in input: campaignId"
        ),
        APIError,
        {
            "key": "InvalidInput",
            "message": "parameter expected in input: campaignId",
            "error_code": 40001,
            "from_envelope": True,
        },
        id="400-invalid-input",
    ),
    pytest.param(
        404,
        {"content-type": "text/html"},
        b"<html><body><h1>HTTP Status 404 - Not Found</h1></body></html>",
        APIError,
        {"key": None, "error_code": None, "from_envelope": False},
        id="404-non-numeric-id",
    ),
    pytest.param(
        500,
        {"content-type": "text/html"},
        HTML_500,
        ServerError,
        {"key": None, "message": None, "from_envelope": False, "snippet": HTML_500.decode()},
        id="500-bare-html",
    ),
    pytest.param(
        500,
        {},
        envelope(message="Internal error, try later", info=None, status=500, errorCode=500),
        ServerError,
        {"message": "Internal error, try later", "error_code": 500, "from_envelope": True},
        id="500-envelope",
    ),
    pytest.param(
        500, {}, b"", ServerError, {"snippet": "", "from_envelope": False}, id="500-empty-body"
    ),
    pytest.param(
        500,
        {},
        b"\xff\xfe\x00 fault \xc3(",
        ServerError,
        {"from_envelope": False, "snippet": "\ufffd\ufffd\x00 fault \ufffd("},
        id="500-non-utf8-body",
    ),
    pytest.param(
        429,
        {"Retry-After": "120"},
        b"Too Many Requests",
        RateLimitedError,
        {"retry_after": 120.0},
        id="429-retry-after-seconds",
    ),
    pytest.param(
        429,
        {"retry-after": formatdate(NOW + 30, usegmt=True)},
        b"",
        RateLimitedError,
        {"retry_after": 30.0},
        id="429-retry-after-http-date",
    ),
    pytest.param(
        429, {}, b"", RateLimitedError, {"retry_after": None}, id="429-without-retry-after"
    ),
    pytest.param(502, {}, b"Bad Gateway", ServerError, {"retry_after": None}, id="502"),
    pytest.param(
        503, {"Retry-After": "7"}, b"", ServerError, {"retry_after": 7.0}, id="503-retry-after"
    ),
    pytest.param(504, {}, b"Gateway Timeout", ServerError, {}, id="504"),
    pytest.param(
        200,
        {},
        envelope(message=None, code=99999, info="invalid.session.id", status=403),
        AuthenticationError,
        {"status_code": 403, "key": "invalid.session.id"},
        id="2xx-carrying-session-envelope",
    ),
    pytest.param(
        200,
        {},
        envelope(message=None, info=NOT_FOUND_INFO, status=512, errorCode=5001),
        CallbackNotFoundError,
        {"status_code": 512, "callback_id": CALLBACK_ID},
        id="2xx-carrying-not-found-envelope",
    ),
    pytest.param(
        200,
        {},
        envelope(message="Something failed", code=1),
        ResponseFormatError,
        {"status_code": 200},
        id="2xx-envelope-without-error-status",
    ),
]


@pytest.mark.parametrize(("status", "headers", "body", "cls", "attrs"), ERROR_TABLE)
def test_error_answer_maps_to_exception(
    status: int, headers: dict[str, str], body: bytes, cls: type[AmeyoError], attrs: dict[str, Any]
) -> None:
    """Each error shape of WIRE_NOTES gives its exception class and decoded attributes."""
    error = _error(status, headers, body)
    assert type(error) is cls
    assert (error.method, error.path) == ("DELETE", DELETE_SPEC.path)
    expected = {"status_code": status, **attrs}
    assert {name: getattr(error, name) for name in expected} == expected
    assert f"HTTP {expected['status_code']}" in str(error)
    assert DELETE_SPEC.path in str(error)


@pytest.mark.parametrize("decoder", sorted(DECODERS))
@pytest.mark.parametrize(("status", "headers", "body", "cls", "attrs"), ERROR_TABLE)
def test_decoders_raise_what_decode_error_returns(
    decoder: str,
    status: int,
    headers: dict[str, str],
    body: bytes,
    cls: type[AmeyoError],
    attrs: dict[str, Any],
) -> None:
    """list, delete and login decoders raise the table's exception for each error answer."""
    with pytest.raises(cls) as info:
        DECODERS[decoder](status, headers, body)
    assert type(info.value) is cls
    shared = {k: v for k, v in attrs.items() if k != "callback_id"}
    assert {name: getattr(info.value, name) for name in shared} == shared


def test_not_found_key_wins_over_status() -> None:
    """The not-found key names the error whatever status carries it."""
    error = _error(500, {}, envelope(info=NOT_FOUND_INFO, status=500))
    assert type(error) is CallbackNotFoundError


def test_error_text_names_key_args_message_and_code() -> None:
    """The exception text shows the decoded key, its args, the message and the error code."""
    body = envelope(message="no such callback", info=NOT_FOUND_INFO, status=512, errorCode=5001)
    text = str(_error(512, {}, body))
    assert text.startswith(f"DELETE {DELETE_SPEC.path} answered HTTP 512: {NOT_FOUND_KEY}")
    assert CALLBACK_ID in text
    assert "no such callback" in text
    assert "(error code 5001)" in text


def test_error_text_quotes_a_body_that_is_not_an_envelope() -> None:
    """A non-envelope body is quoted (as its snippet) in the exception text."""
    assert "'Bad Gateway'" in str(_error(502, {}, b"Bad Gateway"))


def test_authentication_error_says_what_to_do() -> None:
    """An AuthenticationError tells the caller to log in again."""
    text = str(_error(401, {}, b""))
    assert "log in again" in text


def test_rate_limited_text_shows_the_wait() -> None:
    """A 429's text gives the Retry-After wait in seconds."""
    assert "(Retry-After 120 s)" in str(_error(429, {"Retry-After": "120"}, b""))


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_header_name_is_case_insensitive(name: str) -> None:
    """Retry-After is found whatever the case of the header name in a plain dict."""
    assert _error(429, {name: "9"}, b"").retry_after == 9.0


def test_retry_after_read_from_httpx_headers() -> None:
    """The decoders take httpx.Headers as they come from a response."""
    headers = httpx.Headers([("Retry-After", "11")])
    assert _error(429, headers, b"").retry_after == 11.0


@pytest.mark.parametrize("code", ["--5", "\u00b2", "9" * 5000, "5 5", "0x1F", 1.5, True])
def test_unreadable_error_code_is_none(code: object) -> None:
    """An errorCode that is not a plain integer is None, never a crash."""
    error = _error(512, {}, envelope(message="Failed", errorCode=code, status=512))
    assert type(error) is APIError
    assert error.error_code is None


def test_negative_error_code_is_kept() -> None:
    """A negative integer error code in a string is decoded."""
    assert _error(512, {}, envelope(message="Failed", errorCode=" -7 ")).error_code == -7


def test_huge_body_snippet_is_capped() -> None:
    """A megabyte body is cut to a short snippet, and the text stays short."""
    body = b"<html>" + b"x" * 1_000_000 + b"</html>"
    error = _error(500, {}, body)
    assert isinstance(error, ServerError)
    assert error.snippet.startswith("<html>xxx")
    assert error.snippet.endswith("...")
    assert len(error.snippet) == SNIPPET_CHARS + 3
    assert len(str(error)) < 2 * SNIPPET_CHARS + 200


def test_short_body_snippet_is_not_marked_cut() -> None:
    """A body shorter than the cap is kept whole, with no ellipsis."""
    assert _error(502, {}, b"Bad Gateway").snippet == "Bad Gateway"


@pytest.mark.parametrize(
    "body",
    [
        envelope(message=f"session {SESSION} is unknown", info="invalid.session.id", status=403),
        envelope(message=None, info=json.dumps(["invalid.session.id", SESSION]), status=403),
        f"<html>sessionId={SESSION} rejected</html>".encode(),
        b"\xff" + SESSION.encode() + b"\xfe",
    ],
    ids=["in-message", "in-key-args", "in-html", "in-non-utf8"],
)
def test_session_id_in_body_is_scrubbed(body: bytes) -> None:
    """The session id never reaches the exception text, snippet, message or key args."""
    error = _error(403, {}, body, secrets=(SESSION,))
    assert isinstance(error, APIError)
    rendered = " ".join(
        [str(error), repr(error.args), error.snippet, str(error.message), repr(error.key_args)]
    )
    assert SESSION not in rendered
    assert REDACTED in rendered


def test_secret_cut_at_the_snippet_end_is_scrubbed_first() -> None:
    """A secret straddling the snippet's end is redacted before the cut, not half-shown."""
    body = b"x" * (SNIPPET_CHARS - 5) + SESSION.encode() + b"y" * 50
    snippet = _error(500, {}, body, secrets=(SESSION,)).snippet
    assert SESSION[:5] not in snippet
    assert snippet == "x" * (SNIPPET_CHARS - 5) + REDACTED[:5] + "..."


def test_scrub_replaces_every_secret() -> None:
    """scrub() redacts every occurrence of every non-empty secret."""
    text = f"{SESSION} and {TOKEN} and {SESSION}"
    assert scrub(text, [SESSION, TOKEN, ""]) == f"{REDACTED} and {REDACTED} and {REDACTED}"
    assert scrub("nothing here", [SESSION]) == "nothing here"


@pytest.mark.parametrize(
    ("text", "secret", "scrubbed"),
    [
        ("the host of no-such-host.invalid", "s", "the host of no-such-host.invalid"),
        ("sessionId: s, sid=s&x, 's' \"s\"", "s", "sessionId: <r>, sid=<r>&x, '<r>' \"<r>\""),
        ("the server's answer", "s", "the server's answer"),
        ("abc's session", "abc", "<r>'s session"),
        ("abc-def and abc.", "abc", "<r>-def and <r>."),
        ("connection refused", "connect", "connection refused"),
        ("xx-sid-7f3a-SECRET-yy", "sid-7f3a-SECRET", "xx-<r>-yy"),
        ("glued:abcdefgh12yy", "abcdefgh12", "glued:<r>yy"),  # 8 or more: anywhere
        ("-x- and a-x-b", "-x-", "<r> and a<r>b"),  # ends that are not letters bind nothing
    ],
    ids=[
        "short-inside-words",
        "short-alone",
        "apostrophe",
        "possessive",
        "short-between-separators",
        "word-prefix",
        "long-between-separators",
        "long-glued",
        "separator-ends",
    ],
)
def test_scrub_takes_a_secret_only_where_it_stands_alone(
    text: str, secret: str, scrubbed: str
) -> None:
    """Under 8 characters a secret goes only where no letter or digit touches it; else anywhere."""
    assert scrub(text, [secret]) == scrubbed.replace("<r>", REDACTED)


def test_a_short_secret_that_is_also_a_json_number_leaves_the_envelope_readable() -> None:
    """Session id "1" and errorCode 1: still a ServerError with its code, not garbled JSON."""
    body = json.dumps({"message": "session 1 refused", "info": None, "status": 500, "errorCode": 1})
    error = _error(200, {}, body.encode(), secrets=("1",))
    assert isinstance(error, ServerError)
    assert error.error_code == 1
    assert "session <redacted> refused" in str(error)


@pytest.mark.parametrize("secret", [".", "token", "authentication", "invalid"])
def test_a_refused_jwt_is_known_by_its_key_whatever_short_secret_it_holds(secret: str) -> None:
    """A JWT that is a word of ``invalid.authentication.token``: the 401 still names that key.

    The key decides what the session does (renew the JWT), so it is read
    and shown as the wire gives it; the message beside it is scrubbed.
    """
    body = json.dumps(
        {"message": f"token {secret} refused", "info": JWT_REFUSED_KEY, "code": 909090}
    )
    error = _error(401, {}, body.encode(), secrets=(secret,))
    assert isinstance(error, AuthenticationError)
    assert error.key == JWT_REFUSED_KEY
    assert jwt_refused(error)
    assert error.message is not None
    assert f" {secret} " not in error.message


def test_deeply_nested_json_in_an_error_body_is_read_as_not_json() -> None:
    """A body nested deeper than json parses is an error answer all the same, no crash."""
    body = b"[" * 5000 + b"]" * 5000
    error = _error(500, {}, body, secrets=("s",))
    assert isinstance(error, ServerError)


def test_scrub_takes_the_longer_of_two_overlapping_secrets_whole() -> None:
    """A token that holds the session id is replaced whole, not left half-shown."""
    assert scrub("tok=ab-SECRET-cd", ["ab", "ab-SECRET-cd"]) == f"tok={REDACTED}"


# --------------------------------------------------------------------------
# (b) requests


def test_list_request_carries_spec_sample_in_spec_order() -> None:
    """getFiltered: limit, campaignId, offset, then every filter, with the spec's sample values."""
    where = CallbackFilter.campaign(
        6,
        user_ids=["Stieve"],
        from_date_added=SAMPLE_MS,
        to_date_added=SAMPLE_MS,
        from_date_scheduled=SAMPLE_MS,
        to_date_scheduled=SAMPLE_MS,
    )
    path = f"{CALLBACKS_PREFIX}/getFiltered"
    spec = build_list_request(
        method="POST", tenant_path=TENANT_PATH, where=where, limit=1, offset=0, info=False
    )
    assert (spec.kind, spec.method, spec.path, spec.body) == ("list", "POST", path, None)
    assert spec.params == (
        ("limit", "1"),
        ("campaignId", "6"),
        ("offset", "0"),
        ("userIds", "Stieve"),
        ("fromDateAdded", "1521539038782"),
        ("toDateAdded", "1521539038782"),
        ("fromDateScheduled", "1521539038782"),
        ("toDateScheduled", "1521539038782"),
        ("info", "false"),
    )


def test_user_ids_are_repeated_parameters() -> None:
    """userIds is sent once per user, in order, not comma-joined."""
    spec = build_list_request(
        method="GET",
        tenant_path=TENANT_PATH,
        where=CallbackFilter.campaign(6, user_ids=("Stieve", "ravi", "Stieve")),
        limit=MAX_LIMIT,
        offset=200,
    )
    url = httpx.URL(BASE + spec.path, params=spec.params)
    assert (
        url.query == b"limit=100&campaignId=6&offset=200&userIds=Stieve&userIds=ravi&userIds=Stieve"
    )


def test_unset_filters_are_left_out() -> None:
    """With no filters only limit, campaignId and offset are sent."""
    assert LIST_SPEC.params == (("limit", "1"), ("campaignId", "6"), ("offset", "0"))


@pytest.mark.parametrize(
    ("info", "expected"), [(None, []), (True, [("info", "true")]), (False, [("info", "false")])]
)
def test_info_is_sent_only_when_given(info: bool | None, expected: list[tuple[str, str]]) -> None:
    """info goes on the wire, last, only when the caller set it (some servers answer 405 to it)."""
    spec = build_list_request(
        method="POST",
        tenant_path=TENANT_PATH,
        where=CallbackFilter.campaign(6, user_ids=["asha"]),
        limit=1,
        offset=0,
        info=info,
    )
    base = [("limit", "1"), ("campaignId", "6"), ("offset", "0"), ("userIds", "asha")]
    assert list(spec.params) == base + expected


def test_tenant_list_has_no_campaign_id() -> None:
    """The tenant list goes to tenant_path and sends limit and offset only."""
    spec = build_list_request(
        method="POST", tenant_path="/t", where=CallbackFilter.tenant(), limit=5, offset=10
    )
    assert spec.path == "/t"
    assert spec.params == (("limit", "5"), ("offset", "10"))


def test_campaign_list_goes_to_get_filtered_whatever_the_tenant_path() -> None:
    """A campaign filter always calls getFiltered; tenant_path only places the tenant list."""
    assert LIST_SPEC.path == f"{CALLBACKS_PREFIX}/getFiltered"


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("getTenantUserCallbacks", TENANT_PATH),
        ("getTenantUserCallbacks/", TENANT_PATH),
        ("/custom/tenantList/", "/custom/tenantList"),
    ],
)
def test_tenant_list_path_places_a_segment_below_the_prefix(setting: str, path: str) -> None:
    """A relative tenant path goes below the callbacks prefix; an absolute one is kept."""
    assert tenant_list_path(setting) == path


@pytest.mark.parametrize("setting", ["", "/", "//"])
def test_tenant_list_path_refuses_an_empty_path(setting: str) -> None:
    """An empty tenant path is a ValueError naming tenant_callbacks_path."""
    with pytest.raises(ValueError, match="tenant_callbacks_path"):
        tenant_list_path(setting)


def test_delete_request_for_spec_sample() -> None:
    """DELETE .../customerCallbacks/<id> with the spec's JSON body."""
    spec = build_delete_request(CALLBACK_ID)
    assert (spec.kind, spec.method) == ("delete", "DELETE")
    assert spec.path == f"{CALLBACKS_PREFIX}/{CALLBACK_ID}"
    assert spec.params == ()
    assert spec.body == {"customerCallbackId": CALLBACK_ID}
    assert json.dumps(spec.body) == '{"customerCallbackId": "d810-59423051-cm-0"}'
    assert spec.callback_id == CALLBACK_ID


def _single_segment(callback_id: str) -> None:
    spec = build_delete_request(callback_id)
    url = httpx.URL(BASE + spec.path)
    raw = url.raw_path.decode("ascii")
    prefix = f"{CALLBACKS_PREFIX}/"
    assert raw.startswith(prefix)
    segment = raw[len(prefix) :]
    assert "/" not in segment
    assert "?" not in segment
    assert "#" not in segment
    assert unquote(segment) == callback_id
    assert segment not in {".", ".."}
    assert url.query == b""
    assert url.fragment == ""
    assert url.path == f"{prefix}{callback_id}"
    assert spec.body == {"customerCallbackId": callback_id}


@pytest.mark.parametrize(
    "callback_id",
    ["a/b", "..", ".", "...", "?x", "#x", "%2F", "%2E", "a b", " x ", "ünïcode-ü", "☎/☎", "a\\b"],
)
def test_delete_path_is_exactly_one_segment(callback_id: str) -> None:
    """The id is percent-encoded as one path segment that decodes back to the id."""
    _single_segment(callback_id)


@settings(max_examples=examples(300), deadline=None)
@given(callback_id=st.text(min_size=1).filter(str.strip))
def test_any_callback_id_is_one_segment(callback_id: str) -> None:
    """Whatever the id, the DELETE URL has one segment after the prefix, decoding to the id."""
    _single_segment(callback_id)


def test_login_request_body_and_repr() -> None:
    """Login posts userId, token, forceLogin and domain; the repr hides the token."""
    assert (LOGIN_SPEC.kind, LOGIN_SPEC.method, LOGIN_SPEC.path) == (
        "login",
        "POST",
        DEFAULT_LOGIN_PATH,
    )
    assert LOGIN_SPEC.body == {
        "userId": "admin",
        "token": TOKEN,
        "forceLogin": True,
        "domain": "ameyo",
    }
    assert TOKEN not in repr(LOGIN_SPEC)


def test_login_request_without_domain_leaves_it_out() -> None:
    """domain=None sends no domain field (the hosted variant has none)."""
    spec = build_login_request(
        path="/ameyorestapi/session/userLogin",
        user_id="admin",
        token=TOKEN,
        domain=None,
        force_login=False,
    )
    assert spec.body == {"userId": "admin", "token": TOKEN, "forceLogin": False}


# --------------------------------------------------------------------------
# (c) argument checks


def _list_with(**changes: Any) -> RequestSpec:
    kwargs: dict[str, Any] = {
        "method": "POST",
        "tenant_path": TENANT_PATH,
        "where": CallbackFilter.campaign(6),
        "limit": 1,
        "offset": 0,
        **changes,
    }
    return build_list_request(**kwargs)


@pytest.mark.parametrize(
    ("changes", "exc", "name"),
    [
        ({"limit": 0}, ValueError, "limit"),
        ({"limit": MAX_LIMIT + 1}, ValueError, "limit"),
        ({"limit": -1}, ValueError, "limit"),
        ({"limit": True}, TypeError, "limit"),
        ({"limit": 1.5}, TypeError, "limit"),
        ({"limit": "10"}, TypeError, "limit"),
        ({"offset": -1}, ValueError, "offset"),
        ({"offset": False}, TypeError, "offset"),
        ({"offset": 0.0}, TypeError, "offset"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_bad_list_arguments_are_named(
    changes: dict[str, Any], exc: type[Exception], name: str
) -> None:
    """A bad limit or offset raises ValueError/TypeError naming the argument."""
    with pytest.raises(exc, match=rf"\b{name}\b"):
        _list_with(**changes)


@pytest.mark.parametrize("limit", [1, MAX_LIMIT])
def test_limit_bounds_are_inclusive(limit: int) -> None:
    """limit 1 and limit 100 are both accepted."""
    assert _list_with(limit=limit).params[0] == ("limit", str(limit))


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        ("", ValueError),
        ("   ", ValueError),
        ("\t\n", ValueError),
        (5, TypeError),
        (None, TypeError),
        (b"d810", TypeError),
    ],
)
def test_bad_callback_id_is_named(value: object, exc: type[Exception]) -> None:
    """An empty, blank or non-str callback id is refused before any request."""
    with pytest.raises(exc, match="customer_callback_id"):
        check_callback_id(value)
    with pytest.raises(exc, match="customer_callback_id"):
        build_delete_request(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# list answers


def test_list_answer_becomes_records() -> None:
    """A 200 JSON array of the spec's records gives CustomerCallback records."""
    body = json.dumps([SPEC_RECORD, {**SPEC_RECORD, "customerCallbackId": "x", "extraInfo": 1}])
    records = _list(200, {}, body.encode())
    assert [r.customer_callback_id for r in records] == [CALLBACK_ID, "x"]
    assert all(isinstance(r, CustomerCallback) for r in records)
    assert records[1].extra == {"extraInfo": 1}


def test_empty_array_is_no_records() -> None:
    """A 200 [] is an empty list."""
    assert _list(200, {}, b"[]") == []


def test_misfit_record_names_field_and_index() -> None:
    """A record that does not fit raises ResponseFormatError naming the field and index."""
    body = json.dumps([SPEC_RECORD, {**SPEC_RECORD, "campaignId": "6"}]).encode()
    with pytest.raises(ResponseFormatError) as info:
        _list(200, {}, body)
    assert (info.value.field, info.value.index, info.value.status_code) == ("campaignId", 1, 200)
    assert "record 1" in str(info.value)
    assert "'campaignId'" in str(info.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b"<html>maintenance</html>", "not JSON"),
        (b'[{"customerCallbackId": ', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"\xff\xfe\xfa", "not JSON"),
        (json.dumps({"items": []}).encode(), "does not fit"),
        (b"null", "does not fit"),
    ],
    ids=["empty", "blank", "html", "truncated", "deep", "non-utf8", "object", "null"],
)
def test_list_answer_that_is_not_records_is_a_format_error(body: bytes, reason: str) -> None:
    """A 2xx list answer that is not a JSON array of records raises ResponseFormatError."""
    with pytest.raises(ResponseFormatError, match=reason) as info:
        _list(200, {}, body)
    assert info.value.status_code == 200
    assert info.value.method == "POST"
    assert len(info.value.snippet) <= SNIPPET_CHARS + 3


def test_list_format_error_scrubs_the_session() -> None:
    """A garbled list answer holding the session id does not show it."""
    body = f"<html>session {SESSION}</html>".encode()
    with pytest.raises(ResponseFormatError) as info:
        _list(200, {}, body, secrets=(SESSION,))
    assert SESSION not in str(info.value)
    assert SESSION not in info.value.snippet


# --------------------------------------------------------------------------
# (d) delete answers


@pytest.mark.parametrize("body", [b"OK", b"ok", b'"OK"', b'"ok"', b"OK\n", b' "ok" '])
@pytest.mark.parametrize("status", [200, 204])
def test_delete_ok_answers_succeed(status: int, body: bytes) -> None:
    """OK or ok, bare or JSON-quoted, with a 2xx status, is a successful delete."""
    assert _delete(status, {}, body) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"Ok", b"OKAY", b"true", b'{"ok": true}', b'"OK', b"<html>OK</html>", b"\xff", b"[]"],
)
def test_delete_other_2xx_answer_is_a_format_error(body: bytes) -> None:
    """Any other 2xx delete answer raises ResponseFormatError with its status."""
    with pytest.raises(ResponseFormatError) as info:
        _delete(200, {}, body)
    assert info.value.status_code == 200
    assert info.value.path == DELETE_SPEC.path


@pytest.mark.parametrize(
    ("body", "cut"),
    [
        (b"", True),
        (b"  ", True),
        (b"O", True),
        (b"o", True),
        (b'"', True),
        (b'"O', True),
        (b'"OK', True),
        (b"OK", False),
        (b'"ok"', False),
        (b"Ok", False),
        (b"OKAY", False),
        (b"<html>OK</html>", False),
        (b"K", False),
        (b"true", False),
    ],
)
def test_a_cut_short_ok_is_told_from_other_bodies(body: bytes, cut: bool) -> None:
    """Empty, or a start of "OK"/"ok" (bare or quoted), and not a whole one: lost its end."""
    assert is_cut_short_ok(body) is cut


def test_delete_unknown_id_is_callback_not_found() -> None:
    """The spec's 512 failure answer raises CallbackNotFoundError for that id."""
    body = envelope(message=None, info=NOT_FOUND_INFO, status=512, errorCode=5001)
    with pytest.raises(CallbackNotFoundError) as info:
        _delete(512, {}, body)
    assert info.value.callback_id == CALLBACK_ID
    assert info.value.status_code == 512


# --------------------------------------------------------------------------
# (e) login answers


@pytest.mark.parametrize(
    "payload",
    [
        {"userSessionInfo": {"sessionId": SESSION, "userId": "admin"}, "status": "ok"},
        {"sessionId": SESSION},
        {"userSessionInfo": {"sessionId": ""}, "sessionId": SESSION},
    ],
    ids=["ameyo-4x", "hosted", "nested-blank-falls-back"],
)
def test_login_answer_gives_session_id(payload: dict[str, Any]) -> None:
    """Both login answer shapes give the session id."""
    answer = _login(200, {}, json.dumps(payload).encode())
    assert (answer.session_id, answer.jwt) == (SESSION, None)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"session": SESSION}).encode(),
        json.dumps({"sessionId": 12345}).encode(),
        json.dumps({"sessionId": "   "}).encode(),
        json.dumps({"userSessionInfo": SESSION}).encode(),
        json.dumps([SESSION]).encode(),
        f"<html>{SESSION}</html>".encode(),
        SESSION.encode(),
        b"",
    ],
    ids=["wrong-key", "int", "blank", "flat-info", "array", "html", "bare", "empty"],
)
def test_malformed_login_answer_does_not_quote_body(body: bytes) -> None:
    """A login answer without a session id raises ResponseFormatError that never quotes the body."""
    with pytest.raises(ResponseFormatError) as info:
        _login(200, {}, body)
    assert SESSION not in str(info.value)
    assert info.value.snippet == ""
    assert info.value.status_code == 200
    assert "sessionId" in str(info.value)


def test_login_refused_hides_the_token() -> None:
    """A 401 login answer echoing the token does not show it."""
    body = envelope(message=f"bad token {TOKEN}", code=909090, info="invalid.authentication.token")
    with pytest.raises(AuthenticationError) as info:
        _login(401, {}, body, secrets=(TOKEN,))
    assert TOKEN not in str(info.value)
    assert TOKEN not in info.value.snippet
    assert TOKEN not in str(info.value.message)


# --------------------------------------------------------------------------
# (f) Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW + 3600, usegmt=True), 3600.0),
        (formatdate(NOW - 60, usegmt=True), 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        (
            format_datetime(datetime.fromtimestamp(NOW + 45, timezone.utc), usegmt=False),
            45.0,
        ),
        (
            datetime.fromtimestamp(NOW + 20, timezone.utc).strftime("%A, %d-%b-%y %H:%M:%S GMT"),
            20.0,
        ),
        (datetime.fromtimestamp(NOW + 10, timezone.utc).strftime("%a %b %d %H:%M:%S %Y"), 10.0),
    ],
    ids=[
        "seconds",
        "padded",
        "zero",
        "date+30",
        "date+3600",
        "date-past",
        "rfc-example",
        "numeric-zone",
        "rfc850",
        "asctime",
    ],
)
def test_retry_after_values(value: str, expected: float) -> None:
    """Retry-After seconds or an HTTP date (any of the three formats) give seconds from now."""
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "soon",
        "-5",
        "1.5",
        "\u00b2",
        "\u0661\u0662",
        "Mon, 31 Feb 2020 00:00:00 GMT",
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
    ],
)
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    """An absent, negative, fractional, non-ASCII or impossible Retry-After gives None."""
    assert parse_retry_after(value, now=NOW) is None


# --------------------------------------------------------------------------
# (g) fuzz: anything from the wire -> a result or an AmeyoError


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=15,
)
tricky_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            NOT_FOUND_KEY,
            NOT_FOUND_INFO,
            "invalid.session.id",
            "invalid.authentication.token",
            "InvalidInput",
            SESSION,
            f"session {SESSION}",
            "--5",
            "\u00b2",
            "9" * 5000,
            " -42 ",
            "[",
            "[]",
            "[5]",
            '["k"',
            '[""]',
        ]
    ),
    st.lists(json_values, max_size=4).map(json.dumps),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
)
field_values = json_values | tricky_text
valid_values: dict[str, st.SearchStrategy[Any]] = {
    "customerCallbackId": st.text(max_size=20),
    "campaignId": st.integers(),
    "callbackTime": st.integers(-62_135_596_800_000, 253_402_300_799_999),
    "selfCallback": st.booleans(),
    "userId": st.none() | st.text(max_size=10),
    "phone": st.text(max_size=15),
    "customerId": st.none() | st.integers(),
    "dateAdded": st.integers(-62_135_596_800_000, 253_402_300_799_999),
}
valid_records = st.fixed_dictionaries(valid_values)
partial_records = st.fixed_dictionaries(
    {},
    optional={
        **{name: strategy | field_values for name, strategy in valid_values.items()},
        "extraField": field_values,
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        ("message", "info", "status", "errorCode", "code", "sessionId"), field_values
    ),
)
login_answers = st.one_of(
    st.builds(lambda s: {"sessionId": s}, field_values),
    st.builds(lambda s: {"userSessionInfo": {"sessionId": s}}, field_values),
    st.builds(lambda s: {"userSessionInfo": s}, field_values),
)


def _dump(value: object) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(_dump),
    st.lists(valid_records, max_size=4).map(_dump),
    st.lists(partial_records | json_values, max_size=4).map(_dump),
    envelopes.map(_dump),
    login_answers.map(_dump),
    st.tuples(
        st.one_of(envelopes, st.lists(partial_records, max_size=3), login_answers).map(_dump),
        st.integers(0, 400),
    ).map(lambda t: t[0][: t[1]]),
    st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 100_000).map(lambda n: b"[" * n),
    st.sampled_from(
        [b"OK", b"ok", b'"OK"', b" ok\n", b"", b"null", b"[]", b"{}", b"[" + b"9" * 5000 + b"]"]
    ),
    json_values.map(lambda v: json.dumps(v).encode("utf-16")),
    st.binary(max_size=50).map(lambda b: b + SESSION.encode() + b),
)
retry_after_values = st.one_of(
    st.text(max_size=40),
    st.integers(-10, 10**6).map(str),
    st.floats().map(str),
    st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: format_datetime(d, usegmt=True)),
    st.sampled_from(
        ["\u00b2", "9" * 400, "Sun Nov  6 08:49:37 1994", "Mon, 01 Jan 99999 00:00:00"]
    ),
)
header_maps = st.dictionaries(
    st.sampled_from(["Retry-After", "retry-after", "RETRY-AFTER", "content-type", "x-request-id"]),
    retry_after_values,
    max_size=3,
)
statuses = st.one_of(
    st.sampled_from([200, 201, 204]),
    st.sampled_from([401, 403, 404, 429, 500, 502, 503, 504, 512]),
    st.integers(100, 599),
)
FUZZ = settings(
    max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check_error(error: AmeyoError) -> None:
    text = str(error)
    assert SESSION not in text
    assert SESSION not in getattr(error, "snippet", "")
    if isinstance(error, APIError):
        assert SESSION not in str(error.message)
        assert SESSION not in repr(error.key_args)
        assert error.retry_after is None or error.retry_after >= 0


@FUZZ
@given(status=statuses, headers=header_maps, body=bodies)
def test_fuzz_list_decoder(status: int, headers: dict[str, str], body: bytes) -> None:
    """decode_list_response gives a list of records or raises an AmeyoError, never anything else."""
    try:
        result = _list(status, headers, body, secrets=(SESSION,))
    except AmeyoError as error:
        _check_error(error)
    else:
        assert 200 <= status < 300
        assert isinstance(result, list)
        assert all(type(r) is CustomerCallback for r in result)


@FUZZ
@given(status=statuses, headers=header_maps, body=bodies)
def test_fuzz_delete_decoder(status: int, headers: dict[str, str], body: bytes) -> None:
    """decode_delete_response gives None or raises an AmeyoError, never anything else."""
    try:
        result = _delete(status, headers, body, secrets=(SESSION,))
    except AmeyoError as error:
        _check_error(error)
    else:
        assert 200 <= status < 300
        assert result is None
        assert body.strip() in {b"OK", b"ok", b'"OK"', b'"ok"'}


@FUZZ
@given(status=statuses, headers=header_maps, body=bodies)
def test_fuzz_login_decoder(status: int, headers: dict[str, str], body: bytes) -> None:
    """decode_login_response gives a non-empty session id or raises an AmeyoError."""
    try:
        result = _login(status, headers, body, secrets=(SESSION,))
    except AmeyoError as error:
        _check_error(error)
    else:
        assert 200 <= status < 300
        assert isinstance(result.session_id, str)
        assert result.session_id.strip()


@FUZZ
@given(status=statuses, headers=header_maps, body=bodies)
def test_fuzz_decode_error(status: int, headers: dict[str, str], body: bytes) -> None:
    """decode_error always returns an AmeyoError for any status, headers and body."""
    error = _error(status, headers, body, secrets=(SESSION,))
    assert isinstance(error, AmeyoError)
    _check_error(error)


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("n", [0, 1, 99, 100, 101])
def test_likely_full_counts_the_records_of_a_body_without_parsing_it(
    n: int, indent: int | None
) -> None:
    """A page of n records seems full for a limit of n or less, and not for more."""
    body = json.dumps([spec_record(customerCallbackId=f"id-{i}") for i in range(n)], indent=indent)
    assert likely_full(body.encode(), n)
    assert not likely_full(body.encode(), n + 1)
    assert likely_full(body.encode(), max(n - 1, 0))
