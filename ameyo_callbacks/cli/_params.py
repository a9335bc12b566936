"""Click parameters shared by commands: date bounds, the list filters, ``--concurrency``.

``filter_options`` adds ``--user-id``, ``--added-from`` and the rest and
hands the command one :class:`FilterBounds`, whose :meth:`FilterBounds.where_for`
makes the :class:`~ameyo_callbacks.CallbackFilter` of a campaign or of the
tenant. Inside, each bound has one name, the library's (``from_date_added``
for ``--added-from``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import attrs
import click
from click.shell_completion import CompletionItem

from .. import CallbackFilter
from ._dates import DATE_FORMS, DateError, iso_ms, parse_bound

__all__ = [
    "DATES_HELP",
    "Concurrency",
    "DateBound",
    "FilterBounds",
    "campaign_ids_option",
    "filter_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class DateBound(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A date filter bound -> int epoch milliseconds (see :mod:`._dates` for the forms)."""

    name = "date"

    def __init__(self, *, end_of_day: bool) -> None:
        self.end_of_day = end_of_day

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if type(value) is int:
            return value
        try:
            return parse_bound(str(value), end_of_day=self.end_of_day)
        except DateError as exc:
            self.fail(str(exc), param, ctx)


class Concurrency(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """``--concurrency``: an int in ``[1, maximum]``, or ``auto`` (any case) -> ``"auto"``."""

    name = "concurrency"

    def __init__(self, *, maximum: int) -> None:
        self.maximum = maximum

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | Literal["auto"]:
        if type(value) is int:
            number = value
        else:
            text = str(value).strip()
            if text.lower() == "auto":
                return "auto"
            try:
                number = int(text)
            except ValueError:
                self.fail(
                    f"{text!r} is neither a number of deletes (1 to {self.maximum}) nor 'auto'",
                    param,
                    ctx,
                )
        if not 1 <= number <= self.maximum:
            self.fail(
                f"{number} is not in the range 1 to {self.maximum} (or 'auto' to follow "
                "the server)",
                param,
                ctx,
            )
        return number

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Tab completes ``auto``."""
        return [CompletionItem("auto")] if "auto".startswith(incomplete.lower()) else []


@attrs.frozen
class FilterBounds:
    """The filter flags as given: users and inclusive bounds in epoch milliseconds."""

    user_ids: tuple[str, ...] | None = None
    from_date_added: int | None = None
    to_date_added: int | None = None
    from_date_scheduled: int | None = None
    to_date_scheduled: int | None = None

    def __bool__(self) -> bool:
        """True when any filter flag was given."""
        return any(getattr(self, f.name) is not None for f in attrs.fields(FilterBounds))

    def where_for(self, campaign_id: int | None) -> CallbackFilter:
        """The filter of one campaign, or of the tenant for ``None``."""
        bounds = attrs.asdict(self, recurse=False)
        if campaign_id is None:
            return CallbackFilter.tenant(**bounds)
        return CallbackFilter.campaign(campaign_id, **bounds)


#: (flag, field name) of each bound, for messages naming the flag.
_FLAGS = (
    ("--added-from", "from_date_added"),
    ("--added-to", "to_date_added"),
    ("--scheduled-from", "from_date_scheduled"),
    ("--scheduled-to", "to_date_scheduled"),
)

#: (flag, field name, a day means its end, what it keeps) of each date option, in --help order.
_DATE_OPTIONS = (
    ("--scheduled-from", "from_date_scheduled", False, "scheduled at or after this time."),
    (
        "--scheduled-to",
        "to_date_scheduled",
        True,
        "scheduled at or before this time (a day: its end).",
    ),
    ("--added-from", "from_date_added", False, "added at or after this time."),
    ("--added-to", "to_date_added", True, "added at or before this time (a day: its end)."),
)

_FILTER_OPTIONS = (
    click.option(
        "--user-id",
        "user_ids",
        multiple=True,
        metavar="USER",
        help="Only callbacks of this agent (repeat for several).",
    ),
    *(
        click.option(
            flag,
            name,
            type=DateBound(end_of_day=end_of_day),
            metavar="DATE",
            help=f"Only callbacks {keeps}",
        )
        for flag, name, end_of_day, keeps in _DATE_OPTIONS
    ),
)
_FILTER_NAMES = tuple(f.name for f in attrs.fields(FilterBounds))

DATES_HELP = (
    f"Dates: {DATE_FORMS}. A day is midnight UTC, or for a --*-to bound the end of that "
    "day, inclusive. A time without an offset is refused as ambiguous; so is a bare "
    "integer that is not plausible epoch milliseconds (1973 to 4999): 1706693400 looks "
    "like epoch seconds, and 20240131 is the day 2024-01-31."
)


def _check_range(bounds: FilterBounds) -> None:
    for what in ("added", "scheduled"):
        (lo_flag, lo_name), (hi_flag, hi_name) = (f for f in _FLAGS if f[1].endswith(what))
        lo, hi = getattr(bounds, lo_name), getattr(bounds, hi_name)
        if lo is not None and hi is not None and lo > hi:
            msg = f"{lo_flag} ({iso_ms(lo)}) is after {hi_flag} ({iso_ms(hi)}): swap them"
            raise click.UsageError(msg)


def campaign_ids_option(help_text: str) -> Callable[[F], F]:
    """The repeatable ``--campaign-id ID`` option (``campaign_ids``), with its own help."""
    return click.option(
        "--campaign-id",
        "campaign_ids",
        type=click.IntRange(min=1),
        multiple=True,
        metavar="ID",
        help=help_text,
    )


def filter_options(func: F) -> F:
    """Add the list filters to a command; it receives them as ``bounds=FilterBounds``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _FILTER_NAMES}
        users = given["user_ids"]
        if any(not user.strip() for user in users):
            msg = "--user-id must not be empty"
            raise click.UsageError(msg)
        given["user_ids"] = tuple(user.strip() for user in users) or None
        bounds = FilterBounds(**given)
        _check_range(bounds)
        return func(*args, bounds=bounds, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_FILTER_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
