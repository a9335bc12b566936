"""Where the command line finds its server, its session and its client options.

Options shared by every command that talks to a server (``connection_options``),
accepted before or after the subcommand (after wins); their resolution into a
:class:`Connection` (flags, then ``--profile``, then the environment); the
``--demo`` server; and :func:`build_client`, the one place a client is made
(tests replace it to reach an in-process fake without a socket).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from .. import AmeyoCallbacksClient, LoginSession, RetryPolicy, SessionProvider, StaticSession
from ._errors import ConfigError, library_errors
from ._profiles import load_profile
from ._ui import count

__all__ = [
    "DEMO_CALLBACKS",
    "DEMO_CAMPAIGNS",
    "ConfigError",
    "Connection",
    "ConnectionOptions",
    "build_client",
    "client_options",
    "connect",
    "connection_options",
    "library_errors",
    "open_client",
]

F = TypeVar("F", bound=Callable[..., Any])

DEMO_CALLBACKS = 2_500
DEMO_CAMPAIGNS = (6, 7, 8)
DEFAULT_RETRIES = 5  # 6 attempts in all: RetryPolicy's default

_NOTHING_CONFIGURED = (
    "{what}. Set AMEYO_BASE_URL (or pass --base-url) to your Ameyo server, e.g. "
    "https://ameyo.example.com:8443, and give a session: AMEYO_SESSION_ID, or "
    "--session-id-file FILE, or --session-id ID (other users can see that one in the "
    "process list), or AMEYO_USER_ID and AMEYO_TOKEN to log in. Or add --demo to try "
    "the command against a built-in fake server."
)


@attrs.frozen
class ConnectionOptions:
    """The connection flags as given (environment not yet consulted)."""

    base_url: str | None
    session_id: str | None = attrs.field(repr=False)
    session_id_file: str | None
    ca_bundle: str | None
    timeout: float | None
    retries: int
    demo: bool
    verbose: bool
    quiet: bool = False
    profile: str | None = None
    max_rate: float | None = None
    #: The names given on the command line (they win over a profile).
    explicit: frozenset[str] = frozenset()


@attrs.frozen
class Connection:
    """Everything a client needs, resolved. Never printed: it holds the session."""

    base_url: str
    session: str | SessionProvider = attrs.field(repr=False)
    verify: bool | str = True
    timeout: float | None = None
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: Requests a second across the whole command (``--max-rate``); None: unpaced.
    max_rate: float | None = None
    #: The upper bound of ``--concurrency auto`` (``--max-concurrency``); None: the client's.
    max_concurrency: int | None = None


def _optional_positive(name: str, metavar: str, text: str) -> Callable[[F], F]:
    """A number > 0, or unset (None: the library's default)."""
    return click.option(
        name, type=click.FloatRange(min=0, min_open=True), metavar=metavar, help=text
    )


_OPTIONS = (
    click.option(
        "--base-url",
        envvar="AMEYO_BASE_URL",
        metavar="URL",
        help="The Ameyo server, http(s)://host[:port]; no port: 8888 (http), 8443 (https). "
        "[env: AMEYO_BASE_URL]",
    ),
    click.option(
        "--session-id",
        metavar="ID",
        help="The session id. Visible to other users in the process list: prefer "
        "AMEYO_SESSION_ID or --session-id-file.",
    ),
    click.option(
        "--session-id-file",
        type=click.Path(exists=True, dir_okay=False, readable=True),
        metavar="FILE",
        help="Read the session id from this file.",
    ),
    click.option(
        "--ca-bundle",
        envvar=["AMEYO_CA_BUNDLE", "AMEYO_CA_FILE"],
        type=click.Path(exists=True, dir_okay=False, readable=True),
        metavar="FILE",
        help="Trust the CAs in this PEM file for HTTPS. [env: AMEYO_CA_BUNDLE]",
    ),
    _optional_positive(
        "--timeout", "SECONDS", "Timeout of each request (default: connect 10 s, read 30 s)."
    ),
    click.option(
        "--retries",
        type=click.IntRange(min=0),
        default=DEFAULT_RETRIES,
        show_default=True,
        metavar="N",
        help="Retries of a failed request (after the first attempt); 0 turns retries off.",
    ),
    _optional_positive(
        "--max-rate",
        "N",
        "At most N requests a second to the server, evenly spaced, across the whole "
        "command (listing, deletes, retries and logins count); e.g. 0.5 is one every 2 s. "
        "Default: no limit.",
    ),
    click.option(
        "--demo",
        is_flag=True,
        help=f"Run against a built-in fake server on 127.0.0.1 ({count(DEMO_CALLBACKS)} "
        f"callbacks in campaigns {', '.join(map(str, DEMO_CAMPAIGNS))}); no configuration needed.",
    ),
    click.option(
        "--verbose",
        "-v",
        is_flag=True,
        help="Log every request and retry to stderr, and show tracebacks "
        "(never a session id or token).",
    ),
    click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="Print only errors (and the --json summary): no progress, no summary.",
    ),
    click.option(
        "--profile",
        metavar="NAME",
        help="Read --base-url, --ca-bundle and --session-id-file from [profiles.NAME] of "
        "the config file (AMEYO_CONFIG, or config.toml in the user's config directory); "
        "flags given win over it, it wins over the environment.",
    ),
)
_NAMES = tuple(f.name for f in attrs.fields(ConnectionOptions) if f.name != "explicit")


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _merge(ctx: click.Context, values: dict[str, Any]) -> ConnectionOptions:
    """The options of this command, completed by those given before the subcommand."""
    root = ctx.find_root()
    explicit = set()
    for name in _NAMES:
        if _given(ctx, name):
            explicit.add(name)
        elif root is not ctx and _given(root, name):
            values[name] = root.params[name]
            explicit.add(name)
    if values["verbose"] and values["quiet"]:
        msg = "--verbose and --quiet contradict each other: pass one"
        raise click.UsageError(msg)
    return ConnectionOptions(**values, explicit=frozenset(explicit))


def connection_options(func: F) -> F:
    """Add the connection flags to a command; it receives them as ``conn=ConnectionOptions``.

    The group takes the same flags, so ``ameyo-callbacks -v export ...`` and
    ``ameyo-callbacks export -v ...`` are one command; given in both places,
    the one after the subcommand wins.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _NAMES}
        options = _merge(click.get_current_context(), values)
        return func(*args, conn=options, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _session(options: ConnectionOptions) -> str | SessionProvider | None:
    """The session the options and environment name; a fixed one takes ``AMEYO_JWT`` along."""
    session = _given_session(options)
    jwt = _env("AMEYO_JWT")
    if not isinstance(session, str) or jwt is None:
        return session
    try:
        return StaticSession(session, jwt=jwt)
    except ValueError:
        msg = "the session id or AMEYO_JWT holds blanks, a line break or non-ASCII characters"
        raise ConfigError(msg) from None


def _given_session(options: ConnectionOptions) -> str | SessionProvider | None:
    if options.session_id is not None:
        if not options.session_id.strip():
            msg = "--session-id is empty"
            raise ConfigError(msg)
        return options.session_id.strip()
    if options.session_id_file is not None:
        try:
            text = Path(options.session_id_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"cannot read the session id file {options.session_id_file}: {exc.strerror}"
            raise ConfigError(msg) from None
        except UnicodeError:
            msg = f"the session id file {options.session_id_file} is not UTF-8 text"
            raise ConfigError(msg) from None
        if not text:
            msg = f"the session id file {options.session_id_file} is empty"
            raise ConfigError(msg)
        return text
    session = _env("AMEYO_SESSION_ID")
    if session is not None:
        return session
    user, token = _env("AMEYO_USER_ID"), _env("AMEYO_TOKEN")
    if user is not None and token is not None:
        return LoginSession(user, token, domain=_env("AMEYO_DOMAIN"))
    if user is not None or token is not None:
        given, missing = ("AMEYO_USER_ID", "AMEYO_TOKEN")[:: 1 if user is not None else -1]
        msg = f"{given} is set but {missing} is not: a login needs both"
        raise ConfigError(msg)
    return None


def _client_options(options: ConnectionOptions) -> dict[str, Any]:
    return {
        "timeout": options.timeout,
        "retry": RetryPolicy(attempts=options.retries + 1),
        "max_rate": options.max_rate,
    }


def _with_profile(options: ConnectionOptions) -> ConnectionOptions:
    """The options with the profile's settings where no flag was given."""
    if options.profile is None:
        return options
    profile = load_profile(options.profile)
    changes: dict[str, Any] = {}
    for name in ("base_url", "ca_bundle", "session_id_file"):
        value = getattr(profile, name)
        if value is not None and name not in options.explicit:
            changes[name] = value
    if "session_id_file" in changes and "session_id" in options.explicit:
        del changes["session_id_file"]
    for name in ("ca_bundle", "session_id_file"):
        path = changes.get(name)
        if path is not None and not Path(path).is_file():
            msg = f"--profile {options.profile}: {name} {path} is not a file"
            raise ConfigError(msg)
    return attrs.evolve(options, **changes)


def _check_ca_bundle(path: str) -> None:
    """Refuse a CA bundle that holds no certificate ssl can load, before any request."""
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        msg = f"cannot use the CA bundle {path}: {exc} (it must hold PEM certificates)"
        raise ConfigError(msg) from None


def resolve(options: ConnectionOptions) -> Connection:
    """The connection from the flags, the profile and the environment, or a ConfigError."""
    options = _with_profile(options)
    base_url = options.base_url.strip() if options.base_url else None
    session = _session(options)
    if base_url is None or session is None:
        what = {
            (True, True): "No Ameyo server configured",
            (True, False): "No Ameyo server configured (no base URL)",
            (False, True): "No session configured for the Ameyo server",
        }[(base_url is None, session is None)]
        raise ConfigError(_NOTHING_CONFIGURED.format(what=what))
    if options.ca_bundle is not None:
        _check_ca_bundle(options.ca_bundle)
    return Connection(
        base_url,
        session,
        verify=options.ca_bundle if options.ca_bundle is not None else True,
        **_client_options(options),
    )


@contextmanager
def connect(options: ConnectionOptions) -> Iterator[Connection]:
    """The connection to use: the configured server, or a fake one with ``--demo``."""
    if not options.demo:
        yield resolve(options)
        return
    from ..testing import FakeAmeyo, serve  # noqa: PLC0415  (only for --demo)

    fake = FakeAmeyo.seeded(DEMO_CALLBACKS, campaigns=DEMO_CAMPAIGNS)
    with ExitStack() as stack:
        try:
            url = stack.enter_context(serve(fake))
        except ModuleNotFoundError as exc:  # uvicorn missing: an install problem
            raise ConfigError(str(exc)) from None
        if not options.quiet:
            click.echo(
                f"demo: a fake Ameyo server on {url} with {count(len(fake))} callbacks in "
                f"campaigns {', '.join(map(str, DEMO_CAMPAIGNS))} (nothing leaves this machine)",
                err=True,
            )
        yield Connection(url, fake.session_id, **_client_options(options))


def client_options(connection: Connection) -> dict[str, Any]:
    """The keyword arguments of ``AmeyoCallbacksClient`` for a connection (all but the URL).

    The command line runs bulk jobs: it uses the aiohttp stack (the ``cli``
    extra installs aiohttp), which spends the least CPU per request.
    """
    options: dict[str, Any] = {
        "session_id": connection.session,
        "retry": connection.retry,
        "http_backend": "aiohttp",
    }
    if connection.timeout is not None:
        options["timeout"] = connection.timeout
    if connection.verify is not True:
        options["verify"] = connection.verify
    if connection.max_rate is not None:
        options["max_rate"] = connection.max_rate
    if connection.max_concurrency is not None:
        options["max_concurrency"] = connection.max_concurrency
    return options


def build_client(connection: Connection) -> AmeyoCallbacksClient:
    """Make the client for a connection.

    The one seam of the command line: tests replace this function with one
    that adds ``transport=httpx.ASGITransport(app=fake)``, so commands run
    against an in-process fake server without a socket.
    """
    return AmeyoCallbacksClient(connection.base_url, **client_options(connection))


def open_client(connection: Connection) -> AmeyoCallbacksClient:
    """:func:`build_client`, with a bad base URL or CA file turned into a ConfigError."""
    try:
        return build_client(connection)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # an unreadable or invalid CA bundle
        msg = f"cannot use the CA bundle {connection.verify}: {exc}"
        raise ConfigError(msg) from None
