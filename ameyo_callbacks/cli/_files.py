"""Output files: written where they point, appearing complete or not at all.

- ``-`` is stdout.
- A regular file (new or existing) is written under a temporary name in its
  directory and renamed over it only when complete; a symlink is followed,
  so its target is what gets replaced, atomically, and the link stays.
- Anything else (a device such as ``/dev/null``, a FIFO, any path under
  ``/dev`` or ``/proc`` such as ``/dev/stdout``) is opened and written
  directly: it is never renamed over.

Every failure to open, write (a full disk, a quota, an I/O error) or replace
is a :class:`ConfigError`: one line, exit status 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Literal, TextIO

from ._config import ConfigError

__all__ = [
    "append_output",
    "atomic_output",
    "check_writable",
    "describe",
    "finish_file",
    "is_special",
    "writing",
]


def describe(output: str) -> str:
    """How to name an output in a message."""
    return "stdout" if output == "-" else output


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _final_mode(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def is_special(output: str) -> bool:
    """True for an existing output that is not a regular file (device, FIFO, /dev/stdout)."""
    if output == "-" or output.startswith(("/dev/", "/proc/")):
        return True  # /dev/stdout, /dev/fd/3, /proc/self/fd/1: the open file, never renamed
    try:
        mode = os.stat(output).st_mode  # follows symlinks: /dev/stdout -> the pipe
    except FileNotFoundError:
        return False
    except OSError as exc:
        msg = f"cannot write {output}: {_reason(exc)}"
        raise ConfigError(msg) from None
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_writable(output: str, flag: str) -> None:
    """Refuse, before any request, an output that cannot be written (exit status 2)."""
    if output == "-" or is_special(output):
        if output != "-" and not os.access(output, os.W_OK):
            msg = f"cannot write {flag} {output}: permission denied"
            raise ConfigError(msg)
        return
    target = Path(os.path.realpath(output))
    if target.is_dir():
        msg = f"cannot write {flag} {output}: it is a directory"
        raise ConfigError(msg)
    parent = target.parent
    if not parent.is_dir():
        msg = f"cannot write {flag} {output}: the directory {parent} does not exist"
        raise ConfigError(msg)
    if not os.access(parent, os.W_OK | os.X_OK):
        msg = f"cannot write {flag} {output}: no permission to create files in {parent}"
        raise ConfigError(msg)
    if target.exists() and not os.access(target, os.W_OK):
        msg = f"cannot write {flag} {output}: the file is read-only"
        raise ConfigError(msg)


# What a write, flush or close can fail with: a full disk or quota, a file
# too large, an I/O error, a file system gone read-only.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


@contextmanager
def writing(what: str) -> Iterator[None]:
    """A failed write (flush, close) in the block: one line naming ``what``, exit status 2."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        msg = f"cannot write {what}: {_reason(exc)}"
        raise ConfigError(msg) from None


@contextmanager
def _open_text(output: str, mode: Literal["w", "a"], what: str) -> Iterator[TextIO]:
    """``output`` opened as UTF-8 text in ``mode``; ``what`` names it in the error."""
    try:
        stream = open(output, mode, encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        msg = f"cannot write {what}: {_reason(exc)}"
        raise ConfigError(msg) from None
    with writing(what), stream:
        yield stream


def _direct(output: str) -> AbstractContextManager[TextIO]:
    return _open_text(output, "w", output)


@contextmanager
def atomic_output(output: str) -> Iterator[TextIO]:
    """A UTF-8 text stream for ``output`` (``-``: stdout); see the module docstring.

    For a regular file, on any exception (Ctrl-C included) the temporary
    file is removed and an existing ``output`` is left as it was.
    """
    if output == "-":
        stdout = sys.stdout
        yield stdout
        stdout.flush()
        return
    if is_special(output):
        with _direct(output) as stream:
            yield stream
        return
    target = Path(os.path.realpath(output))  # a symlink: its target is replaced, not the link
    if target.is_dir():
        msg = f"cannot write {output}: it is a directory"
        raise ConfigError(msg)
    if target.exists() and not os.access(target, os.W_OK):
        msg = f"cannot write {output}: the file is read-only"
        raise ConfigError(msg)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part", text=True
        )
    except OSError as exc:
        msg = f"cannot write {output}: {_reason(exc)}"
        raise ConfigError(msg) from None
    try:
        with writing(output), os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        finish_file(Path(tmp), target, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def finish_file(done: Path, target: Path, output: str) -> None:
    """Rename the complete file ``done`` over ``target`` (keeping its mode); one-line errors."""
    try:
        os.chmod(done, _final_mode(target))
        os.replace(done, target)
    except OSError as exc:
        msg = f"cannot replace {output}: {_reason(exc)} (check the file's attributes)"
        raise ConfigError(msg) from None


def append_output(output: str, flag: str) -> AbstractContextManager[TextIO]:
    """A UTF-8 text stream appending to ``output`` (a backup: written as it goes)."""
    return _open_text(output, "a", f"{flag} {output}")
