"""The fake server's callback store: rows in columns, stable orders, cached filters.

Rows live in :class:`~._columns.Columns`. The fake serves them in one of two
stable orders, by date added or by callback time, ties by id. Each (order,
filter) asked for is computed once as an ``array`` of row numbers and
cached; later pages are slices of it, O(limit). Adding a callback inserts it
into every cached list that keeps it (a bisect and an insert). Removing one
is O(1): its row is marked, and each cached list drops its marked rows the
next time it is read, in one C-speed pass. So a bulk delete of a million
records never rescans per delete, and no filter is computed twice.
Rescheduling is a removal and an add of the same id with the new time.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import random
import threading
from array import array
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._convert import make_converter
from .._filters import CallbackFilter
from .._models import WIRE_NAMES, CustomerCallback
from ._columns import SORT_ORDERS, Columns, Rows, SortOrder

__all__ = ["CallbackStore"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_CACHE_SIZE = 64
#: Removals an ordered list catches up on one by one; more, and it is rebuilt.
_FEW_REMOVALS = 32
_KNOWN_WIRE = frozenset(WIRE_NAMES.values())
_EVERYTHING = CallbackFilter.tenant()


@attrs.define
class _Ordered:
    """Row numbers in serving order; rows removed after ``clean_at`` may linger."""

    rows: array[int]
    clean_at: int


class CallbackStore:
    """Callbacks in columns, served in a stable order; thread-safe.

    The server thread reads while a test thread may add or remove, so every
    public method takes the store's ``lock`` (re-entrant: hold it to make
    several calls one step).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._converter = make_converter()
        self.version = 0
        self.filter_builds = 0
        self._reset()

    def _reset(self) -> None:
        self.cols = Columns()
        self._row_of: dict[str, int] = {}
        self._orders: dict[SortOrder, _Ordered] = {}
        self._cache: OrderedDict[tuple[SortOrder, CallbackFilter], _Ordered] = OrderedDict()
        self._removals = 0
        self._removed: deque[int] = deque(maxlen=_FEW_REMOVALS)  # the last rows removed

    # ------------------------------------------------------------------
    # Reading

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, callback_id: object) -> bool:
        return callback_id in self._row_of

    @property
    def row_count(self) -> int:
        """Rows ever stored, removed ones included (the next row number)."""
        return len(self.cols)

    def ids(self) -> set[str]:
        """The ids of every callback held."""
        with self.lock:
            return set(self._row_of)

    def ordered_ids(
        self, flt: CallbackFilter | None = None, order: SortOrder = "dateAdded"
    ) -> list[str]:
        """Ids of every callback (or those a filter keeps), in ``order``."""
        with self.lock:
            return list(map(self.cols.ids.__getitem__, self.select(flt, order)))

    def row_of(self, callback_id: str) -> int | None:
        """The row number of a callback, or None."""
        return self._row_of.get(callback_id)

    def get(self, callback_id: str) -> CustomerCallback | None:
        """One callback by id, or None."""
        with self.lock:
            row = self._row_of.get(callback_id)
            return None if row is None else self.record(row)

    def wire(self, row: int, *, info: bool = False) -> dict[str, Any]:
        """One row as the wire's JSON object (spec field order, then extra fields)."""
        return self.cols.wire(row, info=info)

    def row_json(self, row: int, *, info: bool = False) -> str:
        """One row as compact JSON text (``json.dumps(self.wire(row))``, faster)."""
        return self.cols.row_json(row, info=info)

    def page_json(
        self,
        flt: CallbackFilter,
        offset: int,
        limit: int,
        *,
        info: bool,
        order: SortOrder = "dateAdded",
        shuffle: random.Random | None = None,
        ties: random.Random | None = None,
    ) -> bytes:
        """The JSON array of one page of a filtered order: O(limit) once the filter is cached.

        With ``shuffle``, the whole filtered list is shuffled first (an
        unstable order: O(n) per page). With ``ties`` (a dateAdded order),
        callbacks added in the same millisecond come in a new order in each
        answer: the page is cut from its span widened to whole milliseconds,
        each shuffled (O(limit) plus the ties at its two edges).
        """
        with self.lock:
            rows: Sequence[int] = self.select(flt, order)
            if shuffle is not None:
                rows = list(rows)
                shuffle.shuffle(rows)
            page: Sequence[int] = rows[offset : offset + limit]
            if ties is not None and page:
                page = self._tied(rows, offset, len(page), ties)
            text = ",".join([self.cols.row_json(r, info=info) for r in page])
        return f"[{text}]".encode()

    def _tied(self, rows: Sequence[int], offset: int, n: int, rng: random.Random) -> list[int]:
        """``rows[offset:offset + n]`` of a dateAdded order whose ties are shuffled anew."""
        added = self.cols.added
        start, end = offset, offset + n
        while start > 0 and added[rows[start - 1]] == added[rows[offset]]:
            start -= 1
        while end < len(rows) and added[rows[end]] == added[rows[offset + n - 1]]:
            end += 1
        span = list(rows[start:end])
        out: list[int] = []
        i = 0
        while i < len(span):
            j = i
            while j < len(span) and added[span[j]] == added[span[i]]:
                j += 1
            group = span[i:j]
            rng.shuffle(group)
            out.extend(group)
            i = j
        return out[offset - start : offset - start + n]

    def record(self, row: int) -> CustomerCallback:
        """One row as a :class:`CustomerCallback`."""
        return self._converter.structure(self.cols.wire(row), CustomerCallback)

    def records(
        self, flt: CallbackFilter | None = None, order: SortOrder = "dateAdded"
    ) -> list[CustomerCallback]:
        """Every callback (or those a filter keeps), in ``order``."""
        with self.lock:
            return [self.record(row) for row in self.select(flt, order)]

    def select(self, flt: CallbackFilter | None, order: SortOrder = "dateAdded") -> array[int]:
        """Row numbers kept by ``flt`` (None: all), in ``order``; cached per (order, filter)."""
        with self.lock:
            if flt is None or flt == _EVERYTHING:
                return self._ordered(order)
            key = (order, flt)
            cached = self._cache.get(key)
            if cached is None:
                self.filter_builds += 1
                cached = _Ordered(self.cols.narrow(flt, self._ordered(order)), self._removals)
                self._cache[key] = cached
                if len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return self._compacted(cached)

    def first(self, flt: CallbackFilter | None, order: SortOrder = "dateAdded") -> int | None:
        """The first row of ``select(flt, order)`` (None: none), without compacting it.

        O(rows removed since the last read) instead of O(n): live mode's
        "delete the callback due first" runs per change.
        """
        with self.lock:
            if flt is None or flt == _EVERYTHING:
                ordered = self._orders.get(order)
            else:
                ordered = self._cache.get((order, flt))
            if ordered is None:  # not built yet: build it (compacted) once
                rows = self.select(flt, order)
                return rows[0] if rows else None
            alive = self.cols.alive
            return next((row for row in ordered.rows if alive[row]), None)

    # ------------------------------------------------------------------
    # Writing

    def add_wire(self, record: Mapping[str, Any], *, replace: bool = False) -> None:
        """Add one callback given as a wire dict (types checked as the client checks them)."""
        checked = self._converter.structure(dict(record), CustomerCallback)
        self.add_record(checked, replace=replace)

    def add_record(self, record: CustomerCallback, *, replace: bool = False) -> None:
        """Add one :class:`CustomerCallback`; an id already held raises unless ``replace``."""
        wire = self._converter.unstructure(record)
        extra = {k: v for k, v in wire.items() if k not in _KNOWN_WIRE}
        json.dumps(extra)  # extra fields must be JSON: fail here, not when serving
        for name in ("campaignId", "callbackTime", "customerId", "dateAdded"):
            value = wire[name]
            if value is not None and not _INT64_MIN < value <= _INT64_MAX:
                msg = f"{name} {value} does not fit the 64-bit integer Ameyo stores"
                raise ValueError(msg)
        with self.lock:
            if record.customer_callback_id in self._row_of:
                if not replace:
                    msg = (
                        f"callback id {record.customer_callback_id!r} is already held: "
                        "remove it first or pass replace=True"
                    )
                    raise ValueError(msg)
                self.remove(record.customer_callback_id)
            self._insert(self.cols.append(wire, extra))

    def reschedule(self, callback_id: str, callback_time: int) -> int:
        """Set a callback's ``callbackTime`` (epoch ms); its previous value. KeyError if unknown."""
        with self.lock:
            row = self._row_of[callback_id]
            wire = self.cols.wire(row)
            extra = {k: v for k, v in wire.items() if k not in _KNOWN_WIRE}
            previous: int = wire["callbackTime"]
            self.remove(callback_id)
            self._insert(self.cols.append({**wire, "callbackTime": callback_time}, extra))
            return previous

    def remove(self, callback_id: str) -> None:
        """Remove one callback; an unknown id raises KeyError."""
        with self.lock:
            row = self._row_of.pop(callback_id)
            # O(1): the row is only marked; ordered lists drop it when next read.
            self.cols.kill(row)
            self._removals += 1
            self._removed.append(row)
            self.version += 1

    def remove_all(self, callback_ids: Iterable[str]) -> None:
        """Remove callbacks; KeyError (removing none) if one is not held."""
        ids = list(callback_ids)
        with self.lock:
            missing = [i for i in ids if i not in self._row_of]
            if missing:
                raise KeyError(missing[0])
            for callback_id in ids:
                self.remove(callback_id)

    def discard(self, callback_id: str) -> bool:
        """Remove one callback if held; True when it was."""
        with self.lock:
            if callback_id not in self._row_of:
                return False
            self.remove(callback_id)
            return True

    def clear(self) -> None:
        """Remove every callback."""
        with self.lock:
            self._reset()
            self.version += 1

    def bulk_load(self, rows: Rows) -> None:
        """Append many rows at once (trusted values, unique new ids): the seeding path."""
        with self.lock:
            start = len(self.cols)
            new = dict(zip(rows.ids, range(start, start + len(rows.ids)), strict=True))
            if len(new) != len(rows.ids) or not new.keys().isdisjoint(self._row_of):
                msg = "bulk_load needs unique ids not already held"
                raise ValueError(msg)
            self.cols.extend(rows)
            self._row_of.update(new)
            self._orders.clear()
            self._cache.clear()
            self.version += 1

    # ------------------------------------------------------------------
    # Internals

    def _insert(self, row: int) -> None:
        """Index a freshly appended row: the id, and every order and filter built so far."""
        self._row_of[self.cols.ids[row]] = row
        self.version += 1
        for order, ordered in self._orders.items():
            bisect.insort(ordered.rows, row, key=self.cols.sort_key(order))
        for (order, flt), cached in self._cache.items():
            if self.cols.keeps(flt, row):
                bisect.insort(cached.rows, row, key=self.cols.sort_key(order))

    def _compacted(self, ordered: _Ordered) -> array[int]:
        """The rows of ``ordered``, with rows removed since its last read dropped."""
        missed = self._removals - ordered.clean_at
        if 0 < missed <= len(self._removed):
            # A few removals since (live mode: one or two per request): drop
            # those rows one by one (a C-level search each), not a rebuild.
            rows = ordered.rows
            for row in list(self._removed)[-missed:]:
                with contextlib.suppress(ValueError):  # not kept by this filter
                    del rows[rows.index(row)]
            ordered.clean_at = self._removals
        elif missed:
            ordered.rows = array("q", filter(self.cols.alive.__getitem__, ordered.rows))
            ordered.clean_at = self._removals
        return ordered.rows

    def _ordered(self, order: SortOrder) -> array[int]:
        if order not in SORT_ORDERS:
            msg = f"order must be one of {', '.join(SORT_ORDERS)}, got {order!r}"
            raise ValueError(msg)
        ordered = self._orders.get(order)
        if ordered is None:
            ordered = _Ordered(self.cols.sorted_alive(order), self._removals)
            self._orders[order] = ordered
            for key in [k for k in self._cache if k[0] == order]:
                del self._cache[key]
        return self._compacted(ordered)
