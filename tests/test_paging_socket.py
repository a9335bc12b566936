"""Early exits on a real socket: no request left running, no connection left open."""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
import psutil
import pytest

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter
from ameyo_callbacks.testing import FakeAmeyo, serve

pytestmark = pytest.mark.integration


def open_connections_to(port: int) -> int:
    """TCP connections of this process to the server's port that are still open."""
    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


async def settled(fake: FakeAmeyo) -> None:
    """Wait until the fake, in uvicorn's thread, has been idle for 0.2 s (10 s at most).

    Idle: nothing in flight and no new request logged. Requests the break
    cancelled may already be on the wire: uvicorn's thread logs them, and
    ends them when it sees the closed connection, a moment later; a fixed
    50 ms was not always enough on a loaded machine (one still in flight).
    """
    with anyio.move_on_after(10):
        while True:
            made = len(fake.requests)
            await anyio.sleep(0.2)
            if not fake.in_flight and len(fake.requests) == made:
                return


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
@pytest.mark.parametrize("piped", [True, False])
async def test_break_leaves_no_request_running_and_close_leaves_no_connection(
    backend: str, piped: bool
) -> None:
    """A break mid-walk: the fake sees nothing in flight; closing the client closes every socket."""
    fake = FakeAmeyo.seeded(3000, campaigns=(6,), latency=0.01)
    with serve(fake) as url:
        port = urlsplit(url).port
        assert port is not None
        async with AmeyoCallbacksClient(url, session_id=fake.session_id, http_backend=backend) as c:
            walk = c.iter_callbacks(CallbackFilter.campaign(6), page_size=50, prefetch=4)
            seen = 0
            if piped:
                async with walk:
                    async for _cb in walk:
                        seen += 1
                        if seen == 120:
                            break
            else:
                async for _cb in walk:
                    seen += 1
                    if seen == 120:
                        break
            await settled(fake)
            assert fake.in_flight == 0
            # 3 pages read, then at most 4 buffered and 4 in flight: not a walk going on
            assert len(fake.requests) <= 3 + 2 * 4
            assert fake.max_concurrency <= 4
            assert c.http_backend == backend
            if (
                not piped
            ):  # nothing was cancelled: connections wait in the pool, the probe sees them
                assert open_connections_to(port) > 0
        with anyio.move_on_after(10):
            while open_connections_to(port):
                await anyio.sleep(0.01)
        assert open_connections_to(port) == 0
