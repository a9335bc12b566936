"""The fake's one command line, a click command with one set of options.

``ameyo-callbacks fake-server`` and ``python -m ameyo_callbacks.testing`` both run
:data:`fake_server`. It prints, on stdout, one ``NAME=value`` line each for the base
URL and the session id to use (and the CA file when it made a throwaway certificate),
then serves on 127.0.0.1 until Ctrl-C. A human summary goes to stderr. Exit
statuses: 0 stopped; 2 a usage error, uvicorn missing or the port taken.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import attrs
import click

from ._columns import LIST_ORDERS, ListOrder
from ._faults import FAULT_KINDS, FaultPlan
from ._live import CHANGE_KINDS, Change, check_mix
from ._seed import DEFAULT_CAMPAIGNS, DEFAULT_USERS
from ._server import base_url, bind_loopback, check_loopback, require_uvicorn, uvicorn_config

__all__ = ["fake_server", "main", "run_uvicorn"]

_PROG = "python -m ameyo_callbacks.testing"


class ServeError(click.ClickException):
    """The fake cannot serve as asked (uvicorn missing, port taken): exit status 2."""

    exit_code = 2


def _words(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _campaigns(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in _words(value))
    except ValueError:
        ids = ()
    if not ids or any(i < 1 for i in ids):
        msg = f"{value!r} is not a comma-separated list of campaign ids, e.g. 6,7,8"
        raise click.BadParameter(msg)
    return ids


def _loopback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_loopback(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _users(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    users = _words(value)
    if not users:
        msg = f"{value!r} is not a comma-separated list of user ids, e.g. asha,ravi"
        raise click.BadParameter(msg)
    return users


def _choices(allowed: Sequence[str], *, upper: bool = False) -> Any:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        words = tuple(w.upper() if upper else w for w in _words(value))
        unknown = [w for w in words if w not in allowed]
        if not words or unknown:
            msg = f"{value!r}: use a comma-separated list of {', '.join(allowed)}"
            raise click.BadParameter(msg)
        return words

    return check


def _mix(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    mix: dict[str, float] = {}
    for part in _words(value):
        kind, sep, weight = part.partition("=")
        try:
            mix[kind.strip()] = float(weight) if sep else 1.0
        except ValueError:
            mix = {}
            break
    try:
        return check_mix(mix)
    except (TypeError, ValueError) as exc:
        msg = f"{value!r}: use KIND[=WEIGHT],... with kinds {', '.join(CHANGE_KINDS)} ({exc})"
        raise click.BadParameter(msg) from None


def _logins(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    pairs = []
    for entry in value:
        user, sep, token = entry.partition(":")
        if not (sep and user and token):
            msg = f"--login takes USER:TOKEN, got {user!r}..."  # never echo the token
            raise click.BadParameter(msg)
        pairs.append((user, token))
    return tuple(pairs)


def _throwaway_certificate(directory: Path) -> tuple[str, str]:
    """A CA and a 127.0.0.1/localhost certificate made by trustme: (cert+key file, CA file)."""
    try:
        import trustme  # noqa: PLC0415  (optional)
    except ImportError:
        msg = "--https without --certfile needs trustme: pip install trustme"
        raise ServeError(msg) from None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost")
    cert_path, ca_path = directory / "server.pem", directory / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return str(cert_path), str(ca_path)


def run_uvicorn(config: Any, sock: socket.socket) -> None:
    """Serve ``config.app`` on ``sock`` until SIGINT or SIGTERM (tests replace this)."""
    server = require_uvicorn().Server(config)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal:
    # end with a clean exit, so the temporary certificate is removed.
    signal.signal(signal.SIGTERM, _exit_quietly)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


@contextlib.contextmanager
def _change_writer(path: str | None) -> Iterator[Callable[[Change], None] | None]:
    """``on_change`` for live mode that writes each change to ``path`` as a JSON line."""
    if path is None:
        yield None
        return
    try:
        out = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115  (closed below)
    except OSError as exc:
        msg = f"cannot write the change log {path}: {exc.strerror or exc}"
        raise ServeError(msg) from None

    def write(change: Change) -> None:
        out.write(json.dumps(attrs.asdict(change)) + "\n")

    with out:
        yield write


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


_KINDS = ", ".join(FAULT_KINDS)
_F = TypeVar("_F", bound=Callable[..., Any])


def _off_by_default(name: str, text: str, most: float | None = None) -> Callable[[_F], _F]:
    """A number >= 0 (at most ``most``) whose default, 0, leaves the feature off."""
    return click.option(name, type=click.FloatRange(0, most), default=0.0, help=text)


@click.command(
    "fake-server",
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        "show_default": True,  # every option with a default shows it
    },
)
@click.option(
    "--host",
    default="127.0.0.1",
    callback=_loopback,
    help="Loopback address to bind (127.0.0.1, ::1).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8888, help="Port (0: a free one).")
@click.option("--callbacks", type=click.IntRange(min=0), default=1000, help="Seeded callbacks.")
@click.option(
    "--campaigns",
    default=",".join(map(str, DEFAULT_CAMPAIGNS)),
    callback=_campaigns,
    help="Campaign ids, comma-separated.",
)
@click.option(
    "--users",
    default=",".join(DEFAULT_USERS),
    callback=_users,
    help="Agent user ids, comma-separated.",
)
@click.option("--seed", type=int, default=0, help="Seed of the data, sessions and jitter.")
@click.option("--bulk", type=click.IntRange(min=1), default=1, help="Up to N share a ms.")
@click.option("--to-date-exclusive", is_flag=True, help="toDateAdded leaves out its own ms.")
@_off_by_default("--latency-ms", "Added to every request.")
@_off_by_default("--jitter-ms", "Extra random latency, up to this.")
@_off_by_default(
    "--fault-rate", "Share of requests answered with an injected fault (503, 429, drops, ...).", 1
)
@click.option(
    "--fault-kinds",
    callback=_choices(FAULT_KINDS),
    help=f"Comma-separated fault mix (default all but slow): {_KINDS}.",
)
@click.option("--fault-seed", type=int, default=0, help="Seed of the fault plan.")
@click.option("--max-limit", type=click.IntRange(min=1), default=100, help="Largest page served.")
@click.option(
    "--list-methods",
    default="POST,GET",
    callback=_choices(("POST", "GET"), upper=True),
    help="Methods the list endpoints accept.",
)
@click.option(
    "--login",
    "logins",
    multiple=True,
    metavar="USER:TOKEN",
    callback=_logins,
    help="Accept this login (repeatable).",
)
@click.option(
    "--secure",
    is_flag=True,
    help="A JWT server: logins hand out a JWT, every call needs it as Authorization, "
    "/ameyorestapi/session/refreshToken renews it (prints AMEYO_JWT too).",
)
@click.option(
    "--jwt-ttl",
    type=click.FloatRange(min=0, min_open=True),
    default=900.0,
    help="With --secure: seconds a JWT lives.",
)
@click.option("--https", is_flag=True, help="Serve HTTPS (with a throwaway CA unless --certfile).")
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="Certificate chain (PEM) to serve HTTPS with.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help="Private key (PEM), if not in --certfile.",
)
@click.option("--order", type=click.Choice(LIST_ORDERS), default="dateAdded", help="List order.")
@_off_by_default("--live-rate", "Live mode: change the list this many times a second.")
@click.option(
    "--live-mix",
    callback=_mix,
    metavar="KIND[=W],...",
    help=f"Live changes and their weights (default all alike): {', '.join(CHANGE_KINDS)}.",
)
@click.option("--live-seed", type=int, default=0, help="Seed of live changes.")
@click.option(
    "--change-log",
    type=click.Path(dir_okay=False, writable=True),
    help="Write each live change to this file as a JSON line (seq, kind, callback_id, ...).",
)
@click.option(
    "--log-limit", type=click.IntRange(min=0), default=10_000, help="Request log entries kept."
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    help="uvicorn's event loop.",
)
@click.option(
    "--http",
    type=click.Choice(["auto", "h11", "httptools"]),
    default="auto",
    help="uvicorn's HTTP parser.",
)
def fake_server(
    *,
    host: str,
    port: int,
    callbacks: int,
    campaigns: tuple[int, ...],
    users: tuple[str, ...],
    seed: int,
    bulk: int,
    to_date_exclusive: bool,
    latency_ms: float,
    jitter_ms: float,
    fault_rate: float,
    fault_kinds: tuple[str, ...] | None,
    fault_seed: int,
    max_limit: int,
    list_methods: tuple[str, ...],
    logins: tuple[tuple[str, str], ...],
    secure: bool,
    jwt_ttl: float,
    https: bool,
    certfile: str | None,
    keyfile: str | None,
    order: ListOrder,
    live_rate: float,
    live_mix: dict[str, float] | None,
    live_seed: int,
    change_log: str | None,
    log_limit: int,
    loop: str,
    http: str,
) -> None:
    """Serve a fake Ameyo server on 127.0.0.1 until Ctrl-C.

    Prints AMEYO_BASE_URL=..., AMEYO_SESSION_ID=... (with --secure
    AMEYO_JWT=..., and with a generated HTTPS certificate AMEYO_CA_FILE=...,
    the file to pass as --ca-bundle) on stdout: export them, then run export
    or delete in another shell.
    """
    if keyfile is not None and certfile is None:
        msg = "--keyfile needs --certfile"
        raise click.UsageError(msg)
    if change_log is not None and live_rate <= 0:
        msg = "--change-log needs --live-rate: without live mode nothing changes"
        raise click.UsageError(msg)
    try:
        require_uvicorn()
    except ModuleNotFoundError as exc:
        raise ServeError(str(exc)) from None
    from ._app import FakeAmeyo  # noqa: PLC0415  (the fake is imported when it runs)

    kinds = {"kinds": fault_kinds} if fault_kinds else {}
    fake = FakeAmeyo.seeded(
        callbacks,
        campaigns=campaigns,
        users=users,
        seed=seed,
        bulk=bulk,
        to_date_added_inclusive=not to_date_exclusive,
        latency=latency_ms / 1000,
        jitter=jitter_ms / 1000,
        faults=FaultPlan(rate=fault_rate, seed=fault_seed, **kinds),
        max_limit=max_limit,
        list_methods=list_methods,
        log_limit=log_limit,
        order=order,
        secure_mode=secure,
        jwt_ttl=jwt_ttl,
    )
    for user, token in logins:
        fake.add_user(user, token)
    try:
        sock = bind_loopback(host, port)
    except OSError as exc:  # the port is taken
        msg = f"cannot serve on {host}:{port}: {exc.strerror or exc}"
        raise ServeError(msg) from None
    with (
        sock,
        tempfile.TemporaryDirectory(prefix="fake-ameyo-") as tmp,
        _change_writer(change_log) as on_change,
    ):
        ca_file = None
        if https and certfile is None:
            certfile, ca_file = _throwaway_certificate(Path(tmp))
        url = base_url(sock, https=certfile is not None)
        try:
            config = uvicorn_config(
                fake, ssl_certfile=certfile, ssl_keyfile=keyfile, quiet=False, loop=loop, http=http
            )
        except OSError as exc:  # a certificate that cannot be read
            msg = f"cannot serve HTTPS with {certfile}: {exc.strerror or exc}"
            raise ServeError(msg) from None
        lines = [f"AMEYO_BASE_URL={url}", f"AMEYO_SESSION_ID={fake.session_id}"]
        if secure:
            lines.append(f"AMEYO_JWT={fake.jwt}")
        if ca_file is not None:
            lines.append(f"AMEYO_CA_FILE={ca_file}")
        click.echo("\n".join(lines))
        sys.stdout.flush()
        click.echo(
            f"fake Ameyo server: {len(fake)} callbacks in campaigns "
            f"{', '.join(map(str, campaigns))} at {url}; Ctrl-C stops it",
            err=True,
        )
        if live_rate > 0:  # from now: changes owed since startup would all land at once
            fake.live(live_rate, mix=live_mix, seed=live_seed, on_change=on_change)
        run_uvicorn(config, sock)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ameyo_callbacks.testing``: run :data:`fake_server`; the exit status."""
    try:
        fake_server.main(args=list(argv) if argv is not None else None, prog_name=_PROG)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
