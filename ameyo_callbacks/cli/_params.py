"""Click parameters shared by commands: date bounds and the list filters."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

import click

__all__ = ["DATES_HELP", "DateBound", "check_range", "filter_options"]

F = TypeVar("F", bound=Callable[..., Any])

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH_MS = re.compile(r"-?\d+")
_ONE_MS = timedelta(milliseconds=1)


class DateBound(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A date filter bound -> an aware UTC ``datetime`` or int epoch milliseconds.

    Accepted: ISO-8601 with an offset (``2024-01-31T09:30:00+05:30``, ``...Z``);
    a date ``YYYY-MM-DD``, which is midnight UTC for a ``--*-from`` bound and
    the end of that day (23:59:59.999 UTC, inclusive) for a ``--*-to`` bound;
    or epoch milliseconds, a bare integer. A date and time without an offset
    is refused: it is ambiguous.
    """

    name = "date"

    def __init__(self, *, end_of_day: bool) -> None:
        self.end_of_day = end_of_day

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime | int:
        if isinstance(value, (datetime, int)) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if _EPOCH_MS.fullmatch(text):
            return int(text)
        if _DATE.fullmatch(text):
            try:
                day = date.fromisoformat(text)
            except ValueError as exc:
                self.fail(f"{text!r} is not a date: {exc}", param, ctx)
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            if not self.end_of_day:
                return start
            try:
                return start + timedelta(days=1) - _ONE_MS
            except OverflowError:  # 9999-12-31
                return datetime.max.replace(microsecond=999000, tzinfo=timezone.utc)
        iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError:
            self.fail(
                f"{text!r} is not a date: use ISO-8601 with an offset "
                "(2024-01-31T09:30:00+05:30 or ...Z), a date (2024-01-31) or epoch "
                "milliseconds (1706693400000)",
                param,
                ctx,
            )
        if moment.tzinfo is None or moment.utcoffset() is None:
            self.fail(
                f"{text!r} has no UTC offset, so it is ambiguous: add one "
                f"(e.g. {text}Z for UTC, or {text}+05:30)",
                param,
                ctx,
            )
        return moment


def _ms(bound: datetime | int) -> int:
    if isinstance(bound, int):
        return bound
    return (bound - datetime(1970, 1, 1, tzinfo=timezone.utc)) // _ONE_MS


def check_range(
    low: datetime | int | None, high: datetime | int | None, low_flag: str, high_flag: str
) -> None:
    """Refuse a range whose start is after its end, naming the flags."""
    if low is not None and high is not None and _ms(low) > _ms(high):
        msg = f"{low_flag} is after {high_flag}: swap them"
        raise click.UsageError(msg)


_FILTER_OPTIONS = (
    click.option(
        "--user-id",
        "user_ids",
        multiple=True,
        metavar="USER",
        help="Only callbacks of this agent (repeat for several).",
    ),
    click.option(
        "--scheduled-from",
        type=DateBound(end_of_day=False),
        help="Only callbacks scheduled at or after this time.",
    ),
    click.option(
        "--scheduled-to",
        type=DateBound(end_of_day=True),
        help="Only callbacks scheduled at or before this time (a date: its end).",
    ),
    click.option(
        "--added-from",
        type=DateBound(end_of_day=False),
        help="Only callbacks added at or after this time.",
    ),
    click.option(
        "--added-to",
        type=DateBound(end_of_day=True),
        help="Only callbacks added at or before this time (a date: its end).",
    ),
)
_FILTER_NAMES = ("user_ids", "scheduled_from", "scheduled_to", "added_from", "added_to")

DATES_HELP = (
    "Dates: ISO-8601 with an offset (2024-01-31T09:30:00+05:30, or Z for UTC), a date "
    "(2024-01-31: midnight UTC; for a --*-to bound the end of that day, inclusive), or "
    "epoch milliseconds (1706693400000). A time without an offset is refused as ambiguous."
)


def filter_options(func: F) -> F:
    """Add the list filters to a command; it receives them as ``filters=`` client keywords."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _FILTER_NAMES}
        if any(not user.strip() for user in given["user_ids"]):
            msg = "--user-id must not be empty"
            raise click.UsageError(msg)
        check_range(
            given["scheduled_from"], given["scheduled_to"], "--scheduled-from", "--scheduled-to"
        )
        check_range(given["added_from"], given["added_to"], "--added-from", "--added-to")
        filters = {
            "user_ids": given["user_ids"] or None,
            "from_date_scheduled": given["scheduled_from"],
            "to_date_scheduled": given["scheduled_to"],
            "from_date_added": given["added_from"],
            "to_date_added": given["added_to"],
        }
        return func(*args, filters={k: v for k, v in filters.items() if v is not None}, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_FILTER_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
