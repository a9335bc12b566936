"""B9, slowing down behind a rate limit: 800 deletes behind a 20/s token bucket.

The fake answers 429 with ``Retry-After: 1`` once its token bucket (20 a
second, burst 20) is empty. ``delete_callbacks(ids, concurrency=32)`` on
default client settings (the adaptive rate is on by default). Targets: all
800 deleted and at most 10% of all requests rejected. Shown beside:
``adaptive_rate=False`` (the client before issue 14: it only pauses, then
releases every waiting request at once). ``run.py --quick``: 200 deletes.
"""

from __future__ import annotations

import _common as c
from _limited import LimitedServer

from ameyo_callbacks import AmeyoCallbacksClient

NAME = "B9"
RATE = 20
CONCURRENCY = 32
LATENCY_MS = 20.0
REJECTED_TARGET = 0.10


def main() -> None:
    deletes = 200 if c.QUICK else 800
    seeded = 2 * deletes + 100
    title = f"{NAME} throttled: {deletes} deletes behind a {RATE}/s token bucket, concurrency 32"
    with c.section(title):
        pool = c.IdPool(c.seeded_ids(seeded))
        with LimitedServer(
            seeded, latency_ms=LATENCY_MS, rate=RATE, burst=RATE, retry_after=1
        ) as server:
            c.note(server.describe())
            url, sid = server.url, server.session_id

            async def run(sw: c.Stopwatch, ids: list[str], adaptive: bool) -> dict[str, int]:
                async with AmeyoCallbacksClient(
                    url, session_id=sid, adaptive_rate=adaptive
                ) as client:
                    with sw:
                        result = await client.delete_callbacks(ids, concurrency=CONCURRENCY)
                return result.counts

            figures: dict[bool, tuple[dict[str, int], float, float]] = {}
            for adaptive in (True, False):
                ids = pool.take(deletes)
                server.reset()
                sample = c.measure(lambda sw, ids=ids, a=adaptive: run(sw, ids, a))
                stats = server.stats()
                total = stats.admitted + stats.rejected
                figures[adaptive] = (sample.value, stats.rejected / total, sample.wall)
                c.note(
                    f"adaptive_rate={adaptive}: {sample.value}, {stats.rejected} of {total} "
                    f"requests rejected, {sample.wall:.1f} s (ideal {deletes / RATE:.0f} s)"
                )
            counts, rejected, wall = figures[True]
            c.report(
                NAME,
                "deleted of all ids (default settings)",
                counts["deleted"] / deletes,
                at_least=1.0,
            )
            c.report(
                NAME,
                "share of requests rejected (default settings)",
                rejected,
                at_most=REJECTED_TARGET,
            )
            c.report(NAME, "share rejected, adaptive_rate=False", figures[False][1])
            c.report(NAME, "wall / ideal (default settings)", wall / (deletes / RATE))


if __name__ == "__main__":
    main()
