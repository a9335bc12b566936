"""Serve the fake on a real loopback socket with uvicorn (the ``fake`` extra).

:class:`serve` runs uvicorn in a background thread and gives the block the
base URL, under ``with`` or ``async with`` (then startup and shutdown run in a
worker thread, so the event loop is never blocked; ``serve_async`` is the
same class). Only loopback addresses are accepted: the fake is a test
double, not a service.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
import time
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread

from ._faults import DroppedConnection

__all__ = [
    "base_url",
    "bind_loopback",
    "check_loopback",
    "require_uvicorn",
    "serve",
    "serve_async",
    "uvicorn_config",
]

_INSTALL_HINT = "pip install 'ameyo-callbacks[fake]'"


def require_uvicorn() -> ModuleType:
    """Import uvicorn, or fail saying how to install it."""
    try:
        import uvicorn  # noqa: PLC0415  (an optional extra)
    except ImportError as exc:
        msg = f"serving the fake Ameyo server on a socket needs uvicorn: {_INSTALL_HINT}"
        raise ModuleNotFoundError(msg, name="uvicorn") from exc
    return uvicorn


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address ("localhost" is 127.0.0.1); else ValueError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        msg = f"the fake Ameyo server binds loopback addresses only (127.0.0.1, ::1), not {host!r}"
        raise ValueError(msg)
    return host


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on a loopback address (port 0: a free one).

    The socket is made with ``IPPROTO_TCP`` named: asyncio turns
    ``TCP_NODELAY`` on for an accepted connection only when its protocol says
    TCP, and without it every answer waits out the client's delayed ACK
    (about 40 ms a request instead of about one).
    """
    host = check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket, *, https: bool) -> str:
    """``http(s)://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if https else 'http'}://{shown}:{port}"


def uvicorn_config(
    app: Any,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    quiet: bool = True,
    loop: str = "auto",
    http: str = "auto",
) -> Any:
    """A loaded ``uvicorn.Config`` for the fake (errors in certificates raise here).

    ``quiet`` leaves logging alone (no ``dictConfig``, no access log): right
    inside a test run. The command line passes False for uvicorn's own output.
    ``loop`` and ``http`` are uvicorn's (``"auto"``: uvloop and httptools when
    installed); the benchmarks name them to be sure of the fast ones.
    """
    uvicorn = require_uvicorn()
    options: dict[str, Any] = {"log_config": None} if quiet else {"log_level": "warning"}
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        loop=loop,
        http=http,
        access_log=False,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
        **options,
    )
    config.load()
    return config


class _HideInjectedDrops(logging.Filter):
    """Keep uvicorn from logging a traceback for each deliberate dropped connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


class _ServerThread:
    """uvicorn on a loopback socket, in a daemon thread, started and stopped with bounds."""

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        ssl_certfile: str | None,
        ssl_keyfile: str | None,
    ) -> None:
        uvicorn = require_uvicorn()
        if (ssl_keyfile is not None) and ssl_certfile is None:
            msg = "ssl_keyfile needs ssl_certfile (the certificate to serve)"
            raise ValueError(msg)
        self._config = uvicorn_config(app, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
        self._server = uvicorn.Server(self._config)
        self._sock = bind_loopback(host, port)
        self.url = base_url(self._sock, https=ssl_certfile is not None)
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, name=f"fake-ameyo {self.url}", daemon=True
        )
        self._filter = _HideInjectedDrops()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001  (SystemExit from uvicorn included)
            self._errors.append(exc)

    def start(self, timeout: float) -> None:
        logging.getLogger("uvicorn.error").addFilter(self._filter)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(timeout)
                cause = self._errors[0] if self._errors else None
                msg = f"the fake Ameyo server at {self.url} did not start within {timeout} s"
                raise RuntimeError(msg) from cause
            time.sleep(0.005)

    def stop(self, timeout: float) -> None:
        try:
            self._server.should_exit = True
            if self._thread.is_alive():
                self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
            if self._thread.is_alive():
                msg = f"the fake Ameyo server at {self.url} did not stop within {2 * timeout} s"
                raise RuntimeError(msg)
        finally:
            self._sock.close()
            logging.getLogger("uvicorn.error").removeFilter(self._filter)


class serve:  # noqa: N801  (a context manager named like a function, as contextlib's are)
    """Serve ``app`` (a :class:`FakeAmeyo`) on a loopback socket; the block gets its base URL.

    uvicorn runs in a background thread on ``host`` (loopback only) and
    ``port`` (0: a free one). With ``ssl_certfile`` (and ``ssl_keyfile``, or a
    certfile holding the key too) it serves HTTPS and the URL is ``https://``.
    On exit the server is stopped and its thread joined, waiting at most
    ``shutdown_timeout`` seconds twice (graceful, then forced). Needs the
    ``fake`` extra: ``pip install 'ameyo-callbacks[fake]'``.

    Use it with ``with`` or with ``async with`` (:data:`serve_async` is the
    same): the same server thread, started and stopped from a worker thread
    under ``async with``, so the event loop keeps running.

    >>> with serve(FakeAmeyo.seeded(100)) as url:  # doctest: +SKIP
    ...     ...  # AmeyoCallbacksClient(url, session_id=fake.session_id)
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._make = functools.partial(
            _ServerThread,
            app,
            host=host,
            port=port,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._server: _ServerThread | None = None

    def _bind(self) -> _ServerThread:
        """The server thread for a block, its socket bound (not started yet)."""
        if self._server is not None:
            msg = "this serve() is serving already: enter a new serve(...) for a second server"
            raise RuntimeError(msg)
        self._server = self._make()
        return self._server

    def _unbind(self) -> _ServerThread:
        server, self._server = self._server, None
        assert server is not None  # noqa: S101  (exit follows a successful enter)
        return server

    def __enter__(self) -> str:
        server = self._bind()
        try:
            server.start(self._startup_timeout)
        except BaseException:
            self._server = None
            raise
        return server.url

    def __exit__(self, *exc_info: object) -> None:
        self._unbind().stop(self._shutdown_timeout)

    async def __aenter__(self) -> str:
        server = self._bind()
        try:
            await anyio.to_thread.run_sync(server.start, self._startup_timeout)
        except BaseException:
            self._server = None
            raise
        return server.url

    async def __aexit__(self, *exc_info: object) -> None:
        server = self._unbind()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.stop, self._shutdown_timeout)


#: :class:`serve` under the name an ``async with`` reads best with (the same class).
serve_async = serve
