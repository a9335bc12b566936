"""Going easy on the server: max_rate, slowing down when throttled, concurrency="auto".

Where time matters the tests run on trio with ``trio.testing.MockClock``
(``autojump_threshold=0``): time is virtual, every sleep of the client, of
the fake server's latency and of its token bucket is on that one clock, and a
test that waits 40 virtual seconds takes well under one real second. The fake
server in-process (``fake.client()``) holds :class:`ServerLimits` with
``clock=anyio.current_time`` so its bucket and its records use the same time.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest
import trio
import trio.testing

from ameyo_callbacks import AmeyoCallbacksClient, BulkProgress, CallbackFilter, LoginSession
from ameyo_callbacks._limits import AdaptiveConcurrency, RequestLimits, is_throttle
from ameyo_callbacks._retry import BackoffGate
from ameyo_callbacks.testing import FakeAmeyo, Fault, ServerLimits, no_retry_waits

SIX = CallbackFilter.campaign(6)


def run_virtual(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main`` on trio in virtual time; its result."""
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def busiest_second(times: Sequence[float]) -> int:
    """The most of ``times`` inside any half-open one-second window [t, t + 1)."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


class StepClock:
    """A Clock whose sleeps move its time at once (one task at a time)."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.time += seconds
        await anyio.lowlevel.checkpoint()


def limits(clock: StepClock, **kwargs: Any) -> RequestLimits:
    return RequestLimits(clock, BackoffGate(clock), **kwargs)


@pytest.fixture(autouse=True)
def no_backoff_sleeps() -> Any:
    """Retry back-off sleeps become 0 (Retry-After waits stay on the gate)."""
    with no_retry_waits():
        yield


# --------------------------------------------------------------------------
# max_rate: the pacer


async def test_max_rate_spaces_requests_evenly_without_a_burst() -> None:
    """At max_rate=10 the first request goes at once, each next one 0.1 s after."""
    clock = StepClock()
    pace = limits(clock, max_rate=10)
    sent = [await pace.acquire() for _ in range(5)]
    assert clock.sleeps == [0.1] * 4
    assert [round(t - 1000.0, 6) for t in sent] == [0.0, 0.1, 0.2, 0.3, 0.4]


async def test_unlimited_acquire_never_sleeps() -> None:
    """No max_rate and no throttle: acquire returns at once, every time."""
    clock = StepClock()
    pace = limits(clock)
    for _ in range(100):
        await pace.acquire()
    assert clock.sleeps == []
    assert pace.rate is None


async def test_an_idle_pacer_does_not_save_up_a_burst() -> None:
    """After a long pause the next requests are spaced again, not sent together."""
    clock = StepClock()
    pace = limits(clock, max_rate=4)
    await pace.acquire()
    clock.time += 60
    await pace.acquire()
    await pace.acquire()
    assert clock.sleeps == [0.25]


def test_max_rate_is_shared_by_concurrent_calls() -> None:
    """Lists, deletes and a login from three tasks: at most ~max_rate a second arrive."""

    async def main() -> tuple[list[float], float]:
        server = ServerLimits(clock=anyio.current_time)
        fake = FakeAmeyo.seeded(200, campaigns=(6,), latency=0.01, limits=server)
        fake.add_user("agent", "tok-1")
        ids = fake.ordered_ids()[:60]
        session = LoginSession("agent", "tok-1")
        async with fake.client(session_id=session, max_rate=20) as client:
            started = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.delete_callbacks, ids[:30])
                tg.start_soon(client.delete_callbacks, ids[30:])
                for offset in range(0, 200, 10):
                    tg.start_soon(functools.partial(client.get_callbacks, SIX, offset=offset))
            return list(server.arrivals), anyio.current_time() - started

    arrivals, took = run_virtual(main)
    assert len(arrivals) == 60 + 20 + 1  # the login too
    assert busiest_second(arrivals) <= 21
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.05 - 1e-6  # evenly spaced: never two closer than 1 / max_rate
    assert took <= 81 / 20 + 0.1


def test_max_rate_counts_retries() -> None:
    """A retried request takes a slot like any other: the retry is spaced too."""

    async def main() -> list[float]:
        server = ServerLimits(clock=anyio.current_time)
        fake = FakeAmeyo.seeded(50, campaigns=(6,), limits=server)
        fake.script("delete", Fault.unavailable(retry_after=None), None, Fault.html_500())
        ids = fake.ordered_ids()[:10]
        async with fake.client(max_rate=5) as client:
            result = await client.delete_callbacks(ids, concurrency=4)
        assert result.counts["deleted"] == 10
        return list(server.arrivals)

    arrivals = run_virtual(main)
    assert len(arrivals) == 12
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.2 - 1e-6


async def test_max_rate_on_asyncio_through_the_fake() -> None:
    """On asyncio (real time, kept short): 11 requests at max_rate=50 take about 0.2 s."""
    fake = FakeAmeyo.seeded(30, campaigns=(6,))
    async with fake.client(max_rate=50) as client:
        started = anyio.current_time()
        await client.delete_callbacks(fake.ordered_ids()[:11], concurrency=8)
        took = anyio.current_time() - started
    assert len(fake.requests) == 11
    assert took >= 0.2 - 0.01  # the pacer never goes faster (late wake-ups only slow it)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.nan, ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_max_rate_must_be_a_positive_number(value: object, error: type[Exception]) -> None:
    """max_rate=0, negative, NaN, a string or a bool is refused, naming max_rate."""
    with pytest.raises(error, match="max_rate"):
        AmeyoCallbacksClient("http://ameyo.test", session_id="s", max_rate=value)  # type: ignore[arg-type]


def test_client_settings_are_checked() -> None:
    """max_concurrency must be an int >= 1; adaptive_rate a bool."""
    with pytest.raises(ValueError, match="max_concurrency"):
        AmeyoCallbacksClient("http://ameyo.test", session_id="s", max_concurrency=0)
    with pytest.raises(TypeError, match="adaptive_rate"):
        AmeyoCallbacksClient("http://ameyo.test", session_id="s", adaptive_rate="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# The throttled rate


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {}, True),
        (429, {"Retry-After": "1"}, True),
        (503, {"Retry-After": "2"}, True),
        (503, {"retry-after": "2"}, True),
        (503, {}, False),
        (200, {"Retry-After": "1"}, False),
        (512, {}, False),
    ],
)
def test_what_counts_as_a_throttle(status: int, headers: dict[str, str], expected: bool) -> None:
    """A 429, or a 503 with Retry-After: a 503 without it is a failure, not a throttle."""
    assert is_throttle(status, headers) is expected


def test_a_throttle_lowers_the_rate_to_what_the_server_admitted() -> None:
    """30 answers in the last second, then a 429: the client goes at 0.7 x 30 = 21 a second."""
    clock = StepClock()
    pace = limits(clock)
    for _ in range(30):
        clock.time += 0.03
        pace.observe(clock.time - 0.01, 200, {})
    pace.observe(clock.time, 429, {})
    assert pace.throttled_rate == pytest.approx(21.0)
    assert pace.rate == pytest.approx(21.0)


def test_answers_sent_before_the_cut_do_not_cut_again() -> None:
    """A burst of 429s to requests sent before the first cut lowers the rate once."""
    clock = StepClock()
    pace = limits(clock)
    for _ in range(20):
        pace.observe(clock.time, 200, {})
    sent = clock.time
    clock.time += 0.01
    pace.observe(sent, 429, {})
    first = pace.throttled_rate
    for _ in range(12):
        pace.observe(sent, 429, {})
    assert pace.throttled_rate == first == pytest.approx(14.0)
    clock.time += 0.01
    pace.observe(clock.time, 429, {})  # sent after the cut: the lowered rate was too high
    assert pace.throttled_rate == pytest.approx(max(1.0, 0.7 * min(20, 14.0)))


def test_the_rate_climbs_back_while_requests_succeed_and_is_then_released() -> None:
    """After a cut the rate rises with each success, past the old peak, then stops applying."""
    clock = StepClock()
    pace = limits(clock)
    for _ in range(20):
        pace.observe(clock.time, 200, {})
    pace.observe(clock.time, 429, {})
    seen = [pace.throttled_rate]
    for _ in range(1000):
        clock.time += 0.05
        pace.observe(clock.time, 200, {})
        if pace.throttled_rate is None:
            break
        seen.append(pace.throttled_rate)
    rates = [r for r in seen if r is not None]
    assert rates == sorted(rates)  # never down while requests succeed
    assert rates[0] == pytest.approx(14.0)
    assert max(rates) > 20.0  # it probes past what the server admitted
    assert pace.throttled_rate is None  # released: no client-side rate any more
    assert max(rates) >= 100  # only once far above anything the server admitted


def test_a_throttle_with_nothing_admitted_goes_to_the_floor() -> None:
    """A 429 to the very first request: one request a second, then climbing."""
    clock = StepClock()
    pace = limits(clock)
    pace.observe(clock.time, 429, {})
    assert pace.throttled_rate == 1.0


def test_max_rate_is_never_exceeded_while_the_rate_climbs() -> None:
    """With max_rate=10, a throttled rate climbing to 80 still sends at 10."""
    clock = StepClock()
    pace = limits(clock, max_rate=10)
    for _ in range(10):
        pace.observe(clock.time, 200, {})
    pace.observe(clock.time, 429, {})
    assert pace.rate == pytest.approx(7.0)
    clock.time += 4.0
    pace.observe(clock.time, 200, {})
    assert pace.throttled_rate is not None
    assert pace.throttled_rate > 10
    assert pace.rate == 10


def test_adaptive_rate_false_keeps_the_rate() -> None:
    """adaptive_rate=False: a 429 pauses (the gate) but never lowers the rate."""
    clock = StepClock()
    pace = limits(clock, adaptive=False)
    pace.observe(clock.time, 429, {})
    assert pace.rate is None


def _deletes_behind_a_token_bucket(
    *, n: int, adaptive: bool, rate: float = 20, concurrency: int = 32
) -> tuple[dict[str, int], ServerLimits, list[float], float]:
    async def main() -> tuple[dict[str, int], ServerLimits, list[float], float]:
        server = ServerLimits(
            rate=rate, burst=int(rate), retry_after=1, reject_after=0.005, clock=anyio.current_time
        )
        fake = FakeAmeyo.seeded(n + 10, campaigns=(6,), latency=0.02, limits=server)
        async with fake.client(adaptive_rate=adaptive) as client:
            started = anyio.current_time()
            result = await client.delete_callbacks(fake.ordered_ids()[:n], concurrency=concurrency)
            took = anyio.current_time() - started
            gate = client.gate.not_before
        return result.counts, server, [gate], took

    return run_virtual(main)  # type: ignore[no-any-return]


def test_behind_a_token_bucket_few_requests_are_rejected() -> None:
    """20 a second (burst 20), 300 deletes at 32: all deleted, at most 10% of requests 429."""
    counts, server, _, took = _deletes_behind_a_token_bucket(n=300, adaptive=True)
    assert counts["deleted"] == 300
    assert server.rejected <= 0.10 * (server.rejected + server.admitted)
    assert took < 300 / 20 * 2.5  # slowed down, not stalled


def test_without_the_adaptive_rate_the_bucket_rejects_many() -> None:
    """The comparison that makes the test above mean something: pausing alone is not enough."""
    counts, server, _, _ = _deletes_behind_a_token_bucket(n=300, adaptive=False)
    assert server.rejected > 0.20 * (server.rejected + server.admitted)
    assert counts["deleted"] + counts["failed"] == 300


def test_when_the_gate_opens_requests_resume_spread_out() -> None:
    """After a 429 Retry-After: 1 the waiting requests are sent one by one, not at once."""

    async def main(adaptive: bool) -> int:
        server = ServerLimits(rate=20, burst=20, reject_after=0.005, clock=anyio.current_time)
        fake = FakeAmeyo.seeded(120, campaigns=(6,), latency=0.02, limits=server)
        async with fake.client(adaptive_rate=adaptive) as client:
            await client.delete_callbacks(fake.ordered_ids()[:100], concurrency=32)
        arrivals = list(server.arrivals)
        # the first pause ends 1 s after the first 429, itself within ~20 ms of the start
        reopened = next(t for t in arrivals if t >= arrivals[0] + 1.0)
        return sum(1 for t in arrivals if reopened <= t < reopened + 0.1)

    spread = trio.run(main, True, clock=trio.testing.MockClock(autojump_threshold=0))
    burst = trio.run(main, False, clock=trio.testing.MockClock(autojump_threshold=0))
    assert burst >= 20  # the old behaviour: every waiting request at once
    assert spread <= 3  # 0.1 s at the lowered rate (~14 a second)


# --------------------------------------------------------------------------
# Adaptive concurrency: the limiter alone


def _round(limiter: AdaptiveConcurrency, now: float, rtt: float, *, n: int | None = None) -> float:
    """Feed one full round of answers sent at ``now``; the time after it."""
    for _ in range(n if n is not None else max(8, 2 * limiter.limit)):
        limiter.sample(now, rtt, throttled=False)
    return now + rtt


async def test_the_limit_ramps_up_while_latency_holds_and_it_is_used() -> None:
    """Starting at 1, one more per round at the baseline latency while the permits are used."""
    limiter = AdaptiveConcurrency(max_limit=6)
    now = 0.0
    seen = [limiter.limit]
    for _ in range(8):
        async with anyio.create_task_group() as tg:
            held = anyio.Event()

            async def hold(done: anyio.Event = held) -> None:
                async with limiter:
                    await done.wait()

            for _ in range(limiter.limit):
                tg.start_soon(hold)
            await anyio.wait_all_tasks_blocked()
            assert limiter.in_use == limiter.limit
            now = _round(limiter, now, 0.02)
            held.set()
        seen.append(limiter.limit)
    assert seen == [1, 2, 3, 4, 5, 6, 6, 6, 6]  # capped at max_limit


def test_an_unused_limit_does_not_grow() -> None:
    """Rounds at the baseline but with the permits never all taken: the limit stays."""
    limiter = AdaptiveConcurrency(max_limit=32, initial=4)
    now = 0.0
    for _ in range(10):
        now = _round(limiter, now, 0.02)
    assert limiter.limit == 4


def _saturate(limiter: AdaptiveConcurrency) -> None:
    limiter._saturated = True


def test_inflated_latency_backs_off_multiplicatively() -> None:
    """Two rounds with the RTT well above the baseline: limit x 0.9 (never below 1)."""
    limiter = AdaptiveConcurrency(max_limit=32, initial=10)
    now = _round(limiter, 0.0, 0.020)  # the baseline
    assert limiter.baseline == pytest.approx(0.020)
    now = _round(limiter, now, 0.030)
    assert limiter.limit == 10  # one inflated round may be noise
    now = _round(limiter, now, 0.030)
    assert limiter.limit == 9
    assert list(limiter.adjustments)[-1] == (9, "latency")


def test_small_noise_is_not_taken_for_queueing() -> None:
    """Rounds 5% above the baseline at a small limit change nothing."""
    limiter = AdaptiveConcurrency(max_limit=32, initial=3)
    now = _round(limiter, 0.0, 0.020)
    for _ in range(10):
        now = _round(limiter, now, 0.021)
    assert limiter.limit == 3


def test_a_throttle_backs_off_at_once() -> None:
    """A 429 (or 503 Retry-After) answer: limit x 0.75 at once, down to 1 at least."""
    limiter = AdaptiveConcurrency(max_limit=32, initial=8)
    limiter.sample(0.0, 0.01, throttled=True)
    assert limiter.limit == 6
    for i in range(20):
        limiter.sample(1.0 + i, 0.01, throttled=True)
    assert limiter.limit == 1


def test_answers_to_requests_sent_under_the_old_limit_are_ignored() -> None:
    """After an adjustment, answers to requests sent before it do not count."""
    limiter = AdaptiveConcurrency(max_limit=32, initial=8)
    limiter.sample(5.0, 0.01, throttled=True)  # the round ends at 5.01
    assert limiter.limit == 6
    limiter.sample(4.0, 0.01, throttled=True)  # sent before: stale
    assert limiter.limit == 6


def test_after_a_back_off_the_limit_probes_slowly() -> None:
    """Near the limit where latency inflated, the increase per round is small."""
    limiter = AdaptiveConcurrency(max_limit=32, initial=10)
    now = _round(limiter, 0.0, 0.020)
    now = _round(limiter, now, 0.030)
    now = _round(limiter, now, 0.030)
    assert limiter.limit == 9
    for _ in range(3):
        _saturate(limiter)
        now = _round(limiter, now, 0.020)
    assert limiter.limit == 9  # 9.0 + 3 x 0.15 < 10


async def test_permits_never_exceed_the_limit_and_go_in_order() -> None:
    """With limit 2, a third task waits; permits are handed over first come, first served."""
    limiter = AdaptiveConcurrency(max_limit=4, initial=2)
    order: list[int] = []
    release = anyio.Event()

    async def task(i: int) -> None:
        async with limiter:
            order.append(i)
            assert limiter.in_use <= 2
            await release.wait()

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(task, i)
            await anyio.sleep(0)
        await anyio.sleep(0.01)
        assert order == [0, 1]
        release.set()
    assert order == [0, 1, 2, 3, 4]
    assert limiter.in_use == 0


async def test_a_cancelled_waiter_gives_its_turn_on() -> None:
    """A task cancelled while waiting for a permit leaves no permit taken."""
    limiter = AdaptiveConcurrency(max_limit=4, initial=1)
    async with limiter:
        with anyio.move_on_after(0.01):
            async with limiter:
                pytest.fail("the limit is 1")
    assert limiter.in_use == 0
    async with limiter:
        assert limiter.in_use == 1


# --------------------------------------------------------------------------
# concurrency="auto" against the fake with workers


def _auto_against_workers(n: int, *, workers: int = 8) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        server = ServerLimits(workers=workers, clock=anyio.current_time)
        fake = FakeAmeyo.seeded(n + 10, campaigns=(6,), latency=0.02, jitter=0.004, limits=server)
        limits_seen: list[int] = []

        def progress(p: BulkProgress) -> None:
            limits_seen.append(p.limit)

        async with fake.client() as client:
            started = anyio.current_time()
            result = await client.delete_callbacks(
                fake.ordered_ids()[:n], concurrency="auto", on_progress=progress
            )
            took = anyio.current_time() - started
        delays = sorted(server.queue_delays)
        return {
            "counts": result.counts,
            "took": took,
            "p95": delays[int(0.95 * len(delays))],
            "limits": limits_seen,
        }

    return run_virtual(main)  # type: ignore[no-any-return]


def test_auto_finds_the_servers_workers_without_queueing() -> None:
    """8 workers, 20-24 ms each: "auto" runs near 8 in flight, fast, with almost no queue."""
    out = _auto_against_workers(1500)
    assert out["counts"]["deleted"] == 1500
    ideal = 1500 / 8 * 0.022
    assert out["took"] <= ideal / 0.85
    assert out["p95"] <= 0.010
    tail = out["limits"][len(out["limits"]) // 4 :]
    assert 7 <= sum(tail) / len(tail) <= 10
    assert max(out["limits"]) <= 32


def test_auto_starts_low_and_reports_its_limit() -> None:
    """The progress reports the limit: it starts at 1 and climbs."""
    out = _auto_against_workers(200, workers=4)
    assert out["limits"][0] <= 2
    assert max(out["limits"]) >= 4


def test_auto_backs_off_behind_a_rate_limit() -> None:
    """concurrency="auto" behind a token bucket: all deleted, few rejections."""

    async def main() -> tuple[dict[str, int], ServerLimits]:
        server = ServerLimits(rate=20, burst=20, reject_after=0.005, clock=anyio.current_time)
        fake = FakeAmeyo.seeded(210, campaigns=(6,), latency=0.02, limits=server)
        async with fake.client() as client:
            result = await client.delete_callbacks(fake.ordered_ids()[:200], concurrency="auto")
        return result.counts, server

    counts, server = run_virtual(main)
    assert counts["deleted"] == 200
    assert server.rejected <= 0.10 * (server.admitted + server.rejected)


def test_delete_matching_auto_on_trio() -> None:
    """delete_matching(concurrency="auto") deletes every match on trio, max_rate honoured."""

    async def main() -> tuple[dict[str, int], int, list[float]]:
        server = ServerLimits(workers=4, clock=anyio.current_time)
        fake = FakeAmeyo.seeded(300, campaigns=(6, 7), latency=0.01, limits=server)
        matching = {cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 6}
        async with fake.client(max_rate=100) as client:
            result = await client.delete_matching(SIX, concurrency="auto")
        assert set(result.deleted) == matching
        return result.counts, len(matching), list(server.arrivals)

    counts, matched, arrivals = run_virtual(main)
    assert counts["deleted"] == matched
    assert busiest_second(arrivals) <= 101


async def test_auto_on_asyncio() -> None:
    """On asyncio too: "auto" deletes everything and the progress carries the limit."""
    fake = FakeAmeyo.seeded(110, campaigns=(6,), latency=0.002, limits=ServerLimits(workers=4))
    seen: list[int] = []
    async with fake.client() as client:
        result = await client.delete_callbacks(
            fake.ordered_ids()[:100], concurrency="auto", on_progress=lambda p: seen.append(p.limit)
        )
    assert result.counts["deleted"] == 100
    assert seen
    assert all(1 <= limit <= 32 for limit in seen)
    assert fake.limits is not None
    assert fake.limits.max_busy <= 4


async def test_fixed_concurrency_is_the_reported_limit() -> None:
    """With concurrency=5 every progress report says limit 5."""
    fake = FakeAmeyo.seeded(30, campaigns=(6,))
    seen: list[int] = []
    async with fake.client() as client:
        await client.delete_callbacks(
            fake.ordered_ids()[:20], concurrency=5, on_progress=lambda p: seen.append(p.limit)
        )
    assert set(seen) == {5}


async def test_max_concurrency_bounds_auto() -> None:
    """max_concurrency=3: "auto" never has more than 3 deletes in flight."""
    fake = FakeAmeyo.seeded(80, campaigns=(6,), latency=0.002)
    async with fake.client(max_concurrency=3) as client:
        fake.reset_max_concurrency()
        result = await client.delete_callbacks(fake.ordered_ids()[:60], concurrency="auto")
    assert result.counts["deleted"] == 60
    assert fake.max_concurrency <= 3


@pytest.mark.parametrize("value", ["fast", "AUTO", ""])
async def test_concurrency_must_be_an_int_or_auto(value: str) -> None:
    """A string other than "auto" is refused before anything is sent."""
    fake = FakeAmeyo.seeded(5, campaigns=(6,))
    async with fake.client() as client:
        with pytest.raises(TypeError, match="'auto'"):
            await client.delete_callbacks(["a"], concurrency=value)  # type: ignore[arg-type]
    assert fake.requests == []


# --------------------------------------------------------------------------
# The fake's server limits


def test_fake_workers_queue_requests_and_record_the_wait() -> None:
    """2 workers, 6 requests at once, 50 ms each: 2 wait none, 2 wait ~50 ms, 2 wait ~100 ms."""

    async def main() -> ServerLimits:
        server = ServerLimits(workers=2, clock=anyio.current_time)
        fake = FakeAmeyo.seeded(10, campaigns=(6,), latency=0.05, limits=server)
        async with fake.client() as client:
            await client.delete_callbacks(fake.ordered_ids()[:6], concurrency=6)
        return server

    # Virtual time: on real time the requests reach the fake some ms apart and
    # each ms comes off their waits; under coverage and a CPU hog one run in
    # five gave [0, 0, 0.041, 0.041, 0.086, 0.095], below the 0.09 s asked.
    server = run_virtual(main)
    delays = sorted(server.queue_delays)
    assert len(delays) == 6
    assert delays[1] < 0.02
    assert delays[2] >= 0.04
    assert delays[3] < 0.09
    assert delays[4] >= 0.09
    assert server.max_busy == 2


async def test_fake_token_bucket_answers_429_with_retry_after() -> None:
    """An empty bucket answers 429 Retry-After at once, without taking a worker."""
    now = [0.0]
    server = ServerLimits(rate=2, burst=2, retry_after=3, clock=lambda: now[0])
    fake = FakeAmeyo.seeded(10, campaigns=(6,), limits=server)
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        path = "/ameyorestapi/voice/customerCallbacks/getFiltered"
        params = {"campaignId": "6", "limit": "1", "offset": "0"}
        headers = {"sessionId": fake.session_id}
        statuses = [(await http.post(path, params=params, headers=headers)) for _ in range(3)]
        now[0] += 0.5  # one token back
        again = await http.post(path, params=params, headers=headers)
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].headers["retry-after"] == "3"
    assert again.status_code == 200
    assert (server.admitted, server.rejected) == (3, 1)
    assert [e.status for e in fake.requests] == [200, 200, 429, 200]


async def test_fake_limits_can_be_set_and_removed_later() -> None:
    """fake.limits = ServerLimits(...) takes effect; None takes it away."""
    fake = FakeAmeyo.seeded(10, campaigns=(6,))
    server = ServerLimits(rate=1, burst=1)
    fake.limits = server
    async with fake.client(retry=None) as client:
        await client.get_callbacks(SIX, limit=1)
        fake.limits = None
        await client.get_callbacks(SIX, limit=1)
    assert server.admitted == 1
    with pytest.raises(TypeError, match="ServerLimits"):
        fake.limits = 8  # type: ignore[assignment]


@pytest.mark.parametrize(
    "kwargs", [{"workers": 0}, {"workers": 1.5}, {"rate": 0}, {"rate": -2}, {"burst": 0}]
)
def test_fake_limits_are_checked(kwargs: dict[str, Any]) -> None:
    """Workers and burst are ints >= 1, the rate a number > 0."""
    with pytest.raises(ValueError):
        ServerLimits(**kwargs)


def test_fake_limits_reset_forgets_the_records() -> None:
    """reset() empties the records and refills the bucket."""
    now = [0.0]
    server = ServerLimits(rate=1, burst=1, clock=lambda: now[0])
    assert server.throttle() is None
    assert server.throttle() is not None
    server.reset()
    assert (server.admitted, server.rejected, list(server.arrivals)) == (0, 0, [])
    assert server.throttle() is None
