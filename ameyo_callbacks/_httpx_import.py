"""Import httpx without its command line.

``httpx/__init__.py`` runs ``from ._main import main`` whenever click, rich
and pygments are installed (our ``cli`` extra installs them), which loads all
three on every ``import httpx``: about half of httpx's import time on this
project's machine, for a command line that a library client never runs
(upstream: encode/httpx discussion 3523, pull request 3547).

The package ``__init__`` imports this module first. When httpx is not loaded
yet, it is imported with ``httpx._main`` marked missing, so httpx takes its
own ``except ImportError`` branch; the mark is then removed, and
``httpx.main`` becomes a function that imports the real command line when
called, so ``httpx.main()`` in the same process still works. When httpx is
already loaded, nothing is touched.
"""

from __future__ import annotations

import sys
from typing import Any

__all__: list[str] = []

_CLI = "httpx._main"


def _import_httpx_without_cli() -> None:
    if "httpx" in sys.modules or _CLI in sys.modules:
        return
    sys.modules[_CLI] = None  # type: ignore[assignment]  # `import httpx._main` fails fast
    try:
        import httpx  # noqa: PLC0415
    finally:
        if sys.modules.get(_CLI, ...) is None:
            del sys.modules[_CLI]
    fallback = httpx.main

    def main(*args: Any, **kwargs: Any) -> Any:
        """httpx's command line, imported on first use."""
        try:
            from httpx._main import main as real_main  # noqa: PLC0415
        except ImportError:
            return fallback()
        return real_main(*args, **kwargs)

    httpx.main = main  # type: ignore[assignment]  # stands in for the click Command


_import_httpx_without_cli()
