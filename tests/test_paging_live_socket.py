"""Exact walks of a live list on a real socket: the fake under uvicorn, changing as requests arrive.

Each walk reads 3,000 callbacks while the fake deletes (the callback due
first, or one at random), adds and reschedules callbacks as requests
arrive: 8 changes a request, so a walk meets about as many changes (some
240) as one of 10,000 did at 50 changes a second when each answer took
44 ms, however fast the machine answers. Afterwards the fake's change log
says which callbacks were present from the walk's first request to its
last: each of them must have come out
exactly once (rescheduled ones too, whatever the order), and no callback
more than once.
"""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter
from ameyo_callbacks.testing import FakeAmeyo, serve

pytestmark = pytest.mark.integration

RECORDS = 3_000
PER_REQUEST = 8.0
WHERE = CallbackFilter.campaign(6)


def live_fake(order: str, seed: int) -> FakeAmeyo:
    fake = FakeAmeyo.seeded(RECORDS, campaigns=(6,), seed=seed, order=order)
    assert len(fake.callbacks) == RECORDS
    return fake


def check_contract(fake: FakeAmeyo, before: set[str], got: list[str]) -> None:
    """0 missed, 0 duplicates: present throughout (rescheduled too) -> once; others at most once."""
    changes = fake.changes
    assert changes, "the list did not change during the walk"
    gone = {c.callback_id for c in changes if c.removes}
    counts = Counter(got)
    duplicates = {i: n for i, n in counts.items() if n > 1}
    missed = (before - gone) - counts.keys()
    assert not duplicates, f"{len(duplicates)} duplicates"
    assert not missed, f"{len(missed)} missed, e.g. {sorted(missed)[:3]}"


async def walk(url: str, fake: FakeAmeyo, prefetch: int, pages: bool) -> list[str]:
    got: list[str] = []
    async with AmeyoCallbacksClient(url, session_id=fake.session_id) as client:
        it = client.iter_callbacks(WHERE, prefetch=prefetch)
        if pages:
            async for page in it.pages():
                got.extend(cb.customer_callback_id for cb in page.items)
        else:
            got.extend([cb.customer_callback_id async for cb in it])
    return got


@pytest.mark.parametrize("order", ["dateAdded", "callbackTime"])
@pytest.mark.parametrize("prefetch", [1, 4, 16])
@pytest.mark.parametrize("pages", [False, True], ids=["records", "pages"])
def test_live_walk_misses_nothing_and_repeats_nothing(
    order: str, prefetch: int, pages: bool
) -> None:
    """3,000 callbacks, 8 changes a request: every callback present throughout comes out once."""
    fake = live_fake(order, seed=prefetch)
    before = {cb.customer_callback_id for cb in fake.callbacks}
    with serve(fake) as url:
        fake.live(per_request=PER_REQUEST, seed=prefetch)
        got = anyio.run(walk, url, fake, prefetch, pages)
        fake.stop_live()
    check_contract(fake, before, got)


@pytest.mark.parametrize("order", ["dateAdded", "callbackTime"])
def test_live_walk_resumed_from_a_checkpoint_misses_nothing(order: str) -> None:
    """Stop mid-walk, let the list change, resume from Page.checkpoint: once over both runs."""
    fake = live_fake(order, seed=11)
    before = {cb.customer_callback_id for cb in fake.callbacks}

    async def main(url: str) -> list[str]:
        got: list[str] = []
        async with AmeyoCallbacksClient(url, session_id=fake.session_id) as client:
            checkpoint = ""
            async for page in client.iter_callbacks(WHERE, prefetch=4).pages():
                got.extend(cb.customer_callback_id for cb in page.items)
                checkpoint = page.checkpoint
                if len(got) >= RECORDS // 2:
                    break
            fake.change(40)  # the gap between the runs
            rest = client.iter_callbacks(WHERE, prefetch=4, resume_from=checkpoint)
            got.extend([cb.customer_callback_id async for cb in rest])
        return got

    with serve(fake) as url:
        fake.live(per_request=PER_REQUEST, seed=5)
        got = anyio.run(main, url)
        fake.stop_live()
    check_contract(fake, before, got)
