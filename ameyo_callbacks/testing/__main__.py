"""``python -m ameyo_callbacks.testing``: run the fake Ameyo server in the foreground.

Prints, on stdout, one ``NAME=value`` line each for the base URL and the
session id to use (and the CA file when it made a throwaway certificate),
then serves on 127.0.0.1 until Ctrl-C. A human summary goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ._app import DEFAULT_USERS, FakeAmeyo
from ._faults import FAULT_KINDS, FaultPlan
from ._server import base_url, bind_loopback, require_uvicorn, uvicorn_config

__all__ = ["main"]


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _words(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ameyo_callbacks.testing",
        description="Run a fake Ameyo CallBack API server on 127.0.0.1 until Ctrl-C.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    add("--port", type=int, default=8888, help="port (default 8888; 0 picks a free one)")
    add("--callbacks", type=int, default=1000, help="seeded callbacks (default 1000)")
    add("--campaigns", type=_ints, default=(6, 7, 8), help="campaign ids (default 6,7,8)")
    add("--users", type=_words, default=DEFAULT_USERS, help="agent user ids, comma-separated")
    add("--seed", type=int, default=0, help="seed for data, sessions and jitter (default 0)")
    add("--latency-ms", type=float, default=0.0, help="fixed latency per request")
    add("--jitter-ms", type=float, default=0.0, help="extra random latency, up to this")
    add("--fault-rate", type=float, default=0.0, help="share of requests faulted, 0..1")
    add(
        "--fault-kinds",
        type=_words,
        default=None,
        help=f"comma-separated mix (default all but slow): {', '.join(FAULT_KINDS)}",
    )
    add("--fault-seed", type=int, default=0, help="seed of the fault plan (default 0)")
    add("--max-limit", type=int, default=100, help="largest page served (default 100)")
    add("--list-methods", type=_words, default=("POST", "GET"), help="POST,GET (default both)")
    add("--login", action="append", default=[], metavar="USER:TOKEN", help="accept this login")
    add("--https", action="store_true", help="serve HTTPS")
    add("--certfile", help="certificate (PEM); without it --https makes one with trustme")
    add("--keyfile", help="private key (PEM), if not in --certfile")
    add("--log-limit", type=int, default=10_000, help="request log entries kept (default 10000)")
    add("--loop", default="auto", help="uvicorn event loop: auto, asyncio, uvloop (default auto)")
    add("--http", default="auto", help="uvicorn HTTP parser: auto, h11, httptools (default auto)")
    return parser


def _throwaway_certificate(directory: Path) -> tuple[str, str]:
    """A CA and a 127.0.0.1/localhost certificate made by trustme: (cert+key file, CA file)."""
    try:
        import trustme  # noqa: PLC0415  (optional)
    except ImportError:
        msg = "--https without --certfile needs trustme: pip install trustme"
        raise SystemExit(msg) from None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost")
    cert_path, ca_path = directory / "server.pem", directory / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    ca.cert_pem.write_to_path(str(ca_path))
    return str(cert_path), str(ca_path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake until interrupted; returns the exit status."""
    args = _parser().parse_args(argv)
    require_uvicorn()
    kinds = {"kinds": args.fault_kinds} if args.fault_kinds else {}
    try:
        fake = FakeAmeyo.seeded(
            args.callbacks,
            campaigns=args.campaigns,
            users=args.users,
            seed=args.seed,
            latency=args.latency_ms / 1000,
            jitter=args.jitter_ms / 1000,
            faults=FaultPlan(rate=args.fault_rate, seed=args.fault_seed, **kinds),
            max_limit=args.max_limit,
            list_methods=args.list_methods,
            log_limit=args.log_limit,
        )
        for login in args.login:
            user, _, token = login.partition(":")
            fake.add_user(user, token)
        sock = bind_loopback(args.host, args.port)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    with sock, tempfile.TemporaryDirectory(prefix="fake-ameyo-") as tmp:
        certfile, keyfile, ca_file = args.certfile, args.keyfile, None
        if args.https and certfile is None:
            certfile, ca_file = _throwaway_certificate(Path(tmp))
        url = base_url(sock, https=certfile is not None)
        config = uvicorn_config(
            fake,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            quiet=False,
            loop=args.loop,
            http=args.http,
        )
        lines = [f"AMEYO_BASE_URL={url}", f"AMEYO_SESSION_ID={fake.session_id}"]
        if ca_file is not None:
            lines.append(f"AMEYO_CA_FILE={ca_file}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        sys.stderr.write(
            f"fake Ameyo server: {len(fake)} callbacks in campaigns "
            f"{', '.join(map(str, args.campaigns))} at {url}; Ctrl-C stops it\n"
        )
        sys.stderr.flush()
        server = require_uvicorn().Server(config)
        # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal:
        # end with a clean exit, so the temporary certificate is removed.
        signal.signal(signal.SIGTERM, _exit_quietly)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    return 0


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    raise SystemExit(main())
