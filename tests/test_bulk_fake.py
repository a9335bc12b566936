"""Bulk deletes through the client against the in-process fake server.

Every client here talks to ``FakeAmeyo`` through ``httpx.ASGITransport`` (no
socket). Retries run under ``no_retry_waits``: three attempts, no back-off
sleeps; injected 503s carry no ``Retry-After`` so the shared gate never waits.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest
from _support import T0, make_callback

from ameyo_callbacks import (
    AmeyoCallbacksClient,
    BulkProgress,
    BulkTally,
    CallbackFilter,
    IncompleteDeleteError,
    ServerError,
    TransportError,
)
from ameyo_callbacks.testing import (
    FAKE_BASE_URL,
    FakeAmeyo,
    Fault,
    FaultPlan,
    RequestLogEntry,
    no_retry_waits,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

PREFIX = "/ameyorestapi/voice/customerCallbacks/"
ATTEMPTS = 3
NO_WAIT_503 = Fault.unavailable(retry_after=None)


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with no_retry_waits(attempts=ATTEMPTS):
        yield


def _deletes(fake: FakeAmeyo) -> list[RequestLogEntry]:
    return [r for r in fake.requests if r.method == "DELETE"]


def _deleted_id(entry: RequestLogEntry) -> str:
    return unquote(entry.path.removeprefix(PREFIX))


def _walks(fake: FakeAmeyo) -> int:
    """List requests at offset 0: one per walk of delete_matching."""
    return sum(
        1 for r in fake.requests if r.endpoint in ("list", "tenant") and r.params("offset") == ["0"]
    )


def _some_ids(fake: FakeAmeyo, n: int) -> list[str]:
    return [cb.customer_callback_id for cb in fake.callbacks[:n]]


# ---------------------------------------------------------------------------
# client.delete_callbacks


async def test_client_deletes_every_id_once() -> None:
    """Each id given is deleted with one DELETE and gone from the fake; the others stay."""
    fake = FakeAmeyo.seeded(150)
    ids = _some_ids(fake, 90)
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=6)
    assert sorted(result.deleted) == sorted(ids)
    assert result.ok
    assert len(fake) == 60
    assert not fake.ids() & set(ids)
    assert sorted(_deleted_id(r) for r in _deletes(fake)) == sorted(ids)
    assert all(r.status == 200 for r in _deletes(fake))


async def test_client_reports_unknown_ids_as_not_found() -> None:
    """Ids the fake does not hold (it answers 512) end in not_found, not failed."""
    fake = FakeAmeyo.seeded(20)
    ids = [*_some_ids(fake, 5), "d806-00000000-cm-0", "nope/with slash"]
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=3)
    assert set(result.not_found) == {"d806-00000000-cm-0", "nope/with slash"}
    assert len(result.deleted) == 5
    assert result.failed == {}
    assert len(fake) == 15


@pytest.mark.parametrize("concurrency", [1, 4, 12])
async def test_client_high_water_mark_equals_concurrency(concurrency: int) -> None:
    """With server latency, the fake sees exactly ``concurrency`` deletes in flight at the peak."""
    # 50 ms: long enough that every worker has sent before the first answer
    # lands, even on a loaded machine (at 10 ms, 12 workers sometimes were not).
    fake = FakeAmeyo.seeded(60, latency=0.05)
    ids = _some_ids(fake, 4 * concurrency)  # four rounds of 50 ms
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=concurrency)
    assert fake.max_concurrency == concurrency
    assert len(result.deleted) == len(ids)


async def test_client_dedupes_ids() -> None:
    """Repeated ids are sent once each and counted in duplicates."""
    fake = FakeAmeyo.seeded(10)
    a, b, c = _some_ids(fake, 3)
    async with fake.client() as client:
        result = await client.delete_callbacks([a, b, a, a, c, b, "ghost", "ghost"], concurrency=3)
    assert sorted(_deleted_id(r) for r in _deletes(fake)) == sorted([a, b, c, "ghost"])
    assert result.duplicates == 4
    assert sorted(result.deleted) == sorted([a, b, c])
    assert result.not_found == ("ghost",)


async def test_client_turns_invalid_ids_into_failures() -> None:
    """Blank or non-string ids fail as IncompleteDeleteError without a request; the rest run."""
    fake = FakeAmeyo.seeded(10)
    good = _some_ids(fake, 2)
    ids: list[Any] = [good[0], "", None, "  ", 7, good[1]]
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=2)
    assert sorted(result.deleted) == sorted(good)
    assert len(result.failed) == 4
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert sorted(_deleted_id(r) for r in _deletes(fake)) == sorted(good)


@pytest.mark.parametrize(
    ("concurrency", "exc"),
    [(0, ValueError), (-3, ValueError), (1.5, TypeError), (False, TypeError)],
)
async def test_client_refuses_bad_concurrency_without_requests(
    concurrency: Any, exc: type[Exception]
) -> None:
    """A bad concurrency raises (TypeError: wrong type, ValueError: < 1) before any request."""
    fake = FakeAmeyo.seeded(5)
    async with fake.client() as client:
        with pytest.raises(exc, match="concurrency"):
            await client.delete_callbacks(_some_ids(fake, 2), concurrency=concurrency)
        with pytest.raises(exc, match="concurrency"):
            await client.delete_matching(CallbackFilter.campaign(6), concurrency=concurrency)
    assert fake.requests == []
    assert len(fake) == 5


# ---------------------------------------------------------------------------
# Faults: retried, then failed; never stopping the others


async def test_scripted_503s_are_retried_then_failed() -> None:
    """An id answered 503 on every attempt is sent ATTEMPTS times, then failed with that error."""
    fake = FakeAmeyo.seeded(10)
    first, second, third = _some_ids(fake, 3)
    fake.script("delete", *[NO_WAIT_503] * ATTEMPTS, None, NO_WAIT_503, None)
    async with fake.client() as client:
        # concurrency 1: the scripted answers go to the ids in input order
        result = await client.delete_callbacks([first, second, third], concurrency=1)
    error = result.failed[first]
    assert isinstance(error, ServerError)
    assert error.status_code == 503
    assert error.attempts == ATTEMPTS
    assert sorted(result.deleted) == sorted([second, third])  # third recovered on its retry
    assert [_deleted_id(r) for r in _deletes(fake)] == [*[first] * ATTEMPTS, second, third, third]
    assert first in fake
    assert second not in fake
    assert third not in fake
    assert not result.ok


async def test_dropped_connections_fail_as_transport_errors() -> None:
    """A delete whose connection drops on every attempt fails with TransportError; it stays held."""
    fake = FakeAmeyo.seeded(10)
    first, second = _some_ids(fake, 2)
    fake.script("delete", *["drop"] * ATTEMPTS)
    async with fake.client() as client:
        result = await client.delete_callbacks([first, second], concurrency=1)
    assert isinstance(result.failed[first], TransportError)
    assert result.failed[first].attempts == ATTEMPTS
    assert result.deleted == (second,)
    assert first in fake


async def test_lost_answer_of_a_done_delete_counts_as_deleted() -> None:
    """A delete done by the server whose answer was dropped is deleted, not not_found."""
    fake = FakeAmeyo.seeded(10)
    (first,) = _some_ids(fake, 1)
    fake.script("delete", Fault.drop(apply_before_fault=True))
    async with fake.client() as client:
        result = await client.delete_callbacks([first], concurrency=1)
    assert result.deleted == (first,)
    assert result.not_found == ()
    assert [r.status for r in _deletes(fake)] == [None, 512]


async def test_random_faults_never_stop_the_others() -> None:
    """With a third of deletes faulted at random, every id still ends in the right group."""
    # The six workers reach the fake in an order that changes from run to run
    # (real latency), so which ids meet the seeded faults is chance: an id
    # fails with p = 0.35**3 = 0.043. With 100 ids, one run in 80 had no
    # failure at all; with 500, (1 - 0.043)**500 = 3e-10.
    fake = FakeAmeyo.seeded(520, latency=0.001)
    fake.faults = FaultPlan(
        rate=0.35, kinds=[NO_WAIT_503, "html_500", "drop"], seed=11, endpoints=["delete"]
    )
    ids = _some_ids(fake, 500)
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=6)
    assert result.total == 500
    assert len(result.failed) > 0
    assert len(result.deleted) > 250
    assert set(result.deleted) | set(result.failed) == set(ids)
    assert not set(result.deleted) & fake.ids()
    assert set(result.failed) <= fake.ids()
    sent = [_deleted_id(r) for r in _deletes(fake)]
    for cb_id, error in result.failed.items():
        assert isinstance(error, (ServerError, TransportError))
        assert error.attempts == ATTEMPTS
        assert sent.count(cb_id) == ATTEMPTS
    with pytest.raises(ExceptionGroup) as info:
        result.raise_for_failures()
    assert len(info.value.exceptions) == len(result.failed)


async def test_result_without_failures_raises_nothing() -> None:
    """A clean run's raise_for_failures does nothing."""
    fake = FakeAmeyo.seeded(10)
    async with fake.client() as client:
        result = await client.delete_callbacks(_some_ids(fake, 4))
    assert result.raise_for_failures() is None
    assert result.counts == {"deleted": 4, "not_found": 0, "failed": 0, "not_attempted": 0}


# ---------------------------------------------------------------------------
# Lazy input, progress, cancellation


async def test_client_reads_a_lazy_generator_just_ahead_of_the_deletes() -> None:
    """An async generator of ids is read at most ``concurrency`` ahead of the finished deletes."""
    fake = FakeAmeyo.seeded(50, latency=0.002)
    pool = _some_ids(fake, 40)
    yielded = 0
    max_lead = 0

    async def ids() -> AsyncIterator[str]:
        nonlocal yielded, max_lead
        for cb_id in pool:
            done = sum(1 for r in _deletes(fake) if r.status is not None)
            yielded += 1
            max_lead = max(max_lead, yielded - done)
            yield cb_id

    async with fake.client() as client:
        result = await client.delete_callbacks(ids(), concurrency=4)
    assert yielded == 40
    assert len(result.deleted) == 40
    assert max_lead <= 4
    assert fake.max_concurrency == 4


async def test_client_progress_ends_at_the_result_counts() -> None:
    """on_progress counts rise one outcome at a time and end equal to the result's."""
    fake = FakeAmeyo.seeded(40, latency=0.001)
    ids = [*_some_ids(fake, 25), "ghost-1", "ghost-2"]
    fake.script("delete", *[NO_WAIT_503] * ATTEMPTS)
    seen: list[BulkProgress] = []
    async with fake.client() as client:
        result = await client.delete_callbacks(ids, concurrency=1, on_progress=seen.append)
    assert [p.done for p in seen] == list(range(1, 28))
    last = seen[-1]
    assert (last.deleted, last.not_found, last.failed, last.in_flight) == (24, 2, 1, 0)
    assert (last.deleted, last.not_found, last.failed) == (
        len(result.deleted),
        len(result.not_found),
        len(result.failed),
    )


async def _run_until_stuck(
    fake: FakeAmeyo, stuck: int, run: Callable[[AmeyoCallbacksClient], Awaitable[object]]
) -> None:
    """Run ``run(client)``, cancelling it once ``stuck`` scripted slow deletes are in flight."""

    async def cancel_when_stuck(scope: anyio.CancelScope) -> None:
        with anyio.fail_after(5):
            while not (fake.pending_faults("delete") == 0 and fake.in_flight == stuck):
                await anyio.sleep(0.001)
        scope.cancel()

    async with fake.client() as client:
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                tg.start_soon(cancel_when_stuck, scope)
                await run(client)
    assert scope.cancelled_caught


async def test_client_cancelled_mid_run_accounts_for_every_id_read() -> None:
    """Cancelled with slow deletes in flight: they are failed (incomplete), the rest deleted."""
    fake = FakeAmeyo.seeded(60)
    ids = _some_ids(fake, 50)
    fake.script("delete", *[None] * 12, *[Fault.slow(30)] * 3)
    tally = BulkTally()
    await _run_until_stuck(fake, 3, lambda c: c.delete_callbacks(ids, concurrency=3, tally=tally))
    result = tally.result()
    assert result.cancelled
    assert len(result.deleted) == 12
    assert len(result.failed) == 3
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert set(result.deleted) | set(result.failed) == set(ids[:15])
    assert result.total == 15
    assert set(result.failed) <= fake.ids()  # the slow deletes never took effect
    stopped = [r for r in _deletes(fake) if r.fault == "slow"]
    assert len(stopped) == 3
    assert all(r.status is None for r in stopped)


async def test_client_timeout_over_a_lazy_generator() -> None:
    """A move_on_after timeout over a lazy generator: every id read is in exactly one group."""
    fake = FakeAmeyo.seeded(400, latency=0.004)
    pool = _some_ids(fake, 400)
    read: list[str] = []

    async def ids() -> AsyncIterator[str]:
        for cb_id in pool:
            read.append(cb_id)
            yield cb_id

    tally = BulkTally()
    source = ids()
    async with fake.client() as client:
        with anyio.move_on_after(0.05) as scope:
            await client.delete_callbacks(source, concurrency=5, tally=tally)
    await source.aclose()
    assert scope.cancelled_caught
    result = tally.result()
    assert result.cancelled
    assert 0 < len(read) < 400
    groups = [set(result.deleted), set(result.not_found), set(result.failed)]
    assert sum(map(len, groups)) == len(read) == result.total
    assert set().union(*groups) == set(read)
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert len(read) <= len(result.deleted) + 5
    assert fake.ids().isdisjoint(result.deleted)
    # an id cancelled in flight may or may not be deleted; every other id is still held
    assert fake.ids() >= set(pool) - set(result.deleted) - set(result.failed)


# ---------------------------------------------------------------------------
# client.delete_matching (campaign and tenant filters)


def _campaign_fake(**options: Any) -> FakeAmeyo:
    matching = [make_callback(f"d806-{i:08d}-cm-{i}", campaign=6, day=i / 40) for i in range(1050)]
    other = [make_callback(f"d807-{i:08d}-cm-{i}", campaign=7, day=i / 10) for i in range(300)]
    return FakeAmeyo([*matching, *other], **options)


async def test_delete_matching_leaves_exactly_the_other_campaign() -> None:
    """1,050 callbacks of campaign 6 are deleted, each once; the 300 of campaign 7 all stay."""
    fake = _campaign_fake()
    others = {cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 7}
    async with fake.client() as client:
        result = await client.delete_matching(CallbackFilter.campaign(6), concurrency=8)
    assert fake.ids() == others
    assert len(result.deleted) == 1050
    assert len(result.matched) == 1050
    assert result.ok
    sent = [_deleted_id(r) for r in _deletes(fake)]
    assert len(sent) == len(set(sent)) == 1050
    lists = [r for r in fake.requests if r.endpoint == "list"]
    assert all(r.params("campaignId") == ["6"] for r in lists)
    assert _walks(fake) == 2


async def test_delete_matching_by_user_and_date() -> None:
    """A user and date-added filter deletes the 1,050 matching and leaves the 300 others."""
    start, end = T0 + timedelta(days=3), T0 + timedelta(days=10)
    matching = [make_callback(f"m-{i}", user="asha", day=3 + 7 * i / 1050) for i in range(1050)]
    other = [make_callback(f"u-{i}", user="ravi", day=5) for i in range(100)]
    other += [make_callback(f"d-{i}", user="asha", day=11 + i / 100) for i in range(50)]
    other += [make_callback(f"e-{i}", user="asha", day=2.5) for i in range(50)]
    other += [make_callback(f"c-{i}", campaign=7, user="asha", day=5) for i in range(100)]
    fake = FakeAmeyo([*matching, *other])
    async with fake.client() as client:
        result = await client.delete_matching(
            CallbackFilter.campaign(6, user_ids=["asha"], from_date_added=start, to_date_added=end),
            concurrency=8,
        )
    assert fake.ids() == {cb.customer_callback_id for cb in other}
    assert len(result.deleted) == 1050
    lists = [r for r in fake.requests if r.endpoint == "list"]
    assert all(r.params("userIds") == ["asha"] for r in lists)


async def test_delete_matching_of_a_tenant_filter_deletes_across_campaigns() -> None:
    """The tenant-wide variant deletes one user's callbacks in every campaign, nothing else."""
    fake = FakeAmeyo.seeded(600, campaigns=(6, 7, 8))
    ravi = {cb.customer_callback_id for cb in fake.callbacks if cb.user_id == "ravi"}
    campaigns = {cb.campaign_id for cb in fake.callbacks if cb.user_id == "ravi"}
    assert len(campaigns) == 3
    async with fake.client() as client:
        result = await client.delete_matching(
            CallbackFilter.tenant(user_ids=["ravi"]), concurrency=5
        )
    assert set(result.deleted) == ravi
    assert fake.ids().isdisjoint(ravi)
    assert len(fake) == 600 - len(ravi)
    lists = [r for r in fake.requests if r.endpoint in ("list", "tenant")]
    assert lists
    assert all(r.endpoint == "tenant" for r in lists)


async def test_delete_matching_dry_run_deletes_nothing() -> None:
    """dry_run sends no DELETE and returns the matching ids in serving order."""
    fake = FakeAmeyo.seeded(300)
    before = fake.ids()
    expected = [cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 7]
    async with fake.client() as client:
        result = await client.delete_matching(CallbackFilter.campaign(7), dry_run=True)
    assert list(result.matched) == expected
    assert result.dry_run
    assert result.total == 0
    assert _deletes(fake) == []
    assert fake.ids() == before


async def test_delete_matching_deletes_records_added_during_the_run() -> None:
    """Callbacks added to the campaign while the run deletes are found and deleted too."""
    fake = _campaign_fake()
    late = [make_callback(f"late-{i}", campaign=6, day=50) for i in range(25)]
    late_other = make_callback("late-other", campaign=8, day=50)

    def add_midway(progress: BulkProgress) -> None:
        if progress.done == 500:
            fake.add(*late, late_other)

    async with fake.client() as client:
        result = await client.delete_matching(
            CallbackFilter.campaign(6), concurrency=8, on_progress=add_midway
        )
    assert {cb.campaign_id for cb in fake.callbacks} == {7, 8}
    assert len(fake) == 301
    assert {cb.customer_callback_id for cb in late} <= set(result.deleted)
    assert len(result.deleted) == 1075
    assert _walks(fake) == 3


class IgnoresDeletes:
    """An ASGI app that answers every DELETE with "OK" and does nothing; lists go to the fake."""

    def __init__(self, fake: FakeAmeyo) -> None:
        self.fake = fake
        self.deletes: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "DELETE":
            self.deletes.append(scope["path"])
            await receive()
            headers = [(b"content-type", b"application/json"), (b"content-length", b"4")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'"OK"'})
            return
        await self.fake(scope, receive, send)


async def test_delete_matching_ends_against_a_server_ignoring_deletes() -> None:
    """A server answering OK but deleting nothing: the run ends, every id is failed, sent once."""
    fake = FakeAmeyo.seeded(400)
    matching = {cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 6}
    app = IgnoresDeletes(fake)
    client = AmeyoCallbacksClient(
        FAKE_BASE_URL, session_id=fake.session_id, transport=httpx.ASGITransport(app=app)
    )
    async with client:
        with anyio.fail_after(10):
            result = await client.delete_matching(CallbackFilter.campaign(6), concurrency=8)
    assert set(result.failed) == matching
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    assert result.deleted == ()
    assert len(app.deletes) == len(set(app.deletes)) == len(matching)
    assert 2 <= _walks(fake) <= 5
    assert fake.ids() >= matching


async def test_delete_matching_cancelled_leaves_found_ids_not_attempted() -> None:
    """Cancelled mid-way: ids found but not sent are not_attempted, in-flight ones failed."""
    fake = _campaign_fake()
    fake.script("delete", *[None] * 40, *[Fault.slow(30)] * 4)
    tally = BulkTally()
    where = CallbackFilter.campaign(6)
    await _run_until_stuck(fake, 4, lambda c: c.delete_matching(where, concurrency=4, tally=tally))
    result = tally.result()
    assert result.cancelled
    assert len(result.matched) == 1050
    assert result.counts == {"deleted": 40, "not_found": 0, "failed": 4, "not_attempted": 1006}
    groups = [set(result.deleted), set(result.failed), set(result.not_attempted)]
    assert set().union(*groups) == set(result.matched)
    assert all(isinstance(e, IncompleteDeleteError) for e in result.failed.values())
    sent = {_deleted_id(r) for r in _deletes(fake)}
    assert sent.isdisjoint(result.not_attempted)
    assert set(result.not_attempted) | set(result.failed) <= fake.ids()
