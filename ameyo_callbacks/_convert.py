"""make_converter(): the cattrs rules between wire JSON and the records."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from ._models import _NO_EXTRA, WIRE_NAMES, CustomerCallback

attrs.resolve_types(CustomerCallback)
_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in attrs.fields(CustomerCallback)}

__all__ = [
    "DatedRecords",
    "RecordError",
    "datetime_to_epoch_ms",
    "epoch_ms_to_datetime",
    "make_converter",
    "structure_callbacks",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
# |ms| below this: ms / 1000 is a float within half a microsecond of the exact
# value (spacing 2**-20 s below 2**32 s), so fromtimestamp's rounding to the
# microsecond gives the exact datetime.
_FLOAT_EXACT_MS = 1 << 42
_KNOWN_WIRE = frozenset(WIRE_NAMES.values())


class RecordError(ValueError):
    """A wire record that does not fit :class:`CustomerCallback`.

    ``field`` is the wire name at fault (None when the record itself is not an
    object); the protocol layer turns this into a ``ResponseFormatError``.
    """

    def __init__(self, text: str, *, field: str | None, index: int | None = None) -> None:
        super().__init__(text)
        self.field = field
        self.index = index


def epoch_ms_to_datetime(value: object) -> datetime:
    """Epoch milliseconds (an int, not a bool or float) -> aware UTC datetime, exactly."""
    if type(value) is not int:
        msg = f"expected epoch milliseconds as an integer, got {type(value).__name__}"
        raise TypeError(msg)
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        msg = f"epoch milliseconds {value} is outside the dates Python can represent"
        raise ValueError(msg) from None


def datetime_to_epoch_ms(value: datetime) -> int:
    """Aware datetime -> epoch milliseconds (sub-millisecond parts are floored)."""
    if value.tzinfo is None or value.utcoffset() is None:
        msg = "naive datetime is ambiguous: pass an aware datetime (e.g. tzinfo=timezone.utc)"
        raise ValueError(msg)
    return (value - _EPOCH) // _ONE_MS


def _strict(kind: type) -> Callable[[object, type], Any]:
    # Exact type checks: the wire's types are part of the contract, and
    # cattrs' default int()/str() coercions would turn "6" into 6 or
    # True into "True" and break the exact round trip.
    def hook(value: object, _: type) -> Any:
        if type(value) is not kind:
            msg = f"expected {kind.__name__}, got {type(value).__name__}"
            raise TypeError(msg)
        return value

    return hook


def make_converter() -> cattrs.Converter:
    """Build the converter between Ameyo's wire JSON and the records.

    Rules:

    - ``datetime`` <-> epoch milliseconds: an int on the wire becomes an aware
      UTC datetime, exactly (negative and far-future values included, within
      Python's years 1-9999); an aware datetime becomes an int (floored to the
      millisecond); a naive datetime is refused.
    - ``int``, ``str`` and ``bool`` fields take exactly that JSON type (no
      ``"6"`` for 6, no ``true`` for 1); ``X | None`` also takes ``null``.
    - :class:`CustomerCallback` field names map to camelCase wire names
      (``customer_callback_id`` <-> ``customerCallbackId``); every wire field
      not modelled goes into ``extra`` and comes back out unchanged, so
      wire -> record -> wire gives the same JSON.
    """
    converter = cattrs.Converter(detailed_validation=False)
    converter.register_structure_hook(datetime, lambda v, _: epoch_ms_to_datetime(v))
    converter.register_unstructure_hook(datetime, datetime_to_epoch_ms)
    for kind in (int, str, bool):
        converter.register_structure_hook(kind, _strict(kind))

    renames: dict[str, Any] = {name: override(rename=wire) for name, wire in WIRE_NAMES.items()}
    unstructure_known = make_dict_unstructure_fn(
        CustomerCallback, converter, extra=override(omit=True), **renames
    )
    n_known = len(_KNOWN_WIRE)
    epoch, ms = _EPOCH, timedelta
    from_ts, utc, near = datetime.fromtimestamp, timezone.utc, _FLOAT_EXACT_MS
    wire_values = operator.itemgetter(*_HOT_WIRE)
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = _slot_setters()
    new, cls = object.__new__, CustomerCallback

    # The structure hook is written out by hand rather than generated: it is
    # the hot path of every export (B1 in benchmarks/). It reads the fields
    # with one itemgetter, checks their exact types inline and fills the
    # record's slots directly: what attrs' own ``__init__`` does for a frozen
    # class, less its per-field ``object.__setattr__`` lookups (the extra is
    # already read-only), about 3x faster than cattrs' per-field hook calls.
    # _diagnose() below re-checks field by field through the converter's own
    # hooks when a record does not fit; tests/test_convert.py holds the
    # records equal to ``CustomerCallback(...)``.
    def structure(value: Any, _: type) -> CustomerCallback:
        try:
            cb_id, campaign, cb_time, self_cb, user, phone, customer, added = wire_values(value)
            if not (
                type(cb_id) is str
                and type(campaign) is int
                and type(cb_time) is int
                and type(self_cb) is bool
                and (user is None or type(user) is str)
                and type(phone) is str
                and (customer is None or type(customer) is int)
                and type(added) is int
            ):
                raise TypeError  # noqa: TRY301  (diagnosed below)
            record: CustomerCallback = new(cls)
            s0(record, cb_id)
            s1(record, campaign)
            # Within +-2**42 ms (years 1830-2109) the float path is exact
            # and twice as fast; beyond, exact integer arithmetic.
            s2(
                record,
                from_ts(cb_time / 1000, utc)
                if -near < cb_time < near
                else epoch + ms(0, 0, 0, cb_time),
            )
            s3(record, self_cb)
            s4(record, user)
            s5(record, phone)
            s6(record, customer)
            s7(
                record,
                from_ts(added / 1000, utc) if -near < added < near else epoch + ms(0, 0, 0, added),
            )
            s8(
                record,
                MappingProxyType({k: v for k, v in value.items() if k not in _KNOWN_WIRE})
                if len(value) > n_known
                else _NO_EXTRA,
            )
        except Exception as exc:
            raise _diagnose(converter, value) from exc
        return record

    def unstructure(record: CustomerCallback) -> dict[str, Any]:
        known: dict[str, Any] = unstructure_known(record)
        if not record.extra:
            return known
        # extra first: a modelled field always wins over an extra of the same name.
        return {**record.extra, **known}

    converter.register_structure_hook(CustomerCallback, structure)
    converter.register_unstructure_hook(CustomerCallback, unstructure)
    return converter


# The wire fields the hot path reads, in CustomerCallback's order.
_HOT_WIRE = tuple(WIRE_NAMES.values())


def _slot_setters() -> tuple[Callable[[CustomerCallback, Any], None], ...]:
    """The ``__set__`` of each of CustomerCallback's slots, in field order.

    The structure hook fills a record through them. Should the class gain a
    validator, a converter the hook does not apply, or a non-slot field, this
    raises at import rather than skip it.
    """
    fields = attrs.fields(CustomerCallback)
    names = (*WIRE_NAMES, "extra")
    if (
        tuple(f.name for f in fields) != names
        or any(f.validator is not None for f in fields)
        or any(f.converter is not None for f in fields[:-1])  # (extra's: it gets read-only ones)
        or "__slots__" not in vars(CustomerCallback)
    ):  # pragma: no cover
        msg = "CustomerCallback changed: update _convert.make_converter's structure hook"
        raise TypeError(msg)
    return tuple(vars(CustomerCallback)[n].__set__ for n in names)


def _diagnose(converter: cattrs.Converter, value: object) -> RecordError:
    """Name the first field of a record that does not fit, and why."""
    if not isinstance(value, Mapping):
        return RecordError(f"expected a JSON object, got {type(value).__name__}", field=None)
    for name, wire in WIRE_NAMES.items():
        if wire not in value:
            return RecordError(f"field {wire!r} is missing", field=wire)
        try:
            converter.structure(value[wire], _FIELD_TYPES[name])
        except Exception as exc:  # noqa: BLE001
            return RecordError(f"field {wire!r}: {exc}", field=wire)
    return RecordError("record does not fit CustomerCallback", field=None)  # pragma: no cover


class DatedRecords(list[CustomerCallback]):
    """The records of one answer, and beside them each one's ``dateAdded`` in epoch ms.

    What a walk's fetcher returns: the planner reads the dates as the wire
    gave them instead of converting every record's datetime back (B1).
    """

    __slots__ = ("dates",)

    def __init__(
        self, records: Iterable[CustomerCallback] = (), dates: list[int] | None = None
    ) -> None:
        super().__init__(records)
        self.dates: list[int] = [] if dates is None else dates


def structure_callbacks(
    converter: cattrs.Converter, payload: object, *, dated: bool = False
) -> list[CustomerCallback]:
    """A decoded JSON list -> records; raises RecordError with the index in ``index``.

    ``dated``: a :class:`DatedRecords`, the dates beside the records.
    """
    if not isinstance(payload, list):
        msg = f"expected a JSON array of callbacks, got {type(payload).__name__}"
        raise RecordError(msg, field=None)
    structure, cls = converter.get_structure_hook(CustomerCallback), CustomerCallback
    try:
        records = [structure(item, cls) for item in payload]
    except RecordError:
        # One by one again, to name the first record that does not fit.
        for index, item in enumerate(payload):
            try:
                structure(item, cls)
            except RecordError as exc:  # noqa: PERF203  (the error path only)
                exc.index = index
                raise
        raise
    if dated:
        # (each item is a mapping with an int dateAdded: the hook checked it)
        return DatedRecords(records, [item["dateAdded"] for item in payload])
    return records
