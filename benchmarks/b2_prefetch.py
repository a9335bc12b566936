"""B2, latency hiding: walking 20,000 records with 20 ms per request.

Baseline: the sequential plain httpx walk. The walk takes 201 requests: 200
full pages and the empty page that ends it (the baseline and every prefetch
setting need it). Targets: the default prefetch (4) >= 3.5x faster than the
baseline; ``prefetch=8`` within 1.3x of the ideal, 201 x 20 ms / 8.

Both forms of the iterator are measured: ``async with it: async for ...``
(pipelined in the iterator's own task group) and a plain ``async for``
inside ``async with client:`` (the client's block owns the task group that
runs the prefetch requests). With a consumer that spends 20 ms a page, the
plain form must stay within 1.10x of the pipelined one: it overlaps fetching
with the loop body too.
"""

from __future__ import annotations

import _common as c
import anyio

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter

NAME = "B2"
RECORDS = 20_000
LATENCY_MS = 20.0
REQUESTS = RECORDS // c.PAGE + 1  # the last, empty page ends the walk
SPEEDUP_TARGET = 3.5
IDEAL_TARGET = 1.3
CONSUMER_S = 0.020  # what the slow consumer spends on each page of 100 records
PLAIN_TARGET = 1.10


def main() -> None:
    title = f"{NAME} latency hiding: walk {RECORDS:,} records, {LATENCY_MS:g} ms latency"
    with c.section(title), c.FakeServer(RECORDS, latency_ms=LATENCY_MS) as server:
        c.note(server.describe())
        url, sid = server.url, server.session_id

        # Each variant builds its client (and transport) untimed, then times the walk.
        async def baseline(sw: c.Stopwatch, max_pages: int | None = None) -> int:
            async with c.plain_httpx_client() as http:
                with sw:
                    return await c.plain_walk(http, url, sid, max_pages)

        async def ours(
            sw: c.Stopwatch,
            prefetch: int,
            max_items: int | None = None,
            *,
            piped: bool = True,
            slow: bool = False,
        ) -> int:
            count = 0

            async def consume() -> None:
                nonlocal count
                count += 1
                if slow and count % c.PAGE == 0:
                    await anyio.sleep(CONSUMER_S)

            async with AmeyoCallbacksClient(url, session_id=sid) as client:
                with sw:
                    walk = client.iter_callbacks(
                        CallbackFilter.campaign(c.CAMPAIGN), prefetch=prefetch, max_items=max_items
                    )
                    if piped:
                        async with walk:
                            async for _record in walk:
                                await consume()
                    else:
                        async for _record in walk:
                            await consume()
            return count

        c.measure(lambda sw: baseline(sw, max_pages=3))  # warm-up, not timed
        c.measure(lambda sw: ours(sw, 8, max_items=1600))

        samples = c.interleaved(
            {
                "sequential httpx": baseline,
                "prefetch=4": lambda sw: ours(sw, 4),
                "prefetch=8": lambda sw: ours(sw, 8),
                "prefetch=4 plain": lambda sw: ours(sw, 4, piped=False),
                "prefetch=8 plain": lambda sw: ours(sw, 8, piped=False),
                "slow consumer, with": lambda sw: ours(sw, 4, slow=True),
                "slow consumer, plain": lambda sw: ours(sw, 4, piped=False, slow=True),
            }
        )
        for name, runs in samples.items():
            c.check_walked(name, runs, RECORDS)
            cpu = c.median([s.cpu for s in runs])
            c.note(
                f"{name:<17} wall s: {c.walls(runs)}  (client CPU median {cpu:.3f} s, "
                f"{cpu / REQUESTS * 1000:.2f} ms/page)"
            )
        base = c.median([s.wall for s in samples["sequential httpx"]])
        four = c.median([s.wall for s in samples["prefetch=4"]])
        eight = c.median([s.wall for s in samples["prefetch=8"]])
        ideal8 = REQUESTS * LATENCY_MS / 1000 / 8
        c.note(
            f"medians of {len(samples['prefetch=4'])} interleaved runs; {REQUESTS} requests "
            f"per walk; ideal at prefetch=8: {REQUESTS} x {LATENCY_MS:g} ms / 8 = "
            f"{ideal8:.3f} s"
        )
        plain = {k: c.median([s.wall for s in samples[f"prefetch={k} plain"]]) for k in (4, 8)}
        slow_with = c.median([s.wall for s in samples["slow consumer, with"]])
        slow_plain = c.median([s.wall for s in samples["slow consumer, plain"]])
        c.note(
            f"slow consumer: {CONSUMER_S * 1000:g} ms per page of {c.PAGE}, prefetch=4: "
            f"async with {slow_with:.3f} s, plain async for {slow_plain:.3f} s "
            f"(the consumer alone: {RECORDS // c.PAGE * CONSUMER_S:.2f} s)"
        )
        c.report(NAME, "sequential plain httpx wall", base, unit="s")
        c.report(
            NAME,
            "speed-up, prefetch=4 (default, async with) vs sequential",
            base / four,
            at_least=SPEEDUP_TARGET,
        )
        c.report(NAME, "speed-up, prefetch=4, plain async for", base / plain[4])
        c.report(NAME, "prefetch=8 plain async for / ideal", plain[8] / ideal8)
        c.report(
            NAME,
            "slow consumer: plain async for / async with",
            slow_plain / slow_with,
            at_most=PLAIN_TARGET,
        )
        c.report(
            NAME,
            "prefetch=4 wall / ideal (201 x 20 ms / 4)",
            four / (REQUESTS * LATENCY_MS / 1000 / 4),
        )
        c.report(NAME, "speed-up, prefetch=8 vs sequential", base / eight)
        c.report(
            NAME,
            "prefetch=8 (async with) wall / ideal (201 x 20 ms / 8)",
            eight / ideal8,
            at_most=IDEAL_TARGET,
        )


if __name__ == "__main__":
    main()
