"""Sans-I/O protocol: build requests, decode responses or raise. Pure functions.

Nothing here awaits, sends or sleeps: every function takes plain values and
returns plain values (or raises), so the wire rules are tested without an
event loop or a server.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import attrs
import cattrs

from ._checks import check_int
from ._convert import RecordError, structure_callbacks
from ._filters import CallbackFilter
from ._models import CustomerCallback
from .exceptions import (
    AmeyoError,
    APIError,
    AuthenticationError,
    CallbackNotFoundError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)

__all__ = [
    "CALLBACKS_PREFIX",
    "CAMPAIGN_LIST_PATH",
    "DEFAULT_LOGIN_PATH",
    "DEFAULT_REFRESH_PATH",
    "JWT_REFUSED_KEY",
    "MAX_LIMIT",
    "NOT_FOUND_KEY",
    "SESSION_INVALID_KEYS",
    "Answer",
    "LoginAnswer",
    "RequestSpec",
    "build_delete_request",
    "build_list_request",
    "build_login_request",
    "build_refresh_request",
    "check_callback_id",
    "decode_delete_response",
    "decode_error",
    "decode_list_response",
    "decode_login_response",
    "decode_refresh_response",
    "is_cut_short_ok",
    "likely_full",
    "parse_retry_after",
    "scrub",
    "session_headers",
    "tenant_list_path",
]

CALLBACKS_PREFIX = "/ameyorestapi/voice/customerCallbacks"
CAMPAIGN_LIST_PATH = f"{CALLBACKS_PREFIX}/getFiltered"
DEFAULT_LOGIN_PATH = "/ameyorestapi/userLogin/login"
#: Where a JWT server renews the JWT of a session (WIRE_NOTES, "Seen since").
DEFAULT_REFRESH_PATH = "/ameyorestapi/session/refreshToken"
#: The key of a 401 for a missing, expired or invalid JWT (or, on such servers, session).
JWT_REFUSED_KEY = "invalid.authentication.token"
MAX_LIMIT = 100
NOT_FOUND_KEY = "CallBackManager.invalid.campcust.callback.id"
SESSION_INVALID_KEYS = frozenset({"invalid.session.id", JWT_REFUSED_KEY})
#: The keys the library acts on: Ameyo's own words, shown as they are (never a secret).
_KNOWN_KEYS = frozenset({*SESSION_INVALID_KEYS, NOT_FOUND_KEY})
SNIPPET_CHARS = 200
_MESSAGE_CHARS = 300
REDACTED = "<redacted>"

Kind = Literal["list", "delete", "login", "refresh"]

_KEY_LIKE = re.compile(r"^[A-Za-z][\w.\-]*$")
_INT_TEXT = re.compile(r"-?[0-9]+")
_OK_BODIES = frozenset({b"OK", b"ok", b'"OK"', b'"ok"'})


# --------------------------------------------------------------------------
# Requests


@attrs.frozen
class RequestSpec:
    """One request, before I/O: method, path below the base URL, query, JSON body.

    ``body`` is left out of the repr: the login request carries a token.
    """

    kind: Kind
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = attrs.field(default=None, repr=False)
    callback_id: str | None = None


def check_callback_id(callback_id: object) -> str:
    """A callback id is a non-blank string."""
    if not isinstance(callback_id, str):
        msg = f"customer_callback_id must be a str, got {type(callback_id).__name__}"
        raise TypeError(msg)
    if not callback_id.strip():
        msg = "customer_callback_id must not be empty or blank"
        raise ValueError(msg)
    if not _encodable(callback_id):
        msg = f"customer_callback_id {callback_id!r} cannot be encoded as UTF-8"
        raise ValueError(msg)
    return callback_id


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def tenant_list_path(tenant_callbacks_path: str) -> str:
    """Where the tenant-wide list lives: a segment below the callbacks prefix, or absolute.

    The spec names the "Get Tenant User Callback API" without a wire format;
    the client and the fake both place it by this one rule.
    """
    if not isinstance(tenant_callbacks_path, str):
        msg = (
            "tenant_callbacks_path must be a path string, e.g. 'getTenantUserCallbacks', "
            f"got {type(tenant_callbacks_path).__name__}"
        )
        raise TypeError(msg)
    if not tenant_callbacks_path.strip("/"):
        msg = "tenant_callbacks_path must be a non-empty path, e.g. 'getTenantUserCallbacks'"
        raise ValueError(msg)
    if tenant_callbacks_path.startswith("/"):
        return tenant_callbacks_path.rstrip("/")
    return f"{CALLBACKS_PREFIX}/{tenant_callbacks_path.strip('/')}"


def build_list_request(
    *,
    method: str,
    tenant_path: str,
    where: CallbackFilter,
    limit: int,
    offset: int,
    info: bool | None = None,
) -> RequestSpec:
    """getFiltered (a campaign filter) or the tenant list at ``tenant_path``.

    Parameters go in the query string, as the spec shows, for POST and GET
    alike: ``limit``, ``campaignId``, ``offset``, then the filters, then
    ``info`` when given (some servers refuse it: WIRE_NOTES).
    """
    check_int("limit", limit, minimum=1, maximum=MAX_LIMIT)
    check_int("offset", offset, minimum=0)
    params: list[tuple[str, str]] = [("limit", str(limit))]
    if where.campaign_id is not None:
        params.append(("campaignId", str(where.campaign_id)))
    params.append(("offset", str(offset)))
    params.extend(where.params())
    if info is not None:
        params.append(("info", "true" if info else "false"))
    path = CAMPAIGN_LIST_PATH if where.campaign_id is not None else tenant_path
    return RequestSpec(kind="list", method=method, path=path, params=tuple(params))


def _path_segment(value: str) -> str:
    # quote(safe="") encodes "/", "?", "#" and "%"; dot segments are not
    # encoded by quote() but would be collapsed by URL normalisation.
    segment = quote(value, safe="")
    if segment in {".", ".."}:
        segment = segment.replace(".", "%2E")
    return segment


def build_delete_request(callback_id: str) -> RequestSpec:
    """DELETE ``.../customerCallbacks/<id>`` with the spec's JSON body."""
    check_callback_id(callback_id)
    return RequestSpec(
        kind="delete",
        method="DELETE",
        path=f"{CALLBACKS_PREFIX}/{_path_segment(callback_id)}",
        body={"customerCallbackId": callback_id},
        callback_id=callback_id,
    )


def build_login_request(
    *, path: str, user_id: str, token: str, domain: str | None, force_login: bool
) -> RequestSpec:
    """The login call of WIRE_NOTES: POST ``{"domain","userId","token","forceLogin"}``."""
    body: dict[str, Any] = {"userId": user_id, "token": token, "forceLogin": force_login}
    if domain is not None:
        body["domain"] = domain
    return RequestSpec(kind="login", method="POST", path=path, body=body)


def build_refresh_request(*, path: str, user_id: str) -> RequestSpec:
    """The JWT renewal of WIRE_NOTES: POST ``{"userId"}``, sent with the session's headers."""
    return RequestSpec(kind="refresh", method="POST", path=path, body={"userId": user_id})


def session_headers(session_id: str | None, jwt: str | None = None) -> dict[str, str]:
    """The headers a session sends: ``sessionId``, and the JWT as a raw ``Authorization``.

    A JWT server wants the token itself, with no ``Bearer`` before it (WIRE_NOTES).
    """
    headers = {} if session_id is None else {"sessionId": session_id}
    if jwt is not None:
        headers["Authorization"] = jwt
    return headers


# --------------------------------------------------------------------------
# Responses


#: A secret shorter than this is redacted only where it stands as a whole value.
WHOLE_VALUE_BELOW = 8
#: A letter or digit, of any script.
_ALNUM = r"[^\W_]"


@functools.lru_cache(maxsize=64)
def _whole_value(secret: str) -> re.Pattern[str]:
    """``secret`` with no letter or digit glued to an end of it that is one itself.

    An apostrophe after a letter continues the word before it (the ``s`` of
    ``server's`` is not a value of its own; the one in ``'s'`` is).
    """
    before = rf"(?<!{_ALNUM})(?<!{_ALNUM}')" if re.fullmatch(_ALNUM, secret[0]) else ""
    after = rf"(?!{_ALNUM})" if re.fullmatch(_ALNUM, secret[-1]) else ""
    return re.compile(before + re.escape(secret) + after)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace each known secret in ``text`` with ``<redacted>``, leaving every other word whole.

    A secret of :data:`WHOLE_VALUE_BELOW` (8) characters or more is replaced
    wherever it stands, even glued to other text: no word of a message holds
    a random session id or token by chance. A shorter one (``session_id="s"``
    in a quick test) is replaced only where it stands as a whole value, with
    no letter or digit glued to it (``sessionId: s``, ``'s'``, ``=s&``), so
    ``host``, ``no-such-host`` and ``server's`` keep their ``s``.
    Longer secrets go first, so one that holds another is replaced whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret not in text:
            continue
        if len(secret) >= WHOLE_VALUE_BELOW:
            text = text.replace(secret, REDACTED)
        else:
            text = _whole_value(secret).sub(REDACTED, text)
    return text


def _snippet(body: bytes, secrets: Sequence[str]) -> str:
    text = body[: SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    text = scrub(text, secrets)
    return text[:SNIPPET_CHARS] + ("..." if len(body) > SNIPPET_CHARS else "")


def _loads(body: bytes) -> Any:
    """json.loads, with every way it can fail folded into ValueError."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(str(exc)) from None


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Retry-After in seconds (``"120"``) or as an HTTP date; seconds from ``now`` (epoch s).

    Returns None when absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit() takes it, float() does not
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a 20-digit year
        return None
    if when.tzinfo is None:  # asctime dates carry no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _is_envelope(payload: object) -> bool:
    return isinstance(payload, dict) and any(
        k in payload for k in ("errorCode", "code", "info", "message")
    )


def _split_key(text: object) -> tuple[str, tuple[str, ...]] | None:
    """``'["Key", "arg"]'`` -> ("Key", ("arg",)); a bare dotted key -> (key, ())."""
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except (ValueError, RecursionError):
            return None
        if isinstance(items, list) and items and isinstance(items[0], str):
            return items[0], tuple(str(a) for a in items[1:])
        return None
    if _KEY_LIKE.match(stripped):
        return stripped, ()
    return None


def _find_key(*candidates: object) -> tuple[str, tuple[str, ...]] | None:
    """The key: a JSON-array string wins over a bare dotted word; ``info`` before ``message``."""
    arrays = [c for c in candidates if isinstance(c, str) and c.strip().startswith("[")]
    for candidate in (*arrays, *candidates):
        found = _split_key(candidate)
        if found is not None:
            return found
    return None


def _int_or_none(value: object) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # more digits than int() converts
            return None
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by lower-case ``name``; field names are case-insensitive, a plain dict is not."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


@attrs.frozen
class Answer:
    """One HTTP answer, and what the decoders read it against.

    ``spec`` is the request it answers (its method, path and kind go into
    errors); ``now`` is the wall-clock time it arrived (an HTTP-date
    ``Retry-After`` counts from it); ``secrets`` are the strings no error may
    quote (the session id, the login token).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    spec: RequestSpec
    now: float
    secrets: Sequence[str] = ()


def _envelope_texts(
    payload: Mapping[str, Any],
) -> tuple[tuple[str, tuple[str, ...]] | None, str | None]:
    """An envelope's key and args, and its human message, as the wire gives them.

    The key as given decides the error, and one of the keys the library acts
    on is shown as it is (``AuthenticationError.key`` of a refused JWT says
    so); any other, and the message, are scrubbed (by the caller). A short
    secret ("." or "session" in a test) scrubbed out of ``invalid.session.id``
    first would turn an expired session into a plain APIError.
    """
    raw_message, raw_info = payload.get("message"), payload.get("info")
    found = _find_key(raw_info, raw_message)
    texts = [t for t in (raw_message, raw_info) if isinstance(t, str) and t.strip()]
    # Human text: whatever is not the key itself (bare, or as a JSON array).
    human = [t for t in texts if found is None or _split_key(t) != found]
    return found, human[0] if human else None


def decode_error(answer: Answer) -> AmeyoError:
    """The exception for an error answer (or a 2xx that carries an Ameyo envelope).

    Decodes the envelope of WIRE_NOTES (``errorCode`` or ``code``; the key in
    ``message`` or ``info``, JSON-array strings split into key and args);
    the body may be anything, including HTML, empty or not UTF-8.
    """
    status, body, spec, secrets = answer.status, answer.body, answer.spec, answer.secrets
    snippet = _snippet(body, secrets)
    try:
        payload = _loads(body) if body else None
    except (ValueError, RecursionError):  # not JSON, or JSON nested past what we walk
        payload = None
    envelope = _is_envelope(payload)
    fields: dict[str, Any] = {}
    key: str | None = None
    key_args: tuple[str, ...] = ()
    message: str | None = None
    if envelope:
        assert isinstance(payload, dict)  # noqa: S101  (narrowing for mypy)
        found, message = _envelope_texts(payload)
        if found is not None:
            # (the keys acted on below are never scrubbed: they decide the error)
            key = found[0] if found[0] in _KNOWN_KEYS else scrub(found[0], secrets)
            key_args = tuple(scrub(arg, secrets) for arg in found[1])
        message = None if message is None else scrub(message, secrets)
        fields["error_code"] = _int_or_none(payload.get("errorCode", payload.get("code")))
        envelope_status = _int_or_none(payload.get("status"))
        if 200 <= status < 300 and envelope_status is not None and envelope_status >= 400:
            status = envelope_status
    retry_after = parse_retry_after(_header(answer.headers, "retry-after"), now=answer.now)

    summary = key or (f"{snippet!r}" if snippet and not envelope else "")
    if key_args:
        summary += f" {list(key_args)}"
    if message:
        shown = message if len(message) <= _MESSAGE_CHARS else message[:_MESSAGE_CHARS] + "..."
        summary += f": {shown}" if summary else shown
    if fields.get("error_code") is not None:
        summary += f" (error code {fields['error_code']})"
    text = f"{spec.method} {spec.path} answered HTTP {status}" + (f": {summary}" if summary else "")

    common: dict[str, Any] = {
        "status_code": status,
        "method": spec.method,
        "path": spec.path,
        "key": key,
        "key_args": key_args,
        "message": message,
        "from_envelope": envelope,
        "snippet": snippet,
        "retry_after": retry_after,
        **fields,
    }
    if status == 401 or (key in SESSION_INVALID_KEYS and status in (401, 403)):
        if spec.kind == "login":
            text += ". The login was refused: check the user id, token and domain"
        elif spec.kind == "refresh":
            text += ". The JWT renewal was refused: the client logs in again"
        else:
            text += (
                ". The session id is missing, expired or invalid: log in again for a new "
                "one, or pass a LoginSession so the client refreshes it"
            )
        return AuthenticationError(text, **common)
    if key == NOT_FOUND_KEY:
        callback_id = key_args[0] if key_args else spec.callback_id
        return CallbackNotFoundError(text, callback_id=callback_id, **common)
    if status == 429:
        if retry_after is not None:
            text += f" (Retry-After {retry_after:g} s)"
        return RateLimitedError(text, **common)
    if 500 <= status < 600 and status != 512:
        return ServerError(text, **common)
    if 200 <= status < 300:
        return ResponseFormatError(
            f"{spec.method} {spec.path} answered HTTP {status} with a body this call "
            f"does not return: {snippet!r}",
            method=spec.method,
            path=spec.path,
            status_code=status,
            snippet=snippet,
        )
    return APIError(text, **common)


def _format_error(answer: Answer, reason: str) -> ResponseFormatError:
    status, spec = answer.status, answer.spec
    snippet = _snippet(answer.body, answer.secrets)
    return ResponseFormatError(
        f"{spec.method} {spec.path} answered HTTP {status} with {reason}: {snippet!r}",
        method=spec.method,
        path=spec.path,
        status_code=status,
        snippet=snippet,
    )


def decode_list_response(
    answer: Answer, converter: cattrs.Converter, *, dated: bool = False
) -> list[CustomerCallback]:
    """A list call's answer -> records, or raise the matching AmeyoError.

    ``dated``: a ``DatedRecords``, each record's dateAdded (epoch ms) beside it.
    """
    body = answer.body
    if not 200 <= answer.status < 300:
        raise decode_error(answer)
    if not body.strip():
        raise _format_error(answer, "an empty body")
    try:
        payload = _loads(body)
    except ValueError:
        raise _format_error(answer, "a body that is not JSON") from None
    if _is_envelope(payload):
        raise decode_error(answer)
    try:
        return structure_callbacks(converter, payload, dated=dated)
    except RecordError as exc:
        where = f"record {exc.index}: " if exc.index is not None else ""
        reason = f"a body that does not fit ({where}{exc})"
        error = _format_error(answer, reason)
        error.field = exc.field
        error.index = exc.index
        raise error from None


_RECORD_KEY = b'"customerCallbackId"'


def likely_full(body: bytes, limit: int) -> bool:
    """Whether a list answer's body seems to hold ``limit`` records, before it is parsed.

    It counts the records' id keys in the bytes: a hint (what a walk sends
    next while it decodes this), never a decision. An extra field quoting
    the key can make it say yes, an escaped key no; either way the records
    are decoded and counted as usual.
    """
    return body.count(_RECORD_KEY) >= limit


def decode_delete_response(answer: Answer) -> None:
    """A delete's answer: a 2xx ``OK``/``ok`` (bare or JSON-quoted) is success."""
    body = answer.body
    if not 200 <= answer.status < 300:
        raise decode_error(answer)
    if body.strip() in _OK_BODIES:
        return
    try:
        payload = _loads(body) if body.strip() else None
    except ValueError:
        payload = None
    if _is_envelope(payload):
        raise decode_error(answer)
    raise _format_error(answer, 'a body other than "OK"')


def is_cut_short_ok(body: bytes) -> bool:
    """Whether a delete's 2xx body is its ``OK`` cut short: empty, ``O``, ``"OK``...

    Such an answer lost its end on the way (a proxy, a dropped tail), so the
    server may well have carried the delete out; an HTML page or any other
    text is not that (a middlebox may have answered without passing it on).
    """
    text = body.strip()
    return text not in _OK_BODIES and any(ok.startswith(text) for ok in _OK_BODIES)


@attrs.frozen(repr=False)
class LoginAnswer:
    """What a login answer gives: the session id, and a JWT when the server uses them.

    ``jwt_lifetime_ms`` is the answer's ``jwtTokenExpiryMs`` (the JWT's
    lifetime, e.g. ``"900000"``), or None. The repr shows neither secret.
    """

    session_id: str
    jwt: str | None = None
    jwt_lifetime_ms: int | None = None

    def __repr__(self) -> str:
        jwt = "" if self.jwt is None else ", jwt=<redacted>"
        return f"LoginAnswer(session_id=<redacted>{jwt})"


def _header_value(value: object) -> str | None:
    """``value`` when it is fit for a header (non-empty printable ASCII, no surrounding blanks)."""
    if (
        isinstance(value, str)
        and value.strip() == value != ""
        and value.isascii()
        and value.isprintable()
    ):
        return value
    return None


def _login_jwt(payload: dict[str, Any]) -> tuple[str | None, int | None]:
    """The JWT of a login answer and its lifetime, at
    ``authenticationState.authPolicyVsUserInfo["auth.type.passwd"].loginProperties``."""
    properties: Any = payload
    for name in ("authenticationState", "authPolicyVsUserInfo", "auth.type.passwd"):
        properties = properties.get(name) if isinstance(properties, dict) else None
    properties = properties.get("loginProperties") if isinstance(properties, dict) else None
    if not isinstance(properties, dict):
        return None, None
    return _header_value(properties.get("jwt")), _int_or_none(properties.get("jwtTokenExpiryMs"))


def _json_of_2xx(answer: Answer) -> Any:
    """A 2xx answer's JSON (None when it is not JSON); any other status raises its error."""
    if not 200 <= answer.status < 300:
        raise decode_error(answer)
    try:
        return _loads(answer.body)
    except ValueError:
        return None


def decode_login_response(answer: Answer) -> LoginAnswer:
    """The login answer -> the new session id, and its JWT when there is one.

    Accepts both shapes seen in the field: ``{"userSessionInfo": {"sessionId": ...}}``
    and ``{"sessionId": ...}``; a JWT server's answer also holds the JWT
    (:func:`_login_jwt`). A JWT that is not fit for a header is left out.
    """
    status, spec = answer.status, answer.spec
    payload = _json_of_2xx(answer)
    if isinstance(payload, dict):
        holder = payload.get("userSessionInfo")
        for source in (holder, payload):
            if isinstance(source, dict):
                session_id = _header_value(source.get("sessionId"))
                if session_id is not None:
                    jwt, lifetime = _login_jwt(payload)
                    return LoginAnswer(session_id, jwt, lifetime)
        if _is_envelope(payload):
            raise decode_error(answer)
    # The body may hold a session id in an unexpected place: never quote it.
    msg = (
        f"{spec.method} {spec.path} answered HTTP {status} without a sessionId "
        "in the shape the login call returns"
    )
    raise ResponseFormatError(
        msg,
        method=spec.method,
        path=spec.path,
        status_code=status,
    )


def decode_refresh_response(answer: Answer) -> str:
    """The JWT renewal's answer ``{"jwtToken": ...}`` -> the new JWT, or raise.

    An answer without one is a :class:`ResponseFormatError` that quotes nothing
    of the body (it may hold a token in an unexpected place).
    """
    status, spec = answer.status, answer.spec
    payload = _json_of_2xx(answer)
    if isinstance(payload, dict):
        jwt = _header_value(payload.get("jwtToken"))
        if jwt is not None:
            return jwt
        if _is_envelope(payload):
            raise decode_error(answer)
    msg = f"{spec.method} {spec.path} answered HTTP {status} without a jwtToken"
    raise ResponseFormatError(msg, method=spec.method, path=spec.path, status_code=status)
