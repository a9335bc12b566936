"""The store's rows as columns: compact storage, wire encoding, filters and sorting.

A million callbacks must fit in a test process and seed in seconds, so rows
are not dicts: each wire field is a column (``array`` of machine ints for the
numbers, plain lists for the strings, a small table for the few user ids).
Removed rows are tombstoned (``alive``), never moved, so a row number stays
valid. :class:`Columns` knows nothing of orders kept or caches: that is
``_store``'s job. Not thread-safe on its own: the store holds its lock.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, Literal

import attrs

from .._filters import CallbackFilter

__all__ = ["LIST_ORDERS", "SORT_ORDERS", "Columns", "ListOrder", "Rows", "SortOrder"]

#: The stable orders the fake can serve: by this wire field, then by id.
SortOrder = Literal["dateAdded", "callbackTime"]
SORT_ORDERS: tuple[SortOrder, ...] = ("dateAdded", "callbackTime")
#: What a list answer may follow: a stable order, "ties" (by date added, each
#: answer listing callbacks added in one millisecond in a new order: ORDER BY
#: dateAdded on a column that is not unique) or "unstable" (no ORDER BY: the
#: whole list shuffled per answer).
ListOrder = Literal["dateAdded", "callbackTime", "ties", "unstable"]
LIST_ORDERS: tuple[ListOrder, ...] = (*SORT_ORDERS, "ties", "unstable")

NO_CUSTOMER = -(2**63)  # customerId null


@attrs.frozen
class Rows:
    """Many trusted rows as columns, one sequence a wire field (the seeding path's batch).

    ``customers`` holds ints (no null); ``users`` None for a campaign callback.
    """

    ids: Sequence[str]
    campaigns: Sequence[int]
    callback_times: Sequence[int]
    self_callbacks: Sequence[bool]
    users: Sequence[str | None]
    phones: Sequence[str]
    customers: Sequence[int]
    added: Sequence[int]


def _quote_user(user: str | None) -> str:
    return "null" if user is None else _quote(user)


class Columns:
    """Every row ever stored, one column per wire field, plus ``alive`` marks."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.campaign = array("q")
        self.callback_time = array("q")
        self.self_callback = bytearray()
        self.user = array("i")
        self.phone: list[str] = []
        self.customer = array("q")
        self.added = array("q")
        self.alive = bytearray()
        self.extra: dict[int, dict[str, Any]] = {}
        self.users: list[str | None] = []
        self.user_number: dict[str | None, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def user_no(self, user: str | None) -> int:
        """The number of a user id in the small user table (added when new)."""
        number = self.user_number.get(user)
        if number is None:
            number = len(self.users)
            self.users.append(user)
            self.user_number[user] = number
        return number

    def append(self, wire: Mapping[str, Any], extra: dict[str, Any]) -> int:
        """Store one checked wire record; its row number."""
        row = len(self.ids)
        customer = wire["customerId"]
        self.ids.append(wire["customerCallbackId"])
        self.campaign.append(wire["campaignId"])
        self.callback_time.append(wire["callbackTime"])
        self.self_callback.append(1 if wire["selfCallback"] else 0)
        self.user.append(self.user_no(wire["userId"]))
        self.phone.append(wire["phone"])
        self.customer.append(NO_CUSTOMER if customer is None else customer)
        self.added.append(wire["dateAdded"])
        self.alive.append(1)
        if extra:
            self.extra[row] = extra
        return row

    def extend(self, rows: Rows) -> None:
        """Append many trusted rows at once (the seeding path)."""
        distinct = list(dict.fromkeys(rows.users))
        table = dict(zip(distinct, [self.user_no(u) for u in distinct], strict=True))
        self.ids.extend(rows.ids)
        self.campaign.extend(rows.campaigns)
        self.callback_time.extend(rows.callback_times)
        self.self_callback.extend(rows.self_callbacks)
        self.user.extend(map(table.__getitem__, rows.users))
        self.phone.extend(rows.phones)
        self.customer.extend(rows.customers)
        self.added.extend(rows.added)
        self.alive.extend(b"\x01" * len(rows.ids))

    def kill(self, row: int) -> None:
        """Tombstone a row (O(1))."""
        self.alive[row] = 0
        self.extra.pop(row, None)

    # ------------------------------------------------------------------
    # Encoding

    def wire(self, row: int, *, info: bool = False) -> dict[str, Any]:
        """One row as the wire's JSON object (spec field order, then extra fields)."""
        customer = self.customer[row]
        record: dict[str, Any] = {
            "customerCallbackId": self.ids[row],
            "campaignId": self.campaign[row],
            "callbackTime": self.callback_time[row],
            "selfCallback": self.self_callback[row] == 1,
            "userId": self.users[self.user[row]],
            "phone": self.phone[row],
            "customerId": None if customer == NO_CUSTOMER else customer,
            "dateAdded": self.added[row],
        }
        extra = self.extra.get(row)
        if extra:
            record.update(extra)
        if info and "info" not in record:
            record["info"] = {
                "scheduledBy": record["userId"] or "system",
                "comments": f"fake callback for customer {record['customerId']}",
            }
        return record

    def row_json(self, row: int, *, info: bool = False) -> str:
        """One row as compact JSON text: ``json.dumps(self.wire(row))``, faster."""
        if info or row in self.extra:
            return json.dumps(self.wire(row, info=info), separators=(",", ":"))
        # The serving hot path (a million-record export is 10,000 pages): the
        # same text as json.dumps, about 3x faster. A test holds the two equal.
        customer = self.customer[row]
        return (
            f'{{"customerCallbackId":{_quote(self.ids[row])},'
            f'"campaignId":{self.campaign[row]},'
            f'"callbackTime":{self.callback_time[row]},'
            f'"selfCallback":{"true" if self.self_callback[row] else "false"},'
            f'"userId":{_quote_user(self.users[self.user[row]])},'
            f'"phone":{_quote(self.phone[row])},'
            f'"customerId":{"null" if customer == NO_CUSTOMER else customer},'
            f'"dateAdded":{self.added[row]}}}'
        )

    # ------------------------------------------------------------------
    # Orders and filters

    def sort_key(self, order: SortOrder) -> Callable[[int], tuple[int, str]]:
        """The key a row sorts by in ``order``: (that field, id)."""
        column = self.added if order == "dateAdded" else self.callback_time
        ids = self.ids
        return lambda row: (column[row], ids[row])

    def sorted_alive(self, order: SortOrder) -> array[int]:
        """Every live row in ``order``."""
        alive = self.alive
        column = self.added if order == "dateAdded" else self.callback_time
        rows = [row for row in range(len(self.ids)) if alive[row]]
        # Sort by the field with a C-level key (seeded rows come in sorted runs,
        # which timsort merges cheaply), then order each run of equal values by
        # id: ties are rare, so this beats sorting on (value, id).
        rows.sort(key=column.__getitem__)
        values = [column[row] for row in rows]
        start = 0
        for at in range(1, len(rows) + 1):
            if at == len(rows) or values[at] != values[start]:
                if at - start > 1:
                    rows[start:at] = sorted(rows[start:at], key=self.ids.__getitem__)
                start = at
        return array("q", rows)

    def keeps(self, flt: CallbackFilter, row: int) -> bool:
        """True when ``flt`` selects ``row``."""
        added = self.added[row]
        scheduled = self.callback_time[row]
        return (
            (flt.campaign_id is None or self.campaign[row] == flt.campaign_id)
            and (flt.user_ids is None or self.users[self.user[row]] in flt.user_ids)
            and (flt.from_date_added is None or added >= flt.from_date_added)
            and (flt.to_date_added is None or added <= flt.to_date_added)
            and (flt.from_date_scheduled is None or scheduled >= flt.from_date_scheduled)
            and (flt.to_date_scheduled is None or scheduled <= flt.to_date_scheduled)
        )

    def narrow(self, flt: CallbackFilter, rows: Iterable[int]) -> array[int]:
        """The rows ``flt`` keeps, in the order given; column by column, not row by row."""
        if flt.campaign_id is not None:
            campaign, wanted = self.campaign, flt.campaign_id
            rows = [r for r in rows if campaign[r] == wanted]
        if flt.user_ids is not None:
            numbers = {self.user_number[u] for u in flt.user_ids if u in self.user_number}
            user = self.user
            rows = [r for r in rows if user[r] in numbers]
        for column, low, high in (
            (self.added, flt.from_date_added, flt.to_date_added),
            (self.callback_time, flt.from_date_scheduled, flt.to_date_scheduled),
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
