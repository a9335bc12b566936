"""``delete``: bulk deletes from an ids file or a filter, with a summary that survives Ctrl-C.

A filter delete runs in two phases. It first *lists* what the filters match
(``iter_callbacks``, not deleting, so the pages do not move under the walk),
which gives the count the prompt and the dry run show; then it *deletes*
exactly those ids with ``delete_callbacks``, ``concurrency`` at a time (or
``"auto"``: a limit that follows the server; the bar shows ``in flight
now/limit``). With
``--backup FILE`` each record is appended to FILE in the wire's JSON, and
flushed, just before its DELETE is sent: FILE holds every callback whose
delete was sent (the deleted ones, and the failed ones, which are also in
``--failed-out``). Callbacks added after the listing are left for the next
run.

The run fills a :class:`BulkTally`, so when it is interrupted the summary,
``--failed-out`` and ``--not-found-out`` still account for every id:
deleted, not found, failed, or not attempted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, nullcontext
from typing import Any, Literal, TextIO

import attrs
import click
from rich import box
from rich.progress import Progress, TaskID
from rich.table import Table
from rich.text import Text

from .. import AmeyoError, BulkDeleteResult, BulkProgress, BulkTally, CallbackFilter
from .._compat import BaseExceptionGroup
from ._config import Connection, open_client
from ._errors import EXIT_INTERRUPTED, ConfigError, explain
from ._export import wire_line
from ._files import append_output, atomic_output
from ._runner import run
from ._summary import emit_json
from ._ui import bar, count, progress, stderr_console

__all__ = [
    "EXIT_INTERRUPTED",
    "SHOWN",
    "DeleteOutputs",
    "DeletePlan",
    "IdsReader",
    "Listing",
    "count_ids",
    "list_matches",
    "run_delete",
    "show_dry_filter",
    "show_dry_ids",
]

#: How many ids a dry run shows, and how many failures the summary lists.
SHOWN = 10


def _strip_comment(line: str) -> str:
    """A line without its ``#`` comment (a whole line or the end of one), stripped."""
    return line.partition("#")[0].strip()


class IdsReader:
    """Callback ids from a text stream, one per line, read lazily as they are needed.

    Blank lines and ``#`` comments (whole lines, and the end of a line after
    an id: ``d806-1  # customer asked``) are skipped; each id is stripped of
    surrounding whitespace. A line that is not UTF-8 text stops the reading:
    ``error`` then says where (the ids before it are still deleted).
    """

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self.name = name
        self.read = 0
        self.error: str | None = None
        self._source = self._read()
        self._peeked: list[str] = []

    @property
    def is_stdin(self) -> bool:
        """True when the ids come from stdin (which can be read only once)."""
        return self.name == "stdin"

    def rewind(self) -> None:
        """Start again from the top of the file (not for stdin)."""
        self._stream.seek(0)
        self.read = 0
        self.error = None
        self._source = self._read()
        self._peeked = []

    def peek(self) -> str | None:
        """The next id without taking it (None at the end)."""
        if not self._peeked:
            cb_id = next(self._source, None)
            if cb_id is None:
                return None
            self._peeked.append(cb_id)
        return self._peeked[0]

    def __iter__(self) -> Iterator[str]:
        """The ids not yet taken; iterating again goes on where the last one stopped."""
        while True:  # not ``yield from``: closing this iterator must not close the file's
            if self._peeked:
                yield self._peeked.pop()
                continue
            cb_id = next(self._source, None)
            if cb_id is None:
                return
            yield cb_id

    def _read(self) -> Iterator[str]:
        line_number = 0
        try:
            for line in self._stream:
                line_number += 1
                cb_id = _strip_comment(line)
                if cb_id:
                    self.read += 1
                    yield cb_id
        except UnicodeDecodeError:
            self.error = (
                f"{self.name} is not UTF-8 text at or after line {line_number + 1}; "
                "stopped reading there"
            )
        except OSError as exc:
            self.error = f"cannot read {self.name}: {exc.strerror or exc}"


@attrs.frozen
class IdsCount:
    """What an ids file lists: distinct ids in order, and how many lines repeated one."""

    ids: tuple[str, ...]
    duplicates: int


def count_ids(reader: IdsReader) -> IdsCount:
    """Read every id of ``reader`` once (a ConfigError if it is not text or lists none)."""
    seen: dict[str, None] = {}
    duplicates = 0
    for cb_id in reader:
        if cb_id in seen:
            duplicates += 1
        else:
            seen[cb_id] = None
    if reader.error is not None:
        raise ConfigError(reader.error)
    if not seen:
        msg = f"{reader.name} lists no callback ids (only blank lines or # comments): nothing to do"
        raise ConfigError(msg)
    return IdsCount(tuple(seen), duplicates)


@attrs.frozen
class DeletePlan:
    """What to delete: listed ids, or every match of filters (one per campaign, or the tenant's)."""

    ids: IdsReader | None
    wheres: tuple[CallbackFilter, ...]
    #: Deletes in flight: a number, or ``"auto"`` (the limit follows the server).
    concurrency: int | Literal["auto"] = 8
    #: The bound of ``"auto"`` (None: the client's default).
    max_concurrency: int | None = None

    def describe(self) -> str:
        """The filters in words (``campaign 6; users asha``, joined by ``or``)."""
        return " or ".join(where.describe() for where in self.wheres)


@attrs.frozen
class DeleteOutputs:
    """Where a delete writes: backup, failed and not-found ids; JSON summary; quiet."""

    backup: str | None = None
    failed_out: str | None = None
    not_found_out: str | None = None
    json: bool = False
    quiet: bool = False


@attrs.define
class Listing:
    """The ids a filter matched, in order, with their wire JSON lines when a backup is kept."""

    ids: list[str] = attrs.field(factory=list)
    lines: dict[str, str] = attrs.field(factory=dict)
    pages: int = 0


async def _list(
    connection: Connection,
    plan: DeletePlan,
    listing: Listing,
    *,
    keep_records: bool,
    on_page: Callable[[], None],
) -> None:
    seen: set[str] = set()
    async with open_client(connection) as client:
        for where in plan.wheres:
            walk = client.iter_callbacks(where)
            async with walk:
                async for page in walk.pages():
                    for record in page.items:
                        cb_id = record.customer_callback_id
                        if cb_id in seen:
                            continue
                        seen.add(cb_id)
                        listing.ids.append(cb_id)
                        if keep_records:
                            listing.lines[cb_id] = wire_line(record)
                    listing.pages += 1
                    on_page()


def list_matches(
    connection: Connection, plan: DeletePlan, *, keep_records: bool, quiet: bool
) -> Listing:
    """The listing phase: every id the filters match now, with a spinner and its count.

    Ctrl-C here deletes nothing: it raises KeyboardInterrupt to the caller.
    """
    listing = Listing()
    spinner = None if quiet else progress("found", "pages")
    task = spinner.add_task("listing matches", found="0", pages="0", rate="0") if spinner else None
    started = time.perf_counter()

    def on_page() -> None:
        if spinner is not None and task is not None:
            elapsed = time.perf_counter() - started
            spinner.update(
                task,
                found=count(len(listing.ids)),
                pages=count(listing.pages),
                rate=count(round(len(listing.ids) / elapsed)) if elapsed > 0 else "0",
            )

    with spinner if spinner is not None else nullcontext():
        run(_list(connection, plan, listing, keep_records=keep_records, on_page=on_page))
    return listing


def _interrupted(exc: BaseException) -> bool:
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_interrupted(inner) for inner in exc.exceptions)
    return False


def _show_first(what: str, ids: Iterable[str], total: int) -> None:
    shown = 0
    for cb_id in ids:
        if shown == SHOWN:
            break
        click.echo(f"  {cb_id}")
        shown += 1
    if total > shown:
        click.echo(f"  ... and {count(total - shown)} more {what}")


def show_dry_ids(reader: IdsReader, outputs: DeleteOutputs) -> None:
    """The dry run of an ids file: distinct ids and duplicates; no server is needed."""
    counted = count_ids(reader)
    if outputs.json:
        emit_json(
            {
                "command": "delete",
                "dry_run": True,
                "ids_file": reader.name,
                "distinct_ids": len(counted.ids),
                "duplicates": counted.duplicates,
                "ids": list(counted.ids),
            }
        )
        return
    dups = (
        f", {count(counted.duplicates)} more lines repeat an id (deleted once)"
        if counted.duplicates
        else ""
    )
    click.echo(
        f"dry run: {reader.name} lists {count(len(counted.ids))} distinct ids to delete"
        f"{dups} (nothing was sent):"
    )
    _show_first("ids", counted.ids, len(counted.ids))


def show_dry_filter(plan: DeletePlan, listing: Listing, outputs: DeleteOutputs) -> None:
    """The dry run of a filter: the filter as read, how many match now, the first few."""
    if outputs.json:
        emit_json(
            {
                "command": "delete",
                "dry_run": True,
                "filter": [where.describe() for where in plan.wheres],
                "matched": len(listing.ids),
                "ids": listing.ids,
            }
        )
        return
    n = len(listing.ids)
    click.echo(
        f"dry run: {count(n)} callbacks match {plan.describe()} and would be deleted "
        "(nothing was deleted)" + (":" if n else "")
    )
    _show_first("callbacks", listing.ids, n)


def _summary(
    result: BulkDeleteResult, elapsed: float, *, interrupted: bool, unread: int, note: str
) -> None:
    console = stderr_console()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("outcome")
    table.add_column("callbacks", justify="right")
    counts = result.counts
    counts["not_attempted"] += unread
    for name, value in counts.items():
        table.add_row(name.replace("_", " "), count(value))
    console.print(table)
    notes = []
    if result.duplicates:
        notes.append(f"{count(result.duplicates)} duplicate ids skipped")
    state = "interrupted after" if interrupted else "done in"
    notes.append(f"{state} {elapsed:.1f} s")
    if note:
        notes.append(note)
    console.print(Text("; ".join(notes)))
    for cb_id, error in list(result.failed.items())[:SHOWN]:
        console.print(Text(f"failed {cb_id}: {explain(error)}"))
    if len(result.failed) > SHOWN:
        console.print(Text(f"... and {count(len(result.failed) - SHOWN)} more failures"))


def _write_ids(path: str, header: str, ids: Iterable[str]) -> None:
    with atomic_output(path) as stream:
        stream.write(header)
        for cb_id in ids:
            stream.write(f"{cb_id}\n")


class _Unread:
    """Ids never handed to the deletes, counted as they are read."""

    def __init__(self, ids: Iterable[str]) -> None:
        self._ids = ids
        self.n = 0

    def __iter__(self) -> Iterator[str]:
        for cb_id in self._ids:
            self.n += 1
            yield cb_id


@attrs.define
class _Feed:
    """The ids handed to the deletes one by one, each backed up first when asked to."""

    ids: Iterable[str]
    lines: dict[str, str]
    backup: TextIO | None
    taken: int = 0

    def __iter__(self) -> Iterator[str]:
        for cb_id in self.ids:
            if self.backup is not None:  # on disk before its DELETE can be sent
                self.backup.write(self.lines[cb_id])
                self.backup.flush()
            self.taken += 1
            yield cb_id


async def _delete(
    connection: Connection,
    feed: Iterable[str],
    plan: DeletePlan,
    tally: BulkTally,
    on_progress: Callable[[BulkProgress], None] | None,
) -> None:
    if plan.max_concurrency is not None:
        connection = attrs.evolve(connection, max_concurrency=plan.max_concurrency)
    async with open_client(connection) as client:
        await client.delete_callbacks(
            feed, concurrency=plan.concurrency, on_progress=on_progress, tally=tally
        )


def _in_flight(state: BulkProgress) -> str:
    """``3/8``: deletes in flight now / the limit in force (fixed, or the adaptive one)."""
    return f"{count(state.in_flight)}/{count(state.limit)}"


def _progress_display(
    total: int | None, quiet: bool, concurrency: int | Literal["auto"]
) -> tuple[Progress | None, TaskID]:
    if quiet:
        return None, TaskID(0)
    fields = ("deleted", "not_found", "failed", "in_flight")
    display = progress(*fields) if total is None else bar(*fields)
    if display is None:
        return None, TaskID(0)
    task = display.add_task(
        "deleting",
        total=total,
        deleted="0",
        not_found="0",
        failed="0",
        in_flight=f"0/{concurrency}",
        rate="0",
    )
    return display, task


def run_delete(
    connection: Connection,
    plan: DeletePlan,
    outputs: DeleteOutputs,
    *,
    listing: Listing | None = None,
    total: int | None = None,
) -> int:
    """Delete, show a summary, write the id files; the exit status (0, 1 or 130).

    ``listing`` holds the ids of a filter delete (from :func:`list_matches`);
    without it the ids come from ``plan.ids``, of which ``total`` are
    distinct when known. Ctrl-C stops the run: the summary still accounts
    for every id (one whose delete was in flight is ``failed``: deleting it
    again is safe).
    """
    tally = BulkTally()
    started = time.perf_counter()
    interrupted = False
    error: AmeyoError | None = None
    if listing is not None:
        total = len(listing.ids)
    display, task = _progress_display(total, outputs.quiet, plan.concurrency)

    def on_progress(state: BulkProgress) -> None:
        if display is not None:
            elapsed = time.perf_counter() - started
            display.update(
                task,
                completed=state.done,
                deleted=count(state.deleted),
                not_found=count(state.not_found),
                failed=count(state.failed),
                in_flight=_in_flight(state),
                rate=count(round(state.done / elapsed)) if elapsed > 0 else "0",
            )

    with ExitStack() as stack:
        backup = None
        if outputs.backup is not None:
            backup = stack.enter_context(append_output(outputs.backup, "--backup"))
        if listing is not None:
            feed = _Feed(listing.ids, listing.lines, backup)
        else:
            assert plan.ids is not None  # noqa: S101
            feed = _Feed(plan.ids, {}, None)
        try:
            with display if display is not None else nullcontext():
                run(_delete(connection, feed, plan, tally, on_progress))
        except AmeyoError as exc:  # not expected: delete_callbacks reports failures per id
            error = exc
        except BaseException as exc:
            if not _interrupted(exc):
                raise
            interrupted = True
    elapsed = time.perf_counter() - started
    result = tally.result()
    # Ids never handed to the deletes are "not attempted" too.
    note = ""
    if listing is not None:
        unread = _Unread(listing.ids[feed.taken :])
    elif interrupted and plan.ids is not None and not plan.ids.is_stdin:
        unread = _Unread(plan.ids)
    else:
        unread = _Unread(())
        if interrupted and plan.ids is not None:
            note = "the rest of stdin was not read"
    return _finish(
        plan,
        outputs,
        result,
        unread,
        elapsed=elapsed,
        interrupted=interrupted,
        error=error,
        note=note,
        matched=None if listing is None else len(listing.ids),
        limit=tally.progress().limit,
    )


def _finish(
    plan: DeletePlan,
    outputs: DeleteOutputs,
    result: BulkDeleteResult,
    unread: _Unread,
    *,
    elapsed: float,
    interrupted: bool,
    error: AmeyoError | None,
    note: str,
    matched: int | None,
    limit: int,
) -> int:
    written: dict[str, str] = {}
    write_error: click.ClickException | None = None
    if outputs.backup is not None:
        written["backup"] = outputs.backup
    if outputs.failed_out is not None:
        try:
            _write_ids(
                outputs.failed_out,
                "# ameyo-callbacks delete: the ids that failed or were not attempted; "
                f"re-run with --ids-file {outputs.failed_out}\n",
                (*result.failed, *result.not_attempted, *unread),
            )
            written["failed_out"] = outputs.failed_out
        except click.ClickException as exc:
            write_error = exc
    for _ in unread:  # count what --failed-out did not read
        pass
    if outputs.not_found_out is not None:
        try:
            _write_ids(
                outputs.not_found_out,
                "# ameyo-callbacks delete: the ids the server did not know\n",
                result.not_found,
            )
            written["not_found_out"] = outputs.not_found_out
        except click.ClickException as exc:
            write_error = write_error or exc
    if not outputs.quiet:
        _summary(result, elapsed, interrupted=interrupted, unread=unread.n, note=note)
    status = _status(plan, result, interrupted=interrupted, error=error, write_error=write_error)
    if outputs.json:
        counts = result.counts
        counts["not_attempted"] += unread.n
        summary: dict[str, Any] = {
            "command": "delete",
            "dry_run": False,
            "filter": [where.describe() for where in plan.wheres] if plan.wheres else None,
            "ids_file": None if plan.ids is None else plan.ids.name,
            "matched": matched,
            "counts": counts,
            "duplicates": result.duplicates,
            "not_found": list(result.not_found),
            "failures": [
                {"id": cb_id, "reason": explain(exc)} for cb_id, exc in result.failed.items()
            ],
            "files": written,
            "concurrency": plan.concurrency,
            "limit": limit or None,
            "elapsed_s": round(elapsed, 3),
            "interrupted": interrupted,
            "exit_status": status,
        }
        emit_json(summary)
    if write_error is not None:
        raise write_error
    if interrupted:
        if not outputs.quiet:
            click.echo("interrupted: re-running the same command is safe", err=True)
        return EXIT_INTERRUPTED
    if plan.ids is not None and plan.ids.error is not None:
        raise click.UsageError(plan.ids.error)
    if error is not None:
        raise error
    return status


def _status(
    plan: DeletePlan,
    result: BulkDeleteResult,
    *,
    interrupted: bool,
    error: AmeyoError | None,
    write_error: click.ClickException | None,
) -> int:
    if write_error is not None or (plan.ids is not None and plan.ids.error is not None):
        return 2
    if interrupted:
        return EXIT_INTERRUPTED
    if error is not None or not result.ok:
        return 1
    return 0
