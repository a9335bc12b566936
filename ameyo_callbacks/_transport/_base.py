"""What every HTTP stack shares: its settings, its interface, the size cap, the failure.

An HTTP stack (:class:`HttpStack`) sends one request and returns its status,
headers and body (read up to ``max_response_bytes``), or raises a
:class:`TransportError` whose kind its classifier read from the exception
chain. :func:`failure` builds that error from the one table of kinds
(``_kinds.KINDS``); the pieces of the chain both stacks meet (``ssl`` and OS
errors) are read here.

A scheme that does not match the port is told apart the same way on both
stacks: ``https://`` to a plain port fails the handshake with OpenSSL's
"wrong version number" (:func:`os_kind`: ``http_expected``); ``http://`` to
a TLS port answers TLS bytes (the classifiers: ``https_expected``), nginx's
400 page (:func:`plain_http_refused`), or closes before any HTTP answer,
which a plain server that drops the request does too: then
:class:`TlsProbe` asks the port once, with a TLS hello on one short
connection, whether it speaks TLS.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Literal, Protocol
from urllib.parse import urlsplit

import anyio
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
    "TlsProbe",
    "capped",
    "chain",
    "deadline_error",
    "env_proxy",
    "failure",
    "os_kind",
    "plain_http_refused",
    "probed_kind",
    "scheme_error",
    "ssl_context",
    "stack_ssl_context",
    "tls_record",
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
# What OpenSSL says when the "server hello" is plain text (an HTTP answer).
_PLAIN_PORT_REASONS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
)
_QUOTED_TLS = re.compile(r"\\+x1[56]\\+x03")
#: nginx's answer to plain HTTP at its TLS port (status 400).
NGINX_PLAIN_HTTP = b"The plain HTTP request was sent to HTTPS port"


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


def stack_ssl_context(settings: StackSettings, proxy: str | None) -> ssl.SSLContext:
    """The context a stack's connections verify with (:func:`ssl_context` of ``verify``).

    No connection of a plain ``http://`` base URL without an ``https://``
    proxy uses TLS: its context then loads no CA certificates (which takes
    about 30 ms a client) and would refuse any certificate, never accept one.
    """
    verify = settings.verify
    tls = settings.base_url.startswith("https:") or (proxy or "").startswith("https:")
    if tls or isinstance(verify, ssl.SSLContext):
        return ssl_context(verify, trust_env=settings.trust_env)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # (verifies, with no CA to trust)


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
        text = f"{getattr(exc, 'reason', None) or ''} {exc}".upper().replace(" ", "_")
        return "http_expected" if any(r in text for r in _PLAIN_PORT_REASONS) else "tls_protocol"
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


# ----------------------------------------------------------------------
# The scheme against the port


def tls_record(data: bytes | str) -> bool:
    """Whether ``data`` (an answer's first bytes, or a parser's text about them) is a TLS record.

    A TLS record starts with its type (0x15 alert, 0x16 handshake) and the
    major version 3; a parser quotes them as ``\\x15\\x03`` or ``\\x16\\x03``
    (its backslashes maybe escaped again).
    """
    if isinstance(data, bytes):
        return len(data) >= 2 and data[0] in (0x15, 0x16) and data[1] == 0x03
    return _QUOTED_TLS.search(data) is not None


async def probed_kind(kind: Kind, probe: TlsProbe, *, answer_began: bool) -> Kind:
    """``https_expected`` for a failure before any HTTP answer at a port that speaks TLS.

    Otherwise ``kind`` as the classifier read it.
    """
    no_answer = kind in ("connection_lost", "protocol_error") and not answer_began
    return "https_expected" if no_answer and await probe.speaks_tls() else kind


def plain_http_refused(status: int, body: bytes) -> bool:
    """Whether an answer is nginx's 400 to plain HTTP at a TLS port."""
    return status == 400 and NGINX_PLAIN_HTTP in body[:4096]


def scheme_error(
    kind: Kind, spec: RequestSpec, settings: StackSettings, seen: str, cause: Exception | None
) -> TransportError:
    """The error of a scheme that does not fit the port (``https_expected``, ``http_expected``)."""
    msg = f"{spec.method} {spec.path}: {advice(kind, settings.where)} ({seen})"
    return KINDS[kind].error(msg, method=spec.method, path=spec.path, cause=cause, kind=kind)


def _client_hello(host: str) -> bytes:
    """The bytes of a TLS ClientHello for ``host``, made by ``ssl`` without a socket."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        ipaddress.ip_address(host)
        name = None
    except ValueError:
        name = host
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=name)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the server's answer
        tls.do_handshake()
    return outgoing.read()


class TlsProbe:
    """Whether the base URL's port speaks TLS: asked at most once per client.

    Used when an ``http://`` request ended before any HTTP answer (closed,
    reset, or bytes that are not HTTP): one short connection sends a TLS
    hello and reads the first bytes back. Off (always False) for
    ``https://``, through a proxy, and on a caller's client or transport
    (an in-process app has no port to ask).
    """

    __slots__ = ("_answer", "_host", "_lock", "_port", "_seconds")

    def __init__(self, settings: StackSettings, *, enabled: bool = True) -> None:
        parts = urlsplit(settings.base_url)
        plain = parts.scheme == "http" and proxy_for(settings) is None
        self._answer: bool | None = None if enabled and plain else False
        self._host = parts.hostname or ""
        self._port = parts.port or 0
        self._seconds = min(settings.timeout.connect or 5.0, 5.0)
        self._lock: anyio.Lock | None = None

    async def speaks_tls(self) -> bool:
        """True when the port answers a TLS hello with a TLS record.

        The port's answer is kept; no answer (nothing listening, no reply
        within the connect timeout: a server too busy now) is not, and the
        next failure asks again.
        """
        if self._answer is not None:
            return self._answer
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._answer is None:
                answer = await self._ask()
                if answer is None:
                    return False
                self._answer = answer
        return self._answer

    async def _ask(self) -> bool | None:
        """The port's answer to a TLS hello: a TLS record or not; None: no answer."""
        with anyio.move_on_after(self._seconds):
            try:
                async with await anyio.connect_tcp(self._host, self._port) as stream:
                    await stream.send(_client_hello(self._host))
                    first = b""
                    while len(first) < 2:
                        first += await stream.receive(5)
                    return tls_record(first)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return False  # it read the hello and hung up: not TLS
            except OSError:
                return None
        return None
