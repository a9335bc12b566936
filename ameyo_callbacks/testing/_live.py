"""Live mode: the fake's list changes while clients walk it, at a rate, reproducibly.

A contact center's list is never still: agents dial the callbacks that are
due (the server removes them), schedule new ones, reschedule others. Live
mode plays that against the store:

- ``delete_due``: remove the callback due first (smallest ``callbackTime``);
- ``delete_random``: remove one at random;
- ``add``: add a new callback (a copy of a random one with a new id, a
  ``dateAdded`` and a ``callbackTime`` drawn within the ranges the list had
  when live mode was configured, widened by earlier changes, so it lands
  anywhere in either order, or at the end of the ``dateAdded`` order with
  ``add_at="end"``);
- ``reschedule``: give a random callback a new ``callbackTime``.

No thread runs: the changes owed (``rate`` per second since
:meth:`LiveChanges.configure`, ``per_request`` per arriving request) are made
as a request arrives, before it is answered, in-process and under uvicorn
alike. :meth:`LiveChanges.apply` makes ``n`` changes now. Every choice comes
from ``random.Random(seed)``: the same seed, store and sequence of calls give
the same changes, each recorded as a :class:`Change`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal, get_args

import attrs

from .._checks import check_float, check_int
from .._filters import CallbackFilter
from ._answers import Answer
from ._log import Exchange
from ._routing import Request
from ._seed import DEFAULT_CAMPAIGNS
from ._store import CallbackStore

__all__ = ["CHANGE_KINDS", "Change", "ChangeKind", "LiveChanges", "LiveControls", "LiveSettings"]

ChangeKind = Literal["delete_due", "delete_random", "add", "reschedule"]
CHANGE_KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)
AddAt = Literal["anywhere", "end"]

_MINUTE_MS = 60_000
#: Random draws of a row before live mode falls back to the filtered list.
_PICK_TRIES = 64


@attrs.frozen
class Change:
    """One change live mode made to the list.

    ``seq`` counts changes from 1; ``at`` is the clock reading when it was
    made (``time.monotonic()`` unless a clock was given); ``request`` is the
    arrival number (``RequestLogEntry.seq``) of the request it was applied
    before, or None for :meth:`FakeAmeyo.change`. ``callback_time`` is the
    new ``callbackTime`` (epoch ms) of an add or a reschedule, and
    ``previous_callback_time`` the old one of a reschedule.
    """

    seq: int
    kind: ChangeKind
    callback_id: str
    at: float
    request: int | None = None
    callback_time: int | None = None
    previous_callback_time: int | None = None

    @property
    def removes(self) -> bool:
        """True for a delete: the callback is gone."""
        return self.kind in ("delete_due", "delete_random")


def check_mix(mix: Mapping[str, float] | None) -> dict[ChangeKind, float]:
    """A change mix: weights >= 0 by kind, at least one above 0 (None: all four alike)."""
    if mix is None:
        return dict.fromkeys(CHANGE_KINDS, 1.0)
    if not isinstance(mix, Mapping):
        msg = f"mix must be a mapping of change kind to weight, got {type(mix).__name__}"
        raise TypeError(msg)
    checked: dict[ChangeKind, float] = {}
    for kind, weight in mix.items():
        if kind not in CHANGE_KINDS:
            msg = f"unknown change kind {kind!r} in mix: use some of {', '.join(CHANGE_KINDS)}"
            raise ValueError(msg)
        checked[kind] = check_float(f"mix[{kind!r}]", weight) or 0.0
    if not any(checked.values()):
        msg = "mix needs at least one change kind with a weight above 0"
        raise ValueError(msg)
    return checked


def _rate(rate: float) -> float:
    return check_float("rate", rate) or 0.0


def _per_request(per_request: float) -> float:
    return check_float("per_request", per_request) or 0.0


def _where(where: CallbackFilter | None) -> CallbackFilter | None:
    if where is not None and not isinstance(where, CallbackFilter):
        msg = f"where must be a CallbackFilter or None, got {type(where).__name__}"
        raise TypeError(msg)
    return where


def _on_change(on_change: Callable[[Change], None] | None) -> Callable[[Change], None] | None:
    if on_change is not None and not callable(on_change):
        msg = f"on_change must be callable or None, got {type(on_change).__name__}"
        raise TypeError(msg)
    return on_change


def _add_at(add_at: AddAt) -> AddAt:
    if add_at not in get_args(AddAt):
        msg = f"add_at must be 'anywhere' or 'end', got {add_at!r}"
        raise ValueError(msg)
    return add_at


@attrs.frozen(kw_only=True)
class LiveSettings:
    """What live mode does, checked when built (see :meth:`LiveControls.live`).

    The converters check in this order: ``rate``, ``per_request``, ``where``, ``add_at``, ``mix``,
    ``on_change``.
    """

    rate: float = attrs.field(default=0.0, converter=_rate)
    per_request: float = attrs.field(default=0.0, converter=_per_request)
    where: CallbackFilter | None = attrs.field(default=None, converter=_where)
    add_at: AddAt = attrs.field(default="anywhere", converter=_add_at)
    mix: dict[ChangeKind, float] = attrs.field(default=None, converter=check_mix)
    seed: int = 0
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[Change], None] | None = attrs.field(default=None, converter=_on_change)


class LiveChanges:
    """The live-mode state of one fake: settings, its random stream, the record."""

    def __init__(self, store: CallbackStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.changes: list[Change] = []
        self.configure(LiveSettings())

    def configure(self, settings: LiveSettings) -> None:
        """Set the changes to come; the time-based count restarts from now (rate 0: none)."""
        with self._lock:
            self.rate, self.mix, self.seed = settings.rate, settings.mix, settings.seed
            self.per_request = settings.per_request
            self.where, self.add_at = settings.where, settings.add_at
            self._clock = settings.clock
            self._on_change = settings.on_change
            self._rng = random.Random(f"ameyo-fake-live-{settings.seed}")
            self._started = settings.clock()
            self._timed = 0  # changes made for the elapsed time so far
            self._requests = self._counted = 0  # requests since configure, changes made for them
            self._added = 0
            self._spans: dict[str, tuple[int, int]] = {}

    def stop(self) -> None:
        """No more changes as requests arrive (``apply`` still works)."""
        with self._lock:
            self.rate = self.per_request = 0.0

    def owed(self) -> int:
        """Changes the elapsed time calls for that are not made yet."""
        if self.rate <= 0:
            return 0
        return max(0, math.floor((self._clock() - self._started) * self.rate) - self._timed)

    def catch_up(self, request: int | None = None) -> list[Change]:
        """Make the changes the elapsed time and this request owe (called as each arrives)."""
        if self.rate <= 0 and self.per_request <= 0:
            return []
        with self._lock:
            n = self.owed()
            self._timed += n
            if self.per_request > 0:
                self._requests += 1
                counted = math.floor(self._requests * self.per_request) - self._counted
                self._counted += counted
                n += counted
            return self._make(n, request)

    async def before_request(self, req: Request, ex: Exchange) -> Answer | None:
        """The pipeline hook: catch up as a request arrives; never answers in its place."""
        self.catch_up(ex.seq)
        return None

    def apply(self, n: int = 1, kind: ChangeKind | None = None) -> list[Change]:
        """Make ``n`` changes now, whatever the rate: of ``kind``, or drawn from the mix."""
        n = check_int("n", n, minimum=0)
        mix = self.mix if kind is None else check_mix({kind: 1.0})
        with self._lock:
            return self._make(n, None, mix)

    # ------------------------------------------------------------------

    def _make(
        self, n: int, request: int | None, mix: Mapping[ChangeKind, float] | None = None
    ) -> list[Change]:
        mix = self.mix if mix is None else mix
        kinds, weights = list(mix), list(mix.values())
        made: list[Change] = []
        with self._store.lock:
            for _ in range(n):
                kind = self._rng.choices(kinds, weights)[0]
                made.append(self._one(kind, request))
                self.changes.append(made[-1])
                if self._on_change is not None:
                    self._on_change(made[-1])
        return made

    def _pick(self) -> int | None:
        """A row live mode may touch, drawn at random (None: there is none).

        Rows are drawn among every row ever stored and redrawn while dead or
        outside ``where``: no ordered list is rebuilt per change (that cost
        O(n) after every delete and slowed the server under a high rate).
        """
        store, rng, where = self._store, self._rng, self.where
        cols = store.cols
        for _ in range(_PICK_TRIES):
            row = rng.randrange(len(cols)) if len(cols) else -1
            if row >= 0 and cols.alive[row] and (where is None or cols.keeps(where, row)):
                return row
        rows = store.select(where, "dateAdded")  # few rows match: draw among them
        return rows[rng.randrange(len(rows))] if rows else None

    def _one(self, kind: ChangeKind, request: int | None) -> Change:
        store, where = self._store, self.where
        row = self._pick()
        if row is None:
            kind = "add"  # nothing to delete or reschedule
        seq, now = len(self.changes) + 1, self._clock()
        if kind == "delete_due":
            due = store.first(where, "callbackTime")
            assert due is not None  # noqa: S101  (a row was picked: one is held)
            callback_id = store.cols.ids[due]
            store.remove(callback_id)
            return Change(seq, kind, callback_id, now, request)
        if kind == "delete_random":
            assert row is not None  # noqa: S101  (kind is "add" otherwise)
            callback_id = store.cols.ids[row]
            store.remove(callback_id)
            return Change(seq, kind, callback_id, now, request)
        if kind == "reschedule":
            assert row is not None  # noqa: S101
            callback_id = store.cols.ids[row]
            when = self._callback_time()
            previous = store.reschedule(callback_id, when)
            return Change(seq, kind, callback_id, now, request, when, previous)
        callback_id, when = self._add()
        return Change(seq, "add", callback_id, now, request, when)

    def _span(self, order: Literal["dateAdded", "callbackTime"]) -> tuple[int, int]:
        """The smallest and largest value of the field among the rows live mode touches.

        Measured once per :meth:`configure`, widened by the values live mode adds.
        """
        span = self._spans.get(order)
        if span is None:
            rows = self._store.select(self.where, order)
            cols = self._store.cols
            column = cols.added if order == "dateAdded" else cols.callback_time
            if not rows:
                return 1_704_067_200_000, 1_704_067_200_000 + 30 * 1440 * _MINUTE_MS
            span = self._spans[order] = (column[rows[0]], column[rows[-1]])
        return span

    def _widen(self, order: Literal["dateAdded", "callbackTime"], value: int) -> None:
        span = self._spans.get(order)
        if span is not None:
            self._spans[order] = (min(span[0], value), max(span[1], value))

    def _callback_time(self) -> int:
        low, high = self._span("callbackTime")
        when = self._bounded(self._rng.randint(low, high + _MINUTE_MS), "scheduled")
        self._widen("callbackTime", when)
        return when

    def _bounded(self, value: int, what: str) -> int:
        """``value`` moved within the ``where`` filter's bounds, so the change stays in scope."""
        if self.where is not None:
            low = getattr(self.where, f"from_date_{what}")
            high = getattr(self.where, f"to_date_{what}")
            value = value if low is None else max(value, low)
            value = value if high is None else min(value, high)
        return value

    def _add(self) -> tuple[str, int]:
        store, rng = self._store, self._rng
        low, high = self._span("dateAdded")
        added = rng.randint(low, high) if self.add_at == "anywhere" else high + rng.randint(1, 999)
        added = self._bounded(added, "added")
        self._widen("dateAdded", added)
        when = self._callback_time()
        template = self._pick()
        if template is not None:
            wire = store.cols.wire(template)
        else:
            where = self.where or CallbackFilter.tenant()
            user = where.user_ids[0] if where.user_ids else None
            wire = {
                "campaignId": where.campaign_id or DEFAULT_CAMPAIGNS[0],
                "selfCallback": user is not None,
                "userId": user,
                "phone": "+919800000000",
                "customerId": None,
            }
        while True:
            self._added += 1
            callback_id = f"live-{self.seed}-{self._added}"
            if callback_id not in store:
                break
        store.add_wire(
            {
                **wire,
                "customerCallbackId": callback_id,
                "dateAdded": added,
                "callbackTime": when,
            }
        )
        return callback_id, when


class LiveControls:
    """Live mode's part of ``FakeAmeyo``'s API (a mixin: the fake holds ``_live``)."""

    _live: LiveChanges

    def live(
        self,
        rate: float | None = None,
        *,
        per_request: float = 0.0,
        mix: Mapping[str, float] | None = None,
        seed: int = 0,
        where: CallbackFilter | None = None,
        add_at: AddAt = "anywhere",
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[Change], None] | None = None,
    ) -> None:
        """Change the list ``rate`` times a second (or ``per_request`` times a request) from now on.

        No thread runs: each arriving request first gets the changes the time
        since this call owes (``floor(elapsed * rate)`` in all), in-process and
        on a socket alike. ``per_request`` makes the changes by the count of
        requests instead (``floor(requests * per_request)`` in all, 2.4: 12
        changes every 5 requests), so a test sees as much change however fast
        the machine answers; ``rate`` is then 0 unless given (neither given:
        50 a second). ``mix`` weighs ``"delete_due"`` (smallest
        ``callbackTime``), ``"delete_random"``, ``"add"`` and ``"reschedule"``
        (None: alike); ``where`` keeps changes to a filter's callbacks; adds land
        anywhere in either order (``add_at="end"``: added last). The same data,
        ``seed`` and number of changes give the same changes; ``rate=0`` makes
        only those of :meth:`change`. Calling it again restarts the count and
        the stream. Each change is kept in :attr:`changes` as a :class:`Change`,
        and passed to ``on_change`` as it is made (under the store's lock, before
        the request that brought it is served: keep it quick; an exception
        from it reaches that request).
        """
        if rate is None:
            rate = 0.0 if per_request else 50.0
        self._live.configure(
            LiveSettings(
                rate=rate,
                per_request=per_request,
                mix=mix,
                seed=seed,
                where=where,
                add_at=add_at,
                clock=clock,
                on_change=on_change,
            )
        )

    def stop_live(self) -> None:
        """No more changes as requests arrive (:meth:`change` still makes some)."""
        self._live.stop()

    def change(self, n: int = 1, kind: ChangeKind | None = None) -> list[Change]:
        """Make ``n`` changes now, of ``kind`` or from :meth:`live`'s mix, from its stream."""
        return self._live.apply(n, kind)

    @property
    def changes(self) -> list[Change]:
        """Every change live mode made, oldest first (:class:`~._live.Change`)."""
        return list(self._live.changes)
