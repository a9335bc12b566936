"""B7, adaptive concurrency: 3,000 deletes against a server with 8 workers, 20 ms each.

The fake server serves 8 requests at a time (each holds a worker for its
20 ms latency) and queues the rest, recording each request's queueing delay.
``delete_callbacks(ids, concurrency="auto")`` runs beside fixed concurrency
4, 8, 16 and 64, interleaved, each run on 3,000 ids that exist. Targets:
"auto" reaches at least 90% of the throughput of the best fixed
concurrency, while the p95 of the server's queueing delay stays at most half
the service time (10 ms). Fixed 64 is shown beside it: as fast, with a queue
many times the service time. ``run.py --quick`` runs 600 deletes, once.
"""

from __future__ import annotations

from typing import Any

import _common as c
from _limited import LimitedServer

from ameyo_callbacks import AmeyoCallbacksClient

NAME = "B7"
WORKERS = 8
SERVICE_MS = 20.0
FIXED = (4, 8, 16, 64)
THROUGHPUT_TARGET = 0.90
QUEUE_TARGET = SERVICE_MS / 2 / 1000


def main() -> None:
    deletes = 600 if c.QUICK else 3_000
    runs = 1 if c.QUICK else c.RUNS
    variants: list[Any] = [*FIXED, "auto"]
    seeded = deletes * len(variants) * runs + 100
    title = f"{NAME} auto concurrency: {deletes:,} deletes, {WORKERS} workers x {SERVICE_MS:g} ms"
    with c.section(title):
        pool = c.IdPool(c.seeded_ids(seeded))
        with LimitedServer(seeded, latency_ms=SERVICE_MS, workers=WORKERS) as server:
            c.note(server.describe())
            url, sid = server.url, server.session_id
            figures: dict[str, list[tuple[float, float, float]]] = {str(v): [] for v in variants}

            async def one(sw: c.Stopwatch, ids: list[str], concurrency: Any) -> dict[str, Any]:
                limits: list[int] = []
                async with AmeyoCallbacksClient(url, session_id=sid) as client:
                    with sw:
                        result = await client.delete_callbacks(
                            ids,
                            concurrency=concurrency,
                            on_progress=lambda p: limits.append(p.limit),
                        )
                return {"counts": result.counts, "limits": limits}

            warm = pool.take(100)
            c.measure(lambda sw: one(sw, warm, 8))
            for round_no in range(runs):
                shift = round_no % len(variants)
                for concurrency in variants[shift:] + variants[:shift]:
                    ids = pool.take(deletes)
                    server.reset()
                    sample = c.measure(lambda sw, ids=ids, k=concurrency: one(sw, ids, k))
                    if sample.value["counts"]["deleted"] != deletes:
                        msg = f"{concurrency}: expected {deletes} deleted, got {sample.value}"
                        raise RuntimeError(msg)
                    stats = server.stats()
                    limits = sample.value["limits"]
                    mean_limit = sum(limits) / len(limits) if limits else 0.0
                    figures[str(concurrency)].append(
                        (deletes / sample.wall, stats.p95_queue(), mean_limit)
                    )

            def med(key: str, i: int) -> float:
                return c.median([f[i] for f in figures[key]])

            for key in figures:
                c.note(
                    f"concurrency {key:>4}: {med(key, 0):6.0f} deletes/s, p95 queueing "
                    f"{med(key, 1) * 1000:6.1f} ms"
                    + (f", mean limit {med(key, 2):.1f}" if key == "auto" else "")
                )
            best_key = max((str(k) for k in FIXED), key=lambda k: med(k, 0))
            c.report(NAME, "auto throughput, deletes/s", med("auto", 0), unit="/s")
            c.report(
                NAME,
                f"auto / best fixed ({best_key}) throughput",
                med("auto", 0) / med(best_key, 0),
                at_least=THROUGHPUT_TARGET,
            )
            c.report(
                NAME,
                "auto p95 server queueing delay",
                med("auto", 1) * 1000,
                unit="ms",
                at_most=QUEUE_TARGET * 1000,
            )
            c.report(NAME, "fixed 64 p95 queueing delay", med("64", 1) * 1000, unit="ms")
            c.report(NAME, "fixed 64 throughput / auto", med("64", 0) / med("auto", 0))


if __name__ == "__main__":
    main()
