"""The command line's refusals: each says what to check, exits 2, and sends nothing.

Also a few outcomes of finished runs that users script against: the JSON
dry run of an ids file, the summary of many failures, ``--resume`` with
nothing to resume, ``--max-items`` across campaigns, ``--json`` with
``--state``, a closed stdout, and outputs on a full disk (``/dev/full``).
Commands reach an in-process
``FakeAmeyo`` through the command line's one seam, ``_config.build_client``
(httpx.ASGITransport: no socket).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from ameyo_callbacks import AmeyoCallbacksClient
from ameyo_callbacks.cli import _config, main
from ameyo_callbacks.cli._app import cli
from ameyo_callbacks.testing import FAKE_BASE_URL, FakeAmeyo, Fault, no_retry_waits

ENVIRONMENT = ("AMEYO_BASE_URL", "AMEYO_SESSION_ID", "AMEYO_USER_ID", "AMEYO_TOKEN")


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with no_retry_waits():
        yield


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAmeyo:
    """A seeded fake every command reaches in-process, named by AMEYO_BASE_URL (no session)."""
    app = FakeAmeyo.seeded(300)

    def build(connection: _config.Connection) -> AmeyoCallbacksClient:
        options = _config.client_options(connection)
        return AmeyoCallbacksClient(
            connection.base_url, transport=httpx.ASGITransport(app=app), **options
        )

    monkeypatch.setattr(_config, "build_client", build)
    for name in (*ENVIRONMENT, "AMEYO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AMEYO_BASE_URL", FAKE_BASE_URL)
    return app


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo) -> FakeAmeyo:
    """``fake``, with its valid session in AMEYO_SESSION_ID."""
    monkeypatch.setenv("AMEYO_SESSION_ID", fake.session_id)
    return fake


def run(*args: str, input: str | None = None) -> Result:  # noqa: A002
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def refused(result: Result, fake: FakeAmeyo, *phrases: str) -> None:
    """Exit 2, each phrase on stderr, and no request reached the server."""
    assert result.exit_code == 2, result.output
    for phrase in phrases:
        assert phrase in result.stderr
    assert fake.requests == []


def campaign_ids(fake: FakeAmeyo, campaign: int) -> list[str]:
    return [cb.customer_callback_id for cb in fake.callbacks if cb.campaign_id == campaign]


# ----------------------------------------------------------------------
# Where the session comes from


def test_a_blank_session_id_flag_is_refused(fake: FakeAmeyo) -> None:
    """``--session-id "  "`` is refused as empty, not sent as a blank header."""
    result = run("export", "--campaign-id", "6", "--session-id", "   ")
    refused(result, fake, "--session-id is empty")


def test_a_session_id_file_that_is_not_text_is_refused(fake: FakeAmeyo, tmp_path: Path) -> None:
    """A binary session-id file is refused as not UTF-8, and its bytes are not echoed."""
    path = tmp_path / "session"
    path.write_bytes(b"\xff\xfesecret-bytes\x00")
    result = run("export", "--campaign-id", "6", "--session-id-file", str(path))
    refused(result, fake, f"the session id file {path} is not UTF-8 text")
    assert "secret-bytes" not in result.output


def test_the_session_flag_wins_over_a_profiles_session_file(
    monkeypatch: pytest.MonkeyPatch, fake: FakeAmeyo, tmp_path: Path
) -> None:
    """With --session-id given, a profile's session_id_file is not used, so need not exist."""
    config = tmp_path / "config.toml"
    config.write_text('[profiles.p]\nsession_id_file = "gone.session"\n')
    monkeypatch.setenv("AMEYO_CONFIG", str(config))
    result = run("--profile", "p", "export", "--campaign-id", "7", "--session-id", fake.session_id)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 + len(campaign_ids(fake, 7))


# ----------------------------------------------------------------------
# Profiles


@pytest.mark.parametrize(
    ("table", "key"),
    [
        pytest.param("base_url = 8888", "base_url", id="a-number"),
        pytest.param('base_url = "  "', "base_url", id="blank"),
        pytest.param("ca_bundle = ['a.pem']", "ca_bundle", id="a-list"),
    ],
)
def test_a_profile_setting_that_is_not_a_string_is_refused(
    monkeypatch: pytest.MonkeyPatch, session: FakeAmeyo, tmp_path: Path, table: str, key: str
) -> None:
    """Each profile setting must be a non-empty string: the key and the file are named."""
    config = tmp_path / "config.toml"
    config.write_text(f"[profiles.prod]\n{table}\n")
    monkeypatch.setenv("AMEYO_CONFIG", str(config))
    result = run("export", "--profile", "prod", "--campaign-id", "6")
    refused(result, session, f"--profile prod: {key} in {config} must be a non-empty string")


def test_a_config_path_that_cannot_be_read_is_named(
    monkeypatch: pytest.MonkeyPatch, session: FakeAmeyo, tmp_path: Path
) -> None:
    """AMEYO_CONFIG naming a directory: 'cannot read' that path, with the OS's reason."""
    monkeypatch.setenv("AMEYO_CONFIG", str(tmp_path))
    result = run("export", "--profile", "prod", "--campaign-id", "6")
    refused(result, session, f"--profile prod: cannot read {tmp_path}", "Is a directory")


# ----------------------------------------------------------------------
# Filters and outputs


@pytest.mark.parametrize("command", [["export"], ["delete", "--dry-run"]], ids=["export", "delete"])
def test_a_blank_user_id_is_a_usage_error(session: FakeAmeyo, command: list[str]) -> None:
    """``--user-id " "`` would select nobody: refused before any request, on both commands."""
    result = run(*command, "--campaign-id", "6", "--user-id", "asha", "--user-id", " ")
    refused(result, session, "--user-id must not be empty")


def test_an_output_below_a_regular_file_is_refused(session: FakeAmeyo, tmp_path: Path) -> None:
    """``-o file.csv/out.csv`` (a file used as a directory): one line naming it, exit 2."""
    (tmp_path / "file.csv").write_text("kept\n")
    output = tmp_path / "file.csv" / "out.csv"
    result = run("export", "--campaign-id", "6", "-o", str(output))
    refused(result, session, f"cannot write {output}: Not a directory")
    assert (tmp_path / "file.csv").read_text() == "kept\n"


# ----------------------------------------------------------------------
# Incremental exports: the state file


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("not json at all", id="not-json"),
        pytest.param("[1, 2]", id="a-json-list"),
        pytest.param('{"version": 99, "filter": [], "watermark_ms": 1}', id="another-version"),
        pytest.param('{"version": 1, "watermark_ms": 1}', id="no-filter"),
        pytest.param(
            '{"version": 1, "filter": [], "watermark_ms": "soon", "boundary_ids": []}',
            id="watermark-not-ms",
        ),
        pytest.param(
            '{"version": 1, "filter": [], "watermark_ms": 5, "boundary_ids": "x"}',
            id="boundary-not-a-list",
        ),
    ],
)
def test_a_state_file_of_something_else_is_refused(
    session: FakeAmeyo, tmp_path: Path, text: str
) -> None:
    """--state naming a file that is no export state: refused, and the file is left alone."""
    state = tmp_path / "state.json"
    state.write_text(text)
    result = run("export", "--tenant", "--state", str(state), "-o", str(tmp_path / "out.csv"))
    refused(result, session, f"--state {state} is not a state file of ameyo-callbacks export")
    assert "a missing one starts from the beginning" in result.stderr
    assert state.read_text() == text
    assert not (tmp_path / "out.csv").exists()


def test_json_summary_of_an_incremental_export_lists_the_state_file(
    session: FakeAmeyo, tmp_path: Path
) -> None:
    """--json with --state: the summary's files are the output and then the state file."""
    out, state = tmp_path / "out.jsonl", tmp_path / "state.json"
    result = run("export", "--tenant", "--state", str(state), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["files"] == [str(out), str(state)]
    assert summary["records"] == len(session.callbacks)
    assert summary["watermark_ms"] == json.loads(state.read_text())["watermark_ms"]


# ----------------------------------------------------------------------
# Export outcomes


def test_resume_with_nothing_to_resume_says_so_and_exports_everything(
    session: FakeAmeyo, tmp_path: Path
) -> None:
    """--resume when no unfinished export exists: a note on stderr, then a whole export."""
    out = tmp_path / "out.csv"
    result = run("export", "--campaign-id", "6", "-o", str(out), "--resume")
    assert result.exit_code == 0, result.output
    assert f"--resume: no unfinished export of {out} to resume" in result.stderr
    assert len(out.read_text().splitlines()) == 1 + len(campaign_ids(session, 6))


def test_max_items_reached_in_the_first_campaign_asks_nothing_of_the_next(
    session: FakeAmeyo,
) -> None:
    """--max-items equal to the first campaign's count: that campaign only, none of campaign 7."""
    first = campaign_ids(session, 6)
    result = run(
        "export", "--campaign-id", "6", "--campaign-id", "7", "--max-items", str(len(first)),
        "--format", "jsonl",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    exported = [json.loads(line)["customerCallbackId"] for line in result.stdout.splitlines()]
    assert exported == first
    assert {r.params("campaignId")[0] for r in session.requests} == {"6"}


def edit_json(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, Path], None]:
    """A damage for the test below: ``change`` applied to the progress file's JSON."""

    def damage(progress: Path, partial: Path) -> None:
        data = json.loads(progress.read_text())
        change(data)
        progress.write_text(json.dumps(data))

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda progress, partial: progress.write_text("{cut"), id="not-json"),
        pytest.param(edit_json(lambda d: d.update(version=99)), id="another-version"),
        pytest.param(edit_json(lambda d: d.update(records=-1)), id="negative-records"),
        pytest.param(edit_json(lambda d: d.update(pages="2")), id="pages-not-a-number"),
        pytest.param(edit_json(lambda d: d.update(checkpoint=5)), id="checkpoint-not-a-string"),
        pytest.param(edit_json(lambda d: d.pop("key")), id="no-key"),
        pytest.param(lambda progress, partial: partial.write_text(""), id="partial-cut-short"),
        pytest.param(lambda progress, partial: partial.unlink(), id="partial-gone"),
    ],
)
def test_a_damaged_progress_file_is_not_resumed_from(
    session: FakeAmeyo, tmp_path: Path, damage: Callable[[Path, Path], None]
) -> None:
    """--resume never trusts a broken progress record: it says so and exports all, each once."""
    session.script("tenant", None, Fault.unavailable(retry_after=None))
    out = tmp_path / "c.jsonl"
    args = ["export", "--tenant", "-o", str(out), "--retries", "0", "--prefetch", "1"]
    assert run(*args).exit_code == 1
    damage(tmp_path / ".c.jsonl.progress.json", tmp_path / ".c.jsonl.partial")
    session.clear_requests()
    again = run(*args, "--resume")
    assert again.exit_code == 0, again.output
    assert f"--resume: no unfinished export of {out} to resume" in again.stderr
    exported = [json.loads(line)["customerCallbackId"] for line in out.read_text().splitlines()]
    assert exported == [cb.customer_callback_id for cb in session.callbacks]
    assert session.requests[0].params("offset") == ["0"]


# ----------------------------------------------------------------------
# Delete outcomes


def test_json_dry_run_of_an_ids_file_lists_distinct_ids_and_repeats(
    session: FakeAmeyo, tmp_path: Path
) -> None:
    """``delete --ids-file F --dry-run --json``: distinct ids in order, the repeats, no request."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# header\nb-2\na-1\n\nb-2  # again\nc-3\n")
    result = run("delete", "--ids-file", str(ids_file), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "command": "delete",
        "dry_run": True,
        "ids_file": str(ids_file),
        "distinct_ids": 3,
        "duplicates": 1,
        "ids": ["b-2", "a-1", "c-3"],
    }
    assert session.requests == []


def test_many_failures_show_the_first_ten_and_count_the_rest(
    session: FakeAmeyo, tmp_path: Path
) -> None:
    """Fourteen failed deletes: the summary names ten with their reason and counts 4 more."""
    targets = campaign_ids(session, 8)[:14]
    assert len(targets) == 14
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(f"{cb_id}\n" for cb_id in targets))
    session.script("delete", *[Fault.unavailable(retry_after=None)] * 14)
    result = run("delete", "--ids-file", str(ids_file), "--yes", "--retries", "0")
    assert result.exit_code == 1, result.output
    shown = [line for line in result.stderr.splitlines() if line.startswith("failed d8")]
    assert len(shown) == 10
    assert all("503" in line for line in shown)
    assert "... and 4 more failures" in result.stderr


def test_ids_on_stdin_that_stop_being_text_delete_what_came_before_and_exit_2(
    session: FakeAmeyo,
) -> None:
    """stdin is read as it goes: ids before bytes that are not UTF-8 are deleted, then exit 2.

    A long comment puts the bad bytes past the first read of the stream (text is
    decoded a block at a time), as in a pipe that goes bad part way through.
    """
    first, second, kept = campaign_ids(session, 6)[:3]
    comment = "# " + "x" * 20_000 + "\n"
    stdin = f"{first}\n{second}\n{comment}".encode() + b"\xff\xfe\n" + f"{kept}\n".encode()
    result = CliRunner().invoke(
        cli, ["delete", "--ids-file", "-", "--yes"], input=stdin, catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    assert "stdin is not UTF-8 text at or after line 3; stopped reading there" in result.stderr
    assert first not in session
    assert second not in session
    assert kept in session


class ClosedPipe(io.TextIOBase):
    """A stdout whose reader went away (``| head`` after its lines): every write fails."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no file descriptor")


def test_a_closed_stdout_ends_the_export_quietly_with_status_0(
    monkeypatch: pytest.MonkeyPatch, session: FakeAmeyo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Writing to a stdout nobody reads: main() returns 0, with no traceback on stderr."""
    stdout = ClosedPipe()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["export", "--campaign-id", "6"]) == 0
    assert stdout.writes >= 1  # the export did write, and the failure ended it
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("flag", ["--failed-out", "--not-found-out"])
def test_an_id_list_that_cannot_be_written_after_the_deletes_is_one_line_and_exit_2(
    session: FakeAmeyo, tmp_path: Path, flag: str
) -> None:
    """A full disk under --failed-out: exit 2 naming the file, and the summary still printed."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{campaign_ids(session, 6)[0]}\nnot-a-callback\n")
    session.script("delete", Fault.unavailable(retry_after=None))
    result = CliRunner().invoke(
        cli, ["delete", "--ids-file", str(ids_file), "--yes", "--retries", "0", flag, "/dev/full"]
    )
    assert result.exit_code == 2, result.exception
    assert "/dev/full" in result.stderr
    assert "No space left on device" in result.stderr
    assert "done in" in result.stderr  # the summary of what was deleted


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_backup_that_cannot_be_written_deletes_nothing(session: FakeAmeyo) -> None:
    """--backup on a full disk: the run fails before the first DELETE, so nothing is lost."""
    before = campaign_ids(session, 7)
    result = CliRunner().invoke(
        cli, ["delete", "--campaign-id", "7", "--yes", "--backup", "/dev/full"]
    )
    assert result.exit_code != 0
    assert [r for r in session.requests if r.endpoint == "delete"] == []
    assert campaign_ids(session, 7) == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["export", "--campaign-id", "6", "-o", "/dev/full"], id="export-output"),
        pytest.param(
            ["delete", "--campaign-id", "7", "--yes", "--backup", "/dev/full"], id="delete-backup"
        ),
    ],
)
def test_a_full_disk_under_an_output_is_one_line_and_exit_2(
    session: FakeAmeyo, args: list[str]
) -> None:
    """An output that fails while written: one line naming it and the OS's reason, exit 2."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.exception
    assert "cannot write" in result.stderr
    assert "/dev/full" in result.stderr
    assert "No space left on device" in result.stderr


def test_an_export_whose_partial_file_cannot_be_made_is_refused_before_any_request(
    session: FakeAmeyo, tmp_path: Path
) -> None:
    """A directory where the export keeps its partial data: exit 2 and nothing asked."""
    (tmp_path / ".out.csv.partial").mkdir()
    result = run("export", "--campaign-id", "6", "-o", str(tmp_path / "out.csv"))
    refused(result, session, "cannot write", "Is a directory")
    assert not (tmp_path / "out.csv").exists()


def test_the_refusal_names_the_partial_file_that_cannot_be_made(
    session: FakeAmeyo, tmp_path: Path
) -> None:
    """The message names the file to check: the hidden partial file, not the absent output."""
    (tmp_path / ".out.csv.partial").mkdir()
    result = run("export", "--campaign-id", "6", "-o", str(tmp_path / "out.csv"))
    assert ".out.csv.partial" in result.stderr
