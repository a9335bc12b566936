"""Bulk deletes at unit level: delete_callbacks and delete_matching over an in-memory store."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta

import anyio
import pytest
import trio
from _support import T0, in_dates, make_callback

from ameyo_callbacks import (
    BulkDeleteResult,
    BulkProgress,
    BulkTally,
    CallbackNotFoundError,
    CustomerCallback,
    IncompleteDeleteError,
    ServerError,
    TransportError,
)
from ameyo_callbacks._bulk import delete_callbacks, delete_matching
from ameyo_callbacks._paging import Answered
from ameyo_callbacks._planner import PageRequest
from ameyo_callbacks.exceptions import AmeyoError

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup


class Store:
    """An in-memory callback table with a delete_one and a fetch, counting what they see."""

    def __init__(self, records: Iterable[CustomerCallback] = (), *, latency: float = 0.0) -> None:
        self.records = {r.customer_callback_id: r for r in records}
        self.latency = latency
        self.faults: dict[str, AmeyoError] = {}
        self.hang: set[str] = set()  # deletes of these ids never answer
        self.ignore_deletes = False
        self.after_delete: Callable[[str], None] | None = None
        self.keep: Callable[[CustomerCallback], bool] = lambda _: True
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hanging = 0
        self.completed = 0
        self.walks = 0  # fetches at offset 0
        self.on_hang: Callable[[int], None] | None = None

    @classmethod
    def with_ids(cls, ids: Iterable[str], **kwargs: float) -> Store:
        return cls([make_callback(i) for i in ids], **kwargs)

    async def delete_one(self, cb_id: str) -> None:
        self.calls.append(cb_id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if cb_id in self.hang:
                self.hanging += 1
                if self.on_hang is not None:
                    self.on_hang(self.hanging)
                await anyio.sleep_forever()
            await anyio.sleep(self.latency)
            if cb_id in self.faults:
                raise self.faults[cb_id]
            if cb_id not in self.records:
                msg = f"no callback {cb_id}"
                raise CallbackNotFoundError(msg, status_code=512, callback_id=cb_id)
            if not self.ignore_deletes:
                del self.records[cb_id]
            if self.after_delete is not None:
                self.after_delete(cb_id)
        finally:
            self.in_flight -= 1
        self.completed += 1

    async def fetch(self, request: PageRequest, _answered: Answered) -> list[CustomerCallback]:
        offset, limit = request.offset, request.limit
        if offset == 0 and request.from_date is None:
            self.walks += 1
        await anyio.sleep(0)
        kept = [
            r
            for r in sorted(self.records.values(), key=_order)
            if self.keep(r) and in_dates(r, request)
        ]
        return kept[offset : offset + limit]

    def add(self, *records: CustomerCallback) -> None:
        for r in records:
            self.records[r.customer_callback_id] = r


def _order(r: CustomerCallback) -> tuple[datetime, str]:
    return (r.date_added, r.customer_callback_id)


class CountingSource:
    """A lazy async id source that records how many ids it yielded and the read-ahead."""

    def __init__(self, store: Store, limit: int = 10**9, prefix: str = "id") -> None:
        self.store = store
        self.limit = limit
        self.prefix = prefix
        self.yielded = 0
        self.max_lead = 0  # ids yielded minus deletes completed, at each yield

    async def ids(self) -> AsyncIterator[str]:
        for n in range(self.limit):
            await anyio.sleep(0)
            self.yielded += 1
            self.max_lead = max(self.max_lead, self.yielded - self.store.completed)
            yield f"{self.prefix}-{n}"


def _ids(n: int, prefix: str = "id") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def _assert_partition(result: BulkDeleteResult, read: set[str]) -> None:
    groups = [
        set(result.deleted),
        set(result.not_found),
        set(result.failed),
        set(result.not_attempted),
    ]
    assert sum(len(g) for g in groups) == len(read) == result.total
    assert set().union(*groups) == read


# ---------------------------------------------------------------------------
# delete_callbacks: outcomes


async def test_every_known_id_is_deleted() -> None:
    """Every id of the input is deleted from the store and listed in deleted."""
    ids = _ids(25)
    store = Store.with_ids(ids)
    result = await delete_callbacks(store.delete_one, ids, concurrency=4)
    assert store.records == {}
    assert sorted(result.deleted) == sorted(ids)
    assert result.ok
    assert result.counts == {"deleted": 25, "not_found": 0, "failed": 0, "not_attempted": 0}
    assert result.total == 25
    assert not result.cancelled
    assert result.duplicates == 0


async def test_unknown_ids_are_not_found() -> None:
    """Ids the server does not hold end in not_found, the rest are deleted."""
    store = Store.with_ids(_ids(10))
    ids = [*_ids(10), "ghost-1", "ghost-2"]
    result = await delete_callbacks(store.delete_one, ids, concurrency=3)
    assert set(result.not_found) == {"ghost-1", "ghost-2"}
    assert set(result.deleted) == set(_ids(10))
    assert result.ok  # not found is an outcome, not a failure
    _assert_partition(result, set(ids))


async def test_failing_ids_are_failed_with_their_error_and_others_go_on() -> None:
    """ServerError and TransportError on some ids become failed outcomes; the others are deleted."""
    ids = _ids(30)
    store = Store.with_ids(ids)
    server_error = ServerError("503 from the gateway", status_code=503)
    transport_error = TransportError("connection dropped")
    store.faults = {"id-0": server_error, "id-7": transport_error, "id-29": server_error}
    result = await delete_callbacks(store.delete_one, ids, concurrency=5)
    assert result.failed["id-0"] is server_error
    assert result.failed["id-7"] is transport_error
    assert result.failed["id-29"] is server_error
    assert set(result.deleted) == set(ids) - {"id-0", "id-7", "id-29"}
    assert set(store.records) == {"id-0", "id-7", "id-29"}
    assert not result.ok
    assert result.counts["failed"] == 3
    _assert_partition(result, set(ids))


async def test_duplicates_are_deleted_once_and_counted() -> None:
    """An id repeated in the input is sent once, reported once, and counted in duplicates."""
    store = Store.with_ids(["a", "b", "c"])
    ids = ["a", "b", "a", "c", "b", "a", "ghost", "ghost"]
    result = await delete_callbacks(store.delete_one, ids, concurrency=2)
    assert sorted(store.calls) == ["a", "b", "c", "ghost"]
    assert sorted(result.deleted) == ["a", "b", "c"]
    assert result.not_found == ("ghost",)
    assert result.duplicates == 4
    assert result.total == 4


async def test_invalid_ids_become_failed_outcomes() -> None:
    """Blank and non-string ids are failed (IncompleteDeleteError), never sent, stop nothing."""
    store = Store.with_ids(["a", "b"])
    ids: list[object] = ["a", "", "   ", None, 42, "b"]
    result = await delete_callbacks(store.delete_one, ids, concurrency=2)  # type: ignore[arg-type]
    assert sorted(store.calls) == ["a", "b"]
    assert sorted(result.deleted) == ["a", "b"]
    assert set(result.failed) == {repr(""), repr("   "), repr(None), repr(42)}
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert result.total == 6


async def test_unencodable_id_fails_alone() -> None:
    """An id the wire cannot carry (a lone surrogate) fails by itself; the others go on."""
    store = Store.with_ids(["a", "b"])
    result = await delete_callbacks(store.delete_one, ["a", "b\udcff", "b"], concurrency=2)
    assert sorted(result.deleted) == ["a", "b"]
    assert list(result.failed) == [repr("b\udcff")]
    assert isinstance(result.failed[repr("b\udcff")], IncompleteDeleteError)
    assert not result.cancelled


@pytest.mark.parametrize(
    ("concurrency", "exc"),
    [
        (0, ValueError),
        (-1, ValueError),
        (True, TypeError),
        (2.5, TypeError),
        ("4", TypeError),
        (None, TypeError),
    ],
)
async def test_bad_concurrency_is_refused_before_reading(
    concurrency: object, exc: type[Exception]
) -> None:
    """A concurrency not an int (TypeError) or < 1 (ValueError) is refused, reading no id."""
    store = Store.with_ids(["a"])
    source = CountingSource(store)
    ids = source.ids()
    with pytest.raises(exc, match="concurrency"):
        await delete_callbacks(store.delete_one, ids, concurrency=concurrency)  # type: ignore[arg-type]
    await ids.aclose()
    assert source.yielded == 0
    assert store.calls == []


@pytest.mark.parametrize(
    ("max_rounds", "exc"), [(0, ValueError), (-2, ValueError), (1.0, TypeError), (True, TypeError)]
)
async def test_bad_max_rounds_is_refused(max_rounds: object, exc: type[Exception]) -> None:
    """delete_matching refuses a max_rounds not an int (TypeError) or < 1 (ValueError)."""
    store = Store.with_ids(["a"])
    with pytest.raises(exc, match="max_rounds"):
        await delete_matching(store.fetch, store.delete_one, max_rounds=max_rounds)  # type: ignore[arg-type]
    assert store.walks == 0


# ---------------------------------------------------------------------------
# delete_callbacks: concurrency, laziness, progress


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_high_water_mark_equals_concurrency(concurrency: int) -> None:
    """With slow deletes, exactly ``concurrency`` requests are in flight at the peak, never more."""
    ids = _ids(40)
    store = Store.with_ids(ids, latency=0.002)
    result = await delete_callbacks(store.delete_one, ids, concurrency=concurrency)
    assert store.max_in_flight == concurrency
    assert len(result.deleted) == 40


async def test_fewer_ids_than_concurrency() -> None:
    """With fewer ids than workers, every id is deleted and the spare workers just end."""
    store = Store.with_ids(["a", "b"], latency=0.001)
    result = await delete_callbacks(store.delete_one, ["a", "b"], concurrency=16)
    assert sorted(result.deleted) == ["a", "b"]
    assert store.max_in_flight == 2


async def test_async_source_is_read_at_most_concurrency_ahead() -> None:
    """A lazy async generator is read one id per free worker: at most ``concurrency`` ahead."""
    store = Store.with_ids(_ids(60), latency=0.001)
    source = CountingSource(store, limit=60)
    result = await delete_callbacks(store.delete_one, source.ids(), concurrency=4)
    assert source.yielded == 60
    assert len(result.deleted) == 60
    assert source.max_lead == 4


async def test_huge_async_source_is_never_materialised() -> None:
    """A stopped run over a billion-id generator has read it only a little past the deletes."""
    store = Store.with_ids(_ids(200))
    source = CountingSource(store)  # 10**9 ids: a list of them would not fit
    ids = source.ids()
    tally = BulkTally()

    with anyio.CancelScope() as scope:

        def stop_at_30(progress: BulkProgress) -> None:
            if progress.done >= 30:
                scope.cancel()

        await delete_callbacks(
            store.delete_one, ids, concurrency=5, on_progress=stop_at_30, tally=tally
        )
    await ids.aclose()
    assert scope.cancelled_caught
    result = tally.result()
    assert result.cancelled
    assert 30 <= source.yielded <= 30 + 5
    assert source.max_lead <= 5
    _assert_partition(result, set(_ids(source.yielded)))


async def test_progress_counts_run_up_to_the_result() -> None:
    """on_progress gets one call per outcome, done rising by one, ending at the result's counts."""
    ids = [*_ids(20), "ghost", "id-3"]
    store = Store.with_ids(_ids(20), latency=0.001)
    store.faults = {"id-5": ServerError("bad gateway", status_code=502)}
    seen: list[BulkProgress] = []
    result = await delete_callbacks(store.delete_one, ids, concurrency=3, on_progress=seen.append)
    assert [p.done for p in seen] == list(range(1, 22))
    assert all(0 <= p.in_flight <= 3 for p in seen)
    assert all(p.read >= p.done + p.in_flight for p in seen)
    last = seen[-1]
    assert (last.deleted, last.not_found, last.failed) == (19, 1, 1)
    assert (last.deleted, last.not_found, last.failed) == (
        len(result.deleted),
        len(result.not_found),
        len(result.failed),
    )
    assert last.in_flight == 0


# ---------------------------------------------------------------------------
# Cancellation


async def _cancel_when_all_hang(
    store: Store, ids: Iterable[str], concurrency: int, tally: BulkTally
) -> anyio.CancelScope:
    """Run until every worker is stuck on a hanging delete, then cancel from outside."""
    with anyio.CancelScope() as scope:

        def on_hang(hanging: int) -> None:
            if hanging == concurrency:
                scope.cancel()

        store.on_hang = on_hang
        await delete_callbacks(store.delete_one, ids, concurrency=concurrency, tally=tally)
    return scope


async def test_cancel_marks_in_flight_ids_failed_incomplete() -> None:
    """Cancelled with deletes in flight: those ids are failed with IncompleteDeleteError."""
    ids = _ids(40)
    store = Store.with_ids(ids)
    store.hang = {"id-10", "id-11", "id-12"}
    tally = BulkTally()
    scope = await _cancel_when_all_hang(store, iter(ids), 3, tally)
    assert scope.cancelled_caught
    result = tally.result()
    assert result.cancelled
    assert not result.ok
    assert set(result.failed) == {"id-10", "id-11", "id-12"}
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert set(result.deleted) == set(_ids(10))
    assert result.not_attempted == ()
    _assert_partition(result, set(_ids(13)))
    assert set(store.records) == set(ids) - set(_ids(10))


async def test_timeout_tally_accounts_for_every_id_read() -> None:
    """A move_on_after timeout mid-run: the tally has each id read in exactly one group."""
    store = Store.with_ids(_ids(500), latency=0.005)
    source = CountingSource(store, limit=500)
    ids = source.ids()
    tally = BulkTally()
    with anyio.move_on_after(0.06) as scope:
        await delete_callbacks(store.delete_one, ids, concurrency=6, tally=tally)
    await ids.aclose()
    assert scope.cancelled_caught
    result = tally.result()
    assert result.cancelled
    assert 0 < source.yielded < 500
    _assert_partition(result, set(_ids(source.yielded)))
    assert len(result.failed) <= 6  # the deletes in flight at the timeout, if any
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert set(store.records) == set(_ids(500)) - set(result.deleted)


async def test_cancel_from_on_progress_stops_the_run() -> None:
    """A cancel scope cancelled from on_progress stops the run with a consistent tally."""
    ids = _ids(100)
    store = Store.with_ids(ids, latency=0.001)
    tally = BulkTally()
    with anyio.CancelScope() as scope:

        def stop(progress: BulkProgress) -> None:
            if progress.deleted == 12:
                scope.cancel()

        await delete_callbacks(store.delete_one, ids, concurrency=4, on_progress=stop, tally=tally)
    result = tally.result()
    assert result.cancelled
    assert 12 <= len(result.deleted) < 100
    read = set(store.calls)
    assert len(read) <= len(result.deleted) + 4
    _assert_partition(result, read)
    assert set(result.failed) == read - set(result.deleted)


def test_cancel_under_trio_keeps_the_tally() -> None:
    """Under trio too, a cancelled run fails the in-flight ids and accounts for every id read."""
    ids = _ids(30)
    store = Store.with_ids(ids)
    store.hang = {"id-4", "id-9"}
    tally = BulkTally()

    async def main() -> bool:
        scope = await _cancel_when_all_hang(store, ids, 2, tally)
        return scope.cancelled_caught

    assert trio.run(main)
    result = tally.result()
    assert result.cancelled
    assert set(result.failed) == {"id-4", "id-9"}
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    _assert_partition(result, set(_ids(10)))


# ---------------------------------------------------------------------------
# delete_matching


def _campaign_store(matching: int, other: int, **kwargs: float) -> Store:
    records = [make_callback(f"m-{i:04d}", campaign=6, day=i % 30) for i in range(matching)]
    records += [make_callback(f"o-{i:04d}", campaign=7, day=i % 30) for i in range(other)]
    store = Store(records, **kwargs)
    store.keep = lambda r: r.campaign_id == 6
    return store


async def test_delete_matching_leaves_exactly_the_non_matching() -> None:
    """Every matching record is deleted across many pages; the non-matching ones all stay."""
    store = _campaign_store(1050, 300)
    result = await delete_matching(store.fetch, store.delete_one, concurrency=8)
    assert len(store.records) == 300
    assert all(r.campaign_id == 7 for r in store.records.values())
    assert len(result.deleted) == 1050
    assert sorted(result.matched) == sorted(f"m-{i:04d}" for i in range(1050))
    assert result.ok
    assert store.walks == 2  # one walk to collect, one to find nothing new


async def test_delete_matching_by_user_and_date() -> None:
    """A user and date filter: only records of that user in that range are deleted."""
    records = [
        make_callback(f"r-{i}", user=("alice" if i % 2 else "bob"), day=i % 10) for i in range(400)
    ]
    store = Store(records)

    def keep(r: CustomerCallback) -> bool:
        return r.user_id == "alice" and r.date_added <= T0 + timedelta(days=4)

    store.keep = keep
    expected_left = {r.customer_callback_id for r in records if not keep(r)}
    result = await delete_matching(store.fetch, store.delete_one, concurrency=5)
    assert set(store.records) == expected_left
    assert len(result.deleted) == 400 - len(expected_left) > 0


async def test_delete_matching_catches_records_added_during_the_run() -> None:
    """Records added while deleting are found by the next walk and deleted too."""
    store = _campaign_store(120, 10)
    added = [make_callback(f"late-{i}", campaign=6, day=40) for i in range(7)]

    def add_once(cb_id: str) -> None:
        if cb_id == "m-0050":
            store.add(*added, make_callback("late-other", campaign=7))

    store.after_delete = add_once
    result = await delete_matching(store.fetch, store.delete_one, concurrency=4)
    assert {r.campaign_id for r in store.records.values()} == {7}
    assert len(store.records) == 11
    assert {f"late-{i}" for i in range(7)} <= set(result.deleted)
    assert {f"late-{i}" for i in range(7)} <= set(result.matched)
    assert len(result.deleted) == 127
    assert store.walks == 3


async def test_delete_matching_against_a_server_ignoring_deletes_ends() -> None:
    """A server that answers OK but deletes nothing: the run ends, those ids are failed."""
    store = _campaign_store(150, 20)
    store.ignore_deletes = True
    result = await delete_matching(store.fetch, store.delete_one, concurrency=8, max_rounds=5)
    assert store.walks <= 5
    assert len(store.calls) == 150  # each id sent once, not again every round
    assert len(result.failed) == 150
    assert result.deleted == ()
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert not result.ok
    _assert_partition(result, set(result.matched))


async def test_delete_matching_is_bounded_by_max_rounds() -> None:
    """A server that shows new ids after every round stops after max_rounds walks."""
    store = _campaign_store(5, 0)
    counter = iter(range(10**6))

    def replace(_: str) -> None:
        store.add(make_callback(f"new-{next(counter)}", campaign=6, day=50))

    store.after_delete = replace
    result = await delete_matching(store.fetch, store.delete_one, concurrency=2, max_rounds=3)
    assert store.walks == 3
    assert len(result.deleted) == 15  # 5 per round
    assert len(store.records) == 5  # the ones added in the last round are left


async def test_delete_matching_dry_run_deletes_nothing() -> None:
    """dry_run walks once and returns the matching ids in order, deleting none."""
    store = _campaign_store(230, 40)
    before = dict(store.records)
    result = await delete_matching(store.fetch, store.delete_one, dry_run=True)
    assert store.records == before
    assert store.calls == []
    assert store.walks == 1
    expected = [
        r.customer_callback_id for r in sorted(before.values(), key=_order) if store.keep(r)
    ]
    assert list(result.matched) == expected
    assert result.dry_run
    assert result.total == 0
    assert result.ok


async def test_delete_matching_failures_are_not_retried_every_round() -> None:
    """An id whose delete failed stays listed, but it is failed once, not resent each round."""
    store = _campaign_store(50, 0)
    error = ServerError("always 503", status_code=503)
    store.faults = {"m-0003": error}
    result = await delete_matching(store.fetch, store.delete_one, concurrency=4)
    assert store.calls.count("m-0003") == 1
    assert result.failed == {"m-0003": error}
    assert set(store.records) == {"m-0003"}
    assert len(result.deleted) == 49


async def test_delete_matching_cancelled_leaves_found_ids_not_attempted() -> None:
    """Cancelled mid-way: ids found but not sent are not_attempted, in-flight ones failed."""
    store = _campaign_store(60, 5)
    store.hang = {"m-0020", "m-0021", "m-0022"}
    tally = BulkTally()
    with anyio.CancelScope() as scope:

        def on_hang(hanging: int) -> None:
            if hanging == 3:
                scope.cancel()

        store.on_hang = on_hang
        await delete_matching(store.fetch, store.delete_one, concurrency=3, tally=tally)
    assert scope.cancelled_caught
    result = tally.result()
    assert result.cancelled
    assert set(result.failed) == {"m-0020", "m-0021", "m-0022"}
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert len(result.matched) == 60
    assert len(result.not_attempted) > 0
    assert not set(result.not_attempted) & set(store.calls)
    _assert_partition(result, set(result.matched))
    assert set(store.records) == set(result.failed) | set(result.not_attempted) | {
        f"o-{i:04d}" for i in range(5)
    }


async def test_delete_matching_cancelled_during_a_walk_is_cancelled() -> None:
    """A timeout during the first walk leaves a tally that says cancelled and not ok."""
    store = _campaign_store(10, 0)

    async def slow_fetch(request: PageRequest, answered: Answered) -> list[CustomerCallback]:
        await anyio.sleep_forever()
        return await store.fetch(request, answered)  # pragma: no cover

    tally = BulkTally()
    with anyio.move_on_after(0.01):
        await delete_matching(slow_fetch, store.delete_one, tally=tally)
    result = tally.result()
    assert result.cancelled
    assert not result.ok
    assert store.calls == []


# ---------------------------------------------------------------------------
# BulkDeleteResult


def test_raise_for_failures_raises_an_exception_group_of_the_errors() -> None:
    """raise_for_failures raises an ExceptionGroup holding each failure's error."""
    first = ServerError("503", status_code=503)
    second = TransportError("reset")
    result = BulkDeleteResult(deleted=("a",), failed={"b": first, "c": second})
    with pytest.raises(ExceptionGroup) as info:
        result.raise_for_failures()
    assert list(info.value.exceptions) == [first, second]
    assert "2 of 3" in str(info.value)


def test_raise_for_failures_without_failures_does_nothing() -> None:
    """No failures: raise_for_failures returns quietly, even with not_found ids."""
    result = BulkDeleteResult(deleted=("a",), not_found=("b",))
    assert result.raise_for_failures() is None
    assert result.ok


def test_result_counts_total_and_ok() -> None:
    """counts and total add up the four groups; failed, not_attempted or cancelled is not ok."""
    result = BulkDeleteResult(
        deleted=("a", "b"),
        not_found=("c",),
        failed={"d": ServerError("x", status_code=503)},
        not_attempted=("e", "f", "g"),
        duplicates=5,
    )
    assert result.counts == {"deleted": 2, "not_found": 1, "failed": 1, "not_attempted": 3}
    assert result.total == 7
    assert not result.ok
    assert not BulkDeleteResult(not_attempted=("e",)).ok
    assert not BulkDeleteResult(deleted=("a",), cancelled=True).ok
    assert BulkDeleteResult(deleted=("a",), not_found=("b",)).ok


async def test_result_from_a_run_raises_for_its_failures() -> None:
    """The result of a real run raises an ExceptionGroup of exactly its failed ids' errors."""
    store = Store.with_ids(_ids(6))
    errors = {"id-1": ServerError("a", status_code=503), "id-4": TransportError("b")}
    store.faults = dict(errors)
    result = await delete_callbacks(store.delete_one, _ids(6), concurrency=2)
    with pytest.raises(ExceptionGroup) as info:
        result.raise_for_failures()
    assert set(map(id, info.value.exceptions)) == set(map(id, errors.values()))
