"""The fake server with server limits, in its own process, for B7-B9.

``python benchmarks/_limited.py --port P --callbacks N [--latency-ms L]
[--workers W] [--rate R --burst B --retry-after S]`` serves a seeded
``FakeAmeyo`` holding a :class:`ServerLimits` under uvicorn on 127.0.0.1, and
one extra route for the benchmark: ``GET /__limits`` answers what the limits
recorded (arrival times, queueing delays, admitted and rejected counts) as
JSON, ``POST /__limits`` empties the records. It prints ``AMEYO_BASE_URL`` and
``AMEYO_SESSION_ID`` like the fake's own command, so ``LimitedServer`` below
starts it with ``_common.FakeServer``'s machinery.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import _common as c
import httpx

STATS_PATH = "/__limits"


@dataclass
class LimitStats:
    arrivals: list[float]
    queue_delays: list[float]
    admitted: int
    rejected: int

    def busiest_second(self) -> int:
        """The most arrivals inside any window [t, t + 1)."""
        ordered = sorted(self.arrivals)
        most = start = 0
        for end, moment in enumerate(ordered):
            while ordered[start] <= moment - 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def p95_queue(self) -> float:
        delays = sorted(self.queue_delays)
        return delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else 0.0


@dataclass
class LimitedServer(c.FakeServer):
    """``_limited.py`` on 127.0.0.1 (see the module docstring), started and always stopped."""

    workers: int | None = None
    rate: float | None = None
    burst: int | None = None
    retry_after: int = 1

    def start(self, timeout: float = 60.0) -> LimitedServer:
        port = c.free_port()
        self.options = c.fast_server_options()
        argv = [
            sys.executable,
            __file__,
            "--port",
            str(port),
            "--callbacks",
            str(self.callbacks),
            "--latency-ms",
            str(self.latency_ms),
            "--retry-after",
            str(self.retry_after),
            *(["--workers", str(self.workers)] if self.workers else []),
            *(["--rate", str(self.rate)] if self.rate else []),
            *(["--burst", str(self.burst)] if self.burst else []),
            *self.options,
        ]
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self._read_banner(timeout)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> LimitedServer:
        return self.start()

    def stats(self) -> LimitStats:
        data = httpx.get(self.url + STATS_PATH, timeout=30.0, trust_env=False).json()
        return LimitStats(**data)

    def reset(self) -> None:
        httpx.post(self.url + STATS_PATH, timeout=30.0, trust_env=False).raise_for_status()

    def describe(self) -> str:
        limits = []
        if self.workers:
            limits.append(f"{self.workers} workers")
        if self.rate:
            limits.append(
                f"token bucket {self.rate:g}/s (burst {self.burst}) answering 429 "
                f"Retry-After: {self.retry_after}"
            )
        return f"{super().describe()}; {', '.join(limits) or 'no limits'}"


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _app(fake: Any, limits: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STATS_PATH:
            await fake(scope, receive, send)
            return
        if scope["method"] == "POST":
            limits.reset()
            payload: dict[str, Any] = {}
        else:
            payload = {
                "arrivals": list(limits.arrivals),
                "queue_delays": list(limits.queue_delays),
                "admitted": limits.admitted,
                "rejected": limits.rejected,
            }
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    from ameyo_callbacks.testing import FakeAmeyo, ServerLimits  # noqa: PLC0415
    from ameyo_callbacks.testing._command import run_uvicorn  # noqa: PLC0415
    from ameyo_callbacks.testing._server import (  # noqa: PLC0415
        base_url,
        bind_loopback,
        uvicorn_config,
    )

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--callbacks", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--burst", type=int)
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    args = parser.parse_args()
    limits = ServerLimits(
        workers=args.workers, rate=args.rate, burst=args.burst, retry_after=args.retry_after
    )
    fake = FakeAmeyo.seeded(
        args.callbacks,
        campaigns=(c.CAMPAIGN,),
        latency=args.latency_ms / 1000,
        log_limit=0,
        limits=limits,
    )
    sock = bind_loopback(c.HOST, args.port)
    config = uvicorn_config(_app(fake, limits), quiet=False, loop=args.loop, http=args.http)
    print(f"AMEYO_BASE_URL={base_url(sock, https=False)}")
    print(f"AMEYO_SESSION_ID={fake.session_id}", flush=True)
    run_uvicorn(config, sock)


if __name__ == "__main__":
    main()
