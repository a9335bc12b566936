"""CallbackFilter: what a list call selects, checked when built.

One value stands for the filters every list call takes (habit 12): the scope
(one campaign, or the whole tenant), the agents, and the two date ranges. It
is built through one of two named constructors, so the scope is always said
out loud::

    CallbackFilter.campaign(6, user_ids=["asha"], from_date_added=t0)
    CallbackFilter.tenant(to_date_scheduled=t1)

Its repr says in words what it selects (bounds in UTC ISO form), so a log
line or a confirmation prompt can show it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Union

import attrs

from ._checks import check_int, check_strings
from ._convert import datetime_to_epoch_ms, epoch_ms_to_datetime

__all__ = ["CallbackFilter", "DateBound"]

#: A date filter bound: an aware ``datetime``, or epoch milliseconds as an ``int``.
DateBound = Union[datetime, int]  # noqa: UP007  (a typing alias can carry a public __module__)

_BOUNDS = ("from_date_added", "to_date_added", "from_date_scheduled", "to_date_scheduled")
_WIRE = {
    "from_date_added": "fromDateAdded",
    "to_date_added": "toDateAdded",
    "from_date_scheduled": "fromDateScheduled",
    "to_date_scheduled": "toDateScheduled",
}


def _to_ms(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            msg = (
                f"{name} is a naive datetime, which is ambiguous: pass an aware datetime "
                "(e.g. datetime(..., tzinfo=timezone.utc)) or epoch milliseconds as an int"
            )
            raise ValueError(msg)
        return datetime_to_epoch_ms(value)
    if type(value) is int:
        try:
            epoch_ms_to_datetime(value)  # ValueError when no datetime can show it
        except ValueError as exc:
            msg = f"{name}: {exc}; pass epoch milliseconds (e.g. 1521539038782) or a datetime"
            raise ValueError(msg) from None
        return value
    msg = f"{name} must be an aware datetime or int epoch milliseconds, got {type(value).__name__}"
    raise TypeError(msg)


def _from_date_added(value: object) -> int | None:
    return _to_ms("from_date_added", value)


def _to_date_added(value: object) -> int | None:
    return _to_ms("to_date_added", value)


def _from_date_scheduled(value: object) -> int | None:
    return _to_ms("from_date_scheduled", value)


def _to_date_scheduled(value: object) -> int | None:
    return _to_ms("to_date_scheduled", value)


def _user_ids(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    ids = tuple(check_strings("user_ids", value))
    if not ids:
        msg = (
            "user_ids is empty, which would match every user: pass None to not filter "
            "by user, or at least one user id"
        )
        raise ValueError(msg)
    for uid in ids:
        if not isinstance(uid, str):
            msg = f"user_ids must hold strings, got {type(uid).__name__}"
            raise TypeError(msg)
        if not uid.strip():
            msg = "user_ids must not hold an empty or blank user id"
            raise ValueError(msg)
    return ids


def _campaign_id(value: object) -> int | None:
    if value is None:
        return None
    return check_int("campaign_id", value, minimum=1)


def _iso(ms: int) -> str:
    moment = epoch_ms_to_datetime(ms)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen(repr=False)
class CallbackFilter:
    """What a list call selects: a campaign or the tenant, agents, date ranges.

    Build it with :meth:`campaign` or :meth:`tenant`. Bounds are inclusive
    and held as epoch milliseconds, the wire's unit (``from_date_added`` and
    the rest; :meth:`bounds` gives them as aware UTC datetimes). Every
    argument is checked here, before any request: a naive ``datetime``, a
    ``from_*`` after its ``to_*``, an empty or single-string ``user_ids``,
    a ``campaign_id`` that is not a positive int are refused.

    ``campaign_id`` is None for the tenant-wide list. The value is hashable
    and comparable; ``attrs.evolve(where, user_ids=["ravi"])`` makes a
    changed copy, checked again.
    """

    campaign_id: int | None = attrs.field(converter=_campaign_id)
    user_ids: tuple[str, ...] | None = attrs.field(default=None, converter=_user_ids)
    from_date_added: int | None = attrs.field(default=None, converter=_from_date_added)
    to_date_added: int | None = attrs.field(default=None, converter=_to_date_added)
    from_date_scheduled: int | None = attrs.field(default=None, converter=_from_date_scheduled)
    to_date_scheduled: int | None = attrs.field(default=None, converter=_to_date_scheduled)

    def __attrs_post_init__(self) -> None:
        for what in ("added", "scheduled"):
            lo = getattr(self, f"from_date_{what}")
            hi = getattr(self, f"to_date_{what}")
            if lo is not None and hi is not None and lo > hi:
                msg = (
                    f"from_date_{what} ({_iso(lo)}) is after to_date_{what} ({_iso(hi)}): swap them"
                )
                raise ValueError(msg)

    @classmethod
    def campaign(
        cls,
        campaign_id: int,
        *,
        user_ids: Iterable[str] | None = None,
        from_date_added: DateBound | None = None,
        to_date_added: DateBound | None = None,
        from_date_scheduled: DateBound | None = None,
        to_date_scheduled: DateBound | None = None,
    ) -> CallbackFilter:
        """The callbacks of one campaign (getFiltered), optionally narrowed."""
        if campaign_id is None:
            msg = "campaign_id must be an int, got NoneType: use CallbackFilter.tenant() for all"
            raise TypeError(msg)
        return cls(
            campaign_id,
            user_ids=user_ids,  # the converters check and convert
            from_date_added=from_date_added,
            to_date_added=to_date_added,
            from_date_scheduled=from_date_scheduled,
            to_date_scheduled=to_date_scheduled,
        )

    @classmethod
    def tenant(
        cls,
        *,
        user_ids: Iterable[str] | None = None,
        from_date_added: DateBound | None = None,
        to_date_added: DateBound | None = None,
        from_date_scheduled: DateBound | None = None,
        to_date_scheduled: DateBound | None = None,
    ) -> CallbackFilter:
        """Every callback of the tenant ("Get Tenant User Callback API"), optionally narrowed."""
        return cls(
            None,
            user_ids=user_ids,  # the converters check and convert
            from_date_added=from_date_added,
            to_date_added=to_date_added,
            from_date_scheduled=from_date_scheduled,
            to_date_scheduled=to_date_scheduled,
        )

    @property
    def is_tenant(self) -> bool:
        """True for the tenant-wide list."""
        return self.campaign_id is None

    def bounds(self) -> dict[str, datetime]:
        """The bounds that are set, as aware UTC datetimes, by field name."""
        return {
            name: epoch_ms_to_datetime(ms)
            for name in _BOUNDS
            if (ms := getattr(self, name)) is not None
        }

    def params(self) -> list[tuple[str, str]]:
        """The filter's query parameters, in the spec's order (no ``campaignId``)."""
        out: list[tuple[str, str]] = []
        if self.user_ids is not None:
            out.extend(("userIds", uid) for uid in self.user_ids)
        for name in _BOUNDS:
            value = getattr(self, name)
            if value is not None:
                out.append((_WIRE[name], str(value)))
        return out

    def describe(self) -> str:
        """What this filter selects, in words (the repr without the class name)."""
        scope = "the whole tenant" if self.campaign_id is None else f"campaign {self.campaign_id}"
        parts = [scope]
        if self.user_ids is not None:
            parts.append("users " + ", ".join(self.user_ids))
        for what in ("added", "scheduled"):
            lo = getattr(self, f"from_date_{what}")
            hi = getattr(self, f"to_date_{what}")
            if lo is not None and hi is not None:
                parts.append(f"{what} {_iso(lo)} to {_iso(hi)}")
            elif lo is not None:
                parts.append(f"{what} from {_iso(lo)}")
            elif hi is not None:
                parts.append(f"{what} up to {_iso(hi)}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<CallbackFilter {self.describe()}>"
