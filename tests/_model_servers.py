"""Model list servers for the planner's tests: a list in memory, answered in a chosen order.

No I/O: :func:`walk` drives a :class:`~ameyo_callbacks._planner.WalkPlanner`
synchronously against a :class:`ModelServer`, whose list may change between
any two requests (the test decides how), and returns what the walk yielded.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Literal

import attrs

from ameyo_callbacks._convert import datetime_to_epoch_ms
from ameyo_callbacks._models import CustomerCallback, Page
from ameyo_callbacks._planner import PageRequest, WalkPlanner

Order = Literal["dateAdded", "ties", "shuffled", "callbackTime", "swapped"]
ORDERS: tuple[Order, ...] = ("dateAdded", "ties", "shuffled", "callbackTime", "swapped")
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
EPOCH_MS = 1704067200000

#: The library's own conversion, remembered per datetime: :meth:`ModelServer.listed` reads
#: every record's dateAdded for every answer (some 2.7 million calls in test_planner, the
#: larger part of its time, and measured line by line under coverage).
_epoch_ms = functools.cache(datetime_to_epoch_ms)


def callback(n: int, added_ms: int, scheduled_min: int = 0) -> CustomerCallback:
    """A callback numbered ``n``, added ``added_ms`` ms after 2024-01-01."""
    return CustomerCallback(
        customer_callback_id=f"cb{n:06d}",
        campaign_id=6,
        callback_time=EPOCH + timedelta(minutes=scheduled_min),
        self_callback=False,
        user_id=None,
        phone=f"98{n:08d}",
        customer_id=n,
        date_added=EPOCH + timedelta(milliseconds=added_ms),
    )


@attrs.define
class ModelServer:
    """A list and the order it is served in; ``to_inclusive`` says how toDateAdded reads.

    Orders: ``dateAdded`` (ties by id), ``ties`` (by dateAdded, ties in a new
    order on every answer), ``shuffled`` (no order: a new one per answer),
    ``callbackTime`` (then id), ``swapped`` (by dateAdded and id, with
    ``swaps`` fixed neighbouring pairs exchanged).
    """

    records: dict[str, CustomerCallback]
    order: Order = "dateAdded"
    to_inclusive: bool = True
    seed: int = 0
    swaps: int = 1
    requests: int = 0
    before_answer: Callable[[ModelServer], None] | None = None
    _rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def listed(self, request: PageRequest) -> list[CustomerCallback]:
        """The whole list a request selects, in this answer's order."""
        lo, hi = request.from_date, request.to_date
        kept = []
        for r in self.records.values():
            ms = _epoch_ms(r.date_added)
            if lo is not None and ms < lo:
                continue
            if hi is not None and (ms > hi if self.to_inclusive else ms >= hi):
                continue
            kept.append(r)
        rng = self._rng
        if self.order == "callbackTime":
            kept.sort(key=lambda r: (r.callback_time, r.customer_callback_id))
        elif self.order == "shuffled":
            rng.shuffle(kept)
        else:
            kept.sort(key=lambda r: r.customer_callback_id)
            if self.order == "ties":
                rng.shuffle(kept)
            kept.sort(key=lambda r: r.date_added)
            if self.order == "swapped":
                pick = random.Random(self.seed)
                for _ in range(min(self.swaps, len(kept) // 2)):
                    i = pick.randrange(len(kept) - 1)
                    kept[i], kept[i + 1] = kept[i + 1], kept[i]
        return kept

    def answer(self, request: PageRequest) -> list[CustomerCallback]:
        """The page ``request`` asks for, after the list changed as ``before_answer`` says."""
        self.requests += 1
        if self.before_answer is not None:
            self.before_answer(self)
        return self.listed(request)[request.offset : request.offset + request.limit]


def walk(
    planner: WalkPlanner,
    server: ModelServer,
    *,
    prefetch: int = 4,
    on_page: Callable[[list[CustomerCallback]], None] | None = None,
    max_requests: int = 100_000,
    pages: list[Page] | None = None,
) -> list[CustomerCallback]:
    """Run ``planner`` against ``server`` with ``prefetch`` requests out: what it yielded.

    ``pages``: where to keep the pages too (for their checkpoints).

    Each request is answered when sent (a prefetched answer may be old by the
    time it is read), and answers are read in the order they were planned.
    """
    out: list[CustomerCallback] = []
    flights: list[tuple[PageRequest, list[CustomerCallback]]] = []
    while True:
        while len(flights) < prefetch and (request := planner.next_request()) is not None:
            flights.append((request, server.answer(request)))
            assert server.requests <= max_requests, "the walk does not end"
        while planner.pages:
            page = planner.pages.popleft()
            if pages is not None:
                pages.append(page)
            items = list(page.items)
            out.extend(items)
            if on_page is not None:
                on_page(items)
        if not flights:
            if planner.pages:
                continue
            return out
        request, answer = flights.pop(0)
        if planner.stale(request):
            planner.drop(request)
            continue
        planner.take(request, answer)
