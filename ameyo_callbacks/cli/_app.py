"""The click application: ``export``, ``delete`` and ``fake-server``.

Exit statuses: 0 done; 1 a library error or some deletes failed; 2 a usage
or configuration error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from . import _ui
from ._config import ConfigError, ConnectionOptions, connect, connection_options, library_errors
from ._delete import (
    EXIT_INTERRUPTED,
    DeletePlan,
    IdsReader,
    check_failed_out,
    run_delete,
    run_dry,
    run_dry_ids,
)
from ._export import FORMATS, ExportPlan, output_format, run_export
from ._params import DATES_HELP, filter_options
from ._ui import logging_to_stderr

__all__ = ["cli", "run"]

_CONFIG_HELP = """\
Connection: --base-url or AMEYO_BASE_URL; a session from AMEYO_SESSION_ID,
--session-id-file or --session-id, or a login with AMEYO_USER_ID and
AMEYO_TOKEN (and AMEYO_DOMAIN if your server wants one). --demo needs none
of it: it runs against a fake server on 127.0.0.1.
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ameyo-callbacks")
def cli() -> None:
    """Export and bulk-delete Ameyo scheduled callbacks.

    \b
    Try it without a server:
      ameyo-callbacks export --demo --campaign-id 6 --output callbacks.csv
      ameyo-callbacks delete --demo --campaign-id 6 --user-id asha --dry-run
    """


@cli.command(epilog=DATES_HELP + "\n\n" + _CONFIG_HELP)
@click.option(
    "--campaign-id",
    "campaign_ids",
    type=click.IntRange(min=1),
    multiple=True,
    metavar="ID",
    help="Export this campaign's callbacks (repeat for several).",
)
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
    help="Write here (- for stdout). The file appears only when the export is complete.",
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
@connection_options
@click.pass_context
def export(
    ctx: click.Context,
    *,
    conn: ConnectionOptions,
    filters: dict[str, Any],
    campaign_ids: tuple[int, ...],
    tenant: bool,
    fmt: str | None,
    output: str,
    max_items: int | None,
    prefetch: int,
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
    plan = ExportPlan(
        sources=(None,) if tenant else campaign_ids,
        filters=filters,
        max_items=max_items,
        prefetch=prefetch,
    )
    fmt = output_format(fmt, output)
    with (
        logging_to_stderr(verbose=conn.verbose),
        library_errors(verbose=conn.verbose),
        connect(conn) as connection,
    ):
        try:
            run_export(connection, plan, fmt, output)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was written", err=True)
            ctx.exit(EXIT_INTERRUPTED)


def _describe_target(
    reader: IdsReader | None,
    campaign_ids: tuple[int, ...],
    filters: dict[str, Any],
) -> str:
    if reader is not None:
        return f"the callbacks listed in {reader.name}"
    where = (
        "of the whole tenant"
        if not campaign_ids
        else f"of campaign{'s' if len(campaign_ids) > 1 else ''} "
        + ", ".join(map(str, campaign_ids))
    )
    shown = {
        "user_ids": "user ids",
        "from_date_scheduled": "scheduled from",
        "to_date_scheduled": "scheduled to",
        "from_date_added": "added from",
        "to_date_added": "added to",
    }
    parts = []
    for key, label in shown.items():
        if key in filters:
            value = filters[key]
            text = ", ".join(value) if key == "user_ids" else str(value)
            parts.append(f"{label} {text}")
    matching = f" matching {'; '.join(parts)}" if parts else ""
    return f"every callback {where}{matching}"


@cli.command(epilog=DATES_HELP + "\n\n" + _CONFIG_HELP)
@click.option(
    "--ids-file",
    type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True),
    metavar="FILE",
    help="Delete the ids in FILE (- for stdin): one per line; blank lines and # comments "
    "are skipped. Read as the deletes go, never all at once.",
)
@click.option(
    "--campaign-id",
    "campaign_ids",
    type=click.IntRange(min=1),
    multiple=True,
    metavar="ID",
    help="Delete every callback of this campaign that matches the filters (repeatable).",
)
@click.option(
    "--tenant", is_flag=True, help="Delete every callback of the tenant matching the filters."
)
@filter_options
@click.option(
    "--dry-run", is_flag=True, help="Say how many would be deleted and the first few; send none."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=100),
    metavar="N",
    default=8,
    show_default=True,
    help="Deletes in flight at once.",
)
@click.option(
    "--failed-out",
    metavar="FILE",
    help="Write the ids that failed or were not attempted to FILE, to re-run with --ids-file.",
)
@connection_options
@click.pass_context
def delete(
    ctx: click.Context,
    *,
    conn: ConnectionOptions,
    filters: dict[str, Any],
    ids_file: str | None,
    campaign_ids: tuple[int, ...],
    tenant: bool,
    dry_run: bool,
    yes: bool,
    concurrency: int,
    failed_out: str | None,
) -> None:
    """Delete callbacks listed in a file, or every one matching a filter.

    \b
    Exit status: 0 all deleted (or not found); 1 some failed; 2 usage error;
    130 interrupted. The summary table is printed in every case.
    """
    if sum((ids_file is not None, bool(campaign_ids), tenant)) != 1:
        msg = "say which callbacks to delete: one of --ids-file, --campaign-id or --tenant"
        raise click.UsageError(msg)
    if ids_file is not None and filters:
        msg = "the filters apply to --campaign-id and --tenant, not to --ids-file"
        raise click.UsageError(msg)
    reader = None if ids_file is None else _open_ids(ctx, ids_file)
    plan = DeletePlan(
        ids=reader,
        campaigns=campaign_ids,
        tenant=tenant,
        filters=filters,
        concurrency=concurrency,
    )
    if dry_run and reader is not None:  # counting a file needs no server
        run_dry_ids(reader)
        return
    check_failed_out(failed_out)
    ask = not (dry_run or yes)
    if ask:
        _check_can_ask(reader)
    with (
        logging_to_stderr(verbose=conn.verbose),
        library_errors(verbose=conn.verbose),
        connect(conn) as connection,
    ):
        try:
            if dry_run:
                run_dry(connection, plan)
                return
            target = _describe_target(reader, campaign_ids, filters)
            if ask and not click.confirm(
                f"Delete {target} on {connection.base_url}?", default=False, err=True
            ):
                click.echo("nothing was deleted", err=True)
                ctx.exit(1)
        except (KeyboardInterrupt, click.Abort):
            click.echo("\ninterrupted: nothing was deleted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        ctx.exit(run_delete(connection, plan, failed_out))


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
    if reader is not None and reader.name == "stdin":
        msg = "the ids come from stdin, so there is no one to ask for confirmation: pass --yes"
        raise ConfigError(msg)
    if not _ui.stdin_is_interactive():
        msg = (
            "refusing to delete without confirmation: stdin is not a terminal. Pass --yes "
            "to delete without asking (or --dry-run to see what would be deleted)."
        )
        raise ConfigError(msg)


def _campaign_list(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        ids = []
    if not ids or any(i < 1 for i in ids):
        msg = f"{value!r} is not a comma-separated list of campaign ids, e.g. 6,7,8"
        raise click.BadParameter(msg)
    return ",".join(map(str, ids))


@cli.command("fake-server")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8888,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option(
    "--callbacks",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Seeded callbacks.",
)
@click.option(
    "--campaigns", default="6,7,8", show_default=True, callback=_campaign_list, help="Campaign ids."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the data and session."
)
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Added to every request."
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests answered with an injected fault (503, 429, drops, ...).",
)
@click.option("--https", is_flag=True, help="Serve HTTPS (with a throwaway CA unless --certfile).")
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="Certificate chain (PEM) to serve HTTPS with.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help="Private key (PEM), if not in --certfile.",
)
@click.option(
    "--login", multiple=True, metavar="USER:TOKEN", help="Accept this login (repeatable)."
)
@click.pass_context
def fake_server(
    ctx: click.Context,
    *,
    port: int,
    callbacks: int,
    campaigns: str,
    seed: int,
    latency_ms: float,
    fault_rate: float,
    https: bool,
    certfile: str | None,
    keyfile: str | None,
    login: tuple[str, ...],
) -> None:
    """Serve a fake Ameyo server on 127.0.0.1 until Ctrl-C.

    Prints AMEYO_BASE_URL=..., AMEYO_SESSION_ID=... (and with a generated
    HTTPS certificate AMEYO_CA_FILE=..., the file to pass as --ca-bundle) on
    stdout: export them, then run export or delete in another shell.
    """
    if keyfile is not None and certfile is None:
        msg = "--keyfile needs --certfile"
        raise click.UsageError(msg)
    for entry in login:
        user, sep, token = entry.partition(":")
        if not (sep and user and token):
            msg = f"--login takes USER:TOKEN, got {entry.split(':', 1)[0]!r}..."
            raise click.UsageError(msg)
    argv = [
        "--port",
        str(port),
        "--callbacks",
        str(callbacks),
        "--campaigns",
        campaigns,
        "--seed",
        str(seed),
        "--latency-ms",
        str(latency_ms),
        "--fault-rate",
        str(fault_rate),
    ]
    for entry in login:
        argv += ["--login", entry]
    if https or certfile is not None:
        argv.append("--https")
    if certfile is not None:
        argv += ["--certfile", certfile]
    if keyfile is not None:
        argv += ["--keyfile", keyfile]
    from ..testing import __main__ as fake_main  # noqa: PLC0415  (imports the fake on use)

    try:
        status = fake_main.main(argv)
    except ModuleNotFoundError as exc:  # uvicorn missing
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # the port is taken, a certificate cannot be read
        msg = f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    ctx.exit(status)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the application; the exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="ameyo-callbacks")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
