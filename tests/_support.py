"""Helpers the test modules share: the spec's sample record, record factories, a page fetcher.

Test modules import these (``from _support import ...``; pytest puts ``tests/``
on ``sys.path``) and never import one another. Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import respx

from ameyo_callbacks import CustomerCallback
from ameyo_callbacks._convert import datetime_to_epoch_ms
from ameyo_callbacks._paging import Answered
from ameyo_callbacks._planner import PageRequest
from ameyo_callbacks._protocol import CALLBACKS_PREFIX, NOT_FOUND_KEY
from ameyo_callbacks._transport._base import StackSettings

if TYPE_CHECKING:
    from ameyo_callbacks.testing import FakeAmeyo

__all__ = [
    "BASE",
    "CALLBACKS_PREFIX",
    "CALLBACK_ID",
    "CAMPAIGN_PATH",
    "DELETE_PATH",
    "NOT_FOUND_KEY",
    "PROFILE",
    "SAMPLE_DT",
    "SAMPLE_MS",
    "SESSION",
    "SPEC_CALLBACK",
    "T0",
    "TENANT_PATH",
    "TOKEN",
    "ListFetch",
    "drain_into",
    "examples",
    "expected_row",
    "fake_http",
    "ids",
    "interrupt",
    "iso_z",
    "last_request",
    "make_callback",
    "numbered",
    "random_ticks",
    "reap",
    "spec_record",
]

#: The hypothesis profile conftest loads: "default", or "thorough" (``HYPOTHESIS_PROFILE``).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")


def examples(thorough: int) -> int:
    """A property test's example budget: ``thorough`` under the thorough profile, else a tenth.

    The default profile keeps every property test and state machine (at least
    10 examples each) so a run takes seconds; ``.ci/run`` runs the thorough
    profile once, on one Python.
    """
    return thorough if PROFILE == "thorough" else max(10, thorough // 10)


#: The base URL respx answers at (conftest's ``router`` fixture); nothing is ever sent there.
BASE = "http://ameyo.example:8888"
CAMPAIGN_PATH = f"{CALLBACKS_PREFIX}/getFiltered"
TENANT_PATH = f"{CALLBACKS_PREFIX}/getTenantUserCallbacks"
#: The spec's sample callback id (Delete Callback API).
CALLBACK_ID = "d810-59423051-cm-0"
DELETE_PATH = f"{CALLBACKS_PREFIX}/{CALLBACK_ID}"
SESSION = "5e55-10n1d-c0ffee-7f3a"
TOKEN = "t0ken-abcdef-123456"
#: The spec's sample date, 2018-03-20 09:43:58.782 UTC, as epoch ms and as a datetime.
SAMPLE_MS = 1521539038782
SAMPLE_DT = datetime(2018, 3, 20, 9, 43, 58, 782000, tzinfo=timezone.utc)
#: Where :func:`make_callback` dates start.
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def spec_record(**changes: Any) -> dict[str, Any]:
    """The spec's sample record as the server sends it: a fresh dict, ``changes`` by wire name."""
    return {
        "customerCallbackId": CALLBACK_ID,
        "campaignId": 6,
        "callbackTime": SAMPLE_MS,
        "selfCallback": False,
        "userId": "Stieve",
        "phone": "9876543210",
        "customerId": 42,
        "dateAdded": SAMPLE_MS,
        **changes,
    }


#: :func:`spec_record` decoded, as the client hands it out.
SPEC_CALLBACK = CustomerCallback(
    customer_callback_id=CALLBACK_ID,
    campaign_id=6,
    callback_time=SAMPLE_DT,
    self_callback=False,
    user_id="Stieve",
    phone="9876543210",
    customer_id=42,
    date_added=SAMPLE_DT,
)


def make_callback(
    cb_id: str,
    *,
    campaign: int = 6,
    user: str | None = "asha",
    day: float = 0,
    seconds: float = 0,
    customer_id: int = 42,
) -> CustomerCallback:
    """A callback added ``day`` days and ``seconds`` seconds after T0, due an hour later.

    ``user=None`` is a callback for the campaign rather than for one agent
    (``self_callback`` False); the fake serves records in ``date_added`` order.
    """
    added = T0 + timedelta(days=day, seconds=seconds)
    return CustomerCallback(
        customer_callback_id=cb_id,
        campaign_id=campaign,
        callback_time=added + timedelta(hours=1),
        self_callback=user is not None,
        user_id=user,
        phone="9876543210",
        customer_id=customer_id,
        date_added=added,
    )


def numbered(i: int, prefix: str = "cb", **fields: Any) -> CustomerCallback:
    """Callback number ``i``: id ``<prefix>-<i:05d>``, customer ``i``, added ``i`` s after T0."""
    fields.setdefault("seconds", i)
    return make_callback(f"{prefix}-{i:05d}", customer_id=i, **fields)


def iso_z(moment: datetime) -> str:
    """``moment`` as the CLI writes it: ISO-8601 UTC with milliseconds and a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected_row(cb: CustomerCallback) -> list[str]:
    """The CSV row the CLI's export writes for ``cb``."""
    return [
        cb.customer_callback_id,
        str(cb.campaign_id),
        iso_z(cb.callback_time),
        "true" if cb.self_callback else "false",
        cb.user_id or "",
        cb.phone,
        "" if cb.customer_id is None else str(cb.customer_id),
        iso_z(cb.date_added),
        json.dumps(dict(cb.extra), separators=(",", ":")) if cb.extra else "{}",
    ]


def fake_http(app: FakeAmeyo, *, session: bool = True) -> httpx.AsyncClient:
    """An httpx client on ``app`` in-process (ASGITransport: no socket).

    It sends ``app``'s sessionId on every request unless ``session`` is False.
    """
    headers = {"sessionId": app.session_id} if session else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ameyo.invalid", headers=headers
    )


def interruptible(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
    """``subprocess.Popen(args, **kwargs)`` for a Python child that a SIGINT interrupts.

    A child inherits an ignored SIGINT (``nohup``, a job started with ``&``
    from a script), and Python then leaves it ignored: Ctrl-C would do
    nothing. Started while this process has a handler installed, the child
    gets the default disposition at exec, and Python its KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, text=True, **kwargs)  # noqa: S603
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt(proc: subprocess.Popen[str], timeout: float) -> str:
    """Send ``proc`` a SIGINT (Ctrl-C), wait up to ``timeout`` s for its exit; its stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return err


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs and wait for it: the ``finally`` of a test that started it."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=10)


def ids(records: Sequence[CustomerCallback]) -> list[str]:
    """The callback ids of ``records``, in order."""
    return [r.customer_callback_id for r in records]


def last_request(router: respx.MockRouter) -> httpx.Request:
    """The one request ``router`` saw (asserting there was exactly one)."""
    assert router.calls.call_count == 1
    return router.calls.last.request


#: The library's conversion, remembered per datetime: :func:`in_dates` reads every record's
#: dateAdded for every page a fetch serves (traced line by line under coverage).
_epoch_ms = functools.cache(datetime_to_epoch_ms)


def in_dates(record: CustomerCallback, request: PageRequest) -> bool:
    """Whether ``record`` was added within the request's bounds (both inclusive)."""
    added = _epoch_ms(record.date_added)
    low, high = request.from_date, request.to_date
    return (low is None or added >= low) and (high is None or added <= high)


class ListFetch:
    """A walk's ``fetch(request)`` over a list, with a log of calls and of concurrency.

    ``ticks(offset)`` is the number of checkpoints a call waits before it
    answers; ``serve_max`` clamps every page like a server that serves at most
    that many; ``serve_exactly`` ignores the limit asked and serves that many;
    ``block`` offsets never answer; ``fail`` offsets raise; ``announce``: it
    awaits ``answered`` before it builds a page, as the client does before it
    decodes one (``in_flight`` counts requests not answered yet).
    """

    def __init__(
        self,
        records: Sequence[CustomerCallback],
        *,
        ticks: Callable[[int], int] | None = None,
        serve_max: int | None = None,
        serve_exactly: int | None = None,
        block: frozenset[int] = frozenset(),
        fail: dict[int, Exception] | None = None,
        announce: bool = True,
    ) -> None:
        self.records = list(records)
        self.announce = announce
        self.ticks = ticks
        self.serve_max = serve_max
        self.serve_exactly = serve_exactly
        self.block = block
        self.fail = fail or {}
        self.calls: list[tuple[int, int]] = []
        self.events: list[tuple[str, int]] = []
        self.finished: list[int] = []
        self.cancelled: list[int] = []
        self.in_flight = 0
        self.high_water = 0

    async def __call__(self, request: PageRequest, answered: Answered) -> list[CustomerCallback]:
        offset, limit = request.offset, request.limit
        self.calls.append((offset, limit))
        self.events.append(("start", offset))
        self.in_flight += 1
        self.high_water = max(self.high_water, self.in_flight)
        out = True
        try:
            for _ in range(self.ticks(offset) if self.ticks else 0):
                await anyio.sleep(0)
            if offset in self.block:
                await anyio.sleep_forever()
            if offset in self.fail:
                raise self.fail[offset]
            if self.announce:  # the answer is in, as the client's fetcher says before decoding
                self.in_flight -= 1
                out = False
                await answered(len(self.records) >= offset + limit)
            served = limit if self.serve_max is None else min(limit, self.serve_max)
            if self.serve_exactly is not None:
                served = self.serve_exactly
            page = [r for r in self.records if in_dates(r, request)][offset : offset + served]
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(offset)
            raise
        finally:
            if out:
                self.in_flight -= 1
            self.events.append(("end", offset))
        self.finished.append(offset)
        return page

    async def assert_quiet(self, checkpoints: int = 50) -> None:
        """No call is in flight, and none starts while ``checkpoints`` scheduler turns pass."""
        assert self.in_flight == 0
        made = len(self.calls)
        for _ in range(checkpoints):
            await anyio.sleep(0)
        assert len(self.calls) == made


async def drain_into(
    walk: AsyncIterable[CustomerCallback], got: list[CustomerCallback], stop_at: int | None = None
) -> None:
    """Append every record of ``walk`` to ``got``, which keeps them when the walk raises.

    With ``stop_at``, raise ``KeyError("stop here")`` once ``got`` holds that many.
    """
    async for cb in walk:
        got.append(cb)
        if len(got) == stop_at:
            raise KeyError("stop here")


def random_ticks(seed: int, most: int = 20) -> Callable[[int], int]:
    """A ``ticks`` for :class:`ListFetch`: each call waits a seeded random 0..most checkpoints."""
    rng = random.Random(seed)
    return lambda _offset: rng.randint(0, most)


class VirtualClock:
    """A client ``clock=`` whose sleeps take no real time: each moves its time forward.

    For tests that pass through back-off, Retry-After or pacing waits without
    asserting them. Other tasks still get a turn at every sleep.
    """

    def __init__(self) -> None:
        self.time = 0.0
        self.slept = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(seconds, 0.0)
        self.slept += max(seconds, 0.0)
        await anyio.sleep(0)


def stack_settings(base_url: str, **changes: Any) -> StackSettings:
    """A client's HTTP stack settings for ``base_url``: small and plain, ``changes`` on top."""
    settings: dict[str, Any] = {
        "base_url": base_url,
        "timeout": httpx.Timeout(5.0),
        "verify": True,
        "backend": "httpx",
        "max_connections": 4,
        "trust_env": True,
        "proxy": None,
        "max_response_bytes": 1 << 20,
        "attempt_timeout": None,
    }
    return StackSettings(**{**settings, **changes})


#: What coverage's ``patch = ["subprocess"]`` sets for a child process to measure itself.
_COVERAGE_CHILD = ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")


def unmeasured_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child whose coverage means nothing, plus ``extra``.

    For children that check something else (which modules an import loads, a
    documentation example under plain pytest): coverage would only slow them
    down, and it loads modules of its own into them.
    """
    env = {k: v for k, v in os.environ.items() if k not in _COVERAGE_CHILD}
    return {**env, **extra}
