"""The walk's driver: runs a :class:`~._planner.WalkPlanner` with prefetch, in every form.

What to request and what an answer means is the planner's job (``_planner``,
no I/O). This module only sends what it is told, up to ``prefetch`` requests
at a time, and hands the answers back in the order they were planned.

Where the requests run:

- under ``async with it:``, in a task group of that block: leaving it
  cancels them;
- under a plain ``async for`` on asyncio, in tasks this walk owns: breaking
  out drops the iterator, which cancels them at once (so do ``aclose()`` and
  the client's ``async with`` ending);
- otherwise (trio without ``async with it:``) in waves: the planned
  requests run together inside one ``__anext__`` call, and nothing runs
  while the loop body does.

No task outlives the block or the walk that owns it, and exceptions leave as
themselves, never wrapped in an ``ExceptionGroup``.
"""

from __future__ import annotations

import logging
import operator
import warnings
import weakref
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import anyio
import anyio.lowlevel
import sniffio
from anyio.abc import TaskGroup

from . import _tracing
from ._checks import check_choice, check_int
from ._compat import BaseExceptionGroup
from ._models import Cursor, CustomerCallback, Page
from ._planner import MIN_DATE, PageRequest, WalkPlanner
from ._protocol import MAX_LIMIT

__all__ = [
    "WIRE_STEPS",
    "Answered",
    "CallbackIterator",
    "OnInconsistency",
    "PageFetcher",
    "PageRequest",
    "walk_scope",
]

#: Awaited by a fetcher once the answer is in, before decoding it, with whether it
#: seems a full page: the walk may then send its next request meanwhile (the
#: request's place in ``prefetch`` is free either way).
Answered = Callable[[bool], Awaitable[None]]
#: fetch(request, answered) -> the records of that page (the request's dates narrow the
#: filter). A fetcher that never awaits ``answered`` holds its place until it returns.
PageFetcher = Callable[[PageRequest, Answered], Awaitable[list[CustomerCallback]]]

#: Checkpoints a flight lets pass after starting the walk's next request, before it
#: decodes its own answer: enough for the new request to reach the socket first
#: (httpx's pool and connection take two anyio checkpoints before they write;
#: tests/test_paging_overlap.py holds it), so decoding overlaps the server's work.
WIRE_STEPS = 3
#: What a walk does with the one case no strategy can page through (see _planner).
OnInconsistency = Literal["raise", "warn"]

logger = logging.getLogger("ameyo_callbacks")


def walk_scope(campaign_id: int | None, params: Iterable[tuple[str, str]]) -> str:
    """8 hex digits naming what a walk lists (its checkpoints must resume the same list)."""
    text = f"{campaign_id}|" + "&".join(f"{k}={v}" for k, v in params)
    return format(zlib.crc32(text.encode()), "08x")


class _Flight:
    """One request of a walk, and its answer once it lands.

    ``answered``: its answer is in (being decoded) or it ended; it no longer
    counts against ``prefetch``.
    """

    __slots__ = (
        "answered",
        "done",
        "error",
        "on_answer",
        "op",
        "records",
        "request",
        "scope",
        "started",
        "task",
    )

    def __init__(
        self,
        request: PageRequest,
        op: _tracing.Operation | None,
        on_answer: weakref.WeakMethod[Callable[[], int]],
    ) -> None:
        self.request = request
        self.op = op  # the walk's span, current while the request runs
        # starts the walk's next requests (how many); weak, so that the walk's own
        # requests never keep a dropped walk alive (a break must cancel them at once)
        self.on_answer = on_answer
        self.records: list[CustomerCallback] = []
        self.error: BaseException | None = None
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()
        self.started = False
        self.answered = False
        self.task: Any = None  # the asyncio task of a plain ``async for``

    async def run(self, fetch: PageFetcher) -> None:
        try:
            with self.scope, _tracing.current(self.op):
                try:
                    self.records = await fetch(self.request, self._answered)
                except anyio.get_cancelled_exc_class():
                    raise
                except BaseException as exc:  # noqa: BLE001  (kept for the walk, raised in order)
                    self.error = exc
        finally:
            self.answered = True
            self.done.set()

    async def _answered(self, full: bool) -> None:
        """The answer is in; if full, start the next requests and let them reach the wire first.

        (A page that is not full most likely ends the walk: nothing is sent
        on a guess then.)
        """
        self.answered = True
        launch = self.on_answer() if full else None
        started = launch() if launch is not None else 0
        del launch  # (not held across the yields: a break drops the walk at once)
        if started:
            for _ in range(WIRE_STEPS):
                await anyio.lowlevel.checkpoint()

    def ended(self, _task: object) -> None:
        """Its asyncio task ended: done, even if the task was cancelled before it ran."""
        self.answered = True
        self.done.set()

    def cancel(self) -> None:
        self.scope.cancel()
        if self.task is not None:
            self.task.cancel()


def _plan(
    *,
    page_size: int,
    start_offset: int,
    max_items: int | None,
    resume_from: str | None,
    on_inconsistency: OnInconsistency,
    scope: str,
    from_date: int | None,
    to_date: int | None,
) -> WalkPlanner:
    """The planner of a walk, its arguments checked (before any request)."""
    check_int("page_size", page_size, minimum=1, maximum=MAX_LIMIT)
    start = check_int("start_offset", start_offset, minimum=0)
    if max_items is not None:
        check_int("max_items", max_items, minimum=0)
    check_choice("on_inconsistency", on_inconsistency, ("raise", "warn"))
    for name, value in (("from_date", from_date), ("to_date", to_date)):
        if value is not None:
            check_int(name, value, minimum=MIN_DATE)
    cursor = None
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
        start = cursor.offset if cursor.date is None else 0
    return WalkPlanner(
        page_size=page_size,
        from_date=from_date,
        to_date=to_date,
        start_offset=start,
        max_items=max_items,
        strict=on_inconsistency == "raise",
        resume=cursor,
        scope=scope,
    )


class CallbackIterator:
    """Every callback of a filtered list, exactly once even while it changes; ``async for`` it.

    Also ``async with client.iter_callbacks(...) as it: async for cb in it``
    (its requests live in that block), and ``it.pages()`` yields
    :class:`Page` records instead (one or the other on one iterator).

    - Pages of ``page_size`` (1..100) from the start, from ``start_offset``
      (a raw offset, taken as it comes) or from ``resume_from`` (a
      ``Page.checkpoint``: exactly after that page, even on a changed list).
    - The contract, on any server order: every callback present from the
      walk's first request to its last is yielded exactly once, whatever
      the caller deletes or reschedules meanwhile; one added or removed
      during the walk at most once. The strategies and what they cost are
      in the ``_planner`` module docstring and the live-lists guide.
    - ``prefetch`` (>= 1) requests are out at most. A full page stops
      counting once its answer is in (the next request runs while it is
      decoded; two answered pages at most wait beside them). Requests after
      a failed page are cancelled, and its error is raised after the pages
      before it.
    - ``max_items`` caps the total number of records yielded.
    - ``on_inconsistency``: what to do with more than a page of callbacks
      added in one millisecond and listed in a new order each time (no
      request can page through them): ``"raise"`` (default)
      :class:`ConsistencyError`, ``"warn"`` a ``RuntimeWarning`` once, and
      the walk goes on after that millisecond.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_cut",
        "_dropped",
        "_ended",
        "_fetch",
        "_flights",
        "_group",
        "_mode",
        "_on_answer_ref",
        "_op",
        "_planner",
        "_prefetch",
        "_rest",
        "_span_attributes",
        "_tasks",
        "_unwinding",
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
        from_date: int | None = None,
        to_date: int | None = None,
        span_attributes: Mapping[str, _tracing.Value | None] | None = None,
    ) -> None:
        self._prefetch = check_int("prefetch", prefetch, minimum=1)
        self._planner = _plan(
            page_size=page_size,
            start_offset=start_offset,
            max_items=max_items,
            resume_from=resume_from,
            on_inconsistency=on_inconsistency,
            scope=scope,
            from_date=from_date,
            to_date=to_date,
        )
        self._fetch = fetch
        self._flights: deque[_Flight] = deque()
        self._group: TaskGroup | None = None
        self._tasks = sniffio.current_async_library() == "asyncio"
        self._closed = False
        self._ended = False  # every page handed out: the walk is complete
        self._on_answer_ref = weakref.WeakMethod(self._on_answer)  # (see _Flight)
        self._cut: str | None = None  # why its client stopped it before its end
        self._rest: Iterator[CustomerCallback] = iter(())  # the page being iterated
        self._mode: str | None = None
        # The walk's span (``_tracing``): begun with its first request, ended with the walk.
        self._span_attributes = {
            **(span_attributes or {}),
            "ameyo.page_size": page_size,
            "ameyo.prefetch": prefetch,
        }
        self._op: _tracing.Operation | None = None
        self._dropped: set[Any] = set()  # asyncio tasks of stale requests, cancelled
        # Stale requests cancelled and not yet ended: they count against prefetch
        # until they end (a cancel lands at the request's next step).
        self._unwinding: list[_Flight] = []
        self._yielded = 0  # records of the pages handed out (for the span)

    @property
    def strategy(self) -> str:
        """What the walk does now: ``"ordered"``, ``"probe"``, ``"windows"`` or ``"bucket"``."""
        return self._planner.strategy

    def forget(self, callback_id: str) -> None:
        """Tell the walk its caller deleted a callback (the client does it for its own deletes)."""
        self._planner.forget(callback_id)

    # -- records and pages -------------------------------------------------

    def __aiter__(self) -> CallbackIterator:
        self._claim("records")
        return self

    async def __anext__(self) -> CustomerCallback:
        for item in self._rest:  # (one record: a tuple's iterator at C speed)
            return item
        while True:
            self._rest = iter((await self._next_page()).items)
            for item in self._rest:
                return item

    def pages(self) -> _PageIterator:
        """Iterate :class:`Page` records: ``items``, ``offset``, ``next_offset``, ``checkpoint``."""
        self._claim("pages")
        return _PageIterator(self)

    def _claim(self, mode: str) -> None:
        if self._mode not in (None, mode):
            msg = "iterate either the records or .pages() of one iterator, not both"
            raise RuntimeError(msg)
        self._mode = mode

    # -- life cycle --------------------------------------------------------

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
            # Requests keep their errors for the walk: the group has nothing to
            # report but a KeyboardInterrupt or a bug; let it out as itself.
            try:
                await group.__aexit__(None, None, None)
            except BaseExceptionGroup as group_error:
                raise _sole(group_error) from None

    async def aclose(self) -> None:
        """Stop the walk: requests still out are cancelled (and waited for), pages dropped."""
        tasks = self.cancel()
        if tasks:
            import asyncio  # noqa: PLC0415  (tasks exist on asyncio only)

            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)

    def client_closed(self) -> None:
        """Its client was closed: an unfinished walk raises from now on, never ends as if complete.

        (Its requests are stopped by :meth:`aclose`, which the client awaits next.)
        """
        if not self._ended:
            self._cut = (
                "the AmeyoCallbacksClient of this walk was closed before the walk ended "
                f"(records yielded: {self._yielded - operator.length_hint(self._rest):,}): iterate "
                "inside its `async with` block; to go on from the last page, pass its "
                "checkpoint as resume_from to a walk of an open client"
            )

    def cancel(self) -> set[Any]:
        """Stop the walk now, from synchronous code too; the asyncio tasks cancelled."""
        self._closed = True
        self._end_span(stopped=True)
        self._rest = iter(())
        self._planner.pages.clear()
        tasks = {task for task in self._dropped if not task.done()}
        self._dropped.clear()
        self._unwinding.clear()
        for flight in self._flights:
            flight.cancel()
            if flight.task is not None:
                tasks.add(flight.task)
        self._flights.clear()
        return tasks

    def __del__(self) -> None:
        # A ``break`` out of a plain ``async for`` drops the iterator: stop its requests.
        for flight in getattr(self, "_flights", ()):
            task = flight.task
            if task is not None and not task.done() and not task.get_loop().is_closed():
                task.cancel()
        if getattr(self, "_op", None) is not None:
            self._end_span(stopped=True)

    def _end_span(self, *, stopped: bool = False, error: Exception | None = None) -> None:
        """End the walk's span (once) with its figures: records, pages, strategy."""
        op, self._op = self._op, None
        if op is None:
            return
        planner = self._planner
        op.set(
            {
                "ameyo.records": self._yielded - operator.length_hint(self._rest),
                "ameyo.walk.strategy": planner.strategy,
                "ameyo.walk.stopped_early": stopped or None,
            }
        )
        op.end(error)

    # -- the walk ----------------------------------------------------------

    async def _next_page(self) -> Page:
        planner = self._planner
        while True:
            self._say()
            if self._closed:
                if self._cut is not None:
                    raise RuntimeError(self._cut)
                raise StopAsyncIteration
            if planner.pages:
                page = planner.pages.popleft()
                self._yielded += len(page.items)
                if self._op is not None:
                    self._op.pages += 1
                self._launch()  # the next requests run while the loop body does
                return page
            self._launch()
            if not self._flights and not planner.done and self._still_unwinding():
                # Nothing started: the requests being cancelled still count until
                # they have ended (usually at their next step).
                try:
                    await self._unwinding[0].done.wait()
                except BaseException:
                    await self.aclose()
                    raise
                continue
            if not self._flights:
                self._ended = True
                self._end_span()
                raise StopAsyncIteration
            head = self._flights[0]
            try:
                if not head.started:
                    await self._run_wave()
                await head.done.wait()
            except BaseException:  # cancelled while waiting: stop the walk's requests now
                await self.aclose()
                raise
            if self._closed:
                continue
            self._flights.popleft()
            if head.error is not None:
                planner.drop(head.request)
                self._fail(head.error)
                raise head.error
            try:
                planner.take(head.request, head.records)
            except BaseException as exc:
                self._fail(exc)
                raise
            self._drop_stale()

    def _fail(self, error: BaseException) -> None:
        """The walk ends on ``error``: its span says so, its requests are cancelled."""
        self._end_span(error=error if isinstance(error, Exception) else None)
        self.cancel()

    def _say(self) -> None:
        notes = self._planner.notes
        while notes:
            text, warn = notes.pop(0)
            if self._op is not None:
                self._op.event("ameyo.walk.strategy", {"ameyo.reason": text})
            if warn:
                warnings.warn(text, RuntimeWarning, stacklevel=4)
            else:
                logger.warning("iter_callbacks: %s", text)

    def _spawner(self) -> Callable[[_Flight], None] | None:
        group = self._group
        fetch = self._fetch
        if group is not None:

            def start(flight: _Flight) -> None:
                group.start_soon(flight.run, fetch)

            return start
        if self._tasks:
            import asyncio  # noqa: PLC0415  (only on asyncio)

            def spawn(flight: _Flight) -> None:
                task = asyncio.get_running_loop().create_task(flight.run(fetch))
                task.add_done_callback(flight.ended)
                flight.task = task

            return spawn
        return None

    def _launch(self, beside: int = 0) -> int:
        """Plan requests up to ``prefetch`` out, and start them (in waves: plan only).

        ``beside``: answered pages that may wait for the walk beside ``prefetch``
        requests out: 2 when a full page's answer is in (that page, being
        decoded, and one decoded that the walk has not taken yet), so that
        the next request runs meanwhile. Memory stays bounded: ``prefetch``
        + 2 pages at most. Returns how many requests started.
        """
        planner, flights = self._planner, self._flights
        spawn = self._spawner()
        if spawn is None and any(not f.started for f in flights):
            return 0
        started = 0
        prefetch = self._prefetch
        out = sum(not f.answered for f in flights)
        if self._unwinding:
            out += len(self._still_unwinding())
        while not self._closed and out < prefetch and len(flights) < prefetch + beside:
            request = planner.next_request()
            if request is None:
                break
            if self._op is None and planner.requests == 1:
                self._op = _tracing.begin("ameyo.iter_callbacks", self._span_attributes)
            flight = _Flight(request, self._op, self._on_answer_ref)
            flights.append(flight)
            out += 1
            if spawn is not None:
                flight.started = True
                started += 1
                spawn(flight)
        return started

    def _on_answer(self) -> int:
        """A full page's answer is in: start the next (tasks only; waves wait for theirs).

        Only when the planner can plan it as well now as after reading this
        page (``WalkPlanner.plans_ahead_freely``: ordered pages without ties).
        """
        if self._closed or (self._group is None and not self._tasks):
            return 0
        if not self._planner.plans_ahead_freely():
            return 0
        return self._launch(beside=2)

    async def _run_wave(self) -> None:
        """Waves: run every planned request at once, here."""
        wave = [flight for flight in self._flights if not flight.started]
        for flight in wave:
            flight.started = True
        if len(wave) == 1:
            await wave[0].run(self._fetch)
            return
        try:
            async with anyio.create_task_group() as group:
                for flight in wave:
                    group.start_soon(flight.run, self._fetch)
        except BaseExceptionGroup as group_error:
            raise _sole(group_error) from None

    def _still_unwinding(self) -> list[_Flight]:
        """The stale requests cancelled that have not ended yet."""
        self._unwinding = live = [f for f in self._unwinding if not f.answered]
        return live

    def _drop_stale(self) -> None:
        planner = self._planner
        for flight in [f for f in self._flights if planner.stale(f.request)]:
            flight.cancel()
            if flight.started and not flight.answered:
                self._unwinding.append(flight)
            if flight.task is not None and not flight.task.done():
                self._dropped.add(flight.task)  # aclose waits for it
                flight.task.add_done_callback(self._dropped.discard)
            self._flights.remove(flight)
            planner.drop(flight.request)


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
