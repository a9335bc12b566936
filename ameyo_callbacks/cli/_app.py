"""The click application: ``export``, ``delete`` and ``fake-server``.

Exit statuses: 0 done; 1 a library error or some deletes failed; 2 a usage
or configuration error; 130 interrupted (Ctrl-C). A closed stdout (``| head``)
ends the command quietly with status 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import click

from .. import CallbackFilter, __version__
from .._compat import BaseExceptionGroup
from ..testing._command import fake_server as fake_server_command
from . import _ui
from ._config import ConfigError, ConnectionOptions, connect, connection_options, library_errors
from ._delete import (
    EXIT_INTERRUPTED,
    DeleteOutputs,
    DeletePlan,
    IdsReader,
    count_ids,
    list_matches,
    run_delete,
    show_dry_filter,
    show_dry_ids,
)
from ._export import FORMATS, ExportPlan, output_format, run_export
from ._files import check_writable, describe, is_special
from ._params import DATES_HELP, Concurrency, FilterBounds, campaign_ids_option, filter_options
from ._ui import count, logging_to_stderr

__all__ = ["cli", "run"]

#: The most deletes ``--concurrency`` and ``--max-concurrency`` allow in flight.
MAX_CONCURRENCY = 100

_CONFIG_HELP = """\
Connection: --base-url or AMEYO_BASE_URL; a session from AMEYO_SESSION_ID,
--session-id-file or --session-id, or a login with AMEYO_USER_ID and
AMEYO_TOKEN (and AMEYO_DOMAIN if your server wants one); or --profile NAME
from the config file. --demo needs none of it: it runs against a fake server
on 127.0.0.1. These options, -v and -q go before or after the command name.
"""

_GROUP_HELP = """\
\b
Profiles (--profile NAME), in $AMEYO_CONFIG or config.toml in the user's config
directory (~/.config/ameyo-callbacks/ on Linux); never a secret in it:
  [profiles.prod]
  base_url = "https://ameyo.example.com:8443"
  ca_bundle = "/etc/ssl/ameyo-ca.pem"
  session_id_file = "~/.ameyo/prod.session"

\b
Shell completion (bash; zsh_source/fish_source for zsh and fish):
  eval "$(_AMEYO_CALLBACKS_COMPLETE=bash_source ameyo-callbacks)"
"""


def _broken_pipe(exc: BaseException) -> bool:
    """True when ``exc`` comes from writing to a closed stdout (alone, in a group or a chain)."""
    if isinstance(exc, BrokenPipeError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_broken_pipe(inner) for inner in exc.exceptions)
    context = exc.__cause__ or exc.__context__
    return context is not None and context is not exc and isinstance(context, BrokenPipeError)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test runner's)
        pass


class _Cli(click.Group):
    """The group: a closed stdout (``| head``) ends any command quietly, status 0."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as exc:
            if not _broken_pipe(exc):
                raise
            _silence_stdout()
            ctx.exit(0)


@click.group(
    cls=_Cli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_GROUP_HELP,
)
@click.version_option(__version__, prog_name="ameyo-callbacks")
@connection_options
def cli(conn: ConnectionOptions) -> None:
    """Export and bulk-delete Ameyo scheduled callbacks.

    \b
    Try it without a server:
      ameyo-callbacks export --demo --campaign-id 6 --output callbacks.csv
      ameyo-callbacks delete --demo --campaign-id 6 --user-id asha --dry-run

    The connection options, -v and -q are accepted here too (before the
    command name); given in both places, the one after the command wins.
    """


@cli.command(epilog=DATES_HELP + "\n\n" + _CONFIG_HELP)
@campaign_ids_option("Export this campaign's callbacks (repeat for several).")
@click.option("--tenant", is_flag=True, help="Export every callback of the tenant instead.")
@filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS, case_sensitive=False),
    help="csv (times in ISO-8601 UTC) or jsonl (the wire's JSON, epoch ms). "
    "Default: from the --output suffix (.csv, .jsonl, .ndjson), else csv.",
)
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    metavar="FILE",
    help="Write here (- for stdout). A regular file appears only when the export is "
    "complete (a symlink: its target); a device, a FIFO or /dev/stdout is written directly.",
)
@click.option("--max-items", type=click.IntRange(min=1), metavar="N", help="Stop after N records.")
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    default=4,
    metavar="N",
    show_default=True,
    help="Pages requested at once.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an export to FILE that stopped (Ctrl-C, a crash, a server outage) from "
    "its last page: its records and progress are kept beside FILE as .FILE.partial and "
    ".FILE.progress.json. Without --resume such leftovers are reported and started over.",
)
@click.option(
    "--state",
    "state",
    metavar="STATE_FILE",
    help="Incremental export: the first run exports everything and records a watermark "
    "(the newest dateAdded) in STATE_FILE; each later run exports only the callbacks added "
    "since, none missed or repeated. STATE_FILE is updated only when the export completes.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the final summary as one JSON object: on stdout, or on stderr when the "
    "data goes to stdout.",
)
@connection_options
@click.pass_context
def export(
    ctx: click.Context,
    *,
    conn: ConnectionOptions,
    bounds: FilterBounds,
    campaign_ids: tuple[int, ...],
    tenant: bool,
    fmt: str | None,
    output: str,
    max_items: int | None,
    prefetch: int,
    resume: bool,
    state: str | None,
    as_json: bool,
) -> None:
    """Export callbacks to CSV or JSON Lines.

    \b
    CSV columns: customer_callback_id, campaign_id, callback_time,
    self_callback, user_id, phone, customer_id, date_added, extra (a JSON
    object). Times like 2024-01-01T00:00:00.000Z; true/false; empty for null.
    """
    if bool(campaign_ids) == tenant:
        msg = (
            "pass --campaign-id or --tenant, not both"
            if tenant
            else "say what to export: --campaign-id ID (repeatable) or --tenant"
        )
        raise click.UsageError(msg)
    if resume and is_special(output):
        msg = (
            "--resume needs --output FILE, a regular file: stdout, a device or a FIFO cannot resume"
        )
        raise click.UsageError(msg)
    if state is not None and max_items is not None:
        msg = "--state needs the whole export for its watermark: drop --max-items"
        raise click.UsageError(msg)
    plan = ExportPlan(
        wheres=_wheres(bounds, campaign_ids),
        max_items=max_items,
        prefetch=prefetch,
        resume=resume,
        state=state,
    )
    fmt = output_format(fmt, output)
    check_writable(output, "--output")
    if state is not None:
        check_writable(state, "--state")
    with _running(conn) as connection:
        try:
            run_export(connection, plan, fmt, output, quiet=conn.quiet, as_json=as_json)
        except KeyboardInterrupt:
            done = "" if is_special(output) else " (progress kept: --resume continues)"
            click.echo(f"interrupted: {describe(output)} was not written{done}", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@contextmanager
def _running(conn: ConnectionOptions) -> Iterator[Any]:
    with (
        logging_to_stderr(verbose=conn.verbose),
        library_errors(verbose=conn.verbose),
        connect(conn) as connection,
    ):
        yield connection


def _wheres(bounds: FilterBounds, campaign_ids: tuple[int, ...]) -> tuple[CallbackFilter, ...]:
    """One filter per campaign, or the tenant's when no campaign is given."""
    if not campaign_ids:
        return (bounds.where_for(None),)
    return tuple(bounds.where_for(campaign) for campaign in dict.fromkeys(campaign_ids))


@cli.command(epilog=DATES_HELP + "\n\n" + _CONFIG_HELP)
@click.option(
    "--ids-file",
    type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True),
    metavar="FILE",
    help="Delete the ids in FILE (- for stdin): one per line; blank lines and # comments "
    "(whole lines, or after an id) are skipped. A file with no id is an error.",
)
@campaign_ids_option(
    "Delete every callback of this campaign that matches the filters (repeatable)."
)
@click.option(
    "--tenant", is_flag=True, help="Delete every callback of the tenant matching the filters."
)
@filter_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the filter as read, how many would be deleted and the first few; send no "
    "delete. With --ids-file: count the distinct ids and the repeated ones (no server).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--concurrency",
    type=Concurrency(maximum=MAX_CONCURRENCY),
    metavar="N|auto",
    default=8,
    show_default=True,
    help=f"Deletes in flight at once (1 to {MAX_CONCURRENCY}), or 'auto': start at 1 and "
    "follow the server (up to --max-concurrency), backing off when its latency grows or "
    "it throttles. The progress bar shows 'in flight' as now/limit.",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1, max=MAX_CONCURRENCY),
    metavar="N",
    help="The most deletes in flight --concurrency auto may reach (default 32).",
)
@click.option(
    "--backup",
    metavar="FILE",
    help="Append each callback's full record to FILE (the wire's JSON, one per line, as "
    "export --format jsonl writes), flushed before its delete is sent. Filter deletes only.",
)
@click.option(
    "--failed-out",
    metavar="FILE",
    help="Write the ids that failed or were not attempted to FILE, to re-run with --ids-file.",
)
@click.option(
    "--not-found-out",
    metavar="FILE",
    help="Write the ids the server did not know (already deleted?) to FILE.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the final summary as one JSON object on stdout."
)
@connection_options
@click.pass_context
def delete(
    ctx: click.Context,
    *,
    conn: ConnectionOptions,
    bounds: FilterBounds,
    ids_file: str | None,
    campaign_ids: tuple[int, ...],
    tenant: bool,
    dry_run: bool,
    yes: bool,
    concurrency: int | Literal["auto"],
    max_concurrency: int | None,
    backup: str | None,
    failed_out: str | None,
    not_found_out: str | None,
    as_json: bool,
) -> None:
    """Delete callbacks listed in a file, or every one matching a filter.

    \b
    A filter delete first lists the matches (shown as "listing matches"),
    asks "Delete these N callbacks?", then deletes exactly those, with a bar
    (done/total, percent, rate, ETA). Callbacks added meanwhile are left for
    the next run.

    \b
    Exit status: 0 all deleted (or not found); 1 some failed; 2 usage error
    (an empty ids file included); 130 interrupted. The summary table is
    printed in every case (not with -q).
    """
    if sum((ids_file is not None, bool(campaign_ids), tenant)) != 1:
        msg = "say which callbacks to delete: one of --ids-file, --campaign-id or --tenant"
        raise click.UsageError(msg)
    if ids_file is not None and bounds:
        msg = "the filters apply to --campaign-id and --tenant, not to --ids-file"
        raise click.UsageError(msg)
    if ids_file is not None and backup is not None:
        msg = (
            "--backup saves the records a filter delete lists; an ids file has no records "
            "to save: export them first (export --format jsonl), or delete by filter"
        )
        raise click.UsageError(msg)
    if max_concurrency is not None and concurrency != "auto":
        msg = (
            "--max-concurrency bounds --concurrency auto; with a fixed --concurrency "
            f"{concurrency} drop it (or pass --concurrency auto)"
        )
        raise click.UsageError(msg)
    outputs = DeleteOutputs(
        backup=backup,
        failed_out=failed_out,
        not_found_out=not_found_out,
        json=as_json,
        quiet=conn.quiet,
    )
    reader = None if ids_file is None else _open_ids(ctx, ids_file)
    plan = DeletePlan(
        ids=reader,
        wheres=() if reader is not None else _wheres(bounds, campaign_ids),
        concurrency=concurrency,
        max_concurrency=max_concurrency,
    )
    if dry_run and reader is not None:  # counting a file needs no server
        show_dry_ids(reader, outputs)
        return
    if not dry_run:
        for flag, path in (
            ("--backup", backup),
            ("--failed-out", failed_out),
            ("--not-found-out", not_found_out),
        ):
            if path is not None:
                check_writable(path, flag)
    ask = not (dry_run or yes)
    if ask:
        _check_can_ask(reader)
    total = _count_ids(reader)
    with _running(conn) as connection:
        listing = None
        try:
            if reader is None:
                listing = list_matches(
                    connection, plan, keep_records=backup is not None, quiet=conn.quiet
                )
                if dry_run:
                    show_dry_filter(plan, listing, outputs)
                    return
                if not listing.ids and not conn.quiet:
                    click.echo(f"no callbacks match {plan.describe()}: nothing to delete", err=True)
            if ask and (listing is None or listing.ids):
                n = len(listing.ids) if listing is not None else total or 0
                _explain_target(plan, reader, n, backup, connection.base_url)
                if not click.confirm(
                    f"Delete these {count(n)} callbacks?", default=False, err=True
                ):
                    click.echo("nothing was deleted", err=True)
                    ctx.exit(1)
        except (KeyboardInterrupt, click.Abort):
            click.echo("\ninterrupted: nothing was deleted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        ctx.exit(run_delete(connection, plan, outputs, listing=listing, total=total))


def _count_ids(reader: IdsReader | None) -> int | None:
    """Distinct ids of a file (read once, then rewound); None for stdin; exit 2 when empty."""
    if reader is None:
        return None
    if reader.is_stdin:
        if reader.peek() is None:
            msg = reader.error or "stdin lists no callback ids: nothing to delete"
            raise ConfigError(msg)
        return None
    counted = count_ids(reader)
    reader.rewind()
    return len(counted.ids)


def _explain_target(
    plan: DeletePlan, reader: IdsReader | None, n: int, backup: str | None, base_url: str
) -> None:
    """What the prompt is about: the filter as read (or the file), the count, the backup."""
    if reader is None:
        click.echo(f"{count(n)} callbacks match {plan.describe()} on {base_url}.", err=True)
        if backup is not None:
            click.echo(f"Each record is appended to {backup} before its delete is sent.", err=True)
        else:
            click.echo(
                "No backup: add --backup FILE to keep each deleted record "
                "(as export --format jsonl writes it).",
                err=True,
            )
    else:
        click.echo(
            f"{reader.name} lists {count(n)} distinct callback ids to delete on {base_url}. "
            "Their records are not saved (--backup needs a filter delete: export them first "
            "to keep them).",
            err=True,
        )


def _open_ids(ctx: click.Context, path: str) -> IdsReader:
    """An ids reader on ``path`` (``-``: stdin), closed with the command."""
    if path == "-":
        return IdsReader(sys.stdin, "stdin")
    try:
        stream = open(path, encoding="utf-8-sig")  # noqa: SIM115  (closed with the context)
    except OSError as exc:
        msg = f"cannot read --ids-file {path}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    ctx.call_on_close(stream.close)
    return IdsReader(stream, path)


def _check_can_ask(reader: IdsReader | None) -> None:
    """Refuse (exit status 2) when there is no terminal to confirm on."""
    if reader is not None and reader.is_stdin:
        msg = "the ids come from stdin, so there is no one to ask for confirmation: pass --yes"
        raise ConfigError(msg)
    if not _ui.stdin_is_interactive():
        msg = (
            "refusing to delete without confirmation: stdin is not a terminal. Pass --yes "
            "to delete without asking (or --dry-run to see what would be deleted)."
        )
        raise ConfigError(msg)


# The fake's own command (the same one as ``python -m ameyo_callbacks.testing``).
cli.add_command(fake_server_command, "fake-server")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the application; the exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="ameyo-callbacks")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
