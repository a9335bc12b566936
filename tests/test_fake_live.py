"""The fake's live mode and list orders: changes at a rate, reproducible by seed."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from _support import fake_http

from ameyo_callbacks import CallbackFilter, CustomerCallback
from ameyo_callbacks._convert import datetime_to_epoch_ms
from ameyo_callbacks._protocol import CAMPAIGN_LIST_PATH
from ameyo_callbacks.testing import Change, FakeAmeyo, serve

PAGE = 100


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeAmeyo:
    return FakeAmeyo.seeded(400)


async def page(http: httpx.AsyncClient, campaign: int, offset: int = 0) -> list[dict[str, Any]]:
    params = {"limit": PAGE, "campaignId": campaign, "offset": offset}
    response = await http.post(CAMPAIGN_LIST_PATH, params=params)
    assert response.status_code == 200
    records: list[dict[str, Any]] = response.json()
    return records


async def walk(http: httpx.AsyncClient, campaign: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = await page(http, campaign, len(out))
        out.extend(got)
        if len(got) < PAGE:
            return out


def served(records: list[dict[str, Any]]) -> list[str]:
    return [r["customerCallbackId"] for r in records]


def campaign_ids(fake: FakeAmeyo, campaign: int) -> list[str]:
    return [cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == campaign]


# ----------------------------------------------------------------------
# Orders


async def test_callback_time_order_sorts_by_callback_time_then_id() -> None:
    """order="callbackTime" serves by callbackTime, ties by id; the default by dateAdded."""
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    late = datetime(2024, 6, 1, tzinfo=timezone.utc)
    records = [
        CustomerCallback("b", 6, when, True, "asha", "1", 1, late),
        CustomerCallback("a", 6, when, True, "asha", "1", 1, late),
        CustomerCallback("c", 6, late, True, "asha", "1", 1, when),
    ]
    for order, expected in (("callbackTime", ["a", "b", "c"]), ("dateAdded", ["c", "a", "b"])):
        fake = FakeAmeyo(records, order=order)  # type: ignore[arg-type]
        async with fake.client() as client:
            got = await client.get_callbacks(CallbackFilter.campaign(6))
        assert [cb.customer_callback_id for cb in got] == expected
        assert fake.ordered_ids() == expected


async def test_orders_serve_the_same_set_in_their_own_order(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """Switching fake.order re-sorts the answers; a cached filter follows each order."""
    by_added = await walk(http, 7)
    fake.order = "callbackTime"
    by_time = await walk(http, 7)
    assert sorted(served(by_added)) == sorted(served(by_time))
    assert [(r["dateAdded"], r["customerCallbackId"]) for r in by_added] == sorted(
        (r["dateAdded"], r["customerCallbackId"]) for r in by_added
    )
    assert [(r["callbackTime"], r["customerCallbackId"]) for r in by_time] == sorted(
        (r["callbackTime"], r["customerCallbackId"]) for r in by_time
    )
    assert served(by_added) != served(by_time)
    with pytest.raises(ValueError, match="order must be one of"):
        fake.order = "phone"  # type: ignore[assignment]


async def test_unstable_order_shuffles_each_answer_reproducibly() -> None:
    """order="unstable": each answer is the list shuffled anew; the same seed repeats them."""
    answers = []
    for seed in (5, 5, 6):
        fake = FakeAmeyo.seeded(300, order="unstable", seed=seed, max_limit=1000)
        async with fake_http(fake) as http:
            params = {"limit": 1000, "campaignId": 6, "offset": 0}
            got = [served((await http.post(CAMPAIGN_LIST_PATH, params=params)).json())]
            got += [served((await http.post(CAMPAIGN_LIST_PATH, params=params)).json())]
        assert all(sorted(answer) == sorted(campaign_ids(fake, 6)) for answer in got)
        answers.append(got)
    first, again, other = answers
    assert first == again
    assert first != other
    assert first[0] != first[1]


# ----------------------------------------------------------------------
# Changes


def test_change_makes_n_changes_of_the_mix_and_records_them(fake: FakeAmeyo) -> None:
    """delete_due removes the callback due first; every change is recorded in order."""
    fake.live(0, mix={"delete_due": 1})
    due = sorted(fake.callbacks, key=lambda cb: (cb.callback_time, cb.customer_callback_id))
    made = fake.change(3)
    assert [c.callback_id for c in made] == [cb.customer_callback_id for cb in due[:3]]
    assert [(c.seq, c.kind, c.request) for c in made] == [
        (1, "delete_due", None),
        (2, "delete_due", None),
        (3, "delete_due", None),
    ]
    assert all(c.removes for c in made)
    assert fake.changes == made
    assert len(fake) == 397


def test_add_reschedule_and_random_delete_do_what_they_say(fake: FakeAmeyo) -> None:
    """An add is a new callback; a reschedule moves callbackTime; a random delete removes one."""
    before = {cb.customer_callback_id: cb for cb in fake.callbacks}
    fake.live(0, mix={"add": 1}, seed=1)
    (added,) = fake.change()
    new = fake.get(added.callback_id)
    assert added.callback_id not in before
    assert new is not None
    assert added.callback_time == datetime_to_epoch_ms(new.callback_time)
    fake.live(0, mix={"reschedule": 1}, seed=1)
    (moved,) = fake.change()
    now = fake.get(moved.callback_id)
    assert now is not None
    assert moved.previous_callback_time is not None
    assert moved.previous_callback_time != moved.callback_time
    assert datetime_to_epoch_ms(now.callback_time) == moved.callback_time
    assert now.date_added == before[moved.callback_id].date_added
    fake.live(0, mix={"delete_random": 1}, seed=1)
    (gone,) = fake.change()
    assert gone.callback_id in before
    assert gone.callback_id not in fake
    assert not moved.removes
    assert len(fake) == 400


def test_same_seed_gives_the_same_changes() -> None:
    """Two fakes with the same data and seed make the same changes; another seed differs."""

    def run(seed: int) -> list[tuple[str, str, int | None]]:
        fake = FakeAmeyo.seeded(500)
        fake.live(0, seed=seed)
        return [(c.kind, c.callback_id, c.callback_time) for c in fake.change(60)]

    first = run(9)
    assert first == run(9)
    assert first != run(10)
    assert {kind for kind, _, _ in first} == {"delete_due", "delete_random", "add", "reschedule"}


async def test_rate_applies_what_elapsed_time_owes_as_requests_arrive(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """rate=10: 0.55 s later the next request first gets 5 changes; none without requests."""
    clock = ManualClock()
    fake.live(10, clock=clock)
    await page(http, 6)
    assert fake.changes == []
    clock.now += 0.55
    assert fake.changes == []  # nothing happens between requests
    await page(http, 6)
    arrival = fake.requests[-1].seq
    assert [(c.seq, c.request) for c in fake.changes] == [(n, arrival) for n in range(1, 6)]
    clock.now += 0.5
    fake.stop_live()
    await page(http, 6)
    assert len(fake.changes) == 5
    fake.change(2)
    assert len(fake.changes) == 7


async def test_per_request_changes_by_the_count_of_requests(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """per_request=2.4: 2, 2, 3, 2, 3 changes before requests 1 to 5, whatever the clock."""
    clock = ManualClock()
    fake.live(per_request=2.4, clock=clock)
    made = []
    for _ in range(5):
        before = len(fake.changes)
        await page(http, 6)
        arrival = fake.requests[-1].seq
        made.append(len(fake.changes) - before)
        assert {c.request for c in fake.changes[before:]} <= {arrival}
    assert made == [2, 2, 3, 2, 3]
    clock.now += 100.0  # no rate given: time owes nothing
    fake.stop_live()
    await page(http, 6)
    assert len(fake.changes) == 12


async def test_rate_and_per_request_add_up(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """rate=10 and per_request=1: 0.35 s later a request gets 3 changes for the time, 1 for it."""
    clock = ManualClock()
    fake.live(10, per_request=1, clock=clock)
    clock.now += 0.35
    await page(http, 6)
    assert len(fake.changes) == 4


async def test_on_change_sees_each_change_as_it_is_made(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """on_change gets every change, in order, before the request that brought it is served."""
    clock = ManualClock()
    seen: list[tuple[Change, bool]] = []
    fake.live(10, clock=clock, on_change=lambda ch: seen.append((ch, ch.callback_id in fake)))
    clock.now += 0.35  # 3 changes owed
    records = served(await page(http, 6))
    fake.change(1, "add")
    assert [ch for ch, _ in seen] == fake.changes
    assert len(seen) == 4
    assert [present for ch, present in seen] == [not ch.removes for ch, _ in seen]
    gone = {ch.callback_id for ch, _ in seen[:3] if ch.removes}
    assert not gone & set(records), "the page was served after the changes it brought"


async def test_where_keeps_changes_to_the_filtered_callbacks(
    fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """where=campaign 7: campaigns 6 and 8 never change; adds land in campaign 7."""
    others = (campaign_ids(fake, 6), campaign_ids(fake, 8))
    seven = set(campaign_ids(fake, 7))
    fake.live(0, where=CallbackFilter.campaign(7), seed=2)
    made = fake.change(80)
    assert (campaign_ids(fake, 6), campaign_ids(fake, 8)) == others
    removed = {change.callback_id for change in made if change.removes}
    for change in made:
        if change.kind == "add":
            record = fake.get(change.callback_id)
            assert record is not None or change.callback_id in removed  # deleted again later
            assert record is None or record.campaign_id == 7
        else:
            assert change.callback_id in seven or change.callback_id.startswith("live-")
    assert served(await walk(http, 7)) == campaign_ids(fake, 7)


@pytest.mark.parametrize("order", ["dateAdded", "callbackTime"])
async def test_pages_after_many_changes_match_a_fresh_fake(
    order: str, fake: FakeAmeyo, http: httpx.AsyncClient
) -> None:
    """Cached orders follow adds, deletes and reschedules: a walk equals a fresh fake's."""
    fake.order = order  # type: ignore[assignment]
    await walk(http, 6)  # build and cache the filtered order first
    fake.live(0, seed=4)
    fake.change(150)
    fresh = FakeAmeyo(fake.callbacks, order=order)  # type: ignore[arg-type]
    async with fake_http(fresh) as other:
        expected = await walk(other, 6)
    assert await walk(http, 6) == expected
    assert served(expected) == campaign_ids(fresh, 6)


def test_an_emptied_list_only_grows() -> None:
    """With nothing left to delete or reschedule, a change adds a callback instead."""
    fake = FakeAmeyo()
    fake.live(0, mix={"delete_due": 1})
    first, second = fake.change(2)
    assert (first.kind, second.kind) == ("add", "delete_due")
    assert first.callback_id == second.callback_id
    assert len(fake) == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rate": -1}, ValueError),
        ({"rate": "5"}, TypeError),
        ({"per_request": -0.5}, ValueError),
        ({"per_request": "2"}, TypeError),
        ({"mix": {"explode": 1}}, ValueError),
        ({"mix": {"add": -1}}, ValueError),
        ({"mix": {"add": 0}}, ValueError),
        ({"mix": ["add"]}, TypeError),
        ({"where": {"campaign_id": 6}}, TypeError),
        ({"add_at": "middle"}, ValueError),
        ({"on_change": "print"}, TypeError),
    ],
)
def test_live_arguments_are_checked(
    fake: FakeAmeyo, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """A wrong type is a TypeError, a wrong value a ValueError, and nothing changes."""
    with pytest.raises(error):
        fake.live(**kwargs)
    with pytest.raises(ValueError, match="n must be"):
        fake.change(-1)
    assert fake.changes == []


def test_change_is_a_public_frozen_record() -> None:
    """Change shows the public module and cannot be altered."""
    change = Change(1, "add", "x", 0.0)
    assert Change.__module__ == "ameyo_callbacks.testing"
    with pytest.raises(AttributeError):
        change.kind = "delete_due"  # type: ignore[misc]


# ----------------------------------------------------------------------
# On a socket


@pytest.mark.integration
def test_live_mode_changes_at_real_time_rate_under_uvicorn() -> None:
    """Under uvicorn, requests see floor(elapsed * rate) changes, made as they arrive."""
    fake = FakeAmeyo.seeded(3000)
    rate = 50.0
    with (
        serve(fake) as url,
        httpx.Client(base_url=url, headers={"sessionId": fake.session_id}) as h,
    ):
        started = time.monotonic()
        fake.live(rate)
        for offset in range(0, 1000, PAGE):
            params = {"limit": PAGE, "campaignId": 6, "offset": offset}
            assert h.post(CAMPAIGN_LIST_PATH, params=params, timeout=10).status_code == 200
            time.sleep(0.02)
        before_last = time.monotonic()
        h.post(CAMPAIGN_LIST_PATH, params={"limit": 1, "campaignId": 6, "offset": 0}, timeout=10)
        after_last = time.monotonic()
    changes = fake.changes
    assert int((before_last - started) * rate) - 1 <= len(changes)
    assert len(changes) <= int((after_last - started) * rate)
    seqs = {e.seq for e in fake.requests}
    assert {c.request for c in changes} <= seqs


def test_change_of_one_kind_overrides_the_mix(fake: FakeAmeyo) -> None:
    """change(n, kind=...) makes that kind only; an unknown kind is refused."""
    fake.live(0, mix={"delete_due": 1})
    made = fake.change(3, kind="add")
    assert [c.kind for c in made] == ["add", "add", "add"]
    assert len(fake) == 403
    assert fake.change()[0].kind == "delete_due"
    with pytest.raises(ValueError, match="unknown change kind"):
        fake.change(1, kind="fly")  # type: ignore[arg-type]


async def test_each_order_computes_a_filter_once(fake: FakeAmeyo, http: httpx.AsyncClient) -> None:
    """Pages in either order, and live changes between them, reuse the cached filter."""
    store = fake._store
    builds = store.filter_builds
    fake.order = "callbackTime"
    fake.live(0, seed=3)
    for offset in (0, PAGE):
        await page(http, 8, offset)
        fake.change(5)
    fake.order = "dateAdded"
    await page(http, 8)
    await page(http, 8, PAGE)
    assert store.filter_builds == builds + 2
