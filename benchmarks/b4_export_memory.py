"""B4, export memory: the command line's peak RSS exporting 1,000,000 vs 100,000 records.

Each size runs the fake server (``python -m ameyo_callbacks.testing
--callbacks N``, one campaign) on 127.0.0.1 in its own process, then ``python -m ameyo_callbacks
export --format jsonl --campaign-id 6 --output <tmp>`` as another process.
The export's peak RSS is read exactly: a small helper process starts the
export as its only child and reports ``getrusage(RUSAGE_CHILDREN).ru_maxrss``
(the kernel's high-water mark), with psutil polling as a fallback where
``resource`` does not exist. Target: peak RSS at 1M <= 1.20x the peak at
100k, i.e. memory stays flat however many records stream through. The rate
(records/s, the export's own summary line, and over the process's whole
wall time) is information only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

NAME = "B4"
SIZES = (100_000, 1_000_000)
CAMPAIGN = 6
TARGET = 1.20

# Runs argv as its only child; prints {"maxrss_kib": ..., "returncode": ..., "stderr": ...}.
_HELPER = """
import json, resource, subprocess, sys
argv = json.loads(sys.argv[1])
done = subprocess.run(argv, capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
scale = 1024 if sys.platform == "darwin" else 1  # macOS reports bytes, Linux KiB
print(json.dumps({"maxrss_kib": usage.ru_maxrss // scale,
                  "returncode": done.returncode, "stderr": done.stderr[-4000:]}))
"""


def _peak_rss_psutil(argv: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """Fallback without ``resource``: poll the export's RSS every 10 ms."""
    import psutil  # noqa: PLC0415  (only where resource is missing)

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    handle = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, handle.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    _, err = proc.communicate()
    return peak // 1024, proc.returncode, err.decode(errors="replace")


def run_export(server: c.FakeServer, out: Path) -> tuple[int, float, str]:
    """Run the export process; (peak RSS KiB, wall seconds, its stderr)."""
    argv = [
        sys.executable,
        "-m",
        "ameyo_callbacks",
        "export",
        "--base-url",
        server.url,
        "--format",
        "jsonl",
        "--output",
        str(out),
        "--campaign-id",
        str(CAMPAIGN),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEYO_")}
    env["AMEYO_SESSION_ID"] = server.session_id
    started = time.perf_counter()
    try:
        import resource  # noqa: F401, PLC0415  (POSIX only)
    except ImportError:
        peak, code, err = _peak_rss_psutil(argv, env)
    else:
        helper = subprocess.run(
            [sys.executable, "-c", _HELPER, json.dumps(argv)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
        report = json.loads(helper.stdout)
        peak, code, err = report["maxrss_kib"], report["returncode"], report["stderr"]
    wall = time.perf_counter() - started
    if code != 0:
        msg = f"the export failed with status {code}: {err}"
        raise RuntimeError(msg)
    return peak, wall, err


def main() -> None:
    title = f"{NAME} export memory: peak RSS of the CLI exporting 1M vs 100k records (jsonl)"
    with c.section(title):
        peaks: dict[int, int] = {}
        for size in SIZES:
            with (
                tempfile.TemporaryDirectory(prefix="b4-") as tmp,
                c.FakeServer(size, campaigns=(CAMPAIGN,)) as server,
            ):
                out = Path(tmp) / "export.jsonl"
                peak, wall, err = run_export(server, out)
                with out.open("rb") as f:
                    lines = sum(1 for _ in f)
                if lines != size:
                    msg = f"expected {size:,} exported records, the file has {lines:,}"
                    raise RuntimeError(msg)
                summary = err.strip().splitlines()[-1] if err.strip() else ""
                match = re.search(r"\(([\d,]+) records/s\)", summary)
                own_rate = int(match.group(1).replace(",", "")) if match else 0
                peaks[size] = peak
                c.note(f"{size:>9,} records: peak RSS {peak / 1024:.1f} MiB; {summary}")
                c.report(NAME, f"records/s at {size:,} (export's own count)", own_rate, unit="/s")
                c.report(
                    NAME,
                    f"records/s at {size:,} (process wall {wall:.1f} s)",
                    size / wall,
                    unit="/s",
                )
        ratio = peaks[SIZES[1]] / peaks[SIZES[0]]
        print(f"B4 peak RSS 1M / 100k = {ratio:.2f}x (target <= {TARGET:.2f})", flush=True)
        c.report(NAME, "peak RSS 1M / 100k", ratio, at_most=TARGET)


if __name__ == "__main__":
    main()
