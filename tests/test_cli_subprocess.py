"""The command line as separate processes: ``fake-server --https`` and ``export`` against it.

The ``export`` children run unmeasured (``unmeasured_env``): what they test
is the process (signals, pipes, files, the environment), and the code they
run is measured in-process by test_cli.py; under coverage they took most of
this module's time. The ``fake-server`` child stays measured: its command
line runs nowhere else with ``--https``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from _raw_servers import reserved_port
from _support import expected_row, interrupt, interruptible, reap, unmeasured_env

from ameyo_callbacks.testing import FakeAmeyo, serve

SEED = 7
CALLBACKS = 300


def line_reader(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """Lines of ``stream``, read by a daemon thread (readline on a pipe has no timeout)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line.strip())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


@pytest.mark.integration
def test_export_process_reads_the_https_fake_server_process(tmp_path: Path) -> None:
    """export over HTTPS (CA from fake-server, session from the environment) writes its data."""
    held = contextlib.ExitStack()  # the port stays ours until the server has bound it
    port = held.enter_context(reserved_port())
    server_log = (tmp_path / "server.err").open("w")
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "ameyo_callbacks",
            "fake-server",
            "--https",
            "--port",
            str(port),
            "--callbacks",
            str(CALLBACKS),
            "--seed",
            str(SEED),
        ],
        stdout=subprocess.PIPE,
        stderr=server_log,
        text=True,
    )
    pump: threading.Thread | None = None
    try:
        assert server.stdout is not None
        lines, pump = line_reader(server.stdout)
        printed = dict(lines.get(timeout=30).split("=", 1) for _ in range(3))
        base, session, ca = (
            printed["AMEYO_BASE_URL"],
            printed["AMEYO_SESSION_ID"],
            printed["AMEYO_CA_FILE"],
        )
        assert base == f"https://127.0.0.1:{port}"
        env = {k: v for k, v in unmeasured_env().items() if not k.startswith("AMEYO_")}
        env["AMEYO_SESSION_ID"] = session
        out = tmp_path / "out.csv"
        export = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "ameyo_callbacks",
                "export",
                "--base-url",
                base,
                "--ca-bundle",
                ca,
                "--campaign-id",
                "6",
                "--output",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        held.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)
            if pump is not None:
                pump.join(timeout=5)
            if server.stdout is not None:
                server.stdout.close()
            server_log.close()
    assert export.returncode == 0, export.stderr
    expected = [
        cb for cb in FakeAmeyo.seeded(CALLBACKS, seed=SEED).callbacks if cb.campaign_id == 6
    ]
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[1:] == [expected_row(cb) for cb in expected]
    assert export.stderr.startswith(f"exported {len(expected)} records")
    assert session not in export.stdout + export.stderr
    assert server.returncode == 0


# ----------------------------------------------------------------------
# The command line against a fake served on 127.0.0.1 (in this process, on a real socket)


def cli_env(url: str, fake: FakeAmeyo) -> dict[str, str]:
    env = {k: v for k, v in unmeasured_env().items() if not k.startswith("AMEYO_")}
    env["AMEYO_BASE_URL"] = url
    env["AMEYO_SESSION_ID"] = fake.session_id
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ameyo_callbacks", *args]


def jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["customerCallbackId"] for line in path.read_text().splitlines()]


@pytest.mark.integration
def test_sigint_mid_export_then_resume_writes_every_callback_once(tmp_path: Path) -> None:
    """SIGINT halfway through 20,000 callbacks: exit 130, no output; --resume: each one once."""
    # 50 ms a page, 2 in flight: at least 5 s in all, on any machine. The
    # progress file is committed about once a second, so the export must
    # outlast the first commit past 5,000 records by more than that second.
    fake = FakeAmeyo.seeded(20_000, latency=0.05)
    out = tmp_path / "all.jsonl"
    progress = tmp_path / ".all.jsonl.progress.json"
    args = command("export", "--tenant", "--format", "jsonl", "-o", str(out), "--prefetch", "2")
    with serve(fake) as url:
        env = cli_env(url, fake)
        first = interruptible(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            records = 0
            while records < 5_000 and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.05)
                try:
                    records = json.loads(progress.read_text())["records"]
                except (OSError, ValueError):
                    continue
            assert 5_000 <= records < 20_000, "the export did not get halfway in time"
            err = interrupt(first, 30)
        finally:
            reap(first)
        assert first.returncode == 130, err
        assert "interrupted" in err
        assert not out.exists()
        fake.latency = 0.0  # (the runway was for the interrupt; the resume needs none)
        second = subprocess.run(  # noqa: S603
            [*args, "--resume"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert second.returncode == 0, second.stderr
    assert "(resumed at record " in second.stderr
    resumed_at = int(second.stderr.split("(resumed at record ")[1].split(")")[0].replace(",", ""))
    assert resumed_at >= records
    ids = jsonl_ids(out)
    assert len(ids) == 20_000
    assert set(ids) == fake.ids()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl"]


@pytest.mark.integration
def test_state_twice_around_added_callbacks_finds_exactly_the_new_ones(tmp_path: Path) -> None:
    """export --state, add callbacks (one at the watermark's millisecond), again: just those."""
    fake = FakeAmeyo.seeded(2_000)
    state = tmp_path / "state.json"
    with serve(fake) as url:
        env = cli_env(url, fake)

        def export(name: str) -> list[str]:
            out = tmp_path / name
            done = subprocess.run(  # noqa: S603
                command("export", "--campaign-id", "6", "--campaign-id", "7", "--state",
                        str(state), "--format", "jsonl", "-o", str(out)),
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return jsonl_ids(out)

        first = export("1.jsonl")
        assert sorted(first) == sorted(
            cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id in (6, 7)
        )
        mark = json.loads(state.read_text())["watermark_ms"]
        new = {f"new-{i}": mark + i * 1000 for i in range(5)}  # new-0 at the watermark itself
        for i, (cb_id, added) in enumerate(new.items()):
            fake.add(
                {
                    "customerCallbackId": cb_id,
                    "campaignId": (6, 7, 8)[i % 3],
                    "callbackTime": added + 60_000,
                    "selfCallback": False,
                    "userId": "ravi",
                    "phone": "+919811111111",
                    "customerId": None,
                    "dateAdded": added,
                }
            )
        second = export("2.jsonl")
    assert sorted(second) == ["new-0", "new-1", "new-3", "new-4"]  # new-2 is in campaign 8


@pytest.mark.integration
def test_closed_stdout_ends_quietly_with_status_0(tmp_path: Path) -> None:
    """export | head -1: the export ends with status 0 and nothing on stderr but its summary."""
    fake = FakeAmeyo.seeded(3_000)
    with serve(fake) as url:
        proc = subprocess.Popen(  # noqa: S603
            command("export", "--tenant", "-q"),
            env=cli_env(url, fake),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        header = proc.stdout.readline()
        proc.stdout.close()  # what head does after its line
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            reap(proc)
    assert header.startswith("customer_callback_id,")
    assert (proc.returncode, err) == (0, "")


@pytest.mark.integration
def test_output_to_dev_stdout_is_written_not_replaced(tmp_path: Path) -> None:
    """-o /dev/stdout writes into the pipe the process was given (never a rename over it)."""
    fake = FakeAmeyo.seeded(300)
    with serve(fake) as url:
        done = subprocess.run(  # noqa: S603
            command("export", "--campaign-id", "6", "--format", "jsonl", "-o", "/dev/stdout"),
            env=cli_env(url, fake),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    expected = [cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == 6]
    assert [json.loads(x)["customerCallbackId"] for x in done.stdout.splitlines()] == expected
    assert Path("/dev/stdout").is_symlink()
