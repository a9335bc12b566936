"""Faults that strike after the fake acted (``apply_before_fault=True``), met by the client.

The server deleted the callback, but its answer was an HTML 500, a 200 cut
short, or came too late: the client retries, meets 512 "not found", and
reports the delete done, which it was. A fault before acting leaves the callback in place until the
retry deletes it. In-process (the fake's own ASGITransport client): no socket.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ameyo_callbacks import RetryPolicy
from ameyo_callbacks.testing import FakeAmeyo, Fault

pytestmark = pytest.mark.usefixtures("zero_backoff")


def delete_log(fake: FakeAmeyo) -> list[int | None]:
    """The status of every DELETE the fake saw (None: it never answered), in order."""
    return [e.status for e in sorted(fake.requests, key=lambda e: e.seq) if e.endpoint == "delete"]


@pytest.mark.parametrize(
    ("fault", "apply_before_fault", "statuses"),
    [
        pytest.param(Fault.html_500, True, [500, 512], id="acted-then-500"),
        pytest.param(Fault.html_500, False, [500, 200], id="500-without-acting"),
        pytest.param(Fault.truncated, True, [200, 512], id="acted-then-ok-cut-short"),
        pytest.param(Fault.truncated, False, [200, 200], id="ok-cut-short-without-acting"),
    ],
)
async def test_an_ambiguous_delete_answer_ends_deleted_either_way(
    fault: Callable[..., Fault], apply_before_fault: bool, statuses: list[int]
) -> None:
    """A bare HTML 500, or a 200 whose "OK" is cut short, is ambiguous: retried; 512 after
    a done delete counts as deleted."""
    fake = FakeAmeyo.seeded(10, campaigns=(6,))
    victim = fake.ordered_ids()[0]
    fake.script("delete", fault(apply_before_fault=apply_before_fault))
    async with fake.client(retry=RetryPolicy(attempts=3)) as client:
        await client.delete_callback(victim)
    assert victim not in fake
    assert delete_log(fake) == statuses
    assert len(fake) == 9


async def test_a_delete_whose_answer_comes_too_late_is_retried_and_reported_deleted() -> None:
    """Acted at once, answered after the attempt deadline: the retry's 512 means done."""
    fake = FakeAmeyo.seeded(10, campaigns=(6,))
    victim = fake.ordered_ids()[0]
    fake.script("delete", Fault.slow(5.0, apply_before_fault=True))
    # 0.5 s: far below the 5 s of the slow answer, and room for the retry to be
    # answered in time on a loaded machine (at 0.05 s a stall could time out
    # the retry too, and the log would show a third delete).
    policy = RetryPolicy(attempts=3, attempt_timeout=0.5)
    async with fake.client(retry=policy) as client:
        await client.delete_callback(victim)
    assert victim not in fake
    assert delete_log(fake) == [None, 512]  # the slow one was abandoned unanswered


async def test_a_slow_answer_after_acting_within_the_deadline_is_plain_success() -> None:
    """Acted at arrival, answered late but in time: one request, 200, no retry."""
    fake = FakeAmeyo.seeded(10, campaigns=(6,))
    victim = fake.ordered_ids()[0]
    fake.script("delete", Fault.slow(0.02, apply_before_fault=True))
    async with fake.client(retry=RetryPolicy(attempts=3, attempt_timeout=5.0)) as client:
        await client.delete_callback(victim)
    assert victim not in fake
    assert delete_log(fake) == [200]


async def test_bulk_deletes_count_a_done_delete_with_a_lost_answer_as_deleted() -> None:
    """delete_callbacks: ids whose answer was a 500 after acting are 'deleted', not failed."""
    fake = FakeAmeyo.seeded(10, campaigns=(6,))
    targets = fake.ordered_ids()[:4]
    fake.script("delete", *[Fault.html_500(apply_before_fault=True)] * 2)
    async with fake.client(retry=RetryPolicy(attempts=3)) as client:
        result = await client.delete_callbacks(targets, concurrency=1)
    assert result.ok
    assert sorted(result.deleted) == sorted(targets)
    assert not result.failed
    assert all(cb_id not in fake for cb_id in targets)
