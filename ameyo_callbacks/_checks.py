"""Argument checks: one way to refuse a bad argument, everywhere.

A wrong *type* is a ``TypeError``, a wrong *value* a ``ValueError``, and the
message names the parameter. ``bool`` is never accepted where a number is
due (it is an ``int`` subclass, and ``concurrency=True`` is a mistake), and a
``str`` or ``bytes`` is never accepted where an iterable of strings is due
(``delete_callbacks("d806-abc")`` would otherwise send one DELETE per
character).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_strings",
]


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) within ``minimum..maximum``."""
    if type(value) is not int:
        msg = f"{name} must be an int, got {type(value).__name__}"
        raise TypeError(msg)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        msg = f"{name} must be {bounds}, got {value}"
        raise ValueError(msg)
    return value


def check_float(
    name: str, value: object, *, minimum: float = 0.0, allow_none: bool = False
) -> float | None:
    """A real number (int or float, not a bool) >= ``minimum``; None only if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a number, got {type(value).__name__}"
        raise TypeError(msg)
    if not value >= minimum:  # also refuses NaN
        msg = f"{name} must be a number >= {minimum:g}, got {value!r}"
        raise ValueError(msg)
    return float(value)


def check_strings(name: str, value: object) -> Iterable[str]:
    """An iterable of strings, not a single ``str`` or ``bytes`` (its items are not checked).

    The items are left to the caller, so that a lazy iterable stays lazy.
    """
    if isinstance(value, (str, bytes, bytearray)):
        msg = (
            f"{name} must be an iterable of strings, not a single {type(value).__name__}: "
            f"wrap it in a list, e.g. [{value!r}]"
        )
        raise TypeError(msg)
    if not isinstance(value, Iterable):
        msg = f"{name} must be an iterable of strings, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def check_bool(name: str, value: object) -> bool:
    """True or False (not 1, not "yes")."""
    if not isinstance(value, bool):
        msg = f"{name} must be True or False, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """One of the strings ``choices``: another type is a TypeError, another string a ValueError."""
    listed = ", ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        msg = f"{name} must be one of {listed}, got {type(value).__name__}"
        raise TypeError(msg)
    if value not in choices:
        msg = f"{name} must be one of {listed}, got {value!r}"
        raise ValueError(msg)
    return value
