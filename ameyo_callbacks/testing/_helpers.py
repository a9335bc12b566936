"""Helpers that need the client: kept apart so the fake app never imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .._client import AmeyoCallbacksClient
    from ._app import FakeAmeyo

__all__ = ["FAKE_BASE_URL", "make_client"]

#: The base URL of in-process clients. ``.invalid`` never resolves (RFC 2606):
#: the requests go to the ASGI app, and could go nowhere else.
FAKE_BASE_URL = "http://ameyo.invalid:8888"


def make_client(fake: FakeAmeyo, **kwargs: Any) -> AmeyoCallbacksClient:
    """An ``AmeyoCallbacksClient`` talking to ``fake`` through ``httpx.ASGITransport``.

    Defaults taken from the fake: ``session_id`` (its valid session, with its
    JWT in secure mode),
    ``list_method`` (POST if it accepts POST) and ``tenant_callbacks_path``.
    Everything else in ``kwargs`` goes to the client unchanged.

    In-process there is no socket: ``httpx.ASGITransport`` does not enforce
    httpx timeouts, so a ``slow`` fault only delays the answer; and a dropped
    connection reaches the client as ``httpx.RemoteProtocolError`` (the client
    maps it to ``TransportError``).
    """
    from .._client import AmeyoCallbacksClient  # noqa: PLC0415  (imported on use)

    for taken in ("transport", "http_client"):
        if taken in kwargs:
            msg = (
                f"fake.client() wires its own transport; drop {taken}=, or build "
                "AmeyoCallbacksClient(..., transport=httpx.ASGITransport(app=fake)) yourself"
            )
            raise TypeError(msg)
    if "session_id" not in kwargs:
        from .._session import StaticSession  # noqa: PLC0415  (imported on use)

        jwt = fake.jwt if fake.secure_mode else None
        kwargs["session_id"] = StaticSession(fake.session_id, jwt=jwt)
    kwargs.setdefault("list_method", "POST" if "POST" in fake.list_methods else "GET")
    kwargs.setdefault("tenant_callbacks_path", fake.tenant_path)
    return AmeyoCallbacksClient(FAKE_BASE_URL, transport=httpx.ASGITransport(app=fake), **kwargs)
