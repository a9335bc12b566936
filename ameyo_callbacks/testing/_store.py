"""The fake server's callback store: compact columns, one order, cached filters.

A million callbacks must fit in a test process and seed in seconds, so rows
are not dicts: each wire field is a column (``array`` of machine ints for the
numbers, plain lists for the strings, a small table for the few user ids).
Removed rows are tombstoned, never moved, so a row number stays valid.

The serving order is the one the fake promises: date added, then id. Each
filter asked for (campaign, user ids, date bounds) is computed once as an
``array`` of row numbers in that order and cached; later pages are slices of
it, O(limit). Adding a callback inserts it into every cached list that
keeps it (a bisect and an insert). Removing one is O(1): its row is marked,
and each cached list drops its marked rows the next time it is read, in one
C-speed pass. So a bulk delete of a million records never rescans per delete,
and no filter is computed twice.
"""

from __future__ import annotations

import bisect
import json
import random
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

import attrs

from .._convert import make_converter
from .._models import WIRE_NAMES, CustomerCallback

__all__ = ["CallbackStore", "Filter", "seed_store"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_NO_CUSTOMER = _INT64_MIN  # customerId null
_CACHE_SIZE = 64
_KNOWN_WIRE = frozenset(WIRE_NAMES.values())

# 2024-01-01T00:00:00Z, the start of the seeded "date added" range.
SEED_START_MS = 1_704_067_200_000
_DAY_MS = 86_400_000
_SEED_CHUNK = 100_000


def _quote_user(user: str | None) -> str:
    return "null" if user is None else _quote(user)


@attrs.define
class _Ordered:
    """Row numbers in serving order; rows removed after ``clean_at`` may linger."""

    rows: array[int]
    clean_at: int


@attrs.frozen
class Filter:
    """The filters of a list call, in wire form; the cache key of a filtered order."""

    campaign_id: int | None = None
    user_ids: frozenset[str] | None = None
    from_added: int | None = None
    to_added: int | None = None
    from_scheduled: int | None = None
    to_scheduled: int | None = None


class CallbackStore:
    """Callbacks in columns, served in (date added, id) order; thread-safe.

    The server thread reads while a test thread may add or remove, so every
    public method takes the store's lock.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._converter = make_converter()
        self.version = 0
        self.filter_builds = 0
        self._reset()

    def _reset(self) -> None:
        self._ids: list[str] = []
        self._campaign = array("q")
        self._callback_time = array("q")
        self._self_callback = bytearray()
        self._user = array("i")
        self._phone: list[str] = []
        self._customer = array("q")
        self._added = array("q")
        self._alive = bytearray()
        self._extra: dict[int, dict[str, Any]] = {}
        self._users: list[str | None] = []
        self._user_number: dict[str | None, int] = {}
        self._row_of: dict[str, int] = {}
        self._order: _Ordered | None = None
        self._cache: OrderedDict[Filter, _Ordered] = OrderedDict()
        self._removals = 0

    # ------------------------------------------------------------------
    # Reading

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, callback_id: object) -> bool:
        return callback_id in self._row_of

    @property
    def row_count(self) -> int:
        """Rows ever stored, removed ones included (the next row number)."""
        return len(self._ids)

    def ids(self) -> set[str]:
        """The ids of every callback held."""
        with self._lock:
            return set(self._row_of)

    def ordered_ids(self, flt: Filter | None = None) -> list[str]:
        """Ids of every callback (or those a filter keeps), in serving order."""
        with self._lock:
            return list(map(self._ids.__getitem__, self.select(flt or Filter())))

    def row_of(self, callback_id: str) -> int | None:
        """The row number of a callback, or None."""
        return self._row_of.get(callback_id)

    def get(self, callback_id: str) -> CustomerCallback | None:
        """One callback by id, or None."""
        with self._lock:
            row = self._row_of.get(callback_id)
            return None if row is None else self.record(row)

    def wire(self, row: int, *, info: bool = False) -> dict[str, Any]:
        """One row as the wire's JSON object (spec field order, then extra fields)."""
        customer = self._customer[row]
        record: dict[str, Any] = {
            "customerCallbackId": self._ids[row],
            "campaignId": self._campaign[row],
            "callbackTime": self._callback_time[row],
            "selfCallback": self._self_callback[row] == 1,
            "userId": self._users[self._user[row]],
            "phone": self._phone[row],
            "customerId": None if customer == _NO_CUSTOMER else customer,
            "dateAdded": self._added[row],
        }
        extra = self._extra.get(row)
        if extra:
            record.update(extra)
        if info and "info" not in record:
            record["info"] = {
                "scheduledBy": record["userId"] or "system",
                "comments": f"fake callback for customer {record['customerId']}",
            }
        return record

    def page_json(self, flt: Filter, offset: int, limit: int, *, info: bool) -> bytes:
        """The JSON array of one page of a filtered order: O(limit) once the filter is cached."""
        with self._lock:
            rows = self.select(flt)[offset : offset + limit]
            text = ",".join([self.row_json(row, info=info) for row in rows])
        return f"[{text}]".encode()

    def row_json(self, row: int, *, info: bool = False) -> str:
        """One row as compact JSON text: ``json.dumps(self.wire(row))``, faster."""
        if info or row in self._extra:
            return json.dumps(self.wire(row, info=info), separators=(",", ":"))
        # The serving hot path (a million-record export is 10,000 pages): the
        # same text as json.dumps, about 3x faster. A test holds the two equal.
        customer = self._customer[row]
        return (
            f'{{"customerCallbackId":{_quote(self._ids[row])},'
            f'"campaignId":{self._campaign[row]},'
            f'"callbackTime":{self._callback_time[row]},'
            f'"selfCallback":{"true" if self._self_callback[row] else "false"},'
            f'"userId":{_quote_user(self._users[self._user[row]])},'
            f'"phone":{_quote(self._phone[row])},'
            f'"customerId":{"null" if customer == _NO_CUSTOMER else customer},'
            f'"dateAdded":{self._added[row]}}}'
        )

    def record(self, row: int) -> CustomerCallback:
        """One row as a :class:`CustomerCallback`."""
        return self._converter.structure(self.wire(row), CustomerCallback)

    def records(self, flt: Filter | None = None) -> list[CustomerCallback]:
        """Every callback (or those a filter keeps), in serving order."""
        with self._lock:
            rows = self.select(flt or Filter())
            return [self.record(row) for row in rows]

    def select(self, flt: Filter) -> array[int]:
        """Row numbers kept by ``flt``, in (date added, id) order; cached per filter."""
        with self._lock:
            if flt == Filter():
                return self._ordered()
            cached = self._cache.get(flt)
            if cached is None:
                cached = _Ordered(self._compute(flt), self._removals)
                self._cache[flt] = cached
                if len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(flt)
            return self._compacted(cached)

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
        with self._lock:
            if record.customer_callback_id in self._row_of:
                if not replace:
                    msg = (
                        f"callback id {record.customer_callback_id!r} is already held: "
                        "remove it first or pass replace=True"
                    )
                    raise ValueError(msg)
                self.remove(record.customer_callback_id)
            row = self._append(wire)
            if extra:
                self._extra[row] = extra
            self._row_of[record.customer_callback_id] = row
            self.version += 1
            if self._order is not None:
                key = self._sort_key
                bisect.insort(self._order.rows, row, key=key)
                for flt, cached in self._cache.items():
                    if self._keeps(flt, row):
                        bisect.insort(cached.rows, row, key=key)

    def remove(self, callback_id: str) -> None:
        """Remove one callback; an unknown id raises KeyError."""
        with self._lock:
            row = self._row_of.pop(callback_id)
            # O(1): the row is only marked; ordered lists drop it when next read.
            self._alive[row] = 0
            self._extra.pop(row, None)
            self._removals += 1
            self.version += 1

    def remove_all(self, callback_ids: Iterable[str]) -> None:
        """Remove callbacks; KeyError (removing none) if one is not held."""
        ids = list(callback_ids)
        with self._lock:
            missing = [i for i in ids if i not in self._row_of]
            if missing:
                raise KeyError(missing[0])
            for callback_id in ids:
                self.remove(callback_id)

    def discard(self, callback_id: str) -> bool:
        """Remove one callback if held; True when it was."""
        with self._lock:
            if callback_id not in self._row_of:
                return False
            self.remove(callback_id)
            return True

    def clear(self) -> None:
        """Remove every callback."""
        with self._lock:
            self._reset()
            self.version += 1

    def bulk_load(
        self,
        *,
        ids: Sequence[str],
        campaigns: Sequence[int],
        callback_times: Sequence[int],
        self_callbacks: Sequence[bool],
        users: Sequence[str | None],
        phones: Sequence[str],
        customers: Sequence[int],
        added: Sequence[int],
    ) -> None:
        """Append many rows at once (trusted values, unique new ids): the seeding path."""
        with self._lock:
            start = len(self._ids)
            new = dict(zip(ids, range(start, start + len(ids)), strict=True))
            if len(new) != len(ids) or not new.keys().isdisjoint(self._row_of):
                msg = "bulk_load needs unique ids not already held"
                raise ValueError(msg)
            numbers = [self._user_no(u) for u in dict.fromkeys(users)]
            table = dict(zip(dict.fromkeys(users), numbers, strict=True))
            self._ids.extend(ids)
            self._campaign.extend(campaigns)
            self._callback_time.extend(callback_times)
            self._self_callback.extend(self_callbacks)
            self._user.extend(map(table.__getitem__, users))
            self._phone.extend(phones)
            self._customer.extend(customers)
            self._added.extend(added)
            self._alive.extend(b"\x01" * len(ids))
            self._row_of.update(new)
            self._order = None
            self._cache.clear()
            self.version += 1

    # ------------------------------------------------------------------
    # Internals

    def _user_no(self, user: str | None) -> int:
        number = self._user_number.get(user)
        if number is None:
            number = len(self._users)
            self._users.append(user)
            self._user_number[user] = number
        return number

    def _append(self, wire: Mapping[str, Any]) -> int:
        row = len(self._ids)
        customer = wire["customerId"]
        self._ids.append(wire["customerCallbackId"])
        self._campaign.append(wire["campaignId"])
        self._callback_time.append(wire["callbackTime"])
        self._self_callback.append(1 if wire["selfCallback"] else 0)
        self._user.append(self._user_no(wire["userId"]))
        self._phone.append(wire["phone"])
        self._customer.append(_NO_CUSTOMER if customer is None else customer)
        self._added.append(wire["dateAdded"])
        self._alive.append(1)
        return row

    def _sort_key(self, row: int) -> tuple[int, str]:
        return (self._added[row], self._ids[row])

    def _compacted(self, ordered: _Ordered) -> array[int]:
        """The rows of ``ordered``, with rows removed since its last read dropped."""
        if ordered.clean_at != self._removals:
            ordered.rows = array("q", filter(self._alive.__getitem__, ordered.rows))
            ordered.clean_at = self._removals
        return ordered.rows

    def _ordered(self) -> array[int]:
        if self._order is None:
            alive, added = self._alive, self._added
            rows = [row for row in range(len(self._ids)) if alive[row]]
            # Sort by date added with a C-level key (seeded rows come in sorted
            # runs, which timsort merges cheaply), then order each run of equal
            # dates by id: ties are rare, so this beats sorting on (date, id).
            rows.sort(key=added.__getitem__)
            dates = [added[row] for row in rows]
            start = 0
            for at in range(1, len(rows) + 1):
                if at == len(rows) or dates[at] != dates[start]:
                    if at - start > 1:
                        rows[start:at] = sorted(rows[start:at], key=self._ids.__getitem__)
                    start = at
            self._order = _Ordered(array("q", rows), self._removals)
            self._cache.clear()
        return self._compacted(self._order)

    def _keeps(self, flt: Filter, row: int) -> bool:
        added = self._added[row]
        scheduled = self._callback_time[row]
        return (
            (flt.campaign_id is None or self._campaign[row] == flt.campaign_id)
            and (flt.user_ids is None or self._users[self._user[row]] in flt.user_ids)
            and (flt.from_added is None or added >= flt.from_added)
            and (flt.to_added is None or added <= flt.to_added)
            and (flt.from_scheduled is None or scheduled >= flt.from_scheduled)
            and (flt.to_scheduled is None or scheduled <= flt.to_scheduled)
        )

    def _compute(self, flt: Filter) -> array[int]:
        self.filter_builds += 1
        rows: Iterable[int] = self._ordered()
        if flt.campaign_id is not None:
            campaign, wanted = self._campaign, flt.campaign_id
            rows = [r for r in rows if campaign[r] == wanted]
        if flt.user_ids is not None:
            numbers = {self._user_number[u] for u in flt.user_ids if u in self._user_number}
            user = self._user
            rows = [r for r in rows if user[r] in numbers]
        for column, low, high in (
            (self._added, flt.from_added, flt.to_added),
            (self._callback_time, flt.from_scheduled, flt.to_scheduled),
        ):
            rows = _between(rows, column, low, high)
        return array("q", rows)


def _between(
    rows: Iterable[int], column: array[int], low: int | None, high: int | None
) -> Iterable[int]:
    if low is not None and high is not None:
        return [r for r in rows if low <= column[r] <= high]
    if low is not None:
        return [r for r in rows if column[r] >= low]
    if high is not None:
        return [r for r in rows if column[r] <= high]
    return rows


def seed_store(
    store: CallbackStore,
    n: int,
    *,
    campaigns: Sequence[int],
    users: Sequence[str],
    seed: int,
    days: int = 30,
    start_ms: int = SEED_START_MS,
) -> None:
    """Append ``n`` deterministic callbacks spread over campaigns, users and dates.

    Ids look like ``d806-59423051-cm-17`` (campaign, customer, sequence), and
    are unique. One callback in five is a campaign callback (``selfCallback``
    false, ``userId`` null); the rest belong to one of ``users``. Date added is
    uniform over ``days`` days from ``start_ms``; the callback is scheduled 10
    minutes to 14 days after it was added.
    """
    if n < 0:
        msg = f"n must be >= 0, got {n}"
        raise ValueError(msg)
    if not campaigns or not users:
        msg = "seeding needs at least one campaign id and one user id"
        raise ValueError(msg)
    rng = random.Random(f"ameyo-fake-seed-{seed}")
    rand: Callable[[], float] = rng.random
    span = days * _DAY_MS
    lead_min, lead_span = 10 * 60_000, 14 * _DAY_MS - 10 * 60_000
    done = 0
    while done < n:  # in chunks, so seeding a million rows never holds a million temporaries
        k = min(_SEED_CHUNK, n - done)
        first = store.row_count  # sequence numbers continue across seedings
        camp = rng.choices(campaigns, k=k)
        user_pick = rng.choices(users, k=k)
        self_cb = [rand() >= 0.2 for _ in range(k)]
        user_col = [u if s else None for u, s in zip(user_pick, self_cb, strict=True)]
        customers = [10_000_000 + int(rand() * 90_000_000) for _ in range(k)]
        added = sorted([start_ms + int(rand() * span) for _ in range(k)])
        times = [a + lead_min + int(rand() * lead_span) for a in added]
        phones = [f"+9198{int(rand() * 100_000_000):08d}" for _ in range(k)]
        ids = [
            f"d8{c % 100:02d}-{cust}-cm-{i}"
            for i, c, cust in zip(range(first, first + k), camp, customers, strict=True)
        ]
        store.bulk_load(
            ids=ids,
            campaigns=camp,
            callback_times=times,
            self_callbacks=self_cb,
            users=user_col,
            phones=phones,
            customers=customers,
            added=added,
        )
        done += k
