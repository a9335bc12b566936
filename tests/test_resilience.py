"""End to end: a long walk through every injected fault, on a real loopback socket."""

from __future__ import annotations

import logging

import pytest
from _support import VirtualClock

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter, LoginSession, RetryPolicy
from ameyo_callbacks.testing import FakeAmeyo, Fault, FaultPlan, serve

pytestmark = pytest.mark.integration

TOKEN = "tok-resilience-7f3a"

# Every fault kind the fake can inject, Retry-After in both forms. Waits are
# kept short (0 s Retry-After, a 0.6 s slow answer against a 0.4 s timeout) so
# the run stays quick while each kind still takes its real path. (A page served
# in time takes some 10 ms here; one slower than 0.4 s would only be retried.)
EVERY_FAULT = [
    Fault.unavailable(retry_after=0),
    Fault.unavailable(retry_after=0, http_date=True),
    Fault.rate_limited(retry_after=0),
    Fault.rate_limited(retry_after=0, http_date=True),
    Fault.html_500(),
    Fault.empty(),
    Fault.truncated(),
    Fault.drop(),
    Fault.slow(delay=0.6),
]


async def test_faulty_walk_yields_every_record_once_and_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At a 20% mixed fault rate, a 10,000-record walk yields each record exactly once."""
    fake = FakeAmeyo.seeded(10_000, campaigns=(6,), seed=3)
    fake.add_user("agent", TOKEN)
    fake.faults = FaultPlan(rate=0.2, kinds=EVERY_FAULT, seed=11, endpoints=["list"])
    caplog.set_level(logging.DEBUG)

    with serve(fake) as url:
        session = LoginSession("agent", TOKEN)
        # Default settings but the read timeout, which the slow fault must outlast,
        # and the attempts: a page fails if all six meet a fault (p = 0.2**6), and
        # the ~100 pages draw from the plan in an order that changes from run to
        # run, so about one run in 150 would fail honestly. Twelve: 100 * 0.2**12 = 4e-7;
        # waits of at most 1 s keep twelve attempts inside the 60 s call budget.
        retry = RetryPolicy(attempts=12, wait_max=1.0)
        # A virtual clock: back-off and the throttled pace take no real time (nothing
        # here asserts them); the socket's read timeout and the slow fault stay real.
        clock = VirtualClock()
        async with AmeyoCallbacksClient(
            url, session_id=session, timeout=0.4, retry=retry, clock=clock
        ) as client:
            ids = [
                cb.customer_callback_id
                async for cb in client.iter_callbacks(CallbackFilter.campaign(6))
            ]

    faulted = [entry for entry in fake.requests if entry.fault is not None]
    assert len(faulted) >= 20, "the plan must actually have injected faults"
    assert {entry.fault for entry in faulted} == {fault.kind for fault in EVERY_FAULT}
    assert len(ids) == len(set(ids)) == 10_000
    assert set(ids) == fake.ids()
    assert ids == [cb.customer_callback_id for cb in fake.callbacks]

    logged = "\n".join(record.getMessage() for record in caplog.records)
    logged += "\n".join(str(record.__dict__) for record in caplog.records)
    assert "retrying" in logged, "the run must have retried (and logged it)"
    assert clock.slept > 0, "the back-off went on the client's clock"
    secrets = session.secrets()
    assert TOKEN in secrets
    assert len(secrets) >= 2, "the walk must have logged in"
    for secret in secrets:
        assert secret not in logged
