"""What the fake sends back: an :class:`Answer`, and one builder per Ameyo error envelope.

Every error body the fake writes is built here, once (WIRE_NOTES records
where each shape was seen):

- :func:`invalid_session`: 403 ``invalid.session.id``, or in secure mode 401
  ``invalid.authentication.token`` (:func:`invalid_token`, also a failed login);
- :func:`callback_not_found`: 512 with the ``CallBackManager...`` key and the id;
- :func:`invalid_input`: 400 ``InvalidInput``;
- :func:`method_not_allowed`: 405 ``method.not.allowed`` with ``Allow``;
- :func:`jax_rs_not_found`: the JAX-RS framework's plain-text 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import attrs

from .._protocol import NOT_FOUND_KEY

__all__ = [
    "JSON",
    "NOT_FOUND_ERROR_CODE",
    "TEXT",
    "Answer",
    "callback_not_found",
    "invalid_input",
    "invalid_session",
    "invalid_token",
    "jax_rs_not_found",
    "json_answer",
    "method_not_allowed",
]

JSON = (b"content-type", b"application/json")
TEXT = (b"content-type", b"text/plain;charset=utf-8")
NOT_FOUND_ERROR_CODE = 5121


@attrs.frozen
class Answer:
    """One complete HTTP answer: status, headers (no ``Content-Length``), body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def cut(self) -> Answer:
        """The same answer with its body cut in half (a ``truncated`` fault)."""
        return Answer(self.status, self.headers, self.body[: len(self.body) // 2])


def json_answer(status: int, payload: object, *headers: tuple[bytes, bytes]) -> Answer:
    """``payload`` as compact JSON."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Answer(status, (JSON, *headers), body)


def invalid_token() -> Answer:
    """401 ``invalid.authentication.token``: secure mode's bad session or JWT, a refused
    JWT renewal, or a failed login."""
    envelope = {"message": "invalid.authentication.token", "code": 909090, "info": None}
    return json_answer(401, {**envelope, "status": 401})


def invalid_session(*, secure_mode: bool) -> Answer:
    """A missing, unknown or expired session: 403 ``invalid.session.id`` (401 in secure mode)."""
    if secure_mode:
        return invalid_token()
    return json_answer(
        403, {"message": None, "code": 99999, "info": "invalid.session.id", "status": 403}
    )


def callback_not_found(callback_id: str) -> Answer:
    """512: the id to delete is not held (``info`` is the JSON text ``[key, id]``)."""
    return json_answer(
        512,
        {
            "message": None,
            "info": json.dumps([NOT_FOUND_KEY, callback_id]),
            "status": 512,
            "errorCode": NOT_FOUND_ERROR_CODE,
        },
    )


def invalid_input(info: str) -> Answer:
    """400 ``InvalidInput``: a required parameter missing or out of range."""
    return json_answer(400, {"message": "InvalidInput", "code": 40001, "info": info})


def method_not_allowed(allowed: Iterable[str]) -> Answer:
    """405 ``method.not.allowed``, with an ``Allow`` header listing ``allowed``."""
    envelope = {"message": "method.not.allowed", "info": None, "status": 405, "errorCode": 405}
    return json_answer(405, envelope, (b"allow", ", ".join(sorted(allowed)).encode()))


def jax_rs_not_found(text: str) -> Answer:
    """The framework's 404: an unknown path, or a query parameter that is not a number."""
    return Answer(404, (TEXT,), text.encode())
