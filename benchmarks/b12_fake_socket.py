"""B12 the fake on a socket: how long ``serve()`` takes to answer one request.

A user's test against ``ameyo_callbacks.testing.serve(fake)`` (uvicorn in a
thread of the test's own process) pays this for every request. Each figure
is the median of 20 sequential one-record list requests over one kept-alive
connection, after 5 to warm up, against a baseline measured in the same run:
the loopback floor, a bare asyncio server in a thread of the same process
that answers every request with the same fixed bytes. Target (issue 23): at
most 10 ms a request. Before the fix, every answer waited out
the client's delayed ACK (44 ms), because the listening socket did not name
``IPPROTO_TCP`` and asyncio left ``TCP_NODELAY`` off.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Iterator

import _common as c
import httpx

from ameyo_callbacks._protocol import CALLBACKS_PREFIX
from ameyo_callbacks.testing import FakeAmeyo, serve

NAME = "B12"
REQUESTS = 20
WARM_UP = 5
TARGET_MS = 10.0
PARAMS = {"limit": 1, "campaignId": c.CAMPAIGN, "offset": 0}


def median_ms(url: str, session_id: str) -> float:
    """Median wall time (ms) of one list request over a kept-alive connection."""
    path = f"{CALLBACKS_PREFIX}/getFiltered"
    times: list[float] = []
    with httpx.Client(base_url=url, headers={"sessionId": session_id}, timeout=10) as http:
        for n in range(WARM_UP + REQUESTS):
            started = time.perf_counter()
            http.post(path, params=PARAMS).raise_for_status()
            if n >= WARM_UP:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@contextlib.contextmanager
def loopback_floor() -> Iterator[str]:
    """A bare asyncio HTTP server in a thread: reads a request, answers fixed bytes, keeps alive."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]"
    loop = asyncio.new_event_loop()
    stop: asyncio.Future[None] = loop.create_future()
    started = threading.Event()
    port: list[int] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
        writer.close()

    async def serve_until_stopped() -> None:
        server = await asyncio.start_server(connection, c.HOST, 0)
        port.append(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(serve_until_stopped(),))
    thread.daemon = True
    thread.start()
    started.wait(10)
    try:
        yield f"http://{c.HOST}:{port[0]}"
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()


def main() -> None:
    with c.section("B12 the fake's socket server"):
        fake = FakeAmeyo.seeded(200, campaigns=(c.CAMPAIGN,))
        with serve(fake) as url:
            in_thread = median_ms(url, fake.session_id)
        with loopback_floor() as url:
            floor = median_ms(url, "-")
        c.report(NAME, f"bare asyncio server (baseline, median of {REQUESTS})", floor, unit="ms")
        c.report(NAME, f"serve() (median of {REQUESTS})", in_thread, unit="ms", at_most=TARGET_MS)
        c.report(NAME, "serve() / bare asyncio server", in_thread / floor)
