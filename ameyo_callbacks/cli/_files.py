"""Output files that appear complete or not at all."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ._config import ConfigError

__all__ = ["atomic_output", "describe"]


def describe(output: str) -> str:
    """How to name an output in a message."""
    return "stdout" if output == "-" else output


def _final_mode(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def atomic_output(output: str) -> Iterator[TextIO]:
    """A UTF-8 text stream for ``output`` (``-``: stdout).

    A file is written under a temporary name in the same directory
    (``.NAME.XXXX.part``) and renamed over ``output`` only when the block ends
    without an exception; on any exception, Ctrl-C included, the temporary
    file is removed and an existing ``output`` is left as it was.
    """
    if output == "-":
        stdout = sys.stdout
        yield stdout
        stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        msg = f"cannot write {output}: it is a directory"
        raise ConfigError(msg)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part", text=True
        )
    except OSError as exc:
        msg = f"cannot write {output}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, _final_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
