"""The CLI's output files: refusals before any request, and nothing half-written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ameyo_callbacks.cli import _files
from ameyo_callbacks.cli._errors import ConfigError
from ameyo_callbacks.cli._files import atomic_output, check_writable, is_special, writing


def test_a_directory_is_refused_as_an_output(tmp_path: Path) -> None:
    """An output naming a directory is a one-line error naming the flag."""
    with pytest.raises(ConfigError, match=r"cannot write --backup .*: it is a directory"):
        check_writable(str(tmp_path), "--backup")
    with pytest.raises(ConfigError, match="it is a directory"):
        with atomic_output(str(tmp_path)):
            pass


def test_an_output_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    """A file in a directory that does not exist is refused before anything is written."""
    missing = tmp_path / "nowhere" / "out.csv"
    with pytest.raises(ConfigError, match=r"the directory .*nowhere does not exist"):
        check_writable(str(missing), "--output")
    with pytest.raises(ConfigError, match=r"cannot write .*out\.csv"):
        with atomic_output(str(missing)):
            pass
    assert not missing.parent.exists()


def test_a_writable_file_and_stdout_pass_the_check(tmp_path: Path) -> None:
    """A new file in an existing directory, and stdout, are accepted."""
    check_writable(str(tmp_path / "new.jsonl"), "--output")
    check_writable("-", "--output")
    assert not (tmp_path / "new.jsonl").exists()  # the check creates nothing


def test_special_paths_are_written_directly_and_open_errors_are_one_line() -> None:
    """Paths under /dev are never renamed over; one that cannot be opened is a ConfigError."""
    assert is_special("-")
    assert is_special("/dev/stdout")
    with pytest.raises(ConfigError, match=r"cannot write /dev/no-such-dir/x"):
        with atomic_output("/dev/no-such-dir/x"):
            pass


def test_a_failed_export_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """An exception inside the block keeps the existing output and removes the part file."""
    out = tmp_path / "out.csv"
    out.write_text("old\n", encoding="utf-8")

    def half_written() -> None:
        with atomic_output(str(out)) as stream:
            stream.write("new, half")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        half_written()
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_complete_export_replaces_the_file(tmp_path: Path) -> None:
    """The block's text replaces the output only when the block completes."""
    out = tmp_path / "out.csv"
    out.write_text("old\n", encoding="utf-8")
    with atomic_output(str(out)) as stream:
        stream.write("new\n")
        assert out.read_text(encoding="utf-8") == "old\n"
    assert out.read_text(encoding="utf-8") == "new\n"


def test_a_file_export_commits_about_once_a_second_and_at_once_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fsync and progress file per page: within the interval a commit waits; now=True doesn't."""
    from ameyo_callbacks.cli import _export  # noqa: PLC0415
    from ameyo_callbacks.cli._jobs import Progress, ResumeFiles  # noqa: PLC0415

    clock = [100.0]
    monkeypatch.setattr(_export.time, "monotonic", lambda: clock[0])
    files = ResumeFiles(tmp_path / "out.jsonl")
    progress = Progress(key={"k": 1})
    with files.partial.open("w", encoding="utf-8") as stream:
        sink = _export._FileSink(stream, _export.JsonlWriter(stream), files)
        stream.write("one page\n")
        progress.records = 1
        sink.commit(progress)  # the first page commits at once
        committed = files.load()
        assert committed is not None
        assert (committed.records, committed.size) == (1, len("one page\n"))
        stream.write("more\n")
        progress.records = 2
        clock[0] += _export.COMMIT_INTERVAL / 2
        sink.commit(progress)
        assert files.load() == committed  # within the interval: nothing recorded
        clock[0] += _export.COMMIT_INTERVAL / 2
        sink.commit(progress)
        committed = files.load()
        assert committed is not None
        assert committed.records == 2
        stream.write("two\n")
        progress.records = 3
        sink.commit(progress, now=True)
    committed = files.load()
    assert committed is not None
    assert (committed.records, committed.size) == (3, len("one page\nmore\ntwo\n"))


def deny(monkeypatch: pytest.MonkeyPatch, denied: Path | str, mode: int) -> None:
    """os.access answers False for ``denied`` asked ``mode`` (these tests may run as root)."""
    real = os.access

    def access(path: object, asked: int, **kwargs: object) -> bool:
        if os.fspath(path) == os.fspath(denied) and asked == mode:
            return False
        return real(path, asked, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_files.os, "access", access)


def test_a_read_only_output_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing file that cannot be written: refused by the check and the writer, unchanged."""
    out = tmp_path / "out.csv"
    out.write_text("old\n", encoding="utf-8")
    deny(monkeypatch, out, os.W_OK)
    with pytest.raises(
        ConfigError, match=r"cannot write --output .*out\.csv: the file is read-only"
    ):
        check_writable(str(out), "--output")
    with pytest.raises(ConfigError, match=r"cannot write .*out\.csv: the file is read-only"):
        with atomic_output(str(out)):
            pytest.fail("opened a read-only output")  # pragma: no cover
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_an_output_in_a_directory_without_write_permission_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory where no file can be created: the error names it and says why."""
    deny(monkeypatch, tmp_path, os.W_OK | os.X_OK)
    with pytest.raises(
        ConfigError, match=f"cannot write --state .*: no permission to create files in {tmp_path}$"
    ):
        check_writable(str(tmp_path / "state.json"), "--state")


def test_a_special_file_that_cannot_be_written_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/stdout without write permission: permission denied, naming the flag."""
    deny(monkeypatch, "/dev/stdout", os.W_OK)
    with pytest.raises(
        ConfigError, match=r"^cannot write --output /dev/stdout: permission denied$"
    ):
        check_writable("/dev/stdout", "--output")


def test_a_failed_write_names_what_failed_and_other_os_errors_pass_through() -> None:
    """A full disk in the block is one ConfigError line; an error that is no write error is not."""
    with pytest.raises(ConfigError, match=r"^cannot write the progress file: "):
        with writing("the progress file"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(FileNotFoundError):
        with writing("the progress file"):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
