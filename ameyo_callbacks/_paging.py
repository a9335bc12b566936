"""Auto-pagination: walk offset/limit pages with bounded prefetch, dedupe and resume.

One walk (``_walk``) serves two forms, and records always come out strictly
in offset order, whatever order the pages arrive in:

- ``async with it: async for ...`` (pipelined): ``__aenter__`` opens a task
  group owned by the caller's ``async with`` block, and a producer task in
  it keeps up to ``prefetch`` requests in flight while the loop body runs,
  launching the next request as soon as one lands. At most ``prefetch``
  answers wait for the consumer (plus the page being handed over), so a slow
  consumer holds the walk back. Leaving the block cancels the producer.
- plain ``async for`` (waves): when no page is buffered, the next
  ``prefetch`` pages are fetched at once in a task group that lives inside
  that one ``__anext__`` call, which returns when the wave is in. No request
  is ever in flight while the loop body runs, so a ``break`` leaves nothing
  behind without any ``async with``; fetching does not overlap the body.

Neither form holds a task group open across a ``yield`` (the known trap of
async generators): the iterator is a class, and its only long-lived task
group belongs to the caller's ``async with`` block. Exceptions leave as
themselves, never wrapped in an ``ExceptionGroup``.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

from ._checks import check_int
from ._models import CustomerCallback, Page
from ._protocol import MAX_LIMIT

__all__ = ["CallbackIterator", "PageFetcher"]

#: fetch(offset, limit) -> the records of that page.
PageFetcher = Callable[[int, int], Awaitable[list[CustomerCallback]]]


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
        "_pipe",
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
        self._page_size = check_int("page_size", page_size, minimum=1, maximum=MAX_LIMIT)
        self._next_offset = check_int("start_offset", start_offset, minimum=0)
        if max_items is not None:
            check_int("max_items", max_items, minimum=0)
        self._max_items = max_items
        self._prefetch = check_int("prefetch", prefetch, minimum=1)
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
        self._pipe: _Pipe | None = None

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
        """Start the pipelined walk: a producer task keeps ``prefetch`` requests going."""
        if self._pipe is not None or self._closed:
            msg = "this iterator was entered or closed already: make a new one"
            raise RuntimeError(msg)
        if not self._done:
            group = anyio.create_task_group()
            await group.__aenter__()
            # No buffer: the producer holds at most one page ready (in send)
            # besides the finished requests of its window.
            send, receive = anyio.create_memory_object_stream[Page](0)
            pipe = _Pipe(group, anyio.CancelScope(), receive)
            group.start_soon(self._produce, send, pipe.scope)
            self._pipe = pipe
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pipe = self._pipe
        await self.aclose()
        if pipe is not None:
            # The caller's own exception (if any) propagates past us as
            # itself: the producer keeps API errors for the consumer, so the
            # group has nothing of its own to report but a KeyboardInterrupt
            # or a bug, which come out unwrapped too.
            try:
                await pipe.group.__aexit__(None, None, None)
            except BaseExceptionGroup as group_error:
                raise _sole(group_error) from None

    async def aclose(self) -> None:
        """Stop the walk: requests still in flight are cancelled, buffered pages dropped.

        Safe from anywhere (a nested scope, another task); under ``async
        with`` the producer task is awaited when the block exits.
        """
        self._closed = True
        self._ready.clear()
        self._items, self._pos = (), 0
        if self._pipe is not None:
            self._pipe.scope.cancel()
            self._pipe.receive.close()

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
            pipe = self._pipe
            if pipe is not None and not pipe.ended:
                try:
                    return await pipe.receive.receive()
                except anyio.EndOfStream:
                    pipe.ended = True
                    continue
            if self._error is not None:
                error, self._error = self._error, None
                self._done = True
                raise error
            if self._done or pipe is not None:
                raise StopAsyncIteration
            await self._walk(self._buffer, max_flights=self._prefetch)

    async def _buffer(self, page: Page) -> None:
        self._ready.append(page)

    async def _produce(self, send: MemoryObjectSendStream[Page], scope: anyio.CancelScope) -> None:
        """The pipelined walk's producer task: pages into the stream, in order."""
        with scope, send:
            try:
                await self._walk(send.send, max_flights=None)
            except Exception as exc:  # noqa: BLE001  (handed to the consumer, in order)
                self._error = exc

    async def _walk(
        self, deliver: Callable[[Page], Awaitable[None]], *, max_flights: int | None
    ) -> None:
        """Fetch pages from ``_next_offset``, ``prefetch`` at a time, and deliver them in order.

        At most ``max_flights`` requests in all (a wave), or until the walk
        ends. A failed page ends the walk: later requests are cancelled, and
        the error is kept for the consumer. A short page ends it too; the
        requests past it are left to finish and discarded (cancelling a
        connection being set up leaks its socket with some transports).
        A short page followed by more data means the server serves fewer
        records than asked: the walk goes on at the size it serves.
        """
        try:
            await self._walk_in_group(deliver, max_flights)
        except BaseExceptionGroup as group_error:
            # Flights keep their errors; what reaches here was raised in the
            # walk itself (a KeyboardInterrupt, a bug): let it out as itself.
            raise _sole(group_error) from None

    async def _walk_in_group(  # noqa: PLR0915  (one state machine reads best in one place)
        self, deliver: Callable[[Page], Awaitable[None]], max_flights: int | None
    ) -> None:
        k = self._prefetch
        window: deque[_Flight] = deque()  # launched, not yet delivered, in offset order
        running = 0  # requests in flight, discarded ones included
        launched = 0
        offset = self._next_offset
        planned = self._yielded
        stopped = False

        async with anyio.create_task_group() as group:

            def refill() -> None:
                # At most k requests in flight, and at most k answers waiting
                # for delivery. A request is launched as soon as one lands,
                # not when the walk gets round to delivering the head.
                nonlocal running, launched, offset, planned
                while not (stopped or self._done or self._closed) and (
                    max_flights is None or launched < max_flights
                ):
                    if self._max_items is not None and planned >= self._max_items:
                        return
                    waiting = sum(1 for f in window if f.done.is_set())
                    if running >= k or waiting >= k:
                        return
                    limit = self._page_size
                    if self._max_items is not None:
                        limit = min(limit, self._max_items - planned)
                    flight = _Flight(offset, limit)
                    window.append(flight)
                    launched += 1
                    offset += limit
                    planned += limit
                    if k > 1:
                        running += 1
                        group.start_soon(flight.run, self._fetch, landed)
                    else:
                        return  # one at a time: run inline below, no task

            def landed() -> None:
                nonlocal running
                running -= 1
                refill()

            while not self._done:
                refill()
                if not window:
                    if max_flights is None and planned > self._yielded:
                        # Dedupe dropped records: plan again for the rest.
                        offset, planned = self._next_offset, self._yielded
                        continue
                    return
                head = window.popleft()
                if k == 1:
                    await head.run(self._fetch, None)
                else:
                    await head.done.wait()
                if head.error is not None:
                    self._error, self._done, stopped = head.error, True, True
                    for flight in window:
                        flight.scope.cancel()
                    return
                records = head.records
                short = len(records) < head.limit
                if short and records and window:
                    ahead = window[0]
                    await ahead.done.wait()
                    if ahead.error is None and ahead.records:
                        # The server serves pages of len(records): keep
                        # this page, drop what was planned past it (those
                        # requests finish on their own and are ignored).
                        self._page_size = len(records)
                        window.clear()
                        await self._deliver(deliver, head.offset, records)
                        offset, planned = self._next_offset, self._yielded
                        continue
                if short:
                    stopped = True  # nothing more to ask; what is in flight is discarded
                await self._deliver(deliver, head.offset, records)
                if short:
                    self._done = True

    async def _deliver(
        self,
        deliver: Callable[[Page], Awaitable[None]],
        offset: int,
        records: list[CustomerCallback],
    ) -> None:
        """Dedupe, apply ``max_items``, advance the offset, and hand the page on."""
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
            await deliver(Page(items=tuple(kept), offset=offset, next_offset=offset + consumed))


class _Flight:
    """One page request of a walk, running in the walk's task group."""

    __slots__ = ("done", "error", "limit", "offset", "records", "scope")

    def __init__(self, offset: int, limit: int) -> None:
        self.offset = offset
        self.limit = limit
        self.records: list[CustomerCallback] = []
        self.error: Exception | None = None
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()

    async def run(self, fetch: PageFetcher, landed: Callable[[], None] | None) -> None:
        with self.scope:
            try:
                self.records = await fetch(self.offset, self.limit)
            except Exception as exc:  # noqa: BLE001  (kept for the walk, raised in order)
                self.error = exc
        self.done.set()
        if landed is not None:
            landed()


@attrs.define
class _Pipe:
    """The pipelined walk of ``async with``: its task group and the page stream."""

    group: TaskGroup
    scope: anyio.CancelScope
    receive: MemoryObjectReceiveStream[Page]
    ended: bool = False


def _sole(error: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside nested single-exception groups (else the group itself)."""
    while len(error.exceptions) == 1:
        inner = error.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        error = inner
    return error


class _PageIterator:
    """``async for page in it.pages()``: the same walk, a page at a time."""

    __slots__ = ("_walk",)

    def __init__(self, walk: CallbackIterator) -> None:
        self._walk = walk

    def __aiter__(self) -> _PageIterator:
        return self

    async def __anext__(self) -> Page:
        return await self._walk._next_page()
