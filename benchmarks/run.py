"""Run the benchmarks: ``python benchmarks/run.py [--runs N] [--otel] [b1 b2 ...]``.

Runs the ``main()`` of every ``benchmarks/b*_*.py`` module in name order,
or only those named (``b2`` or ``b2_prefetch``), then prints a summary
table. A missed target prints MISS but does not change the exit status
(benchmarks on a shared machine are noisy); a benchmark that crashes does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(path.stem for path in HERE.glob("b*_*.py"))


def pick(available: list[str], wanted: list[str]) -> list[str]:
    if not wanted:
        return available
    chosen: list[str] = []
    for name in wanted:
        matches = [m for m in available if m == name or m.split("_", 1)[0] == name]
        if not matches:
            sys.exit(f"no benchmark named {name!r}; have: {', '.join(available)}")
        chosen.extend(m for m in matches if m not in chosen)
    return sorted(chosen)


def run_one(name: str) -> bool:
    """Import and run one benchmark module; False (traceback printed) if it crashed."""
    try:
        importlib.import_module(name).main()
    except Exception:
        traceback.print_exc()
        print(f"{name}: CRASHED (see the traceback above)", flush=True)
        return False
    return True


def tracing_on() -> None:
    """A tracer provider as an application sets one: the library's spans are made and ended.

    Each span goes through a SimpleSpanProcessor to an exporter that keeps
    nothing, so what is measured is the making, not a backend.
    """
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Nowhere(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Nowhere()))
    trace.set_tracer_provider(provider)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. b2")
    parser.add_argument("--runs", type=int, help="runs per variant, median taken (default 3)")
    parser.add_argument(
        "--client-uvloop",
        action="store_true",
        help="run the client on uvloop too (default: asyncio's own loop)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a reduced form of the long benchmarks (B7-B9), for a smoke run",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="set an OpenTelemetry SDK tracer provider first (spans made, then dropped)",
    )
    args = parser.parse_args(argv)
    if args.otel:
        tracing_on()
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    if args.client_uvloop:
        os.environ["BENCH_CLIENT_LOOP"] = "uvloop"
    if args.runs is not None:
        if args.runs < 1:
            parser.error("--runs must be >= 1")
        os.environ["BENCH_RUNS"] = str(args.runs)
    sys.path.insert(0, str(HERE))
    import _common  # noqa: PLC0415  (after sys.path and BENCH_RUNS are set)

    names = pick(discover(), args.names)
    print(f"benchmarks: {', '.join(names)}; {_common.RUNS} runs per variant (median)")
    print(
        f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs; "
        f"client on the {_common.CLIENT_LOOP} event loop, server in its own process"
        + ("; an OpenTelemetry tracer provider set (--otel)" if args.otel else "")
    )
    started = time.perf_counter()
    crashed = [name for name in names if not run_one(name)]

    print(f"\n== summary ({time.perf_counter() - started:.0f} s)")
    print(_common.header())
    for result in _common.RESULTS:
        print(result.line())
    targets = [r for r in _common.RESULTS if r.passed is not None]
    missed = [r for r in targets if not r.passed]
    print(
        f"\n{len(targets) - len(missed)} of {len(targets)} targets met"
        + (f"; MISS: {', '.join(f'{r.bench} {r.metric}' for r in missed)}" if missed else "")
        + (f"; CRASHED: {', '.join(crashed)}" if crashed else "")
    )
    if missed:
        print("(a miss does not fail the run: rerun it on a quiet machine before concluding)")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
