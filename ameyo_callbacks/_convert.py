"""make_converter(): the cattrs rules between wire JSON and the records."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
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
    fits = _HOT_TYPES
    make = _record_maker()

    # The structure hook is written out by hand rather than generated: it is
    # the hot path of every export (B1 in benchmarks/), and reading the fields
    # with one itemgetter, checking their exact types as one tuple and filling
    # the record's slots directly makes it about 2.5x faster than cattrs'
    # per-field hook calls. _diagnose() below re-checks field by field
    # through the converter's own hooks when a record does not fit.
    def structure(value: Any, _: type) -> CustomerCallback:
        try:
            values = wire_values(value)
            if tuple(map(type, values)) not in fits:
                raise TypeError  # noqa: TRY301  (diagnosed below)
            cb_id, campaign, cb_time, self_cb, user, phone, customer, added = values
            extra = (
                MappingProxyType({k: v for k, v in value.items() if k not in _KNOWN_WIRE})
                if len(value) > n_known
                else _NO_EXTRA
            )
            return make(
                cb_id,
                campaign,
                # Within +-2**42 ms (years 1830-2109) the float path is exact
                # and twice as fast; beyond, exact integer arithmetic.
                from_ts(cb_time / 1000, utc)
                if -near < cb_time < near
                else epoch + ms(0, 0, 0, cb_time),
                self_cb,
                user,
                phone,
                customer,
                from_ts(added / 1000, utc) if -near < added < near else epoch + ms(0, 0, 0, added),
                extra,
            )
        except Exception as exc:
            raise _diagnose(converter, value) from exc

    def unstructure(record: CustomerCallback) -> dict[str, Any]:
        known: dict[str, Any] = unstructure_known(record)
        if not record.extra:
            return known
        # extra first: a modelled field always wins over an extra of the same name.
        return {**record.extra, **known}

    converter.register_structure_hook(CustomerCallback, structure)
    converter.register_unstructure_hook(CustomerCallback, unstructure)
    return converter


# The wire fields the hot path reads, in CustomerCallback's order, and the exact
# types it takes for them (userId and customerId may be null).
_HOT_WIRE = tuple(WIRE_NAMES.values())
_HOT_TYPES = frozenset(
    (str, int, int, bool, user, str, customer, int)
    for user in (str, type(None))
    for customer in (int, type(None))
)


def _record_maker() -> Callable[..., CustomerCallback]:
    """A CustomerCallback from its field values, in order, already converted.

    It fills the slots directly: what attrs' own ``__init__`` does for a
    frozen class, less its per-field ``object.__setattr__`` lookups (the
    ``extra`` passed in is already read-only). tests/test_convert.py holds it
    equal to ``CustomerCallback(...)``; should the class gain a validator or
    a non-slot field, this raises at import rather than skip it.
    """
    fields = attrs.fields(CustomerCallback)
    names = (*WIRE_NAMES, "extra")
    if (
        tuple(f.name for f in fields) != names
        or any(f.validator is not None for f in fields)
        or "__slots__" not in vars(CustomerCallback)
    ):  # pragma: no cover
        msg = "CustomerCallback changed: update _convert._record_maker"
        raise TypeError(msg)
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = (vars(CustomerCallback)[n].__set__ for n in names)
    new, cls = object.__new__, CustomerCallback

    def make(  # noqa: PLR0917  (one per field, in order)
        a: str,
        b: int,
        c: datetime,
        d: bool,
        e: str | None,
        f: str,
        g: int | None,
        h: datetime,
        extra: Mapping[str, Any],
    ) -> CustomerCallback:
        record: CustomerCallback = new(cls)
        s0(record, a)
        s1(record, b)
        s2(record, c)
        s3(record, d)
        s4(record, e)
        s5(record, f)
        s6(record, g)
        s7(record, h)
        s8(record, extra)
        return record

    return make


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

    def __init__(self) -> None:
        super().__init__()
        self.dates: list[int] = []


def structure_callbacks(
    converter: cattrs.Converter, payload: object, *, dated: bool = False
) -> list[CustomerCallback]:
    """A decoded JSON list -> records; raises RecordError with the index in ``index``.

    ``dated``: a :class:`DatedRecords`, the dates beside the records.
    """
    if not isinstance(payload, list):
        msg = f"expected a JSON array of callbacks, got {type(payload).__name__}"
        raise RecordError(msg, field=None)
    structure = converter.get_structure_hook(CustomerCallback)
    out: list[CustomerCallback] = DatedRecords() if dated else []
    append = out.append
    index = 0
    try:
        for index, item in enumerate(payload):  # noqa: B007  (read in the handler)
            append(structure(item, CustomerCallback))
    except RecordError as exc:
        exc.index = index
        raise
    if isinstance(out, DatedRecords):
        # (each item is a mapping with an int dateAdded: the hook checked it)
        out.dates = [item["dateAdded"] for item in payload]
    return out
