"""make_converter(): wire JSON <-> CustomerCallback, exactly, or a RecordError."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
from _support import SPEC_CALLBACK, examples, spec_record
from hypothesis import given, settings
from hypothesis import strategies as st

from ameyo_callbacks._convert import (
    RecordError,
    datetime_to_epoch_ms,
    epoch_ms_to_datetime,
    make_converter,
    structure_callbacks,
)
from ameyo_callbacks._models import WIRE_NAMES, CustomerCallback, Page

MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z, the first instant Python represents
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last whole millisecond
KNOWN_WIRE = frozenset(WIRE_NAMES.values())
SPEC_RECORD = spec_record()

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
epoch_ms = st.integers(MIN_MS, MAX_MS)
extra_fields = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k not in KNOWN_WIRE), json_values, max_size=5
)


@st.composite
def wire_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record as the server sends it, unknown fields mixed in anywhere."""
    known = {
        "customerCallbackId": draw(st.text()),
        "campaignId": draw(st.integers()),
        "callbackTime": draw(epoch_ms),
        "selfCallback": draw(st.booleans()),
        "userId": draw(st.none() | st.text()),
        "phone": draw(st.text()),
        "customerId": draw(st.none() | st.integers()),
        "dateAdded": draw(epoch_ms),
    }
    fields = list({**known, **draw(extra_fields)}.items())
    return dict(draw(st.permutations(fields)))


def _canonical(value: object) -> str:
    # json.dumps tells true from 1 and 1.0 from 1, which == does not.
    return json.dumps(value, sort_keys=True)


@pytest.fixture(scope="module")
def converter() -> cattrs.Converter:
    return make_converter()


def _record(**changes: Any) -> CustomerCallback:
    return make_converter().structure({**SPEC_RECORD, **changes}, CustomerCallback)


@settings(max_examples=examples(500), deadline=None)
@given(records=st.lists(wire_records(), max_size=5))
def test_wire_to_record_to_wire_is_exact(records: list[dict[str, Any]]) -> None:
    """wire JSON -> records -> wire JSON gives the same JSON, extra fields and nulls included."""
    converter = make_converter()
    structured = structure_callbacks(converter, records)
    assert all(type(r) is CustomerCallback for r in structured)
    back = [converter.unstructure(r) for r in structured]
    assert _canonical(back) == _canonical(records)
    assert back == records


@settings(max_examples=examples(300), deadline=None)
@given(record=wire_records())
def test_structured_datetimes_are_aware_utc_at_the_same_millisecond(
    record: dict[str, Any],
) -> None:
    """callbackTime and dateAdded become aware UTC datetimes of exactly that instant."""
    structured = make_converter().structure(record, CustomerCallback)
    for value, wire in (
        (structured.callback_time, "callbackTime"),
        (structured.date_added, "dateAdded"),
    ):
        assert value.tzinfo is timezone.utc
        assert value.utcoffset() == timedelta(0)
        expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=record[wire])
        assert value == expected


@pytest.mark.parametrize(
    ("millis", "expected"),
    [
        (MIN_MS, datetime(1, 1, 1, tzinfo=timezone.utc)),
        (-1, datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)),
        (0, datetime(1970, 1, 1, tzinfo=timezone.utc)),
        (1521539038782, datetime(2018, 3, 20, 9, 43, 58, 782000, tzinfo=timezone.utc)),
        (MAX_MS, datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)),
    ],
)
def test_epoch_milliseconds_map_to_exact_instants(millis: int, expected: datetime) -> None:
    """Epoch ms <-> datetime is exact at the spec sample, around 0 and at Python's limits."""
    assert epoch_ms_to_datetime(millis) == expected
    assert datetime_to_epoch_ms(expected) == millis
    record = _record(callbackTime=millis, dateAdded=millis)
    assert record.callback_time == expected
    assert make_converter().unstructure(record)["dateAdded"] == millis


def test_spec_sample_structures_to_python_values(converter: cattrs.Converter) -> None:
    """The spec's sample record becomes snake_case attributes with Python values."""
    record = converter.structure(SPEC_RECORD, CustomerCallback)
    assert record == SPEC_CALLBACK  # the tests' decoded sample (tests/_support.py), pinned here
    sample = datetime(2018, 3, 20, 9, 43, 58, 782000, tzinfo=timezone.utc)
    assert (record.callback_time, record.date_added) == (sample, sample)
    assert (record.customer_callback_id, record.user_id) == ("d810-59423051-cm-0", "Stieve")
    assert record.extra == {}


def test_null_user_and_customer_ids_stay_none(converter: cattrs.Converter) -> None:
    """userId and customerId may be null, and come back null."""
    wire = {**SPEC_RECORD, "userId": None, "customerId": None}
    record = converter.structure(wire, CustomerCallback)
    assert (record.user_id, record.customer_id) == (None, None)
    assert converter.unstructure(record) == wire


def test_unknown_fields_go_to_extra_and_come_back(converter: cattrs.Converter) -> None:
    """Fields the record does not model (info=true adds some) land in extra, unchanged."""
    wire = {**SPEC_RECORD, "info": {"note": "call after 5"}, "priority": 3}
    record = converter.structure(wire, CustomerCallback)
    assert dict(record.extra) == {"info": {"note": "call after 5"}, "priority": 3}
    assert not hasattr(record, "priority")
    assert converter.unstructure(record) == wire


def test_unstructure_refuses_a_naive_datetime(converter: cattrs.Converter) -> None:
    """A record holding a naive datetime cannot be written to the wire."""
    record = attrs.evolve(_record(), callback_time=datetime(2018, 3, 20, 9, 43, 58))
    with pytest.raises(ValueError, match="naive datetime"):
        converter.unstructure(record)
    with pytest.raises(ValueError, match="naive datetime"):
        datetime_to_epoch_ms(datetime(2018, 3, 20))


def test_unstructure_converts_other_zones_to_the_same_instant(converter: cattrs.Converter) -> None:
    """An aware non-UTC datetime is written as the epoch ms of the same instant."""
    ist = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2018, 3, 20, 15, 13, 58, 782000, tzinfo=ist)
    record = attrs.evolve(_record(), date_added=local)
    assert converter.unstructure(record)["dateAdded"] == 1521539038782


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=timezone.utc), 0),
        (datetime(1970, 1, 1, 0, 0, 0, 1999, tzinfo=timezone.utc), 1),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), -1),
    ],
)
def test_sub_millisecond_parts_are_floored(value: datetime, expected: int) -> None:
    """Microseconds below a millisecond are floored, toward the past also before 1970."""
    assert datetime_to_epoch_ms(value) == expected


@pytest.mark.parametrize("value", [True, 1.0, "1521539038782", None])
def test_epoch_ms_must_be_an_int(value: object) -> None:
    """Epoch milliseconds are an int, never a bool, float or string."""
    with pytest.raises(TypeError, match="integer"):
        epoch_ms_to_datetime(value)


@pytest.mark.parametrize("value", [MIN_MS - 1, MAX_MS + 1, 10**20, -(10**20), 10**400])
def test_epoch_ms_outside_python_dates_is_refused(value: int) -> None:
    """Epoch ms beyond Python's years 1-9999 raise ValueError, not OverflowError."""
    with pytest.raises(ValueError, match="outside the dates"):
        epoch_ms_to_datetime(value)


MISFITS = [
    pytest.param(wire, value, id=f"{wire}={value!r}")
    for wire, value in [
        ("customerCallbackId", 5),
        ("customerCallbackId", None),
        ("campaignId", "6"),
        ("campaignId", True),
        ("campaignId", 6.0),
        ("campaignId", None),
        ("callbackTime", True),
        ("callbackTime", 1521539038782.0),
        ("callbackTime", "1521539038782"),
        ("callbackTime", MAX_MS + 1),
        ("callbackTime", MIN_MS - 1),
        ("callbackTime", 10**400),
        ("selfCallback", 1),
        ("selfCallback", "false"),
        ("selfCallback", None),
        ("userId", 5),
        ("userId", ["Stieve"]),
        ("phone", 9876543210),
        ("phone", None),
        ("customerId", "6"),
        ("customerId", True),
        ("customerId", 4.2),
        ("dateAdded", MIN_MS - 1),
        ("dateAdded", None),
        ("dateAdded", {"ms": 1}),
    ]
]


@pytest.mark.parametrize(("wire", "value"), MISFITS)
def test_wrong_type_names_field_and_index(
    converter: cattrs.Converter, wire: str, value: object
) -> None:
    """A field of the wrong type or range raises RecordError naming the field and record index."""
    payload = [SPEC_RECORD, SPEC_RECORD, {**SPEC_RECORD, wire: value}]
    with pytest.raises(RecordError) as info:
        structure_callbacks(converter, payload)
    assert info.value.field == wire
    assert info.value.index == 2
    assert repr(wire) in str(info.value)


@pytest.mark.parametrize("wire", sorted(KNOWN_WIRE))
def test_missing_field_names_field_and_index(converter: cattrs.Converter, wire: str) -> None:
    """A record without one of the spec's fields raises RecordError naming it and its index."""
    record = {k: v for k, v in SPEC_RECORD.items() if k != wire}
    with pytest.raises(RecordError) as info:
        structure_callbacks(converter, [SPEC_RECORD, record])
    assert (info.value.field, info.value.index) == (wire, 1)
    assert "missing" in str(info.value)
    assert repr(wire) in str(info.value)


@pytest.mark.parametrize("item", [[SPEC_RECORD], "d810-59423051-cm-0", 6, None, True])
def test_non_object_record_names_index(converter: cattrs.Converter, item: object) -> None:
    """A record that is not a JSON object raises RecordError with no field and its index."""
    with pytest.raises(RecordError, match="JSON object") as info:
        structure_callbacks(converter, [SPEC_RECORD, item])
    assert (info.value.field, info.value.index) == (None, 1)


@pytest.mark.parametrize("payload", [SPEC_RECORD, None, "[]", 0])
def test_payload_that_is_not_a_list_is_refused(
    converter: cattrs.Converter, payload: object
) -> None:
    """structure_callbacks wants a JSON array; anything else is a RecordError without index."""
    with pytest.raises(RecordError, match="JSON array") as info:
        structure_callbacks(converter, payload)
    assert (info.value.field, info.value.index) == (None, None)


def test_empty_list_gives_no_records(converter: cattrs.Converter) -> None:
    """An empty array is an empty page, not an error."""
    assert structure_callbacks(converter, []) == []


def test_direct_structure_raises_record_error(converter: cattrs.Converter) -> None:
    """converter.structure on one bad record raises RecordError too (index unknown there)."""
    with pytest.raises(RecordError) as info:
        converter.structure({**SPEC_RECORD, "campaignId": "6"}, CustomerCallback)
    assert (info.value.field, info.value.index) == ("campaignId", None)
    assert isinstance(info.value, ValueError)


@settings(max_examples=examples(300), deadline=None)
@given(
    record=wire_records(),
    wire=st.sampled_from(sorted(KNOWN_WIRE)),
    bad=st.one_of(
        st.floats(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(), st.integers())
    ),
    index=st.integers(0, 3),
)
def test_any_mistyped_field_is_named(
    record: dict[str, Any], wire: str, bad: object, index: int
) -> None:
    """Whatever wrong JSON type a field holds, the RecordError names that field and index."""
    payload = [SPEC_RECORD] * index + [{**record, wire: bad}]
    with pytest.raises(RecordError) as info:
        structure_callbacks(make_converter(), payload)
    assert (info.value.field, info.value.index) == (wire, index)


def test_records_are_frozen() -> None:
    """A record's attributes cannot be reassigned."""
    record = _record()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.phone = "0"  # type: ignore[misc]
    assert record.phone == "9876543210"


def test_extra_is_read_only() -> None:
    """extra cannot be changed through the record."""
    record = _record(priority=3)
    with pytest.raises(TypeError):
        record.extra["priority"] = 4  # type: ignore[index]
    assert record.extra["priority"] == 3


def test_extra_is_a_copy_of_the_callers_dict() -> None:
    """Changing the dict passed as extra afterwards does not change the record."""
    extra = {"priority": 3}
    record = attrs.evolve(_record(), extra=extra)
    extra["priority"] = 4
    assert record.extra == {"priority": 3}


def test_records_compare_by_value_and_hash() -> None:
    """Equal records are equal and hash alike, so they can be put in sets."""
    first, second = _record(priority=3), _record(priority=3)
    assert first == second
    assert len({first, second}) == 1
    assert first != _record(priority=4)


def test_page_is_frozen() -> None:
    """A Page cannot be changed once made."""
    page = Page(items=(_record(),), offset=0, next_offset=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        page.offset = 5  # type: ignore[misc]


def test_each_converter_is_independent() -> None:
    """make_converter() gives a fresh converter: a hook added to one does not reach another."""
    first, second = make_converter(), make_converter()
    assert first is not second
    first.register_structure_hook(CustomerCallback, lambda _v, _t: "patched")
    assert second.structure(SPEC_RECORD, CustomerCallback) == _record()


@settings(max_examples=examples(800), deadline=None)
@given(
    st.one_of(
        st.integers(min_value=-(2**42) - 5, max_value=2**42 + 5),
        st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999),
        st.sampled_from([-(2**42) + 1, -(2**42), 2**42 - 1, 2**42, 0, -1, 1]),
    )
)
def test_structured_times_are_exact_to_the_microsecond(ms: int) -> None:
    """Every epoch-ms value becomes exactly the datetime integer arithmetic gives."""
    exact = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    wire = spec_record(callbackTime=ms, userId=None, phone="1", customerId=None, dateAdded=ms)
    (record,) = structure_callbacks(make_converter(), [wire])
    assert record.callback_time == exact
    assert record.date_added == exact
    assert record.callback_time.microsecond == exact.microsecond


@settings(max_examples=examples(300), deadline=None)
@given(record=wire_records())
def test_structured_records_are_those_the_class_itself_builds(record: dict[str, Any]) -> None:
    """The hot path's records (slots filled directly) equal, hash and evolve as __init__'s do."""
    structured = make_converter().structure(record, CustomerCallback)
    fields = {name: getattr(structured, name) for name in WIRE_NAMES}
    built = CustomerCallback(**fields, extra=dict(structured.extra))
    assert structured == built
    assert hash(structured) == hash(built)
    assert repr(structured) == repr(built)
    assert attrs.evolve(structured, phone="1") == attrs.evolve(built, phone="1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        structured.phone = "1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        structured.extra["x"] = 1  # type: ignore[index]
