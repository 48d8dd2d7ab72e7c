"""The bare command and the entry point: help off a terminal, no tracebacks, exit codes."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from dlmsdoctor.cli import main as main_module
from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.main import cli


def test_bare_command_off_a_terminal_prints_help_instead_of_opening_the_tui() -> None:
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == ExitCode.OK
    assert "Commands:" in result.stdout and "probe" in result.stdout


def test_session_option_off_a_terminal_says_what_to_use_instead() -> None:
    result = CliRunner().invoke(cli, ["--session", "some.session.json"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert "dlmsdoctor open some.session.json" in result.stderr


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dlmsdoctor", "no-such-command"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "No such command" in proc.stderr


def test_exit_codes_are_distinct() -> None:
    values = [int(code) for code in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.OK == 0 and ExitCode.FINDINGS != ExitCode.UNUSABLE_INPUT


@click.command("boom")
def boom() -> None:
    raise RuntimeError("simulated bug")


def test_a_bug_becomes_a_message_and_exit_70_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(main_module._COMMANDS, "boom", ("tests.cli.test_main:boom", "test"))
    monkeypatch.setattr(sys, "argv", ["dlmsdoctor", "boom"])
    with pytest.raises(SystemExit) as exited:
        main_module.run()
    assert exited.value.code == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: simulated bug" in err
    assert "Traceback" not in err
