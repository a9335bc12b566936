"""The kinds of transport failure: one ``Literal`` and one table.

:data:`KINDS` says, for every :data:`Kind`, which :class:`TransportError`
subclass carries it, whether another attempt may fix it, whether it is a
timeout, what happened (the documentation's words) and what to check (the
error message's advice). The classifiers of ``_transport``, the retry
decision of ``_retry``, ``TransportError.is_timeout`` and the table in
``docs/errors.md`` (a test holds them equal) all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple, get_args

from .exceptions import (
    AnswerTimeoutError,
    ConnectionFailedError,
    ConnectionLostError,
    ResponseTooLargeError,
    TLSError,
    TransportError,
)

__all__ = ["KINDS", "Kind", "KindInfo", "advice"]

Kind = Literal[
    "connection_refused",
    "connect_timeout",
    "name_not_resolved",
    "connect_error",
    "proxy_error",
    "pool_timeout",
    "tls_certificate",
    "tls_hostname",
    "tls_protocol",
    "https_expected",
    "http_expected",
    "read_timeout",
    "write_timeout",
    "attempt_deadline",
    "call_deadline",
    "connection_lost",
    "protocol_error",
    "too_large",
    "other",
]


class KindInfo(NamedTuple):
    """One row of :data:`KINDS`."""

    error: type[TransportError]
    retried: bool
    timeout: bool
    happened: str
    #: the advice of the error message; ``{where}`` is ``host:port``, ``{connect}``
    #: " within N s" (the connect timeout), ``{read}`` the read timeout, ``{https}`` a
    #: hint for a plain ``http://`` base URL.
    check: str


KINDS: Mapping[Kind, KindInfo] = {
    "connection_refused": KindInfo(
        ConnectionFailedError,
        retried=True,
        timeout=False,
        happened="nothing listens at that host and port",
        check="nothing listens at {where}: check the base URL and port",
    ),
    "connect_timeout": KindInfo(
        ConnectionFailedError,
        retried=True,
        timeout=True,
        happened="no connection within `timeout`'s connect",
        check=(
            "no connection to {where}{connect}: check the host, the port and any firewall, "
            "or raise timeout= (connect)"
        ),
    ),
    "name_not_resolved": KindInfo(
        ConnectionFailedError,
        retried=True,
        timeout=False,
        happened="the host name does not resolve",
        check="the host of {where} does not resolve: check the base URL",
    ),
    "connect_error": KindInfo(
        ConnectionFailedError,
        retried=True,
        timeout=False,
        happened="another connect failure (network unreachable, ...)",
        check="cannot connect to {where}: check the base URL and the network",
    ),
    "proxy_error": KindInfo(
        ConnectionFailedError,
        retried=True,
        timeout=False,
        happened="the proxy refused or failed",
        check=(
            "the proxy failed: check proxy= or HTTP(S)_PROXY / NO_PROXY "
            "(trust_env=False ignores the environment)"
        ),
    ),
    "pool_timeout": KindInfo(
        ConnectionFailedError,
        retried=True,
        timeout=True,
        happened="no free connection of the pool in time",
        check=(
            "no free connection in time: raise max_connections or timeout= (pool), "
            "or send fewer requests at once"
        ),
    ),
    "tls_certificate": KindInfo(
        TLSError,
        retried=False,
        timeout=False,
        happened="the certificate is not trusted (pass `verify=` a CA bundle)",
        check=(
            "certificate of {where} not trusted: pass verify= a CA bundle "
            "(a path or an ssl.SSLContext) that signs it"
        ),
    ),
    "tls_hostname": KindInfo(
        TLSError,
        retried=False,
        timeout=False,
        happened="the certificate is for another name",
        check=(
            "certificate of {where} is not valid for that host: use a host name "
            "the certificate holds in the base URL"
        ),
    ),
    "tls_protocol": KindInfo(
        TLSError,
        retried=False,
        timeout=False,
        happened="the handshake failed: no version or cipher in common, or the port ended it",
        check=(
            "TLS handshake with {where} failed: check that this port speaks https "
            "(use http:// for a plain port)"
        ),
    ),
    "https_expected": KindInfo(
        TLSError,
        retried=False,
        timeout=False,
        happened=(
            "`http://` to a port that speaks TLS: it answered with TLS bytes, nginx's 400 "
            '"The plain HTTP request was sent to HTTPS port", or closed before any HTTP '
            "answer and speaks TLS when asked"
        ),
        check="{where} speaks https (TLS), not plain HTTP: use https:// in the base URL",
    ),
    "http_expected": KindInfo(
        TLSError,
        retried=False,
        timeout=False,
        happened="`https://` to a port that speaks plain HTTP (OpenSSL: wrong version number)",
        check="{where} speaks plain HTTP, not TLS: use http:// in the base URL",
    ),
    "read_timeout": KindInfo(
        AnswerTimeoutError,
        retried=True,
        timeout=True,
        happened="no byte for `timeout`'s read",
        check="no data from {where} for {read}: the server is slow or stalled",
    ),
    "write_timeout": KindInfo(
        AnswerTimeoutError,
        retried=True,
        timeout=True,
        happened="the request could not be sent in time",
        check="could not send to {where} in time: the server does not read",
    ),
    "attempt_deadline": KindInfo(
        AnswerTimeoutError,
        retried=True,
        timeout=True,
        happened="the whole answer took longer than `attempt_timeout`",
        check="the server is slow or trickles its answer; raise attempt_timeout if it is just slow",
    ),
    "call_deadline": KindInfo(
        AnswerTimeoutError,
        retried=False,
        timeout=True,
        happened="the call's budget (`timeout`) ran out mid-attempt",
        check="raise timeout, or check why the server is this slow",
    ),
    "connection_lost": KindInfo(
        ConnectionLostError,
        retried=True,
        timeout=False,
        happened="closed or reset before the whole answer (the server may have acted)",
        check=(
            "the connection to {where} dropped before the whole answer: the server "
            "may have acted on the request{https}"
        ),
    ),
    "protocol_error": KindInfo(
        ConnectionLostError,
        retried=True,
        timeout=False,
        happened="what came back is not HTTP",
        check="the answer from {where} is not HTTP: check the base URL's scheme and port",
    ),
    "too_large": KindInfo(
        ResponseTooLargeError,
        retried=False,
        timeout=False,
        happened="the answer is over `max_response_bytes`",
        check="ask for smaller pages or raise max_response_bytes",
    ),
    "other": KindInfo(
        TransportError,
        retried=True,
        timeout=False,
        happened="another failure of the HTTP stack",
        check="the request to {where} failed",
    ),
}

assert set(KINDS) == set(get_args(Kind))  # noqa: S101  (a kind without a row is a bug)


def advice(
    kind: Kind,
    where: str,
    *,
    connect: float | None = None,
    read: float | None = None,
    plain_http: bool = False,
) -> str:
    """What to check after a failure of ``kind`` at ``where`` (``host:port``)."""
    return KINDS[kind].check.format(
        where=where,
        connect=f" within {connect:g} s" if connect else "",
        read=f"{read:g} s" if read else "the read timeout",
        https=" (if this port speaks https, use https://)" if plain_http else "",
    )
