"""The date bounds the command line accepts, parsed by rules of its own.

The accepted forms are the same on every Python version (no
``datetime.fromisoformat``, whose rules grew in 3.11), and a form that could
be read two ways is refused with a hint instead of guessed:

- a day, ``2024-01-31`` or ``20240131``: midnight UTC for a ``--*-from``
  bound, the day's last millisecond (23:59:59.999 UTC) for a ``--*-to`` bound;
- a date and time with an offset, ``2024-01-31T09:30:00+05:30``: ``T`` or a
  space between them; seconds and a fraction (1 to 6 digits) optional; the
  offset ``Z``, ``+HH:MM``, ``+HHMM`` or ``+HH``. Without an offset it is
  ambiguous and refused. A fraction finer than the wire's milliseconds is
  rounded inward (up for a ``from`` bound, down for a ``to`` bound), so the
  bound never widens;
- epoch milliseconds, a bare integer, only when plausible: at least 10^11
  (March 1973) and before the year 5000. Anything else is refused, with a
  hint when it looks like epoch seconds or microseconds.

:func:`parse_bound` returns epoch milliseconds, the wire's unit.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

__all__ = ["DATE_FORMS", "DateError", "iso_ms", "parse_bound", "to_ms"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
#: The smallest bare integer read as epoch milliseconds (1973-03-03T09:46:40Z).
MIN_EPOCH_MS = 10**11
#: Bare integers from here on are refused (5000-01-01T00:00:00Z).
MAX_EPOCH_MS = (datetime(5000, 1, 1, tzinfo=timezone.utc) - EPOCH) // _ONE_MS
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - EPOCH) // _ONE_MS

DATE_FORMS = (
    "ISO-8601 with an offset (2024-01-31T09:30:00+05:30, or Z for UTC), a date "
    "(2024-01-31 or 20240131), or epoch milliseconds (1706693400000)"
)

_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})|(\d{4})(\d{2})(\d{2})")
_MOMENT = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ]"
    r"(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,6}))?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_INTEGER = re.compile(r"[+-]?\d+")


class DateError(ValueError):
    """A bound that is not one of the accepted forms; the message says what to pass."""


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as UTC ISO-8601 with milliseconds and ``Z``."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds (the wire's unit)."""
    return (moment - EPOCH) // _ONE_MS


_ms = to_ms


def _day(text: str, *, end_of_day: bool) -> int | None:
    match = _DAY.fullmatch(text)
    if match is None:
        return None
    groups = [g for g in match.groups() if g is not None]
    year, month, day = map(int, groups)
    try:
        start = date(year, month, day)
    except ValueError as exc:
        msg = f"{text!r} is not a date ({exc}): pass a real day, e.g. 2024-01-31"
        raise DateError(msg) from None
    ms = _ms(datetime(start.year, start.month, start.day, tzinfo=timezone.utc))
    return min(ms + 86_400_000 - 1, _MAX_MS) if end_of_day else ms


def _offset(text: str, tz: str | None) -> timezone:
    if tz is None:
        msg = (
            f"{text!r} has no UTC offset, so it is ambiguous: add one "
            f"(e.g. {text}Z for UTC, or {text}+05:30)"
        )
        raise DateError(msg)
    if tz in ("Z", "z"):
        return timezone.utc
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        msg = f"{text!r} has an impossible UTC offset {tz}: offsets run from -23:59 to +23:59"
        raise DateError(msg)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if tz[0] == "-" else delta)


def _moment(text: str, *, end_of_day: bool) -> int | None:
    match = _MOMENT.fullmatch(text)
    if match is None:
        return None
    fraction = match["f"] or ""
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    tz = _offset(text, match["tz"])
    try:
        moment = datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"] or 0),
            micro - micro % 1000,
            tzinfo=tz,
        )
        ms = _ms(moment)
    except (ValueError, OverflowError) as exc:
        msg = f"{text!r} is not a date and time ({exc})"
        raise DateError(msg) from None
    if micro % 1000 and not end_of_day:
        ms += 1  # a from-bound rounds up: the bound never takes in an earlier millisecond
    return ms


def _epoch(text: str) -> int:
    n = int(text)
    if MIN_EPOCH_MS <= n < MAX_EPOCH_MS:
        return n
    if MIN_EPOCH_MS // 1000 <= n < MAX_EPOCH_MS // 1000:  # 1973 to 4999 in seconds
        day = (EPOCH + timedelta(seconds=n)).date().isoformat()
        msg = f"{text} looks like epoch seconds: pass {n * 1000} or {day}"
        raise DateError(msg)
    if MAX_EPOCH_MS * 1000 > n >= MIN_EPOCH_MS * 1000:
        day = (EPOCH + timedelta(microseconds=n)).date().isoformat()
        msg = f"{text} looks like epoch microseconds: pass {n // 1000} or {day}"
        raise DateError(msg)
    msg = (
        f"{text} is not a plausible time: a bare integer is read as epoch milliseconds "
        f"only from {MIN_EPOCH_MS} (1973) to before the year 5000. Pass {DATE_FORMS}"
    )
    raise DateError(msg)


def parse_bound(value: str, *, end_of_day: bool) -> int:
    """One date bound as epoch milliseconds, or a :class:`DateError` saying what to pass.

    ``end_of_day`` is true for a ``--*-to`` bound: a day then means its last
    millisecond, and a sub-millisecond fraction is rounded down, not up.
    """
    text = value.strip()
    for parse in (_day, _moment):
        ms = parse(text, end_of_day=end_of_day)
        if ms is not None:
            return ms
    if _INTEGER.fullmatch(text):  # 8 digits were read as YYYYMMDD above, never as ms
        return _epoch(text)
    msg = f"{text!r} is not a date: pass {DATE_FORMS}"
    raise DateError(msg)
