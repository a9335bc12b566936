"""Sessions and logins: which session ids are valid, expired or unknown; who may log in.

Session ids are UUID4 text drawn from a seeded stream, so a seeded fake hands
out the same ids every run. A session lives ``ttl`` seconds unused (None:
forever). In secure mode each login (and each renewal) also gives the session
a JWT, which lives ``jwt_ttl`` seconds from its issue (None: forever).
Thread-safe: the server thread checks sessions while a test thread may
expire them.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from typing import Literal

__all__ = ["NO_JWT", "NO_SESSION", "SessionBook", "SessionState"]

SessionState = Literal["missing", "valid", "unknown", "expired"]

#: What a faulted login answers with: a well-formed session id that never works.
NO_SESSION = str(uuid.UUID(int=0))
#: What a faulted JWT renewal answers with: a JWT that never works.
NO_JWT = "eyJhbGciOiJub25lIn0.e30.never"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionBook:
    """Open sessions (last use), expired ones, and the credentials logins accept."""

    def __init__(
        self, *, seed: int, ttl: float | None = None, jwt_ttl: float | None = 900.0
    ) -> None:
        self.ttl = ttl
        self.jwt_ttl = jwt_ttl
        self._jwt_rng = random.Random(f"ameyo-fake-jwt-{seed}")
        self._jwts: dict[str, tuple[str, float]] = {}  # JWT -> (its session, issue time)
        self._expired_jwts: set[str] = set()
        self.refreshes = 0
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

    # ------------------------------------------------------------------
    # JWTs (secure mode)

    def issue_jwt(self, session: str, user_id: str) -> str:
        """A new JWT for ``session``, shaped like one (three base64url parts)."""
        header = _b64(b'{"alg":"HS256","typ":"JWT"}')
        with self._lock:
            claims = {"sub": user_id, "jti": f"{self._jwt_rng.getrandbits(64):016x}"}
            signature = _b64(self._jwt_rng.getrandbits(256).to_bytes(32, "big"))
            jwt = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
            self._jwts[jwt] = (session, time.monotonic())
        return jwt

    def jwt_state(self, session: str | None, jwt: str | None) -> SessionState:
        """How ``jwt`` looks for ``session`` now: valid only for the session it was issued to."""
        if jwt is None:
            return "missing"
        with self._lock:
            known = self._jwts.get(jwt)
            if known is None:
                return "expired" if jwt in self._expired_jwts else "unknown"
            owner, issued = known
            if owner != session:
                return "unknown"
            if self.jwt_ttl is not None and time.monotonic() - issued > self.jwt_ttl:
                del self._jwts[jwt]
                self._expired_jwts.add(jwt)
                return "expired"
            return "valid"

    def expire_jwt(self, jwt: str | None = None) -> None:
        """Expire ``jwt``, or every JWT issued so far when None."""
        with self._lock:
            gone = list(self._jwts) if jwt is None else [jwt]
            for one in gone:
                self._jwts.pop(one, None)
                self._expired_jwts.add(one)

    def refreshed(self, session: str, user_id: str) -> str:
        """A successful JWT renewal: a new JWT for ``session``, counted."""
        jwt = self.issue_jwt(session, user_id)
        with self._lock:
            self.refreshes += 1
        return jwt
