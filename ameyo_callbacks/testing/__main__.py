"""``python -m ameyo_callbacks.testing``: run the fake Ameyo server in the foreground.

The same click command as ``ameyo-callbacks fake-server`` (see ``_command``).
"""

from __future__ import annotations

from ._command import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
