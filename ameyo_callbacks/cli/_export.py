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

import csv
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TextIO

import attrs
import click
from rich.progress import TaskID

from .. import CallbackFilter, CustomerCallback, make_converter
from ._config import Connection, open_client
from ._errors import ConfigError
from ._files import atomic_output, check_writable, describe, finish_file, is_special, writing
from ._jobs import Progress, ResumeFiles, State, Watermark
from ._runner import run
from ._summary import emit_json
from ._ui import count
from ._ui import progress as progress_display

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

    def __init__(self, stream: TextIO, *, header_written: bool = False) -> None:
        self._writer = csv.writer(stream, lineterminator="\n")
        self._header = header_written

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
    """What to export: one filter per campaign (or the tenant's), the caps, resume and state."""

    wheres: tuple[CallbackFilter, ...]
    max_items: int | None
    prefetch: int
    resume: bool = False
    state: str | None = None


class _Sink(Protocol):
    """Where the records go: written, then committed with the progress that covers them."""

    writer: _Writer

    def commit(self, progress: Progress, *, now: bool = False) -> None: ...


@attrs.define
class _StreamSink:
    """stdout, a device or a FIFO: written directly, nothing to resume."""

    stream: TextIO
    writer: _Writer

    def commit(self, progress: Progress, *, now: bool = False) -> None:
        self.stream.flush()


#: Seconds between two commits of a file export: an fsync and a progress file
#: for every page cost more than the walk itself (about half of the export's
#: time at 100 records a page); a crash redoes at most this much work.
COMMIT_INTERVAL = 1.0


@attrs.define
class _FileSink:
    """A regular file: records in the partial file, progress recorded about once a second.

    The progress names only data already on disk (fsync first), so a run
    that stops anywhere resumes exactly from the last commit; ``now=True``
    commits at once (a source finished, the walk stopped between pages).
    """

    stream: TextIO
    writer: _Writer
    files: ResumeFiles
    interval: float = COMMIT_INTERVAL
    _last: float = attrs.field(default=float("-inf"), init=False)  # the first page commits

    def commit(self, progress: Progress, *, now: bool = False) -> None:
        clock = time.monotonic()
        if not now and clock - self._last < self.interval:
            return
        self._last = clock
        self.stream.flush()
        os.fsync(self.stream.fileno())  # the data is on disk before the progress names it
        progress.size = os.fstat(self.stream.fileno()).st_size
        self.files.save(progress)


async def _walk(
    connection: Connection,
    plan: ExportPlan,
    *,
    wheres: tuple[CallbackFilter, ...],
    sink: _Sink,
    progress: Progress,
    state: State | None,
    on_page: Callable[[], None],
) -> None:
    async with open_client(connection) as client:
        for index in range(progress.source, len(wheres)):
            remaining = None if plan.max_items is None else plan.max_items - progress.records
            if remaining == 0:
                break
            walk = client.iter_callbacks(
                wheres[index],
                max_items=remaining,
                prefetch=plan.prefetch,
                resume_from=progress.checkpoint if index == progress.source else None,
            )
            progress.source = index
            between_pages = True  # what is written matches ``progress``
            try:
                async with walk:  # pipelined: requests overlap the writing
                    async for page in walk.pages():
                        items = page.items
                        if state is not None:
                            items = tuple(r for r in items if not state.already_exported(r))
                        between_pages = False
                        sink.writer.write(items)
                        progress.watermark.see(items)
                        progress.records += len(items)
                        progress.pages += 1
                        progress.checkpoint = page.checkpoint
                        between_pages = True
                        sink.commit(progress)
                        on_page()
            except BaseException:
                # Stopped (interrupted, or the server failed): keep every
                # whole page written so far for --resume. Never mid-page.
                if between_pages:
                    with suppress(OSError):
                        sink.commit(progress, now=True)
                raise
            progress.source, progress.checkpoint = index + 1, None
            sink.commit(progress, now=True)


def _key(wheres: tuple[CallbackFilter, ...], fmt: str, plan: ExportPlan) -> dict[str, Any]:
    """What an unfinished export must share with the run resuming it."""
    return {"filter": [repr(w) for w in wheres], "format": fmt, "max_items": plan.max_items}


def _start(
    files: ResumeFiles, key: dict[str, Any], plan: ExportPlan, output: str, quiet: bool
) -> Progress | None:
    """The progress to resume from, or None to start over (saying why when it matters)."""
    found = files.load()
    if found is None:
        if plan.resume and not quiet:
            click.echo(
                f"--resume: no unfinished export of {output} to resume; starting from the start",
                err=True,
            )
        return None
    if not plan.resume:
        if not quiet:
            click.echo(
                f"an unfinished export of {output} from an earlier run ({count(found.records)} "
                "records) is not reused (pass --resume to continue one); starting over",
                err=True,
            )
        return None
    if found.key != key:
        msg = (
            f"--resume: the unfinished export of {output} was made with other filters, format "
            "or --max-items: re-run it with the same options, or drop --resume to start over"
        )
        raise ConfigError(msg)
    return found


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

    A regular file appears only when complete; until then the records and
    the progress are kept beside it, for ``--resume`` (see :mod:`._jobs`).
    """
    state = None if plan.state is None else State.load(plan.state, plan.wheres)
    wheres = plan.wheres if state is None else tuple(state.narrow(w) for w in plan.wheres)
    key = _key(wheres, fmt, plan)
    stats = ExportStats()
    files = None if is_special(output) else ResumeFiles.beside(output)
    resumed = None if files is None else _start(files, key, plan, output, quiet)
    progress = resumed or Progress(
        key=key,
        watermark=attrs.evolve(state.watermark, ids=set(state.watermark.ids))
        if state
        else Watermark(),
    )
    stats.records, stats.pages = progress.records, progress.pages
    resumed_at = None if resumed is None else resumed.records
    bar = None if quiet else progress_display("records", "pages")
    with _sink(output, files, progress, fmt) as sink:
        task = bar.add_task("exporting", records="0", pages="0", rate="0") if bar else TaskID(0)

        def on_page() -> None:
            stats.records, stats.pages = progress.records, progress.pages
            if bar is not None:
                bar.update(
                    task,
                    records=count(stats.records),
                    pages=count(stats.pages),
                    rate=count(round(stats.rate)),
                )

        try:
            with bar if bar is not None else nullcontext():
                run(
                    _walk(
                        connection,
                        plan,
                        wheres=wheres,
                        sink=sink,
                        progress=progress,
                        state=state,
                        on_page=on_page,
                    )
                )
        except BaseException:
            on_page()
            if files is not None and not progress.records:
                files.discard()  # nothing to resume: leave nothing behind
            elif files is not None and not quiet:
                click.echo(
                    f"stopped after {count(progress.records)} records: they are kept beside "
                    f"{output}; re-run the same command with --resume to continue",
                    err=True,
                )
            raise
        sink.writer.finish()
    on_page()
    if state is not None:
        state.save(progress.watermark)
    if not quiet:
        resumed_note = "" if resumed_at is None else f" (resumed at record {count(resumed_at)})"
        click.echo(
            f"exported {count(stats.records)} records ({count(stats.pages)} pages) to "
            f"{describe(output)} in {stats.elapsed:.1f} s ({count(round(stats.rate))} "
            f"records/s){resumed_note}",
            err=True,
        )
    if as_json:
        files_written = [] if output == "-" else [output]
        if state is not None:
            files_written.append(state.path)
        emit_json(
            {
                "command": "export",
                "filter": [where.describe() for where in wheres],
                "records": stats.records,
                "pages": stats.pages,
                "resumed_at": resumed_at,
                "format": fmt,
                "output": describe(output),
                "files": files_written,
                "watermark_ms": progress.watermark.ms,
                "elapsed_s": round(stats.elapsed, 3),
            },
            err=output == "-",
        )
    return stats


def _writer(fmt: str, stream: TextIO, *, header_written: bool = False) -> _Writer:
    if fmt == "csv":
        return CsvWriter(stream, header_written=header_written)
    return JsonlWriter(stream)


@contextmanager
def _sink(output: str, files: ResumeFiles | None, progress: Progress, fmt: str) -> Iterator[_Sink]:
    """The sink for ``output``; a regular file is renamed into place when the block ends well."""
    if files is None:
        with atomic_output(output) as stream:  # stdout, a device, a FIFO: written directly
            yield _StreamSink(stream, _writer(fmt, stream))
        return
    check_writable(output, "--output")
    try:
        stream = open(files.partial, "r+" if progress.size else "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        msg = (
            f"cannot write {output}: its partial file {files.partial} cannot be opened: "
            f"{exc.strerror or exc} (remove or fix it, or write elsewhere)"
        )
        raise ConfigError(msg) from None
    with writing(f"{output} (its partial file {files.partial})"), stream:
        stream.truncate(progress.size)  # drop what a stopped run wrote after its last progress
        stream.seek(progress.size)
        sink = _FileSink(stream, _writer(fmt, stream, header_written=progress.size > 0), files)
        if not progress.size:
            files.save(progress)
        yield sink
        stream.flush()
        os.fsync(stream.fileno())
    finish_file(files.partial, files.target, output)
    files.progress.unlink(missing_ok=True)
