"""B8, the shared rate limit: 1,000 deletes at ``max_rate=50``.

``AmeyoCallbacksClient(..., max_rate=50)`` deleting 1,000 ids at
concurrency 32 against the fake (20 ms latency, no server limits); the server
records the arrival time of every request. Targets: in no one-second window
[t, t + 1) does the server see more than 55 requests (1.1 x max_rate), and
the run takes at most 1.05 x 1000 / 50 = 21 s (the limit costs nothing
beyond itself). ``run.py --quick`` runs 200 deletes (4 s ideal), once.
"""

from __future__ import annotations

import _common as c
from _limited import LimitedServer

from ameyo_callbacks import AmeyoCallbacksClient

NAME = "B8"
MAX_RATE = 50
CONCURRENCY = 32
LATENCY_MS = 20.0
WINDOW_TARGET = 1.1 * MAX_RATE
WALL_TARGET = 1.05


def main() -> None:
    deletes = 200 if c.QUICK else 1_000
    runs = 1 if c.QUICK else c.RUNS
    seeded = deletes * runs + 100
    with c.section(f"{NAME} max_rate: {deletes:,} deletes at max_rate={MAX_RATE}"):
        pool = c.IdPool(c.seeded_ids(seeded))
        with LimitedServer(seeded, latency_ms=LATENCY_MS) as server:
            c.note(server.describe())
            url, sid = server.url, server.session_id

            async def ours(sw: c.Stopwatch, ids: list[str]) -> dict[str, int]:
                async with AmeyoCallbacksClient(url, session_id=sid, max_rate=MAX_RATE) as client:
                    with sw:
                        result = await client.delete_callbacks(ids, concurrency=CONCURRENCY)
                return result.counts

            walls: list[float] = []
            busiest: list[int] = []
            for _ in range(runs):
                ids = pool.take(deletes)
                server.reset()
                sample = c.measure(lambda sw, ids=ids: ours(sw, ids))
                if sample.value["deleted"] != deletes:
                    msg = f"expected {deletes} deleted, got {sample.value}"
                    raise RuntimeError(msg)
                stats = server.stats()
                walls.append(sample.wall)
                busiest.append(stats.busiest_second())
            ideal = deletes / MAX_RATE
            c.note(f"wall s: {', '.join(f'{w:.2f}' for w in walls)}; ideal {ideal:.1f} s")
            c.note(f"busiest one-second window per run: {busiest}")
            c.report(
                NAME,
                "most requests in any one-second window",
                max(busiest),
                unit="req",
                at_most=WINDOW_TARGET,
            )
            c.report(
                NAME,
                f"wall / ideal ({deletes} / {MAX_RATE} s)",
                c.median(walls) / ideal,
                at_most=WALL_TARGET,
            )


if __name__ == "__main__":
    main()
