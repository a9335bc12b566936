"""Long exports: progress kept beside the output (``--resume``) and watermarks (``--state``).

**Resume.** An export to a regular file ``OUT`` writes its records to
``.OUT.partial`` beside it and, after each page, records in
``.OUT.progress.json`` where it stands: the campaign (source) it is on, the
walk's checkpoint after the last page written (``Page.checkpoint``), and the
partial file's size at that point. Data is flushed and synced before the
progress that covers it is written, so the progress never runs ahead of the
data. A run that stops (Ctrl-C, a crash, a server outage after the retries)
leaves both files; ``--resume`` cuts the partial file back to the recorded
size and continues from the checkpoint (``iter_callbacks(where,
resume_from=...)``), so the finished file holds every callback once. When
the export completes, the partial file is renamed to ``OUT`` and the progress
file removed: ``OUT`` appears only when complete. Without ``--resume`` a
stale partial export is reported and started over.

**State.** ``--state FILE`` keeps a watermark: the newest ``dateAdded`` the
exports so far have seen, and the ids added at exactly that millisecond. A
later run asks only for callbacks added at or after the watermark (the
boundary millisecond included) and skips the ids already exported at it, so
a callback added between runs is neither missed nor repeated. FILE is
rewritten (atomically) only when the export completed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from .. import CallbackFilter, CustomerCallback
from ._dates import to_ms
from ._errors import ConfigError
from ._files import atomic_output

__all__ = ["Progress", "ResumeFiles", "State", "Watermark"]

_VERSION = 1


@attrs.define
class Watermark:
    """The newest ``dateAdded`` seen (epoch ms) and the ids added at exactly that millisecond."""

    ms: int | None = None
    ids: set[str] = attrs.field(factory=set)

    def see(self, records: Iterable[CustomerCallback]) -> None:
        """Move the watermark over these records."""
        for record in records:
            added = to_ms(record.date_added)
            if self.ms is None or added > self.ms:
                self.ms = added
                self.ids = {record.customer_callback_id}
            elif added == self.ms:
                self.ids.add(record.customer_callback_id)

    def to_json(self) -> dict[str, Any]:
        """The watermark as JSON values."""
        return {"watermark_ms": self.ms, "boundary_ids": sorted(self.ids)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Watermark:
        """Read :meth:`to_json` back."""
        ms = data.get("watermark_ms")
        ids = data.get("boundary_ids", [])
        if (ms is not None and type(ms) is not int) or not isinstance(ids, list):
            msg = "not a watermark"
            raise ValueError(msg)
        return cls(ms, {str(i) for i in ids})


@attrs.frozen
class State:
    """An incremental export's state file: the filters it was made for, and the watermark."""

    path: str
    scope: tuple[str, ...]
    watermark: Watermark

    @classmethod
    def load(cls, path: str, wheres: tuple[CallbackFilter, ...]) -> State:
        """The state in ``path`` (a fresh one if it does not exist); ConfigError if it is unfit."""
        scope = tuple(where.describe() for where in wheres)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path, scope, Watermark())
        except OSError as exc:
            msg = f"cannot read --state {path}: {exc.strerror or exc}"
            raise ConfigError(msg) from None
        try:
            data = json.loads(text)
            if data.get("version") != _VERSION:
                raise ValueError(data.get("version"))  # noqa: TRY301
            watermark = Watermark.from_json(data)
            stored = tuple(data["filter"])
        except (ValueError, KeyError, TypeError, AttributeError):
            msg = (
                f"--state {path} is not a state file of ameyo-callbacks export: "
                "pass another file (a missing one starts from the beginning)"
            )
            raise ConfigError(msg) from None
        if stored != scope:
            msg = (
                f"--state {path} was made for {' or '.join(stored)}, not for "
                f"{' or '.join(scope)}: use one state file per filter"
            )
            raise ConfigError(msg)
        return cls(path, scope, watermark)

    def narrow(self, where: CallbackFilter) -> CallbackFilter:
        """``where`` from the watermark on (inclusive), or as it is on the first run."""
        mark = self.watermark.ms
        if mark is None:
            return where
        low = where.from_date_added
        return attrs.evolve(where, from_date_added=mark if low is None else max(low, mark))

    def already_exported(self, record: CustomerCallback) -> bool:
        """True for a record at the boundary millisecond that an earlier run exported."""
        return record.customer_callback_id in self.watermark.ids and (
            to_ms(record.date_added) == self.watermark.ms
        )

    def save(self, watermark: Watermark) -> None:
        """Write the new watermark (atomically)."""
        body = {"version": _VERSION, "filter": list(self.scope), **watermark.to_json()}
        with atomic_output(self.path) as stream:
            stream.write(json.dumps(body, indent=1) + "\n")


@attrs.define
class Progress:
    """Where an export to a file stands: source index, checkpoint, counts, partial file size."""

    key: dict[str, Any]
    source: int = 0
    checkpoint: str | None = None
    records: int = 0
    pages: int = 0
    size: int = 0
    watermark: Watermark = attrs.field(factory=Watermark)

    def to_json(self) -> dict[str, Any]:
        """The progress as JSON values."""
        return {
            "version": _VERSION,
            "key": self.key,
            "source": self.source,
            "checkpoint": self.checkpoint,
            "records": self.records,
            "pages": self.pages,
            "size": self.size,
            **self.watermark.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        """Read :meth:`to_json` back (ValueError, KeyError or TypeError when it is not one)."""
        if data["version"] != _VERSION:
            raise ValueError(data["version"])
        fields = {name: data[name] for name in ("source", "records", "pages", "size")}
        if not all(type(v) is int and v >= 0 for v in fields.values()):
            raise ValueError(fields)
        checkpoint = data["checkpoint"]
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise TypeError(checkpoint)
        return cls(
            key=dict(data["key"]),
            checkpoint=checkpoint,
            watermark=Watermark.from_json(data),
            **fields,
        )


@attrs.frozen
class ResumeFiles:
    """The partial data and the progress file beside an output ``target``."""

    target: Path

    @classmethod
    def beside(cls, output: str) -> ResumeFiles:
        """The files for ``output`` (a symlink: beside its target)."""
        return cls(Path(os.path.realpath(output)))

    @property
    def partial(self) -> Path:
        """Where the records go until the export is complete."""
        return self.target.with_name(f".{self.target.name}.partial")

    @property
    def progress(self) -> Path:
        """Where the progress is recorded after each page."""
        return self.target.with_name(f".{self.target.name}.progress.json")

    def load(self) -> Progress | None:
        """The progress of an unfinished export, or None (a broken one counts as none)."""
        try:
            data = json.loads(self.progress.read_text(encoding="utf-8"))
            progress = Progress.from_json(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if not self.partial.is_file() or self.partial.stat().st_size < progress.size:
            return None
        return progress

    def save(self, progress: Progress) -> None:
        """Record ``progress`` atomically (write a temporary file, rename it)."""
        tmp = self.progress.with_name(self.progress.name + ".tmp")
        tmp.write_text(json.dumps(progress.to_json()), encoding="utf-8")
        os.replace(tmp, self.progress)

    def discard(self) -> None:
        """Remove the partial data and the progress file."""
        for path in (self.partial, self.progress):
            path.unlink(missing_ok=True)
