"""Where a walk ends and what it leaves, on a list in memory, in both iteration forms.

A plain ``async for`` (requests in asyncio tasks, or waves on trio) and
``async with ... as it: async for`` (a producer in a task group) must end
alike: at the list's end with no empty page handed out, at ``max_items``
with a checkpoint right after the last record, and on an error or a cancel
with every request behind it cancelled. :class:`_support.ListFetch` logs
what was asked, answered and cancelled.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import anyio
import pytest
from _support import ListFetch, examples, ids, numbered, random_ticks
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ameyo_callbacks import CallbackIterator, CustomerCallback, Page
from ameyo_callbacks._paging import Answered
from ameyo_callbacks._planner import PageRequest
from ameyo_callbacks.exceptions import ConsistencyError, ServerError

DATA = tuple(numbered(i, user=None) for i in range(1000))

Form = Callable[..., Awaitable[None]]


async def plain(
    fetch: ListFetch, got: list[CustomerCallback], stop: int = -1, **kw: object
) -> None:
    """A plain ``async for`` over a walk nobody keeps; waits forever at record ``stop``."""
    async for cb in CallbackIterator(fetch, **kw):  # type: ignore[arg-type]
        got.append(cb)
        if len(got) == stop:
            await anyio.sleep_forever()


async def piped(
    fetch: ListFetch, got: list[CustomerCallback], stop: int = -1, **kw: object
) -> None:
    """The same inside ``async with``."""
    async with CallbackIterator(fetch, **kw) as it:  # type: ignore[arg-type]
        async for cb in it:
            got.append(cb)
            if len(got) == stop:
                await anyio.sleep_forever()


FORMS = pytest.mark.parametrize("form", [plain, piped], ids=["plain", "async-with"])


async def settled(fetch: ListFetch) -> None:
    """Give cancelled requests their turns (a plain walk's tasks end on the next ones)."""
    for _ in range(5):
        await anyio.sleep(0)
    await fetch.assert_quiet(20)


async def assert_cancelled(fetch: ListFetch, offsets: frozenset[int], at_least: int) -> None:
    """Once settled: every request asked at ``offsets`` (``at_least`` of them) was cancelled."""
    await settled(fetch)
    out = [offset for offset, _ in fetch.calls if offset in offsets]
    assert len(out) >= at_least
    assert sorted(fetch.cancelled) == sorted(out)


async def pages_of(it: CallbackIterator) -> list[Page]:
    return [page async for page in it.pages()]


# -- the end of the list ----------------------------------------------------------


@pytest.mark.parametrize("n", [250, 198, 1, 0])
@pytest.mark.parametrize("prefetch", [1, 4])
async def test_pages_end_at_the_list_with_no_empty_page_and_count_the_walk(
    n: int, prefetch: int
) -> None:
    """Pages hold the list once, none empty, ``offset``/``next_offset`` counting the records.

    250 ends on a short page; 198 on an answer of two records the walk had
    (it re-reads two a page): a page with nothing new is not handed out.
    """
    fetch = ListFetch(DATA[:n], ticks=random_ticks(n + prefetch))
    pages = await pages_of(CallbackIterator(fetch, prefetch=prefetch))
    assert [cb for page in pages for cb in page.items] == list(DATA[:n])
    assert all(page.items for page in pages)
    ends = [0]
    for page in pages:
        assert page.offset == ends[-1]
        ends.append(page.offset + len(page.items))
        assert page.next_offset == ends[-1]


@FORMS
async def test_requests_past_the_end_are_cancelled_once_an_answer_shows_it(form: Form) -> None:
    """150 callbacks, prefetch 4: the empty answer at 196 ends the walk; what is out is cancelled.

    The answer after a short page is awaited (a server that serves fewer than
    asked is told from the list's end by it); those past the empty one never
    answer here, and the walk does not wait for them.
    """
    late = frozenset(range(200, 1000))
    fetch = ListFetch(DATA[:150], block=late)
    got: list[CustomerCallback] = []
    with anyio.fail_after(5):
        await form(fetch, got, prefetch=4)
    assert got == list(DATA[:150])
    await assert_cancelled(fetch, late, 1)  # (prefetch 4: some were out when the end showed)
    assert len(fetch.calls) <= 2 + 4 + 1  # the list's two pages, prefetch past them, one held


# -- max_items -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_items", "calls"), [(5, [(0, 10)]), (37, [(0, 37)]), (100, [(0, 100)])]
)
async def test_max_items_up_to_a_page_is_one_request_of_that_many_and_at_least_ten(
    max_items: int, calls: list[tuple[int, int]]
) -> None:
    """One request; under 10 it asks for 10, so that a page can show the server's order."""
    fetch = ListFetch(DATA)
    got = [cb async for cb in CallbackIterator(fetch, max_items=max_items, prefetch=4)]
    assert got == list(DATA[:max_items])
    assert fetch.calls == calls


async def test_max_items_past_the_list_yields_the_list() -> None:
    fetch = ListFetch(DATA[:37])
    got = [cb async for cb in CallbackIterator(fetch, max_items=500, prefetch=4)]
    assert got == list(DATA[:37])
    assert fetch.calls[0] == (0, 100)


@pytest.mark.parametrize("max_items", [37, 250])
@pytest.mark.parametrize("prefetch", [1, 4])
async def test_a_walk_cut_by_max_items_resumes_right_after_its_last_record(
    max_items: int, prefetch: int
) -> None:
    """The last page of a cut walk ends at the cut: its checkpoint resumes with the rest."""
    walk = CallbackIterator(ListFetch(DATA), max_items=max_items, prefetch=prefetch)
    pages = await pages_of(walk)
    assert pages[-1].next_offset == max_items
    assert [cb for page in pages for cb in page.items] == list(DATA[:max_items])
    rest = ListFetch(DATA)
    resumed = [cb async for cb in CallbackIterator(rest, resume_from=pages[-1].checkpoint)]
    assert resumed == list(DATA[max_items:])


async def test_a_server_serving_more_than_asked_is_cut_at_max_items_and_resumed_after_it() -> None:
    """Asked for 100, the server sends 150: the walk stops at 120, its checkpoint at 120."""
    pages = await pages_of(
        CallbackIterator(ListFetch(DATA, serve_exactly=150), max_items=120, prefetch=1)
    )
    assert [cb for page in pages for cb in page.items] == list(DATA[:120])
    assert pages[-1].next_offset == 120
    resumed = [
        cb
        async for cb in CallbackIterator(
            ListFetch(DATA, serve_exactly=150), resume_from=pages[-1].checkpoint, prefetch=1
        )
    ]
    assert resumed == list(DATA[120:])


@pytest.mark.parametrize("max_items", [1, 150, 333])
async def test_a_walk_in_date_windows_cut_by_max_items_resumes_right_after_its_last_record(
    max_items: int,
) -> None:
    """A list not in dateAdded order is walked in date windows; a cut falls inside one.

    The checkpoint stands at the cut, not at the window's end: the resumed
    walk brings every other record, none twice.
    """
    listed = list(DATA[:600])
    random.Random(7).shuffle(listed)  # a stable order, not by dateAdded
    first = CallbackIterator(ListFetch(listed), max_items=max_items, prefetch=2)
    pages = await pages_of(first)
    got = [cb for page in pages for cb in page.items]
    assert first.strategy == "windows"
    assert len(got) == max_items
    assert pages[-1].next_offset == max_items
    rest = [
        cb
        async for cb in CallbackIterator(
            ListFetch(listed), resume_from=pages[-1].checkpoint, prefetch=2
        )
    ]
    assert sorted(ids(got + rest)) == ids(DATA[:600])


# -- a server that serves fewer than asked, answers in any order -------------------


@settings(max_examples=examples(300), deadline=None)
@given(
    n=st.integers(0, 350),
    page_size=st.integers(1, 100),
    prefetch=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    form=st.sampled_from([plain, piped]),
)
@example(n=3, page_size=1, prefetch=1, seed=18, form=piped)  # a stale request still ending
@example(n=5, page_size=1, prefetch=2, seed=11, form=plain)  # one cancelled before it ran
async def test_records_come_in_order_whatever_order_pages_arrive_in(
    n: int, page_size: int, prefetch: int, seed: int, form: Form
) -> None:
    """Random latency per request: every record once, in order, at most ``prefetch`` out.

    Requests the walk cancels (stale when it changes strategy) count until
    they have ended: no new one starts beside them past ``prefetch``.
    """
    fetch = ListFetch(DATA[:n], ticks=random_ticks(seed))
    got: list[CustomerCallback] = []
    await form(fetch, got, page_size=page_size, prefetch=prefetch)
    assert got == list(DATA[:n])
    assert fetch.high_water <= prefetch
    await settled(fetch)


@settings(max_examples=examples(300), deadline=None)
@given(
    page_size=st.integers(3, 100),
    extra=st.integers(1, 200),
    serve_fraction=st.floats(0.0, 1.0, exclude_max=True),
    prefetch=st.integers(2, 6),
    seed=st.integers(0, 2**16),
    form=st.sampled_from([plain, piped]),
)
async def test_a_server_serving_fewer_than_asked_loses_nothing_in_any_arrival_order(
    page_size: int, extra: int, serve_fraction: float, prefetch: int, seed: int, form: Form
) -> None:
    """Pages clamped below the size asked, answered in any order: every record once, in order.

    The walk tells such a server from the list's end by a page already out
    that holds more (the list is longer than a page here); with
    ``prefetch=1`` it ends at the first short page, as documented.
    """
    served = 3 + int(serve_fraction * (page_size - 3))  # more than the two a page re-reads
    data = DATA[: page_size + extra]
    fetch = ListFetch(data, serve_max=served, ticks=random_ticks(seed))
    got: list[CustomerCallback] = []
    await form(fetch, got, page_size=page_size, prefetch=prefetch)
    assert got == list(data)
    await settled(fetch)


# -- an error, a cancel ----------------------------------------------------------------


@FORMS
async def test_an_error_cancels_the_requests_out_behind_it(form: Form) -> None:
    """The page at 98 fails while those after it hang: raised after page 0, the rest cancelled."""
    boom = ServerError("boom", status_code=503)
    hanging = frozenset(range(100, 1000))
    fetch = ListFetch(DATA, fail={98: boom}, block=hanging)
    got: list[CustomerCallback] = []
    with anyio.fail_after(5), pytest.raises(ServerError) as caught:
        await form(fetch, got, prefetch=4)
    assert caught.value is boom
    assert got == list(DATA[:100])
    await assert_cancelled(fetch, hanging, 2)


async def test_an_error_on_the_first_page_comes_out_of_pages() -> None:
    boom = ServerError("boom", status_code=503)
    fetch = ListFetch(DATA, fail={0: boom})
    with pytest.raises(ServerError) as caught:
        await pages_of(CallbackIterator(fetch, prefetch=4))
    assert caught.value is boom


@FORMS
async def test_a_cancel_while_the_loop_body_waits_cancels_every_request_out(form: Form) -> None:
    """move_on_after fires inside the body at record 50: the requests that hang are cancelled."""
    hanging = frozenset(range(54, 1000))  # pages of 20, two re-read: from the fourth page on
    fetch = ListFetch(DATA, block=hanging)
    got: list[CustomerCallback] = []
    with anyio.move_on_after(0.05) as scope:
        await form(fetch, got, stop=50, page_size=20, prefetch=4)
    assert scope.cancelled_caught
    assert got == list(DATA[:50])
    await assert_cancelled(fetch, hanging, 2)


# -- what no strategy can page through ---------------------------------------------------


async def test_a_server_that_ignores_the_date_filters_stops_the_walk_in_either_mode() -> None:
    """A list in no order whose server lists every date whatever it was asked: no window ends.

    (Windows are how a walk finishes an unordered list: on this server they would repeat.)
    """
    rng = random.Random(5)

    async def unfiltered(request: PageRequest, answered: Answered) -> list[CustomerCallback]:
        listed = list(DATA[:300])
        rng.shuffle(listed)
        return listed[request.offset : request.offset + request.limit]

    for mode in ("raise", "warn"):
        with pytest.raises(ConsistencyError) as caught:
            _ = [cb async for cb in CallbackIterator(unfiltered, on_inconsistency=mode)]  # type: ignore[arg-type]
        assert caught.value.reason == "date_filter_ignored"
        assert "does not filter by date" in str(caught.value)


async def test_a_plain_walk_closed_from_another_task_ends_there() -> None:
    """The client closing (another task) cancels a plain walk's tasks before they ran.

    The walk waiting on its first request must wake, and say the client closed.
    """
    it = CallbackIterator(ListFetch(DATA[:50]), page_size=10)
    outcome: list[BaseException | None] = []

    async def consume() -> None:
        try:
            async for _cb in it:
                pass
        except RuntimeError as error:
            outcome.append(error)
        else:
            outcome.append(None)

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await anyio.sleep(0)  # the walk planned its requests and waits on the first
        it.client_closed()
        it.cancel()
        with anyio.fail_after(5):
            while not outcome:
                await anyio.sleep(0)
    assert isinstance(outcome[0], RuntimeError)
    assert "closed" in str(outcome[0])
