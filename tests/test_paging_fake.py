"""Auto-pagination end to end: client.iter_*_callbacks against the fake server, in-process.

The fake runs through ``httpx.ASGITransport`` (no socket). Assertions look at
what the iterator yields and at the fake's request log: which offsets and
limits were asked, how many requests overlapped, and that none is left
unfinished when a walk stops early.
"""

from __future__ import annotations

import itertools
import random

import anyio
import pytest
from _support import drain_into, ids, numbered

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    CallbackFilter,
    ConsistencyError,
    CustomerCallback,
    Page,
    RetryPolicy,
)
from ameyo_callbacks.exceptions import ServerError
from ameyo_callbacks.testing import FakeAmeyo, Fault

CAMPAIGN = 6


def make_record(
    i: int, campaign: int = CAMPAIGN, *, added: float | None = None
) -> CustomerCallback:
    """Callback ``i``, added ``i`` s (or ``added`` s) after T0: the fake serves them by ``i``."""
    when = i if added is None else added
    return numbered(i, f"cb-{campaign}", campaign=campaign, user="stieve", seconds=when)


def fake_with(n: int, **options: object) -> FakeAmeyo:
    """A fake holding callbacks 0..n-1 of CAMPAIGN and a few of another campaign."""
    others = [make_record(i, campaign=7) for i in range(5)]
    return FakeAmeyo([*(make_record(i) for i in range(n)), *others], **options)  # type: ignore[arg-type]


def client_of(fake: FakeAmeyo) -> AmeyoCallbacksClient:
    return fake.client(retry=RetryPolicy.none())


def list_calls(fake: FakeAmeyo) -> list[tuple[int, int]]:
    """(offset, limit) of every list request, in arrival order."""
    entries = sorted(
        (e for e in fake.requests if e.endpoint in ("list", "tenant")), key=lambda e: e.seq
    )
    return [(int(e.params("offset")[0]), int(e.params("limit")[0])) for e in entries]


def expected(fake: FakeAmeyo, campaign: int = CAMPAIGN) -> list[CustomerCallback]:
    return [cb for cb in fake.callbacks if cb.campaign_id == campaign]


async def quiet(fake: FakeAmeyo) -> None:
    """Wait (10 s at most) until nothing is in flight and 50 turns of the loop bring no request.

    In-process, requests left running end in a number of turns, not of
    seconds: a fixed sleep could end first on a loaded machine.
    """
    with anyio.fail_after(10):
        while True:
            made = len(fake.requests)
            for _ in range(50):
                await anyio.sleep(0)
            if not fake.in_flight and len(fake.requests) == made:
                return


def assert_nothing_unfinished(fake: FakeAmeyo) -> None:
    """No request is being served and every logged request got a full answer."""
    assert fake.in_flight == 0
    assert all(entry.status == 200 for entry in fake.requests)


# -- where a walk ends -------------------------------------------------------


async def test_walk_yields_every_campaign_callback_in_serving_order() -> None:
    """A seeded fake: the walk yields exactly the campaign's callbacks, in the fake's order."""
    fake = FakeAmeyo.seeded(1000, seed=3)
    async with client_of(fake) as client:
        got = [
            cb async for cb in client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), prefetch=4)
        ]
    assert got == expected(fake)
    assert 0 < len(got) < 1000
    assert_nothing_unfinished(fake)


async def test_tenant_walk_yields_every_callback() -> None:
    """iter_callbacks of a tenant filter walks the tenant list (all campaigns) on its own path."""
    fake = FakeAmeyo.seeded(345, seed=1)
    async with client_of(fake) as client:
        got = [
            cb
            async for cb in client.iter_callbacks(CallbackFilter.tenant(), page_size=40, prefetch=3)
        ]
    assert got == fake.callbacks
    assert {e.endpoint for e in fake.requests} == {"tenant"}


@pytest.mark.parametrize("prefetch", [1, 4])
async def test_exact_multiple_of_page_size_ends_at_empty_page_after(prefetch: int) -> None:
    """200 callbacks in pages of 100: the walk asks offset 200, gets [] and stops."""
    fake = fake_with(200)
    async with client_of(fake) as client:
        got = [
            cb
            async for cb in client.iter_callbacks(
                CallbackFilter.campaign(CAMPAIGN), prefetch=prefetch
            )
        ]
    assert ids(got) == ids(expected(fake))
    assert len(got) == 200
    calls = list_calls(fake)
    assert any(offset + limit > 200 for offset, limit in calls)
    if prefetch == 1:  # each page re-reads the last two records of the one before
        assert calls == [(0, 100), (98, 100), (196, 100)]


async def test_short_page_ends_iteration() -> None:
    """250 callbacks: the short page at offset 200 is the last request."""
    fake = fake_with(250)
    async with client_of(fake) as client:
        got = [
            cb async for cb in client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), prefetch=1)
        ]
    assert len(got) == 250
    assert list_calls(fake) == [(0, 100), (98, 100), (196, 100)]


async def test_empty_campaign_yields_nothing() -> None:
    """A campaign without callbacks yields no record and no page."""
    fake = fake_with(50)
    async with client_of(fake) as client:
        records = [
            cb async for cb in client.iter_callbacks(CallbackFilter.campaign(99), prefetch=2)
        ]
        pages = [
            p async for p in client.iter_callbacks(CallbackFilter.campaign(99), prefetch=2).pages()
        ]
    assert records == []
    assert pages == []
    assert {offset for offset, _ in list_calls(fake)} <= {0, 98}


# -- max_items and resume ------------------------------------------------------


async def test_max_items_caps_total_with_fewer_requests() -> None:
    """max_items=150, prefetch 4: 150 records from two requests asking 100 and 50."""
    fake = fake_with(1000)
    async with client_of(fake) as client:
        got = [
            cb
            async for cb in client.iter_callbacks(
                CallbackFilter.campaign(CAMPAIGN), max_items=150, prefetch=4
            )
        ]
    assert ids(got) == ids(expected(fake)[:150])
    assert list_calls(fake) == [(0, 100), (98, 52)]  # 50 new and two re-read


@pytest.mark.parametrize("prefetch", [1, 3])
async def test_resume_from_page_checkpoint_yields_exactly_the_rest(prefetch: int) -> None:
    """A checkpoint (next_offset) taken mid-walk resumes a new walk with exactly the rest."""
    fake = fake_with(430)
    first: list[CustomerCallback] = []
    checkpoint = None
    async with client_of(fake) as client:
        walk = client.iter_callbacks(
            CallbackFilter.campaign(CAMPAIGN), page_size=60, prefetch=prefetch
        )
        async for page in walk.pages():
            first.extend(page.items)
            checkpoint = page.next_offset
            if len(first) >= 180:
                break
        assert checkpoint == len(first)
        await quiet(fake)  # the requests left running by the break finish
        fake.clear_requests()
        rest = [
            cb
            async for cb in client.iter_callbacks(
                CallbackFilter.campaign(CAMPAIGN),
                page_size=60,
                start_offset=checkpoint,
                prefetch=prefetch,
            )
        ]
    assert ids(first + rest) == ids(expected(fake))
    assert list_calls(fake)[0] == (checkpoint, 60)


# -- a server that serves smaller pages than asked --------------------------------


@pytest.mark.parametrize("prefetch", [2, 4])
async def test_server_clamped_page_size_walk_continues_at_served_size(prefetch: int) -> None:
    """A fake serving at most 30 while 100 are asked: every callback comes out exactly once."""
    fake = fake_with(250, max_limit=30)
    async with client_of(fake) as client:
        got = [
            cb
            async for cb in client.iter_callbacks(
                CallbackFilter.campaign(CAMPAIGN), prefetch=prefetch
            )
        ]
    assert ids(got) == ids(expected(fake))
    assert len(set(ids(got))) == 250
    # at most the requests out when the first answer came, and one more, asked for 100
    assert {limit for _, limit in list_calls(fake)[prefetch + 1 :]} == {30}


async def test_server_clamped_page_size_with_prefetch_one_ends_at_first_short_page() -> None:
    """prefetch=1 takes the clamped first page for the last one: 30 records, one request."""
    fake = fake_with(250, max_limit=30)
    async with client_of(fake) as client:
        got = [
            cb async for cb in client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), prefetch=1)
        ]
    assert ids(got) == ids(expected(fake)[:30])
    assert list_calls(fake) == [(0, 100)]


# -- prefetch -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("prefetch", [1, 3, 5])
async def test_prefetch_with_jitter_keeps_order_and_bounds_concurrency(
    prefetch: int, seed: int
) -> None:
    """Random server latency: records in order and complete; prefetch requests overlap, no more."""
    fake = fake_with(600, latency=0.0005, jitter=0.002, seed=seed)
    async with client_of(fake) as client:
        got = []
        async for cb in client.iter_callbacks(
            CallbackFilter.campaign(CAMPAIGN), page_size=50, prefetch=prefetch
        ):
            assert fake.in_flight <= prefetch  # requests run while the body does
            got.append(cb)
    assert ids(got) == ids(expected(fake))
    assert fake.max_concurrency == prefetch
    offsets = [offset for offset, _ in list_calls(fake)]
    # every page with records, each asked once; past the end the walk cancels what is out
    assert len(set(offsets)) == len(offsets)
    assert set(range(0, 600, 48)) <= set(offsets) <= set(range(0, 600 + 48 * prefetch, 48))
    if prefetch == 1:
        entries = sorted(fake.requests, key=lambda e: e.seq)
        assert all(a.ended <= b.started for a, b in itertools.pairwise(entries))


async def test_slow_consumer_holds_walk_back() -> None:
    """A consumer holding the first record: the walk stops at prefetch + 2 pages held."""
    fake = fake_with(1000)
    async with client_of(fake) as client:
        it = client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), page_size=20, prefetch=3)
        async for _cb in it:
            # Hold the record until the requests ahead are answered (a fixed 10 ms
            # could end before a loaded machine had sent them), then 10 ms more,
            # in which one past the bound would show up.
            with anyio.fail_after(10):
                while len(fake.requests) < 1 + 3 + 1 or fake.in_flight:
                    await anyio.sleep(0.001)
            await anyio.sleep(0.01)
            break
    # The first page taken; 3 out, and full pages free their places once answered,
    # but no more than 3 + 2 pages are held, that first one among them until the
    # walk takes the next: 5 or 6 requests, by when the answers came.
    assert 1 + 3 + 1 <= len(fake.requests) <= 1 + 3 + 2
    assert_nothing_unfinished(fake)


# -- clean exits -----------------------------------------------------------------


async def test_break_leaves_no_request_in_flight() -> None:
    """After break the fake serves nothing: the walk's requests were cancelled at once."""
    fake = fake_with(1000, latency=0.0005, jitter=0.001)
    async with client_of(fake) as client:
        got = []
        async for cb in client.iter_callbacks(
            CallbackFilter.campaign(CAMPAIGN), page_size=50, prefetch=4
        ):
            got.append(cb)
            if len(got) == 230:
                break
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert fake.in_flight == 0  # cancelled at the break, not left to finish
    assert ids(got) == ids(expected(fake)[:230])
    assert len(fake.requests) <= 5 + 4 + 2  # pages handed out + prefetch + 2 held


async def test_exception_in_loop_body_leaves_no_request_in_flight() -> None:
    """An exception from the loop body propagates; the fake has nothing left to serve."""
    fake = fake_with(1000)

    async def walk(client: AmeyoCallbacksClient) -> None:
        async for cb in client.iter_callbacks(
            CallbackFilter.campaign(CAMPAIGN), page_size=50, prefetch=4
        ):
            if cb.customer_id == 120:
                raise LookupError(cb.customer_callback_id)

    async with client_of(fake) as client:
        with pytest.raises(LookupError, match="cb-6-00120"):
            await walk(client)
    assert len(fake.requests) <= 3 + 4  # the 3 pages taken, at most prefetch outstanding
    assert_nothing_unfinished(fake)


async def test_cancellation_during_a_wave_leaves_no_request_in_flight() -> None:
    """move_on_after firing while a request hangs: it is abandoned and logged as unanswered."""
    fake = fake_with(1000)
    fake.script("list", None, None, Fault.slow(30.0))  # the first request of the second wave
    got: list[CustomerCallback] = []

    async with client_of(fake) as client:
        # 1 s, far below the slow answer's 30 s: the two pages before it must be
        # walked first, through the fake, on a machine that may be loaded.
        with anyio.move_on_after(1.0) as scope:
            await drain_into(
                client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), prefetch=2), got
            )
    assert scope.cancelled_caught
    assert ids(got) == ids(expected(fake)[:198])
    assert fake.in_flight == 0
    unanswered = [e for e in fake.requests if e.status is None]
    assert [e.fault for e in unanswered] == ["slow"]
    # Two out at a time: the slow one and the one after it; full pages answered
    # behind the slow one wait beside them (2 at most), and more go out meanwhile.
    assert 2 + 2 <= len(fake.requests) <= 2 + 2 + 2


async def test_async_with_form_closes_the_walk() -> None:
    """``async with client.iter_...() as it`` walks, and leaving it ends the walk for good."""
    fake = fake_with(500)
    got = []
    async with client_of(fake) as client:
        async with client.iter_callbacks(
            CallbackFilter.campaign(CAMPAIGN), page_size=50, prefetch=3
        ) as it:
            async for cb in it:
                got.append(cb)
                if len(got) == 75:
                    break
        made = len(fake.requests)
        after = [cb async for cb in it]
    assert ids(got) == ids(expected(fake)[:75])
    assert after == []
    assert len(fake.requests) == made
    assert_nothing_unfinished(fake)


def test_trio_walk_with_prefetch_and_early_break() -> None:
    """On trio, through the fake: the pipelined walk is in order, a break leaves nothing running."""
    fake = fake_with(700, latency=0.0005, jitter=0.001)

    async def main() -> list[Page]:
        pages = []
        async with client_of(fake) as client:
            walk = client.iter_callbacks(
                CallbackFilter.campaign(CAMPAIGN), page_size=40, prefetch=3
            )
            async with walk as it:
                async for page in it.pages():
                    assert fake.in_flight <= 3
                    pages.append(page)
                    if len(pages) == 4:
                        break
            await anyio.sleep(0.01)
        return pages

    pages = anyio.run(main, backend="trio")
    assert [cb for p in pages for cb in p.items] == expected(fake)[:154]
    assert [p.next_offset for p in pages] == [40, 78, 116, 154]
    assert fake.max_concurrency == 3
    offsets = sorted(offset for offset, _ in list_calls(fake))
    assert offsets == list(range(0, 38 * len(offsets), 38))  # in order, none skipped
    assert 4 < len(offsets) <= 4 + 2 * 3  # read ahead: at most 3 buffered and 3 in flight
    assert fake.in_flight == 0


# -- inserts during the walk ---------------------------------------------------------


@pytest.mark.parametrize("prefetch", [1, 3])
async def test_inserts_before_offset_yield_no_duplicate_and_lose_nothing(prefetch: int) -> None:
    """Callbacks added before the walk's position shift later ones: each id comes out once."""
    fake = fake_with(500)
    original = set(ids(expected(fake)))
    rng = random.Random(prefetch)
    got: list[CustomerCallback] = []
    added = 0
    async with client_of(fake) as client:
        walk = client.iter_callbacks(
            CallbackFilter.campaign(CAMPAIGN), page_size=40, prefetch=prefetch
        )
        async for page in walk.pages():
            got.extend(page.items)
            for _ in range(rng.randint(1, 4)):
                # sorts just before a callback already yielded: before the walk's offset
                before = rng.randrange(page.next_offset)
                fake.add(make_record(1000 + added, added=before - 0.5))
                added += 1
    got_ids = ids(got)
    assert len(got_ids) == len(set(got_ids))
    assert original <= set(got_ids)
    assert len(fake.callbacks) == 505 + added


# -- errors and misuse -------------------------------------------------------------


async def test_error_mid_walk_raises_after_earlier_pages_prefetch_one() -> None:
    """A 500 on the third page: two pages of records, then ServerError (retries off)."""
    fake = fake_with(1000)
    fake.script("list", None, None, "html_500")
    got: list[CustomerCallback] = []

    async with client_of(fake) as client:
        with pytest.raises(ServerError) as caught:
            await drain_into(
                client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), prefetch=1), got
            )
    assert caught.value.status_code == 500
    assert ids(got) == ids(expected(fake)[:198])
    assert list_calls(fake) == [(0, 100), (98, 100), (196, 100)]


async def test_error_mid_walk_raises_after_earlier_pages_with_prefetch() -> None:
    """A 500 inside the second wave: every record before the failing page, then ServerError."""
    fake = fake_with(1000)
    fake.script("list", *[None] * 6, "html_500")  # a request of the second wave
    got: list[CustomerCallback] = []

    async with client_of(fake) as client:
        with pytest.raises(ServerError):
            await drain_into(
                client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), prefetch=4), got
            )
    failed = [e for e in fake.requests if e.status == 500]
    assert len(failed) == 1
    failed_offset = int(failed[0].params("offset")[0])
    assert 400 <= failed_offset <= 700
    assert ids(got) == ids(expected(fake)[: failed_offset + 2])  # it re-read two yielded
    assert fake.in_flight == 0


async def test_records_and_pages_on_one_iterator_raise_runtime_error() -> None:
    """One client iterator serves records or pages(), not both."""
    fake = fake_with(10)
    async with client_of(fake) as client:
        it = client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN))
        async for _cb in it:
            break
        with pytest.raises(RuntimeError, match="not both"):
            it.pages()
        other = client.iter_callbacks(CallbackFilter.tenant())
        other.pages()
        with pytest.raises(RuntimeError, match="not both"):
            other.__aiter__()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"page_size": 0}, ValueError),
        ({"page_size": 101}, ValueError),
        ({"page_size": True}, TypeError),
        ({"prefetch": 0}, ValueError),
        ({"max_items": -1}, ValueError),
        ({"start_offset": -1}, ValueError),
    ],
)
async def test_invalid_arguments_are_refused_before_any_request(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    """iter_campaign/tenant_callbacks reject bad walk arguments at the call, sending nothing."""
    fake = fake_with(10)
    name = next(iter(kwargs))
    async with client_of(fake) as client:
        with pytest.raises(error, match=name):
            client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), **kwargs)  # type: ignore[arg-type]
        with pytest.raises(error, match=name):
            client.iter_callbacks(CallbackFilter.tenant(), **kwargs)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_a_walk_whose_client_closes_under_it_raises_instead_of_ending() -> None:
    """Closing the client mid-walk: the next step raises RuntimeError, never a silent short end."""
    fake = fake_with(1000)
    client = client_of(fake)
    got: list[CustomerCallback] = []
    async with client:
        walk = client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), page_size=50)
        async for cb in walk:
            got.append(cb)
            if len(got) == 120:
                break  # (a plain async for: the walk object lives on)
        finished = client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), max_items=10)
        assert len([cb async for cb in finished]) == 10
        untouched = client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN))
        cut = client.iter_callbacks(CallbackFilter.campaign(CAMPAIGN), page_size=50)
        first = await cut.__anext__()
    cut_short = r"was closed before the walk ended \(records yielded: 1\)"
    with pytest.raises(RuntimeError, match=cut_short) as e:
        await cut.__anext__()
    assert "resume_from" in str(e.value)
    assert first.customer_callback_id == got[0].customer_callback_id
    with pytest.raises(RuntimeError, match="was closed before the walk ended"):
        await untouched.__anext__()
    assert [cb async for cb in finished] == []  # (it had ended: that stays so)


# -- what no strategy can page through -------------------------------------------


async def test_ties_reshuffled_past_a_page_raise_or_in_warn_mode_warn_once_and_go_on() -> None:
    """250 callbacks in one millisecond, listed in a new order per answer, then 30 more.

    ``raise``: ConsistencyError("ties_unstable"). ``warn``: one RuntimeWarning
    from the walk, and the callbacks after that millisecond all come out.
    """
    tied = [make_record(i, added=5) for i in range(250)]
    after = [make_record(i, added=10 + i) for i in range(250, 280)]
    fake = FakeAmeyo([*tied, *after], order="ties")
    where = CallbackFilter.campaign(CAMPAIGN)
    async with client_of(fake) as client:
        with pytest.raises(ConsistencyError) as caught:
            _ = [cb async for cb in client.iter_callbacks(where, page_size=40)]
        assert caught.value.reason == "ties_unstable"
        with pytest.warns(RuntimeWarning, match="share dateAdded") as warned:
            got = [
                cb
                async for cb in client.iter_callbacks(where, page_size=40, on_inconsistency="warn")
            ]
    assert len(warned) == 1
    assert set(ids(after)) <= set(ids(got))
    assert len(ids(got)) == len(set(ids(got)))


async def test_an_order_that_changes_after_it_was_trusted_raises_or_warns_once() -> None:
    """4,300 callbacks walked by dateAdded (trusted from 4,096), then the server shuffles.

    ``raise``: ConsistencyError("order_changed") at the page that shows it.
    ``warn``: one RuntimeWarning; the walk goes on in date windows.
    """
    fake = fake_with(5000)
    where = CallbackFilter.campaign(CAMPAIGN)

    async def walk(client: AmeyoCallbacksClient, mode: str) -> list[CustomerCallback]:
        fake.order = "dateAdded"
        got: list[CustomerCallback] = []
        async for cb in client.iter_callbacks(where, prefetch=1, on_inconsistency=mode):  # type: ignore[arg-type]
            got.append(cb)
            if len(got) == 4300:
                fake.order = "unstable"
        return got

    async with client_of(fake) as client:
        with pytest.raises(ConsistencyError) as caught:
            await walk(client, "raise")
        assert caught.value.reason == "order_changed"
        assert caught.value.offset is not None
        assert caught.value.offset >= 4300
        with pytest.warns(RuntimeWarning, match="does not list callbacks by dateAdded") as warned:
            got = await walk(client, "warn")
    assert len(warned) == 1
    assert sorted(ids(got)) == sorted(ids(expected(fake)))


@pytest.mark.parametrize("mode", ["raise", "warn"])
async def test_start_offset_on_a_server_in_no_date_order_is_refused_in_either_mode(
    mode: str,
) -> None:
    """A raw offset means nothing on a list in no order: ConsistencyError("unordered_offset")."""
    fake = fake_with(300, order="unstable")
    async with client_of(fake) as client:
        with pytest.raises(ConsistencyError, match="resume_from a checkpoint") as caught:
            _ = [
                cb
                async for cb in client.iter_callbacks(
                    CallbackFilter.campaign(CAMPAIGN),
                    start_offset=100,
                    on_inconsistency=mode,  # type: ignore[arg-type]
                )
            ]
    assert caught.value.reason == "unordered_offset"
    assert caught.value.offset == 100
