"""The pipelined walk of ``async with``: a producer keeps ``prefetch`` requests going."""

from __future__ import annotations

import anyio
import pytest
import sniffio
from _support import ListFetch, numbered, random_ticks

from ameyo_callbacks import CallbackFilter, CallbackIterator, CustomerCallback
from ameyo_callbacks._paging import Answered
from ameyo_callbacks._planner import PageRequest
from ameyo_callbacks.exceptions import ServerError
from ameyo_callbacks.testing import FakeAmeyo

DATA = tuple(numbered(i, user=None) for i in range(1000))


async def walk(it: CallbackIterator) -> list[CustomerCallback]:
    async with it:
        return [cb async for cb in it]


async def drain(it: CallbackIterator, got: list[CustomerCallback], stop_at: int = -1) -> None:
    """Walk inside ``async with``, keeping records in ``got``; raise KeyError at ``stop_at``."""
    async with it:
        async for cb in it:
            if len(got) == stop_at:
                raise KeyError(cb.customer_callback_id)
            got.append(cb)


@pytest.mark.parametrize("prefetch", [1, 3, 8])
@pytest.mark.parametrize("seed", range(3))
async def test_pipelined_walk_is_complete_and_in_order(prefetch: int, seed: int) -> None:
    """Pages answered in any order come out in offset order, all of them, once."""
    fetch = ListFetch(DATA[:777], ticks=random_ticks(seed))
    got = await walk(CallbackIterator(fetch, prefetch=prefetch))
    assert got == list(DATA[:777])
    assert fetch.high_water <= prefetch
    assert fetch.in_flight == 0


async def test_requests_overlap_the_loop_body() -> None:
    """Unlike the wave of a plain ``async for``, requests stay in flight while the body runs."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 3)
    seen_in_flight = []
    async with CallbackIterator(fetch, prefetch=4) as it:
        async for _cb in it:
            seen_in_flight.append(fetch.in_flight)
            await anyio.sleep(0)
    assert max(seen_in_flight) > 0
    assert fetch.high_water == 4


async def test_slow_consumer_bounds_read_ahead() -> None:
    """A consumer that stops reading holds the producer back: at most 2 x prefetch pages ahead."""
    fetch = ListFetch(DATA)
    async with CallbackIterator(fetch, page_size=10, prefetch=3) as it:
        await it.__anext__()
        for _ in range(100):
            await anyio.sleep(0)
        assert len(fetch.calls) <= 1 + 2 * 3


@pytest.mark.parametrize("prefetch", [1, 2, 5])
async def test_a_consumer_that_stops_holds_prefetch_plus_one_pages_ahead(prefetch: int) -> None:
    """Full pages free their places as they arrive, yet the walk holds prefetch + 2 pages at most.

    (The page handed out is among them until the walk takes the next.)
    """
    fetch = ListFetch(DATA)
    async with CallbackIterator(fetch, page_size=10, prefetch=prefetch) as it:
        await it.__anext__()  # the first page handed out, the consumer stops
        for _ in range(100):
            await anyio.sleep(0)
        assert fetch.in_flight == 0  # every request out was answered: it is memory that stops it
        assert 1 + prefetch + 1 <= len(fetch.calls) <= 1 + prefetch + 2


async def test_error_comes_after_earlier_pages() -> None:
    """A page that fails is raised after every record of the pages before it."""
    boom = ServerError("boom", status_code=503)
    fetch = ListFetch(DATA, fail={294: boom}, ticks=random_ticks(1))  # the fourth request
    got: list[CustomerCallback] = []
    with pytest.raises(ServerError) as info:
        await drain(CallbackIterator(fetch, prefetch=4), got)
    assert info.value is boom
    assert got == list(DATA[:296])


async def test_exception_in_body_propagates_unwrapped_and_stops_requests() -> None:
    """An exception in the loop body leaves ``async with`` as itself, not an ExceptionGroup."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 5)
    got: list[CustomerCallback] = []
    with pytest.raises(KeyError):
        await drain(CallbackIterator(fetch, page_size=20, prefetch=4), got, stop_at=50)
    assert got == list(DATA[:50])
    await fetch.assert_quiet(20)


async def test_cancellation_stops_the_producer() -> None:
    """A cancel scope around the walk cancels the producer; nothing keeps running."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 2, block=frozenset({392}))  # the fifth
    got: list[CustomerCallback] = []
    with anyio.move_on_after(0.2) as scope:
        await drain(CallbackIterator(fetch, prefetch=4), got)
    assert scope.cancelled_caught
    assert got == list(DATA[:394])
    assert fetch.in_flight == 0
    assert 392 in fetch.cancelled


async def test_max_items_caps_the_pipelined_walk() -> None:
    """max_items holds in the pipelined walk too, with no request planned past it."""
    fetch = ListFetch(DATA)
    got = await walk(CallbackIterator(fetch, max_items=250, prefetch=4))
    assert got == list(DATA[:250])
    assert sorted(fetch.calls) == [(0, 100), (98, 100), (196, 54)]  # two re-read per page


async def test_max_items_plans_again_when_a_page_brings_fewer() -> None:
    """Records added before the walk's place: the walk still stops at max_items, none twice."""
    fetch = ListFetch(DATA)
    got: list[CustomerCallback] = []
    async with CallbackIterator(fetch, max_items=200, prefetch=2) as it:
        async for cb in it:
            got.append(cb)
            if len(got) == 100:
                fetch.records[0:0] = [numbered(i, "new", user=None) for i in range(5)]
    ids = [cb.customer_callback_id for cb in got]
    assert len(ids) == len(set(ids)) == 200  # (the ones added come out at most once)
    assert ids[:100] == [cb.customer_callback_id for cb in DATA[:100]]


async def test_server_serving_smaller_pages_is_followed() -> None:
    """A short page followed by more data: the pipelined walk goes on at the served size."""
    fetch = ListFetch(DATA[:450], serve_max=30)
    got = await walk(CallbackIterator(fetch, prefetch=3))
    assert got == list(DATA[:450])


async def test_entering_after_the_end_starts_nothing() -> None:
    """An iterator with max_items=0 entered with ``async with`` sends no request."""
    fetch = ListFetch([numbered(1, user=None)])
    assert await walk(CallbackIterator(fetch, max_items=0)) == []
    assert fetch.calls == []


async def test_aclose_from_a_nested_scope_stops_the_walk() -> None:
    """aclose() inside a nested cancel scope of the ``async with`` body ends the walk cleanly."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 2)
    got: list[CustomerCallback] = []
    async with CallbackIterator(fetch, page_size=10, prefetch=3) as it:
        with anyio.fail_after(5):
            async for cb in it:
                got.append(cb)
                if len(got) == 15:
                    await it.aclose()
    assert got == list(DATA[:15])
    assert fetch.in_flight == 0


async def test_entering_twice_is_refused() -> None:
    """One iterator, one ``async with``: entering again (or after close) raises RuntimeError."""
    it = CallbackIterator(ListFetch(DATA))
    async with it:
        with pytest.raises(RuntimeError, match="entered or closed"):
            await it.__aenter__()
    with pytest.raises(RuntimeError, match="entered or closed"):
        await it.__aenter__()


class Fatal(BaseException):
    """Stands for KeyboardInterrupt, which asyncio re-raises out of the event loop itself."""


async def walk_plain(it: CallbackIterator, got: list[CustomerCallback]) -> None:
    got.extend([cb async for cb in it])


@pytest.mark.parametrize("piped", [True, False])
async def test_base_exception_in_a_fetch_comes_out_unwrapped(piped: bool) -> None:
    """A BaseException (like Ctrl-C) raised while fetching reaches the caller as itself."""

    async def fetch(request: PageRequest, _answered: Answered) -> list[CustomerCallback]:
        if request.offset >= 196:  # the third request
            raise Fatal
        return list(DATA[request.offset : request.offset + request.limit])

    got: list[CustomerCallback] = []
    with pytest.raises(Fatal):
        await (drain if piped else walk_plain)(CallbackIterator(fetch, prefetch=1), got)
    assert got == (list(DATA[:198]) if piped else [])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_client_entered_in_one_task_closes_in_another(backend: str) -> None:
    """A client entered in one task and left in another (a pytest-asyncio fixture does
    this) closes cleanly and cancels the prefetch its plain ``async for`` left running.

    (Run by ``anyio.run``: under ``asyncio_mode = "auto"`` pytest-asyncio runs
    every ``async def`` test on asyncio, whatever ``anyio_backend`` says.)
    """
    fake = FakeAmeyo.seeded(2_000, latency=0.01)

    async def main() -> str:
        assert sniffio.current_async_library() == backend
        client = fake.client()
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.__aenter__)
        seen = 0
        async for _ in client.iter_callbacks(CallbackFilter.tenant(), prefetch=8):
            seen += 1
            if seen == 150:
                break
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.__aexit__, None, None, None)
        await anyio.sleep(0.05)
        return repr(client)

    shown = anyio.run(main, backend=backend)
    assert fake.in_flight == 0
    assert "closed" in shown


def test_a_plain_async_for_on_trio_runs_each_wave_together_and_none_meanwhile() -> None:
    """Trio, plain ``async for``, prefetch 4: a wave's requests overlap; none runs in the body."""
    fetch = ListFetch(DATA, ticks=lambda _offset: 3)
    got: list[CustomerCallback] = []

    async def main() -> None:
        assert sniffio.current_async_library() == "trio"
        async for cb in CallbackIterator(fetch, page_size=50, prefetch=4):
            assert fetch.in_flight == 0
            got.append(cb)

    anyio.run(main, backend="trio")
    assert got == list(DATA)
    assert fetch.high_water == 4


def test_a_base_exception_in_a_wave_comes_out_as_itself() -> None:
    """Trio waves of 4 run in a task group: a Ctrl-C-like error in one leaves it unwrapped."""

    async def fetch(request: PageRequest, _answered: Answered) -> list[CustomerCallback]:
        await anyio.sleep(0)
        if request.offset >= 196:  # the third request, in the first wave
            raise Fatal
        return list(DATA[request.offset : request.offset + request.limit])

    got: list[CustomerCallback] = []

    async def main() -> None:
        await walk_plain(CallbackIterator(fetch, prefetch=4), got)

    with pytest.raises(Fatal):
        anyio.run(main, backend="trio")
    assert got == []
