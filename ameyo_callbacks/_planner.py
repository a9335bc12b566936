"""The walk's planner: which list request comes next, and what each answer means. No I/O.

A :class:`WalkPlanner` is a plain object (no event loop, no task, no clock):
:meth:`~WalkPlanner.next_request` says which page to ask for next (offset,
limit, ``fromDateAdded``/``toDateAdded``), :meth:`~WalkPlanner.take` reads
an answer, and :attr:`~WalkPlanner.pages` holds what the caller gets, in
order. The async driver in ``_paging`` only sends what it is told to.

The list API pages by offset and has no cursor, and the spec promises no
order. What never changes is a callback's ``dateAdded``, and the API can
select by it. So the planner keeps one *frontier*: every callback added
before the date ``D`` is done, and so are the ids ``S`` added at ``D``
itself (only those: a set as big as one millisecond's callbacks, never a
set of every id yielded). Three strategies move it:

- **Ordered** (the fast path). While every answer is sorted by
  ``dateAdded`` (ties in any order), offset pages are prefetched over the
  list narrowed to ``fromDateAdded=B`` (B <= D). A page is a slice of that
  sorted list, so when it starts before ``D`` (or at offset 0) it holds every
  callback of ``D`` and after, up to its last date: the new ones are those
  after ``D``, or at ``D`` and not in ``S``. Pages re-read a few records of
  the one before (one more than the largest tie seen at a page's end). A
  page that starts past ``D`` (deletes moved the list more than that)
  proves nothing: the planner *seeks* instead (``fromDateAdded=D``, offset
  0), which deletes behind the walk cannot move. Once the walk's own
  caller deletes (``forget``), every page is such a seek: it costs what a
  still walk costs.
- **Windows** (any order). An answer that is not sorted by ``dateAdded``
  switches the walk: it counts what is left (a few probes at doubling
  offsets) and lists date windows ``[a, b)`` sized from the dates it saw to
  hold about half a page. A window whose answer is short is complete,
  whatever the order; a full one is split at the dates it showed. The
  window asks for ``toDateAdded=b`` and keeps only dates before ``b``, so
  it is exact whether the server's ``toDateAdded`` is inclusive or not, and
  a callback on an edge belongs to one window only.
- **Bucket** (one millisecond holding more than a page). Offset pages over
  that millisecond, each re-reading the last record of the one before in
  place; that needs the server to list those ties in a stable order. If it
  does not, no strategy can page through them: :class:`ConsistencyError`
  (``reason="ties_unstable"``) or, with ``on_inconsistency="warn"``, a
  warning and the walk goes on after that millisecond.

Exactness: every callback present from the first request to the last has a
fixed date and lies after the frontier until an answer that covers its date
completely yields it; reschedules and deletes change no date. One added or
removed meanwhile comes out at most once. Switching strategies keeps the
frontier, so nothing is yielded twice across a switch.

Bounds (requests, against the same walk over a still stable list): ordered
pages cost the same plus one seek per page that deletes moved (and the
pages prefetched with it); windows about twice the pages plus the probes
(``2 log2(n / page_size)``). :data:`notes` says once why a walk switched.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Sequence
from typing import Literal

import attrs

from ._convert import datetime_to_epoch_ms
from ._models import Cursor, CustomerCallback, Page
from .exceptions import ConsistencyError

__all__ = ["MIN_DATE", "PageRequest", "WalkPlanner"]

#: 0001-01-01T00:00:00Z in epoch ms: below every dateAdded a datetime can show.
MIN_DATE = -62135596800000
#: A window aims at this share of a page (its count is an estimate).
_WINDOW_FILL = 0.5
#: Dates kept to size windows (a sample; memory stays flat).
_SAMPLE_LIMIT = 4096
#: Page ends remembered to size the overlap (the largest tie among them).
_TIE_MEMORY = 16
#: Records an ordered walk yields before it trusts the server's order (until
#: then it keeps their ids, to start over exactly in windows if it must).
_TRUST = 4096

Kind = Literal["page", "probe", "window", "bucket"]


@attrs.frozen
class PageRequest:
    """One list request: ``offset``/``limit`` over the filter narrowed to these added dates.

    ``from_date``/``to_date`` are the ``fromDateAdded``/``toDateAdded`` to
    send (epoch ms; None: none); the caller's own bounds are already in them.
    """

    offset: int
    limit: int
    from_date: int | None
    to_date: int | None
    kind: Kind = attrs.field(default="page", eq=False)
    epoch: int = attrs.field(default=0, eq=False)
    #: ordered pages: the fromDateAdded of the list the offset counts in.
    base: int = attrs.field(default=MIN_DATE, eq=False)
    #: windows: keep only dates before this (None: keep all).
    below: int | None = attrs.field(default=None, eq=False)
    #: a raw start_offset: the answer is taken as it comes.
    raw: bool = attrs.field(default=False, eq=False)
    #: ordered pages: the new records planned from it (limit minus the re-read).
    new: int = attrs.field(default=0, eq=False)


@attrs.define
class _Window:
    start: int
    end: int | None  # exclusive; None: up to the caller's bound
    points: int = 0  # sample dates in it when planned (sizes later windows)
    sent: bool = False
    records: list[CustomerCallback] | None = None
    bucket: bool = False  # more than a page in one millisecond


def _ms(record: CustomerCallback) -> int:
    return datetime_to_epoch_ms(record.date_added)


def _sorted(dates: Sequence[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(dates))


class _Frontier:
    """Everything added before ``date`` is done, the ids ``ids`` added at ``date``, and ``skip``.

    ``skip`` holds the ids an ordered walk yielded before the server showed it
    does not list by dateAdded after all (at most ``_TRUST`` of them): a
    walk that starts over in windows leaves them out.
    """

    __slots__ = ("date", "ids", "skip")

    def __init__(self, date: int, ids: set[str]) -> None:
        self.date = date
        self.ids = ids
        self.skip: set[str] = set()

    def new(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> list[int]:
        """Indexes of the records past the frontier."""
        d, done, skip = self.date, self.ids, self.skip
        return [
            i
            for i, (r, m) in enumerate(zip(records, dates, strict=True))
            if (m > d or (m == d and r.customer_callback_id not in done))
            and r.customer_callback_id not in skip
        ]

    def advance(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> None:
        """Mark ``records`` (sorted by date, all past the frontier) done."""
        if not records:
            return
        last = max(dates)
        at_last = {r.customer_callback_id for r, m in zip(records, dates, strict=True) if m == last}
        if last == self.date:
            self.ids |= at_last
        elif last > self.date:
            self.date, self.ids = last, at_last

    def close_through(self, date: int) -> None:
        """Every date up to ``date`` (inclusive) is done."""
        if date + 1 > self.date:
            self.date, self.ids = date + 1, set()


class WalkPlanner:
    """Plans the requests of one walk and reads their answers; see the module docstring.

    Give answers in the order the requests were planned; a request that
    :meth:`stale` calls stale may be cancelled and :meth:`drop`-ped instead.
    Pages to yield collect in :attr:`pages`; :attr:`notes` holds what the
    driver should say (``(text, warn)``: ``warn`` for a guarantee given up).
    """

    __slots__ = (
        "_base",
        "_bucket",
        "_deleting",
        "_ending",
        "_epoch",
        "_first",
        "_front",
        "_hi",
        "_inclusive",
        "_max_items",
        "_mode",
        "_origin",
        "_plan_pos",
        "_points",
        "_position",
        "_probe",
        "_promised",
        "_sample",
        "_seeking",
        "_stalls",
        "_strict",
        "_ties",
        "_trial",
        "_weight",
        "_windows",
        "_yielded",
        "done",
        "notes",
        "outstanding",
        "page_size",
        "pages",
        "requests",
        "scope",
    )

    def __init__(
        self,
        *,
        page_size: int,
        from_date: int | None = None,
        to_date: int | None = None,
        start_offset: int = 0,
        max_items: int | None = None,
        strict: bool = True,
        resume: Cursor | None = None,
        scope: str = "",
    ) -> None:
        self.page_size = page_size
        self._hi = to_date
        self._max_items = max_items
        self._strict = strict
        self.scope = scope
        lo = MIN_DATE if from_date is None else from_date
        self._front = _Frontier(lo, set())
        self._position = start_offset  # Page.offset of the next record yielded
        if resume is not None and resume.date is not None:
            self._front = _Frontier(max(lo, resume.date), set(resume.ids))
            self._position = resume.offset
        self._mode: Literal["ordered", "probe", "windows", "bucket"] = "ordered"
        self._epoch = 0  # bumped when the strategy changes: requests of an older one are stale
        # ordered: offsets count in the list narrowed to fromDateAdded=_base
        self._base = self._front.date
        self._first = True
        self._plan_pos = start_offset  # where the next planned page's new records start; -1: seek
        self._seeking = False  # a seek is out: plan nothing more until it is answered
        self._ending = 0  # the size of a short page that brought records: an empty one ends it
        self._deleting = False  # the caller deletes: seek every page, one at a time
        self._ties: deque[int] = deque(maxlen=_TIE_MEMORY)
        # ids yielded while the order is on trial (None: trusted, or not ordered)
        self._trial: set[str] | None = set()
        self._origin = self._front.date
        self._promised = 0  # new records the ordered pages out were planned to bring
        # probes and windows
        self._sample: dict[str, int] = {}
        self._points: list[int] = []
        self._probe = [0, -1]  # records known to exist (offset), offset seen empty (-1: none)
        self._weight = 1.0  # records per sample date
        self._windows: deque[_Window] = deque()
        self._inclusive = False  # the server's toDateAdded was seen to include its date
        # bucket: (date, next offset, id of the last record read, mode to return to)
        self._bucket: tuple[int, int, str | None, str] = (0, 0, None, "ordered")
        self._stalls = 0  # bucket pages in a row that brought nothing
        self._yielded = 0
        self.outstanding = 0
        self.requests = 0
        self.pages: deque[Page] = deque()
        self.notes: list[tuple[str, bool]] = []
        self.done = max_items == 0

    @property
    def strategy(self) -> str:
        """``"ordered"``, ``"probe"``, ``"windows"`` or ``"bucket"``: what the walk does now."""
        return self._mode

    # -- what to ask -----------------------------------------------------

    def stale(self, request: PageRequest) -> bool:
        """Whether an answer to ``request`` would be ignored: cancel it and :meth:`drop` it."""
        return self.done or request.epoch != self._epoch

    def drop(self, request: PageRequest) -> None:
        """``request`` will not be answered (stale, or its walk stopped)."""
        self.outstanding -= 1
        self._promised -= request.new
        if request.kind == "page" and request.offset == 0 and request.base == self._base:
            self._seeking = False

    def next_request(self) -> PageRequest | None:
        """The next request to send, or None: wait for an answer (or the walk is done)."""
        if self._hi is not None and self._front.date > self._hi:
            self.done = True  # every date the caller asked for is done
        if self.done or self._room() <= 0:
            return None
        if self._mode == "ordered":
            request = self._next_ordered()
        elif self._mode == "probe":
            request = self._next_probe()
        elif self._mode == "windows":
            request = self._next_window()
        else:
            request = self._next_bucket()
        if request is not None:
            self.outstanding += 1
            self.requests += 1
        return request

    def _room(self) -> int:
        return (1 << 62) if self._max_items is None else self._max_items - self._yielded

    def _request(
        self,
        kind: Kind,
        offset: int,
        frm: int,
        to: int | None,
        *,
        below: int | None = None,
        limit: int | None = None,
    ) -> PageRequest:
        return PageRequest(
            offset,
            self.page_size if limit is None else limit,
            None if frm == MIN_DATE else frm,
            to,
            kind=kind,
            epoch=self._epoch,
            base=frm,
            below=below,
        )

    def _next_ordered(self) -> PageRequest | None:
        if self._seeking or (self._deleting and self.outstanding):
            return None
        room = self._room() - self._promised  # records the requests out do not bring
        if room <= 0:
            return None
        raw = self._first and self._plan_pos > 0
        if self._first:
            self._first = False
            offset, overlap = self._plan_pos, 0
        elif self._deleting or self._plan_pos < 0:
            self._seeking = True
            self._base, self._plan_pos = self._front.date, -1
            offset, overlap = 0, len(self._front.ids)
        else:
            # Re-read one more than the ties at a page's end: exactly those of the
            # frontier when nothing is out, else the most seen lately.
            ties = len(self._front.ids) if not self.outstanding else max(self._ties, default=1)
            overlap = min(self._plan_pos, max(1, min(self.page_size // 2, ties + 1)))
            offset = self._plan_pos - overlap
        limit = min(self.page_size, room + overlap)
        if self._plan_pos >= 0:
            self._plan_pos = offset + limit
        self._promised += limit - overlap
        request = self._request("page", offset, self._base, self._hi, limit=limit)
        return attrs.evolve(request, new=limit - overlap, raw=raw)

    def _next_probe(self) -> PageRequest | None:
        if self.outstanding:
            return None
        known, empty = self._probe
        size = self.page_size
        offset = known if known <= size else 2 * known - size
        if empty >= 0:
            offset = (known + empty) // 2
        return self._request("probe", offset, self._front.date, self._hi)

    def _next_window(self) -> PageRequest | None:
        windows = self._windows
        if windows and windows[0].bucket:
            if self.outstanding:
                return None
            self._start_bucket(windows[0].start, "windows")
            self._epoch -= 1  # (nothing else is out: no request goes stale)
            return self._next_bucket()
        for window in windows:
            if not window.sent and not window.bucket:
                return self._window_request(window)
        start = windows[-1].end if windows else self._front.date
        if start is None:
            return None  # the last window is planned: wait for it
        window = self._plan_window(start)
        windows.append(window)
        return self._window_request(window)

    def _plan_window(self, start: int) -> _Window:
        """A window from ``start`` holding about half a page, by the sample's dates."""
        points = self._points
        i = bisect.bisect_left(points, start)
        k = max(1, round(_WINDOW_FILL * self.page_size / self._weight))
        if i + k >= len(points):
            return _Window(start, None, len(points) - i)
        end = points[i + k]
        if end == start:
            j = bisect.bisect_right(points, start)
            if j >= len(points):
                return _Window(start, None, len(points) - i)
            end = points[j]
        if self._hi is not None and end > self._hi:
            return _Window(start, None, len(points) - i)
        return _Window(start, end, bisect.bisect_left(points, end) - i)

    def _window_request(self, window: _Window) -> PageRequest:
        window.sent = True
        return self._request("window", 0, window.start, self._to(window.end), below=window.end)

    def _to(self, end: int | None) -> int | None:
        """The toDateAdded that selects dates before ``end`` (None: the caller's bound)."""
        if end is None:
            return self._hi
        return end - 1 if self._inclusive else end

    def _next_bucket(self) -> PageRequest | None:
        if self.outstanding:
            return None
        date, offset, _last, _back = self._bucket
        return self._request("bucket", offset, date, self._to(date + 1), below=date + 1)

    # -- what an answer means ---------------------------------------------

    def take(self, request: PageRequest, records: Sequence[CustomerCallback]) -> None:
        """Read the answer to ``request`` (in planned order): queue pages, move the frontier."""
        self.outstanding -= 1
        self._promised -= request.new
        if self.stale(request):
            return
        dates = [_ms(r) for r in records]
        if request.kind == "page":
            self._take_ordered(request, records, dates)
        elif request.kind == "probe":
            self._take_probe(request, records, dates)
        elif request.kind == "window":
            self._take_window(request, records, dates)
        else:
            self._take_bucket(request, records, dates)

    def forget(self, callback_id: str) -> None:
        """The walk's own caller deleted this callback: seek from now on (deletes move offsets).

        The id stays in the frontier's set: an answer already out may list it.
        """
        self._deleting = True

    def cursor(self) -> Cursor:
        """Where the walk stands now (what ``Page.checkpoint`` carries)."""
        front = self._front
        return Cursor(
            offset=self._position, date=front.date, ids=tuple(sorted(front.ids)), scope=self.scope
        )

    def _emit(self, records: Sequence[CustomerCallback]) -> None:
        """Queue ``records`` as a page (trimmed to ``max_items``)."""
        room = self._room()
        items = tuple(records[:room])
        if len(items) >= room:
            self.done = True
        if not items:
            return
        self._yielded += len(items)
        first = self._position
        self._position += len(items)
        page = Page(items=items, offset=first, next_offset=self._position, cursor=self.cursor())
        self.pages.append(page)

    def _advance(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> int:
        """Yield the records past the frontier (sorted by date) and move it; how many."""
        front = self._front
        new = front.new(records, dates)
        kept = [records[i] for i in new]
        front.advance(kept, [dates[i] for i in new])
        self._emit(kept)
        trial = self._trial
        if trial is not None and self._mode == "ordered":
            trial.update(r.customer_callback_id for r in kept)
            if len(trial) > _TRUST:
                self._trial = None  # that many in order: trusted (memory stays flat)
        return len(kept)

    def _take_ordered(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        current = request.base == self._base
        is_seek = current and request.offset == 0 and self._seeking
        if is_seek:
            self._seeking = False
        forced = request.raw
        if not _sorted(dates):
            if forced:
                self._inconsistent(
                    "start_offset needs a server that lists callbacks by dateAdded, and this one "
                    f"does not (the page at offset {request.offset} is not sorted by it): start "
                    "from the beginning, or resume_from a checkpoint",
                    request.offset,
                    "unordered_offset",
                    fatal=True,
                )
            self._unordered(request, records, dates)
            return
        front = self._front
        if (
            self._trial is not None
            and not self._trial
            and len(records) >= max(2, request.limit)
            and dates[0] == dates[-1]
        ):
            # A full first page all added in one millisecond shows no order to go by.
            self._unordered(request, records, dates)
            return
        if not records:
            if request.offset == 0 or (self._ending and current):
                self.done = True
            elif current and not self._seeking:
                self._plan_pos = -1
            return
        if self._ending and current and request.offset > 0:
            # More after a short page: the server serves fewer records than
            # asked. Go on at the size it serves.
            self.page_size, self._ending = self._ending, 0
        full = len(records) >= min(request.limit, self.page_size)
        if not (forced or request.offset == 0 or dates[0] < front.date) or (
            full and dates[-1] < front.date
        ):
            # Starts past the frontier (deletes moved the list) or ends before it: seek.
            if current and not self._seeking:
                self._plan_pos = -1
            return
        brought = self._advance(records, dates)
        self._ties.append(dates.count(dates[-1]))
        if is_seek:
            self._plan_pos = len(records)
        if self.done:
            return
        if not full:
            # The end, unless a page already out shows more (a server that
            # serves fewer records than asked: the walk goes on at its size).
            if not brought or not self.outstanding:
                self.done = True
            self._ending = len(records)
        elif request.offset == 0 and dates[0] == dates[-1] == front.date:
            self._start_bucket(front.date, "ordered")

    def _take_probe(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        self._add_sample(records, dates)
        known, empty = self._probe
        n = len(records)
        if n >= request.limit:
            known = max(known, request.offset + n)
        elif n:
            known = empty = request.offset + n
        else:
            empty = request.offset if empty < 0 else min(empty, request.offset)
        if empty >= 0 and empty < known:  # the list changed meanwhile: take the smaller
            known = empty
        self._probe = [known, empty]
        if empty < 0 or empty - known > max(2 * self.page_size, known):
            return
        # The count is known well enough (the windows correct themselves): size them.
        count = max(1, (known + empty) // 2)
        self._points = sorted(self._sample.values())
        self._weight = max(0.05, count / max(1, len(self._points)))
        self._mode = "windows"
        self._epoch += 1

    def _add_sample(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> None:
        sample, floor = self._sample, self._front.date
        for r, m in zip(records, dates, strict=True):
            if len(sample) >= _SAMPLE_LIMIT:
                return
            if m >= floor:
                sample[r.customer_callback_id] = m

    def _unordered(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        """An ordered page that is not sorted by dateAdded: on to windows, exactly."""
        why = (
            "the server does not list callbacks by dateAdded (the page at offset "
            f"{request.offset} is not sorted by it)"
        )
        trial = self._trial
        if trial is None:
            self._inconsistent(
                f"{why}, after {self._yielded} callbacks listed in that order",
                request.offset,
                "order_changed",
            )
        elif trial:
            # Start over from the first date, leaving out what was yielded.
            self._front = _Frontier(self._origin, set())
            self._front.skip = trial
        self._trial = None
        start = request.offset == 0 and request.base == self._front.date
        self._to_windows(why, records if start else (), dates if start else ())

    def _to_windows(
        self, why: str, records: Sequence[CustomerCallback], dates: Sequence[int]
    ) -> None:
        text = (
            f"{why}: the walk goes on exactly with dateAdded windows (about twice the "
            "requests of an ordered walk)"
        )
        self.notes.append((text, False))
        self._mode = "probe"
        self._epoch += 1
        self._add_sample(records, dates)
        if len(records) >= self.page_size:
            self._probe = [len(records), -1]

    def _take_window(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        windows = self._windows
        index = next(i for i, w in enumerate(windows) if w.start == request.base and w.sent)
        window = windows[index]
        below = window.end
        keep = [
            i for i, m in enumerate(dates) if m >= window.start and (below is None or m < below)
        ]
        if below is not None and not self._inclusive and any(m >= below for m in dates):
            # The server's toDateAdded is inclusive: from now on windows ask for end - 1.
            self._inclusive = True
            if len(records) >= request.limit:
                window.sent = False  # full of the edge's callbacks: ask again
                return
        if len(records) < request.limit:
            window.records = [records[i] for i in keep]
            if window.points:
                seen = len(keep) / window.points
                self._weight = max(0.05, (self._weight + seen) / 2)
            self._release()
            return
        # Full: the window holds more than a page. Split it at the dates it showed.
        inside = sorted(dates[i] for i in keep)
        if window.points:
            self._weight = max(self._weight, 1.5 * self.page_size / window.points)
        pieces = self._split(window, inside)
        windows.remove(window)
        for n, piece in enumerate(pieces):
            windows.insert(index + n, piece)

    def _split(self, window: _Window, inside: list[int]) -> list[_Window]:
        """Narrower windows covering ``window``, cut at quantiles of the dates it showed."""
        start, end = window.start, window.end
        if end == start + 1:
            return [_Window(start, end, bucket=True)]
        step = max(1, int(_WINDOW_FILL * self.page_size / 1.5))
        cuts = {m for m in inside[step::step] if m > start}
        if not cuts or inside.count(start) >= step:
            cuts.add(start + 1)  # isolate a crowded first millisecond
        edges = [start, *sorted(c for c in cuts if end is None or c < end), end]
        pieces = [_Window(start if a is None else a, b) for a, b in itertools.pairwise(edges)]
        for piece in pieces:
            if piece.end == piece.start + 1 and inside.count(piece.start) >= self.page_size:
                piece.bucket = True
        return pieces

    def _release(self) -> None:
        """Yield the complete windows at the front, in date order."""
        windows, front = self._windows, self._front
        while windows and windows[0].records is not None:
            window = windows.popleft()
            records = window.records or []
            records.sort(key=_ms)
            dates = [_ms(r) for r in records]
            new = front.new(records, dates)
            if window.end is None:
                self._emit([records[i] for i in new])
                self.done = True
                return
            front.close_through(window.end - 1)
            self._emit([records[i] for i in new])
            if self.done:
                return

    def _start_bucket(self, date: int, back: str) -> None:
        self._mode = "bucket"
        self._stalls = 0
        self._epoch += 1
        self._bucket = (date, 0, None, back)

    def _take_bucket(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        """One page of a millisecond holding more than a page (see the module docstring).

        Pages re-read the last record of the one before, where it was; when
        the caller deletes what it is given, each page asks from offset 0
        instead and must bring something new.
        """
        date, offset, last, back = self._bucket
        if not self._inclusive and any(m > date for m in dates):
            # toDateAdded includes its date: yield these, then start over asking for date - 1.
            self._inclusive = True
            keep = [i for i, m in enumerate(dates) if m == date]
            self._advance([records[i] for i in keep], [date] * len(keep))
            self._bucket = (date, 0, None, back)
            return
        front = self._front
        known = len(front.ids) if front.date == date else 0
        unstable = bool(offset) and (not records or records[0].customer_callback_id != last)
        if unstable and len(records) < request.limit and not self._deleting:
            # A short answer in another order: complete if as many are there as were seen.
            unstable = known < request.offset + len(records)
        full = len(records) >= request.limit
        if unstable and self._deleting:
            # The caller deletes: offsets moved. Ask from the start of the millisecond again.
            self._stalls += 1
            self._bucket = (date, 0, None, back)
            unstable = self._stalls > 2
            if not unstable:
                return
        keep = [i for i, m in enumerate(dates) if m == date]
        brought = 0 if unstable else self._advance([records[i] for i in keep], [date] * len(keep))
        # (Deleting: a page asked before the caller deleted the last one may bring nothing.)
        self._stalls = 0 if brought or not full or not self._deleting else self._stalls + 1
        if unstable or self._stalls > 2:
            self._inconsistent(
                f"more than a page of callbacks share dateAdded {date} (epoch ms), and the "
                "server lists them in another order on each answer: no request can page "
                "through them",
                request.offset,
                "ties_unstable",
            )
            self._end_bucket(date, back)
            return
        if self.done:
            return
        if not full:
            self._end_bucket(date, back)
            return
        following = 0 if self._deleting else offset + len(records) - 1
        self._bucket = (date, following, records[-1].customer_callback_id, back)

    def _end_bucket(self, date: int, back: str) -> None:
        self._front.close_through(date)
        self._epoch += 1
        if back == "windows":
            self._mode = "windows"
            self._windows.popleft()
            self._release()
        else:
            self._mode = "ordered"
            self._plan_pos = -1
            self._seeking = False

    def _inconsistent(self, text: str, offset: int, reason: str, *, fatal: bool = False) -> None:
        if self._strict or fatal:
            msg = (
                f"{text}; the walk stopped rather than skip or repeat callbacks "
                "(on_inconsistency='warn' walks on past them)"
            )
            raise ConsistencyError(msg, offset=offset, reason=reason)
        self.notes.append((f"{text}; some of them may be missing (warned once per walk)", True))
