"""B3, bulk deletes: 5,000 deletes at concurrency 32 with 20 ms per request.

``client.delete_callbacks(ids, concurrency=32)`` with default client
settings (the httpx stack) and with ``http_backend="aiohttp"``, each run on
5,000 ids that exist (the server is seeded with enough for every run; runs
take disjoint ids). Targets: wall <= 1.5x the ideal, 5,000 / 32 x 20 ms, on
the default stack (issue 24), <= 1.25x with aiohttp. The speed-up is over a
sequential plain-httpx DELETE loop, measured on a subset and extrapolated per
request (said in the output).
"""

from __future__ import annotations

import _common as c

from ameyo_callbacks import AmeyoCallbacksClient

NAME = "B3"
DELETES = 5_000
CONCURRENCY = 32
LATENCY_MS = 20.0
SEQUENTIAL_SUBSET = 300
WARMUP = 200
TARGETS = {"httpx": 1.5, "aiohttp": 1.25}


def main() -> None:
    runs = c.RUNS
    seeded = len(TARGETS) * (runs * DELETES + WARMUP) + SEQUENTIAL_SUBSET
    title = f"{NAME} bulk: {DELETES:,} deletes, concurrency {CONCURRENCY}, {LATENCY_MS:g} ms"
    with c.section(title):
        pool = c.IdPool(c.seeded_ids(seeded))
        with c.FakeServer(seeded, latency_ms=LATENCY_MS) as server:
            c.note(server.describe())
            url, sid = server.url, server.session_id

            # Each variant builds its client (and transport) untimed, then times the deletes.
            async def ours(sw: c.Stopwatch, ids: list[str], backend: str) -> dict[str, int]:
                async with AmeyoCallbacksClient(
                    url, session_id=sid, http_backend=backend
                ) as client:
                    with sw:
                        result = await client.delete_callbacks(ids, concurrency=CONCURRENCY)
                return result.counts

            async def sequential(sw: c.Stopwatch, ids: list[str]) -> int:
                async with c.plain_httpx_client() as http:
                    with sw:
                        return await c.plain_deletes(http, url, sid, ids, concurrency=1)

            by_backend: dict[str, list[c.Sample]] = {}
            for backend in TARGETS:
                warm = pool.take(WARMUP)
                c.measure(lambda sw, warm=warm, b=backend: ours(sw, warm, b))  # warm-up
            for _ in range(runs):
                for backend in TARGETS:
                    ids = pool.take(DELETES)
                    sample = c.measure(lambda sw, ids=ids, b=backend: ours(sw, ids, b))
                    if sample.value["deleted"] != DELETES:
                        msg = f"{backend}: expected {DELETES} deleted, got {sample.value}"
                        raise RuntimeError(msg)
                    by_backend.setdefault(backend, []).append(sample)
            subset = pool.take(SEQUENTIAL_SUBSET)
            seq = c.measure(lambda sw: sequential(sw, subset))
            if seq.value != SEQUENTIAL_SUBSET:
                msg = f"the sequential loop deleted {seq.value} of {SEQUENTIAL_SUBSET}"
                raise RuntimeError(msg)

            ideal = DELETES / CONCURRENCY * LATENCY_MS / 1000
            per_request = seq.wall / SEQUENTIAL_SUBSET
            sequential_total = per_request * DELETES
            c.note(
                f"sequential plain httpx: {SEQUENTIAL_SUBSET} deletes in {seq.wall:.3f} s = "
                f"{per_request * 1000:.2f} ms each, extrapolated to {DELETES:,}: "
                f"{sequential_total:.2f} s (not measured in full)"
            )
            for backend, samples in by_backend.items():
                wall = c.median([s.wall for s in samples])
                cpu = c.median([s.cpu for s in samples])
                c.note(
                    f"{backend} wall s: {c.walls(samples)} (median of {runs}); ideal {ideal:.3f} s"
                )
                c.note(f"{backend} client CPU {cpu / DELETES * 1e6:.0f} us per delete (median)")
                c.report(NAME, f"{backend} wall", wall, unit="s")
                c.report(
                    NAME,
                    f"{backend} wall / ideal (5000 / 32 x 20 ms)",
                    wall / ideal,
                    at_most=TARGETS[backend],
                )
                c.report(
                    NAME,
                    f"{backend} speed-up vs sequential httpx (extrapolated)",
                    sequential_total / wall,
                )


if __name__ == "__main__":
    main()
