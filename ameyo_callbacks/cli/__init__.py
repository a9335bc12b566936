"""The ``ameyo-callbacks`` command line (the ``cli`` extra: click, rich, uvicorn, trustme).

``main()`` is the console script's entry point and ``python -m ameyo_callbacks``
runs it too. The library itself never imports this package, and this module
imports click and rich only when the command runs, so a plain
``pip install ameyo-callbacks`` works without them: the command then says
which extra to install and exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_MISSING_EXTRA = (
    "ameyo-callbacks: the command line needs its extra: pip install 'ameyo-callbacks[cli]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        import click  # noqa: PLC0415, F401  (optional extra, imported on use)
        import rich  # noqa: PLC0415, F401
    except ImportError:
        sys.stderr.write(_MISSING_EXTRA + "\n")
        return 2
    from ._app import run  # noqa: PLC0415  (needs click)

    return run(argv)
