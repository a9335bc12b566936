"""``export``: stream callbacks to CSV or JSON Lines, page by page, in flat memory.

Formats:

- ``csv``: a header row, then one row per record; the columns are the
  record's fields in snake_case (:data:`CSV_COLUMNS`). Times are ISO-8601 in
  UTC with milliseconds and a ``Z`` (``2024-01-01T00:00:00.000Z``); booleans
  are ``true``/``false``; a null is an empty cell; ``extra`` (wire fields the
  record does not model) is a compact JSON object, ``{}`` when there are none.
- ``jsonl``: one JSON object per line, exactly the wire's form
  (``make_converter().unstructure(record)``: camelCase names, epoch
  milliseconds), so an export can be fed back to anything that reads the API.

Records are written as each page arrives: the walk buffers at most
``prefetch`` pages, and nothing else is kept.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TextIO

import attrs
import click
from rich.progress import TaskID

from .. import CallbackFilter, CustomerCallback, make_converter
from ._config import Connection, open_client
from ._files import atomic_output, describe
from ._summary import emit_json
from ._ui import count, progress

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "CsvWriter",
    "ExportPlan",
    "ExportStats",
    "JsonlWriter",
    "output_format",
    "run_export",
    "wire_line",
]

FORMATS = ("csv", "jsonl")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

CSV_COLUMNS = (
    "customer_callback_id",
    "campaign_id",
    "callback_time",
    "self_callback",
    "user_id",
    "phone",
    "customer_id",
    "date_added",
    "extra",
)


def output_format(explicit: str | None, output: str) -> str:
    """``--format`` if given, else from the output's suffix (.csv, .jsonl, .ndjson), else csv."""
    if explicit is not None:
        return explicit.lower()
    suffix = "" if output == "-" else Path(output).suffix.lower()
    return _SUFFIXES.get(suffix, "csv")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _Writer(Protocol):
    def write(self, records: Sequence[CustomerCallback]) -> None: ...

    def finish(self) -> None: ...


class CsvWriter:
    """Rows of :data:`CSV_COLUMNS`, header first.

    The header is written with the first records (or by :meth:`finish`), so
    an export to stdout that fails at once writes nothing at all.
    """

    def __init__(self, stream: TextIO) -> None:
        self._writer = csv.writer(stream, lineterminator="\n")
        self._header = False

    def finish(self) -> None:
        """Write the header if no record did."""
        if not self._header:
            self._writer.writerow(CSV_COLUMNS)
            self._header = True

    @staticmethod
    def row(record: CustomerCallback) -> tuple[Any, ...]:
        """One record as CSV cells."""
        return (
            record.customer_callback_id,
            record.campaign_id,
            _iso(record.callback_time),
            "true" if record.self_callback else "false",
            record.user_id,
            record.phone,
            record.customer_id,
            _iso(record.date_added),
            _COMPACT(dict(record.extra)) if record.extra else "{}",
        )

    def write(self, records: Sequence[CustomerCallback]) -> None:
        """Write these records' rows."""
        self.finish()
        self._writer.writerows(map(self.row, records))


_UNSTRUCTURE = make_converter().unstructure


def wire_line(record: CustomerCallback) -> str:
    """One record as ``export --format jsonl`` writes it: the wire's JSON and a newline."""
    return _COMPACT(_UNSTRUCTURE(record)) + "\n"


class JsonlWriter:
    """One wire-form JSON object per line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, records: Sequence[CustomerCallback]) -> None:
        """Write these records' lines."""
        self._stream.write("".join([wire_line(r) for r in records]))

    def finish(self) -> None:
        """Nothing to add: JSON Lines has no header."""


@attrs.define
class ExportStats:
    """Records and pages written so far, and since when."""

    records: int = 0
    pages: int = 0
    started: float = attrs.field(factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        """Records per second so far."""
        elapsed = self.elapsed
        return self.records / elapsed if elapsed > 0 else 0.0


@attrs.frozen
class ExportPlan:
    """What to export: one filter per campaign (or the tenant's), and the caps."""

    wheres: tuple[CallbackFilter, ...]
    max_items: int | None
    prefetch: int


async def _walk(
    connection: Connection,
    plan: ExportPlan,
    writer: _Writer,
    stats: ExportStats,
    on_page: Callable[[], None],
) -> None:
    async with open_client(connection) as client:
        for where in plan.wheres:
            remaining = None if plan.max_items is None else plan.max_items - stats.records
            if remaining == 0:
                break
            walk = client.iter_callbacks(where, max_items=remaining, prefetch=plan.prefetch)
            async with walk:  # pipelined: requests overlap the writing
                async for page in walk.pages():
                    writer.write(page.items)
                    stats.records += len(page.items)
                    stats.pages += 1
                    on_page()


def run_export(
    connection: Connection,
    plan: ExportPlan,
    fmt: str,
    output: str,
    *,
    quiet: bool = False,
    as_json: bool = False,
) -> ExportStats:
    """Export to ``output`` (``-``: stdout), with a progress bar on a terminal; the counts.

    A failure or Ctrl-C leaves no regular file behind (see :func:`atomic_output`).
    """
    stats = ExportStats()
    bar = None if quiet else progress("records", "pages")
    with atomic_output(output) as stream:
        writer: _Writer = CsvWriter(stream) if fmt == "csv" else JsonlWriter(stream)
        task = bar.add_task("exporting", records="0", pages="0", rate="0") if bar else TaskID(0)

        def on_page() -> None:
            if bar is not None:
                bar.update(
                    task,
                    records=count(stats.records),
                    pages=count(stats.pages),
                    rate=count(round(stats.rate)),
                )

        with bar if bar is not None else nullcontext():
            asyncio.run(_walk(connection, plan, writer, stats, on_page))
        writer.finish()
    if not quiet:
        click.echo(
            f"exported {count(stats.records)} records ({count(stats.pages)} pages) to "
            f"{describe(output)} in {stats.elapsed:.1f} s ({count(round(stats.rate))} records/s)",
            err=True,
        )
    if as_json:
        emit_json(
            {
                "command": "export",
                "filter": [where.describe() for where in plan.wheres],
                "records": stats.records,
                "pages": stats.pages,
                "format": fmt,
                "output": describe(output),
                "files": [] if output == "-" else [output],
                "elapsed_s": round(stats.elapsed, 3),
            },
            err=output == "-",
        )
    return stats
