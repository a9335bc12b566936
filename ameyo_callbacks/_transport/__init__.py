"""The HTTP seam: which stack, one request under its deadline, what kind of failure it was.

- Which stack (:meth:`Transport.open`): a caller's ``httpx.AsyncClient``
  (used as is) or transport (wrapped in an ``httpx.AsyncClient`` of ours);
  otherwise ``http_backend="httpx"`` (the default: an ``httpx.AsyncClient``
  over several small httpx pools, ``_httpx``, on sockets of the library's
  own on asyncio, ``_asyncio_net``) or ``"aiohttp"`` (the
  ``aiohttp`` extra, ``_aiohttp``, imported only then). Proxies and CA files
  come from the environment when ``trust_env``, the same on both stacks.
- One request (:meth:`Transport.send`): under one deadline for the whole
  answer (status line, headers, body), the sooner of
  ``RetryPolicy.attempt_timeout`` and what is left of the call's budget.
  Each stack (:class:`HttpStack`) caps the body at ``max_response_bytes``
  and turns what its library raised into a :class:`TransportError` with a
  kind (``_kinds.KINDS``); no secret stays in its message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import anyio
import httpx
import sniffio

from .._protocol import RequestSpec, scrub
from ..exceptions import TransportError
from ._base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    HttpBackend,
    HttpStack,
    Reply,
    StackSettings,
    deadline_error,
    env_proxy,
    failure,
    plain_http_refused,
    scheme_error,
)
from ._httpx import HttpxStack, httpx_kind

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "HttpBackend",
    "HttpStack",
    "StackSettings",
    "Transport",
    "env_proxy",
    "failure",
    "httpx_kind",
]

_AIOHTTP_EXTRA = "pip install 'ameyo-callbacks[aiohttp]'"


def _aiohttp_module() -> ModuleType:
    """The aiohttp stack's module, or an ImportError that names the extra."""
    try:
        from . import _aiohttp  # noqa: PLC0415  (aiohttp loads only when asked for)
    except ImportError as exc:
        if exc.name not in {"aiohttp", "yarl", "multidict"}:
            raise
        msg = (
            f'http_backend="aiohttp" needs aiohttp, which is not installed: {_AIOHTTP_EXTRA} '
            '(or leave http_backend at its default, "httpx")'
        )
        raise ImportError(msg, name=exc.name) from exc
    return _aiohttp


class Transport:
    """One client's HTTP stack: built on first use, one request at a time, closed once."""

    __slots__ = (
        "_aiohttp",
        "_closed",
        "_given",
        "_name",
        "_plain",
        "_secrets",
        "_settings",
        "_stack",
    )

    def __init__(
        self,
        settings: StackSettings,
        *,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        secrets: Callable[[], Sequence[str]],
    ) -> None:
        self._settings = settings
        self._plain = settings.base_url.startswith("http://")
        self._secrets = secrets
        self._closed = False
        self._stack: HttpStack | None = None
        self._given: httpx.AsyncClient | httpx.AsyncBaseTransport | None = (
            http_client if http_client is not None else transport
        )
        self._name = "custom" if self._given is not None else settings.backend
        # Checked now, so that a missing extra fails where the client is built.
        self._aiohttp = _aiohttp_module() if self._name == "aiohttp" else None

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    @property
    def backend(self) -> str:
        """The stack: "httpx", "aiohttp", or "custom" (a caller's client or transport)."""
        return self._name

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The ``httpx.AsyncClient`` requests go through (None on the aiohttp stack)."""
        if self._aiohttp is not None:
            return None
        stack = self.open()
        return stack.http_client if isinstance(stack, HttpxStack) else None

    def open(self) -> HttpStack:
        """The stack, built if not built yet."""
        stack = self._stack
        if stack is not None:
            return stack
        if self._closed:
            msg = "this AmeyoCallbacksClient is closed; create a new one"
            raise RuntimeError(msg)
        settings, given = self._settings, self._given
        if isinstance(given, httpx.AsyncClient):
            stack = HttpxStack(settings, given, owned=False)
        elif given is not None:
            stack = HttpxStack.build(settings, given)
        elif self._aiohttp is not None:
            if sniffio.current_async_library() != "asyncio":
                msg = 'http_backend="aiohttp" runs on asyncio only: use "httpx" on trio'
                raise RuntimeError(msg)
            stack = self._aiohttp.AiohttpStack(settings)
        else:
            stack = HttpxStack.build(settings)
        self._stack = stack
        return stack

    async def aclose(self) -> None:
        """Close the connections we opened (a caller's ``http_client`` is left open)."""
        self._closed = True
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def send(
        self, spec: RequestSpec, auth: Mapping[str, str] | None, call_end: float | None
    ) -> Reply:
        """One request and its whole answer, within the attempt's deadline, or a TransportError.

        ``auth`` holds the session's headers (``sessionId``, maybe ``Authorization``).

        The deadline is ``attempt_timeout`` from now, or ``call_end`` (the
        clock time the call's budget runs out) when that comes first.
        """
        stack = self.open()
        seconds = self._settings.attempt_timeout
        kind: Literal["attempt_deadline", "call_deadline"] = "attempt_deadline"
        if call_end is not None:
            left = call_end - anyio.current_time()
            if seconds is None or left <= seconds:
                seconds, kind = left, "call_deadline"
        reply: Reply | None = None
        try:
            if seconds is None:
                reply = await stack.send(spec, auth)
            elif seconds > 0:
                with anyio.move_on_after(seconds):
                    reply = await stack.send(spec, auth)
        except TransportError as error:
            error.args = (scrub(str(error.args[0]), self._secrets()),)
            raise
        if reply is None:
            raise deadline_error(spec, kind, self._settings)
        if self._plain and plain_http_refused(reply[0], reply[2]):
            seen = "it answered 400: The plain HTTP request was sent to HTTPS port"
            mismatch: Literal["https_expected"] = "https_expected"
            raise scheme_error(mismatch, spec, self._settings, seen, None)
        return reply
