from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dlmsdoctor.ledger import Attempt, LoginLedger, meter_key
from dlmsdoctor.login_budget import LoginBudget


class Wall:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_meter_key_forms() -> None:
    assert meter_key("10.0.0.1", 4059, 1, 17) == "10.0.0.1:4059/1/17"
    assert meter_key("::1", 4059) == "[::1]:4059"


def test_ledger_persists_and_survives_damage(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.jsonl"
    wall = Wall()
    ledger = LoginLedger(path, wall=wall)
    assert ledger.attempts() == [] and not path.parent.exists()  # reading creates nothing
    ledger.record(Attempt("m", wall(), "a", 1, "low", "rejected", "authentication-failure"))
    with path.open("a") as out:
        out.write("{not json\n")
    ledger.record(Attempt("m", wall(), "pub", 16, "none", "accepted"))
    again = LoginLedger(path, wall=wall)
    assert [a.credential for a in again.attempts("m")] == ["a", "pub"]
    assert len(again.recent_failures("m", 900)) == 1  # no-auth logins never count
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_budget_rules(tmp_path: Path) -> None:
    wall = Wall()
    ledger = LoginLedger(tmp_path / "l.jsonl", wall=wall)
    budget = LoginBudget(ledger, "m", per_set=1, max_failures=3, window=900, per_run=3)
    assert budget.check("a", 1, "low").allowed
    budget.record("a", 1, "low", "rejected", "authentication-failure")
    v = budget.check("b", 1, "low")
    assert not v.allowed and v.code == "login.sap_blocked"
    budget.record("c", 32, "low", "no-answer")
    v = budget.check("c", 32, "low")
    assert not v.allowed and v.code == "login.budget"  # one failure per set per run
    assert budget.check("d", 2, "low").allowed
    budget.record("d", 2, "low", "closed")
    # a new run: per-run limits reset, the window does not
    run2 = LoginBudget(ledger, "m", window=900)
    v = run2.check("e", 3, "low")
    assert not v.allowed and v.data["failures_in_window"] == 3
    assert run2.check("pub", 16, "none").allowed  # no password: always allowed
    wall.t += 901
    assert LoginBudget(ledger, "m", window=900).check("e", 3, "low").allowed
    budget.locked_out = True
    assert budget.check("z", 9, "low").code == "login.lockout"


@pytest.mark.parametrize("outcome", ["accepted"])
def test_accepted_never_counts(tmp_path: Path, outcome: str) -> None:
    ledger = LoginLedger(tmp_path / "l.jsonl")
    budget = LoginBudget(ledger, "m", per_set=1)
    budget.record("a", 1, "low", outcome)
    assert budget.check("a", 1, "low").allowed


def test_zero_budget_turns_password_logins_off(tmp_path: Path) -> None:
    budget = LoginBudget(LoginLedger(tmp_path / "l.jsonl"), "m", per_set=0)
    verdict = budget.check("a", 1, "low")
    assert not verdict.allowed and "turned off" in verdict.reason
    assert budget.check("pub", 16, "none").allowed
