"""The ``ameyo-callbacks`` command line, run with click's CliRunner.

Most tests reach an in-process ``FakeAmeyo`` through the command line's one
seam: ``ameyo_callbacks.cli._config.build_client`` is replaced by a function
that builds the same client with ``transport=httpx.ASGITransport(app=fake)``
(no socket). The ``--demo`` tests and the timeout test serve the fake on
127.0.0.1 and are marked ``integration``. Retries run under ``no_retry_waits``
(no back-off sleeps); injected 503s carry no ``Retry-After``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import runpy
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import trustme
from _raw_servers import closed_port
from _support import expected_row
from click.testing import CliRunner, Result

import ameyo_callbacks
from ameyo_callbacks import AmeyoCallbacksClient, CustomerCallback, make_converter
from ameyo_callbacks.cli import _config, _files, _profiles, _ui, main
from ameyo_callbacks.cli._app import cli
from ameyo_callbacks.cli._dates import DateError, parse_bound
from ameyo_callbacks.cli._delete import IdsReader
from ameyo_callbacks.testing import (
    FAKE_BASE_URL,
    FakeAmeyo,
    Fault,
    FaultPlan,
    no_retry_waits,
    serve,
)
from ameyo_callbacks.testing import __main__ as fake_main
from ameyo_callbacks.testing import _command as fake_command

NO_WAIT_503 = Fault.unavailable(retry_after=None)
CSV_HEADER = [
    "customer_callback_id",
    "campaign_id",
    "callback_time",
    "self_callback",
    "user_id",
    "phone",
    "customer_id",
    "date_added",
    "extra",
]
PACKAGE = Path(ameyo_callbacks.__file__).parent
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def on_a_wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr is a terminal 200 columns wide: tests read the display's words, not its layout.

    At rich's default 80 columns a bar line wraps where its rate text grows
    (a fast run's "1,234/s"), splitting "100%" or "5/5" over two lines.
    """
    monkeypatch.setattr(_ui, "stderr_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // (datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc) - EPOCH)


def in_campaign(fake: FakeAmeyo, *campaigns: int) -> list[CustomerCallback]:
    return [cb for c in campaigns for cb in fake.callbacks if cb.campaign_id == c]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def deletes(fake: FakeAmeyo) -> list[str]:
    return [r.path for r in fake.requests if r.endpoint == "delete"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AMEYO_BASE_URL",
        "AMEYO_SESSION_ID",
        "AMEYO_USER_ID",
        "AMEYO_TOKEN",
        "AMEYO_DOMAIN",
        "AMEYO_CA_BUNDLE",
        "AMEYO_CA_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with no_retry_waits():
        yield


@pytest.fixture
def fake() -> FakeAmeyo:
    return FakeAmeyo.seeded(300)


@pytest.fixture
def transports() -> list[Any]:
    """Wrappers applied to the in-process transport of every client built (tests append)."""
    return []


@pytest.fixture
def in_process(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, transports: list[Any]
) -> list[_config.Connection]:
    """Commands reach ``fake`` in-process; returns the connections they built clients for."""
    built: list[_config.Connection] = []

    def build(connection: _config.Connection) -> AmeyoCallbacksClient:
        built.append(connection)
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=fake)
        for wrap in transports:
            transport = wrap(transport)
        return AmeyoCallbacksClient(
            connection.base_url, transport=transport, **_config.client_options(connection)
        )

    monkeypatch.setattr(_config, "build_client", build)
    return built


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[_config.Connection]
) -> list[_config.Connection]:
    """The environment names the (in-process) fake and its valid session."""
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    monkeypatch.setenv("AMEYO_SESSION_ID", fake.session_id)
    return in_process


def run(*args: str, input: str | None = None) -> Result:  # noqa: A002
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


class Interrupting(httpx.AsyncBaseTransport):
    """Raises KeyboardInterrupt (as Ctrl-C would) at the n-th request of one kind."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, method: str, at: int) -> None:
        self.inner, self.method, self.at, self.seen = inner, method, at, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == self.method:
            self.seen += 1
            if self.seen == self.at:
                raise KeyboardInterrupt
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# ----------------------------------------------------------------------
# Entry points


def test_main_without_click_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without click installed, main() names the extra to install and returns 2."""
    monkeypatch.setitem(sys.modules, "click", None)
    assert main(["export", "--demo", "--campaign-id", "6"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "ameyo-callbacks: the command line needs its extra: pip install 'ameyo-callbacks[cli]'\n"
    )


def test_python_dash_m_runs_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m ameyo_callbacks`` runs main(): a usage error exits 2 with the usage line."""
    monkeypatch.setattr(sys, "argv", ["ameyo-callbacks", "export", "--format", "xml"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(
            str(Path(ameyo_callbacks.__file__).parent / "__main__.py"), run_name="__main__"
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Usage: ameyo-callbacks export" in err
    assert "'xml' is not one of 'csv', 'jsonl'" in err


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    """main() returns click's exit status instead of raising SystemExit."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ameyo-callbacks, version ")
    assert main(["export"]) == 2


# ----------------------------------------------------------------------
# Configuration


def test_nothing_configured_is_one_paragraph_and_exit_2(
    fake: FakeAmeyo, in_process: list[Any], tmp_path: Path
) -> None:
    """No base URL and no session: a paragraph saying what to set, exit 2, nothing sent."""
    out = tmp_path / "out.csv"
    result = run("export", "--campaign-id", "6", "--output", str(out))
    assert result.exit_code == 2
    paragraph = result.stderr.strip()
    assert "\n" not in paragraph
    assert paragraph.startswith("Error: No Ameyo server configured.")
    for hint in (
        "AMEYO_BASE_URL",
        "AMEYO_SESSION_ID",
        "--session-id-file",
        "AMEYO_TOKEN",
        "--demo",
    ):
        assert hint in paragraph
    assert fake.requests == []
    assert not out.exists()


def test_base_url_without_a_session_says_so(
    monkeypatch: pytest.MonkeyPatch, in_process: list[Any]
) -> None:
    """A base URL alone: the error says the session is what is missing."""
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    result = run("delete", "--campaign-id", "6", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: No session configured for the Ameyo server.")


@pytest.mark.parametrize("source", ["env", "flag", "file"])
def test_session_sources_reach_the_server(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeAmeyo,
    in_process: list[Any],
    tmp_path: Path,
    source: str,
) -> None:
    """AMEYO_SESSION_ID, --session-id and --session-id-file each authenticate the export."""
    args = ["export", "--campaign-id", "7", "--base-url", FAKE_BASE_URL]
    if source == "env":
        monkeypatch.setenv("AMEYO_SESSION_ID", fake.session_id)
    elif source == "flag":
        args += ["--session-id", fake.session_id]
    else:
        path = tmp_path / "session"
        path.write_text(f"{fake.session_id}\n")
        args += ["--session-id-file", str(path)]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert len(list(csv.reader(io.StringIO(result.stdout)))) == 1 + len(in_campaign(fake, 7))


def test_session_flag_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[Any]
) -> None:
    """--session-id is used even when AMEYO_SESSION_ID holds another (stale) id."""
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    monkeypatch.setenv("AMEYO_SESSION_ID", "stale-session")
    result = run("export", "--campaign-id", "6", "--session-id", fake.session_id)
    assert result.exit_code == 0, result.output
    assert {r.session for r in fake.requests} == {"valid"}


def test_empty_session_id_file_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, in_process: list[Any], tmp_path: Path
) -> None:
    """An empty --session-id-file: exit 2 naming the file."""
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    path = tmp_path / "session"
    path.write_text("\n")
    result = run("export", "--campaign-id", "6", "--session-id-file", str(path))
    assert result.exit_code == 2
    assert f"the session id file {path} is empty" in result.stderr


def test_login_with_user_and_token(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[Any]
) -> None:
    """AMEYO_USER_ID and AMEYO_TOKEN log in once, and the export uses that session."""
    fake.add_user("supervisor", "tok-123")
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    monkeypatch.setenv("AMEYO_USER_ID", "supervisor")
    monkeypatch.setenv("AMEYO_TOKEN", "tok-123")
    result = run("export", "--campaign-id", "8")
    assert result.exit_code == 0, result.output
    assert fake.login_count == 1
    assert len(result.stdout.splitlines()) == 1 + len(in_campaign(fake, 8))


def test_login_needs_both_user_and_token(
    monkeypatch: pytest.MonkeyPatch, in_process: list[Any]
) -> None:
    """AMEYO_USER_ID without AMEYO_TOKEN: exit 2 saying the token is missing."""
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    monkeypatch.setenv("AMEYO_USER_ID", "supervisor")
    result = run("export", "--campaign-id", "6")
    assert result.exit_code == 2
    assert "AMEYO_USER_ID is set but AMEYO_TOKEN is not" in result.stderr


def test_bad_base_url_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[Any]
) -> None:
    """A base URL that is not http(s): exit 2 with the client's explanation."""
    monkeypatch.setenv("AMEYO_SESSION_ID", fake.session_id)
    result = run("export", "--campaign-id", "6", "--base-url", "ftp://ameyo.example.com")
    assert result.exit_code == 2
    assert "has no http or https scheme" in result.stderr


def test_ca_bundle_must_exist_and_be_pem(configured: list[Any], tmp_path: Path) -> None:
    """--ca-bundle: a missing file or one that is not PEM is exit 2; a real CA is used."""
    missing = run("export", "--campaign-id", "6", "--ca-bundle", str(tmp_path / "nope.pem"))
    assert missing.exit_code == 2
    assert "'--ca-bundle'" in missing.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    bad = run("export", "--campaign-id", "6", "--ca-bundle", str(junk))
    assert bad.exit_code == 2
    assert f"cannot use the CA bundle {junk}" in bad.stderr
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    good = run("export", "--campaign-id", "6", "--ca-bundle", str(ca))
    assert good.exit_code == 0, good.output
    assert configured[-1].verify == str(ca)


@pytest.mark.parametrize(("retries", "exit_code"), [("2", 0), ("1", 1), ("0", 1)])
def test_retries_flag_sets_the_attempts(
    fake: FakeAmeyo, configured: list[Any], retries: str, exit_code: int
) -> None:
    """--retries N retries a failing request N times: two 503s need --retries 2."""
    fake.script("list", NO_WAIT_503, NO_WAIT_503)
    result = run("export", "--campaign-id", "6", "--retries", retries, "--prefetch", "1")
    assert result.exit_code == exit_code, result.output
    lists = [r for r in fake.requests if r.endpoint == "list"]
    pages = len(in_campaign(fake, 6)) // 100 + 1
    assert len(lists) == (2 + pages if exit_code == 0 else int(retries) + 1)


def test_library_error_is_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, in_process: list[Any]
) -> None:
    """A refused session: exit 1, one 'Error:' line naming the 403, no traceback."""
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    monkeypatch.setenv("AMEYO_SESSION_ID", "expired-session")
    result = run("export", "--campaign-id", "6")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: POST /ameyorestapi/voice/customerCallbacks/getFiltered")
    assert "403" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("source", ["flag", "env", "file", "login"])
def test_secrets_never_printed_even_verbose(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeAmeyo,
    in_process: list[Any],
    tmp_path: Path,
    source: str,
) -> None:
    """With --verbose, a good and a refused run print DEBUG lines and tracebacks, no secret."""
    secret_token = "tok-SECRET-42"
    fake.add_user("supervisor", secret_token)
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    outputs = []
    for session in (fake.session_id, "bad-SECRET-session"):
        args = ["export", "--campaign-id", "6", "--verbose", "--retries", "0"]
        if source == "flag":
            args += ["--session-id", session]
        elif source == "env":
            monkeypatch.setenv("AMEYO_SESSION_ID", session)
        elif source == "file":
            (tmp_path / "s").write_text(session)
            args += ["--session-id-file", str(tmp_path / "s")]
        else:
            monkeypatch.setenv("AMEYO_USER_ID", "supervisor")
            ok = session == fake.session_id
            monkeypatch.setenv("AMEYO_TOKEN", secret_token if ok else "bad-SECRET-token")
        outputs.append(run(*args))
    good, refused = outputs
    assert good.exit_code == 0
    assert refused.exit_code == 1
    assert "DEBUG" in good.stderr
    assert "getFiltered -> 200" in good.stderr
    assert "Traceback" in refused.stderr
    for result in outputs:
        text = result.stdout + result.stderr
        for secret in (fake.session_id, "bad-SECRET-session", secret_token, "bad-SECRET-token"):
            assert secret not in text
    if source == "login":
        assert fake.login_count == 1
        assert "login" in good.stderr


# ----------------------------------------------------------------------
# export


def test_export_csv_has_the_records_in_snake_case_columns(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """CSV: header of snake_case fields, ISO-8601 UTC 'Z' times, true/false, empty nulls."""
    out = tmp_path / "callbacks.csv"
    result = run("export", "--campaign-id", "6", "--output", str(out))
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    expected = in_campaign(fake, 6)
    assert rows[0] == CSV_HEADER
    assert rows[1:] == [expected_row(cb) for cb in expected]
    assert any(r[4] == "" for r in rows[1:])  # campaign callbacks have no user
    assert result.stdout == ""
    assert leftovers(tmp_path) == []


def test_export_csv_writes_extra_as_compact_json(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """Wire fields the record does not model land in 'extra' as compact JSON."""
    fake.clear()
    fake.add(
        {
            "customerCallbackId": "d806-1-cm-1",
            "campaignId": 6,
            "callbackTime": 1704067200000,
            "selfCallback": True,
            "userId": "asha",
            "phone": "+9198",
            "customerId": None,
            "dateAdded": 1704067200001,
            "crmRef": {"a": 1},
            "note": "é",
        }
    )
    out = tmp_path / "x.csv"
    assert run("export", "--campaign-id", "6", "-o", str(out)).exit_code == 0
    assert read_csv(out)[1] == [
        "d806-1-cm-1",
        "6",
        "2024-01-01T00:00:00.000Z",
        "true",
        "asha",
        "+9198",
        "",
        "2024-01-01T00:00:00.001Z",
        '{"crmRef":{"a":1},"note":"é"}',
    ]


def test_export_jsonl_keeps_the_wire_form(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """JSONL: one wire object per line (camelCase, epoch ms) that structures back to the record."""
    out = tmp_path / "callbacks.jsonl"
    result = run("export", "--campaign-id", "7", "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    converter = make_converter()
    records = [converter.structure(json.loads(line), CustomerCallback) for line in lines]
    assert records == in_campaign(fake, 7)
    first = json.loads(lines[0])
    assert isinstance(first["dateAdded"], int)
    assert set(first) >= {"customerCallbackId", "campaignId", "callbackTime", "dateAdded"}


@pytest.mark.parametrize(
    ("name", "args", "kind"),
    [
        ("out.jsonl", [], "jsonl"),
        ("out.ndjson", [], "jsonl"),
        ("out.CSV", [], "csv"),
        ("out.txt", [], "csv"),
        ("v1.jsonl.d/out", [], "csv"),
        ("out.csv", ["--format", "JSONL"], "jsonl"),
        ("out.jsonl", ["--format", "csv"], "csv"),
    ],
)
def test_format_follows_the_flag_then_the_suffix(
    configured: list[Any], tmp_path: Path, name: str, args: list[str], kind: str
) -> None:
    """--format wins; else .jsonl/.ndjson mean JSON Lines and anything else CSV."""
    out = tmp_path / name
    out.parent.mkdir(exist_ok=True)
    result = run("export", "--campaign-id", "6", "--output", str(out), *args)
    assert result.exit_code == 0, result.output
    first = out.read_text().splitlines()[0]
    assert first.startswith("{") if kind == "jsonl" else first == ",".join(CSV_HEADER)


def test_unknown_format_is_a_usage_error(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--format xml: exit 2, nothing sent, no file."""
    out = tmp_path / "out.xml"
    result = run("export", "--campaign-id", "6", "--format", "xml", "--output", str(out))
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr
    assert fake.requests == []
    assert list(tmp_path.iterdir()) == []


def test_export_to_stdout_by_default_with_a_summary(fake: FakeAmeyo, configured: list[Any]) -> None:
    """No --output: CSV on stdout; the summary (records, pages, elapsed) on stderr."""
    result = run("export", "--campaign-id", "6")
    assert result.exit_code == 0, result.output
    expected = in_campaign(fake, 6)
    assert list(csv.reader(io.StringIO(result.stdout)))[1:] == [expected_row(c) for c in expected]
    pages = len(expected) // 100 + 1
    assert result.stderr.startswith(
        f"exported {len(expected)} records ({pages} pages) to stdout in "
    )
    assert result.stderr.rstrip().endswith("records/s)")


def test_export_several_campaigns_in_order(fake: FakeAmeyo, configured: list[Any]) -> None:
    """Repeated --campaign-id exports each campaign in turn."""
    result = run("export", "--campaign-id", "8", "--campaign-id", "6")
    assert result.exit_code == 0, result.output
    ids = [row[0] for row in csv.reader(io.StringIO(result.stdout))][1:]
    assert ids == [cb.customer_callback_id for cb in in_campaign(fake, 8, 6)]


def test_export_tenant_gets_every_campaign(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--tenant exports the tenant-wide list."""
    result = run("export", "--tenant", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["customerCallbackId"] for line in result.stdout.splitlines()]
    assert ids == [cb.customer_callback_id for cb in fake.callbacks]
    assert {r.endpoint for r in fake.requests} == {"tenant"}


@pytest.mark.parametrize("args", [[], ["--tenant", "--campaign-id", "6"]])
def test_export_needs_exactly_one_source(
    fake: FakeAmeyo, configured: list[Any], args: list[str]
) -> None:
    """Neither or both of --campaign-id and --tenant: exit 2."""
    result = run("export", *args)
    assert result.exit_code == 2
    assert "--campaign-id" in result.stderr
    assert fake.requests == []


def test_user_filter_is_sent_and_applied(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--user-id (repeated) exports only those agents' callbacks."""
    result = run("export", "--campaign-id", "6", "--user-id", "asha", "--user-id", "ravi")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))[1:]
    expected = [cb for cb in in_campaign(fake, 6) if cb.user_id in ("asha", "ravi")]
    assert [r[0] for r in rows] == [cb.customer_callback_id for cb in expected]
    assert fake.requests[0].params("userIds") == ["asha", "ravi"]


def test_dates_become_epoch_ms_bounds(fake: FakeAmeyo, configured: list[Any]) -> None:
    """A date is midnight UTC (a --*-to date: 23:59:59.999); offsets and epoch ms are exact."""
    result = run(
        "export",
        "--campaign-id",
        "6",
        "--added-from",
        "2024-01-05",
        "--added-to",
        "2024-01-10",
        "--scheduled-from",
        "2024-01-05T05:30:00+05:30",
        "--scheduled-to",
        "1800000000000",
    )
    assert result.exit_code == 0, result.output
    request = fake.requests[0]
    jan5 = datetime(2024, 1, 5, tzinfo=timezone.utc)
    jan11 = datetime(2024, 1, 11, tzinfo=timezone.utc)
    assert request.params("fromDateAdded") == [str(ms(jan5))]
    assert request.params("toDateAdded") == [str(ms(jan11) - 1)]
    assert request.params("fromDateScheduled") == [str(ms(jan5))]
    assert request.params("toDateScheduled") == ["1800000000000"]
    rows = list(csv.reader(io.StringIO(result.stdout)))[1:]
    expected = [
        cb
        for cb in in_campaign(fake, 6)
        if jan5 <= cb.date_added < jan11 and cb.callback_time >= jan5
    ]
    assert [r[0] for r in rows] == [cb.customer_callback_id for cb in expected]
    assert expected  # the window is not empty


def test_z_suffix_means_utc(fake: FakeAmeyo, configured: list[Any]) -> None:
    """'...Z' is accepted as UTC."""
    result = run("export", "--campaign-id", "6", "--added-to", "2024-01-02T03:04:05.006Z")
    assert result.exit_code == 0, result.output
    bound = datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)
    assert fake.requests[0].params("toDateAdded") == [str(ms(bound))]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-01-05T10:00:00", "has no UTC offset, so it is ambiguous"),
        ("2024-01-05 10:00", "has no UTC offset, so it is ambiguous"),
        ("yesterday", "is not a date"),
        ("2024-13-01", "is not a date"),
        ("05/01/2024", "is not a date"),
    ],
)
def test_bad_dates_are_usage_errors(
    fake: FakeAmeyo, configured: list[Any], value: str, message: str
) -> None:
    """A time without an offset, or not a date at all: exit 2 naming the flag; nothing sent."""
    result = run("export", "--campaign-id", "6", "--scheduled-from", value)
    assert result.exit_code == 2
    assert "Invalid value for '--scheduled-from'" in result.stderr
    assert message in result.stderr
    assert fake.requests == []


def test_range_backwards_is_a_usage_error(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--added-from after --added-to: exit 2 naming both flags."""
    result = run("export", "--tenant", "--added-from", "2024-02-01", "--added-to", "2024-01-01")
    assert result.exit_code == 2
    assert (
        "--added-from (2024-02-01T00:00:00.000Z) is after --added-to (2024-01-01T23:59:59.999Z)"
        in result.stderr
    )
    assert fake.requests == []


def test_max_items_caps_the_total(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--max-items caps the records across campaigns."""
    n6 = len(in_campaign(fake, 6))
    result = run("export", "--campaign-id", "6", "--campaign-id", "7", "--max-items", str(n6 + 5))
    assert result.exit_code == 0, result.output
    ids = [row[0] for row in csv.reader(io.StringIO(result.stdout))][1:]
    assert ids == [cb.customer_callback_id for cb in in_campaign(fake, 6, 7)[: n6 + 5]]


@pytest.mark.parametrize("prefetch", [1, 3])
def test_prefetch_bounds_requests_in_flight(
    configured: list[Any], monkeypatch: pytest.MonkeyPatch, prefetch: int
) -> None:
    """--prefetch N puts at most (and here exactly) N page requests in flight."""
    # 50 ms a page: every request is sent before the first answer lands, even on
    # a loaded machine (at 5 ms, like the deletes below, a worker could be late).
    big = FakeAmeyo.seeded(1200, latency=0.05)
    monkeypatch.setattr(
        _config,
        "build_client",
        lambda c: AmeyoCallbacksClient(
            c.base_url, transport=httpx.ASGITransport(app=big), **_config.client_options(c)
        ),
    )
    result = run("export", "--campaign-id", "6", "--prefetch", str(prefetch))
    assert result.exit_code == 0, result.output
    assert big.max_concurrency == prefetch


def test_server_outage_mid_export_keeps_progress_and_resume_finishes(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """A 503 on the third page: exit 1, no output file; --resume then writes each record once."""
    big = FakeAmeyo.seeded(1000)
    fake.add(*big.callbacks[300:])
    fake.script("list", None, None, NO_WAIT_503)
    out = tmp_path / "callbacks.csv"
    args = ["export", "--campaign-id", "6", "-o", str(out), "--retries", "0", "--prefetch", "1"]
    result = run(*args)
    assert result.exit_code == 1
    assert "503" in result.stderr
    assert "re-run the same command with --resume to continue" in result.stderr
    assert len([r for r in fake.requests if r.endpoint == "list"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".callbacks.csv.partial",
        ".callbacks.csv.progress.json",
    ]
    fake.clear_requests()
    again = run(*args, "--resume")
    assert again.exit_code == 0, again.output
    resumed_at = int(again.stderr.split("(resumed at record ")[1].split(")")[0])
    assert 100 < resumed_at < len(in_campaign(fake, 6))  # two pages were kept
    assert read_csv(out)[1:] == [expected_row(cb) for cb in in_campaign(fake, 6)]
    first = fake.requests[0]
    assert first.params("fromDateAdded") != []  # it did not start over: it seeks from there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["callbacks.csv"]


def test_stale_partial_export_is_reported_and_not_reused(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """Without --resume, leftovers of a stopped run are reported, and the export starts over."""
    fake.script("tenant", None, NO_WAIT_503)
    out = tmp_path / "c.jsonl"
    args = ["export", "--tenant", "-o", str(out), "--retries", "0", "--prefetch", "1"]
    assert run(*args).exit_code == 1
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert (
        f"an unfinished export of {out} from an earlier run (100 records) is not reused"
        in again.stderr
    )
    ids = [json.loads(x)["customerCallbackId"] for x in out.read_text().splitlines()]
    assert ids == [cb.customer_callback_id for cb in fake.callbacks]


def test_resume_refuses_other_options_and_stdout(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--resume of a run made with other filters is exit 2; --resume to stdout is exit 2."""
    fake.script("tenant", None, NO_WAIT_503)
    out = tmp_path / "c.csv"
    args = ["export", "--tenant", "-o", str(out), "--retries", "0", "--prefetch", "1"]
    assert run(*args).exit_code == 1
    other = run(*args, "--user-id", "asha", "--resume")
    assert other.exit_code == 2
    assert "was made with other filters, format or --max-items" in other.stderr
    to_stdout = run("export", "--tenant", "--resume")
    assert to_stdout.exit_code == 2
    assert "--resume needs --output FILE" in to_stdout.stderr


def test_failed_export_keeps_the_previous_file(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """A failed export over an existing file leaves that file as it was."""
    out = tmp_path / "callbacks.jsonl"
    out.write_text("previous\n")
    fake.script("list", NO_WAIT_503)
    result = run("export", "--campaign-id", "6", "-o", str(out), "--retries", "0")
    assert result.exit_code == 1
    assert out.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


def test_ctrl_c_mid_export_exits_130_and_resume_finishes(
    fake: FakeAmeyo, configured: list[Any], transports: list[Any], tmp_path: Path
) -> None:
    """Ctrl-C during the walk: exit 130, no output file; --resume completes it, each record once."""
    transports.append(lambda inner: Interrupting(inner, method="POST", at=2))
    out = tmp_path / "callbacks.csv"
    result = run("export", "--tenant", "-o", str(out), "--prefetch", "1")
    assert result.exit_code == 130
    assert f"interrupted: {out} was not written (progress kept: --resume continues)" in (
        result.stderr
    )
    assert not out.exists()
    transports.clear()
    again = run("export", "--tenant", "-o", str(out), "--prefetch", "1", "--resume")
    assert again.exit_code == 0, again.output
    assert read_csv(out)[1:] == [expected_row(cb) for cb in fake.callbacks]


def test_output_in_a_missing_directory_is_a_usage_error(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--output in a directory that does not exist: exit 2, nothing sent."""
    result = run("export", "--campaign-id", "6", "-o", str(tmp_path / "no" / "out.csv"))
    assert result.exit_code == 2
    assert "cannot write" in result.stderr
    assert fake.requests == []


def test_progress_bar_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, configured: list[Any], tmp_path: Path
) -> None:
    """stderr a terminal: a progress display with records and pages; otherwise none."""
    plain = run("export", "--campaign-id", "6", "-o", str(tmp_path / "a.csv"))
    on_a_wide_terminal(monkeypatch)
    shown = run("export", "--campaign-id", "6", "-o", str(tmp_path / "b.csv"))
    assert plain.exit_code == shown.exit_code == 0
    assert "exporting" not in plain.stderr
    assert "exporting" in shown.stderr
    assert "records" in shown.stderr
    assert "pages" in shown.stderr
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


# ----------------------------------------------------------------------
# delete


def write_ids(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def summary_counts(stderr: str) -> dict[str, int]:
    counts = {}
    for line in stderr.splitlines():
        for name in ("deleted", "not found", "failed", "not attempted"):
            if line.strip().startswith(name) and line.strip()[len(name) :].strip().isdigit():
                counts[name] = int(line.strip()[len(name) :].strip().replace(",", ""))
    return counts


def test_delete_ids_file_skips_blanks_and_comments(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--ids-file: listed ids deleted; blanks and # comments skipped; unknown ids 'not found'."""
    victims = [cb.customer_callback_id for cb in fake.callbacks[:3]]
    ids = write_ids(
        tmp_path / "ids.txt",
        ["# to delete", victims[0], "", f"  {victims[1]}  ", "#" + victims[2], "d806-0-cm-0"],
    )
    result = run("delete", "--ids-file", str(ids), "--yes")
    assert result.exit_code == 0, result.output
    assert victims[0] not in fake
    assert victims[1] not in fake
    assert victims[2] in fake
    assert summary_counts(result.stderr) == {
        "deleted": 2,
        "not found": 1,
        "failed": 0,
        "not attempted": 0,
    }


def test_delete_ids_from_stdin_needs_yes(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--ids-file -: without --yes exit 2 (stdin holds the ids); with it, they are deleted."""
    victims = [cb.customer_callback_id for cb in fake.callbacks[:4]]
    refused = run("delete", "--ids-file", "-", input="\n".join(victims))
    assert refused.exit_code == 2
    assert "pass --yes" in refused.stderr
    assert fake.requests == []
    done = run("delete", "--ids-file", "-", "--yes", input="\n".join(victims))
    assert done.exit_code == 0, done.output
    assert not any(v in fake for v in victims)


def test_ids_reader_is_lazy() -> None:
    """The ids reader takes one line from its stream per id asked for."""
    stream = io.StringIO("a\n\n# c\nb\nc\n")
    reader = IdsReader(stream, "ids")
    ids = iter(reader)
    assert next(ids) == "a"
    assert stream.tell() == 2
    assert next(ids) == "b"
    assert stream.tell() == len("a\n\n# c\nb\n")
    assert reader.read == 2


def test_unreadable_ids_file_is_a_usage_error(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """A missing file or a directory as --ids-file: exit 2, nothing sent."""
    for path in (tmp_path / "missing.txt", tmp_path):
        result = run("delete", "--ids-file", str(path), "--yes")
        assert result.exit_code == 2
        assert "Invalid value for '--ids-file'" in result.stderr
    assert fake.requests == []


def test_ids_file_that_is_not_text_is_refused_before_any_delete(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """Bytes that are not UTF-8: exit 2 naming the line, and no delete is sent at all."""
    victim = fake.callbacks[0].customer_callback_id
    path = tmp_path / "ids.txt"
    path.write_bytes(victim.encode() + b"\n" + b"x" * 10000 + b"\n\xff\xfe\n")
    result = run("delete", "--ids-file", str(path), "--yes")
    assert result.exit_code == 2
    assert f"{path} is not UTF-8 text at or after line 2" in result.stderr
    assert victim in fake
    assert fake.requests == []


def test_dry_run_of_an_ids_file_sends_nothing(
    fake: FakeAmeyo, in_process: list[Any], tmp_path: Path
) -> None:
    """--dry-run with --ids-file counts the ids and shows the first ten; needs no server."""
    ids = [f"id-{i}" for i in range(25)]
    path = write_ids(tmp_path / "ids.txt", ["# header", *ids])
    result = run("delete", "--ids-file", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"dry run: {path} lists 25 distinct ids to delete (nothing was sent):"
    assert [line.strip() for line in lines[1:11]] == ids[:10]
    assert lines[11].strip() == "... and 15 more ids"
    assert fake.requests == []
    assert in_process == []  # no client was even built


def test_dry_run_of_a_filter_lists_matches_and_deletes_nothing(
    fake: FakeAmeyo, configured: list[Any]
) -> None:
    """--dry-run with a filter walks the list, says how many match, deletes none."""
    before = len(fake)
    result = run("delete", "--campaign-id", "6", "--user-id", "asha", "--dry-run")
    assert result.exit_code == 0, result.output
    matches = [cb for cb in in_campaign(fake, 6) if cb.user_id == "asha"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"dry run: {len(matches)} callbacks match")
    assert [line.strip() for line in lines[1 : 1 + min(10, len(matches))]] == [
        cb.customer_callback_id for cb in matches[:10]
    ]
    assert deletes(fake) == []
    assert len(fake) == before


def test_delete_by_campaign_filter(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--campaign-id with --user-id deletes exactly the matching callbacks."""
    matches = {cb.customer_callback_id for cb in in_campaign(fake, 6) if cb.user_id == "asha"}
    others = fake.ids() - matches
    result = run("delete", "--campaign-id", "6", "--user-id", "asha", "--yes")
    assert result.exit_code == 0, result.output
    assert fake.ids() == others
    assert summary_counts(result.stderr)["deleted"] == len(matches)


def test_delete_tenant_filter(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--tenant with a filter deletes the matches across campaigns."""
    matches = {cb.customer_callback_id for cb in fake.callbacks if cb.user_id == "ravi"}
    result = run("delete", "--tenant", "--user-id", "ravi", "--yes")
    assert result.exit_code == 0, result.output
    assert not matches & fake.ids()
    assert len({cb.campaign_id for cb in fake.callbacks}) == 3
    assert {r.endpoint for r in fake.requests} == {"tenant", "delete"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say which callbacks to delete"),
        (["--campaign-id", "6", "--tenant"], "say which callbacks to delete"),
        (["--ids-file", "-", "--user-id", "asha"], "the filters apply to --campaign-id"),
        (["--campaign-id", "0"], "Invalid value for '--campaign-id'"),
        (["--campaign-id", "6", "--concurrency", "0"], "Invalid value for '--concurrency'"),
    ],
)
def test_delete_usage_errors(
    fake: FakeAmeyo, configured: list[Any], args: list[str], message: str
) -> None:
    """Missing or conflicting sources, filters on an ids file, bad numbers: exit 2."""
    result = run("delete", *args, "--yes", input="")
    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.requests == []


def test_delete_without_a_terminal_needs_yes(fake: FakeAmeyo, configured: list[Any]) -> None:
    """stdin not a terminal and no --yes: refuse with exit 2 and say to pass --yes."""
    result = run("delete", "--campaign-id", "6")
    assert result.exit_code == 2
    assert "stdin is not a terminal. Pass --yes" in result.stderr
    assert fake.requests == []


@pytest.mark.parametrize(("answer", "exit_code"), [("n\n", 1), ("y\n", 0)])
def test_delete_asks_for_confirmation_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeAmeyo,
    configured: list[Any],
    answer: str,
    exit_code: int,
) -> None:
    """On a terminal the prompt shows the filter as read, the count and the backup hint."""
    monkeypatch.setattr(_ui, "stdin_is_interactive", lambda: True)
    matches = {cb.customer_callback_id for cb in in_campaign(fake, 7) if cb.user_id == "li"}
    result = run("delete", "--campaign-id", "7", "--user-id", "li", input=answer)
    assert result.exit_code == exit_code, result.output
    prompt = (
        f"{len(matches)} callbacks match campaign 7; users li on {FAKE_BASE_URL}.\n"
        "No backup: add --backup FILE to keep each deleted record "
        "(as export --format jsonl writes it).\n"
        f"Delete these {len(matches)} callbacks? [y/N]: "
    )
    assert result.stderr.startswith(prompt)
    if exit_code:
        assert "nothing was deleted" in result.stderr
        assert deletes(fake) == []
    else:
        assert not matches & fake.ids()


def test_ctrl_c_at_the_confirmation_exits_130_deleting_nothing(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any]
) -> None:
    """Ctrl-C at the prompt: exit 130 (not click's 'Aborted!' 1), nothing deleted."""
    monkeypatch.setattr(_ui, "stdin_is_interactive", lambda: True)

    def interrupted(*_args: Any, **_kwargs: Any) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(click, "confirm", interrupted)
    result = run("delete", "--campaign-id", "7")
    assert result.exit_code == 130, result.output
    assert "nothing was deleted" in result.stderr
    assert deletes(fake) == []


def test_failures_exit_1_and_failed_out_reruns_them(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """Failed deletes: exit 1, listed in --failed-out, and re-running that file finishes the job."""
    victims = [cb.customer_callback_id for cb in fake.callbacks[:6]]
    ids = write_ids(tmp_path / "ids.txt", victims)
    fake.script("delete", None, NO_WAIT_503, None, NO_WAIT_503)
    failed = tmp_path / "failed.txt"
    first = run(
        "delete",
        "--ids-file",
        str(ids),
        "--yes",
        "--retries",
        "0",
        "--concurrency",
        "1",
        "--failed-out",
        str(failed),
    )
    assert first.exit_code == 1
    assert summary_counts(first.stderr) == {
        "deleted": 4,
        "not found": 0,
        "failed": 2,
        "not attempted": 0,
    }
    assert f"failed {victims[1]}: " in first.stderr
    listed = [x for x in failed.read_text().splitlines() if not x.startswith("#")]
    assert listed == [victims[1], victims[3]]
    again = run("delete", "--ids-file", str(failed), "--yes")
    assert again.exit_code == 0, again.output
    assert not set(victims) & fake.ids()


def test_concurrency_bounds_deletes_in_flight(
    monkeypatch: pytest.MonkeyPatch, configured: list[Any], fake: FakeAmeyo, tmp_path: Path
) -> None:
    """--concurrency N keeps N deletes in flight."""
    # 50 ms a delete (four rounds): at 5 ms, under coverage with a CPU hog, one
    # run in 15 had only 5 of the 6 workers in flight at once.
    fake.latency = 0.05
    ids = write_ids(tmp_path / "ids.txt", [cb.customer_callback_id for cb in fake.callbacks[:24]])
    result = run("delete", "--ids-file", str(ids), "--yes", "--concurrency", "6")
    assert result.exit_code == 0, result.output
    assert fake.max_concurrency == 6


def deletes_at_once(fake: FakeAmeyo) -> int:
    """The most DELETEs the fake served at the same time (the listing's reads not counted)."""
    events = sorted(
        (moment, step)
        for r in fake.requests
        if r.endpoint == "delete"
        for moment, step in ((r.started, 1), (r.ended, -1))
    )
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def shown_in_flight(stderr: str) -> list[tuple[int, int]]:
    """Every ``in flight N/LIMIT`` the progress display drew."""
    return [(int(a), int(b)) for a, b in re.findall(r"in flight (\d+)/(\d+)", stderr)]


def test_fixed_concurrency_progress_shows_in_flight_over_the_limit(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any]
) -> None:
    """On a terminal the bar shows 'in flight now/limit'; a fixed --concurrency is the limit."""
    on_a_wide_terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "120")
    fake.latency = 0.002
    result = run("delete", "--campaign-id", "6", "--yes", "--concurrency", "6", "--json")
    assert result.exit_code == 0, result.output
    shown = shown_in_flight(result.stderr.split("outcome")[0])
    assert shown, result.stderr
    assert {limit for _, limit in shown} == {6}
    assert all(now <= 6 for now, _ in shown)
    summary = json.loads(result.stdout)
    assert (summary["concurrency"], summary["limit"]) == (6, 6)


def test_concurrency_auto_follows_the_server_within_max_concurrency(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any]
) -> None:
    """--concurrency auto: starts at 1, climbs (never past --max-concurrency), deletes all."""
    on_a_wide_terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "120")
    fake.latency = 0.005
    victims = {cb.customer_callback_id for cb in in_campaign(fake, 6)}
    result = run(
        "delete", "--campaign-id", "6", "--yes", "--concurrency", "auto",
        "--max-concurrency", "3", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not victims & fake.ids()
    summary = json.loads(result.stdout)
    assert summary["counts"]["deleted"] == len(victims)
    assert summary["concurrency"] == "auto"
    assert 1 <= summary["limit"] <= 3
    # the adaptive pool: more than one at once (it climbed from 1), never above the bound
    assert 1 < deletes_at_once(fake) <= 3
    shown = shown_in_flight(result.stderr.split("outcome")[0])
    limits = {limit for _, limit in shown}
    assert limits
    assert limits <= {1, 2, 3}
    assert all(now <= limit for now, limit in shown)


def test_concurrency_auto_is_case_blind_and_defaults_to_the_clients_bound(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """'AUTO' is auto; without --max-concurrency the client keeps its own bound (32)."""
    ids = write_ids(tmp_path / "ids.txt", [cb.customer_callback_id for cb in fake.callbacks[:20]])
    result = run("delete", "--ids-file", str(ids), "--yes", "--concurrency", "AUTO", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["concurrency"] == "auto"
    assert summary["counts"]["deleted"] == 20
    assert configured[-1].max_concurrency is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "fast"], "neither a number of deletes"),
        (["--concurrency", "0"], "not in the range 1 to 100"),
        (["--concurrency", "101"], "not in the range 1 to 100"),
        (["--max-rate", "0"], "--max-rate"),
        (["--max-rate", "-2"], "--max-rate"),
        (["--max-rate", "fast"], "--max-rate"),
        (["--max-concurrency", "4"], "--max-concurrency bounds --concurrency auto"),
        (["--concurrency", "auto", "--max-concurrency", "0"], "--max-concurrency"),
        (["--concurrency", "auto", "--max-concurrency", "101"], "--max-concurrency"),
    ],
)
def test_bad_limits_are_usage_errors_sending_nothing(
    fake: FakeAmeyo, configured: list[Any], args: list[str], message: str
) -> None:
    """A bad --concurrency, --max-concurrency or --max-rate: exit 2, not one request."""
    result = run("delete", "--campaign-id", "6", "--yes", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not fake.requests
    assert fake.ids() >= {cb.customer_callback_id for cb in in_campaign(fake, 6)}


@pytest.mark.parametrize(("typed", "offered"), [("a", ["plain,auto"]), ("4", [])])
def test_concurrency_completes_auto(typed: str, offered: list[str]) -> None:
    """Shell completion of --concurrency offers 'auto' (and nothing for a number)."""
    env = {
        "_AMEYO_CALLBACKS_COMPLETE": "bash_complete",
        "COMP_WORDS": f"ameyo-callbacks delete --concurrency {typed}",
        "COMP_CWORD": "3",
    }
    result = CliRunner().invoke(cli, [], prog_name="ameyo-callbacks", env=env)
    assert result.exit_code == 0
    assert result.output.split() == offered


def test_export_refuses_a_zero_max_rate(fake: FakeAmeyo, configured: list[Any]) -> None:
    """export --max-rate 0: exit 2 before any request."""
    result = run("export", "--campaign-id", "6", "--max-rate", "0")
    assert result.exit_code == 2
    assert "--max-rate" in result.stderr
    assert not fake.requests


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch, in_process: list[Any]) -> list[AmeyoCallbacksClient]:
    """The clients the commands built (through the in-process seam)."""
    built: list[AmeyoCallbacksClient] = []
    inner = _config.build_client

    def build(connection: _config.Connection) -> AmeyoCallbacksClient:
        client = inner(connection)
        built.append(client)
        return client

    monkeypatch.setattr(_config, "build_client", build)
    return built


def test_max_rate_before_the_command_paces_the_export(
    fake: FakeAmeyo, configured: list[Any], clients: list[AmeyoCallbacksClient]
) -> None:
    """--max-rate before the command name reaches export's client; default: unpaced."""
    plain = run("export", "--campaign-id", "7")
    assert plain.exit_code == 0, plain.output
    assert clients[-1].limits.max_rate is None
    paced = run("--max-rate", "25", "export", "--campaign-id", "7", "--prefetch", "1")
    assert paced.exit_code == 0, paced.output
    assert clients[-1].limits.max_rate == 25.0
    assert configured[-1].max_rate == 25.0


def test_max_rate_spaces_the_deletes(
    fake: FakeAmeyo, configured: list[Any], clients: list[AmeyoCallbacksClient], tmp_path: Path
) -> None:
    """delete --max-rate 40 at concurrency 8: 12 deletes arrive spread over >= 11/40 s."""
    victims = [cb.customer_callback_id for cb in fake.callbacks[:12]]
    ids = write_ids(tmp_path / "ids.txt", victims)
    result = run("delete", "--ids-file", str(ids), "--yes", "--max-rate", "40")
    assert result.exit_code == 0, result.output
    assert clients[-1].limits.max_rate == 40.0
    starts = sorted(r.started for r in fake.requests if r.endpoint == "delete")
    assert len(starts) == 12
    assert starts[-1] - starts[0] >= 0.9 * 11 / 40
    assert not set(victims) & fake.ids()


def test_ctrl_c_mid_delete_exits_130_with_the_summary(
    fake: FakeAmeyo, configured: list[Any], transports: list[Any], tmp_path: Path
) -> None:
    """Ctrl-C at the 5th delete: exit 130; the summary and --failed-out account for every id."""
    transports.append(lambda inner: Interrupting(inner, method="DELETE", at=5))
    victims = [cb.customer_callback_id for cb in fake.callbacks[:10]]
    ids = write_ids(tmp_path / "ids.txt", victims)
    failed = tmp_path / "failed.txt"
    result = run(
        "delete",
        "--ids-file",
        str(ids),
        "--yes",
        "--concurrency",
        "1",
        "--failed-out",
        str(failed),
    )
    assert result.exit_code == 130
    assert summary_counts(result.stderr) == {
        "deleted": 4,
        "not found": 0,
        "failed": 1,
        "not attempted": 5,
    }
    assert "interrupted" in result.stderr
    assert not set(victims[:4]) & fake.ids()
    listed = [x for x in failed.read_text().splitlines() if not x.startswith("#")]
    assert listed == victims[4:]


def test_delete_progress_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any]
) -> None:
    """stderr a terminal: a delete progress display with its counters; otherwise none."""
    plain = run("delete", "--campaign-id", "6", "--user-id", "asha", "--yes")
    on_a_wide_terminal(monkeypatch)
    shown = run("delete", "--campaign-id", "7", "--user-id", "asha", "--yes")
    assert plain.exit_code == shown.exit_code == 0
    assert "deleting" not in plain.stderr
    assert "deleting" in shown.stderr
    assert "not found" in shown.stderr.split("outcome")[0]


def test_walk_failure_while_listing_deletes_nothing_and_exits_1(
    fake: FakeAmeyo, configured: list[Any]
) -> None:
    """A list error while finding matches: no delete sent, one 'Error:' line, exit 1."""
    fake.script("list", NO_WAIT_503)
    result = run("delete", "--campaign-id", "6", "--yes", "--retries", "0")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: ")
    assert "503" in result.stderr
    assert deletes(fake) == []


@pytest.mark.parametrize("flag", ["--failed-out", "--backup", "--not-found-out"])
def test_outputs_that_cannot_be_written_are_refused_before_any_request(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path, flag: str
) -> None:
    """--failed-out, --backup, --not-found-out in a missing directory: exit 2, nothing sent."""
    target = tmp_path / "missing" / "f"
    result = run("delete", "--campaign-id", "6", "--yes", flag, str(target))
    assert result.exit_code == 2
    assert f"cannot write {flag} {target}: the directory" in result.stderr
    assert fake.requests == []


# ----------------------------------------------------------------------
# Dates, parsed by rules of our own


JAN31 = ms(datetime(2024, 1, 31, tzinfo=timezone.utc))
DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("text", "end_of_day", "expected"),
    [
        ("2024-01-31", False, JAN31),
        ("2024-01-31", True, JAN31 + DAY_MS - 1),
        ("20240131", False, JAN31),
        ("20240131", True, JAN31 + DAY_MS - 1),
        ("2024-01-31T09:30:00+05:30", False, JAN31 + 4 * 3_600_000),
        ("2024-01-31T09:30+0530", False, JAN31 + 4 * 3_600_000),
        ("2024-01-31 04:00:00Z", False, JAN31 + 4 * 3_600_000),
        ("2024-01-31t04:00:00z", False, JAN31 + 4 * 3_600_000),
        ("2024-01-31T04:00:00-01", False, JAN31 + 5 * 3_600_000),
        ("2024-01-31T00:00:00.5Z", False, JAN31 + 500),
        ("2024-01-31T00:00:00.123456Z", False, JAN31 + 124),  # a from-bound rounds up
        ("2024-01-31T00:00:00.123456Z", True, JAN31 + 123),  # a to-bound rounds down
        ("1706693400000", False, 1706693400000),
        ("100000000000", False, 10**11),
        ("  2024-01-31  ", False, JAN31),
    ],
)
def test_date_forms_and_their_exact_bounds(text: str, end_of_day: bool, expected: int) -> None:
    """Each accepted form becomes the exact epoch millisecond; fractions round inward."""
    assert parse_bound(text, end_of_day=end_of_day) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1706693400", "1706693400 looks like epoch seconds: pass 1706693400000 or 2024-01-31"),
        ("1706693400000000", "looks like epoch microseconds: pass 1706693400000 or 2024-01-31"),
        ("20241310", "'20241310' is not a date"),
        ("20240230", "'20240230' is not a date"),
        ("99999999999", "is not a plausible time"),
        ("95617584000000", "is not a plausible time"),  # year 5000 in ms
        ("12345", "is not a plausible time"),
        ("-5", "is not a plausible time"),
        ("2024-01-31T09:30:00", "has no UTC offset, so it is ambiguous"),
        ("2024-01-31T09:30:00+24:00", "impossible UTC offset"),
        ("2024-01-31T25:00:00Z", "is not a date and time"),
        ("2024-1-31", "is not a date"),
        ("31/01/2024", "is not a date"),
    ],
)
def test_implausible_or_ambiguous_dates_are_refused_with_a_hint(text: str, message: str) -> None:
    """Epoch seconds, microseconds, bad YYYYMMDD, implausible integers: refused, never guessed."""
    with pytest.raises(DateError) as exc:
        parse_bound(text, end_of_day=False)
    assert message in str(exc.value)


def test_epoch_seconds_on_a_destructive_run_is_refused_before_any_request(
    fake: FakeAmeyo, configured: list[Any]
) -> None:
    """delete --scheduled-from 1706693400: exit 2 with the hint; no list, no delete sent."""
    result = run("delete", "--campaign-id", "6", "--scheduled-from", "1706693400", "--yes")
    assert result.exit_code == 2
    assert "1706693400 looks like epoch seconds: pass 1706693400000 or 2024-01-31" in (
        result.stderr
    )
    assert fake.requests == []


def test_yyyymmdd_is_the_day_not_milliseconds(fake: FakeAmeyo, configured: list[Any]) -> None:
    """--scheduled-from 20240110 matches what 2024-01-10 matches, and the dry run says so."""
    compact = run("delete", "--campaign-id", "6", "--scheduled-from", "20240110", "--dry-run")
    dashed = run("delete", "--campaign-id", "6", "--scheduled-from", "2024-01-10", "--dry-run")
    assert compact.exit_code == dashed.exit_code == 0
    assert compact.stdout == dashed.stdout
    jan10 = datetime(2024, 1, 10, tzinfo=timezone.utc)
    n = len([cb for cb in in_campaign(fake, 6) if cb.callback_time >= jan10])
    assert compact.stdout.splitlines()[0] == (
        f"dry run: {n} callbacks match campaign 6; scheduled from 2024-01-10T00:00:00.000Z "
        "and would be deleted (nothing was deleted):"
    )
    assert 0 < n < len(in_campaign(fake, 6))


def test_date_parser_accepts_the_same_forms_on_every_python(tmp_path: Path) -> None:
    """The parser gives the same answers on each installed Python 3.10 to 3.13."""
    interpreters = sorted(Path.home().glob(".pyenv/versions/3.1[0-3]*/bin/python3"))
    if len(interpreters) < 2:
        pytest.skip("fewer than two of Python 3.10-3.13 are installed under ~/.pyenv")
    probes = [
        "2024-01-31",
        "20240131",
        "2024-01-31T09:30:00+05:30",
        "2024-01-31T09:30Z",
        "2024-01-31 09:30:00.123456+0530",
        "2024-01-31T09:30:00",  # refused everywhere (fromisoformat accepts it)
        "2024-W05-3",  # ISO week date: fromisoformat accepts it on 3.11+, we never do
        "20240131T093000Z",  # basic format: fromisoformat 3.11+ only, we never do
        "1706693400",
        "1706693400000",
    ]
    script = tmp_path / "probe.py"
    script.write_text(
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('d', sys.argv[1])\n"
        "d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)\n"
        "out = []\n"
        "for text in json.loads(sys.argv[2]):\n"
        "    try: out.append(d.parse_bound(text, end_of_day=False))\n"
        "    except d.DateError as e: out.append(str(e))\n"
        "print(json.dumps(out))\n"
    )
    answers = {}
    for python in interpreters:
        done = subprocess.run(  # noqa: S603
            [str(python), str(script), str(PACKAGE / "cli" / "_dates.py"), json.dumps(probes)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        answers[python.parent.parent.name] = json.loads(done.stdout)
    first, *others = answers.values()
    assert all(other == first for other in others), answers
    assert isinstance(first[2], int)
    assert all(isinstance(answer, str) for answer in first[5:9])


# ----------------------------------------------------------------------
# ids files, backups, what the prompt and the dry run say


def test_trailing_comments_in_an_ids_file_are_ignored(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """'id  # note' is the id: the callback is deleted, not counted 'not found'."""
    victim = fake.callbacks[0].customer_callback_id
    path = write_ids(tmp_path / "ids.txt", [f"{victim}  # customer asked", "   # indented note"])
    result = run("delete", "--ids-file", str(path), "--yes")
    assert result.exit_code == 0, result.output
    assert victim not in fake
    assert summary_counts(result.stderr)["deleted"] == 1
    assert summary_counts(result.stderr)["not found"] == 0


def test_dry_run_counts_distinct_ids_and_reports_repeats(
    fake: FakeAmeyo, in_process: list[Any], tmp_path: Path
) -> None:
    """An ids file listing 3 ids on 5 lines: the dry run says 3 distinct, 2 repeated lines."""
    path = write_ids(tmp_path / "ids.txt", ["a", "b", "a  # again", "c", "b"])
    result = run("delete", "--ids-file", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"dry run: {path} lists 3 distinct ids to delete, 2 more lines repeat an id "
        "(deleted once) (nothing was sent):"
    )
    assert [x.strip() for x in result.stdout.splitlines()[1:]] == ["a", "b", "c"]


@pytest.mark.parametrize("how", ["file", "stdin", "dry-run"])
def test_an_empty_ids_input_is_an_error(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path, how: str
) -> None:
    """Only blank lines and comments: exit 2 saying nothing is listed; no request."""
    path = write_ids(tmp_path / "ids.txt", ["# nothing here", "", "   "])
    if how == "stdin":
        result = run("delete", "--ids-file", "-", "--yes", input="# none\n\n")
    else:
        extra = "--dry-run" if how == "dry-run" else "--yes"
        result = run("delete", "--ids-file", str(path), extra)
    assert result.exit_code == 2
    assert "lists no callback ids" in result.stderr
    assert fake.requests == []


def test_not_found_ids_are_listed_in_a_file_and_the_json_summary(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--not-found-out FILE and --json both name the ids the server did not know."""
    victim = fake.callbacks[0].customer_callback_id
    path = write_ids(tmp_path / "ids.txt", [victim, "d806-0-cm-0", "d806-0-cm-1"])
    missing = tmp_path / "missing.txt"
    result = run(
        "delete", "--ids-file", str(path), "--yes", "--not-found-out", str(missing), "--json"
    )
    assert result.exit_code == 0, result.output
    listed = [x for x in missing.read_text().splitlines() if not x.startswith("#")]
    assert listed == ["d806-0-cm-0", "d806-0-cm-1"]
    summary = json.loads(result.stdout)
    assert summary["not_found"] == ["d806-0-cm-0", "d806-0-cm-1"]
    assert summary["counts"] == {"deleted": 1, "not_found": 2, "failed": 0, "not_attempted": 0}
    assert summary["files"] == {"not_found_out": str(missing)}


def test_backup_holds_every_deleted_record_in_wire_form(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--backup: one wire JSON line per deleted callback, record for record, as export writes."""
    converter = make_converter()
    matches = [cb for cb in in_campaign(fake, 6) if cb.user_id == "asha"]
    expected = {cb.customer_callback_id: converter.unstructure(cb) for cb in matches}
    backup = tmp_path / "backup.jsonl"
    result = run(
        "delete", "--campaign-id", "6", "--user-id", "asha", "--yes", "--backup", str(backup)
    )
    assert result.exit_code == 0, result.output
    saved = [json.loads(line) for line in backup.read_text().splitlines()]
    assert len(saved) == len(matches) > 0
    assert {r["customerCallbackId"]: r for r in saved} == expected
    assert not set(expected) & fake.ids()
    restored = [converter.structure(r, CustomerCallback) for r in saved]
    assert sorted(restored, key=lambda c: c.customer_callback_id) == sorted(
        matches, key=lambda c: c.customer_callback_id
    )


def test_backup_line_is_on_disk_before_its_delete_is_sent(
    fake: FakeAmeyo, configured: list[Any], transports: list[Any], tmp_path: Path
) -> None:
    """At every DELETE the server receives, the backup file already holds that record."""
    backup = tmp_path / "backup.jsonl"
    checked: list[str] = []

    class Checking(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "DELETE":
                cb_id = request.url.path.rsplit("/", 1)[-1]
                saved = {json.loads(x)["customerCallbackId"] for x in backup.read_text().split()}
                assert cb_id in saved
                checked.append(cb_id)
            return await self.inner.handle_async_request(request)

    transports.append(Checking)
    result = run("delete", "--tenant", "--user-id", "ravi", "--yes", "--backup", str(backup))
    assert result.exit_code == 0, result.output
    assert len(checked) == summary_counts(result.stderr)["deleted"] > 0


def test_backup_is_appended_to(fake: FakeAmeyo, configured: list[Any], tmp_path: Path) -> None:
    """An existing backup file keeps its lines; the new records come after them."""
    backup = tmp_path / "backup.jsonl"
    backup.write_text('{"customerCallbackId":"earlier"}\n')
    result = run(
        "delete", "--campaign-id", "8", "--user-id", "li", "--yes", "--backup", str(backup)
    )
    assert result.exit_code == 0, result.output
    lines = backup.read_text().splitlines()
    assert lines[0] == '{"customerCallbackId":"earlier"}'
    assert len(lines) == 1 + summary_counts(result.stderr)["deleted"]


def test_backup_with_an_ids_file_is_refused(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--backup needs the records a filter lists: with --ids-file it is exit 2, nothing sent."""
    path = write_ids(tmp_path / "ids.txt", [fake.callbacks[0].customer_callback_id])
    result = run("delete", "--ids-file", str(path), "--backup", str(tmp_path / "b"), "--yes")
    assert result.exit_code == 2
    assert "--backup saves the records a filter delete lists" in result.stderr
    assert fake.requests == []


def test_prompt_mentions_the_backup_when_given(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """With --backup the prompt says where each record goes; answering no deletes nothing."""
    monkeypatch.setattr(_ui, "stdin_is_interactive", lambda: True)
    backup = tmp_path / "b.jsonl"
    result = run(
        "delete", "--campaign-id", "7", "--added-from", "20240105", "--backup", str(backup),
        input="n\n",
    )  # fmt: skip
    assert result.exit_code == 1
    jan5 = datetime(2024, 1, 5, tzinfo=timezone.utc)
    n = len([cb for cb in in_campaign(fake, 7) if cb.date_added >= jan5])
    assert result.stderr.startswith(
        f"{n} callbacks match campaign 7; added from 2024-01-05T00:00:00.000Z on "
        f"{FAKE_BASE_URL}.\nEach record is appended to {backup} before its delete is sent.\n"
        f"Delete these {n} callbacks? [y/N]: n\nnothing was deleted\n"
    )
    assert deletes(fake) == []


def test_prompt_for_an_ids_file_counts_distinct_ids(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """The prompt of an ids file says how many distinct ids will be deleted."""
    monkeypatch.setattr(_ui, "stdin_is_interactive", lambda: True)
    victims = [cb.customer_callback_id for cb in fake.callbacks[:3]]
    path = write_ids(tmp_path / "ids.txt", [*victims, victims[0]])
    result = run("delete", "--ids-file", str(path), input="y\n")
    assert result.exit_code == 0, result.output
    assert f"{path} lists 3 distinct callback ids to delete on {FAKE_BASE_URL}." in result.stderr
    assert "Delete these 3 callbacks? [y/N]: y" in result.stderr
    assert not set(victims) & fake.ids()


def test_no_match_deletes_nothing_and_says_so(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any]
) -> None:
    """A filter matching nothing: no prompt, no delete, exit 0 and a line saying so."""
    monkeypatch.setattr(_ui, "stdin_is_interactive", lambda: True)
    result = run("delete", "--campaign-id", "6", "--user-id", "nobody")
    assert "Delete these" not in result.stderr
    assert result.exit_code == 0, result.output
    assert "no callbacks match campaign 6; users nobody: nothing to delete" in result.stderr
    assert deletes(fake) == []


def test_delete_shows_listing_then_a_bar_with_total(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any]
) -> None:
    """On a terminal: 'listing matches' with its count, then a bar: done/total, %, rate, ETA."""
    on_a_wide_terminal(monkeypatch)
    monkeypatch.setenv("COLUMNS", "120")  # the whole bar (80 columns trims the widest parts)
    n = len(in_campaign(fake, 6))
    result = run("delete", "--campaign-id", "6", "--yes")
    assert result.exit_code == 0, result.output
    shown = result.stderr.split("outcome")[0]
    assert "listing matches" in shown
    assert f"found {n}" in shown
    assert f"{n}/{n}" in shown
    assert "100%" in shown
    assert "ETA" in shown
    assert "/s" in shown
    assert "in flight 0/8" in shown  # the default --concurrency is the limit


def test_ids_file_delete_shows_a_bar_with_its_distinct_total(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """An ids file on a terminal: the bar's total is its distinct ids (repeats once)."""
    on_a_wide_terminal(monkeypatch)
    victims = [cb.customer_callback_id for cb in fake.callbacks[:5]]
    path = write_ids(tmp_path / "ids.txt", [*victims, victims[0], victims[1]])
    result = run("delete", "--ids-file", str(path), "--yes")
    assert result.exit_code == 0, result.output
    shown = result.stderr.split("outcome")[0]
    assert "5/5" in shown
    assert "100%" in shown
    assert summary_counts(result.stderr)["deleted"] == 5


# ----------------------------------------------------------------------
# --json, -q, options before the command, connection errors


def test_delete_json_summary_names_failures_with_reasons(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--json: one object on stdout with counts, failures and their reasons, files written."""
    victims = [cb.customer_callback_id for cb in fake.callbacks[:4]]
    path = write_ids(tmp_path / "ids.txt", victims)
    failed = tmp_path / "failed.txt"
    fake.script("delete", None, NO_WAIT_503)
    result = run(
        "delete", "--ids-file", str(path), "--yes", "--retries", "0", "--concurrency", "1",
        "--json", "--failed-out", str(failed),
    )  # fmt: skip
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()
    summary = json.loads(line)
    assert summary["counts"] == {"deleted": 3, "not_found": 0, "failed": 1, "not_attempted": 0}
    (failure,) = summary["failures"]
    assert failure["id"] == victims[1]
    assert "503" in failure["reason"]
    assert summary["files"] == {"failed_out": str(failed)}
    assert summary["exit_status"] == 1
    assert summary["ids_file"] == str(path)
    assert isinstance(summary["elapsed_s"], float)


def test_delete_json_dry_run_shows_the_filter_and_the_ids(
    fake: FakeAmeyo, configured: list[Any]
) -> None:
    """--json --dry-run: the filter as read, the count and every id, as one object."""
    result = run("delete", "--campaign-id", "8", "--user-id", "maria", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    matches = [cb.customer_callback_id for cb in in_campaign(fake, 8) if cb.user_id == "maria"]
    assert summary == {
        "command": "delete",
        "dry_run": True,
        "filter": ["campaign 8; users maria"],
        "matched": len(matches),
        "ids": matches,
    }


@pytest.mark.parametrize("to_stdout", [False, True])
def test_export_json_summary_goes_where_the_data_does_not(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path, to_stdout: bool
) -> None:
    """export --json: the summary on stdout for a file, on stderr when the data is on stdout."""
    out = tmp_path / "out.csv"
    args = ["export", "--campaign-id", "6", "--json", "-q"]
    result = run(*args) if to_stdout else run(*args, "-o", str(out))
    assert result.exit_code == 0, result.output
    n = len(in_campaign(fake, 6))
    text = result.stderr if to_stdout else result.stdout
    summary = json.loads(text)
    assert summary["records"] == n
    assert summary["files"] == ([] if to_stdout else [str(out)])
    assert summary["filter"] == ["campaign 6"]
    if to_stdout:
        assert len(result.stdout.splitlines()) == 1 + n
    else:
        assert result.stderr == ""


def test_quiet_prints_nothing_but_errors(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """-q: no export summary, no delete table; data still written, errors still shown."""
    exported = run("export", "--campaign-id", "6", "-o", str(tmp_path / "a.csv"), "-q")
    assert len(read_csv(tmp_path / "a.csv")) == 1 + len(in_campaign(fake, 6))
    deleted = run("-q", "delete", "--campaign-id", "6", "--user-id", "asha", "--yes")
    assert exported.exit_code == deleted.exit_code == 0
    assert exported.stderr == deleted.stderr == ""
    assert not [cb for cb in in_campaign(fake, 6) if cb.user_id == "asha"]
    fake.script("list", NO_WAIT_503)
    failed = run("-q", "export", "--campaign-id", "6", "--retries", "0")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Error: ")


def test_options_before_or_after_the_command(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[Any]
) -> None:
    """-v and connection options work before the command name; after it they win."""
    before = run(
        "-v", "--base-url", FAKE_BASE_URL, "--session-id", fake.session_id, "--retries", "1",
        "export", "--campaign-id", "7",
    )  # fmt: skip
    assert before.exit_code == 0, before.output
    assert "DEBUG" in before.stderr
    assert in_process[-1].retry.attempts == 2
    after = run(
        "--retries", "1", "--session-id", "stale",
        "export", "--campaign-id", "7", "--retries", "3", "--session-id", fake.session_id,
        "--base-url", FAKE_BASE_URL,
    )  # fmt: skip
    assert after.exit_code == 0, after.output
    assert in_process[-1].retry.attempts == 4
    assert "DEBUG" not in after.stderr
    both = run("-v", "export", "--campaign-id", "7", "-q")
    assert both.exit_code == 2
    assert "--verbose and --quiet" in both.stderr


@pytest.mark.integration
def test_unreachable_server_is_one_line_with_the_cause_and_what_to_check(
    tmp_path: Path,
) -> None:
    """A refused connection: one 'Error:' line naming the cause and --base-url; -v shows retries."""
    with closed_port() as port:  # a port on 127.0.0.1 nothing listens on, held
        args = ["export", "--campaign-id", "6", "--prefetch", "1"]
        args += ["--base-url", f"http://127.0.0.1:{port}", "--session-id", "s-1", "--retries", "3"]
        quiet = run(*args)
        loud = run(*args, "-v")
    assert quiet.exit_code == 1
    (line,) = quiet.stderr.splitlines()
    assert line.startswith("Error: ")
    assert "127.0.0.1" in line
    assert "(after 4 attempts) [see --base-url]" in line
    assert loud.exit_code == 1
    assert loud.stderr.count("retrying POST") == 3


# ----------------------------------------------------------------------
# Incremental exports (--state)


def added_at(fake: FakeAmeyo, cb_id: str, date_added: int, campaign: int = 6) -> None:
    fake.add(
        {
            "customerCallbackId": cb_id,
            "campaignId": campaign,
            "callbackTime": date_added + 3_600_000,
            "selfCallback": False,
            "userId": "asha",
            "phone": "+919800000000",
            "customerId": None,
            "dateAdded": date_added,
        }
    )


def jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["customerCallbackId"] for line in path.read_text().splitlines()]


def test_state_exports_only_what_was_added_since_the_last_run(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """--state: all at first; then exactly the callbacks added since, the boundary ms included."""
    state = tmp_path / "state.json"
    first = run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "1.jsonl"))
    assert first.exit_code == 0, first.output
    assert jsonl_ids(tmp_path / "1.jsonl") == [cb.customer_callback_id for cb in fake.callbacks]
    mark = json.loads(state.read_text())["watermark_ms"]
    assert mark == max(ms(cb.date_added) for cb in fake.callbacks)
    added_at(fake, "new-at-the-boundary", mark)  # the same millisecond as the newest seen
    added_at(fake, "new-later", mark + 1, campaign=7)
    added_at(fake, "new-much-later", mark + 86_400_000, campaign=8)
    second = run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "2.jsonl"))
    assert second.exit_code == 0, second.output
    assert sorted(jsonl_ids(tmp_path / "2.jsonl")) == [
        "new-at-the-boundary",
        "new-later",
        "new-much-later",
    ]
    assert fake.requests[-1].params("fromDateAdded") == [str(mark)]
    third = run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "3.jsonl"))
    assert third.exit_code == 0, third.output
    assert jsonl_ids(tmp_path / "3.jsonl") == []


def test_state_is_kept_when_the_export_fails(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """A failed incremental run leaves STATE_FILE as it was: the next run misses nothing."""
    state = tmp_path / "state.json"
    assert (
        run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "a")).exit_code == 0
    )
    before = state.read_text()
    mark = json.loads(before)["watermark_ms"]
    added_at(fake, "new-1", mark + 5)
    fake.script("tenant", NO_WAIT_503)
    failed = run(
        "export", "--tenant", "--state", str(state), "-o", str(tmp_path / "b"), "--retries", "0"
    )
    assert failed.exit_code == 1
    assert state.read_text() == before
    again = run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "b"))
    assert again.exit_code == 0, again.output
    assert jsonl_ids_csv(tmp_path / "b") == ["new-1"]


def jsonl_ids_csv(path: Path) -> list[str]:
    return [row[0] for row in read_csv(path)[1:]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user-id", "asha"], "made for the whole tenant, not for the whole tenant; users asha"),
        (["--max-items", "5"], "--state needs the whole export"),
    ],
)  # fmt: skip
def test_state_for_other_filters_is_refused(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path, args: list[str], message: str
) -> None:
    """A state file made for other filters, or --state with --max-items: exit 2."""
    state = tmp_path / "state.json"
    assert (
        run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "a")).exit_code == 0
    )
    result = run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "b"), *args)
    assert result.exit_code == 2
    assert message in result.stderr


# ----------------------------------------------------------------------
# Output files: written where they point, never renamed over


def test_symlink_output_writes_through_to_its_target(configured: list[Any], tmp_path: Path) -> None:
    """-o LINK: the link stays a link; its target gets the export, replaced atomically."""
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = run("export", "--campaign-id", "6", "-o", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert read_csv(target)[0] == CSV_HEADER
    assert leftovers(tmp_path) == []


def test_fifo_output_is_written_not_replaced(
    fake: FakeAmeyo, configured: list[Any], tmp_path: Path
) -> None:
    """-o FIFO: the export goes into the FIFO, which is still a FIFO afterwards."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    result = run("export", "--campaign-id", "6", "--format", "jsonl", "-o", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert len(received[0].splitlines()) == len(in_campaign(fake, 6))


def test_device_output_is_written_not_replaced(configured: list[Any], tmp_path: Path) -> None:
    """-o to a character device (a null device node): it stays a device, exit 0."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device node here")
    result = run("export", "--campaign-id", "6", "-o", str(node))
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(node.lstat().st_mode)
    assert leftovers(tmp_path) == []


def test_a_refused_rename_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, configured: list[Any], tmp_path: Path
) -> None:
    """An immutable target (rename refused: EPERM): one 'Error:' line, exit 2, no temp file."""
    out = tmp_path / "locked.csv"
    out.write_text("keep\n")

    real_replace = os.replace

    def refuse(src: Any, dst: Any) -> None:
        if Path(dst) == out:
            raise PermissionError(1, "Operation not permitted")
        real_replace(src, dst)

    monkeypatch.setattr(_files.os, "replace", refuse)
    result = run("export", "--campaign-id", "6", "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: cannot replace {out}: Operation not permitted (check the file's attributes)\n"
    )
    assert out.read_text() == "keep\n"
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------
# Profiles


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("AMEYO_CONFIG", str(path))
    return path


def test_profile_gives_base_url_ca_bundle_and_session_file(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[Any], tmp_path: Path
) -> None:
    """--profile NAME: base URL, CA bundle and session-id file (relative to the file) are used."""
    (tmp_path / "prod.session").write_text(fake.session_id + "\n")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    write_config(
        tmp_path,
        monkeypatch,
        f'[profiles.prod]\nbase_url = "{FAKE_BASE_URL}"\nca_bundle = "ca.pem"\n'
        'session_id_file = "prod.session"\n',
    )
    monkeypatch.setenv("AMEYO_BASE_URL", "http://elsewhere.invalid:8888")  # the profile wins
    result = run("--profile", "prod", "export", "--campaign-id", "6")
    assert result.exit_code == 0, result.output
    (connection,) = in_process
    assert connection.base_url == FAKE_BASE_URL
    assert connection.verify == str(tmp_path / "ca.pem")
    assert len(result.stdout.splitlines()) == 1 + len(in_campaign(fake, 6))


def test_flags_win_over_the_profile(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, in_process: list[Any], tmp_path: Path
) -> None:
    """A flag given on the command line wins over the same setting in the profile."""
    write_config(tmp_path, monkeypatch, '[profiles.p]\nbase_url = "http://other.invalid"\n')
    result = run(
        "export", "--profile", "p", "--campaign-id", "6", "--base-url", FAKE_BASE_URL,
        "--session-id", fake.session_id,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert in_process[-1].base_url == FAKE_BASE_URL


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "there is no config file"),
        ("[profiles.other]\nbase_url = 'http://x'\n", "(profiles there: other)"),
        ("[profiles.prod]\nsession_id = 'abc'\n", "holds session_id: keep secrets out of"),
        ("[profiles.prod]\ntoken = 'abc'\n", "holds token"),
        ("[profiles.prod]\nbase_urll = 'http://x'\n", "unknown setting base_urll"),
        ("[profiles.prod\n", "is not valid TOML"),
        ("[profiles.prod]\nca_bundle = 'nope.pem'\n", "ca_bundle"),
    ],
)  # fmt: skip
def test_profile_errors_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeAmeyo,
    in_process: list[Any],
    tmp_path: Path,
    config: str | None,
    message: str,
) -> None:
    """A missing file or profile, a secret, an unknown key, bad TOML: exit 2, nothing sent."""
    if config is None:
        monkeypatch.setenv("AMEYO_CONFIG", str(tmp_path / "absent.toml"))
    else:
        write_config(tmp_path, monkeypatch, config)
    result = run("export", "--profile", "prod", "--campaign-id", "6")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "abc" not in result.stderr
    assert fake.requests == []


def test_profile_file_defaults_to_the_user_config_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without AMEYO_CONFIG, profiles are read from config.toml in click's app dir."""
    monkeypatch.delenv("AMEYO_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert _profiles.config_path() == tmp_path / "ameyo-callbacks" / "config.toml"


def test_help_documents_profiles_and_shell_completion() -> None:
    """--help shows the profile file's form and how to turn on shell completion."""
    result = run("--help")
    assert result.exit_code == 0
    assert "[profiles.prod]" in result.stdout
    assert "_AMEYO_CALLBACKS_COMPLETE=bash_source ameyo-callbacks" in result.stdout


# ----------------------------------------------------------------------
# fake-server


class StubSocket:
    """Stands in for the bound socket, so these tests bind nothing."""

    def __enter__(self) -> StubSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 5555)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The uvicorn configs fake-server would have served (nothing binds, nothing serves)."""
    configs: list[Any] = []
    monkeypatch.setattr(fake_command, "bind_loopback", lambda host, port: StubSocket())
    monkeypatch.setattr(fake_command, "run_uvicorn", lambda config, sock: configs.append(config))
    return configs


def test_both_command_lines_are_one_click_command() -> None:
    """ameyo-callbacks fake-server is the testing package's command, and -m runs it."""
    assert cli.commands["fake-server"] is fake_command.fake_server
    assert fake_main.main is fake_command.main


def test_fake_server_builds_the_fake_its_options_describe(served: list[Any]) -> None:
    """Every option reaches the fake: data, latency, faults, limits, methods, logins."""
    result = run(
        "fake-server",
        "--port",
        "0",
        "--callbacks",
        "42",
        "--campaigns",
        "9,10",
        "--users",
        "asha,li",
        "--seed",
        "3",
        "--latency-ms",
        "5",
        "--jitter-ms",
        "2",
        "--fault-rate",
        "0.1",
        "--fault-kinds",
        "drop,empty",
        "--fault-seed",
        "4",
        "--max-limit",
        "7",
        "--list-methods",
        "get",
        "--log-limit",
        "9",
        "--login",
        "u:t0ken",
        "--order",
        "callbackTime",
        "--live-rate",
        "20",
        "--live-mix",
        "add=2,delete_due",
        "--live-seed",
        "5",
    )
    assert result.exit_code == 0, result.output
    (config,) = served
    fake = config.app
    same = FakeAmeyo.seeded(
        42, campaigns=[9, 10], users=["asha", "li"], seed=3, order="callbackTime"
    )
    assert fake.ordered_ids() == same.ordered_ids()
    assert fake.session_id == same.session_id
    assert (fake.latency, fake.jitter, fake.max_limit) == (0.005, 0.002, 7)
    assert fake.faults == FaultPlan(rate=0.1, kinds=["drop", "empty"], seed=4)
    assert fake.list_methods == {"GET"}
    assert fake._sessions.accepts("u", "t0ken", None)
    assert fake.order == "callbackTime"
    live = fake._live
    assert (live.rate, live.mix, live.seed) == (20.0, {"add": 2.0, "delete_due": 1.0}, 5)
    assert result.stdout.splitlines() == [
        "AMEYO_BASE_URL=http://127.0.0.1:5555",
        f"AMEYO_SESSION_ID={fake.session_id}",
    ]
    assert "t0ken" not in result.output
    assert result.stderr.startswith("fake Ameyo server: 42 callbacks in campaigns 9, 10")


def test_fake_server_writes_each_live_change_to_the_change_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--change-log gets one JSON line per live change, as it is made, and is closed after."""
    fakes: list[FakeAmeyo] = []
    lines_while_serving: list[list[str]] = []
    log = tmp_path / "changes.jsonl"

    def serve(config: Any, sock: Any) -> None:
        fakes.append(config.app)
        config.app.change(2, "delete_random")
        config.app.change(1, "add")
        lines_while_serving.append(log.read_text().splitlines())  # written as made

    monkeypatch.setattr(fake_command, "bind_loopback", lambda host, port: StubSocket())
    monkeypatch.setattr(fake_command, "run_uvicorn", serve)
    result = run("fake-server", "--callbacks", "30", "--live-rate", "5", "--change-log", str(log))
    assert result.exit_code == 0, result.output
    (fake,) = fakes
    written = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines_while_serving == [log.read_text().splitlines()]
    assert [(w["seq"], w["kind"], w["callback_id"]) for w in written] == [
        (c.seq, c.kind, c.callback_id) for c in fake.changes
    ]
    assert [w["kind"] for w in written] == ["delete_random", "delete_random", "add"]
    assert all(w["callback_id"] not in fake for w in written[:2])
    assert written[2]["callback_id"] in fake


def test_fake_server_change_log_needs_live_mode_and_a_writable_path(
    served: list[Any], tmp_path: Path
) -> None:
    """Without --live-rate, or with a path that cannot be written, it says so and serves nothing."""
    result = run("fake-server", "--change-log", str(tmp_path / "c.jsonl"))
    assert result.exit_code == 2
    assert "--change-log needs --live-rate" in result.output
    missing = tmp_path / "no-such-dir" / "c.jsonl"
    result = run("fake-server", "--live-rate", "5", "--change-log", str(missing))
    assert result.exit_code == 2
    assert f"cannot write the change log {missing}" in result.output
    assert served == []


def test_python_m_runs_the_same_command(
    served: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m ameyo_callbacks.testing takes the same options and exit statuses."""
    assert fake_main.main(["--callbacks", "12", "--max-limit", "3"]) == 0
    (config,) = served
    assert (len(config.app), config.app.max_limit) == (12, 3)
    assert capsys.readouterr().out.startswith("AMEYO_BASE_URL=http://127.0.0.1:5555\n")
    assert fake_main.main(["--campaigns", "x"]) == 2
    assert "is not a comma-separated list of campaign ids" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--keyfile", "{key}"],
        ["--campaigns", "6,x"],
        ["--users", ","],
        ["--fault-rate", "2"],
        ["--fault-kinds", "fire"],
        ["--list-methods", "PUT"],
        ["--login", "nocolon"],
        ["--host", "10.1.2.3"],
        ["--order", "phone"],
        ["--live-mix", "fly=1"],
        ["--live-mix", "add=x"],
        ["--live-rate", "-1"],
    ],
)
def test_fake_server_usage_errors(served: list[Any], tmp_path: Path, args: list[str]) -> None:
    """A key without a certificate, bad lists, a rate above 1, a bad login or host: exit 2."""
    key = tmp_path / "key.pem"
    key.write_text("k")
    result = run("fake-server", *[a.format(key=key) for a in args])
    assert result.exit_code == 2
    assert served == []


def test_fake_server_says_why_it_cannot_serve(
    monkeypatch: pytest.MonkeyPatch, served: list[Any]
) -> None:
    """A taken port or a missing uvicorn is a one-line error, exit 2."""

    def taken(host: str, port: int) -> StubSocket:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(fake_command, "bind_loopback", taken)
    result = run("fake-server", "--port", "8899", "--callbacks", "0")
    assert result.exit_code == 2
    assert result.stderr == "Error: cannot serve on 127.0.0.1:8899: Address already in use\n"

    def missing() -> None:
        msg = "serving the fake Ameyo server on a socket needs uvicorn"
        raise ModuleNotFoundError(msg)

    monkeypatch.setattr(fake_command, "require_uvicorn", missing)
    result = run("fake-server")
    assert result.exit_code == 2
    assert "needs uvicorn" in result.stderr
    assert served == []


# ----------------------------------------------------------------------
# On a socket


@pytest.mark.integration
def test_demo_export_is_the_readme_first_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """export --demo --campaign-id 6 --output callbacks.csv works with nothing configured."""
    monkeypatch.chdir(tmp_path)
    result = run("export", "--demo", "--campaign-id", "6", "--output", "callbacks.csv")
    assert result.exit_code == 0, result.output
    demo = FakeAmeyo.seeded(_config.DEMO_CALLBACKS, campaigns=_config.DEMO_CAMPAIGNS)
    expected = in_campaign(demo, 6)
    assert read_csv(tmp_path / "callbacks.csv")[1:] == [expected_row(cb) for cb in expected]
    assert "demo: a fake Ameyo server on http://127.0.0.1:" in result.stderr
    assert demo.session_id not in result.output


@pytest.mark.integration
def test_demo_delete_runs_against_the_demo_server() -> None:
    """delete --demo --dry-run counts the demo matches; --yes deletes them (exit 0)."""
    demo = FakeAmeyo.seeded(_config.DEMO_CALLBACKS, campaigns=_config.DEMO_CAMPAIGNS)
    matches = [cb for cb in in_campaign(demo, 8) if cb.user_id == "maria"]
    dry = run("delete", "--demo", "--campaign-id", "8", "--user-id", "maria", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith(f"dry run: {len(matches)} callbacks match")
    done = run("delete", "--demo", "--campaign-id", "8", "--user-id", "maria", "--yes")
    assert done.exit_code == 0, done.output
    assert summary_counts(done.stderr)["deleted"] == len(matches)


@pytest.mark.integration
def test_timeout_flag_gives_up_on_a_slow_server(tmp_path: Path) -> None:
    """--timeout 0.2 with retries off: a 2 s answer is a one-line timeout error, exit 1.

    Every request the walk sends at first is slow: it sends several at once,
    and the server may take any of them first (one slow request left the
    export a page to keep, and another message: 1 run in CI).
    """
    fake = FakeAmeyo.seeded(50)
    fake.script("list", *[Fault.slow(delay=2.0)] * 8)
    with serve(fake) as url:
        started = time.monotonic()
        result = run(
            "export",
            "--campaign-id",
            "6",
            "--base-url",
            url,
            "--session-id",
            fake.session_id,
            "--timeout",
            "0.2",
            "--retries",
            "0",
            "-o",
            str(tmp_path / "out.csv"),
        )
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: POST /ameyorestapi/voice/customerCallbacks/getFiltered")
    assert elapsed < 1.5
    assert not (tmp_path / "out.csv").exists()
