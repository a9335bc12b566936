"""Auto-pagination of a list that changes while it is walked: exact, prefetched, resumable.

The list API pages by offset and limit and has no cursor. Under a live list
offsets drift: a delete behind the walk's position moves every later record
down one place, an insert moves them up. The walk is exact anyway.

Joining. Every page after the first re-reads the last ``overlap`` records of
the page before it (1 to ``page_size // 2``; it grows with the drift the walk
sees and shrinks back when the list is still). A page is accepted only once
it *joins*: its anchor is the last record in it that the walk already yielded
and that is unchanged; only the records after the anchor are new. Any
yielded record of the window (the last few pages) can anchor, so a deleted
last record falls back to the one before it, and so on. A join needs
evidence, though: the walk's last record unchanged exactly where the last
answer put it, or two yielded records in the order they were yielded in
(or listed side by side as they were). One yielded record found somewhere
proves nothing: a reshuffled list shows one now and then, most often with
small pages, and joining on it ended such walks early without an error.
The exception is a page at offset 0 while the window still holds every
record yielded: anything in it the walk does not know was added meanwhile.

Why that is exact, for any stable server order (the server sorts by some key
we need not know): a page is a contiguous slice of the list as it was when
served. If it holds a record ``a`` the walk yielded, every record that sat
after ``a`` from the walk's first request on, and that the walk has not
yielded, is after ``a`` in that page, contiguously up to its end; everything
before ``a`` is either yielded or was added during the walk. That holds
whenever the page was fetched, so prefetched pages are simply joined when
their turn comes. A record whose fields changed (rescheduled: it may move in
the order) never anchors; it counts as removed from its old place and added
at its new one, so it comes out at most once per place.

Bridging. A page holding no anchor (a drift larger than its overlap, or a
short page past a list that shrank) is bridged: the walk re-reads around
the expected place, backwards first (deletes behind the walk are the common
case), then forwards, joins the re-read, and tries the page again; pages
planned from the old offsets are re-planned when that fails. Only such pages
cost extra requests. A short page ends the walk only once it joins.

Consistency. Two unchanged yielded records listed in opposite orders by two
answers prove the order is not stable; no anchor within the re-reads means
the walk cannot tell where it stands. Either raises
:class:`~ameyo_callbacks.exceptions.ConsistencyError`, or with
``on_inconsistency="warn"`` warns once and goes on as plain offset paging.

Memory: the window holds the last ``WINDOW_PAGES`` pages of records (at
least ``WINDOW_MIN`` records) and a few "maybe ahead" ids: flat over a
million records.

Prefetch and the iteration forms. Up to ``prefetch`` requests are
outstanding (launched, not yet taken by the consumer), and requests are
launched only when the consumer asks for its next page, so a ``break``
leaves at most ``prefetch`` requests to finish and be dropped. They run:

- under ``async with it:`` in a task group of that block (cancelled when
  it exits);
- under a plain ``async for`` over ``client.iter_callbacks(...)`` inside
  ``async with client:``, in the client's :class:`Background` (cancelled
  when the client closes);
- otherwise (an iterator built by hand, a client not entered with ``async
  with``) in waves: the next ``prefetch`` pages are fetched at once inside
  one ``__anext__`` call, and nothing runs while the loop body does.

No task group is held open across a ``yield``: the iterator is a class, and
task groups belong to the caller's ``async with`` blocks. Exceptions leave
as themselves, never wrapped in an ``ExceptionGroup``.
"""

from __future__ import annotations

import warnings
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Literal

import anyio
import sniffio
from anyio.abc import TaskGroup

from ._checks import check_choice, check_int
from ._compat import BaseExceptionGroup
from ._models import Cursor, CustomerCallback, Page, fingerprint
from ._protocol import MAX_LIMIT
from .exceptions import ConsistencyError

__all__ = ["Background", "CallbackIterator", "OnInconsistency", "PageFetcher", "walk_scope"]

#: fetch(offset, limit) -> the records of that page.
PageFetcher = Callable[[int, int], Awaitable[list[CustomerCallback]]]
#: What a walk does when its pages cannot be joined.
OnInconsistency = Literal["raise", "warn"]

#: Records every page re-reads of the one before it, at least.
MIN_OVERLAP = 1
#: Pages of yielded records kept to join against (anchors and dedupe).
WINDOW_PAGES = 4
#: Yielded records that may still lie ahead, kept at most (see _Window.ahead).
AHEAD_LIMIT = 1024
#: Re-reads tried for one page that does not join, before giving up.
MAX_BRIDGES = 16
#: Pages the overlap looks back over when it adapts to the drift.
_DRIFT_MEMORY = 64
#: Yielded records kept at least, whatever the page size (small pages join
#: against more than four pages: a burst of deletes rarely removes them all).
WINDOW_MIN = 256


def _window_size(page_size: int) -> int:
    return max(WINDOW_PAGES * page_size, WINDOW_MIN)


def walk_scope(campaign_id: int | None, params: Iterable[tuple[str, str]]) -> str:
    """8 hex digits naming what a walk lists (its checkpoints must resume the same list)."""
    text = f"{campaign_id}|" + "&".join(f"{k}={v}" for k, v in params)
    return format(zlib.crc32(text.encode()), "08x")


def _same(a: CustomerCallback, b: CustomerCallback) -> bool:
    """The listed fields are equal (``extra`` is left out: info fields may vary per answer)."""
    return (
        a.callback_time == b.callback_time
        and a.date_added == b.date_added
        and a.user_id == b.user_id
        and a.campaign_id == b.campaign_id
        and a.phone == b.phone
        and a.customer_id == b.customer_id
        and a.self_callback == b.self_callback
    )


class _Window:
    """The records the walk yielded last, by sequence number, to join the next page to.

    ``seqs`` maps an id to its sequence number (the order of yielding);
    records of this run are kept in whole pages (``chunks``), those carried
    over from a checkpoint as fingerprints with negative numbers. ``ahead``
    holds yielded records that may still sit after the walk's position
    (their page joined at an earlier anchor): they keep being filtered and
    may anchor, but their numbers no longer follow the server's order.
    """

    __slots__ = (
        "_chunks",
        "_held",
        "_limit",
        "ahead",
        "next_seq",
        "prints",
        "restarts",
        "seqs",
        "whole",
    )

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.seqs: dict[str, int] = {}
        self._chunks: deque[tuple[int, tuple[CustomerCallback, ...]]] = deque()
        self._held = 0
        self.next_seq = 0
        self.prints: dict[str, str] = {}
        self.ahead: dict[str, str] = {}
        self.whole = True  # holds every record yielded since offset 0
        self.restarts = 0  # pages joined as the list's start (see CallbackIterator._join)

    def resume(
        self, anchors: tuple[tuple[str, str], ...], ahead: tuple[tuple[str, str], ...]
    ) -> None:
        for n, (cb_id, print_) in enumerate(anchors):
            self.seqs[cb_id] = n - len(anchors)
            self.prints[cb_id] = print_
        for cb_id, print_ in ahead:
            self.ahead[cb_id] = print_

    def add(self, items: tuple[CustomerCallback, ...]) -> None:
        base = self.next_seq
        n = len(items)
        self.seqs.update(
            zip([r.customer_callback_id for r in items], range(base, base + n), strict=True)
        )
        self.next_seq = base + n
        self._chunks.append((base, items))
        self._held += n
        chunks = self._chunks
        while self._held - len(chunks[0][1]) >= self._limit:
            old_base, old = chunks.popleft()
            self._held -= len(old)
            self.whole = False
            seqs = self.seqs
            for i, record in enumerate(old):
                cb_id = record.customer_callback_id
                if seqs.get(cb_id) == old_base + i:
                    del seqs[cb_id]
        if self.prints and self._held >= self._limit:
            for cb_id in self.prints:
                if self.seqs.get(cb_id, 0) < 0:
                    del self.seqs[cb_id]
            self.prints.clear()
            self.whole = False

    def record(self, seq: int) -> CustomerCallback | None:
        for base, items in reversed(self._chunks):
            if seq >= base:
                return items[seq - base] if seq - base < len(items) else None
        return None

    def valid(self, record: CustomerCallback, seq: int | None) -> bool:
        """Whether ``record`` (listed now) is unchanged since it was yielded as ``seq``."""
        cb_id = record.customer_callback_id
        if seq is None or cb_id in self.ahead:
            print_ = self.ahead.get(cb_id)
            return print_ is not None and print_ == fingerprint(record)
        if seq < 0:
            return self.prints.get(cb_id) == fingerprint(record)
        stored = self.record(seq)
        return stored is not None and _same(stored, record)

    def after(self, seq: int) -> list[tuple[str, str]]:
        """(id, fingerprint) of the records yielded after ``seq``, in order."""
        out: list[tuple[str, str]] = []
        if seq < 0:
            out.extend((i, p) for i, p in self.prints.items() if self.seqs.get(i, 0) > seq)
        for base, items in self._chunks:
            if base + len(items) > seq + 1:
                start = max(0, seq + 1 - base)
                out.extend((r.customer_callback_id, fingerprint(r)) for r in items[start:])
        return out

    def mark_ahead(self, pairs: list[tuple[str, str]]) -> None:
        ahead = self.ahead
        for cb_id, print_ in pairs:
            ahead.pop(cb_id, None)
            ahead[cb_id] = print_
        while len(ahead) > AHEAD_LIMIT:
            del ahead[next(iter(ahead))]

    def last(self, n: int) -> tuple[CustomerCallback | tuple[str, str], ...]:
        """The last ``n`` records yielded (oldest first), checkpoint anchors included."""
        out: list[CustomerCallback | tuple[str, str]] = []
        for _base, items in reversed(self._chunks):
            out[:0] = items[-(n - len(out)) :]
            if len(out) >= n:
                return tuple(out)
        if self.prints:
            carried = [(i, p) for i, p in self.prints.items() if self.seqs.get(i, 0) < 0]
            out[:0] = carried[-(n - len(out)) :]
        return tuple(out)


class _Flight:
    """One page request of a walk; ``overlap`` is how many records it re-reads."""

    __slots__ = ("done", "error", "launched", "limit", "offset", "overlap", "records", "scope")

    def __init__(self, offset: int, limit: int, overlap: int) -> None:
        self.offset = offset
        self.limit = limit
        self.overlap = overlap
        self.records: list[CustomerCallback] = []
        self.error: Exception | None = None
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()
        self.launched = False

    @property
    def expected(self) -> int:
        """New records this request should bring."""
        return self.limit - self.overlap

    async def run(self, fetch: PageFetcher, landed: Callable[[], None] | None) -> None:
        try:
            with self.scope:
                try:
                    self.records = await fetch(self.offset, self.limit)
                except Exception as exc:  # noqa: BLE001  (kept for the walk, raised in order)
                    self.error = exc
            self.done.set()
        except anyio.get_cancelled_exc_class():
            self.done.set()  # cancelled from outside (the client closed): nobody waits forever
            raise
        finally:
            # A KeyboardInterrupt (or a bug) leaves done unset: it cancels the walk's group.
            if landed is not None:
                landed()


class Background:
    """Where the prefetch requests of a plain ``async for`` run: a client's ``async with``.

    ``open()`` (in the client's ``__aenter__``) spawns one runner task that
    owns a task group; requests are started in it from any task, and
    ``cancel()`` (``aclose``) stops them all without touching the caller's
    own code. ``close()`` waits for the runner, from any task: the task group
    is entered and left inside the runner, never in the caller's task, so a
    client opened in one task may be closed in another (pytest-asyncio runs
    a fixture's set-up and tear-down in different tasks). The runner is a
    plain asyncio task, or a trio system task, since neither library lets a
    task group outlive the block that opened it. Without one, iterators fall
    back to waves.
    """

    __slots__ = ("_done", "_inner", "_scope", "_task")

    def __init__(self) -> None:
        self._inner: TaskGroup | None = None
        self._scope = anyio.CancelScope()
        self._done: anyio.Event | None = None
        self._task: object = None  # the asyncio task, kept referenced while it runs

    async def open(self) -> None:
        started, done = anyio.Event(), anyio.Event()
        self._done = done

        async def run() -> None:
            try:
                with self._scope:
                    async with anyio.create_task_group() as inner:
                        self._inner = inner
                        started.set()
                        await anyio.sleep_forever()
            finally:
                self._inner = None
                started.set()
                done.set()

        if sniffio.current_async_library() == "trio":
            import trio  # noqa: PLC0415  (only on trio)

            trio.lowlevel.spawn_system_task(run)
        else:
            import asyncio  # noqa: PLC0415

            self._task = asyncio.get_running_loop().create_task(run())
        await started.wait()

    @property
    def active(self) -> bool:
        return self._inner is not None

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        assert self._inner is not None  # noqa: S101  (callers check .active)
        self._inner.start_soon(func, *args)

    def cancel(self) -> None:
        """Cancel every request running here; safe from any task."""
        self._inner = None
        self._scope.cancel()

    async def close(self) -> None:
        """Cancel, and wait until the runner and its requests are done (from any task)."""
        self.cancel()
        done = self._done
        if done is not None:
            with anyio.CancelScope(shield=True):
                await done.wait()
        self._task = None


class CallbackIterator:
    """Every record of a filtered list, exactly once even while it changes; ``async for`` it.

    Also ``async with client.iter_callbacks(...) as it: async for cb in it``
    (deterministic clean-up), and ``it.pages()`` yields :class:`Page`
    records instead (one or the other on one iterator).

    - Pages of ``page_size`` (1..100) from ``start_offset`` (a raw offset:
      the first page is taken as it comes) or ``resume_from`` (a
      ``Page.checkpoint``: the first page must join where that walk
      stopped). Each page after the first re-reads a few records of the one
      before (see the module docstring), so it brings ``page_size`` minus
      that many new records.
    - The contract, for any stable server order: every record present from
      the walk's first request to its last is yielded exactly once, one
      added or removed during the walk at most once; across a resume too.
      ``page_size=1`` leaves no room to re-read: such a walk is unverified.
    - ``prefetch`` (>= 1) requests are outstanding at most; pages past the
      end are discarded; requests after a failed page are cancelled.
    - ``max_items`` caps the total number of records yielded.
    - The walk ends at the first short page that joins. A short page
      followed by a non-empty one means the server serves fewer records
      than asked: the walk goes on at the size it serves.
    - An error on a page is raised after the records of the pages before it.
    - ``on_inconsistency``: ``"raise"`` (default) raises
      :class:`ConsistencyError` when pages cannot be joined; ``"warn"``
      warns once (``RuntimeWarning``) and walks on unverified.
    """

    __slots__ = (
        "_anchored",
        "_background",
        "_closed",
        "_done",
        "_drift",
        "_error",
        "_fetch",
        "_flights",
        "_frontier",
        "_frontier_id",
        "_group",
        "_items",
        "_joined",
        "_max_items",
        "_mode",
        "_outstanding",
        "_overlap",
        "_page_size",
        "_plan_offset",
        "_pos",
        "_prefetch",
        "_ready",
        "_running",
        "_scope",
        "_stalls",
        "_strict",
        "_warned",
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
        resume_from: str | None = None,
        on_inconsistency: OnInconsistency = "raise",
        scope: str = "",
        background: Background | None = None,
    ) -> None:
        self._fetch = fetch
        self._page_size = check_int("page_size", page_size, minimum=1, maximum=MAX_LIMIT)
        start = check_int("start_offset", start_offset, minimum=0)
        if max_items is not None:
            check_int("max_items", max_items, minimum=0)
        self._max_items = max_items
        self._prefetch = check_int("prefetch", prefetch, minimum=1)
        check_choice("on_inconsistency", on_inconsistency, ("raise", "warn"))
        self._strict = on_inconsistency == "raise"
        self._scope = scope
        self._window = _Window(_window_size(self._page_size))
        # The position (in the last answer that showed it) of the last record
        # yielded; -1 before any. Planned requests start from _plan_offset.
        self._frontier = start - 1
        self._frontier_id: str | None = None  # the record at _frontier in that answer
        self._joined: tuple[list[CustomerCallback], int, bool] | None = None
        self._anchored = False  # the next page must join (False: take it as it comes)
        if resume_from is not None:
            cursor = Cursor.decode(resume_from)
            if start_offset != 0:
                msg = "pass resume_from or start_offset, not both"
                raise ValueError(msg)
            if cursor.scope and scope and cursor.scope != scope:
                msg = (
                    "resume_from is a checkpoint of a walk with another filter: "
                    "resume with the same CallbackFilter (and info) it was taken with"
                )
                raise ValueError(msg)
            anchors = tuple(a for a in cursor.anchors if isinstance(a, tuple))
            self._window.resume(anchors, cursor.ahead)
            self._window.whole = cursor.whole
            self._frontier = cursor.offset - 1
            self._frontier_id = anchors[-1][0] if anchors else None
            self._anchored = bool(anchors)
        elif start != 0:
            self._window.whole = False
        self._plan_offset = self._frontier + 1
        self._overlap = MIN_OVERLAP
        self._drift: deque[int] = deque(maxlen=_DRIFT_MEMORY)
        self._flights: deque[_Flight] = deque()
        self._outstanding = 0  # new records expected from the flights in _flights
        self._running = 0  # requests in flight, discarded ones included
        self._ready: deque[Page] = deque()
        self._error: Exception | None = None
        self._done = max_items == 0
        self._closed = False
        self._warned = False
        self._stalls = 0  # pages in a row that brought nothing new
        self._yielded = 0
        self._items: tuple[CustomerCallback, ...] = ()
        self._pos = 0
        self._mode: str | None = None
        self._group: TaskGroup | None = None
        self._background = background

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
        """Iterate :class:`Page` records: ``items``, ``offset``, ``next_offset``, ``checkpoint``."""
        self._claim("pages")
        return _PageIterator(self)

    # -- life cycle ------------------------------------------------------

    async def __aenter__(self) -> CallbackIterator:
        """Run this walk's requests in a task group of the caller's ``async with`` block."""
        if self._group is not None or self._closed:
            msg = "this iterator was entered or closed already: make a new one"
            raise RuntimeError(msg)
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        group = self._group
        await self.aclose()
        if group is not None:
            # Requests keep their API errors for the walk, so the group has
            # nothing to report but a KeyboardInterrupt or a bug: let it out
            # as itself (the caller's own exception propagates past us).
            try:
                await group.__aexit__(None, None, None)
            except BaseExceptionGroup as group_error:
                raise _sole(group_error) from None

    async def aclose(self) -> None:
        """Stop the walk: requests still outstanding are cancelled, buffered pages dropped.

        Safe from anywhere (a nested scope, another task).
        """
        self._closed = True
        self._ready.clear()
        self._items, self._pos = (), 0
        self._cancel_flights()

    # -- the walk --------------------------------------------------------

    def _claim(self, mode: str) -> None:
        if self._mode not in (None, mode):
            msg = "iterate either the records or .pages() of one iterator, not both"
            raise RuntimeError(msg)
        self._mode = mode

    def _cancel_flights(self) -> None:
        for flight in self._flights:
            flight.scope.cancel()
        self._flights.clear()
        self._outstanding = 0

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
            self._top_up()
            if not self._flights:
                self._done = True
                continue
            head = self._flights[0]
            if not head.launched:
                await self._run_wave()
                continue
            await head.done.wait()
            if self._closed:
                continue
            if self._flights and self._flights[0] is head:
                self._flights.popleft()
                self._outstanding -= head.expected
                try:
                    await self._take(head)
                except BaseException:
                    self._done = True
                    self._cancel_flights()
                    raise
            if self._ready and not self._done:
                self._top_up()  # the next requests run while the loop body does

    def _spawner(self) -> Callable[..., object] | None:
        if self._group is not None:
            return self._group.start_soon
        background = self._background
        if background is not None and background.active:
            return background.start_soon
        return None

    def _top_up(self) -> None:
        """Plan and launch requests up to ``prefetch`` outstanding (waves: planned only)."""
        spawn = self._spawner()
        if spawn is None and self._flights:
            return  # a wave is planned and not run yet, or still being taken
        k = self._prefetch
        flights = self._flights
        while (
            not (self._done or self._closed)
            and len(flights) < k
            and (spawn is None or self._running < k)
        ):
            planned = self._yielded + self._outstanding
            if self._max_items is not None and planned >= self._max_items:
                return
            limit = self._page_size
            overlap = 0
            if self._anchored or flights:
                overlap = min(self._overlap, limit - 1, self._plan_offset)
            offset = self._plan_offset - overlap
            if self._max_items is not None:
                limit = min(limit, self._max_items - planned + overlap)
            flight = _Flight(offset, limit, overlap)
            flights.append(flight)
            self._plan_offset = offset + limit
            self._outstanding += flight.expected
            if spawn is not None:
                flight.launched = True
                self._running += 1
                spawn(flight.run, self._fetch, self._landed)

    def _landed(self) -> None:
        self._running -= 1

    async def _run_wave(self) -> None:
        """Waves: run every planned request at once, here, and wait for them in order."""
        wave = [flight for flight in self._flights if not flight.launched]
        for flight in wave:
            flight.launched = True
        if len(wave) == 1:
            await wave[0].run(self._fetch, None)
            return
        try:
            async with anyio.create_task_group() as group:
                for flight in wave:
                    group.start_soon(flight.run, self._fetch, None)
                for n, flight in enumerate(wave):
                    await flight.done.wait()
                    if flight.error is not None:
                        for later in wave[n + 1 :]:
                            later.scope.cancel()
                        break
        except BaseExceptionGroup as group_error:
            raise _sole(group_error) from None

    # -- joining ----------------------------------------------------------

    async def _take(self, head: _Flight) -> None:
        """Join the page of ``head`` and queue what it brings (or bridge it, or end the walk)."""
        if head.error is not None:
            self._error, self._done = head.error, True
            self._cancel_flights()
            return
        records = head.records
        short = len(records) < head.limit
        joined = -1  # the first page, or no room to re-read (page_size=1)
        if self._anchored and head.limit > 1:
            found = self._join(records, head.offset)
            if found is None:
                if not await self._bridge(head, short=short):
                    return
                found = self._join(records, head.offset)
                if found is None:
                    self._replan()  # the bridge stands on its own: plan again from it
                    return
            joined = found
        self._observe(head, joined)
        if short and len(records) > 1 and self._flights:
            # (A page of one cannot be re-read and joined: it ends the walk.)
            ahead = self._flights[0]
            if not ahead.launched:
                await self._run_wave()
            await ahead.done.wait()
            if ahead.error is None and ahead.records:
                # The server serves pages of len(records) (or records were
                # added past this one; pages still join, so either way the
                # walk stays exact): keep this page, plan again at that size.
                self._accept(records, head.offset, joined)
                self._page_size = len(records)
                self._window._limit = _window_size(self._page_size)
                self._replan()
                return
        self._accept(records, head.offset, joined)
        if short:
            self._done = True
            self._flights.clear()  # requests past the end finish on their own, ignored
            self._outstanding = 0

    def _join(self, records: list[CustomerCallback], offset: int) -> int | None:
        """The index of the anchor of a page at ``offset``; -1: all new; None: no join.

        The anchor is the last record of the page that the walk yielded and
        that is unchanged. Unchanged yielded records (ahead ones aside) must
        come in the order they were yielded in: if not, the order is unstable.
        """
        window = self._window
        get = window.seqs.get
        hits: list[tuple[int, int | None]] = [
            (i, s) for i, r in enumerate(records) if (s := get(r.customer_callback_id)) is not None
        ]
        ahead = window.ahead
        if ahead:
            seen = {i for i, _ in hits}
            hits.extend(
                (i, None)
                for i, r in enumerate(records)
                if i not in seen and r.customer_callback_id in ahead
            )
            hits.sort(key=lambda hit: hit[0])
        anchor: int | None = None
        anchor_seq: int | None = None
        previous = -(1 << 62)
        # Evidence for the join: two unchanged yielded records listed in the
        # order they were yielded in and checked against it, or listed next
        # to each other as they were yielded (records that may sit ahead
        # count only so: their order against later ones is not kept).
        agree = 0
        ordered = 0
        loose = 0  # unchanged yielded records known only by fingerprint (a checkpoint's)
        last_i, last_seq = -2, -2
        for i, seq in hits:
            record = records[i]
            if not window.valid(record, seq):
                continue
            anchor, anchor_seq = i, seq
            if seq is None:
                loose += 1
                continue
            if i == last_i + 1 and seq == last_seq + 1:
                agree += 1
            last_i, last_seq = i, seq
            if record.customer_callback_id in ahead:
                continue
            ordered += 1
            if seq < previous:
                self._inconsistent(
                    f"the server listed callbacks in another order than before (at offset "
                    f"{offset + i}, {record.customer_callback_id!r} came after a callback it "
                    "preceded in an earlier answer, neither of them changed): its order is not "
                    "stable (ties sorted at random?), so offset pages may skip or repeat records",
                    offset,
                    "unstable_order",
                )
            previous = seq
        # A join must be confirmed: one record alone, found somewhere in a
        # page, proves nothing (in a shuffled list any page holds one now and
        # then). Either the last record yielded is exactly where the last
        # answer put it (nothing moved), or two unchanged yielded records
        # agree with the order they were yielded in.
        confirmed = (
            agree > 0
            or ordered >= 2
            or (loose > 0 and ordered > 0)
            or self._in_place(records, offset)
        )
        if not confirmed:
            if not (offset == 0 and window.whole):
                return None
            # Every record yielded is known and the page starts the list: a
            # record in it the walk does not know was added during the walk
            # (one present throughout before a yielded one was yielded
            # before it), and yielded records not in it may sit after it.
            window.restarts += 1
            if anchor is None:
                anchor, anchor_seq = -1, -(1 << 62)
        if anchor_seq is not None and anchor_seq < window.next_seq - 1:
            # Records yielded after the anchor and not in this page: deleted,
            # or still ahead of it (inserts pushed them past the page's end).
            listed = {r.customer_callback_id for r in records}
            maybe = [(i, p) for i, p in window.after(anchor_seq) if i not in listed]
            if maybe:
                window.mark_ahead(maybe)
        # Whether a record after the anchor is known (for _accept: no rescan).
        if anchor is not None:
            self._joined = (records, anchor, bool(hits) and hits[-1][0] > anchor)
        return anchor

    def _in_place(self, records: list[CustomerCallback], offset: int) -> bool:
        """Whether the walk's last record is, unchanged, where the last answer put it."""
        at = self._frontier - offset
        if not 0 <= at < len(records):
            return False
        record = records[at]
        cb_id = record.customer_callback_id
        if cb_id != self._frontier_id:
            return False
        seq = self._window.seqs.get(cb_id)
        return (seq is not None or cb_id in self._window.ahead) and self._window.valid(record, seq)

    def _inconsistent(self, text: str, offset: int, reason: str) -> None:
        if self._strict:
            msg = (
                f"{text}; the walk stopped rather than yield wrong results "
                "(on_inconsistency='warn' walks on without the guarantee)"
            )
            raise ConsistencyError(msg, offset=offset, reason=reason)
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"{text}; walking on without the exactness guarantee (warned once per walk)",
                RuntimeWarning,
                stacklevel=5,
            )

    def _observe(self, flight: _Flight, joined: int) -> None:
        """Adapt the overlap to the drift: how far left the last record moved."""
        if flight.overlap == 0 or joined < 0:
            return
        expected = self._frontier - flight.offset
        self._drift.append(max(0, expected - joined))
        limit = max(1, self._page_size // 2)
        self._overlap = min(limit, MIN_OVERLAP + 2 * max(self._drift))

    def _accept(self, records: list[CustomerCallback], offset: int, joined: int) -> None:
        """Queue the records after ``joined`` not yet yielded; move the frontier.

        Records after the anchor that the walk yielded before (changed ones,
        moved by a reschedule; ahead ones) are not yielded again, but join
        the window at their new place like the new ones: they anchor later
        pages from there.
        """
        start = joined + 1
        tail = records[start:]
        window = self._window
        new = tail
        if tail and (window.seqs or window.ahead):
            get = window.seqs.get
            ahead = window.ahead
            last = self._joined
            self._joined = None
            if (
                last[2]
                if last is not None and last[0] is records and last[1] == joined
                else any(
                    get(r.customer_callback_id) is not None or r.customer_callback_id in ahead
                    for r in tail
                )
            ):
                new = [
                    r
                    for r in tail
                    if get(r.customer_callback_id) is None and r.customer_callback_id not in ahead
                ]
                for r in tail:
                    ahead.pop(r.customer_callback_id, None)
        if self._max_items is not None:
            room = self._max_items - self._yielded
            if len(new) >= room:
                self._done = True
                self._cancel_flights()
                if len(new) > room:
                    new = new[:room]
                    tail = tail[: tail.index(new[-1]) + 1] if new else []
        end = start + len(tail)
        self._frontier = offset + end - 1
        self._frontier_id = records[end - 1].customer_callback_id if end > 0 else None
        self._anchored = True
        if tail:
            window.add(tuple(tail))
        if not new:
            if not tail:
                self._stalls += 1
                if self._stalls > MAX_BRIDGES:
                    self._stalls = 0
                    self._inconsistent(
                        f"the walk makes no progress at offset {offset}: pages keep joining "
                        "without bringing a new callback",
                        offset,
                        "no_join",
                    )
            return
        self._stalls = 0
        kept = tuple(new)
        self._yielded += len(kept)
        first = offset + start if kept[0] is tail[0] else offset + start + tail.index(kept[0])
        cursor = Cursor(
            offset=offset + end,
            anchors=window.last(16),
            ahead=tuple(window.ahead.items())[-16:] if window.ahead else (),
            scope=self._scope,
            whole=window.whole,
        )
        self._ready.append(Page(items=kept, offset=first, next_offset=offset + end, cursor=cursor))

    def _replan(self) -> None:
        """Drop the planned requests (those in flight finish, ignored); plan from the frontier."""
        self._flights.clear()
        self._outstanding = 0
        self._plan_offset = self._frontier + 1

    async def _bridge(self, head: _Flight, *, short: bool) -> bool:
        """Re-read around a page that does not join until a re-read does; False: walk stopped."""
        limit = self._page_size
        step = max(1, limit - max(1, self._overlap))
        tried: set[int] = set()
        for n in range(1, MAX_BRIDGES + 1):
            distance = ((n + 1) // 2) * step
            backwards = short or n % 2 == 1
            offset = max(0, head.offset - distance) if backwards else head.offset + distance
            if offset in tried:
                if backwards and offset == 0 and short:
                    break
                continue
            tried.add(offset)
            records = await self._fetch(offset, limit)
            if offset == 0 and not records:
                # the list is empty now: nothing present throughout is left to yield
                self._done = True
                self._flights.clear()
                self._outstanding = 0
                return False
            joined = self._join(records, offset)
            if joined is None:
                continue
            self._observe(_Flight(offset, limit, 1), joined)
            self._accept(records, offset, joined)
            if len(records) < limit:
                # the re-read reaches the list's end: nothing further to join
                self._done = True
                self._flights.clear()
                self._outstanding = 0
                return False
            return True
        text = (
            f"the page at offset {head.offset} does not join the walk: none of the last "
            f"callbacks it yielded is listed there nor within {MAX_BRIDGES} re-reads around it "
            "(the list changed by more than that since, or those callbacks were deleted)"
        )
        self._inconsistent(text, head.offset, "no_join")
        self._accept(head.records, head.offset, -1)  # warned: taken as it comes
        if short:
            self._done = True
        return False


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
