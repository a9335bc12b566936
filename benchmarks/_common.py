"""Shared pieces of the benchmarks: the fake server process, timing, medians, the report.

Every benchmark compares the library with a baseline measured in the same
run against the same server: the fake Ameyo server
(``python -m ameyo_callbacks.testing``) under uvicorn on 127.0.0.1, in a
separate process so that client and server CPU never share an interpreter.
Figures are medians of several runs, baseline and library interleaved.
Targets print PASS or MISS; a miss never changes the exit status (machines
are noisy), it is for a human to read and rerun.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

HOST = "127.0.0.1"  # the only address any benchmark talks to
CAMPAIGN = 6
LIST_PATH = "/ameyorestapi/voice/customerCallbacks/getFiltered"
DELETE_PREFIX = "/ameyorestapi/voice/customerCallbacks/"
PAGE = 100

#: Runs per measured variant (median taken); ``run.py --runs N`` changes it.
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
#: A reduced form of the long benchmarks (B7-B9) for a smoke run (``run.py --quick``).
QUICK = os.environ.get("BENCH_QUICK", "") == "1"
#: The client's event loop: "asyncio" (default) or "uvloop" (``run.py --client-uvloop``).
CLIENT_LOOP = os.environ.get("BENCH_CLIENT_LOOP", "asyncio")


# ----------------------------------------------------------------------
# The fake server, in its own process


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def fast_server_options() -> list[str]:
    """uvicorn's uvloop and httptools when installed (what a real deployment would use)."""
    options: list[str] = []
    if importlib.util.find_spec("uvloop") is not None:
        options += ["--loop", "uvloop"]
    if importlib.util.find_spec("httptools") is not None:
        options += ["--http", "httptools"]
    return options


@dataclass
class FakeServer:
    """``python -m ameyo_callbacks.testing`` on 127.0.0.1, started and always stopped."""

    callbacks: int
    latency_ms: float = 0.0
    campaigns: Sequence[int] = (CAMPAIGN,)
    seed: int = 0
    log_limit: int = 1000
    extra_args: Sequence[str] = ()  # more fake-server options (e.g. --order, --live-rate)
    url: str = ""
    session_id: str = ""
    options: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _stderr: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> FakeServer:
        port = free_port()
        self.options = fast_server_options()
        argv = [
            sys.executable,
            "-m",
            "ameyo_callbacks.testing",
            "--host",
            HOST,
            "--port",
            str(port),
            "--callbacks",
            str(self.callbacks),
            "--campaigns",
            ",".join(map(str, self.campaigns)),
            "--seed",
            str(self.seed),
            "--latency-ms",
            str(self.latency_ms),
            "--log-limit",
            str(self.log_limit),
            *self.extra_args,
            *self.options,
        ]
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # Drain stderr in the background so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self._read_banner(timeout)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _drain(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-50]

    def _read_banner(self, timeout: float) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        found: dict[str, str] = {}
        done = threading.Event()

        def read() -> None:
            assert self._proc is not None
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                name, _, value = line.strip().partition("=")
                found[name] = value
                if "AMEYO_BASE_URL" in found and "AMEYO_SESSION_ID" in found:
                    break
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(timeout) or "AMEYO_SESSION_ID" not in found:
            msg = f"the fake server did not start: {''.join(self._stderr)[-2000:]}"
            raise RuntimeError(msg)
        self.url, self.session_id = found["AMEYO_BASE_URL"], found["AMEYO_SESSION_ID"]
        if not self.url.startswith(f"http://{HOST}:"):
            msg = f"the fake server is not on {HOST}: {self.url}"
            raise RuntimeError(msg)

    def _wait_ready(self, timeout: float) -> None:
        """Poll until the server answers HTTP (the socket listens before uvicorn serves)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                msg = f"the fake server exited: {''.join(self._stderr)[-2000:]}"
                raise RuntimeError(msg)
            try:
                response = httpx.get(f"{self.url}/ready", timeout=1.0, trust_env=False)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 404:
                return
            if time.monotonic() > deadline:
                msg = f"the fake server at {self.url} did not answer within {timeout} s"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (0 if unknown)."""
        if self._proc is None:
            return 0.0
        try:
            import psutil  # noqa: PLC0415  (optional: only for the server CPU column)
        except ImportError:
            return 0.0
        with contextlib.suppress(Exception):
            times = psutil.Process(self._proc.pid).cpu_times()
            return float(times.user + times.system)
        return 0.0

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        extra = f", uvicorn {' '.join(self.options)}" if self.options else ""
        return (
            f"fake server: {self.callbacks:,} callbacks, {self.latency_ms:g} ms latency "
            f"per request, separate process on {self.url}{extra}"
        )


def seeded_ids(
    callbacks: int, *, campaigns: Sequence[int] = (CAMPAIGN,), seed: int = 0
) -> list[str]:
    """The ids a server started with the same seeding holds, in serving order.

    The fake seeds deterministically (same count, campaigns and seed: same
    records), so the ids are computed here instead of walked over HTTP.
    """
    from ameyo_callbacks.testing import FakeAmeyo  # noqa: PLC0415

    fake = FakeAmeyo.seeded(callbacks, campaigns=campaigns, seed=seed, log_limit=0)
    return [record.customer_callback_id for record in fake.callbacks]


class IdPool:
    """Hands out disjoint slices of existing ids, so every DELETE finds its record.

    Ids go out from the end of the serving order: the fake then removes rows
    at the tail of its sorted index, so a delete costs the server the same
    early and late in a run, whichever variant sends it.
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self._ids = list(reversed(ids))
        self._at = 0

    def take(self, n: int) -> list[str]:
        if self._at + n > len(self._ids):
            msg = f"the id pool is exhausted ({len(self._ids)} ids, {self._at} used, {n} asked)"
            raise RuntimeError(msg)
        out = self._ids[self._at : self._at + n]
        self._at += n
        return out

    @property
    def left(self) -> int:
        return len(self._ids) - self._at


# ----------------------------------------------------------------------
# Plain-httpx baselines (what a user would write without the library)


def plain_httpx_client(**kwargs: Any) -> httpx.AsyncClient:
    """The baseline's client: httpx defaults, the library's timeouts, no proxy from the env."""
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), trust_env=False, **kwargs)


async def plain_walk(
    http: httpx.AsyncClient, url: str, session_id: str, max_pages: int | None = None
) -> int:
    """Walk getFiltered one page at a time, ``response.json()`` into dicts; the record count."""
    offset, total, pages = 0, 0, 0
    headers = {"sessionId": session_id}
    while max_pages is None or pages < max_pages:
        pages += 1
        response = await http.post(
            url + LIST_PATH,
            params={"limit": str(PAGE), "campaignId": str(CAMPAIGN), "offset": str(offset)},
            headers=headers,
        )
        response.raise_for_status()
        rows = response.json()
        total += len(rows)
        if len(rows) < PAGE:
            break
        offset += len(rows)
    return total


async def plain_deletes(
    http: httpx.AsyncClient, url: str, session_id: str, ids: Sequence[str], concurrency: int
) -> int:
    """DELETE each id as the library does (same path, JSON body and header); the 200s."""
    headers = {"sessionId": session_id}
    source = iter(ids)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for cb_id in source:  # one shared iterator: each id goes to one worker
            response = await http.request(
                "DELETE",
                url + DELETE_PREFIX + quote(cb_id, safe=""),
                json={"customerCallbackId": cb_id},
                headers=headers,
            )
            ok += response.status_code == 200

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


# ----------------------------------------------------------------------
# Timing


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # client process CPU seconds (time.process_time)
    value: Any = None  # what the measured coroutine returned


class Stopwatch:
    """Times the block it guards: ``with sw: ...`` (wall and client process CPU).

    A measured coroutine sets up (client, transport) first and times only its
    work; left unused, :func:`measure` times the whole coroutine.
    """

    def __init__(self) -> None:
        self.wall: float | None = None
        self.cpu: float | None = None
        self._t0 = self._c0 = 0.0

    def __enter__(self) -> Stopwatch:
        self._c0, self._t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._c0


def measure(factory: Callable[[Stopwatch], Awaitable[Any]]) -> Sample:
    """Run ``factory(stopwatch)`` in a fresh event loop; its wall and client CPU time.

    The loop is asyncio's own, or uvloop's with ``BENCH_CLIENT_LOOP=uvloop``
    (``run.py --client-uvloop``).
    """

    async def timed() -> Sample:
        watch = Stopwatch()
        with Stopwatch() as whole:
            value = await factory(watch)
        if watch.wall is None or watch.cpu is None:
            watch = whole
        assert watch.wall is not None
        assert watch.cpu is not None
        return Sample(watch.wall, watch.cpu, value)

    if CLIENT_LOOP == "uvloop":
        import uvloop  # noqa: PLC0415  (optional)

        return uvloop.run(timed())
    return asyncio.run(timed())


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def interleaved(
    variants: dict[str, Callable[[Stopwatch], Awaitable[Any]]], runs: int | None = None
) -> dict[str, list[Sample]]:
    """Each variant ``runs`` times, round-robin (the order rotates per round)."""
    runs = RUNS if runs is None else runs
    names = list(variants)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for round_no in range(runs):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measure(variants[name]))
    return samples


def check_walked(name: str, samples: Sequence[Sample], expected: int) -> None:
    """Every run of a variant must have walked exactly ``expected`` records."""
    counts = {s.value for s in samples}
    if counts != {expected}:
        msg = f"{name} walked {counts} records, expected {expected}"
        raise RuntimeError(msg)


def walls(samples: Sequence[Sample]) -> str:
    return ", ".join(f"{s.wall:.3f}" for s in samples)


# ----------------------------------------------------------------------
# Reporting


@dataclass
class Result:
    bench: str
    metric: str
    value: float
    unit: str  # "x" for ratios, "s", "ms", ...
    target: str = ""  # e.g. "<= 1.20"; empty for information only
    passed: bool | None = None  # None: no target

    @property
    def status(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"

    def line(self) -> str:
        number = f"{self.value:,.0f}" if abs(self.value) >= 1000 else f"{self.value:.3f}"
        shown = f"{number}{self.unit}" if self.unit == "x" else f"{number} {self.unit}"
        return f"{self.bench:<4} {self.metric:<52} {shown:>12}  {self.target:<10} {self.status}"


RESULTS: list[Result] = []


def header() -> str:
    return f"{'NAME':<4} {'metric':<52} {'value':>12}  {'target':<10} status"


def report(
    bench: str,
    metric: str,
    value: float,
    *,
    unit: str = "x",
    at_most: float | None = None,
    at_least: float | None = None,
) -> Result:
    """Print one figure (and its target, if any) and keep it for the summary."""
    if at_most is not None:
        result = Result(bench, metric, value, unit, f"<= {at_most:g}", value <= at_most)
    elif at_least is not None:
        result = Result(bench, metric, value, unit, f">= {at_least:g}", value >= at_least)
    else:
        result = Result(bench, metric, value, unit)
    RESULTS.append(result)
    print(result.line(), flush=True)
    return result


def note(text: str) -> None:
    print(f"     {text}", flush=True)


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
