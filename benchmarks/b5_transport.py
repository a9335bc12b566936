"""B5, transport: 3,000 deletes with 20 ms per request at concurrency 16, 32 and 64.

Four ways to send the same DELETEs (same path, JSON body and sessionId
header, every id existing, so the server does the same work for each):

- ``default``: ``client.delete_callbacks(ids, concurrency=c)``, default
  settings: the httpx stack (an ``httpx.AsyncClient`` over small pools);
- ``aiohttp``: the same with ``http_backend="aiohttp"`` (the aiohttp extra);
- ``raw httpx``: a raw worker loop over ``httpx.AsyncClient`` (httpcore's
  pool, 100 connections);
- ``raw aiohttp``: the same loop over an ``aiohttp.ClientSession``.

Client CPU per request is ``time.process_time()`` over the run / 3,000; the
server's CPU per request is shown too, to tell a busy server from a busy
client. Targets (issue 24): the default stack at 16 <= 1.25x the ideal
(3,000 / c x 20 ms) and at 32 <= 1.5x; ``aiohttp`` at 64 <= 1.3x.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import quote

import _common as c
import aiohttp
import httpx

from ameyo_callbacks import AmeyoCallbacksClient

NAME = "B5"
DELETES = 3_000
LATENCY_MS = 20.0
CONCURRENCIES = (16, 32, 64)
WARMUP = 300
#: (sender, concurrency) -> wall / ideal at most
TARGETS = {("default", 16): 1.25, ("default", 32): 1.5, ("aiohttp", 64): 1.3}
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


async def aiohttp_deletes(
    session: aiohttp.ClientSession, url: str, session_id: str, ids: Sequence[str], concurrency: int
) -> int:
    """:func:`_common.plain_deletes` over an aiohttp session: the 200s."""
    headers = {"sessionId": session_id}
    source = iter(ids)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for cb_id in source:  # one shared iterator: each id goes to one worker
            async with session.delete(
                url + c.DELETE_PREFIX + quote(cb_id, safe=""),
                json={"customerCallbackId": cb_id},
                headers=headers,
            ) as response:
                await response.read()
                ok += response.status == 200

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def main() -> None:
    runs = c.RUNS
    variants = ("default", "aiohttp", "raw httpx", "raw aiohttp")
    seeded = runs * len(CONCURRENCIES) * len(variants) * DELETES + len(variants) * WARMUP
    title = f"{NAME} transport: {DELETES:,} deletes, {LATENCY_MS:g} ms, concurrency 16/32/64"
    with c.section(title):
        pool = c.IdPool(c.seeded_ids(seeded))
        with c.FakeServer(seeded, latency_ms=LATENCY_MS) as server:
            c.note(server.describe())
            url, sid = server.url, server.session_id

            # Each sender builds its client (and transport) untimed, then times the deletes
            # (opening the connections included).
            async def default(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                async with AmeyoCallbacksClient(url, session_id=sid) as client:
                    with sw:
                        result = await client.delete_callbacks(ids, concurrency=concurrency)
                return len(result.deleted)

            async def aio(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                async with AmeyoCallbacksClient(
                    url, session_id=sid, http_backend="aiohttp"
                ) as client:
                    with sw:
                        result = await client.delete_callbacks(ids, concurrency=concurrency)
                return len(result.deleted)

            async def raw_httpx(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                async with c.plain_httpx_client(limits=LIMITS) as http:
                    with sw:
                        return await c.plain_deletes(http, url, sid, ids, concurrency)

            async def raw_aiohttp(sw: c.Stopwatch, ids: list[str], concurrency: int) -> int:
                connector = aiohttp.TCPConnector(limit=100)
                async with aiohttp.ClientSession(connector=connector) as session:
                    with sw:
                        return await aiohttp_deletes(session, url, sid, ids, concurrency)

            senders = {
                "default": default,
                "aiohttp": aio,
                "raw httpx": raw_httpx,
                "raw aiohttp": raw_aiohttp,
            }
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
            c.note(f"medians of {runs} interleaved runs; ideal = {DELETES} / concurrency x 20 ms")
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
                        at_most=TARGETS.get(key),
                    )
            for concurrency in CONCURRENCIES:
                for name in variants:
                    key = (name, concurrency)
                    c.report(
                        NAME,
                        f"{name} @{concurrency} client CPU per request",
                        c.median(cpus[key]) * 1e6,
                        unit="us",
                    )


if __name__ == "__main__":
    main()
