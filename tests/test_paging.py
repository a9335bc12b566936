"""CallbackIterator: offset walks, wave prefetch, dedupe window, resume, clean exits.

The iterator is driven by a hand-written ``fetch(offset, limit)`` over an
in-memory list. Its "latency" is a number of scheduler checkpoints
(``anyio.sleep(0)``), so pages can be made to arrive in any order without
real time passing; it logs every call, the requests in flight and their
high-water mark, and which requests were cancelled.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio
import pytest
from _support import ListFetch, drain_into, examples, ids, numbered, random_ticks
from hypothesis import given, settings
from hypothesis import strategies as st

from ameyo_callbacks import CallbackIterator, ConsistencyError, CustomerCallback, Page
from ameyo_callbacks.exceptions import AmeyoError, ServerError

DATA = tuple(numbered(i, user=None) for i in range(1000))


async def collect(it: CallbackIterator) -> list[CustomerCallback]:
    return [cb async for cb in it]


async def collect_pages(it: CallbackIterator) -> list[Page]:
    return [page async for page in it.pages()]


# -- where a walk ends -------------------------------------------------------


@pytest.mark.parametrize("prefetch", [1, 4])
async def test_exact_multiple_of_page_size_ends_at_empty_page_after(prefetch: int) -> None:
    """200 records in pages of 100: all come out and the walk ends at the empty page at 200."""
    fetch = ListFetch(DATA[:200])
    got = await collect(CallbackIterator(fetch, prefetch=prefetch))
    assert got == list(DATA[:200])
    assert any(offset + limit > 200 for offset, limit in fetch.calls)
    assert all(offset <= 300 for offset, _ in fetch.calls)
    if prefetch == 1:  # each page re-reads the last record of the one before
        assert fetch.calls == [(0, 100), (99, 100), (198, 100)]


async def test_short_page_ends_iteration() -> None:
    """A page shorter than asked is the last one: no request is made after it."""
    fetch = ListFetch(DATA[:250])
    got = await collect(CallbackIterator(fetch, prefetch=1))
    assert got == list(DATA[:250])
    assert fetch.calls == [(0, 100), (99, 100), (198, 100)]


@pytest.mark.parametrize("prefetch", [1, 3])
async def test_empty_result_yields_nothing(prefetch: int) -> None:
    """An empty list yields no record and no page, after one wave of requests."""
    fetch = ListFetch([])
    assert await collect(CallbackIterator(fetch, prefetch=prefetch)) == []
    assert 1 <= len(fetch.calls) <= prefetch
    assert fetch.calls[0] == (0, 100)
    assert await collect_pages(CallbackIterator(ListFetch([]), prefetch=prefetch)) == []


async def test_page_size_is_not_a_total() -> None:
    """A small page size walks every page: 35 records in pages of 10 all come out."""
    fetch = ListFetch(DATA[:35])
    got = await collect(CallbackIterator(fetch, page_size=10, prefetch=1))
    assert got == list(DATA[:35])
    assert fetch.calls == [(0, 10), (9, 10), (18, 10), (27, 10)]


# -- max_items ---------------------------------------------------------------


@pytest.mark.parametrize("max_items", [0, 1, 99, 100, 150, 250, 300, 10_000])
@pytest.mark.parametrize("prefetch", [1, 4])
async def test_max_items_caps_total(max_items: int, prefetch: int) -> None:
    """max_items yields the first max_items records (all of them when fewer exist)."""
    fetch = ListFetch(DATA[:300])
    got = await collect(CallbackIterator(fetch, max_items=max_items, prefetch=prefetch))
    assert got == list(DATA[: min(max_items, 300)])


async def test_max_items_makes_fewer_requests() -> None:
    """max_items=150 with prefetch 4 asks for 150 records, not for a wave of four full pages."""
    fetch = ListFetch(DATA)
    got = await collect(CallbackIterator(fetch, max_items=150, prefetch=4))
    assert len(got) == 150
    assert len(fetch.calls) == 2
    assert sum(limit for _, limit in fetch.calls) == 151  # one record re-read to join


async def test_max_items_below_page_size_asks_only_that_many() -> None:
    """max_items=5 sends one request for 5 records: the page size is not what is taken."""
    fetch = ListFetch(DATA)
    got = await collect(CallbackIterator(fetch, max_items=5, prefetch=4))
    assert got == list(DATA[:5])
    assert fetch.calls == [(0, 5)]


async def test_max_items_zero_sends_no_request() -> None:
    """max_items=0 yields nothing without touching the server."""
    fetch = ListFetch(DATA)
    assert await collect(CallbackIterator(fetch, max_items=0)) == []
    assert fetch.calls == []


# -- resume --------------------------------------------------------------------


@pytest.mark.parametrize("prefetch", [1, 3])
@pytest.mark.parametrize("stop_after", [1, 2, 5])
async def test_resume_from_page_checkpoint_yields_exactly_the_rest(
    prefetch: int, stop_after: int
) -> None:
    """next_offset of the last page taken, passed as start_offset, resumes with exactly the rest."""
    data = DATA[:430]
    first: list[CustomerCallback] = []
    checkpoint = None
    async with CallbackIterator(ListFetch(data), page_size=50, prefetch=prefetch) as it:
        async for page in it.pages():
            first.extend(page.items)
            checkpoint = page.next_offset
            if len(first) >= stop_after * 50:
                break
    assert checkpoint == len(first)
    fetch = ListFetch(data)
    rest = await collect(
        CallbackIterator(fetch, page_size=50, start_offset=checkpoint, prefetch=prefetch)
    )
    assert first + rest == list(data)
    assert min(offset for offset, _ in fetch.calls) == checkpoint


async def test_resume_after_max_items_cut_mid_page() -> None:
    """A walk cut by max_items mid-page checkpoints after the last record yielded."""
    data = DATA[:400]
    pages = await collect_pages(CallbackIterator(ListFetch(data), max_items=150, prefetch=4))
    first = [cb for page in pages for cb in page.items]
    assert first == list(data[:150])
    assert pages[-1].next_offset == 150
    rest = await collect(CallbackIterator(ListFetch(data), start_offset=pages[-1].next_offset))
    assert first + rest == list(data)


async def test_max_items_cuts_an_oversized_page_and_checkpoints_after_the_cut() -> None:
    """A server that ignores the limit: max_items still caps, next_offset resumes after the cut."""
    data = DATA[:400]
    fetch = ListFetch(data, serve_exactly=100)
    pages = await collect_pages(CallbackIterator(fetch, max_items=130, prefetch=1))
    first = [cb for page in pages for cb in page.items]
    assert first == list(data[:130])
    assert pages[-1].next_offset == 130
    rest = await collect(CallbackIterator(ListFetch(data), start_offset=130))
    assert first + rest == list(data)


async def test_pages_report_offsets_of_the_walk() -> None:
    """Each Page carries its own offset and the offset where the next one starts."""
    pages = await collect_pages(CallbackIterator(ListFetch(DATA[:250]), prefetch=2))
    assert [(p.offset, p.next_offset) for p in pages] == [(0, 100), (100, 199), (199, 250)]
    assert [ids(p.items) for p in pages] == [
        ids(DATA[0:100]),
        ids(DATA[100:199]),
        ids(DATA[199:250]),
    ]


# -- a server that serves smaller pages than asked -------------------------------


ARRIVALS: dict[str, Callable[[int], int] | None] = {
    "together": None,
    "first-page-first": lambda offset: offset // 10,
    "last-page-first": lambda offset: 100 - offset // 10,
}


@pytest.mark.parametrize("arrival", ARRIVALS)
@pytest.mark.parametrize("prefetch", [2, 3, 4, 8])
@pytest.mark.parametrize("serve_max", [2, 7, 30, 99])
async def test_server_clamped_page_size_walk_continues_at_served_size(
    prefetch: int, serve_max: int, arrival: str
) -> None:
    """A server serving at most N < asked: every record comes out exactly once, in order."""
    fetch = ListFetch(DATA[:250], serve_max=serve_max, ticks=ARRIVALS[arrival])
    got = await collect(CallbackIterator(fetch, prefetch=prefetch))
    assert ids(got) == ids(DATA[:250])
    # after the first wave, the walk asks for what the server serves
    assert {limit for offset, limit in fetch.calls[prefetch:]} == {serve_max}


async def test_server_clamped_page_size_with_prefetch_one_ends_at_first_short_page() -> None:
    """prefetch=1 cannot tell a clamped page from the last one: the walk ends there (spec)."""
    fetch = ListFetch(DATA[:250], serve_max=30)
    got = await collect(CallbackIterator(fetch, prefetch=1))
    assert got == list(DATA[:30])
    assert fetch.calls == [(0, 100)]


@settings(max_examples=examples(40), deadline=None)
@given(
    page_size=st.integers(3, 100),
    extra=st.integers(1, 200),
    serve_fraction=st.floats(0.0, 1.0, exclude_max=True),
    prefetch=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_server_clamp_loses_no_record_whatever_the_arrival_order(
    page_size: int, extra: int, serve_fraction: float, prefetch: int, seed: int
) -> None:
    """Any clamp below the page size, any arrival order: all records exactly once, in order."""
    serve_max = 2 + int(serve_fraction * (page_size - 2))  # a page of one cannot be joined
    data = DATA[: page_size + extra]  # the page after the first one holds data: detectable

    async def main() -> None:
        fetch = ListFetch(data, serve_max=serve_max, ticks=random_ticks(seed))
        got = await collect(CallbackIterator(fetch, page_size=page_size, prefetch=prefetch))
        assert ids(got) == ids(data)

    anyio.run(main)


# -- prefetch: order, concurrency, buffering ------------------------------------------


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(0, 350),
    page_size=st.integers(1, 100),
    prefetch=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_prefetch_yields_records_in_order_whatever_order_pages_arrive(
    n: int, page_size: int, prefetch: int, seed: int
) -> None:
    """Random per-request latency: records complete and in order, at most prefetch in flight."""
    data = DATA[:n]

    async def main() -> None:
        fetch = ListFetch(data, ticks=random_ticks(seed))
        got = []
        async for cb in CallbackIterator(fetch, page_size=page_size, prefetch=prefetch):
            assert fetch.in_flight == 0
            got.append(cb)
        assert got == list(data)
        assert fetch.high_water <= prefetch

    anyio.run(main)


async def test_records_in_offset_order_when_later_pages_arrive_first() -> None:
    """Pages answered last-first still yield records in offset order."""
    fetch = ListFetch(DATA[:400], ticks=lambda offset: 50 - offset // 10)
    got = await collect(CallbackIterator(fetch, page_size=100, prefetch=4))
    assert got == list(DATA[:400])
    assert fetch.finished[:4] == [297, 198, 99, 0]


@pytest.mark.parametrize("prefetch", [2, 4, 7])
async def test_prefetch_requests_run_concurrently_up_to_prefetch(prefetch: int) -> None:
    """A wave has exactly prefetch requests in flight at once, never more."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 5)
    got = await collect(CallbackIterator(fetch, page_size=50, prefetch=prefetch))
    assert got == list(DATA)
    assert fetch.high_water == prefetch


@pytest.mark.parametrize("seed", range(5))
async def test_prefetch_one_is_strictly_one_request_at_a_time(seed: int) -> None:
    """prefetch=1: each request starts after the previous one ended."""
    fetch = ListFetch(DATA[:345], ticks=random_ticks(seed))
    got = await collect(CallbackIterator(fetch, page_size=20, prefetch=1))
    assert got == list(DATA[:345])
    assert fetch.high_water == 1
    kinds = [kind for kind, _ in fetch.events]
    assert kinds == ["start", "end"] * len(fetch.calls)
    assert [offset for offset, _ in fetch.calls] == list(range(0, 345, 19))


@pytest.mark.parametrize("prefetch", [1, 3])
async def test_slow_consumer_holds_walk_back(prefetch: int) -> None:
    """A consumer that dawdles: never more than prefetch requests made past the page it reads."""
    page_size = 10
    fetch = ListFetch(DATA[:200], ticks=lambda _offset: 2)
    index = -1
    async for _cb in CallbackIterator(fetch, page_size=page_size, prefetch=prefetch):
        index += 1
        made = len(fetch.calls)
        for _ in range(20):  # the slow loop body: give any background work its chance
            await anyio.sleep(0)
        assert len(fetch.calls) == made
        assert fetch.in_flight == 0
        pages_entered = index // (page_size - 1) + 1  # a page brings page_size - 1 new
        assert made <= pages_entered - 1 + prefetch
    assert fetch.high_water <= prefetch


@pytest.mark.parametrize("n", [200, 250, 299])
async def test_pages_past_the_end_are_never_yielded(n: int) -> None:
    """A wave that overshoots the end yields no page past it, no empty page, no extra record."""
    fetch = ListFetch(DATA[:n])
    pages = await collect_pages(CallbackIterator(fetch, prefetch=6))
    assert all(page.items for page in pages)
    assert [page.offset for page in pages] == [0, *range(100, n, 99)]
    assert [cb for page in pages for cb in page.items] == list(DATA[:n])
    assert any(offset >= n for offset, _ in fetch.calls)  # the overshoot did happen


async def test_requests_past_a_short_page_are_discarded_not_cancelled() -> None:
    """Requests of a wave past a short page finish (no cancel mid-connect) and yield nothing."""
    fetch = ListFetch(DATA[:150], ticks=lambda offset: 30 if offset >= 300 else 0)
    got = await collect(CallbackIterator(fetch, prefetch=5))
    assert got == list(DATA[:150])
    assert sorted(fetch.finished) == [0, 99, 198, 297, 396]
    assert fetch.cancelled == []
    assert fetch.in_flight == 0


# -- clean exits -------------------------------------------------------------


@pytest.mark.parametrize("prefetch", [1, 4])
async def test_break_leaves_no_request_in_flight(prefetch: int) -> None:
    """After break no fetch is running and none starts later."""
    fetch = ListFetch(DATA, ticks=random_ticks(7))
    got = []
    async for cb in CallbackIterator(fetch, page_size=50, prefetch=prefetch):
        got.append(cb)
        if len(got) == 175:
            break
    assert got == list(DATA[:175])
    await fetch.assert_quiet(50)
    assert fetch.in_flight == 0


async def test_exception_in_loop_body_leaves_no_request_in_flight() -> None:
    """An exception raised by the loop body propagates and leaves no fetch running."""
    fetch = ListFetch(DATA, ticks=random_ticks(3))
    got: list[CustomerCallback] = []
    with pytest.raises(KeyError, match="stop here"):
        await drain_into(CallbackIterator(fetch, page_size=25, prefetch=4), got, stop_at=60)
    assert got == list(DATA[:60])
    await fetch.assert_quiet(50)


async def test_cancellation_during_a_wave_leaves_no_request_in_flight() -> None:
    """move_on_after firing while a wave waits cancels its requests; none is left running."""
    fetch = ListFetch(DATA, block=frozenset({198}))  # the third request
    got: list[CustomerCallback] = []
    # 0.5 s: the two pages before the block take ~3-7 ms under coverage on a
    # loaded machine; the timeout must not fire before the walk reaches it.
    with anyio.move_on_after(0.5) as scope:
        await drain_into(CallbackIterator(fetch, page_size=100, prefetch=2), got)
    assert scope.cancelled_caught
    assert got == list(DATA[:199])
    assert fetch.in_flight == 0
    assert fetch.cancelled == [198]


async def test_cancellation_in_loop_body_leaves_no_request_in_flight() -> None:
    """move_on_after firing inside the loop body finds no request in flight."""
    fetch = ListFetch(DATA, ticks=random_ticks(11))
    in_flight_when_cancelled = []
    # 0.5 s: the prefetch settles in ~3-8 ms under coverage on a loaded machine,
    # which left a 20 ms timeout a margin one scheduler stall could eat.
    with anyio.move_on_after(0.5) as scope:
        async for _cb in CallbackIterator(fetch, page_size=100, prefetch=4):
            try:
                await anyio.sleep_forever()
            finally:
                in_flight_when_cancelled.append(fetch.in_flight)
    assert scope.cancelled_caught
    assert in_flight_when_cancelled == [0]
    assert fetch.in_flight == 0
    assert fetch.cancelled == []


async def test_async_with_form_closes_iterator() -> None:
    """Leaving ``async with`` closes the walk: buffered pages are dropped, no request follows."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 1)
    got = []
    async with CallbackIterator(fetch, page_size=50, prefetch=4) as it:
        async for cb in it:
            got.append(cb)
            if len(got) == 10:
                break
    made = len(fetch.calls)
    assert got == list(DATA[:10])
    assert await collect(it) == []
    assert len(fetch.calls) == made
    assert fetch.in_flight == 0


async def test_aclose_ends_iteration_without_a_request() -> None:
    """aclose() mid-walk: the next step ends the iteration and sends nothing."""
    fetch = ListFetch(DATA)
    it = CallbackIterator(fetch, page_size=100, prefetch=2)
    first = await it.__anext__()
    assert first == DATA[0]
    await it.aclose()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()
    assert len(fetch.calls) == 2


def test_trio_walk_with_prefetch_and_early_break() -> None:
    """On trio: the pipelined walk of ``async with`` is in order, and a break stops it all."""

    async def main() -> tuple[list[Page], ListFetch]:
        fetch = ListFetch(DATA, ticks=random_ticks(5))
        pages = []
        async with CallbackIterator(fetch, page_size=40, prefetch=3) as it:
            async for page in it.pages():
                assert fetch.in_flight <= 3
                pages.append(page)
                if len(pages) == 5:
                    break
        for _ in range(20):
            await anyio.sleep(0)
        return pages, fetch

    pages, fetch = anyio.run(main, backend="trio")
    assert [cb for page in pages for cb in page.items] == list(DATA[:196])
    assert [page.next_offset for page in pages] == [40, 79, 118, 157, 196]
    assert fetch.high_water == 3
    assert fetch.in_flight == 0
    assert 5 < len(fetch.calls) <= 5 + 2 * 3  # read ahead: at most 3 buffered, 3 in flight


# -- inserts during the walk, dedupe window -------------------------------------------


@pytest.mark.parametrize("prefetch", [1, 2, 4])
@pytest.mark.parametrize("seed", range(4))
async def test_inserts_before_offset_yield_no_duplicate_and_lose_nothing(
    prefetch: int, seed: int
) -> None:
    """Records inserted before the walk's offset shift later ones: each id comes out once."""
    rng = random.Random(seed)
    original = list(DATA[:600])
    fetch = ListFetch(original, ticks=random_ticks(seed))
    inserted = 0
    got: list[CustomerCallback] = []
    async for page in CallbackIterator(fetch, page_size=50, prefetch=prefetch).pages():
        got.extend(page.items)
        for _ in range(rng.randint(1, 5)):
            fetch.records.insert(
                rng.randrange(page.next_offset), numbered(inserted, "new", user=None)
            )
            inserted += 1
    got_ids = ids(got)
    assert len(got_ids) == len(set(got_ids))
    assert set(ids(original)) <= set(got_ids)
    assert inserted > 0


@pytest.mark.parametrize("prefetch", [1, 3])
async def test_a_record_listed_twice_raises_consistency_error(prefetch: int) -> None:
    """A list holding an id twice (5 records back at a page boundary) is no stable order."""
    data = [*DATA[:10], *DATA[5:25]]
    with pytest.raises(ConsistencyError) as caught:
        await collect(CallbackIterator(ListFetch(data), page_size=10, prefetch=prefetch))
    assert caught.value.reason == "unstable_order"


async def test_a_record_listed_twice_in_warn_mode_is_yielded_once() -> None:
    """on_inconsistency='warn': one warning, and the repeated records come out once."""
    data = [*DATA[:10], *DATA[5:25]]
    with pytest.warns(RuntimeWarning, match="order"):
        got = await collect(
            CallbackIterator(ListFetch(data), page_size=10, prefetch=1, on_inconsistency="warn")
        )
    assert ids(got) == ids(DATA[:25])


# -- errors and misuse -----------------------------------------------------------


@pytest.mark.parametrize("prefetch", [1, 2, 4, 5])
async def test_error_mid_walk_raises_after_records_of_earlier_pages(prefetch: int) -> None:
    """A failing page: the records of the pages before it come out, then its error."""
    boom = ServerError("GET page 3 failed", status_code=502)
    fetch = ListFetch(DATA, fail={297: boom}, ticks=random_ticks(1))  # the fourth request
    got: list[CustomerCallback] = []
    with pytest.raises(ServerError) as caught:
        await drain_into(CallbackIterator(fetch, prefetch=prefetch), got)
    assert caught.value is boom
    assert got == list(DATA[:298])
    assert fetch.in_flight == 0


async def test_error_cancels_later_requests_of_its_wave() -> None:
    """Requests after a failed one in the same wave are cancelled; the error is raised."""
    boom = AmeyoError("page 1 failed")
    fetch = ListFetch(DATA, fail={99: boom}, block=frozenset({198, 297}))
    got: list[CustomerCallback] = []
    with anyio.fail_after(5), pytest.raises(AmeyoError) as caught:
        await drain_into(CallbackIterator(fetch, prefetch=4), got)
    assert caught.value is boom
    assert got == list(DATA[:100])
    assert sorted(fetch.cancelled) == [198, 297]
    assert fetch.in_flight == 0


async def test_error_on_first_page_propagates_from_pages() -> None:
    """pages() raises the fetch's error too, with no page before it."""
    boom = AmeyoError("nope")
    it = CallbackIterator(ListFetch(DATA, fail={0: boom}), prefetch=1)
    with pytest.raises(AmeyoError) as caught:
        await collect_pages(it)
    assert caught.value is boom


async def test_records_after_pages_on_one_iterator_raise_runtime_error() -> None:
    """Iterating records after pages() on the same iterator is refused."""
    it = CallbackIterator(ListFetch(DATA))
    it.pages()
    with pytest.raises(RuntimeError, match="not both"):
        async for _cb in it:
            pass


async def test_pages_after_records_on_one_iterator_raise_runtime_error() -> None:
    """Calling pages() on an iterator whose records are being iterated is refused."""
    fetch = ListFetch(DATA)
    it = CallbackIterator(fetch)
    async for _cb in it:
        break
    with pytest.raises(RuntimeError, match="not both"):
        it.pages()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"page_size": 0}, ValueError),
        ({"page_size": 101}, ValueError),
        ({"page_size": True}, TypeError),
        ({"page_size": 50.0}, TypeError),
        ({"prefetch": 0}, ValueError),
        ({"prefetch": True}, TypeError),
        ({"max_items": -1}, ValueError),
        ({"start_offset": -1}, ValueError),
        ({"start_offset": "0"}, TypeError),
    ],
)
def test_invalid_arguments_are_refused_before_any_request(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    """Out-of-range or non-int page_size, prefetch, max_items, start_offset raise at once."""
    fetch = ListFetch(DATA)
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        CallbackIterator(fetch, **kwargs)  # type: ignore[arg-type]
    assert fetch.calls == []
