"""``python -m ameyo_callbacks``: the ``ameyo-callbacks`` command line."""

from ameyo_callbacks.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
