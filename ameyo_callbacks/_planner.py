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
  still walk costs. A seek from ``D`` cannot see a callback added before
  ``D`` that the server listed after the last page's end (a page re-reading
  the one before in the same list would show it unsorted): while the order
  is on trial, a seek asks from the last page's date before ``D`` instead,
  and a callback there that the walk never yielded ends the trial.
- **Windows** (any order). An answer that is not sorted by ``dateAdded``
  (or a first page that could be sorted by chance: a few records, or most
  of them added in one millisecond; or a whole page behind the frontier)
  switches the walk: it counts what is left (a few probes at doubling
  offsets) and lists date windows ``[a, b)`` sized from the dates it saw to
  hold about 60% of a page. A window whose answer is short is complete,
  whatever the order; a full one is split at the dates it showed (one listed
  by date but for a few, as a mostly sorted server does: after 80% of them,
  then in a few windows that their density says hold 80% of a page). The
  window asks for ``toDateAdded=b`` and keeps only dates before ``b``, so
  it is exact whether the server's ``toDateAdded`` is inclusive or not, and
  a callback on an edge belongs to one window only.
  An ordered walk that learns late that the order is not by ``dateAdded``
  (while on trial: see ``_TRUST``) may have missed a callback listed out of
  place anywhere before ``D``. It *re-covers* its dates: windows from its
  first date through ``D``, each holding a page less a margin of the dates
  it yielded there (the trial kept them), leaving those ids out (the
  frontier's ``skip``). After a long ordered run (``_RESUME_PAGES``: a
  mostly sorted list, a pair or two out of place) it then goes on by offset
  from ``D + 1`` on a new trial; after a short one, in windows to the end.
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
frontier, so nothing is yielded twice across a switch; a re-cover moves it
back to the trial's first date but leaves out every id the trial yielded
(all of them: the trial ends before it holds more than ``_TRUST``), and its
windows, like any, are complete only on a short answer, whatever their
size: their sizing costs requests, never a callback.

Bounds (requests, against the same walk over a still stable list): ordered
pages cost the same plus one seek per page that deletes moved (and the
pages prefetched with it); windows about twice the pages plus the probes
(``2 log2(n / page_size)``); a re-cover about the ordered pages it re-covers
(plus the pages out when it began), once per ordered run.
:data:`notes` says once why a walk switched.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from ._convert import DatedRecords, datetime_to_epoch_ms
from ._models import Cursor, CustomerCallback, Page
from .exceptions import ConsistencyError

__all__ = ["MIN_DATE", "PageRequest", "WalkPlanner"]

#: 0001-01-01T00:00:00Z in epoch ms: below every dateAdded a datetime can show.
MIN_DATE = -62135596800000
#: A window aims at this share of a page (its count is an estimate).
_WINDOW_FILL = 0.6
#: A full window listed by date is split after the dates it showed into
#: this many windows sized by their density to hold this share of a page.
_PREFIX_WINDOWS = 3
_PREFIX_FILL = 0.8
#: Dates kept to size windows (a sample; memory stays flat).
_SAMPLE_LIMIT = 4096
#: Page ends remembered to size the overlap (the largest tie among them).
_TIE_MEMORY = 16
#: A first page sorted by dateAdded with less chance than this of being sorted
#: by luck makes the walk take the server's order for dateAdded.
_CHANCE = 1e-6
#: Records a page asks for at least while the order is on trial, even when
#: ``max_items`` needs fewer: 10 in a random order come out sorted with less
#: chance than ``_CHANCE`` (1 in 10!), so a walk cut early on a server that does
#: not list by dateAdded sees it, and its checkpoint does not skip the records
#: listed later with earlier dates.
_ON_TRIAL_LIMIT = 10
#: Times a bucket starts over when a page does not start where the last one
#: ended (deletes moved it) before it takes the order for unstable.
_BUCKET_RESTARTS = 3
#: Records an ordered walk yields before it trusts the server's order (until
#: then it keeps their ids and dates, to re-cover its dates exactly in windows
#: if it must).
_TRUST = 4096
#: Pages' worth of records an ordered run must have yielded for the walk to go
#: on by offset after re-covering them (else: windows to the end).
_RESUME_PAGES = 8

Kind = Literal["page", "probe", "window", "bucket"]
Mode = Literal["ordered", "probe", "windows", "bucket"]


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
    return all(map(operator.le, dates, itertools.islice(dates, 1, None)))


def _nearly_sorted(dates: Sequence[int]) -> bool:
    """Whether a page lists its dates by date but for a few out of place (a cost guess only).

    The records' total distance from their sorted places is at most their
    number (a pair swapped in every few; a random order of 8 or more is
    that close rarely, and a wrong guess costs a split, never a callback).
    """
    n = len(dates)
    if n < 8:
        return False
    ranks = sorted(range(n), key=dates.__getitem__)  # (stable: ties in place)
    return sum(abs(r - i) for i, r in enumerate(ranks)) <= n


def _evidence(dates: Sequence[int]) -> bool:
    """Whether a sorted page is evidence of a dateAdded order: unlikely sorted by chance.

    A page in a random order comes out sorted with probability
    ``prod(ties!) / n!`` (each millisecond's ties in any order); below
    ``_CHANCE`` it is taken as the server's order (a trial: see ``_TRUST``).
    """
    odds = sum(math.lgamma(n + 1) for n in Counter(dates).values()) - math.lgamma(len(dates) + 1)
    return odds < math.log(_CHANCE)


class _Frontier:
    """Everything added before ``date`` is done, the ids ``ids`` added at ``date``, and ``skip``.

    ``skip`` holds the ids (and dates) an ordered walk yielded before the
    server showed it does not list by dateAdded after all (at most ``_TRUST``
    of them): the windows that re-cover their dates leave them out, and a
    checkpoint taken among them carries those past its date.
    """

    __slots__ = ("date", "ids", "skip")

    def __init__(self, date: int, ids: set[str]) -> None:
        self.date = date
        self.ids = ids
        self.skip: Mapping[str, int] = {}

    def new(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> list[int]:
        """Indexes of the records past the frontier (``dates`` sorted, as every caller has them)."""
        d, done, skip = self.date, self.ids, self.skip
        first = bisect.bisect_left(dates, d)  # the records before it are behind the frontier
        past = bisect.bisect_right(dates, d, first)  # and those from here after it
        new = [i for i in range(first, past) if records[i].customer_callback_id not in done]
        new += range(past, len(dates))
        if skip:
            return [i for i in new if records[i].customer_callback_id not in skip]
        return new

    def advance(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> None:
        """Mark ``records`` (sorted by date, all past the frontier) done."""
        if not records:
            return
        last = dates[-1]
        at_last = {r.customer_callback_id for r in records[bisect.bisect_left(dates, last) :]}
        if last == self.date:
            self.ids |= at_last
        elif last > self.date:
            self.date, self.ids = last, at_last

    def close_through(self, date: int) -> None:
        """Every date up to ``date`` (inclusive) is done."""
        if date + 1 > self.date:
            self.date, self.ids = date + 1, set()


class _Walk:
    """What every strategy shares: the frontier, the pages out, the settings, the mode."""

    __slots__ = (
        "deleting",
        "done",
        "epoch",
        "front",
        "hi",
        "inclusive",
        "max_items",
        "mode",
        "notes",
        "origin",
        "origin_ids",
        "outstanding",
        "page_size",
        "pages",
        "position",
        "requests",
        "scope",
        "strict",
        "trial",
        "yielded",
    )

    def __init__(
        self,
        page_size: int,
        front: _Frontier,
        hi: int | None,
        max_items: int | None,
        position: int,
        *,
        strict: bool,
        scope: str,
    ) -> None:
        # A page re-reads a record of the one before (in place, in a bucket):
        # a request for one alone would bring nothing, so two at the least.
        self.page_size = max(2, page_size)
        self.front = front
        self.origin = front.date  # where a walk that starts over in windows starts
        self.origin_ids = frozenset(front.ids)  # and what it had done at that date
        self.hi = hi
        self.max_items = max_items
        self.position = position  # Page.offset of the next record yielded
        self.strict = strict
        self.scope = scope
        self.mode: Mode = "ordered"
        self.epoch = 0  # bumped when the strategy changes: requests of an older one are stale
        self.inclusive = False  # the server's toDateAdded was seen to include its date
        self.deleting = False  # the caller deletes: seek every page, one at a time
        # ids (and dates) yielded while the server's order is on trial (None: trusted,
        # or not ordered)
        self.trial: dict[str, int] | None = {}
        self.yielded = 0
        self.outstanding = 0
        self.requests = 0
        self.pages: deque[Page] = deque()
        self.notes: list[tuple[str, bool]] = []
        self.done = max_items == 0

    def switch(self, mode: Mode) -> None:
        """Change strategy: what the old one has out goes stale."""
        self.mode = mode
        self.epoch += 1

    def room(self) -> int:
        return (1 << 62) if self.max_items is None else self.max_items - self.yielded

    def request(
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
            epoch=self.epoch,
            base=frm,
            below=below,
        )

    def to(self, end: int | None) -> int | None:
        """The toDateAdded that selects dates before ``end`` (None: the caller's bound)."""
        if end is None:
            return self.hi
        return end - 1 if self.inclusive else end

    def cursor(self) -> Cursor:
        front = self.front
        d = front.date
        skip = tuple(sorted((i, m) for i, m in front.skip.items() if m >= d))
        return Cursor(
            offset=self.position,
            date=d,
            ids=tuple(sorted(front.ids)),
            scope=self.scope,
            skip=skip,
        )

    def emit(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> int:
        """Queue ``records`` (sorted by date, past the frontier) as a page; how many.

        Trimmed to ``max_items``: the frontier moves past the records handed
        out, never past a cut (a checkpoint resumes right after the last one).
        """
        room = self.room()
        items = tuple(records[:room])
        if len(items) >= room:
            self.done = True
        if not items:
            return 0
        self.front.advance(items, dates[: len(items)])
        self.yielded += len(items)
        first = self.position
        self.position += len(items)
        page = Page(items=items, offset=first, next_offset=self.position, cursor=self.cursor())
        self.pages.append(page)
        return len(items)

    def advance(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> int:
        """Yield the records past the frontier (sorted by date) and move it; how many."""
        front = self.front
        new = front.new(records, dates)
        if not new or new[-1] - new[0] == len(new) - 1:  # (one run: most pages)
            kept = records[new[0] : new[-1] + 1] if new else []
            kept_dates = dates[new[0] : new[-1] + 1] if new else []
        else:
            kept = [records[i] for i in new]
            kept_dates = [dates[i] for i in new]
        n = self.emit(kept, kept_dates)
        trial = self.trial
        if trial is not None:  # (ordered, or a bucket of it: windows end the trial)
            trial.update(
                zip((r.customer_callback_id for r in kept[:n]), kept_dates[:n], strict=True)
            )
            if len(trial) > _TRUST:
                self.trial = None  # that many in order: trusted (memory stays flat)
        return n

    def inconsistent(self, text: str, offset: int, reason: str, *, fatal: bool = False) -> None:
        """Raise ConsistencyError, or (warn mode) note it once and go on."""
        if self.strict or fatal:
            msg = (
                f"{text}; the walk stopped rather than skip or repeat callbacks "
                "(on_inconsistency='warn' walks on past them)"
            )
            raise ConsistencyError(msg, offset=offset, reason=reason)
        self.notes.append((f"{text}; some of them may be missing (warned once per walk)", True))

    @staticmethod
    def stray(request: PageRequest, dates: Sequence[int]) -> None:
        """Raise if an answer holds dates outside the ``fromDateAdded``/``toDateAdded`` it sent.

        A server that filters by date answers nothing added before the
        request's ``from_date`` or after its ``to_date`` (inclusive or not);
        one that does ignores the filter, and no window can be walked on it.
        """
        low, high = request.from_date, request.to_date
        if any((low is not None and m < low) or (high is not None and m > high) for m in dates):
            msg = (
                "the server listed callbacks added outside the fromDateAdded/toDateAdded "
                "it was asked for: it does not filter by date, so the walk cannot finish in "
                "date windows (its order is not by dateAdded either); the walk stopped rather "
                "than skip or repeat callbacks"
            )
            raise ConsistencyError(msg, offset=request.offset, reason="date_filter_ignored")


class _Ordered:
    """Offset pages over a list sorted by dateAdded, seeks when deletes move it."""

    __slots__ = (
        "back",
        "base",
        "ending",
        "first",
        "plan_pos",
        "planner",
        "promised",
        "seeking",
        "ties",
        "walk",
    )

    def __init__(self, planner: WalkPlanner, start_offset: int) -> None:
        self.planner = planner
        self.walk = planner.walk
        self.base = self.walk.front.date  # offsets count in the list from this dateAdded
        self.first = True
        self.plan_pos = start_offset  # where the next planned page's new records start; -1: seek
        self.seeking = False  # a seek is out: plan nothing more until it is answered
        self.ending = 0  # the size of a short page that brought records: an empty one ends it
        self.ties: deque[int] = deque(maxlen=_TIE_MEMORY)
        self.promised = 0  # new records the pages out were planned to bring
        # The date a seek asks from while the order is on trial: the page that moved
        # the frontier to D had a record there before D (D itself: none seen).
        self.back = self.walk.front.date

    def dropped(self, request: PageRequest) -> None:
        self.promised -= request.new
        if request.offset == 0 and request.base == self.base:
            self.seeking = False

    def next(self) -> PageRequest | None:
        walk = self.walk
        if self.seeking or (walk.deleting and walk.outstanding):
            return None
        room = walk.room() - self.promised  # records the requests out do not bring
        if room <= 0:
            return None
        raw = self.first and self.plan_pos > 0
        if self.first:
            self.first = False
            offset, overlap = self.plan_pos, 0
        elif walk.deleting or self.plan_pos < 0:
            # A seek from D cannot see a record added before D that the server
            # listed after the last page's end (an order that is not by dateAdded
            # after all): while the order is on trial, it re-reads from a date of
            # that page before D, where such a record shows (see ``_missed``).
            self.seeking = True
            front = walk.front
            base = front.date if walk.trial is None else min(self.back, front.date)
            self.base, self.plan_pos = base, -1
            offset, overlap = 0, len(front.ids)
        else:
            # Re-read one more than the ties at a page's end: exactly those of the
            # frontier when nothing is out, else the most seen lately.
            ties = len(walk.front.ids) if not walk.outstanding else max(self.ties, default=1)
            overlap = min(self.plan_pos, max(1, min(walk.page_size // 2, ties + 1)))
            offset = self.plan_pos - overlap
        limit = min(walk.page_size, room + overlap)
        if walk.trial is not None and room < _ON_TRIAL_LIMIT and not raw:
            limit = min(walk.page_size, _ON_TRIAL_LIMIT + overlap)  # (the cut trims it)
        if self.plan_pos >= 0:
            self.plan_pos = offset + limit
        self.promised += limit - overlap
        request = walk.request("page", offset, self.base, walk.hi, limit=limit)
        return attrs.evolve(request, new=limit - overlap, raw=raw)

    def take(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        walk = self.walk
        current = request.base == self.base
        is_seek = current and request.offset == 0 and self.seeking
        if is_seek:
            self.seeking = False
        # (A first page cut short by max_items is judged as a full one: see _ON_TRIAL_LIMIT.)
        full = walk.page_size if request.raw else min(request.limit, walk.page_size)
        first = walk.trial is not None and not walk.trial and len(records) >= full
        if not _sorted(dates) or (first and not _evidence(dates)):
            # Not sorted, or a full first page that might be sorted by chance
            # (a few records, or most added in one millisecond): windows.
            self._unordered(request, records, dates)
            return
        front = walk.front
        if self._missed(records, dates):
            # A callback before the frontier that the walk never yielded: the
            # server listed it after a later one, past a page's end. Windows.
            self._unordered(request, records, dates)
            return
        if not records:
            if request.offset == 0 or (self.ending and current):
                walk.done = True
            elif current and not self.seeking:
                self.plan_pos = -1
            return
        if self.ending and current and request.offset > 0:
            # More after a short page: the server serves fewer records than
            # asked. Go on at the size it serves.
            walk.page_size, self.ending = max(2, self.ending), 0
        full = len(records) >= min(request.limit, walk.page_size)
        if full and dates[-1] < front.date and is_seek and request.base < front.date:
            # A seek re-reading from before D, full of what was yielded there and
            # nothing missed: the boundary is checked. Seek from D itself.
            self.back, self.plan_pos = front.date, -1
            return
        if full and dates[-1] < front.date:
            # A whole page behind the frontier: not the order it seemed (or many old
            # dates added behind it). Windows are exact either way.
            self._unordered(request, records, dates)
            return
        if not (request.raw or request.offset == 0 or dates[0] < front.date):
            # Starts past the frontier (deletes moved the list): seek.
            if current and not self.seeking:
                self.plan_pos = -1
            return
        before = front.date
        brought = walk.advance(records, dates)
        if front.date > before:
            below = bisect.bisect_left(dates, front.date)  # (sorted: checked above)
            self.back = dates[below - 1] if below else front.date
        elif is_seek:
            self.back = front.date  # (re-read from before D: nothing missed there)
        self.ties.append(dates.count(dates[-1]))
        if is_seek:
            self.plan_pos = len(records)
        if walk.done:
            return
        if not full:
            # The end, unless a page already out shows more (a server that
            # serves fewer records than asked: the walk goes on at its size).
            if not brought or not walk.outstanding:
                walk.done = True
            self.ending = len(records)
        elif request.offset == 0 and dates[0] == dates[-1] == front.date:
            self.planner.bucket.start(front.date, "ordered")

    def _missed(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> bool:
        """Whether an answer lists a callback before the frontier that the walk never yielded.

        Only while the order is on trial (the walk knows what it yielded); a
        callback is added with the date it is added, so one listed behind the
        frontier was there all along, listed out of dateAdded order.
        """
        walk = self.walk
        trial, front = walk.trial, walk.front
        if trial is None:
            return False
        d, done, origin = front.date, walk.origin_ids, walk.origin
        return any(
            m < d
            and r.customer_callback_id not in trial
            and not (m == origin and r.customer_callback_id in done)
            for r, m in zip(records, dates, strict=True)
        )

    def seek_next(self) -> None:
        """Back from a bucket: the next page seeks from the frontier."""
        self.plan_pos, self.seeking, self.back = -1, False, self.walk.front.date

    def _unordered(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        """A page not sorted by dateAdded: on to windows, exactly."""
        walk = self.walk
        why = (
            "the server does not list callbacks by dateAdded (the page at offset "
            f"{request.offset} is not sorted by it)"
        )
        if request.raw:
            walk.inconsistent(
                "start_offset needs a server that lists callbacks by dateAdded, and this one "
                f"does not (the page at offset {request.offset} is not sorted by it): start "
                "from the beginning, or resume_from a checkpoint",
                request.offset,
                "unordered_offset",
                fatal=True,
            )
        trial = walk.trial
        if trial is None:
            walk.inconsistent(
                f"{why}, after {walk.yielded} callbacks listed in that order",
                request.offset,
                "order_changed",
            )
        walk.trial = None
        if trial:
            # A long ordered run was no accident (a pair or two out of place):
            # after the re-cover, go on by offset on a new trial. A short one
            # would not pay for it: windows to the end.
            self._recover(why, trial, resume=len(trial) >= _RESUME_PAGES * walk.page_size)
            return
        start = request.offset == 0 and request.base == walk.front.date
        self.planner.windows.start(why, records if start else (), dates if start else ())

    def _recover(self, why: str | None, trial: dict[str, int], *, resume: bool) -> None:
        """Re-cover the dates walked so far, from the first one through the frontier.

        In windows sized by the dates yielded there (known exactly: the trial
        kept them), leaving out what was yielded; then ``resume`` ordered
        pages, or windows to the end.
        """
        walk = self.walk
        end = walk.front.date + 1
        skip = walk.front.skip
        walk.front = _Frontier(walk.origin, set(walk.origin_ids))
        walk.front.skip = {**skip, **trial} if skip else trial
        self.planner.windows.recover(why, end, sorted(trial.values()), resume=resume)

    def check_behind(self) -> None:
        """The walk's caller deleted as it went, and the seeks reached the end.

        A seek from the frontier's date never lists a callback added before
        it, and a server whose order is not by dateAdded (still on trial)
        may have listed one there, out of place, after the walk passed: the
        dates walked are re-read (what the caller kept, the walk leaves out;
        what it deleted is gone: usually one request), then what is left
        after them. Past the trial (4,096 in order), the order is trusted.
        """
        walk = self.walk
        trial, walk.trial = walk.trial, None
        if not trial:
            return
        walk.done = False
        self._recover(None, trial, resume=False)

    def resume(self) -> None:
        """Windows re-covered what an ordered run walked: go on by offset, on a new trial."""
        walk = self.walk
        walk.switch("ordered")
        front = walk.front
        # (All before the frontier now, but what a resumed checkpoint carried past it.)
        front.skip = {i: m for i, m in front.skip.items() if m >= front.date}
        walk.origin, walk.origin_ids, walk.trial = front.date, frozenset(front.ids), {}
        self.base = self.back = front.date
        self.plan_pos, self.seeking, self.ending = 0, False, 0


class _Windows:
    """Date windows that each fit in a page, sized by a count and a sample of dates."""

    __slots__ = (
        "floor",
        "planner",
        "points",
        "probe",
        "resume",
        "said",
        "sample",
        "walk",
        "weight",
        "windows",
    )

    def __init__(self, planner: WalkPlanner) -> None:
        self.planner = planner
        self.walk = planner.walk
        self.sample: dict[str, int] = {}
        self.points: list[int] = []
        self.probe = [0, -1]  # records known to exist (offset), offset seen empty (-1: none)
        self.floor = self.walk.front.date  # probes count (and sample) the dates from here
        self.weight = 1.0  # records per sample date
        self.windows: deque[_Window] = deque()
        self.resume = False  # the windows out re-cover an ordered run: then back to it
        self.said = False  # the note is said once per walk

    def _say(self, text: str) -> None:
        if not self.said:
            self.said = True
            self.walk.notes.append((text, False))

    def start(self, why: str, records: Sequence[CustomerCallback], dates: Sequence[int]) -> None:
        """Leave the ordered walk (say so once): count what is left, then size windows."""
        self._say(
            f"{why}: the walk goes on exactly with dateAdded windows (about twice the "
            "requests of an ordered walk)"
        )
        self.walk.switch("probe")
        self.floor, self.sample, self.probe, self.resume = self.walk.front.date, {}, [0, -1], False
        self._add_sample(records, dates)
        if len(records) >= self.walk.page_size:
            self.probe = [len(records), -1]

    def recover(self, why: str | None, end: int, dates: list[int], *, resume: bool) -> None:
        """Re-cover the dates from the frontier to ``end`` (exclusive), where ``dates`` were seen.

        Each window holds a page less a margin of the dates seen (a
        millisecond with more than that: a window of its own, or a bucket):
        a callback the walk never saw makes it at most full, and then it is
        split like any other. Then (``resume``) back to ordered pages from
        ``end``, or probes from ``end`` and windows to the end. ``why``: the
        reason to say (None: a routine check, said nowhere).
        """
        walk = self.walk
        if why is not None:
            self._say(
                f"{why}: the walk re-reads the dates it has walked in dateAdded windows, "
                "leaving out what it yielded, and goes on "
                + ("by offset" if resume else "with dateAdded windows")
            )
        size = walk.page_size
        hold = max(1, size - 1 - size // 10)
        start = walk.front.date
        if walk.deleting:
            dates = []  # (the caller deleted what it was given: one window may do)
        windows = self.windows
        i = bisect.bisect_left(dates, start)
        while i < len(dates) and start < end:
            j = i + hold
            if j >= len(dates):
                break
            cut = dates[j]  # the first date left out
            if cut == start:  # more than ``hold`` in one millisecond
                j = bisect.bisect_right(dates, start)
                windows.append(_Window(start, start + 1, bucket=j - i >= size))
                start, i = start + 1, j
                continue
            windows.append(_Window(start, min(cut, end)))
            start, i = cut, bisect.bisect_left(dates, cut)
        if start < end:
            windows.append(_Window(start, end))
        self.resume = resume
        self.floor, self.sample, self.probe = end, {}, [0, -1]
        walk.switch("windows" if resume else "probe")

    def next_probe(self) -> PageRequest | None:
        walk = self.walk
        if walk.outstanding:
            return None
        known, empty = self.probe
        size = walk.page_size
        offset = known if known <= size else 2 * known - size
        if empty >= 0:
            offset = (known + empty) // 2
        return walk.request("probe", offset, self.floor, walk.hi)

    def take_probe(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        self._add_sample(records, dates)
        known, empty = self.probe
        n = len(records)
        if n >= request.limit:
            known = max(known, request.offset + n)
        elif n:
            known = empty = request.offset + n
        else:
            empty = request.offset if empty < 0 else min(empty, request.offset)
        if empty >= 0 and empty < known:  # the list changed meanwhile: take the smaller
            known = empty
        self.probe = [known, empty]
        if empty < 0 or empty - known > max(2 * self.walk.page_size, known):
            return
        # The count is known well enough (the windows correct themselves): size them.
        count = max(1, (known + empty) // 2)
        self.points = sorted(self.sample.values())
        self.weight = max(0.05, count / max(1, len(self.points)))
        self.walk.switch("windows")

    def _add_sample(self, records: Sequence[CustomerCallback], dates: Sequence[int]) -> None:
        sample, floor = self.sample, self.floor
        for r, m in zip(records, dates, strict=True):
            if len(sample) >= _SAMPLE_LIMIT:
                return
            if m >= floor:
                sample[r.customer_callback_id] = m

    def next(self) -> PageRequest | None:
        walk, windows = self.walk, self.windows
        if windows and windows[0].bucket:
            if walk.outstanding:
                return None
            self.planner.bucket.start(windows[0].start, "windows", stale=False)
            return self.planner.bucket.next()
        for window in windows:
            if not window.sent and not window.bucket:
                return self._request(window)
        if self.resume:
            return None  # the re-cover is out: ordered pages when it is in
        start = windows[-1].end if windows else walk.front.date
        if start is None:
            return None  # the last window is planned: wait for it
        window = self._plan(start)
        windows.append(window)
        return self._request(window)

    def _plan(self, start: int) -> _Window:
        """A window from ``start`` holding about 60% of a page, by the sample's dates."""
        points, hi = self.points, self.walk.hi
        i = bisect.bisect_left(points, start)
        k = max(1, round(_WINDOW_FILL * self.walk.page_size / self.weight))
        if i + k >= len(points):
            return _Window(start, None, len(points) - i)
        end = points[i + k]
        if end == start:
            j = bisect.bisect_right(points, start)
            if j >= len(points):
                return _Window(start, None, len(points) - i)
            end = points[j]
        if hi is not None and end > hi:
            return _Window(start, None, len(points) - i)
        return _Window(start, end, bisect.bisect_left(points, end) - i)

    def _request(self, window: _Window) -> PageRequest:
        window.sent = True
        walk = self.walk
        return walk.request("window", 0, window.start, walk.to(window.end), below=window.end)

    def take(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        walk, windows = self.walk, self.windows
        index = next(i for i, w in enumerate(windows) if w.start == request.base and w.sent)
        window = windows[index]
        below = window.end
        walk.stray(request, dates)
        keep = [
            i for i, m in enumerate(dates) if m >= window.start and (below is None or m < below)
        ]
        if below is not None and not walk.inclusive and any(m >= below for m in dates):
            # The server's toDateAdded is inclusive: from now on windows ask for end - 1.
            walk.inclusive = True
            if len(records) >= request.limit:
                window.sent = False  # full of the edge's callbacks: ask again
                return
        if len(records) < request.limit:
            window.records = [records[i] for i in keep]
            if window.points:
                seen = len(keep) / window.points
                self.weight = max(0.05, (self.weight + seen) / 2)
            self.release()
            return
        # Full: the window holds more than a page. Split it at the dates it showed.
        shown = [dates[i] for i in keep]
        inside = sorted(shown)
        if window.points:
            self.weight = max(self.weight, 1.5 * walk.page_size / window.points)
        windows.remove(window)
        first = _nearly_sorted(shown)  # most likely the window's first dates
        for n, piece in enumerate(self._split(window, inside, first=first)):
            windows.insert(index + n, piece)

    def _split(self, window: _Window, inside: list[int], *, first: bool) -> list[_Window]:
        """Narrower windows covering ``window``, cut at quantiles of the dates it showed.

        ``first``: the dates shown are likely the window's first (the server
        lists it by date, but for a few out of place): one window holding
        most of them, then a few as wide as their density says hold most of a
        page, then the rest. (Only the cost rides on the guess.)
        """
        start, end = window.start, window.end
        if end == start + 1:
            return [_Window(start, end, bucket=True)]
        page_size = self.walk.page_size
        cut = inside[int(_PREFIX_FILL * len(inside))] if first else start
        below = bisect.bisect_left(inside, cut)  # dates shown before the cut
        if below:
            width = max(1, math.ceil(_PREFIX_FILL * page_size * (cut - start) / below))
            pieces, at = [_Window(start, cut)], cut
            for _ in range(_PREFIX_WINDOWS):
                if end is not None and at + width >= end:
                    break
                pieces.append(_Window(at, at + width))
                at += width
            pieces.append(_Window(at, end))
            return pieces
        step = max(1, int(_WINDOW_FILL * page_size / 1.2))
        cuts = {m for m in inside[step::step] if m > start}
        if not cuts or inside.count(start) >= step:
            cuts.add(start + 1)  # isolate a crowded first millisecond
        edges = [start, *sorted(c for c in cuts if end is None or c < end), end]
        pieces = [_Window(start if a is None else a, b) for a, b in itertools.pairwise(edges)]
        for piece in pieces:
            if piece.end == piece.start + 1 and inside.count(piece.start) >= page_size:
                piece.bucket = True
        return pieces

    def release(self) -> None:
        """Yield the complete windows at the front, in date order."""
        walk, windows = self.walk, self.windows
        while windows and windows[0].records is not None:
            window = windows.popleft()
            records = window.records or []
            records.sort(key=_ms)
            dates = [_ms(r) for r in records]
            new = walk.front.new(records, dates)
            items, at = [records[i] for i in new], [dates[i] for i in new]
            if window.end is None or len(items) >= walk.room():
                walk.emit(items, at)  # the last window, or max_items falls in it
                walk.done = True
                return
            walk.front.close_through(window.end - 1)
            walk.emit(items, at)
        if self.resume and not windows:
            self.resume = False
            self.planner.ordered.resume()

    def bucket_done(self) -> None:
        """The bucket window at the front is complete."""
        self.walk.switch("windows")
        self.windows.popleft()
        self.release()


class _Bucket:
    """One millisecond holding more than a page: offset pages that re-read one in place."""

    __slots__ = ("back", "date", "last", "offset", "planner", "restarts", "stalls", "walk")

    def __init__(self, planner: WalkPlanner) -> None:
        self.planner = planner
        self.walk = planner.walk
        self.date = 0
        self.offset = 0  # of the next page
        self.last: str | None = None  # the id the next page must start with
        self.back: Mode = "ordered"  # the strategy to return to
        self.stalls = 0  # pages in a row that brought nothing
        self.restarts = 0  # times a page did not start where the last one ended

    def start(self, date: int, back: Mode, *, stale: bool = True) -> None:
        if stale:
            self.walk.switch("bucket")
        else:
            self.walk.mode = "bucket"  # (nothing else is out: no request goes stale)
        self.date, self.offset, self.last, self.back, self.stalls = date, 0, None, back, 0
        self.restarts = 0

    def next(self) -> PageRequest | None:
        walk, date = self.walk, self.date
        if walk.outstanding:
            return None
        return walk.request("bucket", self.offset, date, walk.to(date + 1), below=date + 1)

    def take(
        self, request: PageRequest, records: Sequence[CustomerCallback], dates: list[int]
    ) -> None:
        """One page of the millisecond (see the module docstring).

        Pages re-read the last record of the one before, where it was; when
        the caller deletes what it is given, each page asks from offset 0
        instead and must bring something new.
        """
        walk, date = self.walk, self.date
        walk.stray(request, dates)
        keep = [i for i, m in enumerate(dates) if m == date]
        if not walk.inclusive and any(m > date for m in dates):
            # toDateAdded includes its date: yield these, then start over asking for date - 1.
            walk.inclusive = True
            walk.advance([records[i] for i in keep], [date] * len(keep))
            self.offset, self.last = 0, None
            return
        unstable = bool(self.offset) and (
            not records or records[0].customer_callback_id != self.last
        )
        if self.offset and len(records) < request.limit and not walk.deleting:
            # The millisecond's last page, in its order or another: complete only if
            # every one of the offset + len(records) there has been seen (a new order
            # whose first record matched by chance may have hidden some behind).
            front = walk.front
            done = front.ids if front.date == date else set()
            skipped = {i for i, m in front.skip.items() if m == date}  # (yielded before)
            seen = len(done | skipped | {records[i].customer_callback_id for i in keep})
            unstable = seen < request.offset + len(records)
        full = len(records) >= request.limit
        if unstable and (walk.deleting or self.restarts < _BUCKET_RESTARTS):
            # Deletes moved the offsets (the caller's, or anyone's): ask from the
            # start of the millisecond again; what was yielded is left out.
            self.stalls += walk.deleting
            self.restarts += not walk.deleting
            self.offset, self.last = 0, None
            unstable = self.stalls > 2
            if not unstable:
                return
        brought = 0 if unstable else walk.advance([records[i] for i in keep], [date] * len(keep))
        # (Deleting: a page asked before the caller deleted the last one may bring nothing.)
        self.stalls = 0 if brought or not full or not walk.deleting else self.stalls + 1
        if unstable or self.stalls > 2:
            walk.inconsistent(
                f"more than a page of callbacks share dateAdded {date} (epoch ms), and the "
                "server lists them in another order on each answer: no request can page "
                "through them",
                request.offset,
                "ties_unstable",
            )
            self._end()
        elif not walk.done and not full:
            self._end()
        elif not walk.done:
            self.offset = 0 if walk.deleting else self.offset + len(records) - 1
            self.last = records[-1].customer_callback_id

    def _end(self) -> None:
        self.walk.front.close_through(self.date)
        if self.back == "windows":
            self.planner.windows.bucket_done()
        else:
            self.walk.switch("ordered")
            self.planner.ordered.seek_next()


class WalkPlanner:
    """Plans the requests of one walk and reads their answers; see the module docstring.

    Give answers in the order the requests were planned; a request that
    :meth:`stale` calls stale may be cancelled and :meth:`drop`-ped instead.
    Pages to yield collect in :attr:`pages`; :attr:`notes` holds what the
    driver should say (``(text, warn)``: ``warn`` for a guarantee given up).
    """

    __slots__ = ("bucket", "ordered", "walk", "windows")

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
        lo = MIN_DATE if from_date is None else from_date
        front, position = _Frontier(lo, set()), start_offset
        if resume is not None and resume.date is not None:
            front, position = _Frontier(max(lo, resume.date), set(resume.ids)), resume.offset
            front.skip = dict(resume.skip)
        self.walk = _Walk(
            page_size, front, to_date, max_items, position, strict=strict, scope=scope
        )
        self.ordered = _Ordered(self, start_offset)
        self.windows = _Windows(self)
        self.bucket = _Bucket(self)

    @property
    def pages(self) -> deque[Page]:
        """The pages ready to yield, in order."""
        return self.walk.pages

    @property
    def notes(self) -> list[tuple[str, bool]]:
        """What the driver should say: ``(text, warn)``."""
        return self.walk.notes

    @property
    def done(self) -> bool:
        """Nothing more to ask (pages may still wait in :attr:`pages`)."""
        return self.walk.done

    @property
    def requests(self) -> int:
        """Requests planned so far."""
        return self.walk.requests

    @property
    def outstanding(self) -> int:
        """Requests planned and not yet answered or dropped."""
        return self.walk.outstanding

    @property
    def strategy(self) -> str:
        """``"ordered"``, ``"probe"``, ``"windows"`` or ``"bucket"``: what the walk does now."""
        return self.walk.mode

    def plans_ahead_freely(self) -> bool:
        """Whether a request planned now, before the answers out are read, costs nothing extra.

        True for ordered pages (no seek, no deletes) whose pages lately ended
        without ties: the next page's overlap is then the same whether the
        answers out are read first or not. Windows, probes, buckets and pages
        after ties plan better from the answers (B11: ties reshuffled cost
        2.3x a still walk's requests when planned ahead, 1.9x otherwise).
        """
        walk, ordered = self.walk, self.ordered
        return (
            walk.mode == "ordered"
            and not walk.deleting
            and not ordered.seeking
            and ordered.plan_pos >= 0
            and max(ordered.ties, default=1) <= 1
        )

    def stale(self, request: PageRequest) -> bool:
        """Whether an answer to ``request`` would be ignored: cancel it and :meth:`drop` it."""
        return self.walk.done or request.epoch != self.walk.epoch

    def drop(self, request: PageRequest) -> None:
        """``request`` will not be answered (stale, or its walk stopped)."""
        self.walk.outstanding -= 1
        if request.kind == "page":
            self.ordered.dropped(request)

    def next_request(self) -> PageRequest | None:
        """The next request to send, or None: wait for an answer (or the walk is done)."""
        walk = self.walk
        if walk.hi is not None and walk.front.date > walk.hi and not walk.done:
            walk.done = True  # every date the caller asked for is done
            if walk.deleting and walk.mode == "ordered" and walk.room() > 0:
                self.ordered.check_behind()
        if walk.done or walk.room() <= 0:
            return None
        if walk.mode == "ordered":
            request = self.ordered.next()
        elif walk.mode == "probe":
            request = self.windows.next_probe()
        elif walk.mode == "windows":
            request = self.windows.next()
        else:
            request = self.bucket.next()
        if request is not None:
            walk.outstanding += 1
            walk.requests += 1
        return request

    def take(self, request: PageRequest, records: Sequence[CustomerCallback]) -> None:
        """Read the answer to ``request`` (in planned order): queue pages, move the frontier."""
        self.walk.outstanding -= 1
        if request.kind == "page":
            self.ordered.promised -= request.new
        if self.stale(request):
            return
        dates = records.dates if isinstance(records, DatedRecords) else [_ms(r) for r in records]
        if request.kind == "page":
            self.ordered.take(request, records, dates)
            walk = self.walk
            if walk.done and walk.deleting and walk.mode == "ordered" and walk.room() > 0:
                self.ordered.check_behind()
        elif request.kind == "probe":
            self.windows.take_probe(request, records, dates)
        elif request.kind == "window":
            self.windows.take(request, records, dates)
        else:
            self.bucket.take(request, records, dates)

    def forget(self, callback_id: str) -> None:
        """The walk's own caller deleted this callback: seek from now on (deletes move offsets).

        The id stays in the frontier's set: an answer already out may list it.
        """
        self.walk.deleting = True

    def cursor(self) -> Cursor:
        """Where the walk stands now (what ``Page.checkpoint`` carries)."""
        return self.walk.cursor()
