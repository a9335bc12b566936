"""B6, exact walk of a live list: 20,000 records, 20 ms per request, 50 changes a second.

The fake server (own process, ``--order callbackTime --live-rate 50``)
deletes (the callback due first, or one at random) and adds callbacks as
requests arrive (no reschedules: a rescheduled callback moves, and may come
out once per place). It writes each change to a change log
(``--change-log``), from which the benchmark knows, for every walk, which
callbacks were present throughout it: those present before its first
request (the seeded list, as ``FakeAmeyo.seeded`` builds it in this
process, changed by the log so far) that no change of the walk's own time
deleted. Targets: 0 of those missed, 0 callbacks yielded twice, and the
live walk at most 1.15x the same walk on a still list (same server options
otherwise).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import _common as c

from ameyo_callbacks import AmeyoCallbacksClient, CallbackFilter
from ameyo_callbacks.testing import FakeAmeyo

NAME = "B6"
RECORDS = 20_000
LATENCY_MS = 20.0
RATE = 50
TARGET = 1.15
ORDER = "callbackTime"


class ChangeLog:
    """The fake's change log, read as it grows: what is on the list now."""

    def __init__(self, path: Path, present: set[str]) -> None:
        self.path, self.present, self._read = path, set(present), 0

    def advance(self) -> tuple[set[str], set[str]]:
        """Read the changes made since the last call: (ids deleted, ids added)."""
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        fresh = [json.loads(line) for line in lines[self._read :]]
        self._read = len(lines)
        deleted, added = set(), set()
        for ch in fresh:  # in order: a callback added, then deleted, is gone
            if ch["kind"].startswith("delete"):
                deleted.add(ch["callback_id"])
                self.present.discard(ch["callback_id"])
            elif ch["kind"] == "add":
                added.add(ch["callback_id"])
                self.present.add(ch["callback_id"])
        return deleted, added


def main() -> None:
    title = f"{NAME} live list: walk {RECORDS:,} records, {LATENCY_MS:g} ms, {RATE} changes/s"
    with c.section(title), tempfile.TemporaryDirectory(prefix="b6-") as tmp:
        seeded = set(
            FakeAmeyo.seeded(RECORDS, campaigns=[c.CAMPAIGN], seed=0, order=ORDER).ordered_ids()
        )
        log_path = Path(tmp) / "changes.jsonl"
        walls: dict[str, list[float]] = {}
        missed: list[int] = []
        repeated: list[int] = []
        live = ["--live-rate", str(RATE), "--live-mix", "delete_due,delete_random,add"]
        for name, extra in (("still", []), ("live", [*live, "--change-log", str(log_path)])):
            with c.FakeServer(
                RECORDS, latency_ms=LATENCY_MS, extra_args=["--order", ORDER, *extra]
            ) as server:
                c.note(server.describe() + (f", {RATE} changes/s" if extra else ", still"))
                url, sid = server.url, server.session_id
                log = ChangeLog(log_path, seeded)

                async def ours(
                    sw: c.Stopwatch, url: str = url, sid: str = sid, log: ChangeLog = log
                ) -> int:
                    ids: list[str] = []
                    log.advance()  # the changes made before this walk
                    before = set(log.present)
                    async with AmeyoCallbacksClient(url, session_id=sid) as client:
                        with sw:
                            walk = client.iter_callbacks(CallbackFilter.campaign(c.CAMPAIGN))
                            async for record in walk:
                                ids.append(record.customer_callback_id)  # noqa: PERF401
                    deleted, _ = log.advance()  # the changes made during it
                    throughout = before - deleted
                    missed.append(len(throughout - set(ids)))
                    repeated.append(sum(1 for n in Counter(ids).values() if n > 1))
                    return len(ids)

                samples = c.interleaved({name: ours})[name]
                c.note(
                    f"{name:<6} wall s: {c.walls(samples)}; records {[s.value for s in samples]}"
                )
                if name == "still":
                    c.check_walked(name, samples, len(seeded))
                walls[name] = [s.wall for s in samples]
        changes = len(log_path.read_text(encoding="utf-8").splitlines())
        c.note(f"live: {changes} changes logged over {len(walls['live'])} walks")
        if changes == 0:
            msg = "the live server logged no changes: the live walk was not live"
            raise RuntimeError(msg)
        still_wall, live_wall = c.median(walls["still"]), c.median(walls["live"])
        c.report(NAME, "still list walk wall", still_wall, unit="s")
        c.report(
            NAME, "live walk (50 changes/s) / still walk", live_wall / still_wall, at_most=TARGET
        )
        c.report(NAME, "callbacks present throughout but missed", sum(missed), unit="", at_most=0)
        c.report(NAME, "callbacks yielded twice", sum(repeated), unit="", at_most=0)


if __name__ == "__main__":
    main()
