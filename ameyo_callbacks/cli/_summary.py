"""``--json``: the final summary of a command as one JSON object on one line."""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["emit_json"]


def emit_json(summary: dict[str, Any], *, err: bool = False) -> None:
    """Print ``summary`` as one line of JSON: on stdout, or stderr when stdout carries data."""
    click.echo(json.dumps(summary, ensure_ascii=False, separators=(",", ":")), err=err)
