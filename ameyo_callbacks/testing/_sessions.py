"""Sessions and logins: which session ids are valid, expired or unknown; who may log in.

Session ids are UUID4 text drawn from a seeded stream, so a seeded fake hands
out the same ids every run. A session lives ``ttl`` seconds unused (None:
forever). Thread-safe: the server thread checks sessions while a test thread
may expire them.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Literal

__all__ = ["NO_SESSION", "SessionBook", "SessionState"]

SessionState = Literal["missing", "valid", "unknown", "expired"]

#: What a faulted login answers with: a well-formed session id that never works.
NO_SESSION = str(uuid.UUID(int=0))


class SessionBook:
    """Open sessions (last use), expired ones, and the credentials logins accept."""

    def __init__(self, *, seed: int, ttl: float | None = None) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._rng = random.Random(f"ameyo-fake-session-{seed}")
        self._open: dict[str, float] = {}
        self._expired: set[str] = set()
        self._credentials: dict[str, tuple[str, str | None]] = {}
        self.logins = 0

    def open(self) -> str:
        """Open and return a new valid session id."""
        session = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        with self._lock:
            self._open[session] = time.monotonic()
        return session

    def state(self, session: str | None, *, touch: bool) -> SessionState:
        """How ``session`` looks now; ``touch`` counts this as a use (restarting its TTL)."""
        if session is None:
            return "missing"
        with self._lock:
            last_used = self._open.get(session)
            if last_used is None:
                return "expired" if session in self._expired else "unknown"
            now = time.monotonic()
            if self.ttl is not None and now - last_used > self.ttl:
                del self._open[session]
                self._expired.add(session)
                return "expired"
            if touch:
                self._open[session] = now
            return "valid"

    def expire(self, session: str) -> None:
        """Expire ``session``: it answers as an expired session from now on."""
        with self._lock:
            self._open.pop(session, None)
            self._expired.add(session)

    def add_user(self, user_id: str, token: str, domain: str | None) -> None:
        """Accept logins for ``user_id`` with ``token`` (and ``domain`` when not None)."""
        with self._lock:
            self._credentials[user_id] = (token, domain)

    def accepts(self, user_id: str, token: str, domain: object) -> bool:
        """True when these credentials may log in."""
        with self._lock:
            known = self._credentials.get(user_id)
        return known is not None and known[0] == token and known[1] in (None, domain)

    def login(self) -> str:
        """A successful login: a new session, counted."""
        session = self.open()
        with self._lock:
            self.logins += 1
        return session
