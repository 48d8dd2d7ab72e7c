"""Sessions, reports and captures are written 0600 whatever the umask (issue 10 item 11): they
name the meter and its identity, and with --show-secrets hold its secrets."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.report import write_report
from dlmsdoctor.private_files import write_private
from dlmsdoctor.run import save_session
from tests.output.seed_session import seed_session


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: files would come out 0644
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_session_report_and_capture_are_private(tmp_path: Path) -> None:
    session = seed_session()
    saved = save_session(session, tmp_path / "sessions")
    assert _mode(saved) == 0o600
    for fmt in ("md", "html", "json"):
        path = tmp_path / f"r.{fmt}"
        write_report(session, path, fmt)
        assert _mode(path) == 0o600, fmt
    capture = tmp_path / "c.pcapng"
    write_capture(session, capture)
    assert _mode(capture) == 0o600


def test_an_existing_open_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old-report.md"
    path.write_text("previous-content-marker")
    os.chmod(path, 0o644)
    write_report(seed_session(), path, "md")
    assert _mode(path) == 0o600 and "previous-content-marker" not in path.read_text()


def test_a_device_keeps_its_mode(tmp_path: Path) -> None:
    before = _mode(Path(os.devnull))
    write_private(os.devnull, b"x")
    assert _mode(Path(os.devnull)) == before


def test_open_save_is_private(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dlmsdoctor.cli.main import cli

    src = save_session(seed_session(), tmp_path)
    out = tmp_path / "copy.json"
    result = CliRunner().invoke(cli, ["open", str(src), "--save", str(out)])
    assert result.exit_code == 0, result.output
    assert _mode(out) == 0o600
