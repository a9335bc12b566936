"""B6, exact walk of a live list: 20,000 records, 20 ms per request, 50 changes a second.

The fake server (own process, ``--order callbackTime --live-rate 50``)
deletes (the callback due first, or one at random) and adds callbacks as
requests arrive (no reschedules: a rescheduled callback moves, and may come
out once per place). The benchmark checks 0 duplicates and that the
walk completes (a ConsistencyError would crash it); the change log lives in
the server process, so "0 missed" is checked by the in-process integration
tests (tests/test_paging_live_socket.py) instead. Target: the live walk at
most 1.15x the same walk on a still list (same server options otherwise).
"""

from __future__ import annotations

from collections import Counter

import _common as c

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter

NAME = "B6"
RECORDS = 20_000
LATENCY_MS = 20.0
RATE = 50
TARGET = 1.15


def main() -> None:
    title = f"{NAME} live list: walk {RECORDS:,} records, {LATENCY_MS:g} ms, {RATE} changes/s"
    with c.section(title):
        walls: dict[str, list[float]] = {}
        live = ["--live-rate", str(RATE), "--live-mix", "delete_due,delete_random,add"]
        for name, extra in (("still", []), ("live", live)):
            with c.FakeServer(
                RECORDS, latency_ms=LATENCY_MS, extra_args=["--order", "callbackTime", *extra]
            ) as server:
                c.note(server.describe() + (f", {RATE} changes/s" if extra else ", still"))
                url, sid = server.url, server.session_id

                async def ours(sw: c.Stopwatch, url: str = url, sid: str = sid) -> int:
                    ids: list[str] = []
                    async with AmeyoCallbacksClient(url, session_id=sid) as client:
                        with sw:
                            walk = client.iter_callbacks(CallbackFilter.campaign(c.CAMPAIGN))
                            async for record in walk:
                                ids.append(record.customer_callback_id)  # noqa: PERF401
                    repeated = [i for i, n in Counter(ids).items() if n > 1]
                    if repeated:
                        msg = f"{len(repeated)} callbacks came out twice"
                        raise RuntimeError(msg)
                    return len(ids)

                samples = c.interleaved({name: ours})[name]
                c.note(
                    f"{name:<6} wall s: {c.walls(samples)}; records {[s.value for s in samples]}"
                )
                walls[name] = [s.wall for s in samples]
        still_wall, live_wall = c.median(walls["still"]), c.median(walls["live"])
        c.report(NAME, "still list walk wall", still_wall, unit="s")
        c.report(
            NAME, "live walk (50 changes/s) / still walk", live_wall / still_wall, at_most=TARGET
        )


if __name__ == "__main__":
    main()
