"""Exact walks on a real socket (the fake under uvicorn on 127.0.0.1), on the orders SQL gives.

Ties in dateAdded listed in a new order per answer, with the list still and
while it changes 50 times a second; the caller deleting each callback as it
comes, in both iteration forms; callbacks rescheduled behind a walk under a
callbackTime order. Every callback present throughout comes out once.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import anyio
import attrs
import pytest

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter
from ameyo_callbacks.testing import FakeAmeyo, serve

pytestmark = pytest.mark.integration

WHERE = CallbackFilter.campaign(6)


def tied(n: int, order: str = "ties", seed: int = 0) -> FakeAmeyo:
    """``n`` callbacks in bulk uploads of up to 40 per millisecond."""
    return FakeAmeyo.seeded(n, campaigns=(6,), seed=seed, bulk=40, order=order)


def lists(fake: FakeAmeyo) -> int:
    return sum(1 for r in fake.requests if r.endpoint == "list")


@pytest.mark.parametrize("prefetch", [1, 4])
def test_ties_in_any_order_come_out_exactly_once(prefetch: int) -> None:
    """3,000 callbacks, ties reshuffled per answer: each once, within 3x a still walk's requests."""
    fake = tied(3000)
    want = sorted(cb.customer_callback_id for cb in fake.callbacks)

    async def main(url: str) -> list[str]:
        async with AmeyoCallbacksClient(url, session_id=fake.session_id) as client:
            walk = client.iter_callbacks(WHERE, prefetch=prefetch)
            return [cb.customer_callback_id async for cb in walk]

    with serve(fake) as url:
        got = anyio.run(main, url)
    assert sorted(got) == want
    assert len(got) == 3000
    assert lists(fake) <= 3 * math.ceil(3000 / 98) + 8


def test_ties_while_the_list_changes_miss_nothing() -> None:
    """Ties reshuffled and 50 changes a second: present throughout -> once; others at most once."""
    fake = tied(3000, seed=4)
    before = {cb.customer_callback_id for cb in fake.callbacks}

    async def main(url: str) -> list[str]:
        async with AmeyoCallbacksClient(url, session_id=fake.session_id) as client:
            got: list[str] = []
            async for cb in client.iter_callbacks(WHERE, page_size=50, prefetch=4):
                got.append(cb.customer_callback_id)
                if len(got) % 100 == 0:
                    await anyio.sleep(0.005)  # a consumer that takes its time: changes land
            return got

    with serve(fake) as url:
        fake.live(50.0, seed=4)
        got = anyio.run(main, url)
        fake.stop_live()
    assert fake.changes, "the list did not change during the walk"
    gone = {c.callback_id for c in fake.changes if c.removes}
    counts = Counter(got)
    assert not [i for i, n in counts.items() if n > 1]
    missed = (before - gone) - counts.keys()
    assert not missed, f"{len(missed)} missed"


@pytest.mark.parametrize("form", ["plain", "async with"])
def test_deleting_as_you_walk_leaves_none(form: str) -> None:
    """1,500 callbacks deleted one by one as they come (process, then delete): none left."""
    fake = tied(1500, seed=5)

    async def main(url: str) -> list[str]:
        got: list[str] = []
        async with AmeyoCallbacksClient(url, session_id=fake.session_id) as client:
            walk = client.iter_callbacks(WHERE, prefetch=4)
            if form == "plain":
                async for cb in walk:
                    got.append(cb.customer_callback_id)
                    await client.delete_callback(cb.customer_callback_id)
            else:
                async with walk:
                    async for cb in walk:
                        got.append(cb.customer_callback_id)
                        await client.delete_callback(cb.customer_callback_id)
        return got

    with serve(fake) as url:
        got = anyio.run(main, url)
    assert len(got) == len(set(got)) == 1500
    assert len(fake) == 0
    assert lists(fake) <= 3 * math.ceil(1500 / 98) + 8


def test_reschedules_behind_a_callback_time_walk_miss_nothing() -> None:
    """Under a callbackTime order, 11 callbacks moved before the walk's place: all come out once."""
    fake = FakeAmeyo.seeded(3000, campaigns=(6,), seed=6, order="callbackTime")
    want = sorted(cb.customer_callback_id for cb in fake.callbacks)
    first_due = fake.callbacks[0].callback_time

    def move_behind(got: set[str]) -> None:
        ahead = [cb for cb in fake.callbacks if cb.customer_callback_id not in got]
        for n, cb in enumerate(ahead[-11:]):
            fake.add(
                attrs.evolve(cb, callback_time=first_due - timedelta(minutes=n + 1)), replace=True
            )

    async def main(url: str) -> list[str]:
        got: list[str] = []
        async with AmeyoCallbacksClient(url, session_id=fake.session_id) as client:
            async for cb in client.iter_callbacks(WHERE, prefetch=4):
                got.append(cb.customer_callback_id)
                if len(got) == 1500:
                    move_behind(set(got))
        return got

    with serve(fake) as url:
        got = anyio.run(main, url)
    assert sorted(got) == want
