"""Fixtures the test modules share; plain helpers and sample data are in ``_support.py``."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
import respx
from _support import BASE, PROFILE, fake_http
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ameyo_callbacks.testing import no_retry_waits

if TYPE_CHECKING:
    from ameyo_callbacks.testing import FakeAmeyo

# Hypothesis times nothing here: speed belongs to the benchmarks. On a loaded
# 2-core CI machine its per-example deadline and "too slow" health check are
# failures of the machine, not of the code. Two profiles: "default" keeps every
# property test and state machine at a budget that runs in seconds;
# "thorough" (HYPOTHESIS_PROFILE=thorough, run once by .ci/run) gives each the
# full budget it names through ``_support.examples``.
#
# Under CI (CI=true) the examples are derandomized: each run of a test draws
# the same examples, so a green CI stays green for the same code, and a
# failure reproduces. Runs elsewhere draw new examples every time: that is
# where property tests find new bugs (a failure prints its blob to replay).
for _name, _examples in (("default", 25), ("thorough", 200)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
        derandomize=os.environ.get("CI") == "true",
    )
settings.load_profile(PROFILE)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collection done: freeze what it allocated, and collect the youngest generation less often.

    After collection a worker holds some 144,000 long-lived objects (the test
    modules, hypothesis, httpx, attrs classes), which every full collection
    walked again, and the seeding, decoding and property tests allocate fast
    enough to start one every few hundred objects. ``gc.freeze()`` moves what
    exists now out of the collector's sight (it is garbage-free: collected
    just before), and a first threshold of 20,000 instead of 700 starts
    collections less often; a cycle is still collected, a little later.
    Measured under coverage on six allocation-heavy modules: 10% less CPU.
    Tests that need a collection at a point (ResourceWarning checks) call
    ``gc.collect()`` themselves, which this does not change.

    ``gc.get_referrers()`` does not look at frozen objects. Hypothesis (6.100,
    the floor) checks with it that the PRNG it registers on a worker's first
    property test is referenced, and warns when it finds no referrer: an
    error here, raised before the test draws anything, when examples are not
    derandomized (``CI`` unset). So one trivial property test runs first,
    while its referrer (``hypothesis.core``'s namespace) is still in sight.
    """
    _register_hypothesis_prng()
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _register_hypothesis_prng() -> None:
    """Run one property test, so that Hypothesis registers its global PRNG (see above)."""

    @settings(max_examples=1, database=None, phases=[Phase.generate])
    @given(st.none())
    def once(_: None) -> None:
        pass

    once()


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (either case) are unset in every test.

    With trust_env (the default) httpx and aiohttp send even 127.0.0.1
    through HTTP_PROXY: a CI machine that sets it for pip would send the
    socket tests' requests to its proxy. Tests of proxy handling set them.
    """
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router answering at ``_support.BASE``; a request it has no route for fails."""
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def zero_backoff() -> Iterator[None]:
    """Retry back-off waits become 0; the policy's own attempt count still applies.

    Opt in with ``pytestmark = pytest.mark.usefixtures("zero_backoff")``.
    """
    with no_retry_waits():
        yield


@pytest.fixture
async def http(fake: FakeAmeyo) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client (:func:`_support.fake_http`) on the module's own ``fake`` fixture."""
    async with fake_http(fake) as client:
        yield client
