"""How the command line reports errors: one line, a cause, and what to check.

Exit statuses: 0 done; 1 a library error or some deletes failed; 2 a usage
or configuration error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import ssl
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click
import httpx

from .. import AmeyoError, TransportError

__all__ = ["EXIT_INTERRUPTED", "ConfigError", "explain", "library_errors"]

EXIT_INTERRUPTED = 130


class ConfigError(click.ClickException):
    """The command cannot run as configured: say what to set; exit status 2."""

    exit_code = 2


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _hint(exc: TransportError) -> str:
    causes = list(_chain(exc))
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return "check --ca-bundle: the server's certificate is not trusted"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return "check the scheme of --base-url (https against an http port?) and --ca-bundle"
    if any(isinstance(c, httpx.ConnectTimeout) for c in causes):
        return "check the host and port of --base-url and that a firewall lets you through"
    if any(isinstance(c, httpx.TimeoutException) for c in causes):
        return "the server is slow to answer: check its load, or raise --timeout"
    if any(isinstance(c, httpx.ConnectError) for c in causes):
        return "check --base-url (host, port, http or https) and that the server is running"
    return "check --base-url and any proxy between you and the server"


def explain(exc: AmeyoError) -> str:
    """One line for an error: the library's text, and for a connection failure what to check."""
    text = " ".join(str(exc).split())
    if isinstance(exc, TransportError):
        cause = exc.cause
        if cause is not None and str(cause) and str(cause) not in text:
            text += f" ({' '.join(str(cause).split())})"
        text += f": {_hint(exc)}"
    return text


@contextmanager
def library_errors(*, verbose: bool) -> Iterator[None]:
    """An :class:`AmeyoError` becomes a one-line error (exit status 1); a traceback with -v."""
    try:
        yield
    except AmeyoError as exc:
        if verbose:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        raise click.ClickException(explain(exc)) from exc
