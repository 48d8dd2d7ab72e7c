"""Logins are spent once: the login budget against the simulated meter on loopback.

Every count is checked in the meter's OWN event log (what it saw on the wire), not only in
what dlmsdoctor says: a rerun with a refused secret, budgets across runs, concurrent runs in
one process and in several, an unusable ledger, and the lockout this tool may have caused.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlmsdoctor.cli.probe_cmd import ProbeExit, build_options, exit_code_for
from dlmsdoctor.config import parse_credential
from dlmsdoctor.diagnosis.verdict import diagnose
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import StepStatus
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import MeterThread, SimulatedMeter

FAST = {"icmp": False, "timeout": 0.5, "banner_window": 0.1, "busy_retry_wait": 0.1,
        "release_timeout": 0.5}


def _opts(port: int, *creds: str, **kw: object) -> ProbeOptions:
    return ProbeOptions("127.0.0.1", port, credentials=tuple(parse_credential(c) for c in creds),
                        **{**FAST, **kw})  # type: ignore[arg-type]


def _st(session: Session) -> dict[str, StepStatus]:
    return {s.id: s.status for s in session.steps}


def _finding(session: Session, code: str):  # type: ignore[no-untyped-def]
    return next(f for f in session.findings if f.code == code)


def _logins_seen(meter: SimulatedMeter) -> list[dict[str, object]]:
    return [e for e in meter.events if e["event"] == "login" and e.get("mechanism") != 0]


async def _settle() -> None:
    await asyncio.sleep(0.05)


async def test_rerun_with_the_same_wrong_set_spends_no_login(tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default") as meter:
        first = await run_probe(_opts(meter.port, "mgmt=1:low:99999999"), ledger=ledger)
        await _settle()
        assert meter.failed_logins() == 1
        assert _st(first)["assoc.login.mgmt"] is StepStatus.FAILED
        second = await run_probe(_opts(meter.port, "mgmt=1:low:99999999"), ledger=ledger)
        await _settle()
        assert meter.failed_logins() == 1  # not one more on the meter
    skipped = second.step("assoc.login.mgmt")
    assert skipped is not None and skipped.status is StepStatus.SKIPPED
    assert skipped.details["reason"] == "already-rejected"
    found = _finding(second, "login.already_rejected")
    assert re.search(r"already rejected this very secret at \d\d:\d\d \(local time", found.message)
    assert "--retry-rejected" in found.message
    assert found.data["run"] == first.id and found.data["this_run"] is False
    assert second.logins[-1].credential == "public"  # no password login was recorded
    # the verdict says the set was not tried, when it was refused, and how to retry it
    diagnosis = diagnose(second)
    assert diagnosis.status == "degraded"
    second.diagnosis = diagnosis
    assert exit_code_for(second) == ProbeExit.LOGIN  # the set is still a refused one
    budget = next(c for c in diagnosis.causes if c.code == "login.budget")
    assert any("already rejected this very password at" in a.text
               and "--retry-rejected" in a.text for a in budget.actions)
    # the ledger holds a fingerprint of the refused secret, never the secret
    text = (tmp_path / "ledger.jsonl").read_text()
    assert "99999999" not in text and "pbkdf2-sha256$" in text
    assert f'"run": "{first.id}"' in text


async def test_retry_rejected_sends_it_again_within_the_budget(tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default") as meter:
        await run_probe(_opts(meter.port, "mgmt=1:low:99999999"), ledger=ledger)
        again = await run_probe(_opts(meter.port, "mgmt=1:low:99999999", retry_rejected=True),
                                ledger=ledger)
        await _settle()
        assert meter.failed_logins() == 2
        assert _st(again)["assoc.login.mgmt"] is StepStatus.FAILED
        # the meter's budget (2 per window) still holds with the override
        third = await run_probe(_opts(meter.port, "mgmt=1:low:99999999", retry_rejected=True),
                                ledger=ledger)
        await _settle()
        assert meter.failed_logins() == 2
        assert _finding(third, "login.budget").data["scope"] == "meter"


async def test_a_different_secret_is_sent(tmp_path: Path) -> None:
    """Only THIS secret is held back: the right password after a wrong one logs in."""
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default") as meter:
        await run_probe(_opts(meter.port, "mgmt=1:low:99999999"), ledger=ledger)
        session = await run_probe(_opts(meter.port, "mgmt=1:low:00000000"), ledger=ledger)
        await _settle()
        assert _st(session)["assoc.login.mgmt"] is StepStatus.OK
        assert meter.failed_logins() == 1


async def test_two_wrong_sets_over_two_runs_spend_at_most_two(tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    sets = ("a=1:low:11111111", "b=32:low:22222222", "c=2:low:33333333")
    async with SimulatedMeter("default") as meter:
        first = await run_probe(_opts(meter.port, *sets), ledger=ledger)
        await _settle()
        assert meter.failed_logins() == 1  # one failed login per run, across all sets
        assert _finding(first, "login.budget").data["scope"] == "run"
        for _ in range(3):
            await run_probe(_opts(meter.port, *sets), ledger=ledger)
            await _settle()
        assert meter.failed_logins() == 2  # the meter's budget: 2 per 15 min
    failed = [a for a in ledger.attempts() if a.failed]
    assert len(failed) == 2 and len({a.run for a in failed}) == 2


async def test_an_own_lockout_is_named_with_its_times(tmp_path: Path) -> None:
    """A meter that locks after 2 failures; dlmsdoctor's own two earlier runs spent them.
    The next run names the lockout, when the failures were and that this tool made them."""
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default", ["lockout=2,60"]) as meter:
        runs = []
        for password in ("11111111", "22222222"):
            runs.append(await run_probe(_opts(meter.port, f"m=1:low:{password}", public=False),
                                        ledger=ledger))
        session = await run_probe(_opts(meter.port, "m=1:low:00000000"), ledger=ledger)
        await _settle()
        assert meter.failed_logins() == 2
    lockout = _finding(session, "login.lockout")
    own = lockout.data["own_failures"]
    assert isinstance(own, list) and len(own) == 2
    assert [x["run"] for x in own] == [r.id for r in runs]
    assert all(x["this_run"] is False for x in own)
    assert lockout.data["own_failures_earlier_runs"] == 2
    for x in own:
        assert re.fullmatch(r"\d\d:\d\d", str(x["at_text"]))
        assert str(x["at_text"]) in lockout.message
    assert "dlmsdoctor's own" in lockout.message and "may have caused" in lockout.message
    # the verdict names the lockout, with the times of this tool's own failures
    diagnosis = diagnose(session)
    top = diagnosis.causes[0]
    assert top.code == "auth.lockout", [c.code for c in diagnosis.causes]
    notes = " ".join(e.note for e in top.evidence)
    assert all(str(x["at_text"]) in notes for x in own) and "dlmsdoctor's own" in notes


async def test_one_own_failure_then_a_drop_names_it_as_a_candidate(tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default", ["lockout=1,60"]) as meter:
        earlier = await run_probe(_opts(meter.port, "m=1:low:11111111"), ledger=ledger)
        session = await run_probe(_opts(meter.port, "m=1:low:00000000"), ledger=ledger)
    closed = _finding(session, "target.closed_at_once")
    own = closed.data["own_failures"]
    assert isinstance(own, list) and [x["run"] for x in own] == [earlier.id]
    assert str(own[0]["at_text"]) in closed.message
    # the verdict lists the lockout this tool may have caused, with the time of its failure
    lockout = next(c for c in diagnose(session).causes if c.code == "auth.lockout")
    assert any(str(own[0]["at_text"]) in e.note and "dlmsdoctor's own" in e.note
               for e in lockout.evidence)


async def test_four_concurrent_runs_share_one_budget(tmp_path: Path) -> None:
    """Four runs at once, four different wrong passwords, a meter that locks at 3: the ledger
    lock makes them take turns, and the meter sees at most 2 failed logins (never locked)."""
    path = tmp_path / "ledger.jsonl"
    async with SimulatedMeter("default", ["lockout=3,60"]) as meter:
        sessions = await asyncio.gather(*(
            run_probe(_opts(meter.port, f"m{i}=1:low:{i}{i}{i}{i}{i}{i}{i}{i}"),
                      ledger=LoginLedger(path))
            for i in range(1, 5)))
        await _settle()
        assert meter.failed_logins() <= 2
        assert meter.log.of("lockout") == []
    codes = [f.code for s in sessions for f in s.findings]
    assert codes.count("login.budget") >= 2
    assert len([a for a in LoginLedger(path).attempts() if a.failed]) == meter.failed_logins()


@pytest.mark.slow
def test_concurrent_processes_share_one_budget(tmp_path: Path) -> None:
    """The same across processes: `dlmsdoctor probe` x 3 sharing DLMSDOCTOR_DATA_DIR."""
    env = {**os.environ, "DLMSDOCTOR_DATA_DIR": str(tmp_path / "data"),
           "DLMSDOCTOR_CONFIG_DIR": str(tmp_path / "config"), "NO_COLOR": "1"}
    with MeterThread("default", ["lockout=3,60"]) as meter:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "dlmsdoctor", "probe", f"127.0.0.1:{meter.port}",
                 "--no-icmp", "--timeout", "1", "--no-save", "--cred",
                 f"m{i}=1:low:{i}{i}{i}{i}{i}{i}{i}{i}"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(1, 4)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        failed = meter.failed_logins()
        locked = meter.log.of("lockout")
    assert failed <= 2, [o[0].decode()[-400:] for o in outputs]
    assert locked == []
    assert all(b"Traceback" not in err for _, err in outputs)
    ledger = LoginLedger(tmp_path / "data" / "ledger.jsonl")
    assert len([a for a in ledger.attempts() if a.failed]) == failed


@pytest.mark.parametrize("damage", ["directory", "parent-is-a-file", "read-only"])
async def test_unusable_ledger_sends_no_password(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "ledger.jsonl"
    if damage == "directory":
        path.mkdir()
    elif damage == "parent-is-a-file":
        (tmp_path / "data").write_text("not a folder")
        path = tmp_path / "data" / "ledger.jsonl"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes to a 0400 file")
        path.write_text("")
        path.chmod(0o400)
    async with SimulatedMeter("default") as meter:
        session = await run_probe(_opts(meter.port, "mgmt=1:low:00000000"),
                                  ledger=LoginLedger(path))
        await _settle()
        assert _logins_seen(meter) == [] or all(
            e.get("client_sap") == 16 for e in _logins_seen(meter))
        assert meter.open_associations() == []
    st = _st(session)
    assert st["assoc.public"] is StepStatus.OK and st["cosem.identity"] is StepStatus.OK
    assert st["assoc.login.mgmt"] is StepStatus.SKIPPED
    found = _finding(session, "login.ledger_unavailable")
    assert str(path) in found.message and "--ignore-ledger-errors" in found.message
    assert found.severity == "error" and found.data["path"] == str(path)
    assert not any(x.credential == "mgmt" for x in session.logins)
    session.diagnosis = diagnose(session)
    assert exit_code_for(session) == ProbeExit.LEDGER


async def test_ignore_ledger_errors_logs_in_anyway(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.mkdir()
    async with SimulatedMeter("default") as meter:
        session = await run_probe(
            _opts(meter.port, "mgmt=1:low:00000000", ignore_ledger_errors=True),
            ledger=LoginLedger(path))
    assert _st(session)["assoc.login.mgmt"] is StepStatus.OK
    found = _finding(session, "login.ledger_unavailable")
    assert found.severity == "warning" and found.data["ignored"] is True
    session.diagnosis = diagnose(session)
    assert exit_code_for(session) == ProbeExit.OK


def test_cli_flags_reach_the_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path))
    options = build_options("127.0.0.1:4061", login_safety={
        "retry_rejected": True, "ignore_ledger_errors": True, "run_login_budget": 2})
    assert options.retry_rejected and options.ignore_ledger_errors
    assert options.run_max_failures == 2
    defaults = build_options("127.0.0.1:4061")
    assert (defaults.retry_rejected, defaults.ignore_ledger_errors) == (False, False)
    assert (defaults.run_max_failures, defaults.ledger_max_failures) == (1, 2)


async def test_a_run_waiting_for_the_ledger_lock_can_be_cancelled(tmp_path: Path) -> None:
    """Another run holds the ledger (here: the test). Cancelling this run must not wait the
    lock's 60 s out, and no password goes out."""
    path = tmp_path / "ledger.jsonl"
    cancel = asyncio.Event()
    async with SimulatedMeter("default") as meter:
        async with LoginLedger(path).lock():
            run = asyncio.ensure_future(run_probe(_opts(meter.port, "mgmt=1:low:00000000"),
                                                  ledger=LoginLedger(path), cancel=cancel))
            while not meter.log.of("login"):  # the public login went through; mgmt waits
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            cancel.set()
            session = await asyncio.wait_for(run, 5.0)
        await _settle()
        assert [e.get("client_sap") for e in meter.log.of("login")] == [16]
        assert meter.open_associations() == []
    assert session.cancelled
    assert _st(session)["assoc.login.mgmt"] is StepStatus.CANCELLED


def test_probe_command_rerun_and_retry_rejected(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI end to end: a rerun with the refused password exits 17 without sending it;
    --retry-rejected sends it (the meter sees a second failure)."""
    import json

    from click.testing import CliRunner

    from dlmsdoctor.cli.probe_cmd import probe

    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    with MeterThread("default") as meter:
        args = [f"127.0.0.1:{meter.port}", "--no-icmp", "--timeout", "1", "--no-save",
                "--json", "--cred", "mgmt=1:low:99999999"]
        first = CliRunner().invoke(probe, args, catch_exceptions=False)
        rerun = CliRunner().invoke(probe, args, catch_exceptions=False)
        assert meter.failed_logins() == 1
        retried = CliRunner().invoke(probe, [*args, "--retry-rejected"], catch_exceptions=False)
        assert meter.failed_logins() == 2
    assert first.exit_code == rerun.exit_code == retried.exit_code == ProbeExit.LOGIN
    skipped = next(s for s in json.loads(rerun.stdout)["steps"] if s["id"] == "assoc.login.mgmt")
    assert skipped["status"] == "skipped" and "already rejected" in skipped["summary"]
