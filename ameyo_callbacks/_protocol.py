"""Sans-I/O protocol: build requests, decode responses or raise. Pure functions.

Nothing here awaits, sends or sleeps: every function takes plain values and
returns plain values (or raises), so the wire rules are tested without an
event loop or a server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import attrs
import cattrs

from ._convert import RecordError, datetime_to_epoch_ms, structure_callbacks
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
    "DEFAULT_LOGIN_PATH",
    "MAX_LIMIT",
    "NOT_FOUND_KEY",
    "SESSION_INVALID_KEYS",
    "DateBound",
    "ListFilters",
    "RequestSpec",
    "build_delete_request",
    "build_list_request",
    "build_login_request",
    "check_callback_id",
    "check_filters",
    "check_int",
    "decode_delete_response",
    "decode_error",
    "decode_list_response",
    "decode_login_response",
    "parse_retry_after",
    "scrub",
]

CALLBACKS_PREFIX = "/ameyorestapi/voice/customerCallbacks"
DEFAULT_LOGIN_PATH = "/ameyorestapi/userLogin/login"
MAX_LIMIT = 100
NOT_FOUND_KEY = "CallBackManager.invalid.campcust.callback.id"
SESSION_INVALID_KEYS = frozenset({"invalid.session.id", "invalid.authentication.token"})
SNIPPET_CHARS = 200
_MESSAGE_CHARS = 300
REDACTED = "<redacted>"

DateBound = datetime | int
Kind = Literal["list", "delete", "login"]

_KEY_LIKE = re.compile(r"^[A-Za-z][\w.\-]*$")
_INT_TEXT = re.compile(r"-?[0-9]+")
_OK_BODIES = frozenset({b"OK", b"ok", b'"OK"', b'"ok"'})


# --------------------------------------------------------------------------
# Requests


@attrs.frozen
class ListFilters:
    """The optional filters of a list call, checked and in wire form (epoch ms)."""

    user_ids: tuple[str, ...] | None = None
    from_date_added: int | None = None
    to_date_added: int | None = None
    from_date_scheduled: int | None = None
    to_date_scheduled: int | None = None
    info: bool | None = None

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, in the spec's order; unset ones are left out."""
        out: list[tuple[str, str]] = []
        if self.user_ids is not None:
            out.extend(("userIds", uid) for uid in self.user_ids)
        for name, value in (
            ("fromDateAdded", self.from_date_added),
            ("toDateAdded", self.to_date_added),
            ("fromDateScheduled", self.from_date_scheduled),
            ("toDateScheduled", self.to_date_scheduled),
        ):
            if value is not None:
                out.append((name, str(value)))
        if self.info is not None:
            out.append(("info", "true" if self.info else "false"))
        return out


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


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) within bounds; TypeError or ValueError naming the argument."""
    if type(value) is not int:  # bool is an int subclass, and is refused here
        msg = f"{name} must be an int, got {type(value).__name__}"
        raise TypeError(msg)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        msg = f"{name} must be {bounds}, got {value}"
        raise ValueError(msg)
    return value


def _check_date(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            msg = (
                f"{name} is a naive datetime, which is ambiguous: pass an aware datetime "
                "(e.g. datetime(..., tzinfo=timezone.utc)) or epoch milliseconds as an int"
            )
            raise ValueError(msg)
        return datetime_to_epoch_ms(value)
    if type(value) is int:
        return value
    msg = f"{name} must be an aware datetime or int epoch milliseconds, got {type(value).__name__}"
    raise TypeError(msg)


def _check_user_ids(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        msg = "user_ids must be a list of user id strings, not a single string: use [user_id]"
        raise TypeError(msg)
    if not isinstance(value, Iterable):
        msg = f"user_ids must be a list of user id strings, got {type(value).__name__}"
        raise TypeError(msg)
    ids = tuple(value)
    if not ids:
        msg = (
            "user_ids is empty, which would match every user: pass None to not filter "
            "by user, or at least one user id"
        )
        raise ValueError(msg)
    for uid in ids:
        if not isinstance(uid, str):
            msg = f"user_ids must hold strings, got {type(uid).__name__}"
            raise TypeError(msg)
        if not uid.strip():
            msg = "user_ids must not hold an empty or blank user id"
            raise ValueError(msg)
    return ids


def check_filters(
    *,
    user_ids: Iterable[str] | None = None,
    from_date_added: DateBound | None = None,
    to_date_added: DateBound | None = None,
    from_date_scheduled: DateBound | None = None,
    to_date_scheduled: DateBound | None = None,
    info: bool | None = None,
) -> ListFilters:
    """Check the optional filters and put them in wire form; raise ValueError/TypeError."""
    bounds = {
        "from_date_added": _check_date("from_date_added", from_date_added),
        "to_date_added": _check_date("to_date_added", to_date_added),
        "from_date_scheduled": _check_date("from_date_scheduled", from_date_scheduled),
        "to_date_scheduled": _check_date("to_date_scheduled", to_date_scheduled),
    }
    for what in ("added", "scheduled"):
        lo, hi = bounds[f"from_date_{what}"], bounds[f"to_date_{what}"]
        if lo is not None and hi is not None and lo > hi:
            msg = f"from_date_{what} ({lo}) is after to_date_{what} ({hi}): swap them"
            raise ValueError(msg)
    if info is not None and not isinstance(info, bool):
        msg = f"info must be a bool or None, got {type(info).__name__}"
        raise TypeError(msg)
    return ListFilters(user_ids=_check_user_ids(user_ids), info=info, **bounds)


def check_campaign_id(campaign_id: object) -> int:
    """A campaign id is a positive int (not a bool)."""
    return check_int("campaign_id", campaign_id, minimum=1)


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


def build_list_request(
    *,
    method: str,
    path: str,
    campaign_id: int | None,
    limit: int,
    offset: int,
    filters: ListFilters,
) -> RequestSpec:
    """getFiltered (``campaign_id`` given) or the tenant list (``campaign_id`` None).

    Parameters go in the query string, as the spec shows, for POST and GET
    alike: ``limit``, ``campaignId``, ``offset``, then the filters.
    """
    check_int("limit", limit, minimum=1, maximum=MAX_LIMIT)
    check_int("offset", offset, minimum=0)
    params: list[tuple[str, str]] = [("limit", str(limit))]
    if campaign_id is not None:
        params.append(("campaignId", str(check_campaign_id(campaign_id))))
    params.append(("offset", str(offset)))
    params.extend(filters.params())
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


# --------------------------------------------------------------------------
# Responses


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace every known secret in ``text`` with a marker."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
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


def decode_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    spec: RequestSpec,
    now: float,
    secrets: Sequence[str] = (),
) -> AmeyoError:
    """The exception for an error answer (or a 2xx that carries an Ameyo envelope).

    Decodes the envelope of WIRE_NOTES (``errorCode`` or ``code``; the key in
    ``message`` or ``info``, JSON-array strings split into key and args);
    the body may be anything, including HTML, empty or not UTF-8.
    """
    snippet = _snippet(body, secrets)
    try:
        payload = _loads(scrub(body.decode("utf-8"), secrets).encode()) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    envelope = _is_envelope(payload)
    fields: dict[str, Any] = {}
    key: str | None = None
    key_args: tuple[str, ...] = ()
    message: str | None = None
    if envelope:
        assert isinstance(payload, dict)  # noqa: S101  (narrowing for mypy)
        raw_message, raw_info = payload.get("message"), payload.get("info")
        found = _find_key(raw_info, raw_message)
        if found is not None:
            key, key_args = found
        texts = [t for t in (raw_message, raw_info) if isinstance(t, str) and t.strip()]
        # Human text: whatever is not the key itself (bare, or as a JSON array).
        human = [t for t in texts if key is None or _split_key(t) != (key, key_args)]
        message = human[0] if human else None
        fields["error_code"] = _int_or_none(payload.get("errorCode", payload.get("code")))
        envelope_status = _int_or_none(payload.get("status"))
        if 200 <= status < 300 and envelope_status is not None and envelope_status >= 400:
            status = envelope_status
    retry_after = parse_retry_after(_header(headers, "retry-after"), now=now)

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


def _format_error(
    status: int, body: bytes, spec: RequestSpec, reason: str, secrets: Sequence[str]
) -> ResponseFormatError:
    snippet = _snippet(body, secrets)
    return ResponseFormatError(
        f"{spec.method} {spec.path} answered HTTP {status} with {reason}: {snippet!r}",
        method=spec.method,
        path=spec.path,
        status_code=status,
        snippet=snippet,
    )


def decode_list_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    spec: RequestSpec,
    converter: cattrs.Converter,
    now: float,
    secrets: Sequence[str] = (),
) -> list[CustomerCallback]:
    """A list call's answer -> records, or raise the matching AmeyoError."""
    if not 200 <= status < 300:
        raise decode_error(status, headers, body, spec=spec, now=now, secrets=secrets)
    if not body.strip():
        raise _format_error(status, body, spec, "an empty body", secrets)
    try:
        payload = _loads(body)
    except ValueError:
        raise _format_error(status, body, spec, "a body that is not JSON", secrets) from None
    if _is_envelope(payload):
        raise decode_error(status, headers, body, spec=spec, now=now, secrets=secrets)
    try:
        return structure_callbacks(converter, payload)
    except RecordError as exc:
        where = f"record {exc.index}: " if exc.index is not None else ""
        reason = f"a body that does not fit ({where}{exc})"
        error = _format_error(status, body, spec, reason, secrets)
        error.field = exc.field
        error.index = exc.index
        raise error from None


def decode_delete_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    spec: RequestSpec,
    now: float,
    secrets: Sequence[str] = (),
) -> None:
    """A delete's answer: a 2xx ``OK``/``ok`` (bare or JSON-quoted) is success."""
    if not 200 <= status < 300:
        raise decode_error(status, headers, body, spec=spec, now=now, secrets=secrets)
    if body.strip() in _OK_BODIES:
        return
    try:
        payload = _loads(body) if body.strip() else None
    except ValueError:
        payload = None
    if _is_envelope(payload):
        raise decode_error(status, headers, body, spec=spec, now=now, secrets=secrets)
    raise _format_error(status, body, spec, 'a body other than "OK"', secrets)


def decode_login_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    spec: RequestSpec,
    now: float,
    secrets: Sequence[str] = (),
) -> str:
    """The login answer -> the new session id.

    Accepts both shapes seen in the field: ``{"userSessionInfo": {"sessionId": ...}}``
    and ``{"sessionId": ...}``.
    """
    if not 200 <= status < 300:
        raise decode_error(status, headers, body, spec=spec, now=now, secrets=secrets)
    try:
        payload = _loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        holder = payload.get("userSessionInfo")
        for source in (holder, payload):
            if isinstance(source, dict):
                session_id = source.get("sessionId")
                if (
                    isinstance(session_id, str)
                    and session_id.strip() == session_id != ""
                    and session_id.isascii()
                    and session_id.isprintable()
                ):
                    return session_id
        if _is_envelope(payload):
            raise decode_error(status, headers, body, spec=spec, now=now, secrets=secrets)
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
