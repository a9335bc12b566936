"""A walk decodes a page while its next request is out, on loopback sockets over both stacks.

The mechanism behind ``_paging.WIRE_STEPS``: once a full page's answer is in,
the walk starts its next request and lets it reach the socket before it
decodes the page. Here decoding is made slow (200 ms, the GIL free: the
fake's server thread runs meanwhile), and the fake's log shows when it began
to serve each request: every next request began before the page before it
was decoded. Were the request started but not yet written (too few
checkpoints for the stack), it would only go out after the decoding, and
this fails. (It failed in ``lowest`` at 50 ms and at 200 ms, and with any
number of checkpoints, while uvloop 0.21 or 0.22 was the fake's loop on
Python 3.10: the test group asks for 0.23. The 200 ms stay, as margin for a
loaded machine.)
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter, _client
from ameyo_callbacks.testing import FakeAmeyo, serve

pytestmark = pytest.mark.integration

DECODE_S = 0.2


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
def test_each_next_request_is_served_while_the_page_before_is_decoded(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prefetch=1, 500 callbacks: requests 2 to 6 reach the server while pages 1 to 5 decode."""
    fake = FakeAmeyo.seeded(500, campaigns=(6,))
    decoded: list[tuple[float, float]] = []
    real = _client.decode_list_response

    def slow(*args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        time.sleep(DECODE_S)  # (blocks the client's loop, as a long decode does)
        try:
            return real(*args, **kwargs)
        finally:
            decoded.append((began, time.monotonic()))

    monkeypatch.setattr(_client, "decode_list_response", slow)

    async def main(url: str) -> int:
        async with AmeyoCallbacksClient(
            url, session_id=fake.session_id, http_backend=backend
        ) as client:
            walk = client.iter_callbacks(CallbackFilter.campaign(6), prefetch=1)
            return len([cb async for cb in walk])

    with serve(fake) as url:
        assert anyio.run(main, url) == 500
    served = [e.started for e in fake.requests if e.endpoint == "list"]
    # offsets 0, 98, ..., 392 are full pages; 490 holds the last 10 and ends the walk
    assert len(served) == len(decoded) == 6
    for (_began, ended), next_began in zip(decoded[:-1], served[1:], strict=True):
        assert next_began < ended, (decoded, served)  # (often before the decoding even began)
