"""B11, exact walks on the orders SQL gives: ties in any order, and no order at all.

3,000 callbacks seeded in bulk uploads (runs of up to 40 sharing a
millisecond) behind the fake server (own process). The same walk (pages of
100, prefetch 4) runs over: the list by dateAdded with ties reshuffled on
every answer (``--order ties``), and the list reshuffled whole on every
answer (``--order unstable``, with ``toDateAdded`` inclusive and not). The
baseline is the same walk over a still list by dateAdded without ties
(``--bulk 1``). Targets: every callback exactly once, and list requests at
most 2x (ties) and 3x (reshuffled) the baseline's. Requests are counted on
the client (an httpx event hook), so the figures do not depend on timing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

import _common as c
import httpx

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter

NAME = "B11"
RECORDS = 300 if c.QUICK else 3000
PREFETCH = 4
CASES: tuple[tuple[str, list[str], float | None], ...] = (
    ("still, no ties", ["--order", "dateAdded", "--bulk", "1"], None),
    ("ties reshuffled", ["--order", "ties", "--bulk", "40"], 2.0),
    ("reshuffled", ["--order", "unstable", "--bulk", "40"], 3.0),
    (
        "reshuffled, toDateAdded exclusive",
        ["--order", "unstable", "--bulk", "40", "--to-date-exclusive"],
        3.0,
    ),
)


def walk_once(records: int, args: Sequence[str]) -> tuple[list[str], int]:
    """One walk against a fresh server: the ids yielded and the list requests sent."""
    got: list[str] = []
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    with c.FakeServer(records, extra_args=list(args)) as server:

        async def walk(sw: c.Stopwatch) -> int:
            http = httpx.AsyncClient(event_hooks={"request": [count]})
            client = AmeyoCallbacksClient(
                server.url, session_id=server.session_id, http_client=http
            )
            async with http, client:
                with sw:
                    it = client.iter_callbacks(
                        CallbackFilter.campaign(c.CAMPAIGN), prefetch=PREFETCH
                    )
                    got.extend([cb.customer_callback_id async for cb in it])
            return len(got)

        c.measure(walk)
    return got, sum(1 for path in sent if path == c.LIST_PATH)


def main() -> None:
    records = int(os.environ.get("BENCH_B11_RECORDS", RECORDS))
    with c.section(f"{NAME} server orders: walk {records:,} callbacks, prefetch {PREFETCH}"):
        baseline = 0
        for label, args, target in CASES:
            got, requests = walk_once(records, args)
            twice = sum(1 for n in Counter(got).values() if n > 1)
            c.note(f"{label}: {len(got)} callbacks, {requests} list requests")
            c.report(NAME, f"{label}: missed", records - len(set(got)), unit="", at_most=0)
            c.report(NAME, f"{label}: yielded twice", twice, unit="", at_most=0)
            if target is None:
                baseline = requests
                c.report(NAME, f"{label}: list requests", requests, unit="")
            else:
                c.report(
                    NAME, f"{label}: requests / still walk's", requests / baseline, at_most=target
                )


if __name__ == "__main__":
    main()
