"""The command line as separate processes: ``fake-server --https`` and ``export`` against it."""

from __future__ import annotations

import csv
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import IO

import pytest

from ameyo_callbacks import CustomerCallback
from ameyo_callbacks.testing import FakeAmeyo

SEED = 7
CALLBACKS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def line_reader(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """Lines of ``stream``, read by a daemon thread (readline on a pipe has no timeout)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line.strip())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def row(cb: CustomerCallback) -> list[str]:
    return [
        cb.customer_callback_id,
        str(cb.campaign_id),
        iso_z(cb.callback_time),
        "true" if cb.self_callback else "false",
        cb.user_id or "",
        cb.phone,
        "" if cb.customer_id is None else str(cb.customer_id),
        iso_z(cb.date_added),
        "{}",
    ]


@pytest.mark.integration
def test_export_process_reads_the_https_fake_server_process(tmp_path: Path) -> None:
    """export over HTTPS (CA from fake-server, session from the environment) writes its data."""
    port = free_port()
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMEYO_")}
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
    assert rows[1:] == [row(cb) for cb in expected]
    assert export.stderr.startswith(f"exported {len(expected)} records")
    assert session not in export.stdout + export.stderr
    assert server.returncode == 0
