"""Frozen records: what the API returns, in Python types. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["WIRE_NAMES", "CustomerCallback", "Page"]


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


@attrs.frozen
class Page:
    """One page of a walk: its records, where it started, and where the next starts.

    ``next_offset`` is the offset to pass as ``start_offset`` to resume the
    walk after this page (it counts every record the server returned, also
    the duplicates the walk dropped).
    """

    items: tuple[CustomerCallback, ...]
    offset: int
    next_offset: int
