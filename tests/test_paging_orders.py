"""The orders SQL really produces, in the fake and through the client (in-process, no socket).

The fake lists by dateAdded (``"dateAdded"``), by dateAdded with ties in a
new order on each answer (``"ties"``), by callbackTime, or in no order
(``"unstable"``); its ``toDateAdded`` is inclusive or not; ``bulk`` seeds
runs of callbacks added in one millisecond. ``iter_callbacks`` is exact on
every combination, says once when it leaves the ordered walk, and the walk's
own deletes leave it exact.
"""

from __future__ import annotations

import logging

import pytest
from _support import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from ameyo_callbacks import CallbackFilter, RetryPolicy
from ameyo_callbacks._convert import datetime_to_epoch_ms
from ameyo_callbacks.testing import FakeAmeyo

WHERE = CallbackFilter.campaign(6)


def bulk_fake(n: int, order: str, *, seed: int = 0, bulk: int = 40, **options: object) -> FakeAmeyo:
    return FakeAmeyo.seeded(n, campaigns=(6,), seed=seed, bulk=bulk, order=order, **options)


def test_bulk_seeding_shares_milliseconds() -> None:
    """bulk=40: runs of up to 40 callbacks share a dateAdded; bulk=1: the usual spread."""
    tied = bulk_fake(1000, "dateAdded")
    spread = bulk_fake(1000, "dateAdded", bulk=1)
    tied_dates = [cb.date_added for cb in tied.callbacks]
    assert len(set(tied_dates)) < 1000 / 5
    assert max(tied_dates.count(d) for d in set(tied_dates)) <= 40
    assert len({cb.date_added for cb in spread.callbacks}) > 990


def test_bulk_below_one_is_refused() -> None:
    """bulk=0 would add nothing per millisecond: ValueError naming it."""
    with pytest.raises(ValueError, match="bulk must be >= 1"):
        FakeAmeyo.seeded(10, bulk=0)


async def test_the_ties_order_lists_each_millisecond_anew_per_answer() -> None:
    """Order "ties": every answer is sorted by dateAdded, and ties change places between answers."""
    fake = bulk_fake(300, "ties", seed=3)
    async with fake.client(retry=RetryPolicy.none()) as client:
        answers = [await client.get_callbacks(WHERE, limit=100, offset=50) for _ in range(4)]
    for answer in answers:
        dates = [cb.date_added for cb in answer]
        assert dates == sorted(dates)
    assert len({tuple(cb.customer_callback_id for cb in a) for a in answers}) > 1
    assert len({tuple(cb.date_added for cb in a) for a in answers}) == 1  # same dates, places


@pytest.mark.parametrize("inclusive", [True, False])
async def test_to_date_added_is_inclusive_or_not_as_set(inclusive: bool) -> None:
    """to_date_added_inclusive=False leaves out the callbacks added at toDateAdded itself."""
    fake = bulk_fake(200, "dateAdded", to_date_added_inclusive=inclusive)
    edge = fake.callbacks[100].date_added
    at_edge = sum(1 for cb in fake.callbacks if cb.date_added == edge)
    before = sum(1 for cb in fake.callbacks if cb.date_added < edge)
    async with fake.client(retry=RetryPolicy.none()) as client:
        got = await client.get_callbacks(
            CallbackFilter.campaign(6, to_date_added=datetime_to_epoch_ms(edge)), limit=100
        )
    assert len(got) == min(100, before + (at_edge if inclusive else 0))


@settings(max_examples=examples(40), deadline=None)
@given(
    order=st.sampled_from(["dateAdded", "ties", "callbackTime", "unstable"]),
    inclusive=st.booleans(),
    page_size=st.sampled_from([7, 50, 100]),
    prefetch=st.integers(1, 5),
    bulk=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_every_order_and_edge_is_walked_exactly(
    order: str, inclusive: bool, page_size: int, prefetch: int, bulk: int, seed: int
) -> None:
    """Any of the fake's orders, either toDateAdded: every callback once, in both forms."""
    import anyio  # noqa: PLC0415

    fake = bulk_fake(300, order, seed=seed, bulk=bulk, to_date_added_inclusive=inclusive)
    want = sorted(cb.customer_callback_id for cb in fake.callbacks)

    async def main() -> tuple[list[str], list[str]]:
        async with fake.client(retry=RetryPolicy.none()) as client:
            plain = [
                cb.customer_callback_id
                async for cb in client.iter_callbacks(WHERE, page_size=page_size, prefetch=prefetch)
            ]
            async with client.iter_callbacks(WHERE, page_size=page_size, prefetch=prefetch) as walk:
                paged = [
                    cb.customer_callback_id async for page in walk.pages() for cb in page.items
                ]
        return plain, paged

    plain, paged = anyio.run(main)
    assert sorted(plain) == want
    assert sorted(paged) == want


@pytest.mark.parametrize("order", ["callbackTime", "unstable"])
async def test_leaving_the_ordered_walk_is_logged_once(
    order: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A list not sorted by dateAdded: one warning on the library's logger saying so and why."""
    fake = bulk_fake(1000, order, seed=1, bulk=5)
    with caplog.at_level(logging.WARNING, logger="ameyo_callbacks"):
        async with fake.client(retry=RetryPolicy.none()) as client:
            got = [cb async for cb in client.iter_callbacks(WHERE, prefetch=4)]
    assert len({cb.customer_callback_id for cb in got}) == len(got) == 1000
    notes = [r.getMessage() for r in caplog.records if r.name == "ameyo_callbacks"]
    assert len(notes) == 1
    assert "not sorted by" in notes[0]
    assert "dateAdded windows" in notes[0]


@pytest.mark.parametrize("form", ["plain", "async with", "pages"])
@pytest.mark.parametrize("order", ["ties", "unstable"])
async def test_deleting_each_callback_as_it_comes_leaves_none(form: str, order: str) -> None:
    """Process, then delete through the same client: none left, none yielded twice."""
    fake = bulk_fake(600, order, seed=2, bulk=8)
    got: list[str] = []
    async with fake.client(retry=RetryPolicy.none()) as client:
        walk = client.iter_callbacks(WHERE, page_size=50, prefetch=4)
        if form == "plain":
            async for cb in walk:
                got.append(cb.customer_callback_id)
                await client.delete_callback(cb.customer_callback_id)
        elif form == "async with":
            async with walk:
                async for cb in walk:
                    got.append(cb.customer_callback_id)
                    await client.delete_callback(cb.customer_callback_id)
        else:
            async for page in walk.pages():
                ids = [cb.customer_callback_id for cb in page.items]
                got.extend(ids)
                await client.delete_callbacks(ids)
    assert len(got) == len(set(got)) == 600
    assert len(fake) == 0
