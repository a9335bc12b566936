"""Frozen records: what the API returns, in Python types. No I/O here."""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["CHECKPOINT_ANCHORS", "WIRE_NAMES", "Cursor", "CustomerCallback", "Page", "fingerprint"]


_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    if value is _NO_EXTRA:
        return value
    return MappingProxyType(dict(value))


@attrs.frozen
class CustomerCallback:
    """One scheduled callback, as ``getFiltered`` returns it.

    Times are aware UTC :class:`~datetime.datetime` (the wire carries epoch
    milliseconds). ``extra`` keeps every wire field this record does not
    model (``info=true`` adds some), read-only, so that a record converted
    back to the wire gives the JSON it came from.
    """

    customer_callback_id: str
    campaign_id: int
    callback_time: datetime
    self_callback: bool
    user_id: str | None
    phone: str
    customer_id: int | None
    date_added: datetime
    extra: Mapping[str, Any] = attrs.field(
        default=_NO_EXTRA, converter=_frozen_mapping, hash=False, repr=lambda m: repr(dict(m))
    )


# snake_case field -> camelCase wire name, in the spec's order.
WIRE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "customer_callback_id": "customerCallbackId",
        "campaign_id": "campaignId",
        "callback_time": "callbackTime",
        "self_callback": "selfCallback",
        "user_id": "userId",
        "phone": "phone",
        "customer_id": "customerId",
        "date_added": "dateAdded",
    }
)


#: Ids a checkpoint names at most (those added in the frontier's millisecond).
CHECKPOINT_ANCHORS = 4096
_CHECKPOINT_PREFIX = "ck2."


def fingerprint(record: CustomerCallback) -> str:
    """8 hex digits that change when a record's listed fields change (a reschedule)."""
    text = (
        f"{record.callback_time.isoformat()}|{record.date_added.isoformat()}|{record.user_id}|"
        f"{record.campaign_id}|{record.phone}|{record.customer_id}|{record.self_callback}"
    )
    return format(zlib.crc32(text.encode()), "08x")


@attrs.frozen
class Cursor:
    """Where a walk stands after a page: what a checkpoint carries (no secret in it).

    ``offset`` counts the records yielded (what ``start_offset`` takes on a
    still list); ``date`` is the walk's frontier in epoch ms: every callback
    added before it is done, and so are the ``ids`` added at that very
    millisecond; ``scope`` is a fingerprint of the filter; ``skip``: ids
    (with their dates, at or past ``date``) done already, out of date order
    (a walk cut by ``max_items`` while it re-covered dates). None: a bare
    offset (no frontier known).
    """

    offset: int
    date: int | None = None
    ids: tuple[str, ...] = ()
    scope: str = ""
    skip: tuple[tuple[str, int], ...] = ()

    def encode(self) -> str:
        """The checkpoint string: ``ck2.`` and base64url JSON, ASCII only."""
        body: dict[str, Any] = {"o": self.offset}
        if self.date is not None:
            body["d"] = self.date
            body["i"] = list(self.ids[-CHECKPOINT_ANCHORS:])
        if self.scope:
            body["s"] = self.scope
        if self.skip:
            body["k"] = [list(pair) for pair in self.skip]
        raw = json.dumps(body, separators=(",", ":")).encode()
        return _CHECKPOINT_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: object) -> Cursor:
        """Read a checkpoint string back; ValueError (TypeError) for anything else."""
        if not isinstance(text, str):
            msg = (
                "resume_from must be a checkpoint string (Page.checkpoint), "
                f"got {type(text).__name__}"
            )
            raise TypeError(msg)
        bad = (
            "resume_from is not a checkpoint of iter_callbacks: pass the Page.checkpoint "
            "string of a page the walk yielded, unchanged"
        )
        if not text.startswith(_CHECKPOINT_PREFIX):
            raise ValueError(bad)
        data = text[len(_CHECKPOINT_PREFIX) :]
        try:
            body = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            offset = body["o"]
            date = body.get("d")
            listed = body.get("i", [])
            ids = tuple(i for i in listed if isinstance(i, str))
            scope = str(body.get("s", ""))
            skip = tuple((i, m) for i, m in body.get("k", []))
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
            raise ValueError(bad) from None
        for value in (offset, date):
            if value is not None and (type(value) is not int or value < -(2**62)):
                raise ValueError(bad)
        if offset is None or offset < 0 or len(ids) != len(listed):
            raise ValueError(bad)
        if any(not isinstance(i, str) or type(m) is not int for i, m in skip):
            raise ValueError(bad)
        return cls(offset=offset, date=date, ids=ids, scope=scope, skip=skip)


@attrs.frozen
class Page:
    """One page of a walk: its new records, where they start, where the next one starts.

    ``offset`` counts the records the walk yielded before this page and
    ``next_offset`` those up to its end: on a still list ordered by
    ``dateAdded`` they are the raw offsets ``start_offset`` takes; after a
    seek or in date windows they only count. ``checkpoint`` is what
    ``iter_callbacks(where, resume_from=...)`` takes to resume exactly
    after this page, even when the list changed in between.
    """

    items: tuple[CustomerCallback, ...]
    offset: int
    next_offset: int
    _cursor: Cursor | None = attrs.field(default=None, repr=False, eq=False, hash=False)

    @property
    def checkpoint(self) -> str:
        """An opaque, JSON-safe string: where the walk stood after this page (no secrets)."""
        cursor = self._cursor
        if cursor is None:
            cursor = Cursor(offset=self.next_offset)
        return cursor.encode()
