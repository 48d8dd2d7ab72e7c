"""The Probe screen's "failed logins left" and the History screen's ledger line count as the
engine's budget does (login_budget.py): the per-run limit, the meter's window, and a ledger that
cannot be read (no password is sent)."""

from __future__ import annotations

import time
from pathlib import Path

from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.ledger import Attempt, LoginLedger, meter_key
from dlmsdoctor.screens.history import ledger_line
from dlmsdoctor.screens.probe_run import LEDGER_UNUSABLE, logins_left, logins_left_text


def _failed(ledger: LoginLedger, options: ProbeOptions, at: float) -> None:
    first = options.first_server()
    meter = meter_key(options.host, options.port, first.logical, first.physical)
    ledger.record(Attempt(meter, at, "bad", 1, "low", "rejected", "authentication-failure"))


def test_the_per_run_limit_and_the_meters_window(tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    options = ProbeOptions("127.0.0.1", 4059)
    assert logins_left(options, ledger) == 1  # 2 per meter, but 1 per run
    wide = ProbeOptions("127.0.0.1", 4059, run_max_failures=3)
    assert logins_left(wide, ledger) == 2
    _failed(ledger, options, time.time())
    assert logins_left(options, ledger) == 1
    assert logins_left(wide, ledger) == 1
    _failed(ledger, options, time.time())
    assert logins_left(options, ledger) == 0
    assert logins_left(ProbeOptions("127.0.0.1", 4059, run_max_failures=0), LoginLedger(
        tmp_path / "other.jsonl")) == 0


def test_an_unusable_ledger_is_said(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").mkdir()  # a folder where the file should be
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    options = ProbeOptions("127.0.0.1", 4059)
    assert logins_left(options, ledger) == LEDGER_UNUSABLE
    assert "unusable" in logins_left_text(LEDGER_UNUSABLE)
    ignoring = ProbeOptions("127.0.0.1", 4059, ignore_ledger_errors=True)
    assert logins_left(ignoring, ledger) == 1


def test_the_history_ledger_line(hermetic_dirs: Path) -> None:
    ledger = LoginLedger()
    options = ProbeOptions("127.0.0.1", 4059)
    assert ledger_line("127.0.0.1:4059") == "Ledger for 127.0.0.1:4059: no login attempts recorded."
    _failed(ledger, options, time.time() - 3600)  # outside the 15 min window
    _failed(ledger, options, time.time())
    line = ledger_line("127.0.0.1:4059")
    assert "2 logins, 2 failed (1 in the last 15 min)" in line
    assert "may spend 1 failed login(s)" in line
    ledger.path.unlink()
    ledger.path.mkdir()
    line = ledger_line("127.0.0.1:4059")
    assert "unusable" in line and "sends no password" in line


def test_the_ladder_marks_recovered_rungs_and_names_each_step_once() -> None:
    from dlmsdoctor.events import StepStatus
    from dlmsdoctor.session import StepRecord
    from dlmsdoctor.widgets.ladder import rung_label, state_text

    assert str(state_text(StepStatus.RECOVERED)) == "↻ recovered"
    identity = StepRecord("cosem.identity", "Identity reads", "cosem")
    again = StepRecord("cosem.read.mgmt", "Identity reads", "cosem")
    assert rung_label(identity) == "Identity reads"
    assert rung_label(again) == "Reads with set 'mgmt'"
