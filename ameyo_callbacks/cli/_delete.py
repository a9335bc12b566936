"""``delete``: bulk deletes from an ids file or a filter, with a summary that survives Ctrl-C.

The run fills a :class:`BulkTally`, so when it is interrupted (Ctrl-C, or a
failed walk in filter mode) the summary and ``--failed-out`` still account
for every id read: deleted, not found, failed, or not attempted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

import attrs
import click
from rich import box
from rich.progress import TaskID
from rich.table import Table
from rich.text import Text

from .. import AmeyoError, BulkDeleteResult, BulkProgress, BulkTally
from ._config import Connection, open_client
from ._files import atomic_output
from ._ui import count, progress, stderr_console

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "EXIT_INTERRUPTED",
    "SHOWN",
    "DeletePlan",
    "IdsReader",
    "check_failed_out",
    "run_delete",
    "run_dry",
    "run_dry_ids",
]

EXIT_INTERRUPTED = 130
#: How many ids a dry run shows, and how many failures the summary lists.
SHOWN = 10


class IdsReader:
    """Callback ids from a text stream, one per line, read lazily as they are needed.

    Blank lines and lines starting with ``#`` are skipped; each id is stripped
    of surrounding whitespace. A line that is not UTF-8 text stops the reading:
    ``error`` then says where (the ids before it are still deleted).
    """

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self.name = name
        self.read = 0
        self.error: str | None = None

    def __iter__(self) -> Iterator[str]:
        line_number = 0
        try:
            for line in self._stream:
                line_number += 1
                cb_id = line.strip()
                if cb_id and not cb_id.startswith("#"):
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
class DeletePlan:
    """What to delete: listed ids, or every match of a filter in campaigns or the tenant."""

    ids: IdsReader | None
    campaigns: tuple[int, ...]
    tenant: bool
    filters: dict[str, Any]
    concurrency: int


async def _delete(
    connection: Connection,
    plan: DeletePlan,
    tally: BulkTally,
    on_progress: Callable[[BulkProgress], None] | None,
    *,
    dry_run: bool = False,
) -> None:
    async with open_client(connection) as client:
        if plan.ids is not None:
            await client.delete_callbacks(
                plan.ids, concurrency=plan.concurrency, on_progress=on_progress, tally=tally
            )
            return
        options: dict[str, Any] = {
            **plan.filters,
            "concurrency": plan.concurrency,
            "dry_run": dry_run,
            "on_progress": on_progress,
            "tally": tally,
        }
        if plan.tenant:
            await client.delete_matching_tenant(**options)
            return
        for campaign in plan.campaigns:
            await client.delete_matching(campaign, **options)


def _interrupted(exc: BaseException) -> bool:
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_interrupted(inner) for inner in exc.exceptions)
    return False


def _show_first(what: str, ids: Iterator[str] | tuple[str, ...], total_hint: int | None) -> None:
    shown = 0
    for cb_id in ids:
        if shown == SHOWN:
            break
        click.echo(f"  {cb_id}")
        shown += 1
    if total_hint is not None and total_hint > shown:
        click.echo(f"  ... and {count(total_hint - shown)} more {what}")


def run_dry_ids(reader: IdsReader) -> None:
    """Count the ids of a file and show the first few; no server is needed."""
    first: list[str] = []
    for cb_id in reader:
        if len(first) < SHOWN:
            first.append(cb_id)
    if reader.error is not None:
        raise click.UsageError(reader.error)
    click.echo(
        f"dry run: {reader.name} lists {count(reader.read)} ids to delete "
        f"(nothing was sent)" + (":" if first else "")
    )
    _show_first("ids", tuple(first), reader.read)


def run_dry(connection: Connection, plan: DeletePlan) -> None:
    """Say how many callbacks the filter matches now, and the first few; delete nothing."""
    tally = BulkTally()
    asyncio.run(_delete(connection, plan, tally, None, dry_run=True))
    matched = tally.result().matched
    click.echo(
        f"dry run: {count(len(matched))} callbacks match and would be deleted "
        f"(nothing was deleted)" + (":" if matched else "")
    )
    _show_first("callbacks", matched, len(matched))


class _Counted:
    """Ids passing through, counted."""

    def __init__(self, ids: Iterator[str] | IdsReader) -> None:
        self._ids = ids
        self.n = 0

    def __iter__(self) -> Iterator[str]:
        for cb_id in self._ids:
            self.n += 1
            yield cb_id


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
        console.print(Text(f"failed {cb_id}: {' '.join(str(error).split())}"))
    if len(result.failed) > SHOWN:
        console.print(Text(f"... and {count(len(result.failed) - SHOWN)} more failures"))


def _write_failed(path: str, result: BulkDeleteResult, unread: Iterable[str]) -> None:
    with atomic_output(path) as stream:
        stream.write(
            "# ameyo-callbacks delete: the ids that failed or were not attempted; "
            f"re-run with --ids-file {path}\n"
        )
        for cb_id in (*result.failed, *result.not_attempted):
            stream.write(f"{cb_id}\n")
        for cb_id in unread:
            stream.write(f"{cb_id}\n")


def check_failed_out(path: str | None) -> None:
    """Refuse a ``--failed-out`` that cannot be written, before anything is deleted."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        msg = f"--failed-out {path} is a directory"
        raise click.UsageError(msg)
    parent = target.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        msg = f"--failed-out {path}: cannot write in {parent}"
        raise click.UsageError(msg)


def run_delete(connection: Connection, plan: DeletePlan, failed_out: str | None) -> int:
    """Delete, show a summary, write ``failed_out``; the exit status (0, 1 or 130).

    Ctrl-C stops the run: the summary still accounts for every id read (an id
    whose delete was in flight is ``failed``: deleting it again is safe).
    """
    tally = BulkTally()
    started = time.perf_counter()
    interrupted = False
    error: AmeyoError | None = None
    bar = progress("deleted", "not_found", "failed")
    task = (
        bar.add_task("deleting", deleted="0", not_found="0", failed="0", rate="0")
        if bar
        else TaskID(0)
    )

    def on_progress(state: BulkProgress) -> None:
        if bar is not None:
            elapsed = time.perf_counter() - started
            bar.update(
                task,
                deleted=count(state.deleted),
                not_found=count(state.not_found),
                failed=count(state.failed),
                rate=count(round(state.done / elapsed)) if elapsed > 0 else "0",
            )

    try:
        with bar if bar is not None else nullcontext():
            asyncio.run(_delete(connection, plan, tally, on_progress))
    except AmeyoError as exc:  # the walk of a filter failed: shown after the summary
        error = exc
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        interrupted = True
    elapsed = time.perf_counter() - started
    result = tally.result()
    # Ids of an interrupted file never reached the tally: they are "not attempted" too.
    unread = _Counted(iter(()))
    note = ""
    if interrupted and plan.ids is not None:
        if plan.ids.name == "stdin":
            note = "the rest of stdin was not read"
        else:
            unread = _Counted(plan.ids)
    write_error: click.ClickException | None = None
    if failed_out is not None:
        try:
            _write_failed(failed_out, result, unread)
        except click.ClickException as exc:
            write_error = exc
    for _ in unread:  # count what --failed-out did not read
        pass
    _summary(result, elapsed, interrupted=interrupted, unread=unread.n, note=note)
    if write_error is not None:
        raise write_error
    if interrupted:
        click.echo("interrupted: re-running the same command is safe", err=True)
        return EXIT_INTERRUPTED
    if plan.ids is not None and plan.ids.error is not None:
        raise click.UsageError(plan.ids.error)
    if error is not None:
        raise error
    return 0 if result.ok else 1
