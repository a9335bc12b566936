"""How the command line reports errors: one line, a cause, and what to check.

Exit statuses: 0 done; 1 a library error or some deletes failed; 2 a usage
or configuration error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from .. import AmeyoError, TransportError

__all__ = ["EXIT_INTERRUPTED", "ConfigError", "explain", "library_errors"]

EXIT_INTERRUPTED = 130


class ConfigError(click.ClickException):
    """The command cannot run as configured: say what to set; exit status 2."""

    exit_code = 2


#: The command-line option to look at for each kind of transport failure.
_OPTION_FOR_KIND = {
    "connection_refused": "--base-url",
    "connect_timeout": "--base-url",
    "name_not_resolved": "--base-url",
    "connect_error": "--base-url",
    "tls_certificate": "--ca-bundle",
    "tls_hostname": "--base-url",
    "tls_protocol": "--base-url (http or https)",
    "read_timeout": "--timeout",
    "write_timeout": "--timeout",
    "attempt_deadline": "--timeout",
    "call_deadline": "--timeout",
    "pool_timeout": "--concurrency",
    "proxy_error": "HTTPS_PROXY and HTTP_PROXY",
}


def explain(exc: AmeyoError) -> str:
    """One line for an error: the library's text (cause and what to check), and the option.

    For a connection failure the library says what happened and what to
    check; the command line adds which of its options sets that.
    """
    text = " ".join(str(exc).split())
    if isinstance(exc, TransportError):
        option = _OPTION_FOR_KIND.get(getattr(exc, "kind", ""), "--base-url")
        text += f" [see {option}]"
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
