"""B1, overhead: walking 100,000 records, the library against a plain httpx loop.

No latency: this measures what the library costs on top of the HTTP round
trips (request building, the send path, decoding into CustomerCallback
records). Baseline: ``httpx.AsyncClient`` posting the same getFiltered
pages (limit 100, one at a time, sessionId header) and ``response.json()``
into dicts. Ours: ``iter_callbacks(CallbackFilter.campaign(6), prefetch=1)``, one
request at a time too (the next goes out once a full page's answer is in, and
runs while that page is decoded). Target: ours <= 1.10x the baseline's wall time.
"""

from __future__ import annotations

import _common as c

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter

NAME = "B1"
RECORDS = 100_000
TARGET = 1.10  # the verified walk (issue 12) against plain httpx


def main() -> None:
    title = f"{NAME} overhead: walk {RECORDS:,} records, no latency"
    with c.section(title), c.FakeServer(RECORDS) as server:
        c.note(server.describe())
        url, sid = server.url, server.session_id

        # Each variant builds its client (and transport) untimed, then times the walk.
        async def baseline(sw: c.Stopwatch, max_pages: int | None = None) -> int:
            async with c.plain_httpx_client() as http:
                with sw:
                    return await c.plain_walk(http, url, sid, max_pages)

        async def ours(
            sw: c.Stopwatch, prefetch: int, backend: str = "httpx", max_items: int | None = None
        ) -> int:
            count = 0
            async with AmeyoCallbacksClient(url, session_id=sid, http_backend=backend) as client:
                with sw:
                    async for _record in client.iter_callbacks(
                        CallbackFilter.campaign(c.CAMPAIGN), prefetch=prefetch, max_items=max_items
                    ):
                        count += 1
            return count

        # Warm-up (imports, first connections), not timed.
        c.measure(lambda sw: baseline(sw, max_pages=20))
        c.measure(lambda sw: ours(sw, 1, max_items=2000))
        c.measure(lambda sw: ours(sw, 1, "aiohttp", max_items=2000))

        samples = c.interleaved(
            {
                "baseline": baseline,
                "prefetch=1": lambda sw: ours(sw, 1),
                "prefetch=4": lambda sw: ours(sw, 4),
                "prefetch=1 aiohttp": lambda sw: ours(sw, 1, "aiohttp"),
            }
        )
        for name, runs in samples.items():
            c.check_walked(name, runs, RECORDS)
            cpu = c.median([s.cpu for s in runs])
            c.note(
                f"{name:<17} wall s: {c.walls(runs)}  "
                f"(client CPU median {cpu:.3f} s, {cpu / RECORDS * 1e6:.1f} us/record)"
            )
        base = c.median([s.wall for s in samples["baseline"]])
        one = c.median([s.wall for s in samples["prefetch=1"]])
        four = c.median([s.wall for s in samples["prefetch=4"]])
        aio = c.median([s.wall for s in samples["prefetch=1 aiohttp"]])
        c.note(f"medians of {len(samples['baseline'])} interleaved runs; ratio = ours / baseline")
        c.report(NAME, "baseline wall (plain httpx, dicts)", base, unit="s")
        c.report(NAME, "ours prefetch=1 / baseline", one / base, at_most=TARGET)
        c.report(NAME, "ours prefetch=4 (default) / baseline", four / base)
        c.report(NAME, "ours prefetch=1, http_backend='aiohttp' / baseline", aio / base)


if __name__ == "__main__":
    main()
