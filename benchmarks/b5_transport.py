"""B5, transport: 3,000 deletes with 20 ms per request at concurrency 16, 32 and 64.

Three ways to send the same DELETEs (same path, JSON body and sessionId
header, every id existing, so the server does the same work for each):

- ``library``: ``client.delete_callbacks(ids, concurrency=c)``, default
  settings (on asyncio: the aiohttp-backed httpx transport);
- ``httpx``: a raw worker loop over ``httpx.AsyncClient`` (httpcore's pool,
  100 connections);
- ``httpx+aiohttp``: the same loop over ``httpx_aiohttp.AiohttpTransport``.

Client CPU per request is ``time.process_time()`` over the run / 3,000; the
server's CPU per request is shown too, to tell a busy server from a busy
client. Targets: at 32, the library <= 1.3x the ideal (3,000 / 32 x 20 ms)
and <= 1.15x the fastest raw loop; at 64, the library no slower than at 32
(5% allowed for noise).
"""

from __future__ import annotations

import _common as c
import httpx
from httpx_aiohttp import AiohttpTransport

from ameyo_callbacks import AmeyoCallbacksClient

NAME = "B5"
DELETES = 3_000
LATENCY_MS = 20.0
CONCURRENCIES = (16, 32, 64)
WARMUP = 300
IDEAL_TARGET = 1.3
RAW_TARGET = 1.15
NOISE = 1.05
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


def main() -> None:
    runs = c.RUNS
    variants = ("library", "httpx", "httpx+aiohttp")
    seeded = runs * len(CONCURRENCIES) * len(variants) * DELETES + len(variants) * WARMUP
    title = f"{NAME} transport: {DELETES:,} deletes, {LATENCY_MS:g} ms, concurrency 16/32/64"
    with c.section(title):
        pool = c.IdPool(c.seeded_ids(seeded))
        with c.FakeServer(seeded, latency_ms=LATENCY_MS) as server:
            c.note(server.describe())
            url, sid = server.url, server.session_id

            # Each sender builds its client (and transport) untimed, then times the deletes
            # (opening the connections included).
            async def library(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                async with AmeyoCallbacksClient(url, session_id=sid) as client:
                    with sw:
                        result = await client.delete_callbacks(ids, concurrency=concurrency)
                return len(result.deleted)

            async def raw_httpx(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                async with c.plain_httpx_client(limits=LIMITS) as http:
                    with sw:
                        return await c.plain_deletes(http, url, sid, ids, concurrency)

            async def raw_aiohttp(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                transport = AiohttpTransport(limits=LIMITS)
                async with c.plain_httpx_client(transport=transport) as http:
                    with sw:
                        return await c.plain_deletes(http, url, sid, ids, concurrency)

            senders = {"library": library, "httpx": raw_httpx, "httpx+aiohttp": raw_aiohttp}
            for send in senders.values():  # warm-up, not timed
                warm = pool.take(WARMUP)
                c.measure(lambda sw, send=send, warm=warm: send(sw, warm, 16))

            walls: dict[tuple[str, int], list[float]] = {}
            cpus: dict[tuple[str, int], list[float]] = {}
            server_cpus: dict[tuple[str, int], list[float]] = {}
            for round_no in range(runs):
                for concurrency in CONCURRENCIES:
                    shift = round_no % len(variants)
                    for name in variants[shift:] + variants[:shift]:
                        ids = pool.take(DELETES)
                        before = server.cpu_seconds()
                        sample = c.measure(
                            lambda sw, name=name, ids=ids, conc=concurrency: senders[name](
                                sw, ids, conc
                            )
                        )
                        if sample.value != DELETES:
                            msg = f"{name} at {concurrency}: {sample.value} of {DELETES} deleted"
                            raise RuntimeError(msg)
                        key = (name, concurrency)
                        walls.setdefault(key, []).append(sample.wall)
                        cpus.setdefault(key, []).append(sample.cpu / DELETES)
                        server_cpus.setdefault(key, []).append(
                            (server.cpu_seconds() - before) / DELETES
                        )

            med = {key: c.median(values) for key, values in walls.items()}
            c.note(f"medians of {runs} interleaved runs; ideal = 3000 / concurrency x 20 ms")
            c.note(
                f"{'concurrency':>11} {'sender':<14} {'wall s':>7} {'/ideal':>7} "
                f"{'client CPU/req':>15} {'server CPU/req':>15}   runs (wall s)"
            )
            for concurrency in CONCURRENCIES:
                ideal = DELETES / concurrency * LATENCY_MS / 1000
                for name in variants:
                    key = (name, concurrency)
                    c.note(
                        f"{concurrency:>11} {name:<14} {med[key]:>7.3f} {med[key] / ideal:>7.2f} "
                        f"{c.median(cpus[key]) * 1e6:>12.0f} us "
                        f"{c.median(server_cpus[key]) * 1e6:>12.0f} us   "
                        + ", ".join(f"{w:.2f}" for w in walls[key])
                    )
            for concurrency in CONCURRENCIES:
                ideal = DELETES / concurrency * LATENCY_MS / 1000
                for name in variants:
                    key = (name, concurrency)
                    c.report(
                        NAME,
                        f"{name} @{concurrency} wall / ideal",
                        med[key] / ideal,
                        at_most=IDEAL_TARGET if key == ("library", 32) else None,
                    )
            fastest_raw = min(med[("httpx", 32)], med[("httpx+aiohttp", 32)])
            c.report(
                NAME,
                "library @32 / fastest raw loop @32",
                med[("library", 32)] / fastest_raw,
                at_most=RAW_TARGET,
            )
            c.note(f"@64 vs @32: {NOISE - 1:.0%} allowed for noise")
            c.report(
                NAME,
                "library @64 / library @32",
                med[("library", 64)] / med[("library", 32)],
                at_most=NOISE,
            )


if __name__ == "__main__":
    main()
