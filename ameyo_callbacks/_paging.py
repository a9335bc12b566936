"""Auto-pagination: walk offset/limit pages with bounded prefetch, dedupe and resume.

Design: prefetch runs in *waves*. When the consumer needs a page and none is
buffered, the next ``prefetch`` pages are requested at once, in a task group
that lives inside that one ``__anext__`` call, and the call returns when the
wave is in. So:

- no request is ever in flight while the consumer's loop body runs: a
  ``break``, an exception or a cancellation leaves no task and no
  connection behind, with or without ``async with``, on asyncio and trio
  (the known trap of a task group held open across the ``yield`` of an
  async generator does not arise: there is no generator and no long-lived
  group);
- at most ``prefetch`` pages are buffered, so a slow consumer holds the
  walk back instead of filling memory;
- records come out strictly in offset order, whatever order the pages
  arrive in.

The price is that a wave waits for its slowest page and does not overlap
with the loop body; for an export whose loop body is cheap next to a round
trip that costs little (see the README's performance section).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
import attrs

from ._models import CustomerCallback, Page
from ._protocol import MAX_LIMIT

__all__ = ["CallbackIterator", "PageFetcher"]

#: fetch(offset, limit) -> the records of that page.
PageFetcher = Callable[[int, int], Awaitable[list[CustomerCallback]]]


def _check(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if type(value) is not int:
        msg = f"{name} must be an int, got {type(value).__name__}"
        raise TypeError(msg)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        msg = f"{name} must be {bounds}, got {value}"
        raise ValueError(msg)
    return value


@attrs.frozen
class _Slot:
    """One request of a wave: where, how many, and (once in) what came back."""

    offset: int
    limit: int


class _Window:
    """The ids of the last few pages, to drop records an insert shifted into view again."""

    __slots__ = ("_ids", "_pages", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._pages: deque[tuple[int, list[str]]] = deque()
        self._ids: dict[str, int] = {}

    def admit(self, seq: int, records: list[CustomerCallback]) -> list[CustomerCallback]:
        """The records not seen in the window; they join it as page ``seq``."""
        ids = self._ids
        kept: list[CustomerCallback] = []
        page_ids: list[str] = []
        for record in records:
            cb_id = record.customer_callback_id
            if cb_id in ids:
                continue
            ids[cb_id] = seq
            page_ids.append(cb_id)
            kept.append(record)
        self._pages.append((seq, page_ids))
        if len(self._pages) > self._size:
            old_seq, old_ids = self._pages.popleft()
            for cb_id in old_ids:
                if ids.get(cb_id) == old_seq:
                    del ids[cb_id]
        return kept


class CallbackIterator:
    """Every record of a filtered list, page after page; ``async for`` it.

    Also usable as ``async with client.iter_...() as it: async for cb in it``,
    and ``it.pages()`` yields :class:`Page` records instead (use one or the
    other on one iterator).

    - Pages of ``page_size`` (1..100) from ``start_offset``; the walk ends at
      the first page shorter than asked (an empty one included). The offset
      advances by the number of records the server returned.
    - ``prefetch`` (>= 1) pages are requested at once (see the module
      docstring); ``prefetch=1`` is strictly one request at a time. Pages
      requested past the end are discarded, never yielded; requests after a
      failed page are cancelled.
    - ``max_items`` caps the total number of records yielded.
    - Records an insert shifted across a page boundary come back twice from
      the server; they are yielded once (ids of the last ``prefetch + 1``
      pages are remembered, not every id ever seen).
    - Deleting the records you walk shifts later pages down, so the walk
      skips records: use ``delete_matching`` for that job.
    - If a server serves fewer records than asked although more follow (seen
      when a page of one wave is short and the next is not), the walk goes
      on at the size the server serves instead of stopping early.
    - An error on a page is raised after the records of the pages before it.
    """

    __slots__ = (
        "_closed",
        "_done",
        "_error",
        "_fetch",
        "_items",
        "_max_items",
        "_mode",
        "_next_offset",
        "_page_size",
        "_pos",
        "_prefetch",
        "_ready",
        "_seq",
        "_window",
        "_yielded",
    )

    def __init__(
        self,
        fetch: PageFetcher,
        *,
        page_size: int = MAX_LIMIT,
        start_offset: int = 0,
        max_items: int | None = None,
        prefetch: int = 4,
    ) -> None:
        self._fetch = fetch
        self._page_size = _check("page_size", page_size, 1, MAX_LIMIT)
        self._next_offset = _check("start_offset", start_offset, 0)
        self._max_items = None if max_items is None else _check("max_items", max_items, 0)
        self._prefetch = _check("prefetch", prefetch, 1)
        self._window = _Window(self._prefetch + 1)
        self._ready: deque[Page] = deque()
        self._error: Exception | None = None
        self._done = max_items == 0
        self._closed = False
        self._yielded = 0
        self._seq = 0
        self._items: tuple[CustomerCallback, ...] = ()
        self._pos = 0
        self._mode: str | None = None

    # -- records ---------------------------------------------------------

    def __aiter__(self) -> CallbackIterator:
        self._claim("records")
        return self

    async def __anext__(self) -> CustomerCallback:
        while self._pos >= len(self._items):
            page = await self._next_page()
            self._items, self._pos = page.items, 0
        item = self._items[self._pos]
        self._pos += 1
        return item

    # -- pages -----------------------------------------------------------

    def pages(self) -> _PageIterator:
        """Iterate :class:`Page` records (``items``, ``offset``, ``next_offset``)."""
        self._claim("pages")
        return _PageIterator(self)

    # -- life cycle ------------------------------------------------------

    async def __aenter__(self) -> CallbackIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the walk: buffered pages are dropped (nothing is ever left in flight)."""
        self._closed = True
        self._ready.clear()
        self._items, self._pos = (), 0

    # -- the walk --------------------------------------------------------

    def _claim(self, mode: str) -> None:
        if self._mode not in (None, mode):
            msg = "iterate either the records or .pages() of one iterator, not both"
            raise RuntimeError(msg)
        self._mode = mode

    async def _next_page(self) -> Page:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ready:
                return self._ready.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                self._done = True
                raise error
            if self._done:
                raise StopAsyncIteration
            await self._fetch_wave()

    def _plan(self) -> list[_Slot]:
        size = self._page_size
        room = None if self._max_items is None else self._max_items - self._yielded
        slots: list[_Slot] = []
        for i in range(self._prefetch):
            limit = size if room is None else min(size, room - i * size)
            if limit <= 0:
                break
            slots.append(_Slot(self._next_offset + i * size, limit))
        return slots

    async def _fetch_wave(self) -> None:
        slots = self._plan()
        results: list[list[CustomerCallback] | None] = [None] * len(slots)
        errors: list[Exception | None] = [None] * len(slots)
        scopes = [anyio.CancelScope() for _ in slots]

        def stop_after(index: int) -> None:
            for scope in scopes[index + 1 :]:
                scope.cancel()

        async def run(index: int) -> None:
            slot = slots[index]
            with scopes[index]:
                try:
                    page = await self._fetch(slot.offset, slot.limit)
                except Exception as exc:  # noqa: BLE001  (re-raised in order by _take)
                    errors[index] = exc
                    stop_after(index)
                    return
                results[index] = page
                # Pages past a short page are not cancelled but left to finish
                # and discarded: they are in flight together anyway, and
                # cancelling a connection being set up leaks its socket with
                # some transports (aiohttp over TLS).

        if len(slots) == 1:
            await run(0)
        else:
            async with anyio.create_task_group() as tg:
                for index in range(len(slots)):
                    tg.start_soon(run, index)
        self._take(slots, results, errors)

    def _take(
        self,
        slots: list[_Slot],
        results: list[list[CustomerCallback] | None],
        errors: list[Exception | None],
    ) -> None:
        """Turn a wave's answers into buffered pages, in offset order."""
        for index, slot in enumerate(slots):
            error = errors[index]
            if error is not None:
                self._error = error
                return
            records = results[index]
            assert records is not None  # noqa: S101  (every slot before a stop has an answer)
            short = len(records) < slot.limit
            if short and records and index + 1 < len(slots) and results[index + 1]:
                # A short page followed by more data: the server serves
                # pages of len(records). Keep this page, re-plan from it.
                self._page_size = len(records)
                self._add_page(slot.offset, records)
                return
            self._add_page(slot.offset, records)
            if short or self._done:
                self._done = True
                return

    def _add_page(self, offset: int, records: list[CustomerCallback]) -> None:
        self._seq += 1
        kept = self._window.admit(self._seq, records)
        consumed = len(records)
        if self._max_items is not None:
            room = self._max_items - self._yielded
            if len(kept) >= room:
                self._done = True
                if len(kept) > room:
                    last = kept[room - 1] if room > 0 else None
                    kept = kept[:room]
                    consumed = 0 if last is None else records.index(last) + 1
        self._next_offset = offset + consumed
        self._yielded += len(kept)
        if records:
            self._ready.append(
                Page(items=tuple(kept), offset=offset, next_offset=offset + consumed)
            )


class _PageIterator:
    """``async for page in it.pages()``: the same walk, a page at a time."""

    __slots__ = ("_walk",)

    def __init__(self, walk: CallbackIterator) -> None:
        self._walk = walk

    def __aiter__(self) -> _PageIterator:
        return self

    async def __anext__(self) -> Page:
        return await self._walk._next_page()
