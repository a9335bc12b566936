"""What the command line shows: stderr console, progress bars, logging, terminal checks.

Data goes to stdout (an export to ``-``, a dry run's list); everything for the
human (progress, summaries, warnings, errors) goes to stderr. Progress bars
are drawn only when stderr is a terminal. The two ``*_is_*`` functions are
module-level so tests can pretend to be a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = [
    "bar",
    "count",
    "logging_to_stderr",
    "progress",
    "stderr_console",
    "stderr_is_terminal",
    "stdin_is_interactive",
]

_LIBRARY_LOGGER = "ameyo_callbacks"


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (progress bars are drawn only then)."""
    return sys.stderr.isatty()


def stdin_is_interactive() -> bool:
    """Whether stdin is a terminal a confirmation prompt can read an answer from."""
    return sys.stdin.isatty()


def stderr_console() -> Console:
    """A rich console on the current stderr (no colours unless it is a terminal)."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def count(n: int) -> str:
    """``12345`` -> ``12,345``."""
    return f"{n:,}"


def progress(*fields: str) -> Progress | None:
    """A live progress display on stderr, or None when stderr is not a terminal.

    ``fields`` name the counters shown (each task is updated with them as
    keyword fields); the rate is computed by the caller and passed as
    ``rate``.
    """
    if not stderr_is_terminal():
        return None
    columns = [
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        *(TextColumn(f"{name.replace('_', ' ')} {{task.fields[{name}]}}") for name in fields),
        TextColumn("{task.fields[rate]}/s"),
        TimeElapsedColumn(),
    ]
    return Progress(*columns, console=Console(file=sys.stderr, force_terminal=True), transient=True)


def bar(*fields: str) -> Progress | None:
    """A progress bar with a total on stderr (done/total, percent, rate, ETA), or None.

    None when stderr is not a terminal. ``fields`` are shown after the bar, as
    in :func:`progress`; the caller passes ``rate``.
    """
    if not stderr_is_terminal():
        return None
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        *(TextColumn(f"{name.replace('_', ' ')} {{task.fields[{name}]}}") for name in fields),
        TextColumn("{task.fields[rate]}/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=Console(file=sys.stderr, force_terminal=True), transient=True)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is at the time of each record.

    So log lines go through rich's redirect while a progress bar is live, and
    to a test runner's captured stderr.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


@contextmanager
def logging_to_stderr(*, verbose: bool) -> Iterator[None]:
    """Show the library's log on stderr: ERROR and up, or everything with ``verbose``.

    The retries are logged as warnings: at the default verbosity they are not
    shown, and a request that fails for good is one error line (see
    :func:`._errors.explain`); ``-v`` shows every request and retry. The
    library never logs a session id or a token, so ``--verbose`` shows none.
    """
    logger = logging.getLogger(_LIBRARY_LOGGER)
    handler = _CurrentStderr()
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("ameyo-callbacks: %(levelname)s: %(message)s"))
    level = logging.DEBUG if verbose else logging.ERROR
    handler.setLevel(level)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
