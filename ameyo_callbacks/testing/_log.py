"""The request log: one :class:`RequestLogEntry` per request, and the concurrency gauge.

An :class:`Exchange` is filled in while a request is served (endpoint,
fault, status...); :meth:`RequestLog.finish` turns it into an entry. The log
keeps the newest ``limit`` entries. Thread-safe: uvicorn serves in its
thread while a test reads the log in another.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import attrs

from ._faults import Endpoint
from ._sessions import SessionState

__all__ = ["Exchange", "RequestLog", "RequestLogEntry"]


@attrs.frozen
class RequestLogEntry:
    """One request the fake served (or failed to), for assertions.

    ``status`` is None when no complete answer went out: a dropped connection,
    or a client the fake saw go away first (a send to a client gone without
    the fake noticing is dropped by uvicorn, and still logged with its status).
    ``fault`` is the injected fault's kind.
    ``session`` says how the ``sessionId`` header looked, never its value;
    ``jwt`` how the ``Authorization`` header's JWT looked (secure mode;
    ``"missing"`` without one).
    ``body`` is the request body, except for login calls (None: it carries a
    token). ``started``/``ended`` are ``time.monotonic()`` readings, ``seq`` the
    arrival number.
    """

    seq: int
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    endpoint: Endpoint | None
    status: int | None
    fault: str | None
    session: SessionState
    body: bytes | None
    started: float
    ended: float
    jwt: SessionState = "missing"

    @property
    def duration(self) -> float:
        """Seconds from arrival to the answer's body going out (or the drop)."""
        return self.ended - self.started

    def params(self, name: str) -> list[str]:
        """Every value of one query parameter, in order."""
        return [v for k, v in self.query if k == name]


@attrs.define
class Exchange:
    """What the log records about one request, filled in as it is served."""

    seq: int
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    started: float
    endpoint: Endpoint | None = None
    status: int | None = None
    fault: str | None = None
    session: SessionState = "missing"
    jwt: SessionState = "missing"
    body: bytes | None = None
    logged: bool = False


class RequestLog:
    """The newest ``limit`` entries (None: all), arrival numbers, requests in flight."""

    def __init__(self, limit: int | None) -> None:
        self._lock = threading.Lock()
        self._entries: deque[RequestLogEntry] = deque(maxlen=limit)
        self._seq = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def __len__(self) -> int:
        return len(self._entries)

    def start(self, method: str, path: str, query: tuple[tuple[str, str], ...]) -> Exchange:
        """A request arrived: number it and count it in flight."""
        started = time.monotonic()
        with self._lock:
            self._seq += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return Exchange(self._seq, method, path, query, started)

    def finish(self, ex: Exchange) -> None:
        """A request ended (answered, faulted or abandoned): log it, once."""
        if ex.logged:
            return
        ex.logged = True
        entry = RequestLogEntry(
            seq=ex.seq,
            method=ex.method,
            path=ex.path,
            query=ex.query,
            endpoint=ex.endpoint,
            status=ex.status,
            fault=ex.fault,
            session=ex.session,
            body=ex.body,
            started=ex.started,
            ended=time.monotonic(),
            jwt=ex.jwt,
        )
        with self._lock:
            self.in_flight -= 1
            self._entries.append(entry)

    def entries(self) -> list[RequestLogEntry]:
        """The log, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Empty the log (arrival numbers go on)."""
        with self._lock:
            self._entries.clear()

    def reset_max(self) -> None:
        """Restart the high-water mark from the requests in flight now."""
        with self._lock:
            self.max_in_flight = self.in_flight
