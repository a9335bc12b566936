"""What every HTTP stack shares: its settings, its interface, the size cap, the failure.

An HTTP stack (:class:`HttpStack`) sends one request and returns its status,
headers and body (read up to ``max_response_bytes``), or raises a
:class:`TransportError` whose kind its classifier read from the exception
chain. :func:`failure` builds that error from the one table of kinds
(``_kinds.KINDS``); the pieces of the chain both stacks meet (``ssl`` and OS
errors) are read here.
"""

from __future__ import annotations

import errno
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Literal, Protocol
from urllib.parse import urlsplit

import attrs
import httpx

from .._compat import BaseExceptionGroup
from .._kinds import KINDS, Kind, advice
from .._protocol import RequestSpec
from .._version import __version__
from ..exceptions import AnswerTimeoutError, ResponseTooLargeError, TransportError

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "HttpBackend",
    "HttpStack",
    "Reply",
    "StackSettings",
    "capped",
    "chain",
    "deadline_error",
    "env_proxy",
    "failure",
    "os_kind",
    "ssl_context",
]

#: "httpx" (the default: an ``httpx.AsyncClient``) or "aiohttp" (the ``aiohttp`` extra).
HttpBackend = Literal["httpx", "aiohttp"]
#: Status, headers and the whole (capped, decoded) body of one answer.
Reply = tuple[int, Mapping[str, str], bytes]

#: connect 10 s; read, write and pool 30 s each.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: 8 MiB: a page of 100 callbacks is about 30 KB.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024

DEFAULT_HEADERS = {
    "Accept": "application/json, */*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"ameyo-callbacks/{__version__}",
}
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = frozenset({62, 64})


@attrs.frozen
class StackSettings:
    """What the client's own HTTP stack is built from (checked by the client)."""

    base_url: str
    timeout: httpx.Timeout
    verify: bool | str | ssl.SSLContext
    backend: HttpBackend
    max_connections: int
    trust_env: bool
    proxy: str | None
    max_response_bytes: int
    attempt_timeout: float | None
    call_timeout: float | None = None

    @property
    def where(self) -> str:
        """``host:port`` of the base URL, for messages."""
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}"


class HttpStack(Protocol):
    """One HTTP stack: one request at a time, closed once."""

    async def send(self, spec: RequestSpec, auth: Mapping[str, str] | None) -> Reply:
        """One request (with the session's headers ``auth``) and its whole answer.

        Or a :class:`TransportError` with a kind.
        """
        ...

    async def aclose(self) -> None:
        """Close the connections it opened."""
        ...


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``).

    The same reading on every backend (the one aiohttp uses: urllib's).
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or _bypassed(parts.hostname or "", parts.port, proxies.get("no", "")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (``*``, hosts and domains, each maybe with a port) covers ``host``."""
    host = host.lower().strip("[]")
    for entry in no_proxy.lower().replace(" ", "").split(","):
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def ssl_context(verify: bool | str | ssl.SSLContext, *, trust_env: bool) -> ssl.SSLContext:
    """``verify`` as a context: True reads ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when ``trust_env``."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=trust_env)


def proxy_for(settings: StackSettings) -> str | None:
    """``proxy=``, else the environment's proxy for the base URL when ``trust_env``."""
    if settings.proxy is None and settings.trust_env:
        return env_proxy(settings.base_url)
    return settings.proxy


# ----------------------------------------------------------------------
# The answer's size


async def capped(
    spec: RequestSpec,
    settings: StackSettings,
    announced: int | None,
    chunks: AsyncIterator[bytes],
) -> bytes:
    """A body read chunk by chunk, never more than ``max_response_bytes`` of it in memory."""
    cap = settings.max_response_bytes
    if announced is not None and announced > cap:
        raise _too_large(spec, cap, f"it announces {announced:,} bytes")
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise _too_large(spec, cap, f"more than {cap:,} bytes arrived")
        parts.append(chunk)
    return b"".join(parts)


def _too_large(spec: RequestSpec, cap: int, seen: str) -> ResponseTooLargeError:
    msg = (
        f"{spec.method} {spec.path}: the answer is larger than max_response_bytes={cap:,} "
        f"({seen}; stopped reading): {advice('too_large', '')}"
    )
    return ResponseTooLargeError(msg, method=spec.method, path=spec.path, limit=cap)


def deadline_error(
    spec: RequestSpec, kind: Literal["attempt_deadline", "call_deadline"], settings: StackSettings
) -> AnswerTimeoutError:
    """The error of an attempt that ``attempt_timeout`` or the call's budget ended."""
    if kind == "attempt_deadline":
        seconds = settings.attempt_timeout
        what = (
            f"no whole answer within {seconds:g} s (RetryPolicy.attempt_timeout; status "
            "line, headers and body)"
        )
    else:
        seconds = settings.call_timeout
        what = (
            "the call's time budget"
            + (f" of {seconds:g} s" if seconds is not None else "")
            + " ran out during the attempt (RetryPolicy.timeout, retries and waits included)"
        )
    msg = f"{spec.method} {spec.path}: {what}: {advice(kind, settings.where)}"
    return AnswerTimeoutError(msg, method=spec.method, path=spec.path, kind=kind, seconds=seconds)


# ----------------------------------------------------------------------
# What kind of failure: the parts of the chain both stacks meet


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it came from (``__cause__``, else unsuppressed context)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 12 and current not in seen:
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            seen.extend(current.exceptions[:4])
        cause = current.__cause__
        if cause is None and current.args and isinstance(current.args[0], BaseException):
            cause = current.args[0]  # httpcore wraps the OS error as its argument
        if cause is None and not current.__suppress_context__:
            cause = current.__context__
        current = cause
    return seen


def certificate_kind(exc: BaseException) -> Kind:
    """``tls_hostname`` or ``tls_certificate``, from a certificate error's verify fields."""
    # aiohttp's ClientConnectorCertificateError is an ssl.CertificateError too,
    # without the verify fields: the ssl error it wraps has them.
    exc = getattr(exc, "certificate_error", exc)
    code = getattr(exc, "verify_code", None)
    text = str(getattr(exc, "verify_message", None) or exc)
    if code in _NAME_MISMATCH_CODES or "mismatch" in text.lower():
        return "tls_hostname"
    return "tls_certificate"


def os_kind(exc: BaseException) -> Kind | None:
    """The kind of an ``ssl`` or OS error met while connecting, or None."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return certificate_kind(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls_protocol"
    if isinstance(exc, socket.gaierror):
        return "name_not_resolved"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "connection_refused"
    return None


def failure(
    kind: Kind,
    exc: Exception,
    *,
    spec: RequestSpec,
    settings: StackSettings | None = None,
    where: str | None = None,
) -> TransportError:
    """The :class:`TransportError` of ``kind`` for what a stack raised (class, advice: table)."""
    timeout = settings.timeout if settings is not None else None
    text = advice(
        kind,
        where if where is not None else settings.where if settings is not None else "the server",
        connect=timeout.connect if timeout is not None else None,
        read=timeout.read if timeout is not None else None,
        plain_http=settings is not None and settings.base_url.startswith("http://"),
    )
    links = chain(exc)
    msg = f"{spec.method} {spec.path}: {text} ({type(exc).__name__}: {_detail(links)})"
    cls = KINDS[kind].error
    return cls(msg, method=spec.method, path=spec.path, cause=exc, kind=kind)


def _detail(links: list[BaseException]) -> str:
    """The most telling text in the chain: the deepest non-empty one, shortened."""
    for exc in reversed(links):
        message = getattr(exc, "verify_message", None)
        if isinstance(exc, ssl.SSLCertVerificationError) and message:
            return str(message)
        text = str(exc)
        if text and not isinstance(exc, BaseExceptionGroup):
            return text[:200]
    return "no detail"
